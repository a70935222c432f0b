/*
 * The hub's live-push client: one WebSocket to /ws/push, MQTT-style topic subscriptions, automatic reconnect.
 * No build step, no dependencies: include it with a <script> tag and use window.HubPush.
 *
 *   const push = HubPush.connect();                       // ws(s)://<this page's host>/ws/push, session sign-in
 *   const sub = push.subscribe("/news/+/sport", (m) => console.log(m.topic, m.payload, m.retained, m.ts));
 *   sub.ready.then(() => ..., (err) => ...);              // the server's ack, or its error (e.g. not granted)
 *   push.publish("/home/living/action/3.12.0", 1);        // a Promise: the ack or the error
 *   sub.unsubscribe();
 *   push.onstatus = (status, detail) => ...;              // "connecting" | "open" | "reconnecting" | "closed"
 *
 * The protocol (docs/architecture/live-push.md): JSON text frames; every request carries an id answered by
 * {"op": "ack"} or {"op": "error"}; a message lists the ids of the subscriptions it matched in "subs".
 * After a lost connection it reconnects with back-off (minDelay doubling to maxDelay, with jitter) and sends
 * every subscription again with its own id, so callbacks keep working. A close with 4401 (not signed in)
 * stops reconnecting. It pings every pingInterval ms and treats a pong missing after pongTimeout ms as a
 * dead connection (a phone waking up, a NAT forgetting the socket). Every timer is an option.
 */
