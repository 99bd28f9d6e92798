from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    """The call centre: integrations, calls and their routing to agents' seats."""

    name = "eppark.calls"
    verbose_name = _("Call centre")
