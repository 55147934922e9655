"""What `collapse_lab.track` costs a training loop, and what a tracked tick costs the server.

    python bench/track_overhead.py                # starts its own server (loopback, no token)
    python bench/track_overhead.py --seconds 5 --rounds 5 --url http://host:8000 --token T

Part 1: the 2-D GAN of examples/gan_2d.py (batch 256, 64-wide MLPs, one torch thread) trained
for `--seconds` without tracking, then with `run.log(step, samples=fake, d_loss=…, g_loss=…)` at
every step (10 ticks a second leave the process), against a real server and into a folder; the
configurations alternate for `--rounds` rounds so a busy machine slows them alike, and the table
gives the median steps/s of each and the overhead against the plain loop. Also the cost of one
`log()` call alone (samples copied or not).

Part 2: the server's measure of one tick (server/tracked.py, `Series.tick`) for each way of
naming modes, at the sizes a tracked run sends.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ring(k: int = 8) -> torch.Tensor:
    a = torch.arange(k) * 2 * torch.pi / k
    return torch.stack([2 * torch.cos(a), 2 * torch.sin(a)], 1)


def mlp(n_in: int, n_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, n_out))


def train(seconds: float, run=None) -> tuple[float, float]:
    """Steps a second of the example's GAN loop for `seconds` (logging every step to `run`),
    and the CPU time this process spent per step (the loop and the client's sending thread)."""
    torch.manual_seed(0)
    centres, batch = ring(), 256
    g, d = mlp(4, 2), mlp(2, 1)
    og = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    step, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        real = centres[torch.randint(0, 8, (batch,))] + 0.05 * torch.randn(batch, 2)
        fake = g(torch.randn(batch, 4)).detach()
        ld = bce(d(real), ones) + bce(d(fake), zeros)
        od.zero_grad()
        ld.backward()
        od.step()
        fake = g(torch.randn(batch, 4))
        lg = bce(d(fake), ones)
        og.zero_grad()
        lg.backward()
        og.step()
        if run is not None:
            run.log(step, samples=fake, d_loss=ld.item(), g_loss=lg.item())
        else:
            ld.item(), lg.item()  # the same host syncs as the tracked loop
        step += 1
        if step % 50 == 0 and time.perf_counter() - t0 >= seconds:
            return step / (time.perf_counter() - t0), (time.process_time() - c0) / step * 1e3


def log_call_cost(run, samples, n: int = 20000) -> float:
    """Microseconds of one log() call, the loop doing nothing else."""
    t0 = time.perf_counter()
    for i in range(n):
        run.log(i, samples=samples, d_loss=0.5, g_loss=0.7)
    return (time.perf_counter() - t0) / n * 1e6


def overhead(args: argparse.Namespace) -> None:
    import collapse_lab
    from tests.browser_harness import running_server

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        def bench(url: str) -> None:
            names = ["plain loop", "log() every step → server", "log() every step → folder"]
            rates: dict[str, list[float]] = {n: [] for n in names}
            cpu: dict[str, list[float]] = {n: [] for n in names}

            def keep(name: str, r: tuple[float, float]) -> None:
                rates[name].append(r[0])
                cpu[name].append(r[1])

            for r in range(args.rounds):
                keep(names[0], train(args.seconds))
                with collapse_lab.track(url, token=args.token, name=f"overhead {r}",
                                        modes=ring().numpy()) as run:
                    keep(names[1], train(args.seconds, run))
                with collapse_lab.track(Path(tmp) / "runs", name=f"overhead {r}",
                                        modes=ring().numpy()) as run:
                    keep(names[2], train(args.seconds, run))
            base = statistics.median(rates[names[0]])
            cbase = statistics.median(cpu[names[0]])
            print(f"\n{args.rounds} rounds of {args.seconds:g} s each, alternating; "
                  f"torch threads 1\n")
            print("| loop | steps/s (median) | range | wall overhead | CPU ms/step "
                  "| CPU overhead |")
            print("|---|---:|---:|---:|---:|---:|")
            for name in names:
                m, c = statistics.median(rates[name]), statistics.median(cpu[name])
                first = name == names[0]
                print(f"| {name} | {m:,.0f} | {min(rates[name]):,.0f}–{max(rates[name]):,.0f} | "
                      f"{'–' if first else f'{(base - m) / base * 100:+.1f} %'} | {c:.3f} | "
                      f"{'–' if first else f'{(c - cbase) / cbase * 100:+.1f} %'} |")
            with collapse_lab.track(url, token=args.token, name="log cost",
                                    modes=ring().numpy()) as run:
                x = torch.randn(256, 2)
                per = log_call_cost(run, x)
            print(f"\none log(step, samples=(256, 2) tensor, 2 scalars) call: {per:.1f} µs "
                  f"(10 a second also copy the samples; the rest merge scalars)")

        if args.url:
            bench(args.url)
        else:
            with running_server(Path(tmp)) as url:
                bench(url)


def tick_cost() -> None:
    from collapse_lab.server.tracked import Measure, Series

    rng = np.random.default_rng(0)
    rows = []

    def time_ticks(label: str, measure: Measure, samples: np.ndarray, **arrays) -> None:
        s = Series(measure)
        times = []
        for i in range(12):
            t0 = time.perf_counter()
            s.tick({"step": i, "time": float(i)}, {"samples": samples, **arrays}, 0)
            times.append(time.perf_counter() - t0)
        rows.append((label, statistics.median(times[2:]) * 1e3))

    c = ring().numpy()
    x2 = (c[rng.integers(0, 8, 512)] + rng.normal(0, .05, (512, 2))).astype(np.float32)
    time_ticks("modes= 8 centres, 512 points (2-D)", Measure.from_start(
        {"modes": "centres"}, {"centres": c}), x2)
    x64 = rng.uniform(-1, 1, (512, 64)).astype(np.float32)
    time_ticks("classify= 10 classes, 512 images 8×8", Measure.from_start(
        {"modes": "classes", "num_classes": 10}, {}), x64,
        labels=rng.integers(0, 10, 512).astype(np.int32), confident=np.ones(512, np.uint8))
    real2 = (c[rng.integers(0, 8, 2000)] + rng.normal(0, .05, (2000, 2))).astype(np.float32)
    time_ticks("real= 2,000 points (2-D), 50 bins, 512 samples", Measure.from_start(
        {"modes": "real"}, {"real": real2}), x2)
    real64 = rng.uniform(-1, 1, (2000, 64)).astype(np.float32)
    time_ticks("real= 2,000 vectors of 64, 50 bins, 512 samples", Measure.from_start(
        {"modes": "real"}, {"real": real64}), x64)
    real784 = rng.uniform(-1, 1, (1000, 784)).astype(np.float32)
    x784 = rng.uniform(-1, 1, (256, 784)).astype(np.float32)
    time_ticks("real= 1,000 images 28×28, 50 bins, 256 samples", Measure.from_start(
        {"modes": "real"}, {"real": real784}), x784)
    print(f"\nthe server's measure of one tracked tick (median of 10, torch threads "
          f"{torch.get_num_threads()})\n")
    print("| modes from | ms per tick |")
    print("|---|---:|")
    for label, ms in rows:
        print(f"| {label} | {ms:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running server (default: start one on loopback)")
    p.add_argument("--token")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-loop", action="store_true", help="part 2 only")
    args = p.parse_args()
    if not args.skip_loop:
        overhead(args)
    tick_cost()


if __name__ == "__main__":
    main()
