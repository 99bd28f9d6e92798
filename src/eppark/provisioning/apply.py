"""Apply a provisioning plan to the database: all of it in one transaction, or nothing.

Objects are found by their natural keys (lot code; gate code within its lot;
robot code; a plate camera's key (by its SHA-256: only that is stored), else
its vendor and serial; an Ezviz camera's serial; a pass by its plates within
the lot; a user by username; a call centre by its key's SHA-256), created when
missing and updated only where a value differs, so a second run of the same
file saves nothing and leaves every ``updated_at`` as it was. Nothing the file
does not mention is deleted; the plates of a pass the file mentions become
exactly the listed ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import models, transaction

from eppark.accounts.models import StaffProfile
from eppark.accounts.roles import GROUP_NAMES, sync_role_groups
from eppark.calls.models import CallCentre
from eppark.console.models import Seat
from eppark.devices.keys import key_digest, key_hint
from eppark.devices.models import Camera, Robot
from eppark.domain.errors import BadInput
from eppark.lots.models import Gate, Lot
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.provisioning.schema import (
    DEFAULT_GRACE_DAYS,
    DEFAULT_PAYABLE_DAYS,
    EZVIZ,
    CallCentrePlan,
    CameraPlan,
    GatePlan,
    LotPlan,
    PassPlan,
    Plan,
    RobotPlan,
    UserPlan,
)

KINDS = ("lots", "gates", "robots", "cameras", "passes", "users", "seats", "centres")
"""Kinds of object, as the summary names them (``centres``: call-centre integrations)."""


@dataclass
class Tally:
    """What happened to the objects of one kind, by natural key."""

    created: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def record(self, key: str, *, created: bool = False, updated: bool = False) -> None:
        """Note that the file mentioned ``key`` and whether it was created or changed."""
        self.seen.add(key)
        if created:
            self.created.add(key)
        elif updated and key not in self.created:
            self.updated.add(key)

    @property
    def unchanged(self) -> int:
        """Objects the file mentions that needed no change."""
        return len(self.seen - self.created - self.updated)


@dataclass
class Summary:
    """Counts per kind and the notes worth telling the operator (seats rebound…)."""

    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in KINDS})
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """Whether anything was created or updated."""
        return any(t.created or t.updated for t in self.tallies.values())

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {"created", "updated", "unchanged"}}``."""
        return {
            kind: {
                "created": len(t.created),
                "updated": len(t.updated),
                "unchanged": t.unchanged,
            }
            for kind, t in self.tallies.items()
        }

    def lines(self) -> list[str]:
        """The summary as the command prints it."""
        width = max(len(kind) for kind in KINDS)
        out = [
            f"{kind:<{width}}  {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged"
            for kind, c in self.counts().items()
        ]
        out += [f"note: {note}" for note in self.notes]
        if self.dry_run:
            out.append("dry run: nothing was saved")
        elif not self.changed:
            out.append("nothing to change")
        return out


def _has_field(instance: models.Model, name: str) -> bool:
    return any(f.name == name for f in instance._meta.concrete_fields)


def _update(instance: models.Model, values: dict[str, Any]) -> bool:
    """Set the values that differ and save just those (and ``updated_at``); True if any did."""
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    if not changed:
        return False
    for name in changed:
        setattr(instance, name, values[name])
    if _has_field(instance, "updated_at"):
        changed.append("updated_at")
    instance.save(update_fields=changed)
    return True


