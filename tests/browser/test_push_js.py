"""static/js/push.js in real Chromium: against a scripted fake WebSocket (every frame and timer under the test's
control, timers shortened through the client's options) and once against the real ``/ws/push``."""

from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import expect

WAIT_MS = 10_000

# A WebSocket double the test drives from Python: it records what the client sends and lets the test open,
# answer and close each socket. Timers stay real but short (the client's options), so back-off is measured.
FAKE_WEBSOCKET = """
window.sockets = [];
window.FakeWebSocket = class {
  constructor(url) {
    this.url = url; this.readyState = 0; this.sent = []; this.openedAt = performance.now();
    window.sockets.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.readyState = 3; this.closedWith = code; this.onclose({code: code || 1005}); }
  // the test's side
  accept() { this.readyState = 1; this.onopen({}); }
  reply(frame) { this.onmessage({data: JSON.stringify(frame)}); }
  drop(code) { this.readyState = 3; this.onclose({code: code}); }
};
window.received = [];
window.statuses = [];
window.makeClient = (options) => {
  const client = new HubPush(Object.assign({url: "ws://fake/ws/push", WebSocket: FakeWebSocket,
    minDelay: 40, maxDelay: 160, pingInterval: 60000, pongTimeout: 60000}, options || {}));
  client.onstatus = (status, detail) => window.statuses.push(status);
  return client;
};
"""


@pytest.fixture
def js(page, hub_server):
    page.goto("/login/")
    page.add_script_tag(url="/static/js/push.js")
    page.evaluate(FAKE_WEBSOCKET)
    return page


def sent(page, socket: int = -1) -> list[dict]:
    return page.evaluate(f"window.sockets.at({socket}).sent")


def test_subscribe_sends_the_filter_with_an_id_and_the_ack_resolves_ready(js):
    js.evaluate("""() => {
        window.client = makeClient().open();
        sockets[0].accept();
        window.sub = client.subscribe("/news/+/sport", (m) => received.push(["sport", m]));
        window.other = client.subscribe("/news/+/weather", (m) => received.push(["weather", m]));
        sub.ready.then(() => window.acked = true);
    }""")
    frames = sent(js)
    assert frames == [
        {"op": "subscribe", "topic": "/news/+/sport", "id": 1},
        {"op": "subscribe", "topic": "/news/+/weather", "id": 2},
    ]
    js.evaluate("""sockets[0].reply({op: "ack", id: 1})""")
    js.wait_for_function("window.acked === true", timeout=WAIT_MS)

    js.evaluate("""sockets[0].reply({op: "message", topic: "/news/europe/sport", payload: {score: "2-1"},
                                    retained: false, ts: "2026-11-28T07:30:00.000Z", subs: [1]})""")
    received = js.evaluate("received")
    assert received == [
        [
            "sport",
            {
                "topic": "/news/europe/sport",
                "payload": {"score": "2-1"},
                "retained": False,
                "ts": "2026-11-28T07:30:00.000Z",
                "encoding": None,
            },
        ]
    ], "only the subscription the server named gets the message"


def test_a_refused_subscription_rejects_with_the_servers_message_and_is_not_sent_again(js):
    js.evaluate("""() => {
        window.client = makeClient().open();
        sockets[0].accept();
        window.sub = client.subscribe("/secret/#", () => {});
        sub.ready.catch((error) => window.refusal = error.message);
        sockets[0].reply({op: "error", id: sub.id, message: "not granted: /secret/#"});
    }""")
    js.wait_for_function("window.refusal !== undefined", timeout=WAIT_MS)
    assert js.evaluate("window.refusal") == "not granted: /secret/#"
    js.evaluate("sockets[0].drop(1006)")
    js.wait_for_function("sockets.length === 2", timeout=WAIT_MS)
    js.evaluate("sockets[1].accept()")
    assert sent(js, 1) == [], "a refused subscription is not made again after the reconnect"


def test_after_a_lost_connection_it_reconnects_with_growing_back_off_and_subscribes_again_with_the_same_ids(js):
    js.evaluate("""() => {
        window.client = makeClient({minDelay: 40, maxDelay: 160}).open();
        sockets[0].accept();
        client.subscribe("/home/#", (m) => received.push(m.topic));
        sockets[0].reply({op: "ack", id: 1});
        // Refuse four connection attempts in a row, then accept the fifth.
        window.dropUntil = (n) => {
          const check = () => {
            const last = sockets.at(-1);
            if (sockets.length >= n) { last.accept(); return; }
            if (last.readyState === 0 && !last.dropped) {
              last.dropped = true;
              last.drop(1006);
            }
            setTimeout(check, 2);
          };
          check();
        };
        sockets[0].drop(1006);
        dropUntil(6);
    }""")
    js.wait_for_function("sockets.length === 6 && sockets[5].readyState === 1", timeout=WAIT_MS)
    opened = js.evaluate("sockets.map((s) => s.openedAt)")
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened[1:])]
    # Back-off 40, 80, 160, 160 ms with jitter in [half, whole]: it grows and is capped.
    assert gaps[0] >= 20
    assert gaps[1] >= 40
    assert all(gap <= 160 + 60 for gap in gaps), f"capped at maxDelay: {gaps}"
    assert gaps[2] >= 80
    assert sent(js, 5) == [{"op": "subscribe", "topic": "/home/#", "id": 1}], "the same subscription, same id"
    js.evaluate("""sockets[5].reply({op: "message", topic: "/home/kitchen/measure/1", payload: 21.5, subs: [1]})""")
    assert js.evaluate("received") == ["/home/kitchen/measure/1"], "the old callback still works"
    statuses = js.evaluate("statuses")
    assert statuses[:2] == ["connecting", "open"]
    assert "reconnecting" in statuses
    assert statuses[-1] == "open"


