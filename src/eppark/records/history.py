"""The audit history of records people rely on (django-simple-history), people's changes only.

Machines write stays and visits on every plate read (the gate loop, mostly in raw SQL);
those writes are the record itself, not changes to it, and keep no history rows. A
history row is written when a person changes a record: a named action (which passes its
user and reason explicitly) or a logged-in user's request. Before a person's change
``record_baseline`` keeps the row as the machines left it when it differs from the last
history row (the first change, or the gate loop wrote since), so every entry has a
"before" and what the machines changed is never put down to the person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords  # type: ignore[import-untyped]


class PeopleHistory(HistoricalRecords):  # type: ignore[misc]
    """``HistoricalRecords`` that records only changes made by a known person, with a reason."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("history_change_reason_field", models.TextField(null=True))
        super().__init__(**kwargs)

    def post_save(self, instance: Any, created: bool, using: Any = None, **kwargs: Any) -> None:
        """Record a save made by a person; ignore the machines' (offline backlog, demo, seeding)."""
        if self._by_person(instance):
            super().post_save(instance, created, using=using, **kwargs)

    def post_delete(self, instance: Any, using: Any = None, **kwargs: Any) -> None:
        """Record a deletion made by a person."""
        if self._by_person(instance):
            super().post_delete(instance, using=using, **kwargs)

    def _by_person(self, instance: Any) -> bool:
        if hasattr(instance, "_change_reason") or getattr(instance, "_history_user", None):
            return True
        user = getattr(getattr(self.context, "request", None), "user", None)
        return bool(getattr(user, "is_authenticated", False))


def record_baseline(instance: Any, at: datetime) -> None:
    """Before a person changes ``instance``: keep the row as it stands, by no one, if it
    differs from its last history row (or has none)."""
    manager = type(instance).history
    history_model = manager.model
    values = {
        field.attname: getattr(instance, field.attname) for field in history_model.tracked_fields
    }
    last = manager.filter(id=instance.pk).order_by("-history_date", "-history_id").first()
    if last is not None and all(getattr(last, name) == value for name, value in values.items()):
        return
    history_model.objects.create(
        history_date=at,
        history_type="+" if last is None else "~",
        history_user=None,
        history_change_reason="",
        **values,
    )


def stamp(instance: Any, user: Any, reason: str) -> None:
    """Mark ``instance``'s next save as ``user``'s change, for ``reason``."""
    instance._history_user = user
    instance._change_reason = reason
