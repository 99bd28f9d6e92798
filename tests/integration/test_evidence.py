"""Evidence photos are seen by those allowed: staff of the lot, and holders of a signed link."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.console.models import AbnormalOpenEvidence
from eppark.devices.models import Camera, Command, PlateRead, RobotScreen
from eppark.evidence import links
from eppark.lots.models import Gate
from eppark.passes.models import PassPlate
from eppark.sim.cameras import build_push, fake_jpeg
from eppark.stays.models import GateVisit, Stay
from tests.integration.factories import LotWorld, build_lot, keyed_camera, staff

pytestmark = pytest.mark.django_db


def store(name: str, seed: str) -> tuple[str, bytes]:
    """Save a JPEG-shaped file under ``name``; its stored name and bytes."""
    data = fake_jpeg(seed)
    return default_storage.save(name, ContentFile(data)), data


def furnish(world: LotWorld) -> dict[str, tuple[str, bytes]]:
    """Give every kind of evidence record of ``world`` a photo; their staff URLs and bytes."""
    code = world.lot.code
    stay = world.stay
    stay.entry_photo, entry = store(f"photos/{code}/entry.jpg", f"{code} entry")
    stay.exit_photo, exit_ = store(f"photos/{code}/exit.jpg", f"{code} exit")
    stay.save()
    visit = GateVisit.objects.get(lot=world.lot)
    visit.photo, at_gate = store(f"photos/{code}/visit.jpg", f"{code} visit")
    visit.save()
    read = PlateRead.objects.create(
        camera=world.camera, read_id="r1", plate=stay.plate, received_at=timezone.now()
    )
    read.photo, read_bytes = store(f"reads/{code}/read.jpg", f"{code} read")
    read.save()
    file, scene = store(f"evidence/{code}/scene.jpg", f"{code} scene")
    evidence = AbnormalOpenEvidence.objects.create(
        abnormal_open=world.abnormal_open, kind="scene", file=file, taken_at=timezone.now()
    )
    return {
        f"/evidence/stay/{stay.pk}/entry_photo/": (stay.entry_photo.name, entry),
        f"/evidence/stay/{stay.pk}/exit_photo/": (stay.exit_photo.name, exit_),
        f"/evidence/gate-visit/{visit.pk}/photo/": (visit.photo.name, at_gate),
        f"/evidence/plate-read/{read.pk}/photo/": (read.photo.name, read_bytes),
        f"/evidence/abnormal-open/{evidence.pk}/file/": (evidence.file.name, scene),
    }


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    users = {
        "superuser": root,
        "admin": staff("admin-1", Role.ADMIN, []),
        "agent_a": staff("kf-a", Role.AGENT, [a.lot]),
        "operator_a": staff("op-a", Role.OPERATOR, [a.lot]),
        "agent_b": staff("kf-b", Role.AGENT, [b.lot]),
        "operator_b": staff("op-b", Role.OPERATOR, [b.lot]),
        "no_lots": staff("op-none", Role.OPERATOR, []),
        "bare_staff": staff("bare", None, [a.lot]),
        "not_staff": User.objects.create_user("driver", password="pw-not-used"),
    }
    return {"a": a, "b": b, "users": users, "files": furnish(a), "files_b": furnish(b)}


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def body(response: Any) -> bytes:
    """A response's bytes, streamed or not."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def assert_photo(response: Any, data: bytes) -> None:
    assert response.status_code == 200
    assert body(response) == data
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"].startswith("private")
    assert response["X-Content-Type-Options"] == "nosniff"


def assert_nothing(response: Any, data: bytes, status: int = 404) -> None:
    assert response.status_code == status
    assert data not in body(response)


# --- staff ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["superuser", "admin"])
def test_those_who_see_every_lot_see_every_kind_of_evidence(
    world: dict[str, Any], role: str
) -> None:
    client = client_for(world["users"][role])
    for url, (_name, data) in world["files"].items():
        assert_photo(client.get(url), data)


@pytest.mark.parametrize("role", ["agent_a", "operator_a"])
def test_staff_of_the_lot_see_what_their_role_may_view(world: dict[str, Any], role: str) -> None:
    client = client_for(world["users"][role])
    for url, (_name, data) in world["files"].items():
        assert_photo(client.get(url), data)  # every role may view every kind of record


@pytest.mark.parametrize("role", ["agent_b", "operator_b", "no_lots", "bare_staff", "not_staff"])
def test_staff_of_another_lot_and_strangers_get_nothing(world: dict[str, Any], role: str) -> None:
    client = client_for(world["users"][role])
    for url, (_name, data) in world["files"].items():
        assert_nothing(client.get(url), data)


def test_anonymous_is_sent_to_the_login_without_the_file(world: dict[str, Any]) -> None:
    for url, (_name, data) in world["files"].items():
        response = Client().get(url)
        assert_nothing(response, data, status=302)
        assert response["Location"].startswith(reverse("admin:login"))


