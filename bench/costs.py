"""Measure what runs cost and fit the estimator's table (trainer/families/gan/costs.json).

For a spread of configurations (network sizes, batch sizes, n_critic, unrolling, penalties,
minibatch discrimination at several sizes, tick_every), times the driver's `Trainer.advance()`
with D's landscape drawn at every tick (a watched run), and in a subprocess per configuration
the peak memory of a short run. Fits the per-unit costs of trainer/families/gan/cost.py by
non-negative least squares on relative error, prints measured against predicted, and with
`--write` stores the coefficients and the table in costs.json.

    python bench/costs.py [--seconds 0.6] [--write]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.families.gan import cost  # noqa: E402
from collapse_lab.trainer.families.gan.config import make_config  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402

CASES: list[tuple[str, dict]] = [
    ("plain b64", dict(batch_size=64)),
    ("plain", dict()),
    ("plain b1024", dict(batch_size=1024)),
    ("wide 256", dict(g_width=256, d_width=256)),
    ("n_critic 5", dict(n_critic=5)),
    ("wgan-gp", dict(objective="wgan-gp")),
    ("unroll 3", dict(unroll=3)),
    ("tick_every 2", dict(tick_every=2)),
    ("mbd 16x4 b64", dict(minibatch_disc=True, batch_size=64)),
    ("mbd 16x4", dict(minibatch_disc=True)),
    ("mbd 32x8", dict(minibatch_disc=True, mbd_kernels=32, mbd_dim=8)),
    ("mbd 16x4 b64 + gp", dict(minibatch_disc=True, batch_size=64, gp=1.0)),
    ("mbd 16x4 + gp", dict(minibatch_disc=True, gp=1.0)),
]
MEMORY_CASES = ["plain", "mbd 16x4", "mbd 32x8", "mbd 16x4 + gp", "plain b1024"]


def config(over: dict):
    return make_config(dict(dict(device="cpu", steps=0, threads=1), **over))


def seconds_per_step(over: dict, seconds: float) -> float:
    tr = Trainer()
    tr.add("r", config(over), Callbacks(want_picture=lambda: True))
    for _ in range(5):
        tr.advance()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 10:
        tr.advance()
        n += 1
    return (time.perf_counter() - t0) / n


def peak_mb(over: dict) -> float:
    """Peak RSS of a fresh process that trains 30 steps of `over`."""
    code = ("import json,resource,sys,torch; torch.set_num_threads(1);"
            "from collapse_lab.trainer.loop import Callbacks, Trainer;"
            "from collapse_lab.trainer.families.gan.config import make_config;"
            "t=Trainer(); t.add('r', make_config(json.loads(sys.argv[1])),"
            " Callbacks(want_picture=lambda: True));"
            "[t.advance() for _ in range(30)];"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")
    cfg = dict(dict(device="cpu", steps=0, threads=1), **over)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.6)
    ap.add_argument("--write", action="store_true", help="store the fit in costs.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from scipy.optimize import nnls

    rows = []
    for name, over in CASES:
        s = seconds_per_step(over, a.seconds)
        rows.append((name, over, s, cost.work(config(over))))
        print(f"  timed {name}: {1 / s:.1f} steps/s", file=sys.stderr, flush=True)
    X = np.array([[w[f] for f in cost.FEATURES] for _, _, _, w in rows])
    y = np.array([s for _, _, s, _ in rows])
    coef, _ = nnls(X / y[:, None], np.ones_like(y))  # relative error: slow cases weigh alike
    seconds = dict(zip(cost.FEATURES, (float(c) for c in coef), strict=True))

    mem_rows = {}
    for name in MEMORY_CASES:
        mem_rows[name] = peak_mb(dict(CASES)[name])
        print(f"  memory {name}: {mem_rows[name]:.0f} MB", file=sys.stderr, flush=True)
    base = mem_rows["plain"]
    pair1 = config(dict(CASES)["mbd 32x8"])
    pair2 = config(dict(CASES)["mbd 16x4 + gp"])
    memory = dict(base_mb=round(base, 1),
                  pair_bytes=max(4.0, (mem_rows["mbd 32x8"] - base) * 2**20
                                 / cost.pair_elements(pair1)),
                  pair2_bytes=max(4.0, (mem_rows["mbd 16x4 + gp"] - base) * 2**20
                                  / cost.pair_elements(pair2)))
    co = dict(seconds=seconds, memory=memory)

    print(f"\ntorch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"1 thread, {a.seconds} s per case\n")
    print("| case | measured steps/s | estimated steps/s | error |")
    print("|---|---:|---:|---:|")
    table = []
    for name, over, s, w in rows:
        est = sum(seconds[f] * w[f] for f in cost.FEATURES)
        print(f"| {name} | {1 / s:.1f} | {1 / est:.1f} | {100 * (est / s - 1):+.0f} % |")
        table.append(dict(case=name, knobs=over, measured_steps_per_sec=round(1 / s, 2),
                          estimated_steps_per_sec=round(1 / est, 2)))
    print("\n| case | peak RSS MB |\n|---|---:|")
    for name, mb in mem_rows.items():
        print(f"| {name} | {mb:.0f} |")
    print(f"\ncoefficients: {json.dumps(co)}")
    if a.write:
        cost.TABLE.write_text(json.dumps(dict(
            coefficients=co, measured=table, memory_mb=mem_rows, torch=torch.__version__,
            when=time.strftime("%Y-%m-%d")), indent=1) + "\n")
        print(f"written to {cost.TABLE}")


if __name__ == "__main__":
    main()