def _given(values: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``values`` plus the optional ones that the file gives (not None)."""
    return {**values, **{k: v for k, v in optional.items() if v is not None}}


def apply_plan(plan: Plan, *, dry_run: bool = False) -> Summary:
    """Create or update everything in ``plan`` in one transaction; BadInput rolls it all back."""
    summary = Summary(dry_run=dry_run)
    with transaction.atomic():
        for lot_plan in plan.lots:
            _Provisioner(summary).lot(lot_plan)
        if plan.users:
            groups = _role_groups()
            for user_plan in plan.users:
                _user(user_plan, groups, summary)
        for centre_plan in plan.call_centres:
            _call_centre(centre_plan, summary)
        if dry_run:
            transaction.set_rollback(True)
    return summary


class _Provisioner:
    """Applies one lot with its gates, devices and passes."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary

    def tally(self, kind: str) -> Tally:
        return self.summary.tallies[kind]

    def lot(self, plan: LotPlan) -> None:
        location = plan.location
        values = _given(
            {"name": plan.name},
            temp_entry_confirmation=plan.temp_entry_confirmation,
            capacity=plan.capacity,
            latitude=location.lat if location else None,
            longitude=location.lng if location else None,
            emergency_contact_name=plan.emergency_contact_name,
            emergency_contact_phone=plan.emergency_contact_phone,
            tariff=plan.tariff,
            expired_grace_days=plan.expired_grace_days,
            expired_payable_days=plan.expired_payable_days,
            timezone=plan.timezone,
            monthly_price=plan.monthly_price,
            renewal_offers=(
                [{"months": m, "price": p} for m, p in plan.renewal_offers]
                if plan.renewal_offers is not None
                else None
            ),
        )
        lot = Lot.objects.filter(code=plan.code).first()
        grace = values.get(
            "expired_grace_days", lot.expired_grace_days if lot else DEFAULT_GRACE_DAYS
        )
        payable = values.get(
            "expired_payable_days", lot.expired_payable_days if lot else DEFAULT_PAYABLE_DAYS
        )
        if grace > payable:
            where = (
                "expired_grace_days"
                if plan.expired_grace_days is not None
                else ("expired_payable_days")
            )
            raise BadInput(
                f"{plan.path}.{where}",
                f"grace ({grace} days) must not exceed payable ({payable} days) "
                f"as lot {plan.code!r} would then have",
            )
        if lot is None:
            lot = Lot.objects.create(code=plan.code, **values)
            self.tally("lots").record(plan.code, created=True)
        else:
            self.tally("lots").record(plan.code, updated=_update(lot, values))
        for gate_plan in plan.gates:
            self.gate(lot, gate_plan)
        self.passes(lot, plan.passes)

    def gate(self, lot: Lot, plan: GatePlan) -> None:
        key = f"{lot.code}/{plan.code}"
        values = {"name": plan.name, "direction": plan.direction}
        gate = Gate.objects.filter(lot=lot, code=plan.code).first()
        if gate is None:
            gate = Gate.objects.create(lot=lot, code=plan.code, **values)
            self.tally("gates").record(key, created=True)
        else:
            self.tally("gates").record(key, updated=_update(gate, values))
        robot = self.robot(lot, gate, plan.robot) if plan.robot else None
        if robot is None:
            robot = Robot.objects.filter(gate=gate).first()
        for camera_plan in plan.cameras:
            self.camera(lot, gate, robot, camera_plan)

    def robot(self, lot: Lot, gate: Gate, plan: RobotPlan) -> Robot:
        for other in Robot.objects.filter(gate=gate).exclude(code=plan.code):
            other.gate = None
            other.save(update_fields=["gate", "updated_at"])
            self.tally("robots").record(other.code, updated=True)
            self.summary.notes.append(
                f"robot {other.code} left gate {lot.code}/{gate.code} for {plan.code}"
            )
        values = _given({"name": plan.name, "lot_id": lot.pk, "gate_id": gate.pk}, phone=plan.phone)
        robot = Robot.objects.filter(code=plan.code).first()
        if robot is None:
            robot = Robot.objects.create(code=plan.code, **values)
            self.tally("robots").record(plan.code, created=True)
        else:
            self.tally("robots").record(plan.code, updated=_update(robot, values))
        return robot

    def camera(self, lot: Lot, gate: Gate, robot: Robot | None, plan: CameraPlan) -> None:
        values = _given(
            {"vendor": plan.vendor, "lot_id": lot.pk, "gate_id": gate.pk}, name=plan.name
        )
        if plan.vendor == EZVIZ:
            label = f"ezviz {plan.serial}"
            camera = Camera.objects.filter(vendor=EZVIZ, ezviz_serial=plan.serial).first()
            values["ezviz_serial"] = plan.serial
            if robot is not None:
                values["robot_id"] = robot.pk
        else:
            # the key is stored as its digest (and a hint): compared so, a second run changes
            # nothing, and the key itself is never written anywhere
            digest = key_digest(plan.key or "")
            label = f"key {digest}"
            camera = Camera.objects.filter(key_digest=digest).first()
            if camera is None and plan.serial:
                same = list(Camera.objects.filter(vendor=plan.vendor, serial=plan.serial)[:2])
                camera = same[0] if len(same) == 1 else None
            values["key_digest"] = digest
            values["key_hint"] = key_hint(plan.key or "")
            if plan.serial is not None:
                values["serial"] = plan.serial
        if camera is None:
            Camera.objects.create(**values)
            self.tally("cameras").record(label, created=True)
        else:
            self.tally("cameras").record(label, updated=_update(camera, values))

    def passes(self, lot: Lot, plans: Iterable[PassPlan]) -> None:
        plans = list(plans)
        if not plans:
            return
        holder: dict[str, int] = dict(
            PassPlate.objects.filter(lot=lot).values_list("plate", "monthly_pass_id")
        )
        passes = MonthlyPass.objects.filter(lot=lot).in_bulk()
        tally = self.tally("passes")
        for plan in plans:
            ids = {holder[p] for p in plan.plates if p in holder}
            if len(ids) > 1:
                spans = "; ".join(
                    f"{p} is on the pass of {passes[holder[p]].owner} (#{holder[p]})"
                    for p in plan.plates
                    if p in holder
                )
                raise BadInput(
                    f"{plan.path}.plates",
                    f"these plates are on {len(ids)} different passes in lot {lot.code!r} "
                    f"({spans}); one entry cannot join them",
                )
            values = _given(
                {
                    "owner": plan.owner,
                    "valid_from": plan.valid_from,
                    "valid_until": plan.valid_until,
                },
                phone=plan.phone,
                spaces=plan.spaces,
                note=plan.note,
            )
            label = f"{lot.code}/{'+'.join(plan.plates)}"
            if not ids:
                monthly_pass = MonthlyPass.objects.create(lot=lot, **values)
                passes[monthly_pass.pk] = monthly_pass
                PassPlate.objects.bulk_create(
                    PassPlate(monthly_pass=monthly_pass, lot=lot, plate=p) for p in plan.plates
                )
                holder.update(dict.fromkeys(plan.plates, monthly_pass.pk))
                tally.record(label, created=True)
                continue
            monthly_pass = passes[ids.pop()]
            changed = _update(monthly_pass, values)
            current = {p for p, pk in holder.items() if pk == monthly_pass.pk}
            wanted = set(plan.plates)
            if current != wanted:
                gone = current - wanted
                PassPlate.objects.filter(monthly_pass=monthly_pass, plate__in=gone).delete()
                PassPlate.objects.bulk_create(
                    PassPlate(monthly_pass=monthly_pass, lot=lot, plate=p)
                    for p in plan.plates
                    if p not in current
                )
                for p in gone:
                    del holder[p]
                holder.update(dict.fromkeys(wanted, monthly_pass.pk))
                if not changed:
                    monthly_pass.save(update_fields=["updated_at"])
                changed = True
            tally.record(label, updated=changed)


def _call_centre(plan: CallCentrePlan, summary: Summary) -> None:
    """Create or update a call-centre integration, found by its key (stored as its digest)."""
    digest = key_digest(plan.key)
    values = _given(
        {"provider": plan.provider, "name": plan.name, "key_hint": key_hint(plan.key)},
        callout_url=plan.callout_url,
        secret=plan.secret,
        access_key_id=plan.access_key_id,
    )
    label = f"key {digest}"
    centre = CallCentre.objects.filter(key_digest=digest).first()
    if centre is None:
        centre = CallCentre(**values)
        centre.key = plan.key
        centre.save()
        summary.tallies["centres"].record(label, created=True)
        return
    summary.tallies["centres"].record(label, updated=_update(centre, values))


def _role_groups() -> dict[str, Group]:
    """The 客服/运营/管理员 groups by role, created with their permissions if missing."""
    names = {str(role): name for role, name in GROUP_NAMES.items()}
    groups = {g.name: g for g in Group.objects.filter(name__in=names.values())}
    if len(groups) < len(names):
        return {str(role): group for role, group in sync_role_groups().items()}
    return {role: groups[name] for role, name in names.items()}


def _user(plan: UserPlan, groups: dict[str, Group], summary: Summary) -> None:
    tally = summary.tallies["users"]
    user = User.objects.filter(username=plan.username).first()
    user_values = _given({"is_staff": True}, first_name=plan.name)
    created = user is None
    if user is None:
        user = User(username=plan.username, **user_values)
        user.set_unusable_password()
        user.save()
        changed = False
    else:
        changed = _update(user, user_values)

    profile = StaffProfile.objects.filter(user=user).first()
    profile_values = _given({"role": plan.role}, name=plan.name)
    if profile is None:
        profile = StaffProfile.objects.create(user=user, **profile_values)
        changed = True
    else:
        changed = _update(profile, profile_values) or changed

    if plan.lots is not None:
        codes = [code for _path, code in plan.lots]
        ids = dict(Lot.objects.filter(code__in=codes).values_list("code", "pk"))
        for path, code in plan.lots:
            if code not in ids:
                raise BadInput(path, f'no lot "{code}" in the file or the database')
        wanted = set(ids.values())
        if set(profile.lots.values_list("pk", flat=True)) != wanted:
            profile.lots.set(wanted)
            changed = True

    role_group = groups[plan.role]
    other_role_groups = [g for g in groups.values() if g.pk != role_group.pk]
    present = set(user.groups.filter(pk__in=[g.pk for g in groups.values()]))
    stale = [g for g in other_role_groups if g in present]
    if stale:
        user.groups.remove(*stale)
        changed = True
    if role_group not in present:
        user.groups.add(role_group)
        changed = True

    if plan.seat is not None:
        changed = _seat(user, plan.seat, summary) or changed
    tally.record(plan.username, created=created, updated=changed)


def _seat(user: User, number: str, summary: Summary) -> bool:
    """Bind ``user`` to seat ``number`` (leaving any other seat); True if anything changed."""
    tally = summary.tallies["seats"]
    changed = False
    for old in Seat.objects.filter(agent=user).exclude(number=number):
        old.agent = None
        old.save(update_fields=["agent"])
        tally.record(old.number, updated=True)
        summary.notes.append(f"seat {old.number} released: {user.username} moves to seat {number}")
        changed = True
    seat = Seat.objects.filter(number=number).first()
    if seat is None:
        Seat.objects.create(number=number, agent=user)
        tally.record(number, created=True)
        return True
    if seat.agent_id == user.pk:
        tally.record(number)
        return changed
    if seat.agent_id is not None:
        previous = User.objects.get(pk=seat.agent_id).get_username()
        summary.notes.append(f"seat {number} rebound from {previous} to {user.username}")
    seat.agent = user
    seat.save(update_fields=["agent"])
    tally.record(number, updated=True)
    return True
