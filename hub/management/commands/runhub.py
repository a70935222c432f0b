"""Serve the hub as the one embedded process (what ``make run`` calls)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from hub.services import admin_account_ensure


class Command(BaseCommand):
    help = "Serve the hub on HUB_BIND as one process; the ASGI lifespan starts the embedded workers."

    def handle(self, *args, **options):
        import uvicorn

        password = admin_account_ensure()
        if password:
            self.stdout.write(
                self.style.WARNING(
                    "Created the first admin account.\n"
                    f"    username: admin\n    password: {password}\n"
                    "This password is shown only now: write it down, then change it in the admin."
                )
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
            ws_per_message_deflate=False,
            # The embedded server faces its clients directly: an X-Forwarded-For from anyone, loopback
            # included, would let that client pick the address sign-in throttling counts.
            proxy_headers=False,
        )
