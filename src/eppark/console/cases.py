"""The agent desk's actions on a call (manual 2.3.2; scenarios.md §2 B1–C6).

Every action here is authorised (a logged-in agent with a seat, serving the call's
lot, the agent the call is locked to, the case still open), checked against the
domain's rules for the car at the gate (``eppark.domain.desk.allowed``), carried out
in one transaction (the gate's side by ``eppark.stays.agent_gate``: a new visit, the
robot's commands through the outbox, the barrier), audited (``AgentAction``: who,
what, when, which gate, the case before and after) and pushed to the desks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from eppark.accounts.models import Role
from eppark.accounts.scoping import may_act_on_lot
from eppark.calls.models import Call, CallState
from eppark.calls.routing import announce
from eppark.console.models import (
    AbnormalOpen,
    AbnormalOpenEvidence,
    AgentAction,
    CapturedPhoto,
    DeskAction,
    EvidenceKind,
)
from eppark.domain import desk
from eppark.domain.decide import Direction
from eppark.domain.matching import PlateMatcher
from eppark.domain.plates import classify, normalize
from eppark.records.errors import Refused
from eppark.stays import agent_gate, tickets
from eppark.stays.actions import correct_plate
from eppark.stays.models import GateVisit, Resolution, Stay


class Forbidden(Exception):
    """The user may not act on this call (403): the message says why."""


def is_agent(user: Any) -> bool:
    """Whether ``user`` is logged-in staff with the agent role (or an admin)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "staff", None)
    return bool(profile is not None and profile.role in (Role.AGENT, Role.ADMIN))


def seat_of(user: Any) -> str:
    """The user's seat number, or '' when none is bound."""
    seat = getattr(user, "seat", None)
    return seat.number if seat is not None else ""


def may_see(user: Any, call: Call) -> bool:
    """Whether the call may show on ``user``'s desk: an agent serving its lot."""
    if not is_agent(user):
        return False
    if call.lot_id is None:  # a hotline call: only the agent it was routed to
        return bool(call.agent_id == user.pk)
    return may_act_on_lot(user, call.lot_id)


def authorise(user: Any, call: Call) -> None:
    """Refuse unless ``user`` may act on ``call`` now."""
    if not is_agent(user):
        raise Forbidden(_("Only agents can act on calls."))
    if not seat_of(user):
        raise Forbidden(_("Bind a seat number first."))
    if call.lot_id is None or call.gate_id is None:
        raise Forbidden(_("This call is not from a gate."))
    if not may_act_on_lot(user, call.lot_id):
        raise Forbidden(_("You do not serve this lot."))
    if call.agent_id != user.pk:
        if call.agent_id is None:
            raise Forbidden(_("Take the call first."))
        raise Forbidden(_("This call was taken by %(agent)s.") % {"agent": agent_name(call)})
    if call.closed_at is not None:
        raise Refused(_("This case is closed."))


def agent_name(call: Call) -> str:
    """How the desk names the agent a call is locked to."""
    agent = call.agent
    if agent is None:
        return ""
    profile = getattr(agent, "staff", None)
    return (profile.name if profile is not None else "") or agent.get_username()


@dataclass(frozen=True)
class Situation:
    """The car at the call's gate as the desk sees it: the domain's case and its standing."""

    case: desk.Case
    standing: agent_gate.Standing
    plate: str


def situation(call: Call, now: datetime) -> Situation:
    """What the gate would decide now for the call's (possibly corrected) plate."""
    assert call.gate is not None
    seen = agent_gate.standing(call.gate, call.plate, now)
    assessment = seen.assessment
    stay = assessment.situation.stay
    direction = Direction(call.gate.direction)
    case = desk.Case(
        direction=direction,
        scenario=assessment.scenario.id,
        pass_status=seen.pass_status,
        has_plate=bool(call.plate),
        owes=bool(stay is not None and stay.due > 0),
        stay_found=direction is Direction.ENTRY or assessment.exit_stay is not None,
    )
    return Situation(case, seen, call.plate)


