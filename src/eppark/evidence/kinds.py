"""Which records hold evidence files: the kinds a URL may name, and how to find their lot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model


@dataclass(frozen=True)
class EvidenceKind:
    """A model with evidence file fields, as the URLs name it."""

    name: str
    model_label: str  # "app_label.ModelName"
    fields: tuple[str, ...]
    related: tuple[str, ...]  # select_related paths needed to reach the lot
    lot_id: Callable[[Any], int | None]

    def model(self) -> type[Model]:
        """The model class (looked up late: this module loads before the apps)."""
        from django.apps import apps

        return apps.get_model(self.model_label)

    def view_permissions(self) -> tuple[str, str]:
        """Either permission lets a user look at the record (change implies view)."""
        app_label, model_name = self.model_label.split(".")
        return f"{app_label}.view_{model_name.lower()}", f"{app_label}.change_{model_name.lower()}"

    def find(self, pk: int) -> Any:
        """The record with ``pk``, or None."""
        return self.model()._default_manager.select_related(*self.related).filter(pk=pk).first()


KINDS: dict[str, EvidenceKind] = {
    kind.name: kind
    for kind in (
        EvidenceKind(
            "stay",
            "stays.Stay",
            ("entry_photo", "exit_photo"),
            (),
            lambda stay: stay.lot_id,
        ),
        EvidenceKind("gate-visit", "stays.GateVisit", ("photo",), (), lambda visit: visit.lot_id),
        EvidenceKind(
            "plate-read", "devices.PlateRead", ("photo",), ("camera",), lambda r: r.camera.lot_id
        ),
        EvidenceKind(
            "abnormal-open",
            "console.AbnormalOpenEvidence",
            ("file",),
            ("abnormal_open",),
            lambda evidence: evidence.abnormal_open.lot_id,
        ),
        EvidenceKind(
            "desk-photo", "console.CapturedPhoto", ("file",), (), lambda photo: photo.lot_id
        ),
    )
}

MODEL_KINDS: dict[str, str] = {kind.model_label.lower(): kind.name for kind in KINDS.values()}


def kind_of(record: Model) -> EvidenceKind:
    """The evidence kind of a record's model (KeyError for a model without evidence)."""
    return KINDS[MODEL_KINDS[record._meta.label_lower]]
