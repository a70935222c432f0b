/*
 * Room tiles (the home page and a room page): live, honest, and controllable.
 *
 * Live: any event under /events/heating/# over /ws/push (a room changed, a decision, an alert, a reading) makes the
 * page fetch its state (data-state-url: heating.page_state) again, at most once per burst; without the socket it
 * polls every data-poll-ms. The state is PATCHED into the server-rendered tiles: only text and attributes that
 * changed are touched and no element is replaced, so keyboard focus and scroll stay where they are.
 * Only alerts (new ones) and the offline banner are announced to screen readers (#rooms-announcer).
 *
 * Honest: when the socket or the state fetch fails the page says "Hub offline — values from 11:09" and greys the
 * values; when the hub's radio is down it says so (from the state); a stale sensor says since when. No WebSocket
 * close code is ever shown.
 *
 * Control (heating.control): plus/minus change the target at once on the page and send it half a second after the
 * last press (PATCH /v1/rooms/{id} {"target"}); the mode buttons PATCH {"mode"}; boost POSTs /v1/rooms/{id}/boost
 * and a running boost is stopped with DELETE. The house's away switch POSTs /house/away. The session's CSRF token
 * goes with each.
 *
 * window.hubRooms: {state, refresh, onState(callback), request(method, url, body)} for the room page's script.
 */
