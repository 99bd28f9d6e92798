"""Live pages: a robot's screen as the driver sees it, every gate at a glance, the held-up list.

Each page renders its state on the server and polls a JSON twin of the same
state (``state.json``, ``city.json``, ``congestion.json``) to update itself.
A user sees only the lots they serve (``restrict``); pages need a staff login,
and the JSON twins answer 403/404 JSON instead of redirecting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from eppark.accounts.scoping import restrict
from eppark.devices.models import LPR_VENDORS, Camera, Robot, RobotScreen
from eppark.domain.scenarios import SCENARIOS
from eppark.evidence import links as evidence_links
from eppark.lots.models import Gate, Lot
from eppark.stays.congestion import held_up
from eppark.stays.models import GateVisit

LIGHTS = ("green", "yellow", "red")
KINDS = ("face", "qr", "text", "vehicles")

EXPECTED_ACTIONS: dict[str, Any] = {
    "unplated_entry_scan": gettext_lazy("scan the unplated-entry QR code"),
    "monthly_order": gettext_lazy("renew the monthly pass (scan the QR code)"),
    "temp_order": gettext_lazy("pay the parking fee (scan the QR code)"),
    "unplated_exit_order": gettext_lazy("pay the unplated exit (scan the QR code)"),
    "leave": gettext_lazy("drive away"),
    "agent": gettext_lazy("call an agent"),
}

View = Callable[..., HttpResponse]


# --- helpers ------------------------------------------------------------------------------------


def _zone(name: str | None) -> tzinfo:
    """A lot's time zone, else the site's."""
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _iso(value: datetime | None, zone: tzinfo | None = None) -> str | None:
    """An aware time as ISO 8601 with its offset (in ``zone``), or None."""
    if value is None:
        return None
    return timezone.localtime(value, zone).isoformat()


def waited_text(seconds: int) -> str:
    """A waiting time as m:ss, or h:mm:ss from an hour on."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def qr_svg(text: str) -> str | None:
    """The QR code of ``text`` as inline SVG (black on white, quiet zone); None if it won't fit."""
    try:
        code = segno.make(text, micro=False)
    except (segno.DataOverflowError, ValueError):
        return None
    svg: str = code.svg_inline(
        border=4, omitsize=True, svgclass="qr", lineclass=None, dark="#000", light="#fff"
    )
    return svg


def _safe_url(value: Any) -> str | None:
    """An http(s) or site-relative URL, else None (nothing else goes into an <img src>)."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("http://", "https://")) or (
        value.startswith("/") and not value.startswith("//")
    ):
        return value
    return None


def _photo_url(value: Any) -> str | None:
    """A car's photo for the mirror page: our signed link becomes the staff URL of its file.

    The robot's link may have expired long ago; staff see the same photo through
    the staff view, which checks their lot. Any other URL is kept only if safe.
    """
    url = _safe_url(value)
    return evidence_links.staff_path_for(url) or url if url else None


def _text(value: Any) -> str:
    """A display field as text ("" when missing)."""
    return value if isinstance(value, str) else ""


def clean_display(raw: Any) -> dict[str, Any] | None:
    """The screen's display object with only the fields of its kind, or None if unusable."""
    if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
        return None
    kind = raw["kind"]
    out: dict[str, Any] = {"kind": kind}
    if kind == "face":
        out["face"] = _text(raw.get("face")) or "smile"
    elif kind == "qr":
        out["qr"] = _text(raw.get("qr"))
    elif kind == "vehicles":
        vehicles = raw.get("vehicles")
        out["vehicles"] = [
            {
                "plate": _text(item.get("plate")),
                "photo_url": _photo_url(item.get("photo_url")),
                "entered_at": _text(item.get("entered_at")) or None,
            }
            for item in (vehicles if isinstance(vehicles, list) else [])
            if isinstance(item, dict)
        ]
    caption = _text(raw.get("text"))
    if caption or kind == "text":
        out["text"] = caption
    return out


def display_summary(display: dict[str, Any] | None) -> str:
    """A display in a few words, for the city overview."""
    if display is None:
        return _("no screen reported")
    kind = display["kind"]
    if kind == "face":
        return _("smile")
    if kind == "qr":
        return _("QR code")
    if kind == "text":
        return str(display.get("text", ""))
    count = len(display.get("vehicles", []))
    return _("%(count)d cars of the group") % {"count": count}


def _screen(robot: Robot) -> RobotScreen | None:
    """The robot's reported screen, if it ever reported one."""
    try:
        return robot.screen
    except RobotScreen.DoesNotExist:
        return None


