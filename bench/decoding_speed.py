"""The decoding family's speed: training steps a second alone and stacked, and what a tick costs
with each decoder (docs/performance.md).

    python bench/decoding_speed.py [--steps 100] [--trials 5]

One thread; the preset's model (GRU, hidden 64, batch 64). A tick decodes the run's strings
(16 beams, or 128 samples), traces them and computes the stats and the text panel.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.decoding.config import make_config
from collapse_lab.trainer.families.decoding.engine import DecodingEngine, DecState
from collapse_lab.trainer.families.decoding.presets import values

DECODERS = {"greedy": dict(strategy="greedy"), "beam 16": dict(strategy="beam"),
            "diverse beam 16 × 1": dict(strategy="diverse_beam", groups=16, diversity=1.0),
            "sample 128": dict(strategy="sample", samples=128)}


def engine(runs: int) -> DecodingEngine:
    cfgs = [make_config({**values("decoding-beam-collapse"), "seed": s}) for s in range(runs)]
    return DecodingEngine([DecState.fresh(c) for c in cfgs], make_dataset(cfgs[0]),
                          torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--trials", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("| runs in the stack | steps/s of the stack | run-steps/s |\n|---:|---:|---:|")
    for runs in (1, 10):
        eng = engine(runs)
        rates = []
        for _ in range(a.trials):
            t0 = time.perf_counter()
            for _ in range(a.steps):
                eng.step()
            rates.append(a.steps / (time.perf_counter() - t0))
        r = statistics.median(rates)
        print(f"| {runs} | {r:.1f} | {r * runs:.1f} |")
    eng = engine(1)
    for _ in range(300):
        eng.step()
    print("\n| decoder | tick ms (picture) |\n|---|---:|")
    for name, ch in DECODERS.items():
        eng.apply(0, ch)
        ms = []
        for _ in range(a.trials):
            t0 = time.perf_counter()
            eng.tick(pictures=[0])
            ms.append(1000 * (time.perf_counter() - t0))
        print(f"| {name} | {statistics.median(ms):.1f} |")


if __name__ == "__main__":
    main()
