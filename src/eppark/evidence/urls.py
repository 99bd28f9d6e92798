"""Evidence routes: by record for staff, by signed token for robots and phones."""

from django.urls import path

from eppark.evidence import views

app_name = "evidence"
urlpatterns = [
    path("s/<str:token>/", views.signed_file, name="signed"),
    path("<slug:kind>/<int:pk>/<slug:field>/", views.staff_file, name="staff"),
]
