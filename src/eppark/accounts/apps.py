from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff accounts and per-lot scoping."""

    name = "eppark.accounts"
    verbose_name = _("Staff")

    def ready(self) -> None:
        from eppark.accounts import signals  # noqa: F401


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with EP Park's lot-scoped site as ``admin.site``."""

    default = False  # named in INSTALLED_APPS; AccountsConfig stays this app's default
    default_site = "eppark.accounts.site.BackOfficeSite"
