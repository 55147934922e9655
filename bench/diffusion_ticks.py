"""How fast a diffusion run can tick, and so how many frames a second the page can get.

    python bench/diffusion_ticks.py [--preset diffusion-memorise-circle] [--threads 1]

Every tick of a diffusion run draws its samples with the sampler (`samples` points through
`sample_steps` denoising steps) to measure memorisation, so a tick costs far more than a step.
The page gets at most one frame per tick: a run ticking every `tick_every` steps makes
1 / (tick_every × step + tick) frames a second. This trains the preset on one CPU thread (the
engine the server's worker runs, no server) and prints, for a few sampler settings, the time of
a step, of a tick with its pictures (training points, score arrows) and the frames a second at
several `tick_every` — the target is ≥ 5 (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.diffusion.engine import DiffState, DiffusionEngine
from collapse_lab.trainer.registry import from_preset


def timed(fn, n: int) -> float:
    """Median seconds of n calls."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="diffusion-memorise-circle")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trials", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = from_preset(args.preset, {"device": "cpu"})
    print(f"{args.preset}: width {base.width}, depth {base.depth}, batch {base.batch}, "
          f"{base.noise_levels} noise levels; {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'samples':>8}{'sampler steps':>14}{'step ms':>9}{'tick ms':>9}"
          + "".join(f"{f'fps @{k}':>10}" for k in (10, 20, 50, 100)))
    for samples, steps in ((base.samples, base.sample_steps), (512, 10), (256, 10),
                           (2048, base.noise_levels)):
        cfg = base.replace(samples=samples, sample_steps=steps)
        eng = DiffusionEngine([DiffState.fresh(cfg)], make_dataset(cfg), torch.device("cpu"))
        for _ in range(20):
            eng.step()
        step = timed(eng.step, args.trials * 4)
        tick = timed(lambda e=eng: e.tick(pictures=[0]), args.trials)
        fps = [1 / (k * step + tick) for k in (10, 20, 50, 100)]
        print(f"{samples:>8}{steps:>14}{step * 1e3:>9.2f}{tick * 1e3:>9.1f}"
              + "".join(f"{f:>10.1f}" for f in fps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
