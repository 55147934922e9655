"""Run-steps per second of a compare grid: N runs batched into one model vs the N runs one by one.

The grid varies learning rates and Adam's β1 (values, so every run falls in one stacked engine).
"Sequential" trains each run as an engine of its own (R = 1); it is timed on a few steps of up to
`--seq-cap` runs and scaled, since every run costs the same. Trials interleave
batched and sequential measurements; the speed-up is the median of per-trial ratios.

The table is printed for each thread count in `--threads` (default: 1 and every core). On a
small CPU the gain comes from the second core: one run's small matmuls cannot use two threads
well, a stack of eight can; on one thread both are bound by the same arithmetic.

    python bench/grid.py [--sizes 1,8,64,256] [--trials 5] [--steps 10] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.data import make_dataset  # noqa: E402
from collapse_lab.trainer.families.gan.config import RunConfig, make_config  # noqa: E402
from collapse_lab.trainer.families.gan.engine import Engine  # noqa: E402
from collapse_lab.trainer.families.gan.state import RunState  # noqa: E402


def engine(cfgs: list[RunConfig], dev: torch.device) -> Engine:
    data = make_dataset(cfgs[0]).to(dev)
    return Engine([RunState.fresh(c, data.dim, False) for c in cfgs], data, dev)


def train(eng: Engine, steps: int) -> None:
    for _ in range(steps):
        eng.step(norms=False)


def grid(n: int, base: dict) -> list[RunConfig]:
    lrs = (1e-3, 5e-4, 2e-4, 1e-4)
    return [make_config(dict(base, lr_d=lrs[i % 4], lr_g=lrs[(i // 4) % 4],
                             beta1=(0.5, 0.0, 0.9)[(i // 16) % 3])) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,8,64,256")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per trial")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and every core)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--objective", default="nsgan")
    ap.add_argument("--seq-cap", type=int, default=8,
                    help="sequential runs actually timed per trial (scaled to N)")
    a = ap.parse_args()
    threads = ([int(t) for t in a.threads.split(",")] if a.threads
               else sorted({1, os.cpu_count() or 1}))
    for th in threads:
        table(a, th)


def table(a: argparse.Namespace, threads: int) -> None:
    torch.set_num_threads(threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    base = dict(device=a.device, threads=threads, objective=a.objective)
    what = torch.cuda.get_device_name() if dev.type == "cuda" else platform.machine()
    print(f"device {dev} ({what}), torch {torch.__version__}, python "
          f"{platform.python_version()}, threads {threads}, objective {a.objective}, default "
          f"sizes (MLPs 2×128, batch 256), {a.trials} interleaved trials × {a.steps} steps, median")
    print(f"{'N':>5} {'batched run-steps/s':>20} {'sequential run-steps/s':>23} {'speed-up':>9}")
    for n in (int(s) for s in a.sizes.split(",")):
        cfgs = grid(n, base)
        bt = engine(cfgs, dev)
        seq = [engine([c], dev) for c in cfgs[: min(n, a.seq_cap)]]
        train(bt, 2)
        for t in seq:
            train(t, 1)
        sync()
        rb, rs = [], []
        for _ in range(a.trials):
            t0 = time.perf_counter()
            train(bt, a.steps)
            sync()
            rb.append(n * a.steps / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for t in seq:
                train(t, a.steps)
            sync()
            rs.append(len(seq) * a.steps / (time.perf_counter() - t0))
        ratio = statistics.median(b / s for b, s in zip(rb, rs, strict=True))
        note = "" if len(seq) == n else f"  (sequential timed on {len(seq)} runs)"
        print(f"{n:>5} {statistics.median(rb):>20.1f} {statistics.median(rs):>23.1f} "
              f"{ratio:>8.2f}×{note}", flush=True)
    print()


if __name__ == "__main__":
    main()
