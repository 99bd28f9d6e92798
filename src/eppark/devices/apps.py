from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    """Robots (EP君) and cameras."""

    name = "eppark.devices"
    verbose_name = _("Robots (EP君) and cameras")

    def ready(self) -> None:
        """Keep the in-memory camera snapshots and the gateway's online marks honest."""
        from eppark.devices import registry
        from eppark.gateway import store

        registry.connect_signals()
        store.connect_signals()
