"""Does a collapsed run recover when a remedy twin's knobs are switched on live?

The classroom move: a run of the collapse preset has collapsed; the teacher switches it, mid-run, to
the knobs of a remedy twin (the live knobs where the twin differs from the collapse preset) and the
class watches. This trains the collapse preset for `--before` steps, applies the twin's values as
one live change (as the dashboard's controls do), trains `--after` more steps, and prints modes
covered at the switch and every `--every` steps after it, one process per seed on `--workers`
cores (one thread each, so each line is deterministic on CPU).

    python bench/live_switch.py --to wgan-gp-ring8 [--from collapse-ring8] [--seeds 0-5]
                                [--before 3000] [--after 5000] [--every 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.presets import preset_values  # noqa: E402
from collapse_lab.trainer.sweep import parse_seeds  # noqa: E402


def switch_values(src: str, dst: str) -> dict:
    """The knobs where `dst` differs from `src`, except the run's length."""
    a, b = preset_values(src), preset_values(dst)
    return {k: v for k, v in b.items() if a.get(k) != v and k != "steps"}


def one(args: tuple[str, str, int, int, int, int]) -> tuple[int, list[int]]:
    import torch

    from collapse_lab.trainer.loop import Callbacks, Trainer
    from collapse_lab.trainer.presets import from_preset

    src, dst, seed, before, after, every = args
    torch.set_num_threads(1)
    t = Trainer()
    covered: list[int] = []

    def on_tick(tick: dict) -> None:
        if tick["step"] >= before and tick["step"] % every == 0:
            covered.append(tick["modes_covered"])

    cfg = from_preset(src, dict(seed=seed, grid_size=8, device="cpu", threads=1,
                                steps=before + after, tick_every=every))
    t.add("r", cfg, Callbacks(on_tick=on_tick, want_picture=lambda: False))
    while t.runs["r"].step < before:
        t.advance()
    t.command("r", {"set": switch_values(src, dst)})
    while t.active():
        t.advance()
    return seed, covered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", default="collapse-ring8")
    ap.add_argument("--to", dest="dst", required=True)
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--before", type=int, default=3000)
    ap.add_argument("--after", type=int, default=5000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    jobs = [(a.src, a.dst, s, a.before, a.after, a.every) for s in parse_seeds(a.seeds)]
    print(f"{a.src} for {a.before} steps, then live: {switch_values(a.src, a.dst)}")
    print("modes covered at the switch, then every", a.every, "steps")
    with mp.get_context("spawn").Pool(a.workers) as pool:
        for seed, covered in pool.imap(one, jobs):
            print(f"seed {seed}: " + " → ".join(str(c) for c in covered), flush=True)


if __name__ == "__main__":
    main()
