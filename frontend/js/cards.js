// The metric cards above the charts, built from the registry (/api/options `stats`): one card per
// stat whose `show` includes "card" — the mode metrics every 2-D family reports, then the run
// family's own, then the tick's (step) — and the device card. A stat with `under` is written
// under that stat's value instead of on a card of its own ("7 modes captured" under modes
// covered). Values are formatted as the registry says (series.js formatStat, mirroring
// trainer/family.py Stat.format). The choice of cards is pure and tested; the class draws.

import { el } from "./dom.js";
import { formatStat, formatStatParts } from "./series.js";

// the element ids the lessons' tests and scripts know the first cards by; any other stat's value
// is `m-<name>`
const IDS = {
  modes_covered: "m-covered", modes_captured: "m-captured", effective_modes: "m-effective",
  hq_fraction: "m-hq", reverse_kl: "m-rkl", hopping: "m-hop", step: "m-step", steps_per_sec: "m-speed",
};
export const cardId = (name) => IDS[name] || `m-${name}`;

/**
 * The cards of a run of `family` (pure): [{stat, subs: [stat]}] in the order metrics, the
 * family's own, tick. `options` is /api/options; the common stats are those of no family.
 */
export function cardStats(options, family) {
  const fams = options.families || [];
  const owned = new Set(fams.flatMap((f) => f.stats.map((s) => s.name)));
  const fam = fams.find((f) => f.name === family);
  const own = fam ? fam.stats : [];
  const common = (options.stats || []).filter((s) => !owned.has(s.name));
  const onCard = (s) => (s.show || []).includes("card");
  const all = [...common, ...own].filter(onCard);
  const tops = all.filter((s) => !s.under || !all.some((t) => t.name === s.under));
  const rank = (s) => (s.kind === "metric" ? 0 : s.kind === "tick" ? 2 : 1);
  return tops
    .map((s, i) => ({ s, i }))
    .sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i)
    .map(({ s }) => ({ stat: s, subs: all.filter((t) => t.under === s.name && t !== s) }));
}

/** A stat's value on its card: formatted as the registry says; modes covered as "3 / 8". */
export function cardText(stat, v, modes = null) {
  if (v === undefined || v === null) return "–";
  if (stat.name === "modes_covered") return `${v}${modes ? ` / ${modes}` : ""}`;
  return formatStat(stat.name, v);
}

/** cardText as [number, unit]: the card sets the unit ("%", "nats") in smaller type, so the
 * number keeps its room on a narrow card ("100.0 %" was cut to "100.0…" at 1280 px). */
export function cardParts(stat, v, modes = null) {
  if (v === undefined || v === null || stat.name === "modes_covered") return [cardText(stat, v, modes), ""];
  return formatStatParts(stat.name, v);
}

/** The line under a card's value for a stat shown there: "7 modes captured", "609 steps/s". */
export function subText(stat, v) {
  const text = v === undefined || v === null ? "–" : formatStat(stat.name, v);
  return `${text} ${stat.label}`;
}

export class MetricCards {
  /** root: the cards' container (#cards); it keeps the device card built here, last. */
  constructor(root) {
    this.root = root;
    this.key = null;
    this.cards = [];
    // the device and the run's status: not a stat; kept (with what it says) when the cards change
    this.device = el("div", { class: "card", "data-card": "device" },
      el("div", { class: "card-label", text: "device" }),
      el("div", { class: "card-value small", id: "m-device", text: "–" }),
      el("div", { class: "card-sub", id: "m-status", text: "–" }));
  }

  /** Build the cards of a run of `family` (its name) from /api/options; unchanged if the same. */
  setFamily(options, family) {
    const key = `${family}`;
    if (key === this.key && this.cards.length) return;
    this.key = key;
    this.cards = cardStats(options, family).map(({ stat, subs }) => {
      const card = el("div", { class: "card" });
      card.dataset.stat = stat.name;
      const help = `${stat.label}: ${stat.help}`;
      card.dataset.help = help;
      card.title = help;
      const num = document.createTextNode("–");
      const unit = el("small", { class: "card-unit" });
      const value = el("div", { class: "card-value", id: cardId(stat.name) }, num, unit);
      card.append(el("div", { class: "card-label", text: stat.label }), value);
      const subEls = subs.map((sub) => {
        const e = el("div", { class: "card-sub", id: cardId(sub.name), text: subText(sub, null) });
        e.title = `${sub.label}: ${sub.help}`;
        card.append(e);
        return { stat: sub, e };
      });
      const hint = el("div", { class: "card-hint", text: stat.hint || "" });
      hint.dataset.hint = stat.hint || "";
      card.append(hint);
      return { stat, card, value, num, unit, subs: subEls, hint };
    });
    this.root.replaceChildren(...this.cards.map((c) => c.card), this.device);
  }

  /** The card of stat `name` ({stat, card, value, subs, hint}), or undefined. */
  card(name) {
    return this.cards.find((c) => c.stat.name === name);
  }

  /** Every card's value from a tick's scalars `s`; `modes`: the dataset's number of modes. */
  update(s, modes) {
    for (const c of this.cards) {
      const [num, unit] = cardParts(c.stat, s[c.stat.name], modes);
      c.num.data = num;
      c.unit.textContent = unit ? ` ${unit}` : "";
      for (const sub of c.subs) sub.e.textContent = subText(sub.stat, s[sub.stat.name]);
    }
  }
}
