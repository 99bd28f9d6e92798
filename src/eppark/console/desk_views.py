"""The agent desk's pages and actions over HTTP (新版智能客服, manual 2.3.2).

``GET /console/`` is the desk (agents only; other staff get a page saying why).
Every action is a POST (JSON or form, CSRF checked) to
``/console/desk/calls/<id>/<action>/`` and answers with the call's new state, so
the page updates before the push arrives. Refusals answer in words: 403
``{"error": …}`` when the user may not act (another lot, another agent's call,
no seat), 400 when the action does not apply or the input is wrong.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from eppark.accounts.scoping import may_act_on_lot, restrict
from eppark.calls import callout
from eppark.calls.models import Call
from eppark.console import cases, desk_state, evidence
from eppark.console.models import AgentAction, DeskAction, Seat
from eppark.domain import desk
from eppark.lots.models import Gate, Lot
from eppark.records.errors import Refused

View = Callable[..., HttpResponse]
SEAT_PATTERN = re.compile(r"^[0-9A-Za-z_-]{1,8}$")


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _error(message: str, status: int) -> JsonResponse:
    return _json({"error": message}, status)


def _payload(request: HttpRequest) -> dict[str, Any]:
    """The POST's fields, from a JSON body or a form (lists kept for the photo choices)."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(pgettext("agent desk", "The request is not valid JSON.")) from exc
        if not isinstance(data, dict):
            raise Refused(pgettext("agent desk", "The request is not valid JSON."))
        return data
    out: dict[str, Any] = {}
    for key in request.POST:
        values = request.POST.getlist(key)
        out[key] = values if key.endswith("photos") or len(values) > 1 else values[0]
    return out


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, (str, int)):
        raise Refused(pgettext("agent desk", "“%(field)s” must be text.") % {"field": key})
    return str(value)


def _ids(data: dict[str, Any], key: str) -> list[int]:
    value = data.get(key) or []
    if isinstance(value, (str, int)):
        value = [value]
    if not isinstance(value, list):
        raise Refused(pgettext("agent desk", "Choose the photos to keep."))
    out = []
    for item in value:
        try:
            out.append(int(item))
        except (TypeError, ValueError) as exc:
            raise Refused(pgettext("agent desk", "Choose the photos to keep.")) from exc
    return out


def agent_json(view: View) -> View:
    """A desk action: a logged-in agent, else 403 JSON; refusals become JSON in words."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not cases.is_agent(request.user):
            return _error(pgettext("agent desk", "Only agents can use the desk."), 403)
        try:
            return view(request, *args, **kwargs)
        except cases.Forbidden as exc:
            return _error(str(exc), 403)
        except Refused as exc:
            return _error(exc.message, 400)

    return wrapped


# --- the page ------------------------------------------------------------------------------------


@never_cache
@require_GET
def desk_page(request: HttpRequest) -> HttpResponse:
    """The desk: the calls (pushed over the WebSocket) or, with none, its home."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not cases.is_agent(request.user):
        return render(request, "console/desk_forbidden.html", {"strings": {}}, status=403)
    hello = desk_state.desk_hello(request.user, timezone.now())
    return render(
        request,
        "console/desk.html",
        {
            "hello": hello,
            "strings": desk_strings(),
            "reasons": [(str(r), label) for r, label in desk.REASON_LABELS.items()],
            "max_photos": desk.MAX_PHOTOS,
        },
    )


@never_cache
@require_GET
@agent_json
def desk_json(request: HttpRequest) -> HttpResponse:
    """The desk's whole state, as the socket's ``hello`` sends it."""
    return _json(desk_state.desk_hello(request.user, timezone.now()))


