from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    """Orders and payments."""

    name = "eppark.orders"
    verbose_name = _("Orders and payments")
