"""Evidence for an abnormal open, taken during the call (manual C3b, C4c, C6b).

- ID photos: ``capture_id`` asks the robot (through the outbox, with the C3b prompt on its
  screen) to take 1–4 photos with its ID camera; each comes back as an ``id_photo`` event
  (``receive_id_photo``, called by the gateway) and is stored as a ``CapturedPhoto`` of
  the open call at that robot.
- Scene snapshots: ``capture_scene`` has the gate's environment camera (Ezviz) take one
  now; ``latest_scene`` is the newest snapshot of a gate taken in the last few minutes.

A photo's file is written to storage before its row commits, so a row never names a
missing file; a row that does not commit takes its file with it. Each stored photo is
pushed to the call's agent as ``{"kind": "photo", "call": …, "photo": …}``; a photo the
server will not keep (not a JPEG or PNG, too large, unreachable, no call to file it
under) is recorded on the robot's event as rejected and pushed as ``photo_rejected``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from eppark.calls.models import Call
from eppark.calls.routing import announce
from eppark.console import push
from eppark.console.cases import audit as _audit
from eppark.console.cases import authorise, snapshot
from eppark.console.cases import locked as _locked
from eppark.console.models import AgentAction, CapturedPhoto, DeskAction, EvidenceKind
from eppark.dbstate import unreachable
from eppark.devices import outbox
from eppark.devices.ezviz import EzvizClient, EzvizError
from eppark.devices.models import Camera, Channel, Command, Robot, RobotEvent, Vendor
from eppark.devices.pictures import EXTENSIONS, FetchError, fetch, picture_type
from eppark.domain import desk
from eppark.evidence.links import staff_path
from eppark.gateway import protocol
from eppark.lots.models import Gate
from eppark.records.errors import Refused

log = logging.getLogger(__name__)

CAPTURE_TTL = timedelta(seconds=30)
"""How long a ``capture_id`` may still be carried out (docs/robot-protocol.md)."""
URL_PHOTO_MAX_BYTES = 2 * 1024 * 1024
"""The largest ID photo fetched from a URL the robot uploaded it to."""
URL_PHOTO_TIMEOUT_S = 5.0
SCENE_FRESH = timedelta(minutes=5)
"""A scene snapshot this recent is shown as the gate's latest."""
PHOTO_KIND = "desk-photo"
"""The evidence kind (``eppark.evidence.kinds``) of a ``CapturedPhoto``."""


def photo_url(photo: CapturedPhoto) -> str:
    """The staff URL of a captured photo (login and its lot checked when opened)."""
    return staff_path(PHOTO_KIND, photo.pk, "file")


def _file_name(call: Call, kind: str, content_type: str) -> str:
    return f"call{call.pk}-{kind}-{uuid.uuid4().hex[:12]}.{EXTENSIONS[content_type]}"


def _discard(photo: CapturedPhoto) -> None:
    """Remove a stored file whose row did not commit."""
    if photo.file.name:
        try:
            photo.file.storage.delete(photo.file.name)
        except OSError:
            log.warning("could not remove the unused photo %s", photo.file.name)


# --- ID photos -----------------------------------------------------------------------------------


def capture_id(call: Call, user: Any, count: int = 1) -> Command:
    """Ask the call's robot for ``count`` (1–4) ID photos; the ``capture_id`` command.

    The robot first shows the C3b prompt (请出示您的有效证件…, green), then takes the
    photos; both commands are stored with the audit record, in one transaction.
    """
    if not isinstance(count, int) or not 1 <= count <= protocol.MAX_ID_PHOTOS:
        raise Refused(_("Ask for 1 to 4 ID photos."))
    now = timezone.now()
    with transaction.atomic():
        call = _locked(call)
        authorise(user, call)
        robot: Robot | None = call.robot
        if robot is None:
            raise Refused(_("This call has no robot: its ID camera cannot be used."))
        before = snapshot(call, now)
        common: dict[str, Any] = {
            "channel": Channel.MQTT,
            "now": now,
            "robot_id": robot.pk,
            "robot_code": robot.code,
            "visit_id": call.visit_id,
            "requested_by_id": user.pk,
        }
        with connection.cursor() as cursor:
            shown = outbox.stage(
                cursor,
                cmd="present",
                args=desk.show_id_screen().args(),
                ttl=outbox.present_ttl(),
                **common,
            )
            asked = outbox.stage(
                cursor, cmd="capture_id", args={"count": count}, ttl=CAPTURE_TTL, **common
            )
        ids = dict(Command.objects.filter(pk__in=[shown, asked]).values_list("pk", "cmd_id"))
        _audit(
            call,
            user,
            DeskAction.CAPTURE_ID,
            before,
            now,
            cmd_id=ids[asked],
            count=count,
            present=ids[shown],
        )
        announce(call)
    return Command.objects.get(pk=asked)