def desk_strings() -> dict[str, str]:
    """Words the desk's script needs, in the active language."""
    return {
        "connection_lost": pgettext("agent desk", "connection lost, reconnecting…"),
        "no_calls": pgettext("agent desk", "No call right now."),
        "no_photo": pgettext("agent desk", "no photo"),
        "no_snapshot": pgettext("agent desk", "no snapshot yet"),
        "no_screen": pgettext("agent desk", "no screen reported"),
        "online": pgettext("agent desk", "online"),
        "offline": pgettext("agent desk", "offline"),
        "take": pgettext("agent desk", "Take the call"),
        "taken_by": pgettext("agent desk", "taken by %(agent)s"),
        "waiting": pgettext("agent desk", "waiting"),
        "calling": pgettext("agent desk", "calling…"),
        "call_placed": pgettext("agent desk", "Calling the robot; the desk opens when it answers."),
        "done": pgettext("agent desk", "Done."),
        "error": pgettext("agent desk", "Something went wrong; please try again."),
        "seat_bound": pgettext("agent desk", "Seat %(seat)s is yours."),
        "no_board": pgettext("agent desk", "No car is held up right now."),
        "voice": pgettext("agent desk", "Voice"),
        "unplated": pgettext("agent desk", "unplated"),
        "entered": pgettext("agent desk", "entered"),
        "fee": pgettext("agent desk", "fee"),
        "call": pgettext("agent desk", "Call"),
        "free_spaces": pgettext("agent desk", "Free spaces"),
        "visitors": pgettext("agent desk", "Visitors"),
        "fee_rule": pgettext("agent desk", "Fee rule"),
        "contact": pgettext("agent desk", "Emergency contact"),
        "no_lot": pgettext("agent desk", "No lot of yours matches."),
    }


@never_cache
@require_GET
@agent_json
def lots_json(request: HttpRequest) -> HttpResponse:
    """``搜索车场``: the lots the agent serves whose name (or code) holds the words typed."""
    words = (request.GET.get("q") or "").strip()[:64]
    if not words:
        return _json({"lots": []})
    found = restrict(Lot.objects.all(), request.user, "pk").filter(
        Q(name__icontains=words) | Q(code__icontains=words)
    )
    return _json({"lots": [lot_card(lot) for lot in found.order_by("name", "code")[:10]]})


def lot_card(lot: Lot) -> dict[str, Any]:
    """A lot as the home's card shows it: free spaces, visitors, the fee rule, who to call."""
    contact = " ".join(
        part for part in (lot.emergency_contact_name, lot.emergency_contact_phone) if part
    )
    return {
        "id": lot.pk,
        "name": lot.name,
        "free_spaces": lot.free_spaces(),
        "visitors_allowed": lot.visitors_allowed,
        "visitors_words": (
            pgettext("agent desk", "visitors may enter")
            if lot.visitors_allowed
            else pgettext("agent desk", "no visitors (temp entry needs confirmation)")
        ),
        "tariff_text": lot.tariff_text,
        "contact": contact or "—",
    }


# --- the seat ------------------------------------------------------------------------------------


@never_cache
@require_POST
@agent_json
def bind_seat(request: HttpRequest) -> HttpResponse:
    """``坐席号``: bind the agent to a seat (or change it); a seat bound to another is refused."""
    number = _text(_payload(request), "seat").strip()
    if not SEAT_PATTERN.match(number):
        raise Refused(pgettext("agent desk", "A seat number is 1 to 8 letters or digits."))
    user: Any = request.user
    with transaction.atomic():
        seat = Seat.objects.select_for_update().filter(number=number).first()
        if seat is not None and seat.agent_id not in (None, user.pk):
            raise Refused(
                pgettext("agent desk", "Seat %(seat)s is bound to %(agent)s.")
                % {"seat": number, "agent": desk_state.agent_display(seat.agent)}
            )
        old = Seat.objects.select_for_update().filter(agent=user).exclude(number=number).first()
        previous = old.number if old is not None else ""
        if old is not None:
            old.agent = None
            old.save(update_fields=["agent"])
        try:
            with transaction.atomic():
                if seat is None:
                    seat = Seat.objects.create(number=number, agent=user)
                elif seat.agent_id is None:
                    seat.agent = user
                    seat.save(update_fields=["agent"])
        except IntegrityError as exc:
            raise Refused(
                pgettext("agent desk", "Seat %(seat)s was just taken.") % {"seat": number}
            ) from exc
        if previous != number:
            LogEntry.objects.create(
                user_id=user.pk,
                content_type=ContentType.objects.get_for_model(Seat),
                object_id=str(seat.pk),
                object_repr=str(seat)[:200],
                action_flag=CHANGE,
                change_message=json.dumps(
                    [{"changed": {"fields": ["agent"]}}, {"seat": {"from": previous, "to": number}}]
                ),
            )
    return _json({"ok": True, "seat": number, "previous": previous})