def test_not_signed_in_4401_stops_reconnecting(js):
    js.evaluate("""() => { window.client = makeClient().open(); sockets[0].drop(4401); }""")
    js.wait_for_timeout(300)
    assert js.evaluate("sockets.length") == 1
    assert js.evaluate("client.status") == "closed"


def test_a_missing_pong_closes_the_connection_with_4000_and_reconnects(js):
    js.evaluate(
        """() => { window.client = makeClient({pingInterval: 50, pongTimeout: 50}).open(); sockets[0].accept(); }"""
    )
    js.wait_for_function("sockets.length === 2", timeout=WAIT_MS)
    assert js.evaluate("sockets[0].closedWith") == 4000
    assert js.evaluate("sockets[0].sent[0].op") == "ping"


def test_an_answered_ping_keeps_the_connection(js):
    js.evaluate("""() => {
        window.client = makeClient({pingInterval: 40, pongTimeout: 100}).open();
        sockets[0].accept();
        window.answering = setInterval(() => {
          for (const frame of sockets[0].sent) {
            if (!frame.answered) { frame.answered = true; sockets[0].reply({op: "pong", id: frame.id}); }
          }
        }, 5);
    }""")
    js.wait_for_timeout(500)
    assert js.evaluate("sockets.length") == 1
    assert js.evaluate("sockets[0].sent.length") >= 5


def test_publish_and_unsubscribe(js):
    js.evaluate("""() => {
        window.client = makeClient().open();
        sockets[0].accept();
        window.a = client.subscribe("/home/#", () => {});
        window.b = client.subscribe("/home/#", () => {});
        window.outcomes = [];
        client.publish("/home/living/action/3.12.0", {on: true}, {retain: true})
          .then(() => outcomes.push("published"));
        client.publish("/nope", 1).catch((error) => outcomes.push("refused: " + error.message));
    }""")
    frames = sent(js)
    assert frames[2] == {
        "op": "publish",
        "topic": "/home/living/action/3.12.0",
        "payload": {"on": True},
        "retain": True,
        "id": 3,
    }
    assert frames[3]["op"] == "publish"
    js.evaluate("""() => {
        sockets[0].reply({op: "ack", id: 3});
        sockets[0].reply({op: "error", id: 4, message: "not granted"});
    }""")
    js.wait_for_function("outcomes.length === 2", timeout=WAIT_MS)
    assert sorted(js.evaluate("outcomes")) == ["published", "refused: not granted"]

    js.evaluate("() => { a.unsubscribe(); }")
    assert len(sent(js)) == 4, "another local subscription still wants /home/#: nothing sent"
    js.evaluate("() => { b.unsubscribe().catch(() => {}); }")
    assert sent(js)[-1] == {"op": "unsubscribe", "topic": "/home/#", "id": 5}

    js.evaluate("sockets[0].drop(1006)")
    js.evaluate("client.publish('/home/x', 1).catch((error) => outcomes.push(error.message))")
    js.wait_for_function("outcomes.length === 3", timeout=WAIT_MS)
    assert js.evaluate("outcomes[2]") == "not connected"


# --- the real endpoint ------------------------------------------------------------------------------------------


def test_against_the_real_endpoint_a_dropped_socket_is_replaced_and_the_subscription_made_again(
    signed_in_page, hub_user
):
    from messaging import push

    user = hub_user("alice", staff=True)
    page = signed_in_page(user)
    page.goto("/live/")
    page.evaluate("""() => {
        window.got = [];
        window.client = new HubPush({minDelay: 50, maxDelay: 200});
        client.subscribe("/home/+/measure/#", (m) => got.push([m.topic, m.payload]));
        client.open();
    }""")
    page.wait_for_function("client.status === 'open'", timeout=WAIT_MS)
    # Frames on one connection are handled in order: the pong means the subscription is in place.
    assert page.evaluate("client.ping().then((reply) => reply.op)") == "pong"
    push.fanout_sync("/home/kitchen/measure/1", b"21.5")
    page.wait_for_function("got.length === 1", timeout=WAIT_MS)

    page.evaluate("client._socket.close()")  # what a network drop looks like to the page
    page.wait_for_function("client.status === 'reconnecting'", timeout=WAIT_MS)
    page.wait_for_function("client.status === 'open'", timeout=WAIT_MS)
    assert page.evaluate("client.ping().then((reply) => reply.op)") == "pong"
    push.fanout_sync("/home/kitchen/measure/1", b"22.0")
    page.wait_for_function("got.length === 2", timeout=WAIT_MS)
    assert page.evaluate("got") == [["/home/kitchen/measure/1", 21.5], ["/home/kitchen/measure/1", 22.0]]
    expect(page.get_by_test_id("live-status")).to_have_text("connected")
