"""Start-up's objects are frozen out of the garbage collector once the lifespan has started the hub."""

from __future__ import annotations

import asyncio
import gc

from hub import asgi
from tests.hub.test_asgi import run_lifespan


def test_after_start_up_the_collector_no_longer_walks_what_start_up_made():
    async def app(scope, receive, send):
        raise AssertionError("a lifespan message never reaches the app")

    gc.unfreeze()
    try:
        sent = asyncio.run(
            run_lifespan(
                asgi.Lifespan(app, run_embedded=False),
                [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
            )
        )
        assert [message["type"] for message in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        # Django, the apps and their modules: far more than a handful of objects.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