def band(robot: Robot, light: str) -> str:
    """The light band's colour as shown: the reported light, grey when offline or unknown."""
    return light if robot.online and light in LIGHTS else "grey"


def robot_state(robot: Robot) -> dict[str, Any]:
    """What a robot shows now: the JSON twin of its page."""
    zone = _zone(robot.lot.timezone)
    screen = _screen(robot)
    display = clean_display(screen.display) if screen else None
    light = screen.light if screen else ""
    state: dict[str, Any] = {
        "code": robot.code,
        "name": robot.name,
        "online": robot.online,
        "last_seen_at": _iso(robot.last_seen_at, zone),
        "voice": screen.voice if screen else "",
        "display": display,
        "light": light,
        "band": band(robot, light),
        "since": _iso(screen.since, zone) if screen else None,
        "cmd_id": screen.cmd_id if screen else "",
    }
    if display is not None and display["kind"] == "qr" and display["qr"]:
        state["qr_svg"] = qr_svg(display["qr"])
    return state


def _visible_robot(user: Any, code: str) -> Robot | None:
    """The robot with ``code`` if ``user`` serves its lot."""
    robots = Robot.objects.select_related("lot", "gate", "screen")
    return restrict(robots, user).filter(code=code).first()


def _strings() -> dict[str, str]:
    """UI words the page script needs, in the active language."""
    return {
        "online": _("online"),
        "offline": _("offline"),
        "unplated": _("unplated"),
        "none_waiting": _("no car waiting"),
        "no_robot": _("no robot"),
        "no_camera": _("no plate camera"),
        "connection_lost": _("connection lost, retrying…"),
        "entered": _("entered"),
        "no_photo": _("no photo"),
    }


def json_staff_only(view: View) -> View:
    """A JSON endpoint for active staff: anyone else gets a 403 JSON answer, not a redirect."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return JsonResponse({"error": "forbidden"}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "not found"}, status=404)


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """Render a live page with the script's strings."""
    return render(request, template, {"strings": _strings(), **context})


# --- the robot ----------------------------------------------------------------------------------


@never_cache
@staff_member_required
def robot_page(request: HttpRequest, code: str) -> HttpResponse:
    """The driver's view of one robot: display, light band, voice caption, online state."""
    robot = _visible_robot(request.user, code)
    if robot is None:
        raise Http404("no such robot")
    state = robot_state(robot)
    zone = _zone(robot.lot.timezone)
    screen = _screen(robot)
    return _page(
        request,
        "console/robot.html",
        {
            "robot": robot,
            "state": state,
            "display": state["display"],
            "zone": str(zone),
            "since_text": local_text(screen.since if screen else None, zone),
            "vehicles": _vehicles_for_template(state["display"], zone),
        },
    )


