"""Device endpoint routes (contracts.md "Device-facing HTTP endpoints")."""

from django.urls import path, re_path

from eppark.devices import views

app_name = "devices"

urlpatterns = [
    re_path(
        r"^lpr/(?P<vendor>dahua)/(?P<key>[^/]+)/"
        r"(?P<tail>NotificationInfo/(?:TollgateInfo|KeepAlive|DeviceInfo))/?$",
        views.lpr_push,
        name="lpr_dahua",
    ),
    path("lpr/<str:vendor>/<str:key>", views.lpr_push, name="lpr_push"),
]
