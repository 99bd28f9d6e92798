"""The agent desk's view of a call, as JSON for the browser (manual 2.3.2).

``call_state`` is everything the desk page shows for one call: the call overview
(接听概况), the scene (现场情况: gate photo, the waiting car's photo, the environment
camera's latest snapshot, the robot's screen), the plate, the vehicle information
(车辆信息) and the actions the rules allow (``eppark.domain.desk.allowed``), the C6
candidates, and the photos taken during the call. Everything a person reads is in
words (states, directions, amounts as ¥x.xx, times in the lot's zone); codes are
there only for the page's script to act on. Photos are only ever staff URLs, which
check the viewer's lot when opened.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import pgettext

from eppark.accounts.scoping import lot_ids, may_act_on_lot
from eppark.calls.models import Call, CallDirection, CallState
from eppark.console import cases, evidence, live
from eppark.console.models import CapturedPhoto, EvidenceKind
from eppark.domain import desk
from eppark.domain.decide import Direction, PassStatus
from eppark.evidence import kinds as evidence_kinds
from eppark.evidence import links as evidence_links
from eppark.records.display import yuan
from eppark.stays.models import Stay

ACTION_ORDER = [
    desk.Action.OPEN,
    desk.Action.SEND_TO_DISPLAY,
    desk.Action.QUICK_PAY,
    desk.Action.VISITOR_RELEASE,
    desk.Action.ABNORMAL_OPEN,
    desk.Action.CLOSE,
]
"""The desk's action buttons, in the manual's order (``确认为该车辆`` sits on each candidate)."""

SHOWN_STATES = (CallState.RINGING, CallState.ANSWERED, CallState.ENDED)


def _evidence_kind(model_label: str) -> str | None:
    """The evidence URL kind of a model, if the evidence app serves it."""
    return evidence_kinds.MODEL_KINDS.get(model_label.lower())


def staff_url(record: Any, field: str) -> str | None:
    """The lot-checked staff URL of a record's file, or None when it holds none."""
    name = getattr(getattr(record, field, None), "name", "") or ""
    if not name:
        return None
    kind = _evidence_kind(record._meta.label)
    if kind is None:
        return None
    return evidence_links.staff_path(kind, record.pk, field)


# --- words ---------------------------------------------------------------------------------------


def state_words(call: Call) -> str:
    """Where the call stands, in words."""
    if call.closed_at is not None:
        return pgettext("agent desk", "closed")
    words = {
        CallState.DIALING: pgettext("agent desk", "dialling"),
        CallState.RINGING: pgettext("agent desk", "ringing"),
        CallState.ANSWERED: pgettext("agent desk", "in the call"),
        CallState.ENDED: pgettext("agent desk", "hung up"),
        CallState.FAILED: pgettext("agent desk", "callout failed"),
    }
    return str(words.get(CallState(call.state), call.state)) if call.state else "—"


def direction_words(direction: str) -> str:
    """A gate's direction in words."""
    return (
        pgettext("agent desk", "entry")
        if direction == Direction.ENTRY
        else pgettext("agent desk", "exit")
    )


def duration_words(delta: timedelta) -> str:
    """A duration as days, hours and minutes (e.g. 2 h 05 min)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return pgettext("agent desk", "%(d)d d %(h)d h %(m)d min") % {
            "d": days,
            "h": hours,
            "m": mins,
        }
    if hours:
        return pgettext("agent desk", "%(h)d h %(m)d min") % {"h": hours, "m": mins}
    return pgettext("agent desk", "%(m)d min") % {"m": mins}


def pass_words(status: PassStatus, expired_days: int) -> str:
    """A monthly pass's standing in words: valid, expired N days, none."""
    if status is PassStatus.VALID:
        return pgettext("agent desk", "valid")
    if status is PassStatus.NONE:
        return pgettext("agent desk", "no monthly pass")
    return pgettext("agent desk", "expired %(days)d days ago") % {"days": expired_days}


def agent_display(user: Any) -> str:
    """How the desk names an agent."""
    if user is None:
        return ""
    profile = getattr(user, "staff", None)
    return (getattr(profile, "name", "") if profile is not None else "") or user.get_username()


# --- the parts of a call's state -----------------------------------------------------------------


def _overview(call: Call, user: Any) -> dict[str, Any]:
    robot = call.robot
    gate = call.gate
    lot = call.lot or (gate.lot if gate is not None else None)
    taken_by = cases.agent_name(call) if call.agent_id is not None else ""
    mine = call.agent_id == user.pk
    number = call.callee if call.direction == CallDirection.OUTBOUND else call.caller
    if call.agent_id is None:
        taken_words = pgettext("agent desk", "not taken yet")
    elif mine:
        taken_words = pgettext("agent desk", "taken by you")
    else:
        taken_words = pgettext("agent desk", "taken by %(agent)s") % {"agent": taken_by}
    return {
        "number": number or "—",
        "direction": call.direction,
        "direction_words": pgettext("agent desk", "outgoing call")
        if call.direction == "outbound"
        else pgettext("agent desk", "incoming"),
        "robot": {"id": robot.pk, "code": robot.code, "name": robot.name} if robot else None,
        "lot": {"id": lot.pk, "name": lot.name} if lot is not None else None,
        "gate": (
            {
                "id": gate.pk,
                "name": gate.name,
                "direction": gate.direction,
                "direction_words": direction_words(gate.direction),
            }
            if gate is not None
            else None
        ),
        "state": call.state,
        "state_words": state_words(call),
        "failure": str(getattr(call, "failure", "") or ""),
        "taken_by": taken_by,
        "taken_words": taken_words,
        "mine": mine,
    }