def snapshot(call: Call, now: datetime, here: Situation | None = None) -> dict[str, Any]:
    """The case as the audit log keeps it: plate, scenario, the visit and the robot's screen.

    ``here``: the call's situation when the caller has just worked it out.
    """
    out: dict[str, Any] = {"plate": call.plate, "state": call.state, "visit": call.visit_id}
    if call.gate_id is not None:
        out["scenario"] = (here or situation(call, now)).case.scenario
    if call.visit_id is not None:
        visit = GateVisit.objects.filter(pk=call.visit_id).values("opened", "resolution").first()
        out["opened"] = bool(visit and visit["opened"])
    robot = call.robot
    screen = getattr(robot, "screen", None) if robot is not None else None
    if screen is not None:
        out["screen"] = {"voice": screen.voice, "display": screen.display, "light": screen.light}
    return out


def locked(call: Call) -> Call:
    """The call, locked for the action's transaction (its own row only: PostgreSQL locks no
    row on the nullable side of an outer join)."""
    return (
        Call.objects.select_for_update(of=("self",))
        .select_related("gate__lot", "robot", "agent")
        .get(pk=call.pk)
    )


def audit(
    call: Call,
    user: Any,
    action: str,
    before: dict[str, Any],
    now: datetime,
    **detail: Any,
) -> AgentAction:
    assert call.lot_id is not None
    return AgentAction.objects.create(
        agent=user,
        call=call,
        lot_id=call.lot_id,
        gate_id=call.gate_id,
        action=action,
        plate=call.plate,
        detail=detail,
        before=before,
        after=snapshot(call, now),
        at=now,
    )


def _require(action: desk.Action, here: Situation) -> None:
    if action not in desk.allowed(here.case):
        raise Refused(
            _("“%(action)s” does not apply to this car (%(case)s).")
            % {"action": desk.LABELS[action], "case": here.standing.assessment.scenario.title}
        )


def _photo(call: Call) -> str:
    visit = call.visit
    return (visit.photo.name or "") if visit is not None and visit.photo else ""


def _step(
    call: Call,
    user: Any,
    action: desk.Action,
    here: Situation,
    now: datetime,
    *,
    opens: bool,
    resolution: str = Resolution.AGENT,
    screen: desk.Screen | None = None,
    stay_id: int | None = None,
) -> GateVisit:
    assert call.gate is not None
    chosen = (
        screen
        if screen is not None
        else desk.screen(action, here.case, on_pass=here.standing.on_pass)
    )
    scenario = here.standing.assessment.scenario
    visit = agent_gate.act(
        call.gate,
        plate=call.plate,
        photo=_photo(call),
        scenario=scenario.id,
        screen=chosen,
        opens=opens,
        resolution=resolution,
        now=now,
        by=user,
        expected_action="" if opens else str(scenario.expected_action or ""),
        stay_id=stay_id,
    )
    call.visit = visit
    call.save(update_fields=["visit"])
    return visit


# --- the actions ---------------------------------------------------------------------------------


def take(call: Call, user: Any) -> Call:
    """Take a call no agent holds yet (its seat was unbound); locked to ``user`` from now."""
    if not is_agent(user) or not seat_of(user):
        raise Forbidden(_("Bind a seat number first."))
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        if not may_see(user, call):
            raise Forbidden(_("You do not serve this lot."))
        if call.agent_id not in (None, user.pk):
            raise Forbidden(_("This call was taken by %(agent)s.") % {"agent": agent_name(call)})
        if call.agent_id is None:
            before = snapshot(call, now)
            call.agent = user
            call.save(update_fields=["agent"])
            if call.lot_id is not None:
                audit(call, user, DeskAction.TAKE, before, now)
            announce(call)
    return call


def query(call: Call, user: Any, plate: str) -> Call:
    """``查询``: look the car up by a corrected plate (B1, C1, C2d).

    Only the desk changes, except that a car found paid at an exit is let out
    at once (C2d: the paid state opens it).
    """
    corrected = normalize(plate or "")
    if classify(corrected) is None:
        raise Refused(_("“%(plate)s” is not a valid plate.") % {"plate": plate})
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        authorise(user, call)
        before = snapshot(call, now)
        call.plate = corrected
        call.stay = None
        call.save(update_fields=["plate", "stay"])
        here = situation(call, now)
        opened = False
        if here.case.scenario == "exit.temp_paid":
            _step(call, user, desk.Action.OPEN, here, now, opens=True)
            opened = True
        audit(call, user, DeskAction.QUERY, before, now, plate=corrected, opened=opened)
        announce(call)
    return call


