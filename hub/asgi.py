"""The ASGI entry point: Django for HTTP, Channels for WebSockets, and a lifespan that runs the embedded parts.

Channels' ``ProtocolTypeRouter`` has no lifespan, so :class:`Lifespan` wraps it.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)
from django.conf import settings  # noqa: E402

from hub import embedded  # noqa: E402

logger = logging.getLogger(__name__)


class Lifespan:
    """Answer ASGI lifespan messages: start the embedded parts at start-up, stop them at shutdown."""

    def __init__(self, app, *, run_embedded: bool) -> None:
        self.app = app
        self.run_embedded = run_embedded

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.run_embedded:
                        await asyncio.to_thread(embedded.start_all)
                except Exception as exc:
                    logger.exception("embedded start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                # What start-up made (Django, the apps, their modules: ~130,000 objects) lives as long as the
                # process: out of the collector's sight, each full collection stops walking it again (~6 of ~90
                # µs of CPU a small download: docs/downloads.md#why-it-is-fast-the-download-path-before-django).
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(embedded.stop_all)
                await send({"type": "lifespan.shutdown.complete"})
                return


class BodySpaceGuard:
    """Django reads a request's whole body into a temporary file before any view runs (``ASGIHandler.read_body``,
    the system's temp folder past 2.5 MB): a disk filling up there, e.g. under an admin's upload, would be a bare
    500. This answers 507 with a sentence saying what happened instead; nothing of the body is kept (the spooled
    file is anonymous)."""

    MESSAGE = (
        b"The server's disk is full: the request (an upload?) could not be received, and nothing of it was kept. "
        b"Free some space on the hub's temporary folder (TMPDIR) and try again.\n"
    )

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except OSError as exc:
            if started or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            logger.error("no space left receiving %s %s: %s", scope.get("method"), scope.get("path"), exc)
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(self.MESSAGE))]
            await send({"type": "http.response.start", "status": 507, "headers": headers})
            await send({"type": "http.response.body", "body": self.MESSAGE})


#: uvicorn's WebSocket implementation for every server of the hub (runhub, the ``web`` service, the tests' servers),
#: named rather than left to uvicorn's "auto" (which picks it today, and picked websockets' older asyncio protocol,
#: with its own tasks per connection, in earlier releases): in bench/push.py it costs about a quarter less CPU per
#: live-push delivery and a tenth less memory per socket than that one; wsproto did about the same
#: (docs/architecture/live-push.md, "Serving it").
WEBSOCKET_IMPLEMENTATION = "websockets-sansio"


def websocket_max_size() -> int:
    """The largest WebSocket message the server reads: live push's frame limit (its only WebSocket route).

    Here, in the composition root, so the server command (``runhub``) names no app.
    """
    from messaging.push.frames import MAX_FRAME_BYTES

    return MAX_FRAME_BYTES


def build_application(*, run_embedded: bool):
    from channels.routing import URLRouter

    # Signed downloads answer before Django: its request cycle is too slow for that path (docs/benchmarks.md).
    from downloads.asgi import downloads_router
    from messaging.auth import push_auth_stack
    from messaging.routing import websocket_urlpatterns

    router = ProtocolTypeRouter(
        {
            "http": downloads_router(BodySpaceGuard(django_asgi_app)),
            # The origin check (scheme, host and port: messaging.auth) lets Origin-less scripts on to the token check.
            "websocket": push_auth_stack(URLRouter(websocket_urlpatterns)),
        }
    )
    return Lifespan(router, run_embedded=run_embedded)


application = build_application(run_embedded=settings.EMBEDDED)