def _scene(call: Call, situation: cases.Situation | None) -> dict[str, Any]:
    visit = call.visit
    gate_photo = staff_url(visit, "photo") if visit is not None else None
    car_photo = gate_photo
    if call.gate is not None and call.gate.direction == Direction.EXIT:
        stay = _exit_stay(call, situation)
        if stay is not None:
            car_photo = staff_url(stay, "entry_photo") or None
    environment = _environment(call)
    robot = call.robot
    return {
        "gate_photo": gate_photo,
        "car_photo": car_photo,
        "car_photo_words": _car_photo_words(call, car_photo != gate_photo),
        "environment": environment,
        "screen": live.robot_state(robot) if robot is not None else None,
    }


def _car_photo_words(call: Call, from_entry: bool) -> str:
    """The waiting car's photo: its entry photo at an exit, else the pre-entry/pre-exit read."""
    if from_entry:
        return pgettext("agent desk", "entry photo")
    if call.gate is not None and call.gate.direction == Direction.EXIT:
        return pgettext("agent desk", "pre-exit photo")
    return pgettext("agent desk", "pre-entry photo")


def _exit_stay(call: Call, situation: cases.Situation | None) -> Stay | None:
    if call.stay_id is not None:
        return call.stay
    if situation is not None and situation.standing.assessment.exit_stay is not None:
        return Stay.objects.filter(pk=situation.standing.assessment.exit_stay.pk).first()
    return None


def _environment(call: Call) -> dict[str, Any] | None:
    """The environment camera's latest snapshot at the call's gate (else of this call)."""
    photo: CapturedPhoto | None = None
    if call.gate is not None:
        photo = evidence.latest_scene(call.gate)
    if photo is None:
        photo = (
            CapturedPhoto.objects.filter(call=call, kind=EvidenceKind.SCENE)
            .order_by("-taken_at", "-pk")
            .first()
        )
    if photo is None:
        return None
    zone = live._zone(call.lot.timezone if call.lot else None)
    return {
        "id": photo.pk,
        "url": staff_url(photo, "file"),
        "taken_text": live.local_text(photo.taken_at, zone),
    }


def _photos(call: Call) -> dict[str, list[dict[str, Any]]]:
    zone = live._zone(call.lot.timezone if call.lot else None)
    out: dict[str, list[dict[str, Any]]] = {"id": [], "scene": []}
    for photo in CapturedPhoto.objects.filter(call=call).order_by("taken_at", "pk"):
        key = "id" if photo.kind == EvidenceKind.ID_DOCUMENT else "scene"
        out[key].append(
            {
                "id": photo.pk,
                "url": staff_url(photo, "file"),
                "taken_text": live.local_text(photo.taken_at, zone),
            }
        )
    return out


def _vehicle(call: Call, here: cases.Situation, now: datetime) -> dict[str, Any]:
    assert call.gate is not None
    zone = live._zone(call.gate.lot.timezone)
    assessment = here.standing.assessment
    monthly = assessment.monthly
    status = here.standing.pass_status
    expired_days = 0
    expired_by = ""
    if monthly is not None and now > monthly.valid_until:
        over = now - monthly.valid_until
        expired_days = max(1, over.days)  # whole days, as "expired_by" counts them
        expired_by = duration_words(over)
    stay_view = assessment.situation.stay
    stay: dict[str, Any] | None = None
    if stay_view is not None:
        entered = stay_view.entered_at
        stay = {
            "entered_text": live.local_text(entered, zone) if entered else "—",
            "duration_words": duration_words(now - entered) if entered else "—",
            "entered_as_words": pgettext("agent desk", "monthly pass")
            if stay_view.entered_as == "pass"
            else pgettext("agent desk", "temp"),
            "due": yuan(stay_view.due),
            "owes": stay_view.due > 0,
        }
    return {
        "plate": call.plate,
        "plate_words": call.plate or pgettext("agent desk", "unplated / not read"),
        "has_pass": monthly is not None and status is not PassStatus.NONE,
        "pass_words": pass_words(status, expired_days),
        "pass_status": str(status),
        "valid_from_text": live.local_text(monthly.valid_from, zone) if monthly else "",
        "valid_until_text": live.local_text(monthly.valid_until, zone) if monthly else "",
        "expired_by": expired_by,
        "stay": stay,
        "no_stay_words": (
            pgettext("agent desk", "no entry record found")
            if call.gate.direction == Direction.EXIT and stay is None
            else ""
        ),
        "reason": assessment.scenario.title,
        "scenario": assessment.scenario.id,
    }