def open_gate(call: Call, user: Any) -> Call:
    """``开闸`` (B1, B2a, B5a, C1, C2a, C4a): the car passes as the rules say."""
    return _simple(call, user, desk.Action.OPEN, DeskAction.OPEN, opens=True)


def send_to_display(call: Call, user: Any) -> Call:
    """``发送到显示屏`` (B2b, B3a, B5b, C2b, C5, C6a)."""
    return _simple(call, user, desk.Action.SEND_TO_DISPLAY, DeskAction.SEND_TO_DISPLAY, opens=False)


def quick_pay(call: Call, user: Any) -> Call:
    """``临停快速码推送或出示付款码`` (C2c, C3a, C4b)."""
    return _simple(call, user, desk.Action.QUICK_PAY, DeskAction.QUICK_PAY, opens=False)


def _simple(call: Call, user: Any, action: desk.Action, kind: str, *, opens: bool) -> Call:
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        authorise(user, call)
        here = situation(call, now)
        before = snapshot(call, now, here)
        _require(action, here)
        _step(call, user, action, here, now, opens=opens, stay_id=_picked_stay(call))
        audit(call, user, kind, before, now)
        announce(call)
    return call


def _picked_stay(call: Call) -> int | None:
    return call.stay_id if call.stay_id is not None else None


def visitor_release(call: Call, user: Any, phone: str, reason: str) -> Call:
    """``访客登记放行`` (B4a): the driver's phone and why; the visitor enters as temp."""
    number = tickets.clean_phone(phone)
    why = (reason or "").strip()
    if not why:
        raise Refused(_("Give the reason (原因)."))
    if len(why) > 256:
        raise Refused(_("The reason is too long (at most 256 characters)."))
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        authorise(user, call)
        here = situation(call, now)
        before = snapshot(call, now, here)
        _require(desk.Action.VISITOR_RELEASE, here)
        _step(call, user, desk.Action.VISITOR_RELEASE, here, now, opens=True)
        audit(call, user, DeskAction.VISITOR_RELEASE, before, now, phone=number, reason=why)
        announce(call)
    return call


def candidates(call: Call, k: int = desk.FUZZY_CANDIDATES) -> list[Stay]:
    """C6: the cars inside the lot whose plates are closest to the call's plate."""
    if call.lot_id is None:
        return []
    inside = Stay.objects.filter(lot_id=call.lot_id, exited_at__isnull=True)
    plates = list(inside.values_list("plate", flat=True))
    if not plates:
        return []
    if call.plate:
        ranked = [plate for plate, _score in PlateMatcher(plates).match(call.plate, k=k)]
    else:
        ranked = plates[:k]
    by_plate = {stay.plate: stay for stay in inside.filter(plate__in=ranked)}
    return [by_plate[plate] for plate in ranked if plate in by_plate]


def confirm_vehicle(call: Call, user: Any, stay_id: int) -> Call:
    """``确认为该车辆`` (C6a): the exit's car is the one of this entry record.

    The stay's plate is corrected to the car's (audited on the stay); the fee then
    follows from its entry, and ``发送到显示屏`` asks the driver to pay.
    """
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        authorise(user, call)
        here = situation(call, now)
        before = snapshot(call, now, here)
        _require(desk.Action.CONFIRM_VEHICLE, here)
        offered = {stay.pk: stay for stay in candidates(call)}
        stay = offered.get(stay_id)
        if stay is None:
            raise Refused(_("Pick one of the entry records offered."))
        if call.plate and stay.plate != call.plate:
            correct_plate(
                stay, user, call.plate, _("Confirmed at the exit by the agent desk (C6).")
            )
        elif not call.plate:
            call.plate = stay.plate
        call.stay = stay
        call.save(update_fields=["plate", "stay"])
        audit(call, user, DeskAction.CONFIRM_VEHICLE, before, now, stay=stay.pk)
        announce(call)
    return call


