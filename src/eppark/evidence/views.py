"""Serve evidence files: to staff of the record's lot, or to holders of a signed link.

Files are read through ``default_storage.open`` (a file system today, object
storage later), never by a path from the request. Only raster image types are
served inline; anything else goes out as an opaque download. Every answer
carries ``Cache-Control: private`` and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import mimetypes
import time
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from eppark.accounts.scoping import may_act_on_lot
from eppark.evidence import links
from eppark.evidence.kinds import KINDS

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
STAFF_CACHE_S = 600


def _stream(name: str, cache_seconds: int) -> HttpResponseBase:
    """The stored file ``name`` as a response; 404 when it is missing."""
    if not name:
        raise Http404("no file")
    try:
        handle = default_storage.open(name, "rb")
    except (OSError, SuspiciousFileOperation) as exc:
        raise Http404("file missing") from exc
    content_type = mimetypes.guess_type(name)[0] or ""
    inline = content_type in IMAGE_TYPES
    response = FileResponse(
        handle,
        content_type=content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        filename=name.rsplit("/", 1)[-1],
    )
    response["Cache-Control"] = f"private, max-age={cache_seconds}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_safe
def staff_file(request: HttpRequest, kind: str, pk: int, field: str) -> HttpResponseBase:
    """One evidence file for logged-in staff who serve its lot and may view its record."""
    user: Any = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    evidence = KINDS.get(kind)
    if evidence is None or field not in evidence.fields or not (user.is_active and user.is_staff):
        raise Http404("no such evidence")
    if not any(user.has_perm(perm) for perm in evidence.view_permissions()):
        raise Http404("no such evidence")
    record = evidence.find(pk)
    if record is None or not may_act_on_lot(user, evidence.lot_id(record)):
        raise Http404("no such evidence")
    return _stream(getattr(record, field).name, STAFF_CACHE_S)


def _refused(message: str, status: int) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def signed_file(request: HttpRequest, token: str) -> HttpResponseBase:
    """One evidence file for a robot or a phone holding an unexpired signed link."""
    try:
        link = links.read(token)
    except links.LinkExpired:
        return _refused(_("This photo link has expired."), 403)
    except links.LinkError:
        return _refused(_("This photo link is not valid."), 403)
    evidence = KINDS.get(link.kind)
    record = evidence.find(link.pk) if evidence and link.field in evidence.fields else None
    name = getattr(record, link.field).name if record is not None else ""
    if link.names(name):
        try:
            return _stream(name, max(0, link.expires - int(time.time())))
        except Http404:
            pass
    return _refused(_("This photo is no longer available."), 404)
