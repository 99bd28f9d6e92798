from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    """Payment providers, notifications, code payments, refunds and reconciliation."""

    name = "eppark.payments"
    verbose_name = _("Payments")
