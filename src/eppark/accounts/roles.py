"""The three roles as Django groups, with the permissions each needs."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from eppark.accounts.models import Role

# Group names as staff read them in the (Chinese) back office.
GROUP_NAMES = {Role.AGENT: "客服", Role.OPERATOR: "运营", Role.ADMIN: "管理员"}

_VIEW_ALL = [
    "lots.view_lot",
    "lots.view_gate",
    "devices.view_robot",
    "devices.view_camera",
    "devices.view_plateread",
    "passes.view_monthlypass",
    "passes.view_passplate",
    "passes.view_renewalapplication",
    "stays.view_stay",
    "stays.view_gatevisit",
    "orders.view_order",
    "console.view_abnormalopen",
    "console.view_abnormalopenevidence",
    "console.view_capturedphoto",
    "console.view_seat",
    "console.view_agentaction",
    "payments.view_notification",
    "payments.view_codepayment",
    "payments.view_refund",
    "calls.view_call",
    "calls.view_callevent",
]

PERMISSIONS: dict[Role, list[str]] = {
    Role.AGENT: [*_VIEW_ALL, "console.add_abnormalopen", "console.add_abnormalopenevidence"],
    Role.OPERATOR: [
        *_VIEW_ALL,
        "lots.change_lot",
        "lots.add_gate",
        "lots.change_gate",
        "devices.add_robot",
        "devices.change_robot",
        "devices.add_camera",
        "devices.change_camera",
        "devices.view_devicealarm",
        "devices.change_devicealarm",  # acknowledge (the admin is otherwise read-only)
        "passes.add_monthlypass",
        "passes.change_monthlypass",
        "passes.delete_monthlypass",
        "passes.add_passplate",
        "passes.change_passplate",
        "passes.delete_passplate",
        "passes.change_renewalapplication",
        "stays.change_stay",
        "orders.change_order",  # refund (named action)
        "payments.view_reconciliation",
        "payments.view_reconciliationline",
        "payments.change_reconciliation",  # re-run a day (重新对账)
    ],
    Role.ADMIN: [],  # filled below: every permission of the project's apps
}

PROJECT_APPS = (
    "accounts",
    "lots",
    "devices",
    "passes",
    "stays",
    "orders",
    "payments",
    "console",
    "calls",
)


def sync_role_groups() -> dict[Role, Group]:
    """Create or update the three groups so each holds exactly its permissions."""
    groups = {}
    for role, codes in PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=GROUP_NAMES[role])
        if role is Role.ADMIN:
            perms = list(Permission.objects.filter(content_type__app_label__in=PROJECT_APPS))
            perms += list(
                Permission.objects.filter(
                    content_type__app_label="auth",
                    codename__in=["view_user", "add_user", "change_user", "view_group"],
                )
            )
        else:
            perms = []
            for code in codes:
                app_label, codename = code.split(".")
                perms.append(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
        if set(group.permissions.all()) != set(perms):
            group.permissions.set(perms)
        groups[role] = group
    return groups
