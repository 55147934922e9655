"""Minibatch discrimination in two stages: on until the mass has spread, then off — does the
generator then sharpen onto the modes?

    python bench/two_stage.py [--preset minibatch-ring8] [--seeds 0-9] [--on 3000] [--off 3000]
                              [--every 500] [--csv bench/out/two-stage.csv]

Two arms on the same seeds, trained together in one process (one thread; each arm's seeds
stacked in one engine, each run's numbers those it has alone): *two-stage* trains the preset
(minibatch discrimination on) for `--on` steps, then switches the feature off live, as the
dashboard's control does, and trains `--off` more; *control* trains the same knobs with the feature
off from the start for as long. Every `--every` steps both arms' modes covered, high-quality share
and effective modes are recorded; the summary compares them at the switch and at the end.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

from collapse_lab.trainer.loop import Callbacks, Trainer
from collapse_lab.trainer.registry import from_preset
from collapse_lab.trainer.sweep import parse_seeds

ARMS = ("two-stage", "control")


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="minibatch-ring8")
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--on", type=int, default=3000)
    ap.add_argument("--off", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--csv", default="bench/out/two-stage.csv")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = parse_seeds(a.seeds)
    total = a.on + a.off
    rows: list[dict] = []
    path = Path(a.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["arm", "seed", "step", "modes_covered", "modes_captured", "hq_pct",
              "effective_modes"]
    with path.open("w", newline="") as f:
        csv.DictWriter(f, fieldnames=fields).writeheader()

    def cb(arm: str, seed: int) -> Callbacks:
        def on_tick(t: dict) -> None:
            if t["step"] % a.every == 0 and t["step"] > 0:
                rows.append(dict(arm=arm, seed=seed, step=t["step"],
                                 modes_covered=t["modes_covered"],
                                 modes_captured=t["modes_captured"],
                                 hq_pct=round(100 * t["hq_fraction"], 2),
                                 effective_modes=round(t["effective_modes"], 3)))
                with path.open("a", newline="") as f:  # as it goes: a stopped run keeps its rows
                    csv.DictWriter(f, fieldnames=fields).writerow(rows[-1])
        return Callbacks(on_tick=on_tick, want_picture=lambda: False)

    t = Trainer()
    base = dict(grid_size=8, device="cpu", threads=1, steps=total, tick_every=a.every)
    entries = []
    for arm in ARMS:
        for s in seeds:
            knobs = dict(base, seed=s)
            if arm == "control":
                knobs["minibatch_disc"] = False
            entries.append((f"{arm}:{s}", from_preset(a.preset, knobs), cb(arm, s)))
    t.add_many(entries)
    t0 = time.perf_counter()
    switched = False
    while t.active():
        if not switched and all(t.runs[f"two-stage:{s}"].step >= a.on for s in seeds):
            for s in seeds:
                t.command(f"two-stage:{s}", {"set": {"minibatch_disc": False}})
            switched = True
        t.advance()
        step = min(r.step for r in t.runs.values())
        if step and step % a.every == 0:
            print(f"step {step}/{total}, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                  flush=True)
    for step in (a.on, total):
        for arm in ARMS:
            at = [r for r in rows if r["arm"] == arm and r["step"] == step]
            print(f"{arm:>9} at step {step}: covered "
                  + " ".join(str(r["modes_covered"]) for r in sorted(at, key=lambda r: r["seed"]))
                  + f" (median {statistics.median(r['modes_covered'] for r in at):g}), median HQ "
                  f"{statistics.median(r['hq_pct'] for r in at):.1f} %, median effective modes "
                  f"{statistics.median(r['effective_modes'] for r in at):.2f}")
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
