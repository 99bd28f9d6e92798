"""Round trip: parsing a simulated push gives back what it was built from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eppark.devices.lpr import PlateRead, Vendor, adapter
from eppark.devices.lpr.events import derive_read_id
from eppark.domain.plates import LETTERS, PROVINCES, check
from eppark.sim.cameras import build_heartbeat, build_push, fake_jpeg, truncate

VENDORS: tuple[Vendor, ...] = ("vzenith", "hxzx", "hikvision", "dahua")
X = LETTERS + "0123456789"

ordinary = st.builds(
    lambda p, letter, rest: p + letter + rest,
    st.sampled_from(PROVINCES),
    st.sampled_from(LETTERS),
    st.text(alphabet=X, min_size=5, max_size=5),
)
new_energy = st.builds(
    lambda p, letter, k, x, d: p + letter + k + x + d,
    st.sampled_from(PROVINCES),
    st.sampled_from(LETTERS),
    st.sampled_from("DF"),
    st.sampled_from(X),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
special = st.builds(
    lambda p, letter, rest, s: p + letter + rest + s,
    st.sampled_from(PROVINCES),
    st.sampled_from(LETTERS),
    st.text(alphabet=X, min_size=4, max_size=4),
    st.sampled_from(["挂", "学", "警", "领"]),
)
plates = st.one_of(st.none(), ordinary, new_energy, special)
serials = st.text(alphabet="abcdefABCDEF0123456789-:", min_size=1, max_size=32).filter(
    lambda s: s.strip(":-")
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)


@settings(max_examples=60, deadline=None)
@given(
    vendor=st.sampled_from(VENDORS),
    serial=serials,
    plate=plates,
    at=times,
    plate_id=st.integers(min_value=0, max_value=2**31 - 1),
    offline=st.booleans(),
    with_image=st.booleans(),
)
def test_parse_inverts_build(
    vendor: Vendor,
    serial: str,
    plate: str | None,
    at: datetime,
    plate_id: int,
    offline: bool,
    with_image: bool,
) -> None:
    offline = offline and vendor != "dahua"
    push = build_push(
        vendor, serial, plate, at, plate_id=plate_id, offline=offline, with_image=with_image
    )
    event = adapter(vendor).parse(push)
    assert isinstance(event, PlateRead)
    expected_at = truncate(at, vendor)
    assert (event.vendor, event.serial, event.plate) == (vendor, serial, plate)
    assert event.read_at == expected_at
    assert event.offline is offline
    if vendor == "vzenith":
        assert event.read_id == str(plate_id)
    else:
        assert event.read_id == derive_read_id(serial, expected_at, event.raw_plate)
    if with_image:
        assert event.images
        assert all(i.data[:2] == b"\xff\xd8" and i.data[-2:] == b"\xff\xd9" for i in event.images)
    else:
        assert event.images == ()
    if plate is not None:
        assert check(plate)["valid"]
        assert event.color == "blue"


@pytest.mark.parametrize("vendor", VENDORS)
def test_heartbeat_round_trip(vendor: Vendor) -> None:
    event = adapter(vendor).parse(build_heartbeat(vendor, "eff50e18-e3d3862b"))
    assert (event.vendor, event.serial) == (vendor, "eff50e18-e3d3862b")


def test_builders_refuse_what_the_vendor_cannot_say() -> None:
    at = datetime(2024, 2, 20, 6, 30, 45, tzinfo=UTC)
    with pytest.raises(ValueError, match="offline"):
        build_push("dahua", "S", "粤B12345", at, plate_id=1, offline=True)
    with pytest.raises(ValueError, match="aware"):
        build_push("vzenith", "S", "粤B12345", at.replace(tzinfo=None), plate_id=1)


def test_fake_jpeg_shape() -> None:
    data = fake_jpeg("seed")
    assert data.startswith(b"\xff\xd8\xff\xe0")
    assert data.endswith(b"\xff\xd9")
    assert set(bytes(range(256))) <= set(data)