# --- the actions on a call -----------------------------------------------------------------------


def _call(pk: int, user: Any) -> Call:
    call = desk_state.load(pk)
    if call is None:
        raise cases.Forbidden(pgettext("agent desk", "There is no such call."))
    if not cases.may_see(user, call):
        raise cases.Forbidden(pgettext("agent desk", "You do not serve this lot."))
    return call


def _answer(pk: int, user: Any, **extra: Any) -> JsonResponse:
    call = desk_state.load(pk)
    assert call is not None
    return _json({"ok": True, "call": desk_state.call_state(call, user, timezone.now()), **extra})


def _action(
    run: Callable[[Call, Any, dict[str, Any]], Any],
) -> View:
    @never_cache
    @require_POST
    @agent_json
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        call = _call(pk, request.user)
        data = _payload(request)
        run(call, request.user, data)
        return _answer(pk, request.user)

    return view


take = _action(lambda call, user, data: cases.take(call, user))
query = _action(lambda call, user, data: cases.query(call, user, _text(data, "plate")))
open_gate = _action(lambda call, user, data: cases.open_gate(call, user))
send_to_display = _action(lambda call, user, data: cases.send_to_display(call, user))
quick_pay = _action(lambda call, user, data: cases.quick_pay(call, user))
visitor_release = _action(
    lambda call, user, data: cases.visitor_release(
        call, user, _text(data, "phone"), _text(data, "reason")
    )
)
close = _action(lambda call, user, data: cases.close(call, user))


def _confirm(call: Call, user: Any, data: dict[str, Any]) -> Any:
    try:
        stay = int(_text(data, "stay"))
    except ValueError as exc:
        raise Refused(pgettext("agent desk", "Pick one of the entry records offered.")) from exc
    return cases.confirm_vehicle(call, user, stay)


confirm_vehicle = _action(_confirm)


def _abnormal(call: Call, user: Any, data: dict[str, Any]) -> Any:
    return cases.abnormal_open(
        call,
        user,
        _text(data, "reason"),
        _text(data, "note"),
        _ids(data, "id_photos"),
        _ids(data, "scene_photos"),
    )


abnormal_open = _action(_abnormal)


def _capture(name: str) -> Callable[[Call, Any, dict[str, Any]], Any]:
    def run(call: Call, user: Any, data: dict[str, Any]) -> Any:
        if name == "capture_scene":
            return evidence.capture_scene(call, user)
        if data.get("count") not in (None, ""):
            try:
                count = int(_text(data, "count"))
            except ValueError as exc:
                raise Refused(pgettext("agent desk", "Ask for 1 to 4 ID photos.")) from exc
            return evidence.capture_id(call, user, count)
        return evidence.capture_id(call, user)

    return run


capture_id = _action(_capture("capture_id"))
capture_scene = _action(_capture("capture_scene"))


# --- outbound ------------------------------------------------------------------------------------


@never_cache
@require_POST
@agent_json
def call_out(request: HttpRequest) -> HttpResponse:
    """``呼叫``: dial the robot at a gate through the call centre (manual 2.3.3)."""
    user: Any = request.user
    data = _payload(request)
    try:
        gate_id = int(_text(data, "gate"))
    except ValueError as exc:
        raise Refused(pgettext("agent desk", "Choose a gate to call.")) from exc
    seat = cases.seat_of(user)
    if not seat:
        raise cases.Forbidden(pgettext("agent desk", "Bind a seat number first."))
    gate = Gate.objects.select_related("lot").filter(pk=gate_id).first()
    if gate is None:
        raise Refused(pgettext("agent desk", "There is no such gate."))
    if not may_act_on_lot(user, gate.lot_id):
        raise cases.Forbidden(pgettext("agent desk", "You do not serve this lot."))
    with transaction.atomic():
        call = callout.dial(gate, user, seat)
        AgentAction.objects.create(
            agent=user,
            call=call,
            lot_id=gate.lot_id,
            gate=gate,
            action=DeskAction.CALL_OUT,
            detail={"number": call.callee, "request_id": call.request_id},
            before={},
            after={"state": call.state},
            at=timezone.now(),
        )
    return _answer(
        call.pk,
        user,
        message=pgettext("agent desk", "Calling the robot; the desk opens when it answers."),
    )
