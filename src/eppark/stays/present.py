"""What the robot shows for a decision: its voice, display and light.

The decision engine names what to show (``eppark.domain.scenarios``); this
fills in what only the server knows: the signed URL a QR code encodes, and,
for a shared pass whose spaces are full, the group's cars inside with their
entry photos.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

from eppark.evidence import links as evidence_links
from eppark.evidence.links import public_url
from eppark.passes.models import PassPlate
from eppark.stays.models import Stay


def qr_url(kind: str, visit_id: int) -> str:
    """The URL a robot's QR code encodes: a signed token naming the QR's purpose and visit."""
    token = signing.dumps({"k": kind, "v": visit_id}, salt="eppark.qr", compress=True)
    return f"{public_url()}/q/{token}"


def present_args(
    decision: dict[str, Any], visit_id: int, lot_id: int, plate: str, pass_id: int | None
) -> dict[str, Any]:
    """The robot's ``present`` command: the decision's voice, display and light."""
    display: dict[str, Any] = dict(decision["display"])
    if display["kind"] == "qr":
        display["qr"] = qr_url(display["qr"], visit_id)
    elif display["kind"] == "vehicles":
        display["vehicles"] = _group_vehicles(lot_id, pass_id, plate)
    return {"voice": decision["voice"], "display": display, "light": decision["light"]}


def _group_vehicles(lot_id: int, pass_id: int | None, plate: str) -> list[dict[str, Any]]:
    """The pass group's cars inside, with their entry photos, for the shared-full screen."""
    if pass_id is None:
        return []
    plates = list(
        PassPlate.objects.filter(monthly_pass_id=pass_id)
        .exclude(plate=plate)
        .values_list("plate", flat=True)
    )
    stays = Stay.objects.filter(lot_id=lot_id, plate__in=plates, exited_at__isnull=True).order_by(
        "entered_at"
    )[:20]
    return [
        {
            "plate": stay.plate,
            "photo_url": evidence_links.signed_url(
                "stay", stay.pk, "entry_photo", stay.entry_photo.name or ""
            )
            if stay.entry_photo
            else None,
            "entered_at": stay.entered_at.isoformat(),
        }
        for stay in stays
    ]
