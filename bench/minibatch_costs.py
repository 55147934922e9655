"""Minibatch discrimination against the plain step, where it costs most: second derivatives and
the watched tick.

Side by side, one thread, medians of interleaved trials, each as a ratio to its plain
counterpart (the same config without the feature):

- **step + gradient penalty** (nsgan, gp 1): a training step whose penalty differentiates D's
  gradient again, through the pairwise feature: *before*, the textbook formula differentiated
  twice by autograd (what second derivatives used), *now* trainer/families/gan/minibatch.py's
  closed-form second derivative;
- **watched tick**: a metric tick with D's landscape (what a frame needs); *before*, the
  landscape's batch features against 128 fakes, *now* against LANDSCAPE_CONTEXT fakes weighted
  to a training batch (trainer/families/gan/engine.py);
- **unwatched advance**: `Trainer.advance()` as `collapse-lab train` runs it (ticks without
  the landscape), for reference.

    python bench/minibatch_costs.py [--trials 3] [--seconds 0.5] [--batches 64,256]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collapse_lab.trainer.families.gan import tick as tick_mod  # noqa: E402
from collapse_lab.trainer.families.gan.config import make_config  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_minibatch", ROOT / "bench" / "minibatch.py")
assert _spec is not None and _spec.loader is not None
_bm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bm)


def trainer(over: dict, picture: bool) -> Trainer:
    t = Trainer()
    t.add("r", make_config(dict(device="cpu", steps=0, threads=1, **over)),
          Callbacks(want_picture=lambda: picture))
    return t


def old_second_derivatives(t: Trainer) -> None:
    """The textbook formula for the feature, so autograd differentiates it twice."""
    t.runs["r"].engine.D.__class__ = _bm.OldD


def timed(fn, seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--batches", default="64,256")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for b in [int(x) for x in a.batches.split(",")]:
        base = dict(batch_size=b)
        gp_plain = trainer(dict(base, gp=1.0), False)
        gp_old = trainer(dict(base, gp=1.0, minibatch_disc=True), False)
        old_second_derivatives(gp_old)
        gp_new = trainer(dict(base, gp=1.0, minibatch_disc=True), False)
        tick_plain = trainer(base, True)
        tick_mbd = trainer(dict(base, minibatch_disc=True), True)
        adv_plain = trainer(base, False)
        adv_mbd = trainer(dict(base, minibatch_disc=True), False)

        def step(t: Trainer):
            return lambda: t.runs["r"].engine.step(norms=False)

        def tick(t: Trainer, context: int):
            def run() -> None:
                tick_mod.LANDSCAPE_CONTEXT = context
                t.runs["r"].engine.tick([0], pictures=[0])
            return run

        def adv(t: Trainer):
            return t.advance

        cases = {"gp plain": step(gp_plain), "gp old": step(gp_old), "gp new": step(gp_new),
                 "tick plain": tick(tick_plain, 32), "tick old": tick(tick_mbd, 128),
                 "tick new": tick(tick_mbd, 32), "adv plain": adv(adv_plain),
                 "adv mbd": adv(adv_mbd)}
        secs: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(a.trials):
            for k, fn in cases.items():
                secs[k].append(timed(fn, a.seconds))
        tick_mod.LANDSCAPE_CONTEXT = 32
        med = {k: statistics.median(v) for k, v in secs.items()}
        rows.append((b, med))
        print(f"  batch {b} done", file=sys.stderr, flush=True)

    print(f"\ntorch {torch.__version__}, 1 thread, kernels × dims 16 × 4 (the default), "
          f"median of {a.trials} trials\n")
    print("| batch | what | plain ms | before ms | before × | now ms | now × |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for b, m in rows:
        for what, p, old, new in (("step + gradient penalty", "gp plain", "gp old", "gp new"),
                                  ("watched tick (landscape)", "tick plain", "tick old",
                                   "tick new")):
            print(f"| {b} | {what} | {1e3 * m[p]:.1f} | {1e3 * m[old]:.1f} | "
                  f"{m[old] / m[p]:.2f} | {1e3 * m[new]:.1f} | {m[new] / m[p]:.2f} |")
        print(f"| {b} | unwatched advance (train) | {1e3 * m['adv plain']:.2f} | — | — | "
              f"{1e3 * m['adv mbd']:.2f} | {m['adv mbd'] / m['adv plain']:.2f} |")


if __name__ == "__main__":
    main()
