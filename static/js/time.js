/*
 * Times on the hub's pages. The server writes a machine time as <time datetime="2026-11-28T07:30:00.000Z">
 * (UTC, readable without JavaScript); this shows it in the viewer's own zone. A house time (schedules, boosts,
 * "next change": <time data-zone="house">, or hubTime.inHouse) is shown in the house's zone (HUB_TIME_ZONE, on
 * <body data-house-zone>) and labelled with that zone when the viewer's zone differs.
 *
 *   data-style on a <time>: "datetime" (default), "minute", "time" or "date".
 *   hubTime.render(root)  formats every <time datetime> under root (the page's own are done at load).
 */
(function () {
  "use strict";
  const STYLES = {
    datetime: { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" },
    minute: { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
    date: { year: "numeric", month: "short", day: "numeric" },
  };

  function canonicalZone(name) {
    try {
      return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    } catch (error) {
      return "UTC"; // an unknown name; the server validates HUB_TIME_ZONE, so only a hand-made page gets here
    }
  }

  const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const houseZone = canonicalZone(document.body.dataset.houseZone || "UTC");
  // Etc/UTC and UTC, or two names of one zone, are the same zone to the viewer.
  const viewerIsHome = canonicalZone(viewerZone) === houseZone;

  function format(iso, style, timeZone) {
    const moment = new Date(iso);
    if (!iso || Number.isNaN(moment.getTime())) return iso || "";
    const options = Object.assign({}, STYLES[style] || STYLES.datetime, timeZone ? { timeZone: timeZone } : {});
    return new Intl.DateTimeFormat(undefined, options).format(moment);
  }

  /** The house's zone name when the viewer is in another zone, else "" (nothing to label). */
  function houseZoneLabel() {
    return viewerIsHome ? "" : houseZone;
  }

  /** A house time as text: "17:00", or "17:00 (Europe/Berlin)" for a viewer elsewhere. */
  function inHouse(iso, style) {
    const text = format(iso, style || "minute", houseZone);
    return viewerIsHome ? text : text + " (" + houseZone + ")";
  }

  function render(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (element) {
      const iso = element.getAttribute("datetime");
      const style = element.dataset.style;
      element.textContent = element.dataset.zone === "house" ? inHouse(iso, style) : format(iso, style);
      if (!element.title) element.title = iso; // the exact UTC time on hover
    });
  }

  window.hubTime = {
    format: format,
    inHouse: inHouse,
    houseZone: houseZone,
    viewerZone: viewerZone,
    houseZoneLabel: houseZoneLabel,
    render: render,
  };
  render(document);
})();
