"""Payments' routes: providers' notifications, the sandbox's cashier page."""

from django.urls import path

from eppark.payments import notify, sandbox_views

app_name = "payments"

urlpatterns = [
    path("payments/notify/<str:provider>/", notify.notification, name="notify"),
    path("sandbox/cashier/<str:token>/", sandbox_views.cashier, name="sandbox_cashier"),
]
