"""The demo city: a provisioning document of real Shenzhen car parks, their devices, passes, staff.

Pure: the same ``now`` and ``seed`` give the same document, and nothing is read
from the clock or the disk. Lots, gates, devices, plates and people depend on
the seed only, so provisioning the city again with a later ``now`` moves the
passes' dates in place instead of adding passes. Every lot holds passes in
each state the gate cares about, relative to ``now`` and the default
thresholds (grace 3 days, payable 7 days): valid, expired ≤ 3 days, expired
3–7 days, expired > 7 days, and not yet started; about one pass in ten is a
shared-space group (more plates than spaces).

The city has one call centre, ``generic``, whose callouts go to the simulated call
centre ``eppark demo`` runs (``eppark.sim.callcentre``) on ``DEMO_CALL_PORT``; its
key and secret depend on the seed only (``demo_call_centre``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from eppark.domain.plates import LETTERS, PROVINCES

CHINA = timezone(timedelta(hours=8))

PASS_STATES = ("valid", "expired_grace", "expired_payable", "lapsed", "not_started")
"""valid; expired ≤ 3 days; expired 3–7 days; expired > 7 days; valid_from in the future."""

_STATE_WEIGHTS = (70, 8, 8, 8, 6)

# code, name, lat, lng, capacity, temp-entry confirmation, gate pairs, passes, tariff
_LOTS: tuple[tuple[str, str, float, float, int, bool, int, int, dict[str, Any]], ...] = (
    (
        "caike", "彩科彩悦大厦", 22.5431, 113.9497, 300, True, 1, 40,
        {"free_minutes": 30, "first": {"minutes": 60, "price": 500},
         "unit": {"minutes": 60, "price": 300}, "cap": {"price": 3000, "per": "24h"}},
    ),
    (
        "sz-bay-eco", "深圳湾科技生态园", 22.5255, 113.9451, 1200, False, 2, 60,
        {"free_minutes": 15, "unit": {"minutes": 30, "price": 300},
         "cap": {"price": 5000, "per": "day"}},
    ),
    (
        "mixc-luohu", "华润大厦·万象城", 22.5368, 114.1119, 2000, False, 2, 45,
        {"free_minutes": 60, "free_minutes_deducted": True,
         "first": {"minutes": 120, "price": 1000}, "unit": {"minutes": 60, "price": 500},
         "cap": {"price": 6000, "per": "24h"}},
    ),
    (
        "chegongmiao", "车公庙枢纽", 22.5357, 114.0260, 400, True, 1, 40,
        {"free_minutes": 15, "segments": [
            {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 600}},
            {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 200}, "cap": 1000},
        ]},
    ),
    (
        "futian-cbd", "福田CBD·平安金融中心", 22.5367, 114.0503, 1500, False, 2, 55,
        {"free_minutes": 30, "unit": {"minutes": 30, "price": 400},
         "cap": {"price": 8000, "per": "24h"}},
    ),
    (
        "longhua-north", "深圳北站（龙华）", 22.6092, 114.0292, 800, False, 1, 40,
        {"free_minutes": 15, "first": {"minutes": 60, "price": 500},
         "unit": {"minutes": 60, "price": 300}, "cap": {"price": 4000, "per": "day"}},
    ),
    (
        "baoan-center", "宝安中心", 22.5560, 113.8838, 600, True, 1, 40,
        {"free_minutes": 30, "unit": {"minutes": 60, "price": 300},
         "cap": {"price": 2500, "per": "24h"}},
    ),
)  # fmt: skip

# A monthly pass's price (fen per month), and the lots that sell longer renewals cheaper.
_MONTHLY_PRICE = {
    "caike": 30000,
    "sz-bay-eco": 45000,
    "mixc-luohu": 80000,
    "chegongmiao": 35000,
    "futian-cbd": 90000,
    "longhua-north": 40000,
    "baoan-center": 25000,
}
_RENEWAL_OFFERS: dict[str, list[dict[str, int]]] = {
    "mixc-luohu": [
        {"months": 1, "price": 80000},
        {"months": 3, "price": 228000},
        {"months": 12, "price": 864000},
    ],
}

# Which operator looks after which lots.
_OPERATORS = (
    ("op-nanshan", "南山运营", ("caike", "sz-bay-eco")),
    ("op-futian", "福田运营", ("chegongmiao", "futian-cbd")),
    ("op-luohu", "罗湖运营", ("mixc-luohu",)),
    ("op-north", "北区运营", ("longhua-north", "baoan-center")),
)
_AGENTS = 4
# The demo's printed logins besides its superuser: a one-lot operator and an agent.
ONE_LOT_OPERATOR = "op-luohu"
AN_AGENT = "kf-001"

DEMO_CALL_PORT = 8010
"""Where ``eppark demo``'s simulated call centre answers callouts."""

