// A first visit's way in: a short welcome above the charts that points to the lessons (the best
// way in) and to a good first preset, until the person starts something or closes it (then it
// stays closed on this browser). Shown only to a page that may start runs, on a plain address
// (a link with a run, a view or settings already says what to look at).

import { el } from "./dom.js";

const KEY = "collapse-lab.welcomed";
export const FIRST_PRESET = "collapse-ring8";

function welcomed() {
  try { return localStorage.getItem(KEY) === "1"; } catch { return false; }
}

export class Welcome {
  /** hooks: {lessons() -> bool (lessons may be run here), openLessons(), usePreset(name)} */
  constructor(hooks) {
    this.h = hooks;
    this.box = null;
  }

  /** Show the welcome if this is a first visit on a plain address; `may` is the page's powers. */
  maybeShow(may, hash) {
    if (welcomed() || !may.start || (hash || "").replace(/^#/, "")) return;
    const close = el("button", { type: "button", class: "ghost small", id: "welcome-close", text: "Close", "aria-label": "close the welcome" });
    close.addEventListener("click", () => this.dismiss());
    const ways = el("div", { class: "welcome-ways" });
    if (this.h.lessons()) {
      const lessons = el("button", { type: "button", class: "primary", id: "welcome-lessons", text: "Take a lesson ▸" });
      lessons.addEventListener("click", () => { this.dismiss(); this.h.openLessons(); });
      ways.append(el("div", { class: "welcome-way" }, lessons,
        el("span", { text: "Seven short narrated lessons drive this page step by step: a collapse, why it happens, and what brings the modes back." })));
    }
    const preset = el("button", { type: "button", id: "welcome-preset", text: `Try ${FIRST_PRESET}` });
    preset.addEventListener("click", () => { this.dismiss(); this.h.usePreset(FIRST_PRESET); });
    ways.append(el("div", { class: "welcome-way" }, preset,
      el("span", { text: "Loads a run that collapses within a minute: press Start run and watch the ring's eight modes fall to one or two. Then pick wgan-gp-ring8 and switch the run to it." })));
    this.box = el("section", { class: "welcome", id: "welcome", "aria-label": "Welcome" },
      el("header", {}, el("h2", { text: "Watch a GAN lose the modes of its data, live, and steer it back." }), close),
      ways);
    // above the settings and the charts, across both (on a phone: first of all)
    document.querySelector(".layout").prepend(this.box);
  }

  /** Close it for good (on this browser): a run started, a lesson chosen, or Close. */
  dismiss() {
    if (this.box) this.box.remove();
    this.box = null;
    try { localStorage.setItem(KEY, "1"); } catch { /* private mode: shown again next time */ }
  }
}
