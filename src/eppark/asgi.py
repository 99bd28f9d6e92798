"""ASGI entry point: the web server and back office (Django), camera pushes (the ingress)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eppark.settings")
django_application = get_asgi_application()

from eppark.devices.ingress import DeviceIngress  # noqa: E402  (needs Django set up)

application = DeviceIngress(django_application)
