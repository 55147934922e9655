"""R variational autoencoders trained as one stacked step; a tick measures their posteriors.

The runs of one engine share the networks' sizes, the latent size and the batch size
(`config.stack_key`); β, KL warm-up, free bits, aggressive encoder steps and the learning rate
are per-run values. Each network is a stack of R MLPs: every weight is an (R, in, out) tensor and
a layer is one batched matrix product, so the R runs' losses are independent terms of one sum and
one backward pass gives each run its own gradients. Adam is written out over the stacked tensors
with a step count per run, so a run trained alone, in a stack or moved between stacks follows one
series. Each run has its own random stream (a torch.Generator seeded from its seed) for its
minibatches and its reparameterisation noise.

The model (Kingma & Welling 2014): q(z|x) = N(μ(x), diag σ²(x)) from an encoder 64 → H → 2L,
p(x|z) a Bernoulli per pixel (the digits' grey levels scaled to [0, 1]) from a decoder
L → H (× layers) → 64, the prior p(z) = N(0, I). A step minimises, per run,

    reconstruction + w · Σ_u max(λ, KL_u)

where reconstruction is the pixels' cross-entropy summed over the image and averaged over the
batch, KL_u the batch's mean KL of unit u's posterior from the prior (closed form), λ the free
bits (0 = off) and w the KL weight: β, or during a warm-up β·step/warmup. With aggressive
encoder steps k, k encoder-only updates on fresh batches come before each joint update.

A tick (docs/families.md) reports, per run:
- the mean reconstruction loss and KL (nats per image) of the steps since the last tick;
- active units (Burda et al. 2016): units whose posterior mean varies over the data,
  Var_x E[z_u|x] > 0.01, over all 1,797 images;
- an estimate of the mutual information I(x; z) under q (Hoffman & Johnson 2016; He et al.
  2019): E[log q(z|x)] − E[log q(z)] over 256 images, q(z) the mixture of their posteriors
  (so the estimate is at most log 256 ≈ 5.55 nats);
- the mode metrics (trainer/metrics.py) of 500 images decoded from prior samples z ~ N(0, I),
  each classified by the digits classifier (trainer/digits.py: high quality = the classifier
  is ≥ 90 % sure);
- the first 64 of those prior samples as the frame's images, and the panels: 16 images beside
  their reconstructions, the KL of each unit and each unit's activity.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from collapse_lab.trainer.commands import ConfigChanged
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.vae.config import make_config, stack_key
from collapse_lab.trainer.family import Restack, Stat, save_atomic
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import METRIC_NAMES, StepStats, tick_fields

FORMAT = 1  # checkpoint format of a vae run
ACTIVE = 0.01  # a unit is active when Var_x E[z_u|x] exceeds this (Burda et al. 2016)
PRIOR_SAMPLES = 500  # prior samples whose classes give the mode metrics
SHOWN = 64  # of them, drawn on the page
RECONS = 16  # images shown beside their reconstructions
MI_IMAGES = 256  # images of the I(x; z) estimate
ADAM = (0.9, 0.999, 1e-8)

# what a step reports (means over the steps since the last tick, or the last value)
STEP_STATS = (
    Stat("recon_loss", "reconstruction", "vae", "", stage="g"),
    Stat("kl", "KL", "vae", "", stage="g"),
    Stat("kl_weight", "KL weight", "vae", "", stage="last"),
)
STEP_NAMES = tuple(s.name for s in STEP_STATS)
TICK_NAMES = ("active_units", "mutual_info")
STATS = STEP_NAMES + TICK_NAMES


def shapes(cfg: Any, dim: int) -> dict[str, tuple[int, int]]:
    """Every weight and bias of one run's encoder and decoder by name: (in, out), (1, out)."""
    out: dict[str, tuple[int, int]] = {}
    enc = [dim, cfg.encoder_width, 2 * cfg.latent]
    dec = [cfg.latent, *[cfg.decoder_width] * cfg.decoder_layers, dim]
    for net, dims in (("enc", enc), ("dec", dec)):
        for k in range(len(dims) - 1):
            out[f"{net}.w{k}"] = (dims[k], dims[k + 1])
            out[f"{net}.b{k}"] = (1, dims[k + 1])
    return out