def test_lot_b_staff_see_lot_b_and_not_lot_a(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["operator_b"])
    for url, (_name, data) in world["files_b"].items():
        assert_photo(client.get(url), data)


@pytest.mark.parametrize(
    "path",
    [
        "/evidence/stay/{stay}/plate/",  # a field that is no file
        "/evidence/stay/{stay}/closed_by/",
        "/evidence/stay/{stay}/photo/",  # a file field of another kind
        "/evidence/lot/{stay}/entry_photo/",  # not an evidence kind
        "/evidence/stay/999999/entry_photo/",
        "/evidence/stay/{stay}/..%2F..%2Fsettings.py/",
        "/media/photos/caike/entry.jpg",  # never a public media route
    ],
)
def test_nothing_else_is_served(world: dict[str, Any], path: str) -> None:
    response = client_for(world["users"]["superuser"]).get(path.format(stay=world["a"].stay.pk))
    assert response.status_code == 404


def test_a_missing_file_is_404_not_an_error(world: dict[str, Any]) -> None:
    url, (name, _data) = next(iter(world["files"].items()))
    default_storage.delete(name)
    assert client_for(world["users"]["operator_a"]).get(url).status_code == 404


def test_a_stored_non_image_is_never_rendered_inline(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    page = ContentFile(b"<script>1</script>")
    stay.entry_photo = default_storage.save("photos/caike/x.html", page)
    stay.save()
    response = client_for(world["users"]["operator_a"]).get(
        f"/evidence/stay/{stay.pk}/entry_photo/"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


# --- signed links ---------------------------------------------------------------------------------


def signed_path(url: str) -> str:
    """The path of an absolute signed URL, to fetch it through the test client."""
    assert url.startswith(settings.EPPARK_PUBLIC_URL.rstrip("/") + "/evidence/s/")
    return urlsplit(url).path


def test_a_signed_link_works_before_expiry_and_not_after(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    data = world["files"][f"/evidence/stay/{stay.pk}/entry_photo/"][1]
    now = time.time()
    token = links.sign("stay", stay.pk, "entry_photo", stay.entry_photo.name, ttl=60, now=now)
    assert links.read(token, now=now + 59).pk == stay.pk
    with pytest.raises(links.LinkExpired):
        links.read(token, now=now + 60)

    fresh = links.signed_url("stay", stay.pk, "entry_photo", stay.entry_photo.name)
    assert_photo(Client().get(signed_path(fresh)), data)  # no login needed

    stale = links.signed_url(
        "stay", stay.pk, "entry_photo", stay.entry_photo.name, now=now - links.link_ttl() - 1
    )
    response = Client().get(signed_path(stale))
    assert_nothing(response, data, status=403)
    assert response.content.decode() == "照片链接已过期。"


def test_a_tampered_link_fails(world: dict[str, Any]) -> None:
    a, b = world["a"].stay, world["b"].stay
    data = world["files"][f"/evidence/stay/{a.pk}/entry_photo/"][1]
    token = links.sign("stay", b.pk, "entry_photo", b.entry_photo.name)
    payload, rest = token.split(":", 1)
    forged_payload = links.sign("stay", a.pk, "entry_photo", a.entry_photo.name).split(":", 1)[0]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for forged in (f"{forged_payload}:{rest}", flipped, "abc", payload):
        response = Client().get(reverse("evidence:signed", args=[forged]))
        assert_nothing(response, data, status=403)
        assert response.content.decode() == "照片链接无效。"


def test_a_link_to_another_file_than_the_record_holds_fails(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    url = links.signed_url("stay", stay.pk, "entry_photo", stay.entry_photo.name)
    stay.entry_photo, _data = store("photos/caike/retaken.jpg", "retaken")
    stay.save()
    response = Client().get(signed_path(url))
    assert response.status_code == 404
    assert response.content.decode() == "照片已不存在。"


def test_a_link_to_a_file_gone_from_storage_says_so(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    url = links.signed_url("stay", stay.pk, "entry_photo", str(stay.entry_photo.name))
    default_storage.delete(str(stay.entry_photo.name))
    response = Client().get(signed_path(url))
    assert response.status_code == 404
    assert response.content.decode() == "照片已不存在。"


def test_a_link_carries_no_storage_path(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    token = links.sign("stay", stay.pk, "entry_photo", str(stay.entry_photo.name))
    assert "photos/" not in str(signing.loads(token, salt=links.SALT))


def test_evidence_is_only_read(world: dict[str, Any]) -> None:
    stay = world["a"].stay
    url, (_name, data) = next(iter(world["files"].items()))
    assert_nothing(client_for(world["users"]["superuser"]).post(url), data, status=405)
    signed = links.signed_url("stay", stay.pk, "entry_photo", str(stay.entry_photo.name))
    assert_nothing(Client().post(signed_path(signed)), data, status=405)


# --- the shared-space screen ----------------------------------------------------------------------


def push_entry(camera: Camera, plate: str, plate_id: int) -> Any:
    message = build_push("vzenith", camera.serial, plate, timezone.now(), plate_id=plate_id)
    return Client().post(
        f"/devices/lpr/vzenith/{camera.key}", data=message.body, content_type=message.content_type
    )


def test_the_shared_space_screens_photos_load_from_their_links(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    entry: Gate = a.entry
    camera = keyed_camera(
        "k-entry", vendor="vzenith", lot=a.lot, gate=entry, robot=None, serial="sn-entry"
    )
    a.robot.gate = entry  # the lot's robot stands at the entry gate for this test
    a.robot.save()
    Stay.objects.filter(lot=a.lot).update(exited_at=timezone.now(), state="left")
    PassPlate.objects.create(monthly_pass=a.monthly_pass, lot=a.lot, plate="粤B22222")
    assert push_entry(camera, "粤B11111", 1).status_code == 200  # takes the pass's one space
    assert push_entry(camera, "粤B22222", 2).status_code == 200  # the space is shared: full
    present = Command.objects.filter(robot=a.robot, cmd="present").order_by("created_at").last()
    assert present is not None
    assert present.args["display"]["kind"] == "vehicles"
    [car] = present.args["display"]["vehicles"]
    inside = Stay.objects.get(plate="粤B11111", exited_at__isnull=True)
    with default_storage.open(str(inside.entry_photo.name), "rb") as handle:
        photo = handle.read()
    assert photo.startswith(b"\xff\xd8")
    assert_photo(Client().get(urlsplit(car["photo_url"]).path), photo)  # today: 404
    signed_path(car["photo_url"])  # a signed link under EPPARK_PUBLIC_URL
    link = links.read(signed_path(car["photo_url"]).rstrip("/").rsplit("/", 1)[-1])
    lives = link.expires - time.time()
    assert settings.EPPARK_PRESENT_TTL_S < lives <= settings.EPPARK_PRESENT_TTL_S + links.MARGIN_S


def test_the_console_mirror_shows_the_groups_photos_to_staff(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    stay = a.stay
    data = world["files"][f"/evidence/stay/{stay.pk}/entry_photo/"][1]
    long_ago = time.time() - 86400  # the robot's link expired long ago
    RobotScreen.objects.create(
        robot=a.robot,
        voice="车位已满",
        display={
            "kind": "vehicles",
            "vehicles": [
                {
                    "plate": stay.plate,
                    "photo_url": links.signed_url(
                        "stay", stay.pk, "entry_photo", str(stay.entry_photo.name), now=long_ago
                    ),
                    "entered_at": stay.entered_at.isoformat(),
                }
            ],
        },
        light="yellow",
        since=timezone.now() - timedelta(seconds=5),
        cmd_id="c-1",
    )
    staff_url = f"/evidence/stay/{stay.pk}/entry_photo/"
    for role in ("agent_a", "operator_a"):
        client = client_for(world["users"][role])
        state = client.get(reverse("console:robot_state", args=[a.robot.code])).json()
        assert state["display"]["vehicles"][0]["photo_url"] == staff_url
        page = client.get(reverse("console:robot", args=[a.robot.code])).content.decode()
        assert f'src="{staff_url}"' in page
        assert_photo(client.get(staff_url), data)


# --- the back office ------------------------------------------------------------------------------


def img_sources(html: str) -> list[str]:
    return re.findall(r'<img src="(/evidence/[^"]+)"', html)


def test_back_office_shows_the_photos_inline(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    files = world["files"]
    client = client_for(world["users"]["operator_a"])
    visit = GateVisit.objects.get(lot=a.lot)
    evidence = AbnormalOpenEvidence.objects.get(abnormal_open=a.abnormal_open)
    pages = {
        reverse("admin:stays_gatevisit_change", args=[visit.pk]): [
            f"/evidence/gate-visit/{visit.pk}/photo/"
        ],
        reverse("admin:stays_gatevisit_changelist"): [f"/evidence/gate-visit/{visit.pk}/photo/"],
        reverse("admin:stays_stay_change", args=[a.stay.pk]): [
            f"/evidence/stay/{a.stay.pk}/entry_photo/",
            f"/evidence/stay/{a.stay.pk}/exit_photo/",
        ],
        reverse("admin:stays_stay_changelist"): [f"/evidence/stay/{a.stay.pk}/entry_photo/"],
        reverse("admin:console_abnormalopen_change", args=[a.abnormal_open.pk]): [
            f"/evidence/abnormal-open/{evidence.pk}/file/"
        ],
    }
    for page, expected in pages.items():
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert img_sources(html) == expected, page
        assert "/media/" not in html, page  # no link to an unserved file path
        for src in expected:
            assert_photo(client.get(src), files[src][1])
