"""Records people rely on cannot be quietly rewritten (issue 9, item 3).

Gate visits, plate reads and the open-gate log are read-only for everyone; stays and
orders change only through named actions that ask for a reason and leave a history entry
(who, when, before, after) shown per row; amounts, scenarios, expected actions and
decisions read in words.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.console.models import AbnormalOpen
from eppark.devices.models import PlateRead
from eppark.domain.tariff import compute_fee, parse_rule
from eppark.orders import actions as order_actions
from eppark.orders.models import Order, OrderState
from eppark.records.errors import Refused
from eppark.stays import actions as stay_actions
from eppark.stays.models import GateVisit, Stay, StayState
from tests.integration.factories import TARIFF, LotWorld, build_lot, staff
from tests.integration.test_gate_loop import Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    for lot in (a, b):
        PlateRead.objects.create(
            camera=lot.camera,
            read_id=f"r-{lot.lot.code}",
            plate=lot.stay.plate,
            raw_plate=lot.stay.plate,
            received_at=timezone.now(),
        )
    users = {
        "superuser": root,
        "admin": staff("admin-1", Role.ADMIN, []),
        "operator": staff("op-caike", Role.OPERATOR, [a.lot]),
        "agent": staff("kf-001", Role.AGENT, [a.lot]),
    }
    return {"a": a, "b": b, "users": users}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def temp_stay(world: LotWorld, plate: str = "粤B12345", hours: float = 2) -> Stay:
    return Stay.objects.create(
        lot=world.lot,
        plate=plate,
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=hours),
        entry_gate=world.entry,
    )


def snapshot(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def fresh(obj: Model) -> dict[str, Any]:
    return snapshot(type(obj)._default_manager.get(pk=obj.pk))


# -- read-only records ---------------------------------------------------------------------------


def read_only_records(world: dict[str, Any]) -> list[tuple[str, Model, dict[str, Any]]]:
    a: LotWorld = world["a"]
    return [
        ("stays_gatevisit", GateVisit.objects.get(lot=a.lot), {"plate": "粤B00000"}),
        ("devices_plateread", PlateRead.objects.get(camera=a.camera), {"plate": "粤B00000"}),
        (
            "console_abnormalopen",
            a.abnormal_open,
            {"note": "改写", "reason": "other", "plate": "粤B00000"},
        ),
        ("stays_stay", a.stay, {"plate": "粤B00000", "total": "1", "state": "left"}),
        ("orders_order", a.order, {"amount": "1", "state": "refunded"}),
    ]


@pytest.mark.parametrize("role", ["superuser", "admin", "operator"])
def test_records_refuse_add_change_and_delete_for_everyone(
    world: dict[str, Any], role: str
) -> None:
    client = client_for(world["users"][role])
    for name, record, post in read_only_records(world):
        before = fresh(record)
        count = type(record)._default_manager.count()
        assert client.get(reverse(f"admin:{name}_add")).status_code == 403, name
        change = reverse(f"admin:{name}_change", args=[record.pk])
        page = client.get(change)
        assert page.status_code == 200, name
        assert 'name="_save"' not in page.content.decode(), name
        assert client.post(change, post).status_code == 403, name
        delete = reverse(f"admin:{name}_delete", args=[record.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403, name
        changelist = reverse(f"admin:{name}_changelist")
        listing = client.get(changelist).content.decode()
        assert "delete_selected" not in listing, name
        client.post(
            changelist,
            {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
        )
        assert type(record)._default_manager.count() == count, name
        assert fresh(record) == before, name


def test_agents_cannot_add_abnormal_opens_through_the_back_office(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["agent"])
    count = AbnormalOpen.objects.count()
    response = client.post(
        reverse("admin:console_abnormalopen_add"),
        {"lot": world["a"].lot.pk, "gate": world["a"].exit.pk, "note": "x", "reason": "other"},
    )
    assert response.status_code == 403
    assert AbnormalOpen.objects.count() == count


# -- named actions: close by hand ----------------------------------------------------------------


def test_closing_by_hand_needs_a_reason_and_changes_nothing_without_one(
    world: dict[str, Any],
) -> None:
    stay = temp_stay(world["a"])
    client = client_for(world["users"]["operator"])
    url = reverse("admin:stays_stay_close", args=[stay.pk])
    at = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"exited_at": at, "reason": "   "})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert Stay.objects.get(pk=stay.pk).exited_at is None
    assert not Stay.history.filter(id=stay.pk).exists()
    with pytest.raises(Refused):
        stay_actions.close_by_hand(stay, world["users"]["operator"], timezone.now(), "")
    assert Stay.objects.get(pk=stay.pk).exited_at is None


def test_closing_by_hand_charges_the_tariff_and_is_audited(world: dict[str, Any]) -> None:
    stay = temp_stay(world["a"], hours=2)
    operator = world["users"]["operator"]
    client = client_for(operator)
    page = client.get(reverse("admin:stays_stay_change", args=[stay.pk])).content.decode()
    assert reverse("admin:stays_stay_close", args=[stay.pk]) in page
    exited = timezone.localtime().replace(second=0, microsecond=0)
    response = client.post(
        reverse("admin:stays_stay_close", args=[stay.pk]),
        {"exited_at": exited.strftime("%Y-%m-%dT%H:%M"), "reason": "车辆尾随前车离场"},
    )
    assert response.status_code == 302
    closed = Stay.objects.get(pk=stay.pk)
    expected = compute_fee(parse_rule(TARIFF), stay.entered_at, exited).total
    assert expected > 0
    assert closed.exited_at == exited
    assert closed.state == StayState.CLOSED_BY_HAND
    assert closed.total == expected
    assert closed.closed_by == operator
    last = Stay.history.filter(id=stay.pk).latest()
    assert last.history_user == operator
    assert last.history_change_reason == "车辆尾随前车离场"
    assert Stay.history.filter(id=stay.pk).count() == 2  # as recorded, then the change

    history = client.get(reverse("admin:stays_stay_history", args=[stay.pk])).content.decode()
    assert "车辆尾随前车离场" in history
    assert "op-caike" in history
    assert "在场" in history  # the state before, in words
    assert "手动结束" in history  # and after
    assert f"¥{expected // 100}.{expected % 100:02d}" in history
    assert "¥0.00" in history


def test_closing_several_stays_at_once_asks_one_reason_first(world: dict[str, Any]) -> None:
    stays = [temp_stay(world["a"], plate="粤B12345"), temp_stay(world["a"], plate="粤B12346")]
    operator = world["users"]["operator"]
    client = client_for(operator)
    changelist = reverse("admin:stays_stay_changelist")
    selected = {"action": "close_by_hand", "_selected_action": [s.pk for s in stays]}
    form = client.post(changelist, selected)
    assert form.status_code == 200
    assert 'name="reason"' in form.content.decode()
    assert all(Stay.objects.get(pk=s.pk).exited_at is None for s in stays)
    at = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    again = client.post(changelist, {**selected, "apply": "1", "exited_at": at, "reason": ""})
    assert again.status_code == 200
    assert all(Stay.objects.get(pk=s.pk).exited_at is None for s in stays)
    done = client.post(changelist, {**selected, "apply": "1", "exited_at": at, "reason": "盘点"})
    assert done.status_code == 302
    for stay in stays:
        closed = Stay.objects.get(pk=stay.pk)
        assert closed.state == StayState.CLOSED_BY_HAND
        assert Stay.history.filter(id=stay.pk).latest().history_change_reason == "盘点"
    agent = client_for(world["users"]["agent"])
    listing = agent.get(changelist).content.decode()
    assert "close_by_hand" not in listing


def test_a_closed_stay_cannot_be_closed_again(world: dict[str, Any]) -> None:
    stay = temp_stay(world["a"])
    user = world["users"]["operator"]
    stay_actions.close_by_hand(stay, user, timezone.now(), "尾随")
    before = fresh(stay)
    response = client_for(user).post(
        reverse("admin:stays_stay_close", args=[stay.pk]),
        {"exited_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "reason": "再次"},
    )
    assert response.status_code == 200
    assert "已结束" in response.content.decode()
    assert fresh(stay) == before
    with pytest.raises(Refused):
        stay_actions.close_by_hand(stay, user, timezone.now(), "再次")


def test_closing_in_the_future_is_refused(world: dict[str, Any]) -> None:
    stay = temp_stay(world["a"])
    with pytest.raises(Refused):
        stay_actions.close_by_hand(
            stay, world["users"]["operator"], timezone.now() + timedelta(hours=1), "x"
        )
    assert Stay.objects.get(pk=stay.pk).exited_at is None


# -- named actions: correct a plate --------------------------------------------------------------


def test_correcting_a_plate_is_audited_and_checked(world: dict[str, Any]) -> None:
    stay = temp_stay(world["a"], plate="粤B1234S")
    operator = world["users"]["operator"]
    client = client_for(operator)
    url = reverse("admin:stays_stay_correct_plate", args=[stay.pk])
    assert client.post(url, {"plate": "粤B12345"}).status_code == 200  # no reason
    assert client.post(url, {"plate": "not a plate", "reason": "误识别"}).status_code == 200
    assert Stay.objects.get(pk=stay.pk).plate == "粤B1234S"
    response = client.post(url, {"plate": "粤b·12345", "reason": "S 误识别为 5"})
    assert response.status_code == 302
    assert Stay.objects.get(pk=stay.pk).plate == "粤B12345"
    last = Stay.history.filter(id=stay.pk).latest()
    assert (last.history_user, last.history_change_reason) == (operator, "S 误识别为 5")
    history = client.get(reverse("admin:stays_stay_history", args=[stay.pk])).content.decode()
    assert "粤B1234S" in history
    assert "粤B12345" in history


def test_what_the_gate_changed_between_two_corrections_is_not_put_down_to_a_person(
    world: dict[str, Any],
) -> None:
    stay = temp_stay(world["a"], plate="粤B1234S")
    operator = world["users"]["operator"]
    stay_actions.correct_plate(stay, operator, "粤B12345", "第一次更正")
    # the gate loop closes the stay in raw SQL: no history row of its own
    Stay.objects.filter(pk=stay.pk).update(
        exited_at=timezone.now(), state=StayState.LEFT, total=800
    )
    stay_actions.correct_plate(stay, operator, "粤B12346", "第二次更正")
    rows = list(Stay.history.filter(id=stay.pk).order_by("history_date", "history_id"))
    assert [r.history_user for r in rows] == [None, operator, None, operator]
    assert (rows[2].state, rows[2].plate) == (StayState.LEFT, "粤B12345")
    assert rows[3].plate == "粤B12346"
    page = client_for(operator).get(reverse("admin:stays_stay_history", args=[stay.pk]))
    text = page.content.decode()
    assert "由系统" in text
    assert "¥8.00" in text


def test_a_plate_correction_may_not_make_two_open_stays(world: dict[str, Any]) -> None:
    stay = temp_stay(world["a"], plate="粤B1234S")
    with pytest.raises(Refused):
        stay_actions.correct_plate(stay, world["users"]["operator"], "粤B11111", "误识别")
    assert Stay.objects.get(pk=stay.pk).plate == "粤B1234S"


# -- named actions: refund -----------------------------------------------------------------------


def test_refunding_a_paid_order_is_audited(world: dict[str, Any]) -> None:
    order: Order = world["a"].order
    Order.objects.filter(pk=order.pk).update(state=OrderState.PAID, paid_at=timezone.now())
    admin = world["users"]["admin"]
    client = client_for(admin)
    url = reverse("admin:orders_order_refund", args=[order.pk])
    assert client.post(url, {"reason": ""}).status_code == 200
    assert Order.objects.get(pk=order.pk).state == OrderState.PAID
    response = client.post(url, {"reason": "车主重复缴费"})
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).state == OrderState.REFUNDED
    last = Order.history.filter(id=order.pk).latest()
    assert (last.history_user, last.history_change_reason) == (admin, "车主重复缴费")
    history = client.get(reverse("admin:orders_order_history", args=[order.pk])).content.decode()
    assert "已支付" in history
    assert "已退款" in history
    assert "车主重复缴费" in history


def test_impossible_order_transitions_are_refused_in_words(world: dict[str, Any]) -> None:
    order: Order = world["a"].order  # pending
    user = world["users"]["admin"]
    with pytest.raises(Refused, match="不能变为"):
        order_actions.refund(order, user, "想退款")
    response = client_for(user).post(
        reverse("admin:orders_order_refund", args=[order.pk]), {"reason": "想退款"}
    )
    assert response.status_code == 200
    assert "不能变为" in response.content.decode()
    assert Order.objects.get(pk=order.pk).state == OrderState.CREATED
    order_actions.move(order, OrderState.CLOSED, user, "放弃")
    with pytest.raises(Refused):
        order_actions.move(order, OrderState.PAID, user, "补录")
    assert Order.objects.get(pk=order.pk).state == OrderState.CLOSED


# -- who may act, and history pages stay in their lot --------------------------------------------


def test_actions_and_history_stay_in_the_users_lot(world: dict[str, Any]) -> None:
    other = temp_stay(world["b"], plate="粤B77777")
    stay_actions.correct_plate(other, world["users"]["superuser"], "粤B77776", "误识别")
    operator = client_for(world["users"]["operator"])
    for url in (
        reverse("admin:stays_stay_close", args=[other.pk]),
        reverse("admin:stays_stay_correct_plate", args=[other.pk]),
    ):
        response = operator.post(
            url,
            {
                "exited_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "plate": "粤B11112",
                "reason": "越权",
            },
        )
        assert response.status_code in (302, 403, 404)
    refreshed = Stay.objects.get(pk=other.pk)
    assert (refreshed.plate, refreshed.exited_at) == ("粤B77776", None)
    history = operator.get(reverse("admin:stays_stay_history", args=[other.pk]))
    assert history.status_code in (302, 403, 404)
    assert "粤B77776" not in history.content.decode()
    agent = client_for(world["users"]["agent"])
    own = temp_stay(world["a"])
    response = agent.post(
        reverse("admin:stays_stay_correct_plate", args=[own.pk]),
        {"plate": "粤B22222", "reason": "x"},
    )
    assert response.status_code == 403
    assert Stay.objects.get(pk=own.pk).plate == own.plate


def test_the_gate_loop_keeps_no_history_rows() -> None:
    site = Site()
    at = timezone.now() - timedelta(hours=2)
    site.push("entry", "粤B88888", offline=True, at=at)
    site.push("exit", "粤B88888", offline=True, at=at + timedelta(hours=1))
    site.give_pass("粤B66666")
    site.push("entry", "粤B66666")
    site.push("exit", "粤B66666")
    assert Stay.objects.count() == 2
    assert Stay.objects.get(plate="粤B66666").exited_at is not None
    assert Stay.objects.get(plate="粤B88888").exited_at is not None
    assert not Stay.history.exists()


# -- words, not codes ----------------------------------------------------------------------------


def test_lists_show_yuan_and_words(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    Stay.objects.filter(pk=a.stay.pk).update(total=1250, paid=500)
    GateVisit.objects.create(
        gate=a.exit,
        lot=a.lot,
        plate="粤B11111",
        arrived_at=timezone.now(),
        scenario="exit.temp_unpaid",
        decision={
            "scenario": "exit.temp_unpaid",
            "open": False,
            "voice": "请扫码缴费后出场",
            "display": {"kind": "qr", "qr": "temp_payment"},
            "light": "green",
            "expected_action": "temp_order",
        },
        expected_action="temp_order",
    )
    client = client_for(world["users"]["operator"])
    stays = client.get(reverse("admin:stays_stay_changelist")).content.decode()
    assert "¥12.50" in stays
    assert "¥5.00" in stays
    orders = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "¥8.00" in orders
    visits = client.get(reverse("admin:stays_gatevisit_changelist")).content.decode()
    assert "月卡车进场" in visits
    assert "临停车未缴费出场" in visits
    assert "扫码缴纳停车费" in visits
    assert "entry.monthly_valid" not in visits.replace("scenario=entry.monthly_valid", "")
    assert ">temp_order<" not in visits
    visit = GateVisit.objects.get(scenario="exit.temp_unpaid")
    page = client.get(reverse("admin:stays_gatevisit_change", args=[visit.pk])).content.decode()
    assert "请扫码缴费后出场" in page
    assert "绿" in page
    assert '"voice"' not in page
    assert "&quot;voice&quot;" not in page
    stay_page = client.get(reverse("admin:stays_stay_change", args=[a.stay.pk])).content.decode()
    assert "¥12.50" in stay_page
