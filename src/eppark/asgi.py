"""ASGI entry point: the web server, back office and device endpoints."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eppark.settings")
application = get_asgi_application()