def receive_id_photo(robot: Robot, event: protocol.Event, now: datetime) -> RobotEvent | None:
    """An ``id_photo`` event: recorded once, its photo stored for the open call at the robot.

    Never raises for a bad photo (it is recorded as rejected); None for a redelivery.
    """
    data = event.data
    assert isinstance(data, protocol.IdPhoto)
    if RobotEvent.objects.filter(robot=robot, event_id=event.event_id).exists():
        return None
    summary: dict[str, Any] = {
        key: value
        for key, value in {
            "cmd_id": data.cmd_id,
            "index": data.index,
            "content_type": data.content_type,
            "url": data.url,
            "bytes": len(data.photo) if data.photo is not None else None,
        }.items()
        if value is not None
    }
    call: Call | None = None
    photo: CapturedPhoto | None = None
    problem: str | None = None
    try:
        call, problem = _claiming_call(robot, data)
        if call is not None and problem is None:
            picture, problem = _picture(data)
            if picture is not None and problem is None and call.lot_id is not None:
                content_type = picture_type(picture) or ""
                photo = CapturedPhoto(
                    call=call,
                    lot_id=call.lot_id,
                    kind=EvidenceKind.ID_DOCUMENT,
                    cmd_id=data.cmd_id or "",
                    taken_at=event.ts,
                )
                photo.file.save(
                    _file_name(call, "id", content_type), ContentFile(picture), save=False
                )
    except Exception as error:  # one robot's photo must never stop the gateway
        if unreachable(error):
            raise
        log.exception("robot %s: storing an ID photo failed", robot.code)
        if photo is not None:
            _discard(photo)
        photo, problem = None, "could not be stored"
    try:
        with transaction.atomic():
            if photo is not None:
                photo.save()
                summary["photo"] = photo.pk
            else:
                summary["rejected"] = problem or "rejected"
            record = RobotEvent.objects.create(
                robot=robot,
                event_id=event.event_id,
                type=event.type,
                ts=event.ts,
                data=summary,
                received_at=now,
            )
            if call is not None and call.agent_id is not None:
                message: dict[str, Any] = (
                    {"kind": "photo", "call": call.pk, "photo": photo.pk}
                    if photo is not None
                    else {"kind": "photo_rejected", "call": call.pk, "reason": summary["rejected"]}
                )
                push.publish(push.agent_group(call.agent_id), message)
    except IntegrityError:  # a redelivery that raced this one
        if photo is not None:
            _discard(photo)
        return None
    except BaseException:
        if photo is not None:
            _discard(photo)
        raise
    if photo is None:
        log.warning("robot %s: ID photo rejected: %s", robot.code, summary["rejected"])
    return record


def _claiming_call(robot: Robot, data: protocol.IdPhoto) -> tuple[Call | None, str | None]:
    """The call an ID photo belongs to, or why there is none."""
    if data.cmd_id:
        asked = (
            AgentAction.objects.filter(
                action=DeskAction.CAPTURE_ID, detail__cmd_id=data.cmd_id, call__robot=robot
            )
            .select_related("call")
            .first()
        )
        if asked is None or asked.call is None:
            return None, "not the answer to a capture_id command of this robot"
        target = asked.call
        if target.closed_at is not None:
            return target, "the call is closed"
        count = int(asked.detail.get("count") or 1)
        taken = CapturedPhoto.objects.filter(call=target, cmd_id=data.cmd_id).count()
        if (data.index is not None and data.index > count) or taken >= count:
            return target, f"more photos than the {count} asked for"
        return target, None
    call = (
        Call.objects.filter(
            robot=robot, closed_at__isnull=True, gate__isnull=False, lot__isnull=False
        )
        .order_by("-started_at", "-pk")
        .first()
    )
    if call is None:
        return None, "no open call at this robot"
    return call, None


