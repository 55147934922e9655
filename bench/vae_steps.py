"""Speed of the vae family: the project's stacked step against a plain PyTorch VAE at the same
sizes, a run stacked with others, and what a tick costs (so how many frames a second the page
can get).

    python bench/vae_steps.py [--trials 5] [--seconds 0.5] [--stack 10]

One thread; median of `--trials` interleaved trials of about `--seconds` each. The plain loop is
written inline with `nn.Linear` and `torch.optim.Adam` (encoder 64 → 128 → 32, decoder 16 → 128
→ 64, batch 128, Bernoulli pixels): the same work as one run of `vae-collapse-digits`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.vae.config import make_config
from collapse_lab.trainer.families.vae.engine import VaeEngine, VaeState
from collapse_lab.trainer.families.vae.presets import values


def plain(x: torch.Tensor, latent: int = 16, width: int = 128, batch: int = 128):
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 2 * latent))
    dec = nn.Sequential(nn.Linear(latent, width), nn.ReLU(), nn.Linear(width, 64))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    target = (x + 1) / 2
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randint(len(x), (batch,), generator=g)
        mu, logvar = enc(x[idx]).chunk(2, -1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(batch, latent, generator=g)
        recon = F.binary_cross_entropy_with_logits(dec(z), target[idx], reduction="sum") / batch
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        (recon + 4.0 * kl).backward()
        opt.step()
    return step


def rate(fn, seconds: float) -> float:
    """Calls a second of fn over about `seconds`."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--stack", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(1)
    base = values("vae-collapse-digits")
    cfg = make_config(base)
    data = make_dataset(cfg)

    def engine(r: int) -> VaeEngine:
        cfgs = [make_config(dict(base, seed=s)) for s in range(r)]
        return VaeEngine([VaeState.fresh(c) for c in cfgs], data, torch.device("cpu"))

    one, many = engine(1), engine(a.stack)
    cases = {
        "plain loop": plain(data.images),  # type: ignore[attr-defined]
        "project, 1 run": one.step,
        f"project, {a.stack} runs stacked (per run)": many.step,
        "tick, 1 run": one.tick,
    }
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(a.trials):
        for k, fn in cases.items():
            got[k].append(rate(fn, a.seconds))
    med = {k: statistics.median(v) for k, v in got.items()}
    med[f"project, {a.stack} runs stacked (per run)"] *= a.stack
    print("| case | steps/s | ratio to the plain loop |\n|---|---:|---:|")
    for k in list(cases)[:3]:
        print(f"| {k} | {med[k]:.0f} | {med[k] / med['plain loop']:.2f} |")
    tick_ms = 1000 / med["tick, 1 run"]
    step_ms = 1000 / med["project, 1 run"]
    print(f"\na tick of one run: {tick_ms:.1f} ms; with a tick every 10 steps one run trains "
          f"{1000 / (step_ms + tick_ms / 10):.0f} steps/s and ticks "
          f"{100 / (step_ms + tick_ms / 10):.1f} times a second")


if __name__ == "__main__":
    main()