def _fuzzy(call: Call, here: cases.Situation, now: datetime) -> dict[str, Any] | None:
    """C6: the manual's sentence and the cars inside with the closest plates."""
    if here.case.scenario != "exit.no_entry_record":
        return None
    assert call.gate is not None
    from eppark.stays import agent_gate

    zone = live._zone(call.gate.lot.timezone)
    found = cases.candidates(call)
    items = []
    for stay in found:
        seen = agent_gate.standing(call.gate, stay.plate, now).assessment.situation.stay
        items.append(
            {
                "stay": stay.pk,
                "plate": stay.plate,
                "entered_text": live.local_text(stay.entered_at, zone),
                "photo": staff_url(stay, "entry_photo"),
                "fee": yuan(seen.due) if seen is not None else "—",
            }
        )
    return {"notice": desk.FUZZY_SEARCH_NOTICE.format(n=len(items)), "candidates": items}


def _actions(call: Call, user: Any, here: cases.Situation | None) -> list[dict[str, Any]]:
    acting = _may_act(call, user)
    allowed = set(desk.allowed(here.case)) if here is not None else {desk.Action.CLOSE}
    return [
        {
            "action": str(action),
            "label": desk.LABELS[action],
            "enabled": acting and action in allowed,
        }
        for action in ACTION_ORDER
    ]


def _may_act(call: Call, user: Any) -> bool:
    return (
        call.agent_id == user.pk
        and call.closed_at is None
        and bool(cases.seat_of(user))
        and (call.lot_id is None or may_act_on_lot(user, call.lot_id))
    )


def call_state(call: Call, user: Any, now: datetime | None = None) -> dict[str, Any]:
    """Everything the desk shows for ``call`` to ``user`` (who may see it: ``cases.may_see``)."""
    now = now or timezone.now()
    here = cases.situation(call, now) if call.gate_id is not None else None
    acting = _may_act(call, user)
    state: dict[str, Any] = {
        "id": call.pk,
        # when this state was read (µs): the page keeps the newest of an HTTP answer and a
        # push that cross on the way
        "stamp": time.time_ns() // 1000,
        "overview": _overview(call, user),
        "open": call.closed_at is None,
        "closed": call.closed_at is not None,
        "can_act": acting,
        "can_take": (
            call.agent_id is None
            and call.closed_at is None
            and bool(cases.seat_of(user))
            and cases.may_see(user, call)
        ),
        "plate": call.plate,
        "started_at": live._iso(call.started_at),
        "scene": _scene(call, here),
        "vehicle": _vehicle(call, here, now) if here is not None else None,
        "actions": _actions(call, user, here),
        "fuzzy": _fuzzy(call, here, now) if here is not None else None,
        "photos": _photos(call),
        "picked_stay": call.stay_id,
    }
    return state


def _with_state(calls: QuerySet[Call]) -> QuerySet[Call]:
    """Calls with what their states need, in one query."""
    return calls.select_related(
        "gate__lot", "robot__lot", "robot__screen", "lot", "agent__staff", "visit", "stay"
    )


def load(pk: int) -> Call | None:
    """A call with what its state needs."""
    return _with_state(Call.objects.filter(pk=pk)).first()


def desk_calls(user: Any) -> list[Call]:
    """The calls on ``user``'s desk: their own open calls, then untaken calls of their lots."""
    mine = cases.open_calls(user)
    allowed = lot_ids(user)
    untaken = Call.objects.filter(
        agent__isnull=True,
        closed_at__isnull=True,
        state__in=[CallState.RINGING, CallState.ANSWERED],
    )
    if allowed is not None:
        untaken = untaken.filter(Q(lot_id__in=allowed))
    else:
        untaken = untaken.filter(lot__isnull=False)
    seen = {call.pk for call in mine}
    extra = [call for call in untaken.order_by("-started_at")[:20] if call.pk not in seen]
    order = [call.pk for call in [*mine, *extra]]
    loaded = _with_state(Call.objects.filter(pk__in=order)).in_bulk()
    return [loaded[pk] for pk in order if pk in loaded and cases.may_see(user, loaded[pk])]


def desk_hello(user: Any, now: datetime | None = None) -> dict[str, Any]:
    """The desk's whole state: the seat, the calls shown and the outbound list."""
    now = now or timezone.now()
    calls = desk_calls(user)
    return {
        "type": "hello",
        "seat": cases.seat_of(user),
        "calls": [call_state(call, user, now) for call in calls],
        "board": board(user, now),
    }


def board(user: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """The outbound list (拥堵列表): gates with a car held up, longest first."""
    now = now or timezone.now()
    items = live.congestion_state(user, now)["items"]
    return [
        {
            "visit": item["visit_id"],
            "gate": item["gate"],
            "lot": item["lot"],
            "plate": item["plate"] or pgettext("agent desk", "unplated"),
            "title": item["title"],
            "expected": item["expected_action_label"],
            "arrived_at": item["arrived_at"],
            "waited_seconds": item["waited_seconds"],
        }
        for item in items
    ]


def robot_calls(user: Any, robot_id: int) -> list[Call]:
    """``user``'s desk calls at one robot."""
    return [call for call in desk_calls(user) if call.robot_id == robot_id]
