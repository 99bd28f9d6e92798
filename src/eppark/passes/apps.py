from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PassesConfig(AppConfig):
    """Monthly passes."""

    name = "eppark.passes"
    verbose_name = _("Monthly passes")
