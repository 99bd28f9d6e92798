"""Provisioning call-centre integrations (``call_centres``): created, kept, refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eppark.calls.models import CallCentre
from eppark.devices.keys import key_digest
from tests.integration.test_provision import provision, refusal, write, writes

pytestmark = pytest.mark.django_db

KEY = "k-cc-1-0123456789abcdef"


def document(**centre: Any) -> dict[str, Any]:
    entry = {
        "provider": "generic",
        "key": KEY,
        "name": "呼叫中心",
        "callout_url": "http://127.0.0.1:8010/callout",
        "secret": "s3cret",
        **centre,
    }
    return {"call_centres": [{k: v for k, v in entry.items() if v is not None}]}


def test_a_call_centre_is_created_once_with_only_its_keys_digest(tmp_path: Path) -> None:
    path = write(tmp_path, document())
    out = provision(path)
    assert "centres  1 created" in out
    centre = CallCentre.objects.get()
    assert (centre.provider, centre.name, centre.callout_url) == (
        "generic",
        "呼叫中心",
        "http://127.0.0.1:8010/callout",
    )
    assert centre.key_digest == key_digest(KEY)
    assert centre.key_hint == KEY[-4:]
    assert KEY not in str(CallCentre.objects.values().get())
    with CaptureQueriesContext(connection) as queries:
        out = provision(path)
    assert writes(queries) == []
    assert out.rstrip().endswith("nothing to change")


def test_a_later_file_changes_what_it_gives_and_keeps_what_it_leaves_out(tmp_path: Path) -> None:
    provision(write(tmp_path, document()))
    out = provision(write(tmp_path, document(name="新中心", callout_url=None, secret=None)))
    assert "centres  0 created, 1 updated" in out
    centre = CallCentre.objects.get()
    assert (centre.name, centre.callout_url, centre.secret) == (
        "新中心",
        "http://127.0.0.1:8010/callout",
        "s3cret",
    )


def test_a_tinet_centre_with_callouts(tmp_path: Path) -> None:
    provision(
        write(
            tmp_path,
            document(
                provider="tinet", callout_url="https://api-bj.clink.cn/cc", access_key_id="AK-1"
            ),
        )
    )
    centre = CallCentre.objects.get()
    assert (centre.provider, centre.access_key_id) == ("tinet", "AK-1")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"provider": "asterisk"}, "call_centres[0].provider: must be one of generic, tinet"),
        ({"key": "a key/with slash"}, "call_centres[0].key:"),
        ({"name": None}, "call_centres[0].name"),
        ({"callout_url": "ftp://x/y"}, "call_centres[0].callout_url:"),
        ({"callout_url": "http://"}, "call_centres[0].callout_url:"),
        ({"colour": "red"}, "call_centres[0].colour: is not a known key"),
        ({"secret": 12345}, "call_centres[0].secret: must be a string"),
        (
            {"provider": "tinet", "access_key_id": None},
            "call_centres[0].access_key_id: TiNet callouts are signed",
        ),
    ],
)
def test_a_bad_entry_is_named_and_nothing_changes(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    assert expected in refusal(write(tmp_path, document(**change)))
    assert not CallCentre.objects.exists()


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    twice = document()
    twice["call_centres"].append({**twice["call_centres"][0], "name": "另一个"})
    message = refusal(write(tmp_path, twice))
    assert "call_centres[1].key" in message
    assert "already used by call_centres[0].key" in message
    assert not CallCentre.objects.exists()
