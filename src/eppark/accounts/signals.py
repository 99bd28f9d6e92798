"""Keep the role groups in step with the permissions after every migrate."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def create_role_groups(sender: Any, **kwargs: Any) -> None:
    """After the last app migrates, (re)create the 客服/运营/管理员 groups."""
    if getattr(sender, "name", "") != "eppark.console":
        return
    from eppark.accounts.roles import sync_role_groups

    sync_role_groups()