def init_params(cfg: Any, dim: int) -> dict[str, torch.Tensor]:
    """One run's first weights, from its seed: uniform in ±1/√fan-in (as torch's Linear)."""
    g = torch.Generator().manual_seed(cfg.seed)
    out = {}
    fan = 1
    for name, shape in shapes(cfg, dim).items():
        if ".w" in name:
            fan = shape[0]
        bound = 1.0 / math.sqrt(fan)
        out[name] = (torch.rand(shape, generator=g) * 2 - 1) * bound
    return out


@dataclass
class VaeState:
    """One run's whole state apart from any stack: its checkpoint."""

    cfg: Any
    step: int = 0
    version: int = 0  # live changes applied
    params: dict[str, torch.Tensor] | None = None  # None = the seed's first weights
    adam: dict[str, Any] | None = None  # m, v by name, t_enc, t_dec; None = fresh
    gen: torch.Tensor | None = None  # the random stream's state; None = seeded from cfg.seed
    gen_device: str = "cpu"
    sums: torch.Tensor | None = None  # the step stats' sums since the last tick
    n_since: int = 0  # steps since the last tick
    prev_occupancy: torch.Tensor | None = None
    elapsed: float = 0.0

    @classmethod
    def fresh(cls, cfg: Any) -> VaeState:
        return cls(cfg=cfg)

    def to_dict(self) -> dict[str, Any]:
        return dict(format=FORMAT, config=self.cfg.to_dict(), step=self.step,
                    version=self.version, params=self.params, adam=self.adam, gen=self.gen,
                    gen_device=self.gen_device, sums=self.sums, n_since=self.n_since,
                    prev_occupancy=self.prev_occupancy, elapsed=self.elapsed,
                    saved=time.time())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VaeState:
        if d.get("format") != FORMAT:
            raise ValueError(f"vae checkpoint format {d.get('format')!r}, this version reads "
                             f"{FORMAT}")
        return cls(cfg=make_config(d["config"]), step=int(d["step"]),
                   version=int(d["version"]), params=d["params"], adam=d["adam"], gen=d["gen"],
                   gen_device=d["gen_device"], sums=d["sums"], n_since=int(d["n_since"]),
                   prev_occupancy=d["prev_occupancy"], elapsed=float(d["elapsed"]))

    def save(self, path: Path | str) -> None:
        """Atomically: a reader sees the old file or the new one, never half of one."""
        save_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> VaeState:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))


