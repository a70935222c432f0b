import pytest

from hub import asgi, embedded
from hub.workers import Worker


class Idle(Worker):
    name = "idle"

    def serve(self):
        self.stopping.wait()


async def run_lifespan(app, messages):
    queue = list(messages)
    sent = []

    async def receive():
        return queue.pop(0)

    async def send(message):
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


@pytest.fixture
def one_registered_part(monkeypatch):
    monkeypatch.setattr(embedded, "_factories", {})
    monkeypatch.setattr(embedded, "_running", [])
    workers = []

    def factory():
        workers.append(Idle())
        return workers[-1]

    embedded.register("idle", factory)
    return workers


async def test_lifespan_starts_the_embedded_parts_and_stops_them_at_shutdown(one_registered_part):
    app = asgi.build_application(run_embedded=True)
    sent = await run_lifespan(app, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    (worker,) = one_registered_part
    assert worker.stopping.is_set()
    assert not worker.alive


async def test_production_web_processes_start_no_embedded_parts(one_registered_part):
    app = asgi.build_application(run_embedded=False)
    sent = await run_lifespan(app, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert one_registered_part == []


async def test_a_part_that_cannot_start_fails_the_startup_with_its_reason(monkeypatch):
    monkeypatch.setattr(embedded, "_factories", {})
    monkeypatch.setattr(embedded, "_running", [])

    def broken():
        raise RuntimeError("no serial port")

    embedded.register("serial", broken)
    app = asgi.build_application(run_embedded=True)
    sent = await run_lifespan(app, [{"type": "lifespan.startup"}])
    assert sent == [{"type": "lifespan.startup.failed", "message": "no serial port"}]
