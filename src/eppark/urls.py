"""URL routes: the back office and the language switch."""

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

admin.site.site_header = _("EP Park back office")
admin.site.site_title = _("EP Park")
admin.site.index_title = _("Lots, devices, passes and orders")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("devices/", include("eppark.devices.urls")),
    path("console/", include("eppark.console.urls")),
    path("evidence/", include("eppark.evidence.urls")),  # photos by record or signed link
]
