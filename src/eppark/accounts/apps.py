from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff accounts and per-lot scoping."""

    name = "eppark.accounts"
    verbose_name = _("Staff")

    def ready(self) -> None:
        from eppark.accounts import signals  # noqa: F401