(function (global) {
  "use strict";

  const CLOSE_NOT_AUTHENTICATED = 4401;
  // The hub's other close codes (docs/architecture/live-push.md): each is worth a reconnect after the back-off.
  const CLOSE_REASONS = {
    4000: "heartbeat lost",
    4408: "too slow to keep up",
    4429: "too many open connections for this account: close another tab or device",
  };

  const DEFAULTS = {
    url: null,
    minDelay: 500,
    maxDelay: 30000,
    pingInterval: 20000, // the server closes a connection silent for 60 s (4000); any frame counts
    pongTimeout: 10000,
    WebSocket: null,
  };

  function defaultUrl() {
    const scheme = global.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + global.location.host + "/ws/push";
  }

  // MQTT 3.1.1 matching, for a server message that does not list its subscriptions.
  function matches(filter, topic) {
    if (topic.startsWith("$") && (filter[0] === "+" || filter[0] === "#")) return false;
    const f = filter.split("/");
    const t = topic.split("/");
    for (let i = 0; i < f.length; i++) {
      if (f[i] === "#") return true;
      if (i >= t.length) return false;
      if (f[i] !== "+" && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  }

  class PushError extends Error {
    constructor(message, reply) {
      super(message);
      this.name = "PushError";
      this.reply = reply || null;
    }
  }

  class Subscription {
    constructor(client, filter, id, callback) {
      this.client = client;
      this.filter = filter;
      this.id = id;
      this.callback = callback;
      this.active = true;
      this._settle(); // a fresh `ready` for each (re)subscription
    }

    _settle() {
      this.ready = new Promise((resolve, reject) => {
        this._resolve = resolve;
        this._reject = reject;
      });
      // Nobody may be listening for the error: keep it from being reported as unhandled.
      this.ready.catch(() => {});
    }

    unsubscribe() {
      return this.client.unsubscribe(this);
    }
  }

  class HubPush {
    constructor(options) {
      this.options = Object.assign({}, DEFAULTS, options || {});
      this.url = this.options.url || defaultUrl();
      this.status = "closed";
      this.onstatus = null;
      this.onmessage = null; // every message, whatever it matched
      this._socket = null;
      this._nextId = 1;
      this._subscriptions = new Map(); // id -> Subscription
      this._pending = new Map(); // request id -> {resolve, reject}
      this._attempt = 0;
      this._reconnectTimer = null;
      this._pingTimer = null;
      this._pongTimer = null;
      this._stopped = true;
    }

    static connect(options) {
      const client = new HubPush(options);
      client.open();
      return client;
    }

    open() {
      this._stopped = false;
      this._connect();
      return this;
    }

    close() {
      this._stopped = true;
      clearTimeout(this._reconnectTimer);
      this._stopTimers();
      if (this._socket) this._socket.close(1000, "closed by the page");
      this._setStatus("closed");
    }

    get connected() {
      return this._socket !== null && this._socket.readyState === 1;
    }

    subscribe(filter, callback) {
      if (typeof filter !== "string" || filter === "") throw new TypeError("a topic filter is a non-empty string");
      if (typeof callback !== "function") throw new TypeError("subscribe needs a callback");
      const subscription = new Subscription(this, filter, this._nextId++, callback);
      this._subscriptions.set(subscription.id, subscription);
      if (this.connected) this._sendSubscribe(subscription);
      return subscription;
    }

    unsubscribe(subscription) {
      if (!subscription.active) return Promise.resolve();
      subscription.active = false;
      this._subscriptions.delete(subscription.id);
      const stillWanted = [...this._subscriptions.values()].some((other) => other.filter === subscription.filter);
      if (stillWanted || !this.connected) return Promise.resolve();
      return this._request({ op: "unsubscribe", topic: subscription.filter });
    }

    publish(topic, payload, options) {
      const retain = Boolean(options && options.retain);
      return this._request({ op: "publish", topic: topic, payload: payload === undefined ? null : payload, retain: retain });
    }

    ping() {
      return this._request({ op: "ping" });
    }

    // -- the connection --

    _connect() {
      const Socket = this.options.WebSocket || global.WebSocket;
      this._setStatus(this._attempt === 0 ? "connecting" : "reconnecting");
      let socket;
      try {
        socket = new Socket(this.url);
      } catch (error) {
        this._scheduleReconnect();
        return;
      }
      this._socket = socket;
      socket.onopen = () => {
        if (socket !== this._socket) return;
        this._attempt = 0;
        this._setStatus("open");
        for (const subscription of this._subscriptions.values()) this._sendSubscribe(subscription);
        this._startPings();
      };
      socket.onmessage = (event) => {
        if (socket === this._socket) this._receive(event.data);
      };
      socket.onclose = (event) => {
        if (socket !== this._socket) return;
        this._socket = null;
        this._stopTimers();
        this._failPending(new PushError("connection closed (" + event.code + ")"));
        if (this._stopped) return;
        if (event.code === CLOSE_NOT_AUTHENTICATED) {
          this._stopped = true;
          this._setStatus("closed", "not signed in");
          return;
        }
        this._scheduleReconnect(event.code);
      };
      socket.onerror = () => {}; // a close event always follows
    }

    _scheduleReconnect(code) {
      clearTimeout(this._reconnectTimer);
      const base = Math.min(this.options.maxDelay, this.options.minDelay * Math.pow(2, this._attempt));
      const delay = base / 2 + Math.random() * (base / 2);
      this._attempt += 1;
      const reason = CLOSE_REASONS[code] ? CLOSE_REASONS[code] + "; " : "";
      this._setStatus("reconnecting", code === undefined ? "" : reason + "closed with " + code);
      this._reconnectTimer = setTimeout(() => {
        if (!this._stopped) this._connect();
      }, delay);
    }

    _startPings() {
      this._stopTimers();
      this._pingTimer = setInterval(() => {
        if (!this.connected || this._pongTimer !== null) return;
        this._pongTimer = setTimeout(() => {
          // No answer: the connection is dead even if the socket has not noticed yet.
          this._pongTimer = null;
          if (this._socket) this._socket.close(4000, "heartbeat lost");
        }, this.options.pongTimeout);
        this._request({ op: "ping" }).then(
          () => {
            clearTimeout(this._pongTimer);
            this._pongTimer = null;
          },
          () => {}
        );
      }, this.options.pingInterval);
    }

    _stopTimers() {
      clearInterval(this._pingTimer);
      clearTimeout(this._pongTimer);
      this._pingTimer = null;
      this._pongTimer = null;
    }

    _sendSubscribe(subscription) {
      subscription._settle();
      this._send({ op: "subscribe", topic: subscription.filter, id: subscription.id });
      this._pending.set(subscription.id, {
        resolve: (reply) => subscription._resolve(reply),
        reject: (error) => subscription._reject(error),
      });
    }

    _request(frame) {
      if (!this.connected) return Promise.reject(new PushError("not connected"));
      const id = this._nextId++;
      return new Promise((resolve, reject) => {
        this._pending.set(id, { resolve: resolve, reject: reject });
        this._send(Object.assign({}, frame, { id: id }));
      });
    }

    _send(frame) {
      this._socket.send(JSON.stringify(frame));
    }

    _failPending(error) {
      const pending = [...this._pending.values()];
      this._pending.clear();
      for (const waiter of pending) waiter.reject(error);
    }

    _receive(text) {
      let frame;
      try {
        frame = JSON.parse(text);
      } catch (error) {
        return;
      }
      switch (frame.op) {
        case "message":
          this._deliver(frame);
          break;
        case "ack":
        case "pong":
          this._settleRequest(frame.id, true, frame);
          break;
        case "error":
          this._settleRequest(frame.id, false, frame);
          break;
        default:
          break;
      }
    }

    _settleRequest(id, ok, frame) {
      const waiter = this._pending.get(id);
      if (!waiter) return;
      this._pending.delete(id);
      if (ok) {
        waiter.resolve(frame);
      } else {
        waiter.reject(new PushError(frame.message || "refused", frame));
        // A refused subscription is not sent again after a reconnect.
        const subscription = this._subscriptions.get(id);
        if (subscription) {
          subscription.active = false;
          this._subscriptions.delete(id);
        }
      }
    }

    _deliver(frame) {
      const message = {
        topic: frame.topic,
        payload: frame.payload,
        retained: Boolean(frame.retained),
        ts: frame.ts,
        encoding: frame.encoding || null,
      };
      if (this.onmessage) this.onmessage(message);
      // "subs" names the subscriptions the server matched (a retained value sent for a new subscription names
      // only that one); local subscriptions sharing one of their filters hear it too. Without usable ids
      // (none given, or subscriptions already gone here) the filters are matched locally.
      const named = Array.isArray(frame.subs) ? frame.subs.map((id) => this._subscriptions.get(id)).filter(Boolean) : [];
      const filters = new Set(named.map((subscription) => subscription.filter));
      const targets = [...this._subscriptions.values()].filter((subscription) =>
        filters.size ? filters.has(subscription.filter) : matches(subscription.filter, frame.topic)
      );
      for (const subscription of targets) {
        try {
          subscription.callback(message, subscription);
        } catch (error) {
          if (global.console) global.console.error("HubPush callback for " + subscription.filter + " failed", error);
        }
      }
    }

    _setStatus(status, detail) {
      this.status = status;
      if (this.onstatus) this.onstatus(status, detail || "");
    }
  }

  HubPush.matches = matches;
  HubPush.PushError = PushError;
  global.HubPush = HubPush;
})(typeof window !== "undefined" ? window : globalThis);
