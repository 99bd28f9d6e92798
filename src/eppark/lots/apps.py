from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LotsConfig(AppConfig):
    """Lots and gates."""

    name = "eppark.lots"
    verbose_name = _("Lots and gates")
