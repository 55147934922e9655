"""What minibatch discrimination costs: a training step with it against the plain step.

For each batch size, the plain non-saturating step (one run's `Engine.step()`, default networks:
MLPs 2×128, z 16) is timed against the same step with `minibatch_disc` on at several kernel shapes
(kernels × dimensions), with the pairwise feature computed two ways:

- old: the textbook broadcast formula differentiated by autograd, as the project computed it
  before trainer/families/gan/minibatch.py (kept here, `textbook_features`, for this comparison;
  the same
  T, so only the pairwise sum differs);
- new: trainer/families/gan/minibatch.py (blocks of pairs, half of them, a backward without the
pair graph).

Trials are interleaved (plain, old, new for every shape, then again) so a noisy machine slows
all alike; each measurement lasts about `--seconds`, its step count set from a warm-up; the
table gives the median steps/s and the median of the per-trial ratios to the plain step
(case time / plain time: 3.0 means a step costs three plain steps).

    python bench/minibatch.py [--trials 5] [--seconds 0.4] [--threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.families.gan.config import make_config  # noqa: E402
from collapse_lab.trainer.families.gan.engine import Engine  # noqa: E402
from collapse_lab.trainer.families.gan.models import Discriminator  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402

SHAPES = [(16, 4), (32, 5), (100, 5)]
BATCHES = [64, 128, 256]


def textbook_features(self: Discriminator, f: torch.Tensor, fc: torch.Tensor,
                      same: bool) -> torch.Tensor:
    """The same features with the pairwise sum as broadcast ops, one kernel dimension at a
    time, and autograd's backward: the project's computation before."""
    r, b, _ = f.shape
    k, c = self.mbd_kernels, self.mbd_dim
    m = torch.bmm(f, self.mbd_T).view(r, b, k, c).permute(0, 2, 3, 1).contiguous()  # (R,K,C,B)
    mc = m if same else torch.bmm(fc, self.mbd_T).view(r, -1, k, c).permute(0, 2, 3, 1)
    dist = (m[:, :, 0, :, None] - mc[:, :, 0, None, :]).abs()  # (R, K, B, Bc)
    for j in range(1, c):
        dist = dist + (m[:, :, j, :, None] - mc[:, :, j, None, :]).abs()
    o = torch.exp(-dist).sum(dim=3)
    return (o - 1.0 if same else o).transpose(1, 2)


class OldD(Discriminator):
    minibatch_features = textbook_features  # type: ignore[assignment]


def engine(over: dict, old: bool, device: str) -> Engine:
    t = Trainer()
    t.add("r", make_config(dict(objective="nsgan", device=device, steps=1_000_000, **over)),
          Callbacks(want_picture=lambda: False))
    eng = t.runs["r"].engine
    if old:
        eng.D.__class__ = OldD
    return eng


def timed(eng: Engine, n: int, sync) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        eng.step(norms=False)
    sync()
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.4, help="length of one measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--shapes", default=",".join(f"{k}x{c}" for k, c in SHAPES),
                    help="kernels x dimensions, comma-separated")
    ap.add_argument("--no-old", action="store_true", help="skip the textbook formula")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    batches = [int(b) for b in a.batches.split(",")]
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    what = torch.cuda.get_device_name() if dev.type == "cuda" else platform.machine()
    print(f"device {dev} ({what}), torch {torch.__version__}, threads {a.threads}, "
          f"{a.trials} interleaved trials of ~{a.seconds:g} s each, median; ratio = step time "
          "/ plain step time")
    print(f"{'batch':>5} {'kernels':>8} {'plain/s':>8} {'old/s':>8} {'old ×':>7} "
          f"{'new/s':>8} {'new ×':>7} {'speed-up':>8}")
    for b in batches:
        cases: dict[str, Engine] = {"plain": engine(dict(batch_size=b), False, a.device)}
        for k, c in shapes:
            over = dict(batch_size=b, minibatch_disc=True, mbd_kernels=k, mbd_dim=c)
            if not a.no_old:
                cases[f"old {k}x{c}"] = engine(over, True, a.device)
            cases[f"new {k}x{c}"] = engine(over, False, a.device)
        steps = {}
        for name, t in cases.items():  # warm-up, then a step count lasting ~seconds
            timed(t, 2, sync)
            steps[name] = max(2, round(a.seconds / timed(t, 3, sync)))
        secs: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(a.trials):
            for name, t in cases.items():
                secs[name].append(timed(t, steps[name], sync))

        def rate(name: str, secs: dict[str, list[float]] = secs) -> float:
            return 1.0 / statistics.median(secs[name])

        def ratio(name: str, secs: dict[str, list[float]] = secs) -> float:
            return statistics.median(q / p for p, q in zip(secs["plain"], secs[name]))

        for k, c in shapes:
            new = f"new {k}x{c}"
            if a.no_old:
                old_cols = f"{'—':>8} {'—':>7}"
                speedup = "—"
            else:
                old = f"old {k}x{c}"
                old_cols = f"{rate(old):>8.1f} {ratio(old):>7.2f}"
                speedup = f"{ratio(old) / ratio(new):.1f}×"
            print(f"{b:>5} {f'{k}×{c}':>8} {rate('plain'):>8.1f} {old_cols} {rate(new):>8.1f} "
                  f"{ratio(new):>7.2f} {speedup:>8}", flush=True)


if __name__ == "__main__":
    main()
