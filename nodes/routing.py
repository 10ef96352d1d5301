from django.urls import path

from nodes.consumers import NodePoolConsumer

websocket_urlpatterns = [path("ws/nodes/", NodePoolConsumer.as_asgi())]
