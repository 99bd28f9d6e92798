from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """Agent console."""

    name = "eppark.console"
    verbose_name = _("Agent console")
