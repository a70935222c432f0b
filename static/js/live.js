/*
 * The Live page (templates/messaging/live.html): subscribe to topic patterns through push.js and show what
 * arrives, newest first. Payloads are shown as text (never as HTML).
 */
(function () {
  "use strict";
  const STATUS = {
    connecting: ["connecting…", "text-bg-secondary"],
    open: ["connected", "text-bg-success"],
    reconnecting: ["reconnecting…", "text-bg-warning"],
    closed: ["disconnected", "text-bg-danger"],
  };
  const statusBadge = document.getElementById("live-status");
  const form = document.getElementById("live-form");
  const input = document.getElementById("live-filter");
  const inputError = document.getElementById("live-filter-error");
  const subscriptionList = document.getElementById("live-subscriptions");
  const messageList = document.getElementById("live-messages");
  const MAX_SHOWN = Number(messageList.dataset.maxShown) || 200;
  const empty = document.getElementById("live-empty");
  const template = document.getElementById("live-message-template");
  const push = new HubPush();

  push.onstatus = function (status, detail) {
    const [label, style] = STATUS[status] || [status, "text-bg-secondary"];
    statusBadge.className = "badge " + style;
    statusBadge.textContent = detail ? label + " (" + detail + ")" : label;
    statusBadge.dataset.status = status;
  };

  function showPayload(message) {
    if (message.encoding === "base64") return "base64: " + message.payload;
    if (typeof message.payload === "string") return message.payload;
    return JSON.stringify(message.payload, null, 2);
  }

  function showMessage(message) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector('[data-field="topic"]').textContent = message.topic;
    item.querySelector('[data-field="payload"]').textContent = showPayload(message);
    const time = item.querySelector('[data-field="ts"]');
    time.dateTime = message.ts || "";
    time.textContent = message.ts ? hubTime.format(message.ts, "time") : ""; // the viewer's zone (time.js)
    time.title = message.ts || "";
    if (message.retained) item.querySelector('[data-field="retained"]').classList.remove("d-none");
    messageList.prepend(item);
    while (messageList.children.length > MAX_SHOWN) messageList.lastElementChild.remove();
    empty.hidden = true;
  }

  function addSubscription(filter) {
    const subscription = push.subscribe(filter, showMessage);
    const chip = document.createElement("li");
    chip.className = "list-inline-item mb-2";
    chip.dataset.testid = "live-subscription";
    chip.dataset.filter = filter;
    const group = document.createElement("span");
    group.className = "btn-group btn-group-sm";
    const label = document.createElement("span");
    label.className = "btn btn-outline-primary disabled";
    label.textContent = filter;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-outline-primary";
    remove.setAttribute("aria-label", "Unsubscribe from " + filter);
    remove.dataset.testid = "live-unsubscribe";
    remove.textContent = "×";
    remove.addEventListener("click", function () {
      subscription.unsubscribe();
      chip.remove();
    });
    group.append(label, remove);
    chip.append(group);
    subscriptionList.append(chip);
    subscription.ready.then(
      function () { chip.dataset.state = "active"; },
      function (error) {
        chip.remove();
        input.value = filter;
        input.classList.add("is-invalid");
        inputError.textContent = error.message;
      }
    );
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const filter = input.value.trim();
    input.classList.remove("is-invalid");
    if (!filter) return;
    if (subscriptionList.querySelector('[data-filter="' + CSS.escape(filter) + '"]')) {
      input.value = "";
      return;
    }
    addSubscription(filter);
    input.value = "";
  });
  input.addEventListener("input", function () { input.classList.remove("is-invalid"); });
  document.getElementById("live-clear").addEventListener("click", function () {
    messageList.replaceChildren();
    empty.hidden = false;
  });

  push.open();
  if (input.value.trim()) form.requestSubmit();
})();
