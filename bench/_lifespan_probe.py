"""``hub.asgi:application`` plus a note of which process completed its lifespan start-up.

The benchmark serves this instead of the bare app so it can tell whether a server ran the hub's lifespan
(the embedded default needs it) and whether that happened in the process the server was started as.
Per request it costs one comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

from hub.asgi import application as hub_application

MARKER = Path(os.environ["BENCH_LIFESPAN_MARKER"])


async def application(scope, receive, send):
    if scope["type"] != "lifespan":
        await hub_application(scope, receive, send)
        return

    async def noting_send(message):
        if message["type"] == "lifespan.startup.complete":
            MARKER.write_text(str(os.getpid()))
        await send(message)

    await hub_application(scope, receive, noting_send)
