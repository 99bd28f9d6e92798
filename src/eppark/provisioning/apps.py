from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvisioningConfig(AppConfig):
    """The ``eppark provision FILE`` command."""

    name = "eppark.provisioning"
    verbose_name = _("Provisioning")