(function () {
  "use strict";

  const root = document.getElementById("rooms");
  if (!root) return;
  const dataElement = document.getElementById("rooms-data");
  let state = JSON.parse(dataElement.textContent);
  const announcer = document.getElementById("rooms-announcer");
  const offlineBanner = document.getElementById("hub-offline");
  const radioBanner = document.getElementById("radio-down");
  const signedOutBanner = document.getElementById("signed-out");
  let signedOut = false;
  const listeners = [];
  const SEND_AFTER_MS = 500;
  const OFFLINE_GRACE_MS = 1000;
  let refreshTimer = null;
  let socketOpen = false;
  let fetchFailed = false;
  let offlineTimer = null;
  let socketDownLong = false;
  let lastGoodAt = state.at;
  // Targets pressed but not yet confirmed by the hub: room id -> {value, timer}. The tile shows them, not the state.
  const pendingTargets = new Map();
  const knownAlerts = new Set(alertKeys(state));

  function alertKeys(someState) {
    const keys = [];
    for (const room of someState.rooms || []) for (const alert of room.alerts) keys.push(room.id + " " + alert.kind);
    return keys;
  }

  function announce(text) {
    if (!announcer) return;
    const line = document.createElement("p");
    line.textContent = text;
    announcer.append(line);
    // Keep the region short; what was read stays read.
    while (announcer.childElementCount > 5) announcer.firstElementChild.remove();
  }

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function setHidden(element, hidden) {
    if (element && element.hidden !== hidden) element.hidden = hidden;
  }

  function setTime(element, iso) {
    if (!element) return;
    if (!iso) {
      element.removeAttribute("datetime");
      setText(element, "");
      return;
    }
    if (element.getAttribute("datetime") === iso && element.textContent) return;
    element.setAttribute("datetime", iso);
    element.title = "";
    if (window.hubTime) window.hubTime.render(element.parentElement);
    else element.textContent = iso;
  }

  function clockTime(iso) {
    if (!iso) return "";
    return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
  }

  function field(tile, name) {
    return tile.querySelector('[data-field="' + name + '"]');
  }

  function targetText(value) {
    return value === null || value === undefined ? "off" : value.toFixed(1) + " °C";
  }

  function patchTile(tile, room) {
    const temperature = field(tile, "temperature");
    setText(temperature, room.temperature_text);
    temperature.classList.toggle("is-stale", room.stale);
    const stale = field(tile, "stale");
    setHidden(stale, !room.stale_text);
    setText(stale.querySelector('[data-part="text"]'), room.stale_text);
    setTime(stale.querySelector('[data-part="time"]'), room.stale && room.temperature !== null ? room.temperature_at : null);

    const heating = field(tile, "heating");
    setText(heating, room.heating_text);
    heating.classList.toggle("is-on", room.heating === true);
    heating.classList.toggle("is-unknown", room.heating === null || room.heating === undefined);

    const pending = pendingTargets.get(room.id);
    setText(field(tile, "target"), pending ? targetText(pending.value) : room.target_text);
    setText(field(tile, "mode_text"), room.mode_text);
    const sourceNote = field(tile, "source_note");
    setHidden(sourceNote, !room.source_note);
    setText(sourceNote.querySelector('[data-part="text"]'), room.source_note);
    const next = field(tile, "next_change");
    setHidden(next, !room.next_change);
    setText(next.querySelector('[data-part="text"]'), room.next_change);
    const boost = field(tile, "boost");
    setHidden(boost, !room.boost_until);
    setTime(boost.querySelector('[data-part="time"]'), room.boost_until);

    const alerts = field(tile, "alerts");
    // An alert someone acknowledged (heating.alert_acknowledged, from any page) stays, marked "seen".
    const alertSignature = (kind, message, seen) => kind + "\u0000" + message + "\u0000" + (seen ? "yes" : "no");
    const wanted = room.alerts.map((alert) => alertSignature(alert.kind, alert.message, alert.acknowledged)).join("\u0001");
    if (alerts.dataset.shown === undefined) {
      alerts.dataset.shown = [...alerts.children]
        .map((li) => alertSignature(li.dataset.kind, li.dataset.message, li.dataset.seen === "yes"))
        .join("\u0001");
    }
    if (alerts.dataset.shown !== wanted) {
      alerts.replaceChildren(
        ...room.alerts.map((alert) => {
          const item = document.createElement("li");
          item.dataset.kind = alert.kind;
          item.dataset.message = alert.message;
          item.dataset.seen = alert.acknowledged ? "yes" : "no";
          item.textContent = "⚠ " + alert.message;
          if (alert.acknowledged) {
            item.classList.add("is-seen");
            const seen = document.createElement("span");
            seen.className = "room-alert-seen";
            seen.textContent = " · seen";
            item.append(seen);
          }
          return item;
        })
      );
      alerts.dataset.shown = wanted;
    }
    setHidden(alerts, room.alerts.length === 0);

    // Controls: attributes and labels only (the buttons themselves stay, so focus stays on them).
    for (const button of tile.querySelectorAll('[data-action="target-down"], [data-action="target-up"]')) {
      const disabled = room.mode === "off";
      if (button.disabled !== disabled) button.disabled = disabled;
    }
    for (const button of tile.querySelectorAll('[data-action="mode"]')) {
      const chosen = button.dataset.mode === room.mode;
      if (button.getAttribute("aria-pressed") !== String(chosen)) {
        button.setAttribute("aria-pressed", String(chosen));
        button.classList.toggle("btn-primary", chosen);
        button.classList.toggle("btn-outline-primary", !chosen);
      }
    }
    const boostButton = field(tile, "boost_button");
    if (boostButton) {
      setText(boostButton, room.boost_until ? "Stop boost" : "Boost " + state.boost_minutes + " min");
      boostButton.dataset.boosting = room.boost_until ? "1" : "";
    }
  }

  function showHonestState() {
    const offline = signedOut || fetchFailed || (!socketOpen && socketDownLong);
    // Signed out is not the hub being down: say which, so nobody waits for a hub that is fine.
    setHidden(offlineBanner, !offline || signedOut);
    setHidden(signedOutBanner, !signedOut);
    if (signedOutBanner) setText(signedOutBanner.querySelector('[data-part="time"]'), clockTime(lastGoodAt));
    if (offlineBanner) setText(offlineBanner.querySelector('[data-part="time"]'), clockTime(lastGoodAt));
    root.classList.toggle("is-offline", offline);
    const radioOk = Boolean(state.radio && state.radio.ok);
    // While offline the page cannot know the radio's state either: the offline banner says enough.
    setHidden(radioBanner, radioOk || offline);
    if (radioBanner) setText(radioBanner.querySelector('[data-part="text"]'), (state.radio && state.radio.message) || "");
    root.classList.toggle("radio-down", !radioOk);
    root.dataset.online = offline ? "no" : "yes";
  }

  function apply(newState) {
    const fresh = alertKeys(newState).filter((key) => !knownAlerts.has(key));
    state = newState;
    lastGoodAt = newState.at;
    const tiles = new Map([...root.querySelectorAll("[data-room]")].map((tile) => [tile.dataset.room, tile]));
    const ids = newState.rooms.map((room) => room.id);
    const sameRooms = ids.length === tiles.size && ids.every((id) => tiles.has(id));
    if (!sameRooms && root.dataset.page === "home") {
      // A room was added, removed or renamed: the one case that needs the page drawn again.
      window.location.reload();
      return;
    }
    for (const room of newState.rooms) {
      const tile = tiles.get(room.id);
      if (tile) patchTile(tile, room);
    }
    for (const key of fresh) {
      const [roomId, kind] = key.split(" ");
      const room = newState.rooms.find((candidate) => candidate.id === roomId);
      const alert = room && room.alerts.find((candidate) => candidate.kind === kind);
      if (alert) announce(room.name + ": " + alert.message);
    }
    knownAlerts.clear();
    for (const key of alertKeys(newState)) knownAlerts.add(key);
    setHidden(document.getElementById("house-away"), !newState.away);
    showAwaySwitch();
    showHonestState();
    for (const listener of listeners) {
      try {
        listener(newState);
      } catch (error) {
        if (window.console) console.error(error);
      }
    }
  }

  async function refresh() {
    try {
      const response = await fetch(root.dataset.stateUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      // A session that ended answers with the sign-in page (a redirect) or a 401/403.
      if ((response.redirected && new URL(response.url).pathname.startsWith("/login/")) || [401, 403].includes(response.status)) {
        signedOut = true;
        showHonestState();
        return;
      }
      if (!response.ok) throw new Error("state " + response.status);
      const newState = await response.json();
      fetchFailed = false;
      signedOut = false;
      apply(newState);
    } catch (error) {
      fetchFailed = true;
      showHonestState();
    }
  }

  function refreshSoon() {
    if (refreshTimer !== null) return;
    // Events come in bursts (a change, its decision, the readings): one fetch for the burst.
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, 100);
  }

  async function request(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": root.dataset.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      // The API's error shape: {"message", "fields": {"target": ["… from 7 to 29 °C"]}}: the field's words first.
      const fields = Object.entries(answer.fields || {});
      const text = fields.length
        ? fields.map(([name, problems]) => name + ": " + [].concat(problems).join(" ")).join("; ")
        : answer.message || "the hub refused (" + response.status + ")";
      const error = new Error(text);
      error.answer = answer;
      throw error;
    }
    return response.status === 204 ? null : response.json().catch(() => null);
  }

  function showError(tile, error) {
    const line = field(tile, "error");
    if (!line) return;
    const text = error ? "Not changed: " + error.message : "";
    setText(line, text);
    setHidden(line, !text);
    if (text) announce(text);
  }

  function roomOf(tile) {
    return state.rooms.find((room) => room.id === tile.dataset.room);
  }

  function roomUrl(room, suffix) {
    return "/v1/rooms/" + encodeURIComponent(room.id) + (suffix || "");
  }

  async function send(tile, method, url, body) {
    showError(tile, null);
    try {
      await request(method, url, body);
    } catch (error) {
      showError(tile, error);
    } finally {
      refreshSoon();
    }
  }

  function stepTarget(tile, direction) {
    const room = roomOf(tile);
    if (!room || room.mode === "off") return;
    const pending = pendingTargets.get(room.id);
    const current = pending ? pending.value : room.target === null ? room.target_min : room.target;
    const step = state.step || 0.5;
    const value = Math.min(room.target_max, Math.max(room.target_min, Math.round((current + direction * step) / step) * step));
    if (pending) clearTimeout(pending.timer);
    const entry = { value: value, timer: null };
    entry.timer = setTimeout(async () => {
      await send(tile, "PATCH", roomUrl(room), { target: value });
      if (pendingTargets.get(room.id) === entry) pendingTargets.delete(room.id);
      refreshSoon();
    }, SEND_AFTER_MS);
    pendingTargets.set(room.id, entry);
    setText(field(tile, "target"), targetText(value));
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || !root.contains(button)) return;
    const tile = button.closest("[data-room]");
    const room = tile && roomOf(tile);
    if (!room) return;
    switch (button.dataset.action) {
      case "target-up":
        stepTarget(tile, 1);
        break;
      case "target-down":
        stepTarget(tile, -1);
        break;
      case "mode":
        if (button.dataset.mode !== room.mode) send(tile, "PATCH", roomUrl(room), { mode: button.dataset.mode });
        break;
      case "boost":
        if (button.dataset.boosting) send(tile, "DELETE", roomUrl(room, "/boost"));
        else send(tile, "POST", roomUrl(room, "/boost"), { minutes: state.boost_minutes });
        break;
      default:
        break;
    }
  });

  // The house's away switch (home page, heating.control): POSTed as a form to /house/away; the switch then shows
  // what the hub holds (this page's state), also when another page changes it.
  const awaySwitch = document.getElementById("house-away-switch");
  let awaySending = false;

  function showAwaySwitch() {
    if (!awaySwitch || awaySending) return;
    const away = Boolean(state.away);
    if (awaySwitch.checked !== away) awaySwitch.checked = away;
    const hidden = awaySwitch.form.querySelector('input[name="away"]');
    if (hidden) hidden.value = away ? "off" : "on";
  }

  if (awaySwitch) {
    awaySwitch.addEventListener("change", async () => {
      const form = awaySwitch.form;
      const errorLine = document.getElementById("house-away-error");
      const body = new FormData(form);
      body.set("away", awaySwitch.checked ? "on" : "off");
      awaySending = true;
      setHidden(errorLine, true);
      try {
        const response = await fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRFToken": root.dataset.csrf },
          body: body,
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(answer.message || "the hub refused (" + response.status + ")");
        state.away = Boolean(answer.away);
        setHidden(document.getElementById("house-away"), !state.away);
      } catch (error) {
        const text = "Away not changed: " + error.message;
        setText(errorLine, text);
        setHidden(errorLine, false);
        announce(text);
      } finally {
        awaySending = false;
        showAwaySwitch();
        refreshSoon();
      }
    });
  }

  function socketStatus(status) {
    const open = status === "open";
    if (open && !socketOpen) refreshSoon(); // catch up on what happened while the socket was down
    socketOpen = open;
    if (open) {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      socketDownLong = false;
    } else if (offlineTimer === null && !socketDownLong) {
      // A reconnect that takes a moment is not an outage worth a banner.
      offlineTimer = setTimeout(() => {
        offlineTimer = null;
        socketDownLong = true;
        showHonestState();
        announce("Hub offline");
      }, OFFLINE_GRACE_MS);
    }
    showHonestState();
  }

  window.hubRooms = {
    get state() {
      return state;
    },
    refresh: refresh,
    refreshSoon: refreshSoon,
    request: request,
    onState(callback) {
      listeners.push(callback);
    },
  };

  showHonestState();
  setInterval(refresh, Number(root.dataset.pollMs) || 30000);
  if (window.HubPush) {
    const push = window.HubPush.connect();
    push.onstatus = (status, detail) => {
      if (status === "closed" && detail === "not signed in") {
        signedOut = true; // the socket's 4401: it will not reconnect by itself
        showHonestState();
        return;
      }
      socketStatus(status);
    };
    push.subscribe("/events/heating/#", refreshSoon);
    window.hubRooms.push = push;
  }
})();