_LPR_VENDORS = ("vzenith", "hxzx", "hikvision", "dahua")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许邓冯韩曹"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文斌鹏飞宇浩然子轩欣怡晨"
_HEX = "0123456789abcdef"


def demo_city(now: datetime, seed: int = 1) -> dict[str, Any]:
    """The demo city's provisioning document for ``now`` (must carry an offset)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must carry a UTC offset")
    rng = random.Random(seed)
    now = now.astimezone(CHINA).replace(microsecond=0)
    plates: set[str] = set()
    lots = []
    robot_number = 0
    for code, name, lat, lng, capacity, confirmation, pairs, pass_count, tariff in _LOTS:
        gates = []
        for pair in range(1, pairs + 1):
            for direction, label in (("entry", "入口"), ("exit", "出口")):
                robot_number += 1
                gates.append(_gate(rng, code, name, direction, label, pair, robot_number))
        lots.append(
            {
                "code": code,
                "name": name,
                "temp_entry_confirmation": confirmation,
                "capacity": capacity,
                "location": {"lat": lat, "lng": lng},
                "emergency_contact": {"name": _person(rng), "phone": _mobile(rng)},
                "tariff": tariff,
                "expired_grace_days": 3,
                "expired_payable_days": 7,
                "monthly_price": _MONTHLY_PRICE[code],
                "renewal_offers": _RENEWAL_OFFERS.get(code, []),
                "timezone": "Asia/Shanghai",
                "gates": gates,
                "passes": [_pass(rng, now, k, plates) for k in range(pass_count)],
            }
        )
    return {"lots": lots, "users": _users(), "call_centres": [demo_call_centre(seed)]}


def demo_call_centre(seed: int = 1, port: int = DEMO_CALL_PORT) -> dict[str, str]:
    """The demo's call centre (generic provider): its key, secret and callout address."""
    rng = random.Random(f"call-centre-{seed}")
    return {
        "provider": "generic",
        "key": f"k-cti-{_hex(rng, 16)}",
        "name": "演示呼叫中心",
        "callout_url": f"http://127.0.0.1:{port}/callout",
        "secret": _hex(rng, 32),
    }


def demo_camera_keys(seed: int = 1) -> list[str]:
    """Every plate camera's endpoint key in the demo city (its simulated cameras post with them).

    The database keeps only their digests; the keys depend on the seed alone.
    """
    city = demo_city(datetime(2026, 1, 1, tzinfo=CHINA), seed)
    return [
        camera["key"]
        for lot in city["lots"]
        for gate in lot["gates"]
        for camera in gate["cameras"]
        if "key" in camera
    ]


def _short(name: str) -> str:
    """The first two characters of a lot's name, for device names (彩科入口1)."""
    return name[:2]


def _gate(
    rng: random.Random, lot: str, name: str, direction: str, label: str, pair: int, number: int
) -> dict[str, Any]:
    code = f"{direction}-{pair}"
    vendor = _LPR_VENDORS[(number - 1) % len(_LPR_VENDORS)]
    return {
        "code": code,
        "name": f"{label}{pair}",
        "direction": direction,
        "robot": {
            "code": f"EP-{number:04d}",
            "name": f"{_short(name)}{label}{pair}",
            "phone": f"144{number:08d}",
        },
        "cameras": [
            {
                "vendor": vendor,
                "key": f"k-{lot}-{code}-{_hex(rng, 8)}",
                "serial": _serial(rng, vendor),
                "name": f"{label}{pair}车牌相机",
            },
            {"vendor": "ezviz", "serial": _ezviz_serial(rng), "name": f"{label}{pair}环境相机"},
        ],
    }


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_HEX) for _ in range(length))


