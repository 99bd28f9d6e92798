"""Console routes: the agent desk, the live pages and their JSON twins."""

from django.urls import path

from eppark.console import desk_views, live, opens

app_name = "console"
urlpatterns = [
    path("", desk_views.desk_page, name="desk"),
    path("desk/state.json", desk_views.desk_json, name="desk_state"),
    path("desk/seat/", desk_views.bind_seat, name="desk_seat"),
    path("desk/lots.json", desk_views.lots_json, name="desk_lots"),
    path("desk/callout/", desk_views.call_out, name="desk_callout"),
    path("desk/calls/<int:pk>/take/", desk_views.take, name="desk_take"),
    path("desk/calls/<int:pk>/query/", desk_views.query, name="desk_query"),
    path("desk/calls/<int:pk>/open/", desk_views.open_gate, name="desk_open"),
    path(
        "desk/calls/<int:pk>/send_to_display/",
        desk_views.send_to_display,
        name="desk_send_to_display",
    ),
    path("desk/calls/<int:pk>/quick_pay/", desk_views.quick_pay, name="desk_quick_pay"),
    path(
        "desk/calls/<int:pk>/visitor_release/",
        desk_views.visitor_release,
        name="desk_visitor_release",
    ),
    path("desk/calls/<int:pk>/abnormal_open/", desk_views.abnormal_open, name="desk_abnormal_open"),
    path(
        "desk/calls/<int:pk>/confirm_vehicle/",
        desk_views.confirm_vehicle,
        name="desk_confirm_vehicle",
    ),
    path("desk/calls/<int:pk>/capture_id/", desk_views.capture_id, name="desk_capture_id"),
    path("desk/calls/<int:pk>/capture_scene/", desk_views.capture_scene, name="desk_capture_scene"),
    path("desk/calls/<int:pk>/close/", desk_views.close, name="desk_close"),
    path("robots/<str:code>/", live.robot_page, name="robot"),
    path("robots/<str:code>/state.json", live.robot_state_json, name="robot_state"),
    path("city/", live.city_page, name="city"),
    path("city.json", live.city_json, name="city_json"),
    path("congestion/", live.congestion_page, name="congestion"),
    path("congestion.json", live.congestion_json, name="congestion_json"),
    path("opens/", opens.opens_page, name="opens"),  # 开闸列表
]
