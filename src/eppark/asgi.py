"""ASGI entry point: the web server and back office (Django), camera pushes (the ingress),
and the agent desk's WebSocket (Django Channels)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eppark.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)

from eppark.console.routing import websocket_application  # noqa: E402
from eppark.devices.ingress import DeviceIngress  # noqa: E402

device_ingress = DeviceIngress(django_application)  # HTTP: camera pushes, then Django
application = ProtocolTypeRouter({"http": device_ingress, "websocket": websocket_application})