def _digits(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(length))


def _serial(rng: random.Random, vendor: str) -> str:
    """A serial number in the vendor's usual shape."""
    if vendor == "vzenith":
        return f"{_hex(rng, 8)}-{_hex(rng, 8)}"
    if vendor == "hxzx":
        return f"HX{_digits(rng, 10)}"
    if vendor == "hikvision":
        return f"DS-TCG225-E{_digits(rng, 8)}CCWR{_hex(rng, 8).upper()}"
    return f"7F0{_hex(rng, 4).upper()}PAZ{_digits(rng, 5)}"


def _ezviz_serial(rng: random.Random) -> str:
    return f"{rng.choice('BCDEFGJK')}{_digits(rng, 8)}"


def _person(rng: random.Random) -> str:
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
    return f"{rng.choice(_SURNAMES)}{given}"


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{_digits(rng, 9)}"


def _plate(rng: random.Random, taken: set[str]) -> str:
    """A fresh valid plate, mostly Shenzhen's 粤B, about one in five new-energy."""
    while True:
        if rng.random() < 0.75:
            prefix = "粤B"
        else:
            prefix = (
                rng.choice(("粤A", "粤S", "粤E", "粤L"))
                if rng.random() < 0.6
                else (rng.choice(PROVINCES) + rng.choice(LETTERS))
            )
        if rng.random() < 0.2:
            body = f"{rng.choice('DF')}{rng.choice(LETTERS + '0123456789')}{_digits(rng, 4)}"
        else:
            chars = [rng.choice("0123456789") for _ in range(5)]
            for position in rng.sample(range(5), rng.choice((0, 1, 1, 2))):
                chars[position] = rng.choice(LETTERS)
            body = "".join(chars)
        plate = prefix + body
        if plate not in taken:
            taken.add(plate)
            return plate


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _validity(rng: random.Random, now: datetime, state: str) -> tuple[datetime, datetime]:
    """valid_from and valid_until putting a pass in ``state`` at ``now``."""
    if state == "not_started":
        start = _midnight(now + timedelta(days=rng.randint(1, 20)))
        return start, start + timedelta(days=rng.choice((90, 182, 365)), seconds=-1)
    if state == "valid":
        start = _midnight(now - timedelta(days=rng.randint(10, 330)))
        end = _midnight(now + timedelta(days=rng.randint(2, 300))) - timedelta(seconds=1)
        return start, end
    hours = {
        "expired_grace": (2, 70),
        "expired_payable": (74, 166),
        "lapsed": (8 * 24, 90 * 24),
    }[state]
    end = now - timedelta(minutes=rng.randint(hours[0] * 60, hours[1] * 60))
    return _midnight(end - timedelta(days=rng.choice((30, 90, 365)))), end


def _pass(rng: random.Random, now: datetime, index: int, taken: set[str]) -> dict[str, Any]:
    """Pass ``index`` of a lot: the first ones cover every state, the rest are drawn."""
    if index < len(PASS_STATES):
        state = PASS_STATES[index]
    else:
        state = rng.choices(PASS_STATES, weights=_STATE_WEIGHTS)[0]
    shared = index == len(PASS_STATES) or rng.random() < 0.1
    count = rng.choice((2, 2, 3)) if shared else 1
    spaces = 1 if count < 3 else rng.choice((1, 2))
    valid_from, valid_until = _validity(rng, now, state)
    entry: dict[str, Any] = {
        "plates": [_plate(rng, taken) for _ in range(count)],
        "owner": _person(rng),
        "phone": _mobile(rng),
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat(),
        "spaces": spaces,
    }
    if shared:
        entry["note"] = f"一位多车：{count}车{spaces}位"
    return entry


def _users() -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = [{"username": "ep-admin", "name": "系统管理员", "role": "admin"}]
    users += [
        {"username": username, "name": name, "role": "operator", "lots": list(lots)}
        for username, name, lots in _OPERATORS
    ]
    every_lot = [lot[0] for lot in _LOTS]
    users += [
        {
            "username": f"kf-{k:03d}",
            "name": f"客服{k}号",
            "role": "agent",
            "lots": every_lot,
            "seat": f"{1000 + k}",
        }
        for k in range(1, _AGENTS + 1)
    ]
    return users
