"""Does a collapsed run recover when a remedy twin's knobs are switched on live?

The classroom move: a run of the collapse preset has collapsed; the teacher switches it, mid-run, to
the knobs of a remedy twin (the live knobs where the twin differs from the collapse preset) and the
class watches. This trains the collapse preset for `--before` steps, applies the twin's values as
one live change (as the dashboard's controls do), trains `--after` more steps, and prints modes
covered at the switch and every `--every` steps after it, one process per seed on `--workers`
cores (one thread each, so each line is deterministic on CPU). The last line counts the seeds that
reached the twin's claim (e.g. ≥ 7 of 8 covered) within `--within` steps of the switch, and
`--markdown` prints the row for docs/presets.md's live-switch table.

The steps to rescue of a seed are the steps from the switch to the first check at which the
twin's claim holds (so they are multiples of `--every`); a seed whose claim never holds within
`--within` steps is "not rescued". Two medians are printed: over every seed, the unrescued ones
counting as beyond the window (so it is "> WITHIN" when fewer than half the seeds were rescued,
or when the middle pair includes an unrescued seed), and over the rescued seeds alone.
`--csv` appends one row per seed (its covered count at every check), so the figures can be
derived again without training: docs/live-switch.csv holds the runs docs/presets.md quotes.

    python bench/live_switch.py --to wgan-gp-ring8 [--from collapse-ring8] [--seeds 0-9]
                                [--before 3000] [--after 3000] [--every 500] [--within 3000]
                                [--workers 2] [--markdown] [--csv docs/live-switch.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.registry import (  # noqa: E402
    PRESETS,
    claim_text,
    meets_claim,
    preset_values,
)
from collapse_lab.trainer.sweep import parse_seeds  # noqa: E402


def switch_values(src: str, dst: str) -> dict:
    """The knobs where `dst` differs from `src`, except the run's length."""
    a, b = preset_values(src), preset_values(dst)
    return {k: v for k, v in b.items() if a.get(k) != v and k != "steps"}


def median_to_rescue(hits: list[int | None]) -> tuple[float, float]:
    """(median over all seeds, median over the rescued seeds) of the steps to rescue; a seed not
    rescued (None) counts as infinitely late, so the first is inf when the median falls on or
    beside one; nan for the second when none was rescued."""
    rescued = sorted(h for h in hits if h is not None)
    every = rescued + [math.inf] * (len(hits) - len(rescued))
    over_all = statistics.median(every) if every else math.nan
    return over_all, (statistics.median(rescued) if rescued else math.nan)


def fmt_steps(v: float, within: int) -> str:
    if math.isnan(v):
        return "—"
    return f"> {within:,}" if math.isinf(v) else f"{v:,.0f}"


def one(args: tuple[str, str, int, int, int, int]) -> tuple[int, list[dict]]:
    import torch

    from collapse_lab.trainer.loop import Callbacks, Trainer
    from collapse_lab.trainer.registry import from_preset

    src, dst, seed, before, after, every = args
    torch.set_num_threads(1)
    t = Trainer()
    ticks: list[dict] = []

    def on_tick(tick: dict) -> None:
        if tick["step"] >= before and tick["step"] % every == 0:
            ticks.append(dict(step=tick["step"], modes_covered=tick["modes_covered"],
                              effective_modes=tick["effective_modes"]))

    cfg = from_preset(src, dict(seed=seed, grid_size=8, device="cpu", threads=1,
                                steps=before + after, tick_every=every))
    t.add("r", cfg, Callbacks(on_tick=on_tick, want_picture=lambda: False))
    while t.runs["r"].step < before:
        t.advance()
    t.command("r", {"set": switch_values(src, dst)})
    while t.active():
        t.advance()
    return seed, ticks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", default="collapse-ring8")
    ap.add_argument("--to", dest="dst", required=True)
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--before", type=int, default=3000)
    ap.add_argument("--after", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--within", type=int, default=3000,
                    help="steps after the switch by which the twin's claim must hold")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--markdown", action="store_true", help="also print a docs/presets.md row")
    ap.add_argument("--csv", help="append one row per seed to this file")
    a = ap.parse_args()
    if not PRESETS[a.dst].expect:
        ap.error(f"{a.dst} has no calibrated claim to check")
    jobs = [(a.src, a.dst, s, a.before, a.after, a.every) for s in parse_seeds(a.seeds)]
    print(f"{a.src} for {a.before} steps, then live: {switch_values(a.src, a.dst)}")
    print("modes covered at the switch, then every", a.every, "steps")
    reached: dict[int, int | None] = {}  # seed -> steps after the switch to meet the claim
    at_end: list[int] = []
    with mp.get_context("spawn").Pool(a.workers) as pool:
        for seed, ticks in pool.imap(one, jobs):
            hit = next((t["step"] - a.before for t in ticks
                        if t["step"] - a.before <= a.within and meets_claim(a.dst, t)), None)
            reached[seed] = hit
            at_end.append(ticks[-1]["modes_covered"])
            when = f"claim met {hit} steps after" if hit is not None else "claim not met"
            print(f"seed {seed}: " + " → ".join(f"{t['modes_covered']:g}" for t in ticks)
                  + f"   ({when})", flush=True)
            if a.csv:
                _append(Path(a.csv), dict(
                    switch_from=a.src, to=a.dst, seed=seed, before=a.before, every=a.every,
                    within=a.within, claim=claim_text(a.dst).removesuffix(" at the end"),
                    steps_to_rescue="" if hit is None else hit,
                    covered_at_checks=" ".join(f"{t['modes_covered']:g}" for t in ticks)))
    met = sorted(h for h in reached.values() if h is not None)  # steps after, per seed met
    claim = claim_text(a.dst).removesuffix(" at the end")
    over_all, over_rescued = median_to_rescue(list(reached.values()))
    print(f"{a.dst} live: {claim} within {a.within} steps of the switch on {len(met)} of "
          f"{len(reached)} seeds; median steps to rescue {fmt_steps(over_all, a.within)} over "
          f"every seed (unrescued ones beyond the window), {fmt_steps(over_rescued, a.within)} "
          "over the rescued ones")
    if a.markdown:
        when = f"{met[0]:,}–{met[-1]:,}" if met else "—"
        print(f"| → `{a.dst}` | {claim} | {len(met)}/{len(reached)} | {when} | "
              f"{fmt_steps(over_all, a.within)} | {fmt_steps(over_rescued, a.within)} | "
              f"{statistics.median(at_end):g} |")


CSV_FIELDS = ("switch_from", "to", "seed", "before", "every", "within", "claim",
              "steps_to_rescue", "covered_at_checks")


def _append(path: Path, row: dict) -> None:
    new = not path.exists() or not path.read_text().strip()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow(row)


if __name__ == "__main__":
    main()
