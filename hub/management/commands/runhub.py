"""Serve the hub as the one embedded process (what ``make run`` calls)."""

import ipaddress
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from hub.services import admin_account_ensure

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


class Command(BaseCommand):
    help = "Serve the hub on HUB_BIND as one process; the ASGI lifespan starts the embedded workers."

    def handle(self, *args, **options):
        import uvicorn

        # The composition root knows the apps' limits (hub names no app elsewhere); uvicorn reuses this module.
        from hub.asgi import WEBSOCKET_IMPLEMENTATION, websocket_max_size

        password = admin_account_ensure()
        if password:
            self.stdout.write(
                self.style.WARNING(
                    "Created the first admin account.\n"
                    f"    username: admin\n    password: {password}\n"
                    "This password is shown only now: write it down, then change it in the admin."
                )
            )
        if settings.DEBUG and not is_loopback(settings.HUB_BIND_HOST):
            # Debug pages show the URL map, settings and source code to whoever reaches the port.
            logger.warning(
                "DEBUG is on and HUB_BIND=%s lets other machines in: they see Django's debug pages on any error "
                "or mistyped address. Unset DEBUG, or bind to 127.0.0.1.",
                settings.HUB_BIND,
            )
        self.stdout.write(f"The hub is at {settings.HUB_PUBLIC_URL}/ (Ctrl-C stops it)")
        uvicorn.run(
            "hub.asgi:application",
            host=settings.HUB_BIND_HOST,
            port=settings.HUB_BIND_PORT,
            workers=1,
            reload=False,
            lifespan="on",
            log_level="info",
            # A line per request costs about a quarter of a small download's time (bench/downloads.py); errors
            # are still logged. Live-push frames are small JSON: compressing each costs more than it saves.
            access_log=False,
            ws=WEBSOCKET_IMPLEMENTATION,
            ws_per_message_deflate=False,
            # The embedded server faces its clients directly: an X-Forwarded-For from anyone, loopback
            # included, would let that client pick the address sign-in throttling counts.
            proxy_headers=False,
            # A WebSocket message is read whole before the hub can refuse it: no bigger than a request may be.
            ws_max_size=websocket_max_size(),
        )
