from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaysConfig(AppConfig):
    """Stays and gate visits."""

    name = "eppark.stays"
    verbose_name = _("Stays and gate visits")
