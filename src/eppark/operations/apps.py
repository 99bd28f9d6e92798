from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """The commands that run the server and the demo."""

    name = "eppark.operations"
    verbose_name = _("Operations")
