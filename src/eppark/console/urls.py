"""Console routes: the live pages and their JSON twins."""

from django.urls import path

from eppark.console import live, opens

app_name = "console"
urlpatterns = [
    path("robots/<str:code>/", live.robot_page, name="robot"),
    path("robots/<str:code>/state.json", live.robot_state_json, name="robot_state"),
    path("city/", live.city_page, name="city"),
    path("city.json", live.city_json, name="city_json"),
    path("congestion/", live.congestion_page, name="congestion"),
    path("congestion.json", live.congestion_json, name="congestion_json"),
    path("opens/", opens.opens_page, name="opens"),  # 开闸列表
]