def _fixed(n: int, size: int, seed: int) -> torch.Tensor:
    """n distinct image indices of `size`, the same for every run (a fixed seed)."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


def _sig4(values: Any) -> list[float]:
    """Numbers rounded to 4 significant digits (a panel's JSON stays small)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    mag = np.floor(np.log10(np.where(a == 0, 1.0, np.abs(a))))
    scale = 10.0 ** (3 - mag)
    return (np.round(a * scale) / scale).tolist()


class VaeEngine:
    def __init__(self, states: Sequence[VaeState], data: Dataset, device: torch.device):
        if not states:
            raise ValueError("an engine needs at least one run")
        if len({stack_key(s.cfg) for s in states}) != 1:
            raise ValueError("the runs of one engine must agree on the step's shape")
        self.data, self.device = data, torch.device(device)
        dev, dtype = self.device, torch.get_default_dtype()
        self.runs = r = len(states)
        self.cfgs = [s.cfg for s in states]
        c0 = self.cfgs[0]
        self.latent, self.batch = c0.latent, c0.batch_size
        images: torch.Tensor = data.images  # type: ignore[attr-defined]  # (M, 64) in [-1, 1]
        self.x = images.to(dev, dtype)
        self.target = (self.x + 1) / 2  # Bernoulli targets in [0, 1]
        self.dim = self.x.shape[1]

        layout = shapes(c0, self.dim)
        firsts = [s.params if s.params is not None else init_params(s.cfg, self.dim)
                  for s in states]
        self.params = {n: torch.stack([p[n] for p in firsts]).to(dev, dtype).requires_grad_()
                       for n in layout}
        self.enc_names = [n for n in layout if n.startswith("enc.")]
        self.dec_names = [n for n in layout if n.startswith("dec.")]
        self.m = {n: torch.stack([s.adam["m"][n] if s.adam else torch.zeros(layout[n])
                                  for s in states]).to(dev, dtype) for n in layout}
        self.v = {n: torch.stack([s.adam["v"][n] if s.adam else torch.zeros(layout[n])
                                  for s in states]).to(dev, dtype) for n in layout}
        self.t_enc = torch.tensor([s.adam["t_enc"] if s.adam else 0 for s in states],
                                  device=dev, dtype=dtype)
        self.t_dec = torch.tensor([s.adam["t_dec"] if s.adam else 0 for s in states],
                                  device=dev, dtype=dtype)

        self.gens: list[torch.Generator] = []
        for s in states:
            g = torch.Generator(device=dev)
            if s.gen is not None and s.gen_device == dev.type:
                g.set_state(s.gen)
            else:
                g.manual_seed(s.cfg.seed if s.step == 0 else
                              (s.cfg.seed * 1_000_003 + s.step * 7_919 + 12_345) % (2**63 - 1))
            self.gens.append(g)

        self.stats = StepStats(STEP_STATS, r, dev)
        for i, s in enumerate(states):
            if s.sums is not None:
                self.stats.sums[:, i] = s.sums.to(dev)
        self.n_since = np.array([s.n_since for s in states], dtype=np.int64)
        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.versions = [s.version for s in states]
        self.prev_occupancy = [None if s.prev_occupancy is None
                               else s.prev_occupancy.to(dev) for s in states]

        # what a tick looks at: the same images for every run, each run's own prior samples
        m = self.x.shape[0]
        self.recon_idx = _fixed(RECONS, m, 1).to(dev)
        self.mi_idx = _fixed(min(MI_IMAGES, m), m, 2).to(dev)
        self.prior_z = torch.stack([
            torch.randn(PRIOR_SAMPLES, self.latent,
                        generator=torch.Generator().manual_seed(c.seed + 7_919))
            for c in self.cfgs]).to(dev, dtype)
        self.mi_eps = torch.stack([
            torch.randn(len(self.mi_idx), self.latent,
                        generator=torch.Generator().manual_seed(c.seed + 15_485_863))
            for c in self.cfgs]).to(dev, dtype)

        now = time.perf_counter()
        self.elapsed0 = [s.elapsed for s in states]
        self.joined = [now] * r
        self.last_tick = [(now, s.step) for s in states]
        self._configure()

    # ------------------------------------------------------------------ configuration
    def _configure(self) -> None:
        def t(name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.tensor([getattr(c, name) for c in self.cfgs], device=self.device,
                                dtype=dtype or torch.get_default_dtype())

        self.beta, self.warmup = t("beta"), t("warmup")
        self.free_bits, self.lr = t("free_bits"), t("lr")
        self.aggressive = [c.aggressive for c in self.cfgs]

    def apply(self, i: int, changes: dict[str, Any]) -> ConfigChanged:
        """A live change to run i between steps (validated where it entered,
        trainer/commands.py); returns the change event. Raises Restack when it alters the
        step's shape and other runs share this engine."""
        old = self.cfgs[i]
        new = old.replace(**changes)
        if stack_key(new) != stack_key(old) and self.runs > 1:
            raise Restack(i, changes)
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        self.cfgs[i] = new
        self._configure()
        if applied:
            self.versions[i] += 1
        return ConfigChanged(step=int(self.steps[i]), version=self.versions[i], changes=applied,
                             config=new.to_dict())

    # ------------------------------------------------------------------ the model
    def encode(self, p: dict[str, torch.Tensor], x: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (R, B, 64) -> the posteriors' means and log-variances, each (R, B, L)."""
        h = torch.relu(torch.baddbmm(p["enc.b0"], x, p["enc.w0"]))
        out = torch.baddbmm(p["enc.b1"], h, p["enc.w1"])
        mu, logvar = out.split(self.latent, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, p: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """z (R, B, L) -> each pixel's logit (R, B, 64)."""
        n = len(self.dec_names) // 2
        h = z
        for k in range(n):
            h = torch.baddbmm(p[f"dec.b{k}"], h, p[f"dec.w{k}"])
            if k < n - 1:
                h = torch.relu(h)
        return h

    def _draw(self, counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's image indices (R, B) and noise (R, B, L) for the runs with a count > 0
        (from their own streams); the others get zeros (their update is masked out)."""
        b, dev = self.batch, self.device
        idx = torch.zeros(self.runs, b, dtype=torch.long, device=dev)
        eps = torch.zeros(self.runs, b, self.latent, device=dev)
        for i, c in enumerate(counts):
            if c:
                g = self.gens[i]
                idx[i] = torch.randint(self.x.shape[0], (b,), generator=g, device=dev)
                eps[i] = torch.randn(b, self.latent, generator=g, device=dev)
        return idx, eps

    def _losses(self, idx: torch.Tensor, eps: torch.Tensor, weight: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per run (R,): the objective, the reconstruction loss and the KL (nats per image)."""
        p = self.params
        x, target = self.x[idx], self.target[idx]  # (R, B, 64)
        mu, logvar = self.encode(p, x)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decode(p, z)
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        recon = recon.sum(-1).mean(-1)
        kl_u = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(1)  # (R, L)
        cost = torch.maximum(kl_u, self.free_bits[:, None]).sum(-1)
        return recon + weight * cost, recon, kl_u.sum(-1)

    @torch.no_grad()
    def _adam(self, names: Sequence[str], grads: Sequence[torch.Tensor], t: torch.Tensor,
              mask: torch.Tensor | None = None) -> None:
        """One Adam update of the runs in `mask` (R,) bool, or of every run (None); `t` their
        step counts after it."""
        b1, b2, eps = ADAM
        tc = t.clamp_min(1)
        c1, c2 = 1 - b1 ** tc, 1 - b2 ** tc
        for n, g in zip(names, grads, strict=True):
            view = (-1,) + (1,) * (g.dim() - 1)
            m, v = self.m[n], self.v[n]
            if mask is None:  # the joint step: every run, in place
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                step = (v / c2.view(view)).sqrt_().add_(eps)
                self.params[n].sub_(m / step * (self.lr / c1).view(view))
                continue
            mk = mask.view(view)
            m = self.m[n] = torch.where(mk, b1 * m + (1 - b1) * g, m)
            v = self.v[n] = torch.where(mk, b2 * v + (1 - b2) * g * g, v)
            upd = (self.lr / c1).view(view) * m / ((v / c2.view(view)).sqrt() + eps)
            self.params[n].sub_(torch.where(mk, upd, torch.zeros_like(upd)))

    def kl_weight(self) -> torch.Tensor:
        """Each run's KL weight at the step about to be taken: β, or β·(step+1)/warmup during a
        warm-up."""
        s = torch.as_tensor(self.steps + 1, device=self.device, dtype=self.beta.dtype)
        ramp = torch.where(self.warmup > 0, (s / self.warmup.clamp_min(1)).clamp(max=1.0),
                           torch.ones_like(s))
        return self.beta * ramp

    # ------------------------------------------------------------------ the step
    def step(self, norms: bool = True, part: str = "both") -> None:
        """One step of every run: its aggressive encoder-only updates, then a joint update."""
        weight = self.kl_weight()
        enc = [self.params[n] for n in self.enc_names]
        for j in range(max(self.aggressive, default=0)):
            counts = [int(j < k) for k in self.aggressive]
            mask = torch.tensor(counts, device=self.device, dtype=torch.bool)
            idx, eps = self._draw(counts)
            loss = self._losses(idx, eps, weight)[0]
            grads = torch.autograd.grad(loss.sum(), enc)
            self.t_enc = self.t_enc + mask.to(self.t_enc.dtype)
            self._adam(self.enc_names, grads, self.t_enc, mask)
        idx, eps = self._draw([1] * self.runs)
        loss, recon, kl = self._losses(idx, eps, weight)
        names = self.enc_names + self.dec_names
        grads = torch.autograd.grad(loss.sum(), [self.params[n] for n in names])
        self.t_enc, self.t_dec = self.t_enc + 1, self.t_dec + 1
        self._adam(self.enc_names, grads[:len(self.enc_names)], self.t_enc)
        self._adam(self.dec_names, grads[len(self.enc_names):], self.t_dec)
        self.stats.add("recon_loss", recon)
        self.stats.add("kl", kl)
        self.stats.put("kl_weight", weight)
        self.steps += 1
        self.n_since += 1

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        rows = list(range(self.runs)) if rows is None else list(rows)
        if not rows:
            return {}
        now = time.perf_counter()
        idx = torch.tensor(rows, device=self.device)
        p = {n: t.detach()[idx] for n, t in self.params.items()}
        n = len(rows)
        # the posteriors of every image: activity and KL per unit
        mu, logvar = self.encode(p, self.x[None].expand(n, -1, -1))
        activity = mu.var(dim=1)  # (n, L): Var_x E[z|x]
        kl_u = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(1)  # (n, L)
        active = (activity > ACTIVE).sum(-1).to(mu.dtype)
        mi = self._mutual_info(mu[:, self.mi_idx], logvar[:, self.mi_idx], idx)
        # prior samples, classified
        imgs = torch.sigmoid(self.decode(p, self.prior_z[idx])) * 2 - 1  # (n, S, 64)
        nearest, hq = self.data.assign(imgs.reshape(-1, self.dim))
        nearest, hq = nearest.view(n, -1), hq.view(n, -1)
        n_s = torch.as_tensor(self.n_since[rows], device=self.device, dtype=mu.dtype)
        means = self.stats.means(n_s, n_s, idx)  # (S, n)
        packed = []
        for j, i in enumerate(rows):
            mm = mode_metrics(nearest[j], hq[j], self.data.num_modes, self.prev_occupancy[i])
            self.prev_occupancy[i] = mm["occupancy"]
            packed.append(torch.cat([means[:, j], torch.stack([active[j], mi[j]]),
                                     torch.stack([mm[k] for k in METRIC_NAMES]),
                                     mm["occupancy"]]))
        finite = torch.stack([torch.isfinite(t).flatten(1).all(1) for t in p.values()]).all(0)
        host = torch.cat([torch.stack(packed), finite[:, None].to(mu.dtype)], 1).cpu().numpy()
        self.stats.reset(idx)
        self.n_since[rows] = 0
        # the pictures: prior samples, reconstructions beside their inputs, the units
        shown = imgs[:, :SHOWN].float().cpu().numpy()
        xin = self.x[self.recon_idx]
        mu_r, _ = self.encode(p, xin[None].expand(n, -1, -1))
        recon = torch.sigmoid(self.decode(p, mu_r)).float().cpu().numpy()  # (n, 16, 64)
        inputs = ((xin + 1) / 2).float().cpu().numpy()
        kl_np, act_np = kl_u.float().cpu().numpy(), activity.float().cpu().numpy()
        near_np = nearest.to(torch.int16).cpu().numpy()
        hq_np = hq.cpu().numpy()
        out = {}
        for j, i in enumerate(rows):
            t = tick_fields(self, i, now, host[j], STATS, METRIC_NAMES)
            t["active_units"] = int(t["active_units"])
            if host[j, -1] < 1 or not all(math.isfinite(t[k]) for k in STEP_NAMES):
                t["failed"] = f"the weights or losses became NaN/inf at step {t['step']}"
            t["nearest"] = near_np[j]
            t["hq"] = hq_np[j]
            t["samples"] = np.ascontiguousarray(shown[j])  # (64, 64) images for display
            t["panels"] = self._panels(i, inputs, recon[j], kl_np[j], act_np[j])
            out[i] = t
        return out

    def _mutual_info(self, mu: torch.Tensor, logvar: torch.Tensor, idx: torch.Tensor
                     ) -> torch.Tensor:
        """I(x; z) under q over the images of mu, logvar (n, M, L): E[log q(z|x)] − E[log q(z)],
        z drawn once per image with the run's fixed noise, q(z) the images' mixture; at least 0.

        log q(z_a|x_b) for every pair is a matrix product: Σ_u (z_a − μ_b)²/σ²_b expands into
        z_a² · 1/σ²_b − 2 z_a · μ_b/σ²_b + Σ μ_b²/σ²_b, in float64 (the terms are large where a
        posterior is sharp and nearly cancel on the diagonal)."""
        m, lat = mu.shape[1], mu.shape[2]
        log2pi = math.log(2 * math.pi)
        mu, logvar = mu.double(), logvar.double()
        neg_h = (-0.5 * (lat * log2pi + (1 + logvar).sum(-1))).mean(-1)  # (n,)
        z = mu + torch.exp(0.5 * logvar) * self.mi_eps[idx].double()  # (n, M, L)
        prec = torch.exp(-logvar)  # (n, M, L): 1/σ²
        quad = (torch.bmm(z * z, prec.transpose(1, 2)) - 2 * torch.bmm(z, (mu * prec)
                .transpose(1, 2)) + (mu * mu * prec).sum(-1)[:, None, :])  # (n, M_a, M_b)
        lp = -0.5 * (quad + logvar.sum(-1)[:, None, :] + lat * log2pi)
        log_qz = (torch.logsumexp(lp, dim=-1) - math.log(m)).mean(-1)  # (n,)
        # I(x; z) ≥ 0 (a KL divergence), but this estimate is not: its first term is exact and
        # its second is a mean over one draw of z per image, whose error (½ (mean |ε|² − L) at
        # the prior, tests/test_vae.py) reads a collapsed run a little below 0. Shown as 0
        # there: a negative figure would claim what no encoder can do (docs/metrics.md).
        return (neg_h - log_qz).clamp_min(0.0).to(torch.get_default_dtype())

    def _panels(self, i: int, inputs: np.ndarray, recon: np.ndarray, kl: np.ndarray,
                activity: np.ndarray) -> dict[str, Any]:
        """Run i's panels in the formats of docs/protocol.md (numbers to 4 significant
        digits)."""
        pairs: list[list[float]] = []
        for a, b in zip(inputs, recon, strict=True):
            pairs += [_sig4(a), _sig4(b)]
        units = [f"z{u + 1}" for u in range(len(kl))]
        fb = float(self.cfgs[i].free_bits)
        return {
            "recon": dict(images=pairs, shape=[8, 8], labels=["in", "out"] * len(inputs),
                          cols=8),
            "kl_units": dict(labels=units, values=_sig4(kl), ref=fb if fb > 0 else None,
                             unit="nats"),
            "activity": dict(labels=units, values=_sig4(activity), ref=ACTIVE, unit=None),
        }

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> VaeState:
        return VaeState(
            cfg=self.cfgs[i], step=int(self.steps[i]), version=self.versions[i],
            params={n: t[i].detach().clone() for n, t in self.params.items()},
            adam=dict(m={n: t[i].clone() for n, t in self.m.items()},
                      v={n: t[i].clone() for n, t in self.v.items()},
                      t_enc=float(self.t_enc[i]), t_dec=float(self.t_dec[i])),
            gen=self.gens[i].get_state().clone(), gen_device=self.device.type,
            sums=self.stats.sums[:, i].clone(), n_since=int(self.n_since[i]),
            prev_occupancy=self.prev_occupancy[i], elapsed=self.elapsed(i))


def build(states: Sequence[VaeState], data: Dataset, device: torch.device) -> VaeEngine:
    keys = [stack_key(s.cfg) for s in states]
    if len(set(keys)) != 1:
        first = dict(keys[0])
        for k in keys[1:]:
            diff = next(n for n, v in k if first[n] != v)
            raise ConfigError(diff, "these runs cannot share one stacked step: they differ in "
                              f"{diff}")
    return VaeEngine(states, data, device)
