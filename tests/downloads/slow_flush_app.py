"""The hub's ASGI application with an audit writer that only writes when it stops (for the shutdown test)."""

from downloads import audit
from hub.asgi import application

audit.writer.flush_interval = 3600
audit.writer.batch_rows = 100_000

__all__ = ["application"]
