"""The drivers' pages (the robots' ``/q/<token>`` stays in ``eppark.urls``): result, lot, OAuth."""

from django.urls import path

from eppark.payments import identity
from eppark.payments.pages.lot import lot_page
from eppark.payments.pages.result import result

app_name = "driver"

urlpatterns = [
    path("pay/<str:token>/", result, name="result"),  # the cashier's return: 支付成功 or not yet
    path("lot/<slug:code>/", lot_page, name="lot"),  # the lobby's QR code: pay inside the lot
    path("wx/oauth/", identity.oauth_return, name="wechat_oauth"),  # WeChat's snsapi_base return
]
