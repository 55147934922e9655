"""Does a collapsed run recover when a remedy twin's knobs are switched on live?

The classroom move: a run of the collapse preset has collapsed; the teacher switches it, mid-run, to
the knobs of a remedy twin (the live knobs where the twin differs from the collapse preset) and the
class watches. This trains the collapse preset for `--before` steps, applies the twin's values as
one live change (as the dashboard's controls do), trains `--after` more steps, and prints modes
covered at the switch and every `--every` steps after it, one process per seed on `--workers`
cores (one thread each, so each line is deterministic on CPU). The last line counts the seeds that
reached the twin's claim (e.g. ≥ 7 of 8 covered) within `--within` steps of the switch, and
`--markdown` prints the row for docs/presets.md's live-switch table.

    python bench/live_switch.py --to wgan-gp-ring8 [--from collapse-ring8] [--seeds 0-9]
                                [--before 3000] [--after 3000] [--every 500] [--within 3000]
                                [--workers 2] [--markdown]
"""

from __future__ import annotations

import argparse
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
    met = sorted(h for h in reached.values() if h is not None)  # steps after, per seed met
    claim = claim_text(a.dst).removesuffix(" at the end")
    print(f"{a.dst} live: {claim} within {a.within} steps of the switch on {len(met)} of "
          f"{len(reached)} seeds")
    if a.markdown:
        when = f"{met[0]}–{met[-1]}" if met else "—"
        print(f"| `{a.src}` → `{a.dst}` | {a.before} | {claim} | {len(met)}/{len(reached)} | "
              f"{when} | {statistics.median(at_end):g} |")


if __name__ == "__main__":
    main()