def abnormal_open(
    call: Call,
    user: Any,
    reason: str,
    note: str,
    id_photos: list[int],
    scene_photos: list[int],
) -> AbnormalOpen:
    """``异常开闸`` (B3b, B4b, C3b, C4c, C6b): the log entry with its evidence, then the open.

    The photos were stored as they were taken (``CapturedPhoto``); the log entry cites
    the ones the agent kept, so the evidence exists before the record commits.
    """
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        authorise(user, call)
        assert call.gate is not None
        here = situation(call, now)
        before = snapshot(call, now, here)
        direction = Direction(call.gate.direction)
        kept = list(CapturedPhoto.objects.filter(call=call, pk__in=[*id_photos, *scene_photos]))
        ids = [p for p in kept if p.kind == EvidenceKind.ID_DOCUMENT and p.pk in id_photos]
        scenes = [p for p in kept if p.kind == EvidenceKind.SCENE and p.pk in scene_photos]
        missing = desk.evidence_problem(direction, reason, note, len(ids), len(scenes))
        if missing is not None:
            raise Refused(_MISSING[missing]())
        if len((note or "").strip()) > 256:
            raise Refused(_("The note is too long (at most 256 characters)."))
        visit = _step(
            call,
            user,
            desk.Action.ABNORMAL_OPEN,
            here,
            now,
            opens=True,
            resolution=Resolution.ABNORMAL_OPEN,
        )
        record = AbnormalOpen.objects.create(
            lot_id=call.gate.lot_id,
            gate=call.gate,
            agent=user,
            opened_at=now,
            plate=call.plate,
            reason=reason,
            note=note.strip(),
            visit=visit,
            call=call,
        )
        AbnormalOpenEvidence.objects.bulk_create(
            AbnormalOpenEvidence(
                abnormal_open=record, kind=photo.kind, file=photo.file.name, taken_at=photo.taken_at
            )
            for photo in [*ids, *scenes]
        )
        audit(
            call,
            user,
            DeskAction.ABNORMAL_OPEN,
            before,
            now,
            reason=reason,
            note=note.strip(),
            evidence=[p.pk for p in [*ids, *scenes]],
            abnormal_open=record.pk,
        )
        announce(call)
    return record


_MISSING = {
    "reason": lambda: _("Choose the reason for opening (开闸原因)."),
    "note": lambda: _("Write a note (备注)."),
    "id_photos": lambda: _("An exit's abnormal open needs 1 to 4 ID photos."),
    "scene_photos": lambda: _("An exit's abnormal open needs 1 to 4 scene snapshots."),
}


def close(call: Call, user: Any) -> Call:
    """``关单``: the case is done; the desk returns to idle."""
    now = timezone.now()
    with transaction.atomic():
        call = locked(call)
        if not is_agent(user):
            raise Forbidden(_("Only agents can act on calls."))
        if call.agent_id != user.pk:
            raise Forbidden(_("This call was taken by %(agent)s.") % {"agent": agent_name(call)})
        if call.closed_at is not None:
            return call
        before = snapshot(call, now)
        call.closed_at, call.closed_by = now, user
        call.save(update_fields=["closed_at", "closed_by"])
        if call.lot_id is not None:
            audit(call, user, DeskAction.CLOSE, before, now)
        announce(call)
    return call


STALE = timedelta(minutes=30)
"""A call hung up this long ago that its agent never closed leaves the desk (it stays on record)."""


def open_calls(user: Any) -> list[Call]:
    """The calls on ``user``'s desk: locked to them, not closed and not stale, newest first."""
    return list(
        Call.objects.filter(agent=user, closed_at__isnull=True)
        .exclude(state=CallState.DIALING)
        .exclude(state=CallState.ENDED, ended_at__lt=timezone.now() - STALE)
        .select_related("gate__lot", "robot", "lot")
        .order_by("-started_at")[:20]
    )