def local_text(value: datetime | None, zone: tzinfo) -> str:
    """A time as the page shows it (lot time zone), e.g. 2025-05-01 08:30:00; "" for none."""
    return timezone.localtime(value, zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _parse(value: Any) -> datetime | None:
    """An ISO 8601 time from a display object, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else None


def _vehicles_for_template(display: dict[str, Any] | None, zone: tzinfo) -> list[dict[str, Any]]:
    """The listed cars with their entry time formatted for the template."""
    if display is None or display["kind"] != "vehicles":
        return []
    return [
        {**vehicle, "entered_text": local_text(_parse(vehicle["entered_at"]), zone)}
        for vehicle in display["vehicles"]
    ]


@never_cache
@json_staff_only
def robot_state_json(request: HttpRequest, code: str) -> HttpResponse:
    """The robot page's JSON twin."""
    robot = _visible_robot(request.user, code)
    if robot is None:
        return _not_found()
    return JsonResponse(robot_state(robot), json_dumps_params={"ensure_ascii": False})


# --- the city -----------------------------------------------------------------------------------


def city_state(user: Any, now: datetime) -> dict[str, Any]:
    """Every gate of the user's lots, grouped by lot, with robot, camera and waiting car."""
    lots = list(restrict(Lot.objects.order_by("name", "code"), user, "pk"))
    gates = (
        Gate.objects.filter(lot__in=lots)
        .select_related("robot__screen", "robot__lot")
        .prefetch_related(
            Prefetch(
                "cameras",
                queryset=Camera.objects.filter(vendor__in=list(LPR_VENDORS)).order_by("pk"),
                to_attr="plate_cameras",
            )
        )
        .order_by("direction", "code")
    )
    waiting: dict[int, GateVisit] = {}
    open_visits = GateVisit.objects.filter(gate__lot__in=lots, resolved_at__isnull=True)
    for visit in open_visits.order_by("arrived_at"):
        waiting[visit.gate_id] = visit  # the latest arrival wins, as in waiting_at()
    by_lot: dict[int, list[dict[str, Any]]] = {lot.pk: [] for lot in lots}
    for gate in gates:
        by_lot[gate.lot_id].append(_gate_state(gate, waiting.get(gate.pk), now))
    return {
        "now": _iso(now),
        "lots": [
            {
                "id": lot.pk,
                "code": lot.code,
                "name": lot.name,
                "capacity": lot.capacity,
                "free_spaces": lot.free_spaces(),
                "visitors_allowed": lot.visitors_allowed,
                "gates": by_lot[lot.pk],
            }
            for lot in lots
        ],
    }


def _gate_state(gate: Gate, visit: GateVisit | None, now: datetime) -> dict[str, Any]:
    """One gate's row on the city page."""
    try:
        robot: Robot | None = gate.robot
    except Robot.DoesNotExist:
        robot = None
    robot_info: dict[str, Any] | None = None
    if robot is not None:
        screen = _screen(robot)
        display = clean_display(screen.display) if screen else None
        light = screen.light if screen else ""
        robot_info = {
            "code": robot.code,
            "name": robot.name,
            "online": robot.online,
            "light": light,
            "band": band(robot, light),
            "voice": screen.voice if screen else "",
            "summary": display_summary(display),
            "url": reverse("console:robot", args=[robot.code]),
        }
    cameras: list[Camera] = getattr(gate, "plate_cameras", [])
    return {
        "id": gate.pk,
        "code": gate.code,
        "name": gate.name,
        "direction": gate.direction,
        "direction_label": gate.get_direction_display(),
        "robot": robot_info,
        "cameras": [{"name": str(camera), "online": camera.online} for camera in cameras],
        "waiting": _visit_state(visit, now) if visit is not None else None,
    }


def _visit_state(visit: GateVisit, now: datetime) -> dict[str, Any]:
    """A waiting car: plate, scenario, since when and how long."""
    scenario = SCENARIOS.get(visit.scenario)
    decision = visit.decision if isinstance(visit.decision, dict) else {}
    voice = decision.get("voice") if isinstance(decision.get("voice"), str) else None
    waited = int((now - visit.arrived_at).total_seconds())
    return {
        "visit_id": visit.pk,
        "plate": visit.plate,
        "scenario": visit.scenario,
        "title": scenario.title if scenario else visit.scenario,
        "voice": voice or (scenario.voice if scenario else ""),
        "expected_action": visit.expected_action,
        "expected_action_label": str(
            EXPECTED_ACTIONS.get(visit.expected_action, visit.expected_action)
        ),
        "arrived_at": _iso(visit.arrived_at),
        "waited_seconds": max(0, waited),
        "waited": waited_text(waited),
    }


@never_cache
@staff_member_required
def city_page(request: HttpRequest) -> HttpResponse:
    """Every gate of the city at a glance."""
    return _page(request, "console/city.html", {"city": city_state(request.user, timezone.now())})


@never_cache
@json_staff_only
def city_json(request: HttpRequest) -> HttpResponse:
    """The city page's JSON twin."""
    return JsonResponse(
        city_state(request.user, timezone.now()), json_dumps_params={"ensure_ascii": False}
    )


# --- the held-up list ---------------------------------------------------------------------------


def congestion_state(user: Any, now: datetime) -> dict[str, Any]:
    """Cars held up past the 1-minute rule at the user's gates, longest first."""
    items = []
    for visit in held_up(now, user).select_related("gate__robot"):
        item = _visit_state(visit, now)
        try:
            robot_url = reverse("console:robot", args=[visit.gate.robot.code])
        except Robot.DoesNotExist:
            robot_url = None
        item.update(
            gate={"id": visit.gate_id, "name": visit.gate.name},
            lot={"id": visit.lot_id, "name": visit.lot.name},
            robot_url=robot_url,
        )
        items.append(item)
    return {"now": _iso(now), "items": items}


@never_cache
@staff_member_required
def congestion_page(request: HttpRequest) -> HttpResponse:
    """The agents' outbound call list: gates with a car held up, longest first."""
    state = congestion_state(request.user, timezone.now())
    return _page(request, "console/congestion.html", {"congestion": state})


@never_cache
@json_staff_only
def congestion_json(request: HttpRequest) -> HttpResponse:
    """The held-up list's JSON twin."""
    return JsonResponse(
        congestion_state(request.user, timezone.now()), json_dumps_params={"ensure_ascii": False}
    )
