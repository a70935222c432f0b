"""The messaging app's WebSocket routes; ``hub/asgi.py`` mounts them behind ``messaging.auth.push_auth_stack``."""

from django.urls import path

from messaging.consumers import PushConsumer

websocket_urlpatterns = [path("ws/push", PushConsumer.as_asgi())]
