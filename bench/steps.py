"""Training steps per second: a plain PyTorch loop written inline vs the project's engine.

For each objective and each remedy, both loops train the same sizes (the default config: MLPs
2×128, z 16, batch 256), with Adam at the same rates and betas, the same n_critic and threads. The
plain loop uses nn.Linear MLPs and nothing else; the project's loop is one run's `Engine.step()`
(and, in the last columns, the driver's `Trainer.advance()`, which steps and ticks every
`tick_every` steps, as for `collapse-lab train` and for a run nobody watches: the metrics on
2,500 samples, without D's landscape, which only frames need — `bench/stream.py` measures that
cost). Trials are
interleaved (plain, project, plain, project, ...) so a noisy machine slows both alike; the ratio
is the median of the per-trial ratios.

Each measurement lasts about `--seconds` (its step count is set from a warm-up and rounded to
whole ticks, the same count for all three loops of a case), so fast and slow cases are timed
alike and a scheduler hiccup weighs little.

    python bench/steps.py [--trials 7] [--seconds 0.6] [--threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.families.gan.config import RunConfig, make_config  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402

CASES: list[tuple[str, dict]] = [
    ("nsgan", dict(objective="nsgan")),
    ("minimax", dict(objective="minimax")),
    ("wgan (clip)", dict(objective="wgan")),
    ("wgan-gp", dict(objective="wgan-gp")),
    ("wgan-gp n_critic 5", dict(objective="wgan-gp", n_critic=5)),
    ("hinge", dict(objective="hinge")),
    ("lsgan", dict(objective="lsgan")),
    ("+ gp 1 (nsgan)", dict(gp=1.0)),
    ("+ r1 1", dict(r1=1.0)),
    ("+ entropy 0.1", dict(entropy=0.1)),
    ("+ minibatch_disc", dict(minibatch_disc=True)),
    ("+ mbstd", dict(mbstd=True)),
    ("+ spectral_norm", dict(spectral_norm=True)),
    ("+ unroll 3", dict(unroll=3)),
]


def mlp(dims: list[int], act: nn.Module) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims, dims[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act)
    return nn.Sequential(*layers)


class PlainD(nn.Module):
    """An MLP critic with the batch features written the textbook way."""

    def __init__(self, c: RunConfig, sn: bool):
        super().__init__()
        self.body = mlp([2] + [c.d_width] * c.d_depth, nn.ReLU())
        self.body.append(nn.ReLU())
        self.c = c
        extra = (c.mbd_kernels if c.minibatch_disc else 0) + (1 if c.mbstd else 0)
        self.T = nn.Parameter(torch.randn(c.d_width, c.mbd_kernels * c.mbd_dim) * 0.1)
        self.head = nn.Linear(c.d_width + extra, 1)
        if sn:
            for m in [*self.body, self.head]:
                if isinstance(m, nn.Linear):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B,)
        f = self.body(x)
        feats = [f]
        if self.c.minibatch_disc:  # Salimans et al. 2016
            m = (f @ self.T).view(len(f), self.c.mbd_kernels, self.c.mbd_dim)
            d = (m[:, None] - m[None]).abs().sum(3)  # (B, B, K)
            feats.append(torch.exp(-d).sum(1) - 1.0)
        if self.c.mbstd:  # Karras et al. 2018
            s = torch.sqrt(f.var(0, unbiased=False) + 1e-8).mean()
            feats.append(s.expand(len(f), 1))
        return self.head(torch.cat(feats, 1)).squeeze(1)


def plain_loop(c: RunConfig, dev: torch.device):
    """Returns step() for the plain loop of config c; ring8 data drawn inline."""
    torch.manual_seed(c.seed)
    G = mlp([c.z_dim] + [c.g_width] * c.g_depth + [2], nn.ReLU()).to(dev)
    D = PlainD(c, c.spectral_norm).to(dev)
    og = torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
    od = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    ang = torch.arange(8, device=dev) * (2 * torch.pi / 8)
    centres = torch.stack([2 * ang.cos(), 2 * ang.sin()], 1)
    b, obj, gpw = c.batch_size, c.objective, c.gp_weight

    def real() -> torch.Tensor:
        return centres[torch.randint(0, 8, (b,), device=dev)] + 0.02 * torch.randn(b, 2, device=dev)

    def d_loss(sr, sf):
        if obj in ("nsgan", "minimax"):
            return F.softplus(-sr).mean() + F.softplus(sf).mean()
        if obj in ("wgan", "wgan-gp"):
            return sf.mean() - sr.mean()
        if obj == "hinge":
            return F.relu(1 - sr).mean() + F.relu(1 + sf).mean()
        return 0.5 * ((sr - 1) ** 2).mean() + 0.5 * (sf**2).mean()

    def g_loss(sf):
        if obj == "nsgan":
            return F.softplus(-sf).mean()
        if obj == "minimax":
            return -F.softplus(sf).mean()
        if obj == "lsgan":
            return 0.5 * ((sf - 1) ** 2).mean()
        return -sf.mean()

    def step() -> None:
        for _ in range(c.n_critic):
            x = real()
            with torch.no_grad():
                fake = G(torch.randn(b, c.z_dim, device=dev))
            loss = d_loss(D(x), D(fake))
            if gpw > 0:
                e = torch.rand(b, 1, device=dev)
                xi = (e * x + (1 - e) * fake).requires_grad_(True)
                (g,) = torch.autograd.grad(D(xi).sum(), xi, create_graph=True)
                loss = loss + gpw * ((g.norm(dim=1) - 1) ** 2).mean()
            if c.r1 > 0:
                xr = x.requires_grad_(True)
                (g,) = torch.autograd.grad(D(xr).sum(), xr, create_graph=True)
                loss = loss + 0.5 * c.r1 * (g**2).sum(1).mean()
            od.zero_grad(set_to_none=True)
            loss.backward()
            od.step()
            if obj == "wgan":
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-c.clip, c.clip)
        fake = G(torch.randn(b, c.z_dim, device=dev))
        if c.unroll > 0:  # Metz et al. 2017: k differentiable Adam steps of D from its state
            params = {n: p.detach().requires_grad_(True) for n, p in D.named_parameters()}
            st = [od.state.get(p, {}) for p in D.parameters()]
            m = [s.get("exp_avg", torch.zeros_like(p)) for s, p in zip(st, D.parameters())]
            v = [s.get("exp_avg_sq", torch.zeros_like(p)) for s, p in zip(st, D.parameters())]
            t = float(st[0].get("step", 0))
            b1, b2 = c.beta1, c.beta2
            for _ in range(c.unroll):
                xf = G(torch.randn(b, c.z_dim, device=dev))
                lu = d_loss(functional_call(D, params, (real(),)),
                            functional_call(D, params, (xf,)))
                gs = torch.autograd.grad(lu, list(params.values()), create_graph=True,
                                         allow_unused=True)
                t += 1
                new = {}
                for j, ((n, p), g) in enumerate(zip(params.items(), gs, strict=True)):
                    if g is None:
                        new[n] = p
                        continue
                    m[j] = b1 * m[j] + (1 - b1) * g
                    v[j] = b2 * v[j] + (1 - b2) * g * g
                    new[n] = p - c.lr_d * (m[j] / (1 - b1**t)) / torch.sqrt(
                        v[j] / (1 - b2**t) + 1e-16)
                params = new
            sf = functional_call(D, params, (fake,))
            # Metz et al.'s surrogate keeps D's real-data term at θ_D^K
            sr = functional_call(D, params, (real(),))
            real_term = d_loss(sr, torch.full_like(sr, -1e4 if obj in ("nsgan", "minimax")
                                                   else 0.0))
        else:
            sf = D(fake)
        loss_g = g_loss(sf) - (real_term if c.unroll > 0 else 0.0)
        if c.entropy > 0:
            d = torch.cdist(fake, fake) + torch.eye(b, device=dev) * 1e9
            loss_g = loss_g - c.entropy * 2 * torch.log(d.min(1).values + 1e-6).mean()
        og.zero_grad(set_to_none=True)
        loss_g.backward()
        og.step()

    return step


def rate(step, n: int, sync) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.6, help="length of one measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    what = torch.cuda.get_device_name() if dev.type == "cuda" else platform.machine()
    print(f"device {dev} ({what}), "
          f"torch {torch.__version__}, python {platform.python_version()}, threads {a.threads}, "
          f"{a.trials} interleaved trials of ~{a.seconds:g} s each, median")
    print(f"{'case':22} {'n_crit':>6} {'plain/s':>9} {'project/s':>10} {'ratio':>6} "
          f"{'+ticks/s':>9} {'ratio':>6}")
    for name, over in CASES:
        if a.only and a.only not in name:
            continue
        cfg = make_config(dict(device=a.device, threads=a.threads, steps=1_000_000, **over))
        plain = plain_loop(cfg, dev)
        alone = Trainer()
        alone.add("r", cfg, Callbacks(want_picture=lambda: False))
        eng = alone.runs["r"].engine

        def project(eng=eng) -> None:
            eng.step(norms=False)

        driven = Trainer()
        driven.add("r", cfg, Callbacks(want_picture=lambda: False))
        with_ticks = driven.advance  # one step, and the tick when one is due

        for f in (plain, project):  # warm-up
            rate(f, 3, sync)
        rate(with_ticks, 3, sync)
        te = cfg.tick_every
        steps = max(te, round(rate(plain, 10, sync) * a.seconds / te) * te)
        rp, rq, rr = [], [], []
        for _ in range(a.trials):
            rp.append(rate(plain, steps, sync))
            rq.append(rate(project, steps, sync))
            rr.append(rate(with_ticks, steps, sync))
        ratio = statistics.median(q / p for p, q in zip(rp, rq, strict=True))
        ratio_r = statistics.median(q / p for p, q in zip(rp, rr, strict=True))
        print(f"{name:22} {cfg.n_critic:>6} {statistics.median(rp):>9.1f} "
              f"{statistics.median(rq):>10.1f} {ratio:>6.2f} {statistics.median(rr):>9.1f} "
              f"{ratio_r:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
