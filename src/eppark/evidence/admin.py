"""The back office's evidence thumbnails: an <img> served by the staff view, linked full size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from eppark.evidence.kinds import kind_of
from eppark.evidence.links import staff_path

LIST_HEIGHT = 40
PAGE_HEIGHT = 240


def thumbnail(record: Any, field: str, height: int = PAGE_HEIGHT) -> SafeString | str:
    """The photo in ``field`` of ``record`` as a linked thumbnail; "" when there is none."""
    if record is None or record.pk is None or not getattr(record, field):
        return ""
    url = staff_path(kind_of(record).name, record.pk, field)
    return format_html(
        '<a href="{}" target="_blank" rel="noopener">'
        '<img src="{}" alt="" loading="lazy" class="evidence-photo"'
        ' style="max-height:{}px;max-width:{}px;vertical-align:middle"></a>',
        url,
        url,
        height,
        height * 2,
    )


def photo_display(
    field: str, description: Any, height: int = PAGE_HEIGHT
) -> Callable[[Any, Any], SafeString | str]:
    """An admin display method showing ``field`` as a thumbnail (list_display/readonly_fields).

    ``preview = photo_display("photo", _("photo"))`` in a ModelAdmin or inline,
    then list ``"preview"``.
    """

    @admin.display(description=description)
    def show(model_admin: Any, obj: Any) -> SafeString | str:
        return thumbnail(obj, field, height)

    return show
