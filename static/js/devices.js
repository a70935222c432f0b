/*
 * The staff's Devices page: renders the overview (heating.selectors.heating_overview) and keeps it fresh. Any hub
 * event under /events/heating/# (a reading, a node heard, the link, a command's outcome) arriving over /ws/push
 * makes it fetch the overview again; without the socket it polls every data-poll-ms. A card is replaced only when
 * its node changed, and keyboard focus goes back to the same control in the new card. Values are labelled with
 * the device definition's names for people and units ("Room temperature 21.6 °C"), not register names.
 * Honest: while the page is offline or the hub's radio is not reporting, no node is called "reachable".
 * Outputs are switched through POST /v1/nodes/{id}/commands with the session's CSRF token; the node's STATUS
 * confirms it, and the event says so.
 */
(function () {
  "use strict";

  const root = document.getElementById("heating");
  if (!root) return;
  const grid = document.getElementById("heating-nodes");
  const empty = document.getElementById("heating-empty");
  const template = document.getElementById("heating-node-template");
  const linkBadge = document.getElementById("heating-link");
  const linkDetail = document.getElementById("heating-link-detail");
  const liveBadge = document.getElementById("heating-live");
  let overview = JSON.parse(document.getElementById("heating-data").textContent);
  let refreshTimer = null;
  const offlineBanner = document.getElementById("heating-offline");
  let socketOpen = false;
  let socketDownLong = false;
  let offlineTimer = null;
  let fetchFailed = false;
  let lastGoodAt = new Date().toISOString();

  function age(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function shown(value, unit) {
    if (value === true) return "on";
    if (value === false) return "off";
    if (typeof value === "number") {
      // Temperatures with one decimal ("21.6 °C"); other measures as precise as they come, at most two decimals.
      const digits = unit === "°C" || unit === "°F" ? 1 : Number.isInteger(value) ? 0 : 2;
      return value.toFixed(digits) + (unit ? " " + unit : "");
    }
    return String(value) + (unit ? " " + unit : "");
  }

  function offline() {
    return fetchFailed || (!socketOpen && socketDownLong);
  }

  // Whether the hub can vouch for a node's reachability right now.
  function hubHears() {
    return !offline() && Boolean(overview.radio ? overview.radio.ok : overview.link.up);
  }

  function field(card, name) {
    return card.querySelector('[data-field="' + name + '"]');
  }

  function renderNode(node) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.node = node.id;
    field(card, "name").textContent = node.name;
    field(card, "location").textContent = node.location;
    const reachable = field(card, "reachable");
    if (hubHears()) {
      reachable.textContent = node.reachable ? "reachable" : "unreachable";
      reachable.className = "badge " + (node.reachable ? "text-bg-success" : "text-bg-danger");
    } else {
      reachable.textContent = "reachability unknown";
      reachable.className = "badge text-bg-secondary";
    }
    const values = field(card, "values");
    for (const value of node.values) {
      const dt = document.createElement("dt");
      dt.className = "col-6 fw-normal text-body-secondary";
      dt.textContent = value.label || value.name;
      dt.title = value.name; // the register's name, for whoever reads the device definition
      const dd = document.createElement("dd");
      dd.className = "col-6 mb-1 fw-semibold";
      dd.dataset.endpoint = value.id;
      dd.setAttribute("data-testid", "heating-value-" + value.name);
      dd.textContent = shown(value.value, value.unit);
      dd.title = "at " + value.at;
      values.append(dt, dd);
    }
    if (!node.values.length) {
      const none = document.createElement("dd");
      none.className = "col-12 text-body-secondary";
      none.textContent = "no values yet";
      values.append(none);
    }
    if (overview.can_switch) {
      for (const name of node.switches) {
        const current = node.values.find((value) => value.name === name);
        const on = Boolean(current && current.value);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-sm " + (on ? "btn-warning" : "btn-outline-secondary");
        const label = current && current.label ? current.label : name;
        button.textContent = label + ": switch " + (on ? "off" : "on");
        button.setAttribute("data-testid", "heating-switch-" + name);
        button.addEventListener("click", () => switchOutput(node, name, on ? 0 : 1, button));
        field(card, "switches").append(button);
      }
    }
    for (const heater of node.heats || []) {
      // The thermostat's relay: a raw switch would be refused (409), so the card says whose it is instead.
      const note = document.createElement("p");
      note.className = "small mb-0 w-100";
      note.setAttribute("data-testid", "heating-heats");
      const link = document.createElement("a");
      link.href = "/rooms/" + encodeURIComponent(heater.room) + "/";
      link.textContent = heater.room_name;
      note.append(heater.label + " heats ", link, ": its thermostat switches it (unassign the heater in the admin to switch it by hand).");
      field(card, "switches").append(note);
    }
    const command = node.last_command;
    if (command) {
      const outcome = { queued: "queued…", sent: "sent, waiting for the node…", confirmed: "confirmed", failed: "failed" };
      field(card, "command").textContent =
        "Last command: " + command.endpoint + " = " + command.value + " — " + (outcome[command.state] || command.state) +
        (command.error ? " (" + command.error + ")" : "");
    }
    field(card, "device").textContent = node.device;
    const heard = field(card, "heard");
    heard.dataset.at = node.last_heard || "";
    heard.textContent = age(node.last_heard);
    field(card, "signal").textContent = node.rssi === null ? "no signal yet" : node.rssi + " dBm · LQI " + node.lqi;
    field(card, "state").textContent = node.state === "unknown" ? "radio state not reported yet" : "radio " + node.state;
    return card;
  }

  function render() {
    const radio = overview.radio || { ok: overview.link.up, message: "" };
    let linkText;
    if (offline()) linkText = "modem link unknown";
    else if (radio.ok) linkText = "modem link up";
    else if (overview.link.up) linkText = "radio not reporting";
    else linkText = "modem link down";
    linkBadge.textContent = linkText;
    linkBadge.className = "badge " + (linkText === "modem link up" ? "text-bg-success" : linkText === "modem link down" ? "text-bg-danger" : "text-bg-secondary");
    linkDetail.textContent = overview.link.detail || "";
    offlineBanner.hidden = !offline();
    offlineBanner.querySelector('[data-part="time"]').textContent = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit",
      minute: "2-digit",
    }).format(new Date(lastGoodAt));
    const existing = new Map([...grid.children].map((card) => [card.dataset.node, card]));
    const wanted = overview.nodes.map((node) => {
      const signature = JSON.stringify([node, overview.can_switch, hubHears()]);
      const current = existing.get(node.id);
      if (current && current.dataset.signature === signature) return current;
      const card = renderNode(node);
      card.dataset.signature = signature;
      if (current) {
        // The same control gets focus back in the new card (a keyboard user's place is kept).
        const focused = current.contains(document.activeElement) ? document.activeElement.getAttribute("data-testid") : null;
        current.replaceWith(card);
        if (focused) {
          const again = card.querySelector('[data-testid="' + focused + '"]');
          if (again) again.focus();
        }
      }
      return card;
    });
    // Add new cards and drop gone ones without touching the ones that stay.
    wanted.forEach((card, index) => {
      if (grid.children[index] !== card) grid.insertBefore(card, grid.children[index] || null);
    });
    while (grid.children.length > wanted.length) grid.lastElementChild.remove();
    empty.hidden = overview.nodes.length > 0;
  }

  function tickAges() {
    for (const heard of grid.querySelectorAll('[data-field="heard"]')) heard.textContent = age(heard.dataset.at);
  }

  async function refresh() {
    try {
      const response = await fetch(root.dataset.stateUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error("state " + response.status);
      overview = await response.json();
      fetchFailed = false;
      lastGoodAt = new Date().toISOString();
    } catch (error) {
      fetchFailed = true; // the next event or poll tries again
    }
    render();
  }

  function refreshSoon() {
    if (refreshTimer !== null) return;
    // Events come in bursts (a packet carries several readings): one fetch for the burst.
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, 200);
  }

  async function switchOutput(node, endpoint, value, button) {
    button.disabled = true;
    try {
      const response = await fetch("/v1/nodes/" + encodeURIComponent(node.id) + "/commands", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify({ endpoint: endpoint, value: value }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        window.alert("The hub refused: " + (body.message || response.status));
      }
    } finally {
      refreshSoon();
    }
  }

  render();
  setInterval(tickAges, 1000);
  setInterval(refresh, Number(root.dataset.pollMs) || 30000);
  if (window.HubPush) {
    const push = window.HubPush.connect();
    push.onstatus = (status) => {
      // Words, never the socket's close codes.
      liveBadge.textContent = status === "open" ? "live" : status === "connecting" ? "connecting…" : "offline, reconnecting…";
      if (status === "open" && !socketOpen) refreshSoon();
      socketOpen = status === "open";
      if (socketOpen) {
        clearTimeout(offlineTimer);
        offlineTimer = null;
        socketDownLong = false;
      } else if (offlineTimer === null && !socketDownLong) {
        // A reconnect that takes a moment is not an outage worth a banner.
        offlineTimer = setTimeout(() => {
          offlineTimer = null;
          socketDownLong = true;
          render();
        }, 1000);
      }
      render();
    };
    push.subscribe("/events/heating/#", refreshSoon);
  } else {
    liveBadge.textContent = "polling";
  }
})();
