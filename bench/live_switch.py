"""Does a collapsed run recover when a remedy twin's knobs are switched on live?

The classroom move: a run of the collapse preset has collapsed; the teacher switches it, mid-run, to
the knobs of a remedy twin (the live knobs where the twin differs from the collapse preset) and the
class watches. This trains the collapse preset for `--before` steps, applies the twin's values as
one live change (as the dashboard's controls do), trains `--after` more steps, and prints modes
covered at the switch and every `--every` steps after it, one process per seed on `--workers`
cores (one thread each, so each line is deterministic on CPU), or `--pack N` seeds stacked in
one engine a process. The last line counts the seeds that reached the twin's claim (e.g. ≥ 7
of 8 covered) within `--within` steps of the switch, and `--markdown` prints the row for
docs/presets.md's live-switch table.

The steps to rescue of a seed are the steps from the switch to the first check at which the
twin's claim holds (so they are multiples of `--every`); a seed whose claim never holds within
`--within` steps is "not rescued". Two medians are printed: over every seed, the unrescued ones
counting as beyond the window (so it is "> WITHIN" when fewer than half the seeds were rescued,
or when the middle pair includes an unrescued seed), and over the rescued seeds alone.
`--csv` appends one row per seed (its covered count at every check), so the figures can be
derived again without training: docs/live-switch.csv holds the runs docs/presets.md quotes.

    python bench/live_switch.py --to wgan-gp-ring8 [--from collapse-ring8] [--seeds 0-9]
                                [--before 3000] [--after 3000] [--every 500] [--within 3000]
                                [--workers 2] [--pack 1] [--markdown] [--csv docs/live-switch.csv]
    python bench/live_switch.py --from-csv docs/live-switch.csv     # the table's rows again
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


def pack(args: tuple[str, str, list[int], int, int, int]) -> list[tuple[int, list[dict]]]:
    """Train seeds of the collapse preset stacked in one engine, switch every run at `before`,
    train on; each seed's checks (its run has its own random stream, so its numbers are those
    it has alone up to float rounding: trainer/families/gan/engine.py)."""
    import functools

    import torch

    from collapse_lab.trainer.loop import Callbacks, Trainer
    from collapse_lab.trainer.registry import from_preset

    src, dst, seeds, before, after, every = args
    torch.set_num_threads(1)
    t = Trainer()
    ticks: dict[int, list[dict]] = {s: [] for s in seeds}

    def on_tick(seed: int, tick: dict) -> None:
        if tick["step"] >= before and tick["step"] % every == 0:
            ticks[seed].append(dict(step=tick["step"], modes_covered=tick["modes_covered"],
                                    effective_modes=tick["effective_modes"]))

    t.add_many([(str(s), from_preset(src, dict(seed=s, grid_size=8, device="cpu", threads=1,
                                                steps=before + after, tick_every=every)),
                 Callbacks(on_tick=functools.partial(on_tick, s), want_picture=lambda: False))
                for s in seeds])
    while any(t.runs[str(s)].step < before for s in seeds):
        t.advance()
    for s in seeds:
        t.command(str(s), {"set": switch_values(src, dst)})
    while t.active():
        t.advance()
    return [(s, ticks[s]) for s in seeds]


def summary(hits: list[int | None], at_end: list[float], within: int) -> dict:
    """One twin's figures over its seeds: hits are the steps to rescue (None: not rescued),
    at_end the covered counts at the window's end."""
    met = sorted(h for h in hits if h is not None)
    over_all, over_rescued = median_to_rescue(hits)
    return dict(seeds=len(hits), met=len(met), first=met[0] if met else None,
                last=met[-1] if met else None, median_all=over_all, median_rescued=over_rescued,
                median_covered=statistics.median(at_end), within=within)


def markdown_row(dst: str, claim: str, f: dict) -> str:
    when = f"{f['first']:,}–{f['last']:,}" if f["met"] else "—"
    return (f"| → `{dst}` | {claim} | {f['met']}/{f['seeds']} | {when} | "
            f"{fmt_steps(f['median_all'], f['within'])} | "
            f"{fmt_steps(f['median_rescued'], f['within'])} | {f['median_covered']:g} |")


def from_csv(path: Path) -> None:
    """Each twin's row of docs/presets.md's table from stored runs (--csv), in file order."""
    rows = list(csv.DictReader(path.open()))
    for dst in dict.fromkeys(r["to"] for r in rows):
        rs = [r for r in rows if r["to"] == dst]
        f = summary([int(r["steps_to_rescue"]) if r["steps_to_rescue"] else None for r in rs],
                    [float(r["covered_at_checks"].split()[-1]) for r in rs],
                    int(rs[0]["within"]))
        print(markdown_row(dst, rs[0]["claim"], f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", default="collapse-ring8")
    ap.add_argument("--to", dest="dst")
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--before", type=int, default=3000)
    ap.add_argument("--after", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--within", type=int, default=3000,
                    help="steps after the switch by which the twin's claim must hold")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pack", type=int, default=1,
                    help="seeds trained stacked in one engine (each process one pack)")
    ap.add_argument("--markdown", action="store_true", help="also print a docs/presets.md row")
    ap.add_argument("--csv", help="append one row per seed to this file")
    ap.add_argument("--from-csv", help="print docs/presets.md's rows from stored runs (--csv) "
                    "without training")
    a = ap.parse_args()
    if a.from_csv:
        from_csv(Path(a.from_csv))
        return
    if not a.dst:
        ap.error("--to: the remedy twin to switch to (or --from-csv)")
    if not PRESETS[a.dst].expect:
        ap.error(f"{a.dst} has no calibrated claim to check")
    seeds = parse_seeds(a.seeds)
    size = max(1, a.pack)
    jobs = [(a.src, a.dst, seeds[i:i + size], a.before, a.after, a.every)
            for i in range(0, len(seeds), size)]
    print(f"{a.src} for {a.before} steps, then live: {switch_values(a.src, a.dst)}")
    print("modes covered at the switch, then every", a.every, "steps")
    reached: dict[int, int | None] = {}  # seed -> steps after the switch to meet the claim
    at_end: list[float] = []
    claim = claim_text(a.dst).removesuffix(" at the end")
    with mp.get_context("spawn").Pool(min(a.workers, len(jobs))) as pool:
        for seed, ticks in (x for got in pool.imap(pack, jobs) for x in got):
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
                    within=a.within, claim=claim, steps_to_rescue="" if hit is None else hit,
                    covered_at_checks=" ".join(f"{t['modes_covered']:g}" for t in ticks)))
    f = summary(list(reached.values()), at_end, a.within)
    print(f"{a.dst} live: {claim} within {a.within} steps of the switch on {f['met']} of "
          f"{f['seeds']} seeds; median steps to rescue {fmt_steps(f['median_all'], a.within)} "
          f"over every seed (unrescued ones beyond the window), "
          f"{fmt_steps(f['median_rescued'], a.within)} over the rescued ones")
    if a.markdown:
        print(markdown_row(a.dst, claim, f))


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
