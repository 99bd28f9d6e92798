"""URL routes: the back office, the console, device endpoints, QR landing pages.

Unknown URLs and errors render the friendly templates/404.html, 400.html, 500.html.
"""

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from eppark.stays.qr_pages import qr_page

admin.site.site_header = _("EP Park back office")
admin.site.site_title = _("EP Park")
admin.site.index_title = _("Lots, devices, passes and orders")

urlpatterns = [
    # "/" and the admin's "view site" link lead to the console
    path("", RedirectView.as_view(pattern_name="console:city"), name="home"),
    path("q/<str:token>", qr_page, name="qr"),  # robots' QR codes: the drivers' pages
    path("", include("eppark.payments.page_urls")),  # /pay/<token>/, /lot/<code>/, /wx/oauth/
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("devices/", include("eppark.devices.urls")),
    path("cti/", include("eppark.calls.urls")),  # call-centre events
    path("console/", include("eppark.console.urls")),
    path("evidence/", include("eppark.evidence.urls")),  # photos by record or signed link
    path("", include("eppark.payments.urls")),  # notifications, the sandbox's cashier
]
