/*
 * Light or dark: Bootstrap 5.3's colour modes (data-bs-theme on <html>). Loaded without defer in <head>, so the
 * mode is set before the page is first drawn (no white flash in the dark). It follows the system
 * (prefers-color-scheme) unless this browser chose light or dark in the navbar's theme menu (localStorage).
 */
(function () {
  "use strict";
  const STORAGE_KEY = "hub-theme";
  const CHOICES = ["auto", "light", "dark"];
  const LABELS = { auto: "Auto", light: "Light", dark: "Dark" };
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

  function storedChoice() {
    try {
      const choice = window.localStorage.getItem(STORAGE_KEY);
      return CHOICES.includes(choice) ? choice : "auto";
    } catch (error) {
      return "auto"; // storage refused (private mode, policy): follow the system
    }
  }

  function apply(choice) {
    const mode = choice === "auto" ? (systemDark.matches ? "dark" : "light") : choice;
    document.documentElement.setAttribute("data-bs-theme", mode);
    document.documentElement.dataset.hubTheme = choice;
  }

  function showChoice(choice) {
    document.querySelectorAll("[data-hub-theme-value]").forEach(function (button) {
      const chosen = button.dataset.hubThemeValue === choice;
      button.classList.toggle("active", chosen);
      button.setAttribute("aria-pressed", String(chosen));
    });
    document.querySelectorAll("[data-hub-theme-label]").forEach(function (label) {
      label.textContent = LABELS[choice];
    });
  }

  function choose(choice) {
    try {
      window.localStorage.setItem(STORAGE_KEY, choice);
    } catch (error) {
      // not remembered, but still applied to this page
    }
    apply(choice);
    showChoice(choice);
  }

  apply(storedChoice());
  systemDark.addEventListener("change", function () {
    if (storedChoice() === "auto") apply("auto");
  });
  // Another tab of the hub changed the choice.
  window.addEventListener("storage", function (event) {
    if (event.key === STORAGE_KEY) {
      apply(storedChoice());
      showChoice(storedChoice());
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    showChoice(storedChoice());
    document.querySelectorAll("[data-hub-theme-value]").forEach(function (button) {
      button.addEventListener("click", function () {
        choose(button.dataset.hubThemeValue);
      });
    });
  });
})();
