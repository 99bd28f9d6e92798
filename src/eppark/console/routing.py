"""WebSocket routes: the agent desk (``/ws/console/``)."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from eppark.console.consumers import DeskConsumer

websocket_application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter([path("ws/console/", DeskConsumer.as_asgi())]))
)
