/*
 * A room page, beside rooms.js (which keeps the room's tile live and honest):
 *
 * - the chart: temperature and target over 24 h / 7 d / 30 d from GET /v1/rooms/{id}/history (downsampled by the
 *   hub to at most `points` a series), heater-on periods shaded, drawn by the vendored uPlot in the colour mode's
 *   colours;
 * - the week: one bar per day with its blocks, in the house's wall-clock time;
 * - the schedule editor (heating.control): pick days (or every day / workdays / weekend), edit that day's blocks
 *   (start, end, preset or temperature; big targets for a thumb), save: PUT /v1/rooms/{id}/schedule with the whole
 *   week, the chosen days replaced; "copy the week" PUTs the same week to the other rooms chosen;
 * - a refused save (400) shows the API's words next to the block it names (``blocks[i]`` of the week sent), the
 *   block marked invalid and focused;
 * - the thermostat's recent decisions and the room's alerts, redrawn from each state rooms.js fetches; a user with
 *   heating.control acknowledges an open alert here (POST /v1/alerts/{id}/acknowledge).
 *
 * Schedule times are the house's wall-clock times (HUB_TIME_ZONE); when the viewer's zone differs, the week and the
 * editor name the house's zone (window.hubTime.houseZoneLabel, static/js/time.js).
 */
