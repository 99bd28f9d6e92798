"""Keep the role groups in step with the permissions after every migrate."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def create_role_groups(sender: Any, **kwargs: Any) -> None:
    """After the last app migrates, (re)create the 客服/运营/管理员 groups.

    The last app with models: by then every app's permissions exist (Django creates
    them on each app's own post_migrate).
    """
    from django.apps import apps

    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if not with_models or getattr(sender, "name", "") != with_models[-1].name:
        return
    from eppark.accounts.roles import sync_role_groups

    sync_role_groups()