def _picture(data: protocol.IdPhoto) -> tuple[bytes | None, str | None]:
    """The photo's bytes (inline, or fetched from its URL), or why it is refused."""
    if data.photo is not None:
        found = picture_type(data.photo)
        if found is None:
            return None, "not a JPEG or PNG picture"
        if found != data.content_type:
            return None, f"sent as {data.content_type} but is {found}"
        return data.photo, None
    assert data.url is not None
    try:
        body = fetch(data.url, URL_PHOTO_MAX_BYTES, URL_PHOTO_TIMEOUT_S)
    except FetchError as error:
        return None, f"could not be fetched: {error}"
    if picture_type(body) is None:
        return None, "the URL holds no JPEG or PNG picture"
    return body, None


def id_photos(call: Call) -> list[CapturedPhoto]:
    """The ID photos stored for a call, oldest first."""
    return list(CapturedPhoto.objects.filter(call=call, kind=EvidenceKind.ID_DOCUMENT))


# --- scene snapshots -----------------------------------------------------------------------------


def environment_camera(gate: Gate) -> Camera | None:
    """The gate's environment camera (Ezviz): linked to the gate, else to the gate's robot."""
    cameras = Camera.objects.filter(vendor=Vendor.EZVIZ, lot_id=gate.lot_id).exclude(
        ezviz_serial=""
    )
    return (
        cameras.filter(gate=gate).order_by("pk").first()
        or cameras.filter(Q(robot__gate=gate)).order_by("pk").first()
    )


def capture_scene(call: Call, user: Any, client: EzvizClient | None = None) -> CapturedPhoto:
    """Have the gate's environment camera take a snapshot now; stored for the call.

    The platform is called outside any transaction (it may take seconds); the call is
    then locked and authorised again before the photo's row and the audit commit.
    """
    current = Call.objects.select_related("gate__lot", "robot").get(pk=call.pk)
    authorise(user, current)
    assert current.gate is not None
    camera = environment_camera(current.gate)
    if camera is None:
        raise Refused(_("This gate has no environment camera."))
    ezviz = client or EzvizClient()
    try:
        picture = ezviz.download(ezviz.capture(camera.ezviz_serial))
    except EzvizError as error:
        if error.code == "20007":
            Camera.objects.filter(pk=camera.pk).update(online=False)
        raise Refused(
            _("The environment camera could not take a snapshot: %(reason)s")
            % {"reason": error.message}
        ) from error
    content_type = picture_type(picture)
    assert current.lot_id is not None  # authorised: a call at a gate
    if content_type is None:
        raise Refused(_("The environment camera's snapshot is not a JPEG or PNG picture."))
    now = timezone.now()
    photo = CapturedPhoto(
        call=current, lot_id=current.lot_id, kind=EvidenceKind.SCENE, taken_at=now
    )
    photo.file.save(_file_name(current, "scene", content_type), ContentFile(picture), save=False)
    try:
        with transaction.atomic():
            locked = _locked(current)
            authorise(user, locked)
            before = snapshot(locked, now)
            photo.call = locked
            photo.save()
            Camera.objects.filter(pk=camera.pk, online=False).update(online=True)
            _audit(
                locked,
                user,
                DeskAction.CAPTURE_SCENE,
                before,
                now,
                photo=photo.pk,
                camera=camera.pk,
                serial=camera.ezviz_serial,
            )
            push.publish(
                push.agent_group(user.pk), {"kind": "photo", "call": locked.pk, "photo": photo.pk}
            )
    except BaseException:
        _discard(photo)
        raise
    return photo


def latest_scene(where: Gate | Call, now: datetime | None = None) -> CapturedPhoto | None:
    """The newest scene snapshot at a gate (or at a call's gate) taken within ``SCENE_FRESH``.

    The desk shows it as "the environment camera's latest snapshot"; with none that
    recent (None), the agent takes one (``capture_scene``): no snapshot is taken
    unasked, since the platform counts them against a daily limit (10028).
    """
    gate_id = where.gate_id if isinstance(where, Call) else where.pk
    if gate_id is None:
        return None
    since = (now or timezone.now()) - SCENE_FRESH
    return (
        CapturedPhoto.objects.filter(
            kind=EvidenceKind.SCENE, call__gate_id=gate_id, taken_at__gte=since
        )
        .order_by("-taken_at", "-pk")
        .first()
    )


def scene_photos(call: Call) -> list[CapturedPhoto]:
    """The scene snapshots stored for a call, oldest first."""
    return list(CapturedPhoto.objects.filter(call=call, kind=EvidenceKind.SCENE))
