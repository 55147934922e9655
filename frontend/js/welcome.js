// A first visit's way in: a short welcome above the charts that points to the lessons (the best
// way in) and to a good first preset, until the person starts something or closes it (then it
// stays closed on this browser). Shown only to a page that may start runs, on a plain address
// (a link with a run, a view or settings already says what to look at; one that names only the
// family does not). Its headline, first preset and hint are the family's own (its `welcome` in
// /api/options `families`), and follow the family the page is switched to. It leaves a page
// that follows the teacher onto a run or a lesson, and one that may no longer start runs.

import { el } from "./dom.js";

const KEY = "collapse-lab.welcomed";

function welcomed() {
  try { return localStorage.getItem(KEY) === "1"; } catch { return false; }
}

/** A first visit's address: no hash, or one that names only the family. */
export function plainAddress(hash) {
  const parts = (hash || "").replace(/^#/, "").split("&").filter(Boolean);
  return parts.every((p) => p.startsWith("family="));
}

/**
 * What the welcome says on a family's page: {headline, preset, hint} from the family's entry of
 * /api/options; a family without one (or none known) gets its label and help and no preset.
 */
export function welcomeText(fam) {
  if (fam && fam.welcome) return { ...fam.welcome };
  const words = fam ? `${fam.label}: ${fam.help}.` : "Watch a model lose the modes of its data, live.";
  return { headline: words, preset: null, hint: "" };
}

export class Welcome {
  /**
   * hooks: {lessons() -> bool (lessons may be run here), openLessons(), usePreset(name),
   * family() -> the /api/options entry of the family the page is on}
   */
  constructor(hooks) {
    this.h = hooks;
    this.box = null;
  }

  /** Show the welcome if this is a first visit on a plain address; `may` is the page's powers. */
  maybeShow(may, hash) {
    if (welcomed() || !may.start || !plainAddress(hash)) return;
    const close = el("button", { type: "button", class: "ghost small", id: "welcome-close", text: "Close", "aria-label": "close the welcome" });
    close.addEventListener("click", () => this.dismiss());
    const ways = el("div", { class: "welcome-ways" });
    if (this.h.lessons()) {
      const lessons = el("button", { type: "button", class: "primary", id: "welcome-lessons", text: "Take a lesson ▸" });
      lessons.addEventListener("click", () => { this.dismiss(); this.h.openLessons(); });
      ways.append(el("div", { class: "welcome-way" }, lessons,
        el("span", { text: "Short narrated lessons drive this page step by step: a collapse, why it happens, and what brings the modes back." })));
    }
    this.presetButton = el("button", { type: "button", id: "welcome-preset" });
    this.presetButton.addEventListener("click", () => {
      const name = this.presetButton.dataset.preset;
      this.dismiss();
      this.h.usePreset(name);
    });
    this.hint = el("span", { id: "welcome-hint" });
    this.presetWay = el("div", { class: "welcome-way" }, this.presetButton, this.hint);
    ways.append(this.presetWay);
    this.headline = el("h2", { id: "welcome-headline" });
    this.box = el("section", { class: "welcome", id: "welcome", "aria-label": "Welcome" },
      el("header", {}, this.headline, close), ways);
    this.follow(this.h.family());
    // above the settings and the charts, across both (on a phone: first of all)
    document.querySelector(".layout").prepend(this.box);
  }

  /** The page is on family `fam` now (its /api/options entry): say what to watch in it. */
  follow(fam) {
    if (!this.box) return;
    const w = welcomeText(fam);
    this.headline.textContent = w.headline;
    this.presetWay.hidden = !w.preset;
    this.presetButton.dataset.preset = w.preset || "";
    this.presetButton.textContent = w.preset ? `Try ${w.preset}` : "";
    this.hint.textContent = w.hint;
  }

  /** Take it off the page for now (it may show on a later visit): the page follows the
   * teacher's lesson, or may no longer start runs, so its buttons would offer what it cannot do. */
  hide() {
    if (this.box) this.box.remove();
    this.box = null;
  }

  /** Close it for good (on this browser): a run started, a lesson chosen, or Close. */
  dismiss() {
    this.hide();
    try { localStorage.setItem(KEY, "1"); } catch { /* private mode: shown again next time */ }
  }
}
