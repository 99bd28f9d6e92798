"""Call-centre endpoints."""

from django.urls import path

from eppark.calls.views import cti_event

app_name = "calls"
urlpatterns = [path("<str:provider>/<str:key>", cti_event, name="event")]
