from django.urls import path

from nodes import api

urlpatterns = [
    path("nodes/", api.NodeListView.as_view(), name="api-nodes"),
    path("nodes/heartbeat/", api.HeartbeatView.as_view(), name="api-node-heartbeat"),
    path("nodes/<id:pk>/<str:action>/", api.NodeActionView.as_view(), name="api-node-action"),
]
