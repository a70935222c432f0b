"""The per-process fan-out's costs: no scan of unrelated subscriptions, one frame per distinct ``subs`` list."""

from __future__ import annotations

import asyncio
import json

from messaging import push
from messaging.push import hub as hub_module
from messaging.push.bus import MemoryBus
from messaging.push.hub import PushHub


class Tripwire(dict):
    """A subscription table that records every lookup: a socket the hub has no business touching."""

    touched = 0

    def get(self, *args):
        Tripwire.touched += 1
        return super().get(*args)

    def __getitem__(self, key):
        Tripwire.touched += 1
        return super().__getitem__(key)

    def __contains__(self, key):
        Tripwire.touched += 1
        return super().__contains__(key)

    def __iter__(self):
        Tripwire.touched += 1
        return super().__iter__()

    def items(self):
        Tripwire.touched += 1
        return super().items()


class WatchedFilters(dict):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.read: list[str] = []
        self.iterated = False

    def __getitem__(self, key):
        self.read.append(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.append(key)
        return super().get(key, default)

    def __iter__(self):
        self.iterated = True
        return super().__iter__()

    def items(self):
        self.iterated = True
        return super().items()

    def values(self):
        self.iterated = True
        return super().values()


class Socket:
    def __init__(self, subscriptions=None) -> None:
        self.subscriptions = subscriptions if subscriptions is not None else {}
        self.frames: list[str] = []

    def offer(self, frame: str, message=None) -> None:
        self.frames.append(frame)


async def test_a_message_touches_only_the_sockets_whose_filters_match(monkeypatch):
    hub = PushHub(MemoryBus(), loop=asyncio.get_running_loop())
    bystanders = []
    for n in range(20_000):
        socket = Socket(Tripwire())
        hub.subscribe(socket, f"/other/{n}/#" if n % 2 else f"/other/+/{n}", 1)
        bystanders.append(socket)
    watcher = Socket()
    hub.subscribe(watcher, "/news/+/sport", 7)
    Tripwire.touched = 0
    # The hub's per-filter socket tables, watched: only the matching filter's may be read, none iterated.
    hub._sockets = WatchedFilters(hub._sockets)

    hub.deliver(push.message("/news/europe/sport", b"goal"))

    assert [json.loads(frame)["subs"] for frame in watcher.frames] == [[7]]
    assert Tripwire.touched == 0
    assert hub._sockets.read == ["/news/+/sport"]
    assert not hub._sockets.iterated
    assert not any(socket.frames for socket in bystanders)


async def test_the_frame_is_built_once_per_distinct_subs_list_not_per_socket(monkeypatch):
    built = []
    real = hub_module.message_frame

    def counting(prefix, subs):
        built.append(tuple(subs))
        return real(prefix, subs)

    monkeypatch.setattr(hub_module, "message_frame", counting)
    hub = PushHub(MemoryBus(), loop=asyncio.get_running_loop())
    sockets = [Socket() for _ in range(1000)]
    for socket in sockets:
        hub.subscribe(socket, "/home/#", 1)
    for socket in sockets[:10]:
        hub.subscribe(socket, "/home/+/measure/#", 2)

    hub.deliver(push.message("/home/kitchen/measure/1", b"21.5"))

    assert sorted(built) == [(1,), (1, 2)]
    assert {frame for socket in sockets[10:] for frame in socket.frames} == {sockets[-1].frames[0]}
    assert json.loads(sockets[0].frames[0])["subs"] == [1, 2]