(function () {
  "use strict";

  const root = document.getElementById("rooms");
  if (!root || !window.hubRooms) return;
  const roomId = root.dataset.roomId;
  const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  const PRESETS = ["comfort", "eco", "away", "frost"];
  const MAX_POINTS = 1000;

  function el(tag, attributes, children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") element.textContent = value;
      else if (name === "className") element.className = value;
      else element.setAttribute(name, value);
    }
    for (const child of children || []) element.append(child);
    return element;
  }

  function minutes(hhmm) {
    const [hours, mins] = hhmm.split(":").map(Number);
    return hours * 60 + mins;
  }

  function presetTemperature(block, presets) {
    return block.temperature !== null && block.temperature !== undefined ? block.temperature : presets[block.preset];
  }

  function blockLabel(block, presets) {
    const value = presetTemperature(block, presets);
    const what = block.preset ? block.preset : "";
    return (what ? what + " " : "") + (typeof value === "number" ? value.toFixed(1) + " °C" : "");
  }

  // --- the week ---------------------------------------------------------------------------------------------

  const week = document.getElementById("week");

  function drawWeek(state) {
    const rows = DAYS.map((day, weekday) => {
      const bar = el("div", { className: "week-day", role: "list", "aria-label": day });
      const blocks = state.schedule.filter((candidate) => candidate.weekday === weekday);
      if (!blocks.length) {
        bar.append(el("span", { className: "week-empty", role: "listitem", text: "eco all day" }));
      }
      for (const block of blocks) {
        const start = minutes(block.start);
        const end = block.end === "24:00" ? 1440 : minutes(block.end);
        const text = block.start + "–" + block.end + " " + blockLabel(block, state.presets);
        const piece = el("div", {
          className: "week-block" + (block.preset === "comfort" ? " is-comfort" : ""),
          role: "listitem",
          title: text,
          style: "left:" + (start / 14.4) + "%;width:" + ((end - start) / 14.4) + "%",
          "data-testid": "week-block",
          text: text,
        });
        bar.append(piece);
      }
      return el("div", { className: "d-flex align-items-center gap-2" }, [
        el("span", { className: "small text-body-secondary", style: "width:2.5rem", text: day.slice(0, 3) }),
        el("div", { className: "flex-grow-1" }, [bar]),
      ]);
    });
    // An hour scale under the days, so a block's place reads as a time of day.
    const scale = el("div", { className: "week-scale", "aria-hidden": "true" });
    for (const hour of [0, 6, 12, 18, 24]) {
      scale.append(el("span", { style: "left:" + (hour / 0.24) + "%", text: String(hour).padStart(2, "0") + ":00" }));
    }
    rows.push(
      el("div", { className: "d-flex align-items-center gap-2" }, [
        el("span", { style: "width:2.5rem" }),
        el("div", { className: "flex-grow-1" }, [scale]),
      ])
    );
    const signature = JSON.stringify([state.schedule, state.presets]);
    if (week.dataset.signature !== signature) {
      week.replaceChildren(...rows);
      week.dataset.signature = signature;
    }
  }

  // The house's zone, named wherever schedule times are shown, when it is not the viewer's own.
  const houseZone = window.hubTime ? window.hubTime.houseZoneLabel() : "";
  if (houseZone) {
    for (const note of document.querySelectorAll("[data-house-zone-note]")) {
      note.querySelector("[data-house-zone-name]").textContent = houseZone;
      note.hidden = false;
    }
  }

  // --- decisions and alerts ---------------------------------------------------------------------------------

  function timeElement(iso) {
    const time = el("time", { datetime: iso, "data-style": "minute", text: iso });
    return time;
  }

  function drawDecisions(state) {
    const list = document.getElementById("decisions");
    const signature = JSON.stringify(state.decisions);
    if (list.dataset.signature === signature) return;
    list.dataset.signature = signature;
    if (!state.decisions.length) {
      list.replaceChildren(el("li", { className: "list-group-item text-body-secondary", text: "No decision yet." }));
      return;
    }
    list.replaceChildren(
      ...state.decisions.map((decision) =>
        el("li", { className: "list-group-item d-flex flex-wrap justify-content-between gap-2" }, [
          el("span", {}, [
            el("span", { className: "badge me-2 " + (decision.heat ? "text-bg-danger" : "text-bg-secondary"), text: decision.heat ? "on" : "off" }),
            el("span", { text: decision.reason }),
          ]),
          el("span", { className: "small text-body-secondary" }, [
            decision.temperature_text + " · target " + decision.target_text + " · ",
            timeElement(decision.at),
          ]),
        ])
      )
    );
    if (window.hubTime) window.hubTime.render(list);
  }

  function alertKey(alert) {
    return alert.id !== undefined ? String(alert.id) : alert.kind + "@" + alert.raised_at;
  }

  function alertItem(alert, canControl) {
    const open = !alert.cleared_at;
    const item = el("li", { className: "list-group-item" + (open ? " list-group-item-danger" : ""), tabindex: "-1" }, [
      el("div", { className: "fw-semibold", text: (open ? "⚠ " : "") + alert.label }),
      el("div", { className: "small", text: alert.message }),
    ]);
    item.dataset.alertKey = alertKey(alert);
    item.dataset.signature = JSON.stringify([alert, canControl]);
    const when = el("div", { className: "small text-body-secondary" }, ["raised ", timeElement(alert.raised_at)]);
    if (!open) when.append(", cleared ", timeElement(alert.cleared_at));
    if (alert.acknowledged_at) {
      when.append(", seen" + (alert.acknowledged_by ? " by " + alert.acknowledged_by : "") + " ", timeElement(alert.acknowledged_at));
    }
    item.append(when);
    if (open && !alert.acknowledged_at && canControl && alert.id !== undefined) {
      item.append(
        el("button", {
          type: "button",
          className: "btn btn-sm btn-outline-secondary mt-2",
          "data-acknowledge": String(alert.id),
          "data-testid": "alert-acknowledge",
          text: "Acknowledge",
          "aria-label": "Acknowledge: " + alert.label,
        })
      );
    }
    return item;
  }

  // Patched in place, item by item (keyed by the alert's id): an alert acknowledged, cleared or raised elsewhere
  // (heating.alert_* events make rooms.js fetch the state) changes only its own item, so focus on another alert's
  // button stays; the item whose button went away takes the focus itself.
  function drawAlerts(state) {
    const list = document.getElementById("alert-history");
    const signature = JSON.stringify([state.alert_history, state.can_control]);
    if (list.dataset.signature === signature) return;
    list.dataset.signature = signature;
    if (!state.alert_history.length) {
      list.replaceChildren(el("li", { className: "list-group-item text-body-secondary", text: "No alerts." }));
      return;
    }
    const existing = new Map([...list.children].filter((item) => item.dataset.alertKey).map((item) => [item.dataset.alertKey, item]));
    const changed = [];
    state.alert_history.forEach((alert, index) => {
      const fresh = alertItem(alert, state.can_control);
      let item = existing.get(fresh.dataset.alertKey);
      if (!item) {
        item = fresh;
      } else if (item.dataset.signature !== fresh.dataset.signature) {
        const hadFocus = item.contains(document.activeElement);
        item.className = fresh.className;
        item.dataset.signature = fresh.dataset.signature;
        item.replaceChildren(...fresh.childNodes);
        if (hadFocus && !item.contains(document.activeElement)) item.focus();
        changed.push(item);
      }
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
      if (item === fresh) changed.push(item);
    });
    while (list.children.length > state.alert_history.length) list.lastElementChild.remove();
    if (window.hubTime) for (const item of changed) window.hubTime.render(item);
  }

  document.getElementById("alert-history").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-acknowledge]");
    if (!button) return;
    button.disabled = true;
    const line = document.getElementById("alert-message");
    try {
      await window.hubRooms.request("POST", "/v1/alerts/" + encodeURIComponent(button.dataset.acknowledge) + "/acknowledge");
      line.hidden = true;
    } catch (error) {
      button.disabled = false;
      line.textContent = "Not acknowledged: " + error.message;
      line.hidden = false;
    }
    await window.hubRooms.refresh();
  });

  // --- the chart --------------------------------------------------------------------------------------------

  const chartBox = document.getElementById("room-chart");
  const chartNote = document.getElementById("room-chart-note");
  let chart = null;
  let rangeSeconds = 86400;
  let periods = [];

  // The history answer as [[seconds, value], ...]: pairs, {at|t|time, value|v} objects, or {t: [], v: []} columns.
  function series(raw) {
    if (!raw) return [];
    if (Array.isArray(raw)) {
      return raw
        .map((point) => {
          if (Array.isArray(point)) return [Date.parse(point[0]) / 1000 || point[0], point[1]];
          const at = point.at || point.t || point.time || point.start;
          return [typeof at === "number" ? at : Date.parse(at) / 1000, point.value !== undefined ? point.value : point.v];
        })
        .filter((point) => Number.isFinite(point[0]));
    }
    if (Array.isArray(raw.t) && Array.isArray(raw.v)) return raw.t.map((t, i) => [typeof t === "number" ? t : Date.parse(t) / 1000, raw.v[i]]);
    return [];
  }

  function onPeriods(raw) {
    return (raw || [])
      .map((period) => {
        const start = Array.isArray(period) ? period[0] : period.start || period.since || period.from;
        const end = Array.isArray(period) ? period[1] : period.end || period.until || period.to;
        const seconds = (value) => (value === null || value === undefined ? Date.now() / 1000 : typeof value === "number" ? value : Date.parse(value) / 1000);
        return [seconds(start), seconds(end)];
      })
      .filter((period) => Number.isFinite(period[0]) && Number.isFinite(period[1]));
  }

  function colours() {
    const style = getComputedStyle(document.body);
    return {
      text: style.getPropertyValue("--bs-body-color").trim() || "#212529",
      grid: style.getPropertyValue("--bs-border-color").trim() || "#dee2e6",
      temperature: style.getPropertyValue("--bs-primary").trim() || "#0d6efd",
      target: style.getPropertyValue("--bs-warning").trim() || "#ffc107",
      heating: "rgba(220, 53, 69, 0.18)",
    };
  }

  function drawChart(answer) {
    const temperature = series(answer.temperature);
    const target = series(answer.target);
    periods = onPeriods(answer.heating || answer.heater_on || answer.heating_periods);
    const now = Date.now() / 1000;
    const times = [...new Set([...temperature.map((p) => p[0]), ...target.map((p) => p[0]), now])].sort((a, b) => a - b);
    const byTime = (points) => {
      const map = new Map(points);
      return times.map((t) => (map.has(t) ? map.get(t) : null));
    };
    // The target comes only where it changed: it holds until the next change (null: the room was off).
    const heldTarget = (changes) => {
      let index = -1;
      return times.map((t) => {
        while (index + 1 < changes.length && changes[index + 1][0] <= t) index += 1;
        return index < 0 ? null : changes[index][1];
      });
    };
    const data = [times, byTime(temperature), heldTarget(target)];
    const c = colours();
    const options = {
      width: Math.max(280, chartBox.clientWidth),
      height: 300,
      scales: { x: { time: true, range: () => [now - rangeSeconds, now] } },
      axes: [
        { stroke: c.text, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid } },
        {
          stroke: c.text,
          grid: { stroke: c.grid, width: 1 },
          ticks: { stroke: c.grid },
          // Wide enough for "-12.5 °C": uPlot's default width cut "17.9 °C" to "7.9 °C".
          size: 72,
          values: (u, ticks) => ticks.map((v) => v + " °C"),
        },
      ],
      series: [
        {},
        { label: "Temperature", stroke: c.temperature, width: 2, spanGaps: true, value: (u, v) => (v === null ? "—" : v.toFixed(1) + " °C") },
        {
          label: "Target",
          stroke: c.target,
          width: 2,
          dash: [6, 4],
          paths: window.uPlot.paths.stepped({ align: 1 }),
          value: (u, v) => (v === null ? "—" : v.toFixed(1) + " °C"),
        },
      ],
      hooks: {
        drawClear: [
          (u) => {
            // Heater-on periods: shaded bands behind the lines.
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = c.heating;
            for (const [start, end] of periods) {
              const left = u.valToPos(Math.max(start, u.scales.x.min), "x", true);
              const right = u.valToPos(Math.min(end, u.scales.x.max), "x", true);
              if (right > left) ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
            }
            ctx.restore();
          },
        ],
      },
    };
    if (chart) chart.destroy();
    chart = new window.uPlot(options, data, chartBox);
    const onSeconds = periods.reduce((sum, [start, end]) => sum + Math.max(0, Math.min(end, now) - Math.max(start, now - rangeSeconds)), 0);
    // Thinned out by the hub (each time bucket's lowest and highest): say from how many readings.
    const thinned = answer.downsampled && answer.readings > temperature.length ? " (from " + answer.readings.toLocaleString() + " readings)" : "";
    chartNote.textContent =
      (temperature.length ? temperature.length + " temperature points" + thinned : "No temperature in this range") +
      "; shaded: a heater was on (" + (onSeconds / 3600).toFixed(1) + " h).";
  }

  async function loadChart() {
    if (!chartBox || !window.uPlot) return;
    const until = new Date();
    const since = new Date(until.getTime() - rangeSeconds * 1000);
    const url =
      chartBox.dataset.historyUrl +
      "?since=" + encodeURIComponent(since.toISOString()) +
      "&until=" + encodeURIComponent(until.toISOString()) +
      "&points=" + MAX_POINTS;
    try {
      const answer = await window.hubRooms.request("GET", url);
      drawChart(answer || {});
      chartBox.dataset.loaded = String(rangeSeconds);
    } catch (error) {
      chartNote.textContent = "The history could not be loaded: " + error.message;
    }
  }

  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => {
      rangeSeconds = Number(button.dataset.range);
      for (const other of document.querySelectorAll("[data-range]")) {
        const chosen = other === button;
        other.classList.toggle("active", chosen);
        other.setAttribute("aria-pressed", String(chosen));
      }
      loadChart();
    });
  }
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => chart && chart.setSize({ width: Math.max(280, chartBox.clientWidth), height: 300 }), 150);
  });
  // The colour mode changed (theme menu or system): draw again in its colours.
  new MutationObserver(() => loadChart()).observe(document.documentElement, { attributes: true, attributeFilter: ["data-bs-theme"] });

  // --- the schedule editor ----------------------------------------------------------------------------------

  const editor = document.getElementById("schedule-editor");
  const blockList = document.getElementById("schedule-blocks");
  const message = document.getElementById("schedule-message");

  let blockSerial = 0;

  function showBlockError(row, text) {
    const problem = row.querySelector(".schedule-block-error");
    if (!problem || (problem.hidden && !text)) return;
    problem.textContent = text;
    problem.hidden = !text;
    row.classList.toggle("is-refused", Boolean(text));
    for (const control of row.querySelectorAll("input, select")) {
      if (text) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", problem.id);
      } else {
        control.removeAttribute("aria-invalid");
        control.removeAttribute("aria-describedby");
      }
    }
  }

  function clearBlockErrors() {
    for (const row of blockList.children) showBlockError(row, "");
  }

  function chosenDays() {
    return [...editor.querySelectorAll('input[name="day"]:checked')].map((box) => Number(box.value));
  }

  function say(text, ok) {
    message.hidden = !text;
    message.textContent = text;
    message.className = "small mb-2 " + (ok ? "text-success" : "text-danger");
  }

  // Each control's name says its block's place in the list ("Block 2 ends"), renewed when a block goes.
  const PART_NAMES = { start: "starts", end: "ends", preset: "temperature", temperature: "°C" };
  function numberRows() {
    [...blockList.children].forEach((row, position) => {
      for (const control of row.querySelectorAll("[data-part]")) {
        if (PART_NAMES[control.dataset.part]) control.setAttribute("aria-label", "Block " + (position + 1) + " " + PART_NAMES[control.dataset.part]);
      }
      const remove = row.querySelector("[data-remove]");
      if (remove) remove.setAttribute("aria-label", "Remove block " + (position + 1));
    });
  }

  function blockRow(block, position) {
    const index = position || blockList.children.length + 1;
    const kind = block.preset || "custom";
    const start = el("input", { type: "time", step: "900", className: "form-control", value: block.start, "aria-label": "Block " + index + " starts", "data-part": "start", required: "" });
    const end = el("input", { type: "time", step: "900", className: "form-control", value: block.end === "24:00" ? "23:59" : block.end, "aria-label": "Block " + index + " ends", "data-part": "end", required: "" });
    const select = el("select", { className: "form-select", "aria-label": "Block " + index + " temperature", "data-part": "preset" });
    const presets = window.hubRooms.state.presets;
    for (const name of PRESETS) select.append(el("option", { value: name, text: name + " (" + presets[name].toFixed(1) + " °C)" }));
    select.append(el("option", { value: "custom", text: "°C of my own" }));
    select.value = kind;
    const custom = el("input", {
      type: "number", step: "0.5", inputmode: "decimal", className: "form-control", "aria-label": "Block " + index + " °C",
      "data-part": "temperature", value: block.temperature !== null && block.temperature !== undefined ? String(block.temperature) : "20",
    });
    custom.hidden = kind !== "custom";
    select.addEventListener("change", () => {
      custom.hidden = select.value !== "custom";
    });
    const remove = el("button", { type: "button", className: "btn btn-outline-danger", "aria-label": "Remove block " + index, "data-remove": "", text: "✕" });
    blockSerial += 1;
    // Where the hub's refusal of this block is said (filled by showBlockError).
    const problem = el("p", { className: "schedule-block-error small mb-0 mt-2", id: "block-error-" + blockSerial, "data-testid": "schedule-block-error", hidden: "" });
    const row = el("li", { className: "border rounded p-2", "data-testid": "schedule-block" }, [
      el("div", { className: "row g-2 align-items-center" }, [
        el("div", { className: "col-6 col-sm-3" }, [start]),
        el("div", { className: "col-6 col-sm-3" }, [end]),
        el("div", { className: "col-8 col-sm-3" }, [select]),
        el("div", { className: "col-4 col-sm-3 d-flex gap-2" }, [custom, remove]),
      ]),
      problem,
    ]);
    remove.addEventListener("click", () => {
      row.remove();
      numberRows();
    });
    row.addEventListener("input", () => showBlockError(row, ""));
    row.addEventListener("change", () => showBlockError(row, ""));
    return row;
  }

  function loadDay() {
    const days = chosenDays();
    const first = days.length ? days[0] : 0;
    const dayBlocks = (weekday) => window.hubRooms.state.schedule.filter((block) => block.weekday === weekday);
    blockList.replaceChildren(...dayBlocks(first).map((block, index) => blockRow(block, index + 1)));
    // Several days chosen whose weeks differ: saving gives them all the first day's blocks (as edited). Say so
    // before the save, not after.
    const shape = (weekday) => JSON.stringify(dayBlocks(weekday).map((b) => [b.start, b.end, b.preset, b.temperature]));
    const differing = days.slice(1).filter((weekday) => shape(weekday) !== shape(first));
    const note = document.getElementById("schedule-days-differ");
    note.textContent = differing.length
      ? differing.map((day) => DAYS[day]).join(", ") + (differing.length === 1 ? " has" : " have") +
        " other blocks than " + DAYS[first] + " now: saving gives every chosen day the blocks below."
      : "";
    note.hidden = !differing.length;
  }

  function editedBlocks() {
    return [...blockList.children].map((row) => {
      const start = row.querySelector('[data-part="start"]').value;
      let end = row.querySelector('[data-part="end"]').value;
      if (end === "23:59" || end === "00:00") end = "24:00"; // the day's end
      const preset = row.querySelector('[data-part="preset"]').value;
      const block = { start: start, end: end };
      if (preset === "custom") block.temperature = Number(row.querySelector('[data-part="temperature"]').value);
      else block.preset = preset;
      return block;
    });
  }

  // The whole week to PUT: the other days' blocks as they are, the chosen days' from the editor. Each block's
  // editor row (its index in `blocks`) is kept beside it, so a refusal naming blocks[i] finds its row.
  function weekWithRows(days, blocks) {
    const kept = window.hubRooms.state.schedule.filter((block) => !days.includes(block.weekday));
    const added = [];
    for (const weekday of days) {
      blocks.forEach((block, row) => added.push({ block: Object.assign({ weekday: weekday }, block), row: row }));
    }
    return kept
      .map((block) => {
        const copy = { weekday: block.weekday, start: block.start, end: block.end };
        if (block.preset) copy.preset = block.preset;
        else copy.temperature = block.temperature;
        return { block: copy, row: null };
      })
      .concat(added)
      .sort((a, b) => a.block.weekday - b.block.weekday || a.block.start.localeCompare(b.block.start));
  }

  function weekWith(days, blocks) {
    return weekWithRows(days, blocks).map((entry) => entry.block);
  }

  // A 400 naming blocks[i]: its words next to that block's row (the editor shows one day's rows for all the
  // chosen days). True when a row got it; a block of a day not being edited is only named in the message.
  function showRefusedBlocks(error, week) {
    const fields = (error.answer && error.answer.fields) || {};
    let shown = false;
    for (const [name, problems] of Object.entries(fields)) {
      const match = /^blocks\[(\d+)\]$/.exec(name);
      const entry = match && week[Number(match[1])];
      if (!entry || entry.row === null) continue;
      const row = blockList.children[entry.row];
      if (!row) continue;
      showBlockError(row, [].concat(problems).join(" "));
      if (!shown) row.querySelector("input, select").focus();
      shown = true;
    }
    return shown;
  }

  function refusal(error) {
    // No answer at all (fetch's own TypeError): the hub was not reached. Never the browser's "Failed to fetch".
    if (!error.answer && error instanceof TypeError) return "the hub could not be reached; your changes are still here, try again when it is back.";
    return error.message; // rooms.js puts the API's field name and its allowed range first
  }

  if (editor) {
    editor.addEventListener("change", (event) => {
      if (event.target.name === "day") {
        say("", true);
        loadDay();
      }
    });
    for (const shortcut of editor.querySelectorAll("[data-days]")) {
      shortcut.addEventListener("click", () => {
        const days = shortcut.dataset.days.split(",").map(Number);
        for (const box of editor.querySelectorAll('input[name="day"]')) box.checked = days.includes(Number(box.value));
        loadDay();
      });
    }
    document.getElementById("schedule-add").addEventListener("click", () => {
      const rows = editedBlocks();
      const last = rows.length ? rows[rows.length - 1].end : "06:00";
      const startMinutes = last === "24:00" ? 1320 : minutes(last);
      const endMinutes = Math.min(1440, startMinutes + 120);
      const hhmm = (value) => String(Math.floor(value / 60)).padStart(2, "0") + ":" + String(value % 60).padStart(2, "0");
      const row = blockRow({ start: hhmm(startMinutes), end: hhmm(endMinutes), preset: "comfort" });
      blockList.append(row);
      row.querySelector("input").focus();
    });
    editor.addEventListener("submit", async (event) => {
      event.preventDefault();
      const days = chosenDays();
      if (!days.length) {
        say("Choose at least one day.", false);
        return;
      }
      const week = weekWithRows(days, editedBlocks());
      clearBlockErrors();
      try {
        await window.hubRooms.request("PUT", "/v1/rooms/" + encodeURIComponent(roomId) + "/schedule", {
          blocks: week.map((entry) => entry.block),
        });
        say("Saved for " + days.map((day) => DAYS[day]).join(", ") + ".", true);
        await window.hubRooms.refresh();
      } catch (error) {
        say("Not saved: " + refusal(error), false);
        showRefusedBlocks(error, week);
      }
    });
    const copyButton = document.getElementById("schedule-copy");
    if (copyButton) {
      copyButton.addEventListener("click", async () => {
        const targets = [...editor.querySelectorAll('input[name="copy"]:checked')].map((box) => box.value);
        if (!targets.length) {
          say("Choose the rooms to copy the week to.", false);
          return;
        }
        const blocks = weekWith([], []);
        // Each room on its own: one that refuses the week (a block outside its range) does not stop the others.
        const copied = [];
        const refused = [];
        for (const target of targets) {
          const name = editor.querySelector('label[for="copy-' + target + '"]').textContent;
          try {
            await window.hubRooms.request("PUT", "/v1/rooms/" + encodeURIComponent(target) + "/schedule", { blocks: blocks });
            copied.push(name);
          } catch (error) {
            refused.push(name + " (" + refusal(error) + ")");
          }
        }
        const parts = [];
        if (copied.length) parts.push("Copied to " + copied.join(", ") + ".");
        if (refused.length) parts.push("Not copied to " + refused.join("; ") + ".");
        say(parts.join(" "), refused.length === 0);
      });
    }
    loadDay();
  }

  // --- keeping it fresh -------------------------------------------------------------------------------------

  let lastScheduleSignature = JSON.stringify(window.hubRooms.state.schedule);
  function drawAll(state) {
    drawWeek(state);
    drawDecisions(state);
    drawAlerts(state);
  }
  window.hubRooms.onState((state) => {
    drawAll(state);
    const signature = JSON.stringify(state.schedule);
    // Someone else changed the week: the chart's target line changes with it.
    if (signature !== lastScheduleSignature) {
      lastScheduleSignature = signature;
      loadChart();
    }
  });
  drawAll(window.hubRooms.state);
  loadChart();
  // The chart moves on with time and new readings: every minute is enough.
  setInterval(loadChart, 60000);
})();
