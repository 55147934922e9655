"""A GAN engine's tick: what each run reports, measured on fixed evaluation noise.

The samples of a tick come from each run's G on noise fixed per seed (drawn from a stream of its
own, so training never shifts it); the mode metrics, the losses and gradient norms accumulated
since the last tick (trainer/families/gan/stats.py), and, for the runs being watched, D's
landscape over a grid of the data's plane and G's image of a latent grid (docs/metrics.md,
docs/protocol.md). The engine (engine.py) calls `tick`; nothing here changes a run's training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.gan.stats import STEP_NAMES
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import METRIC_NAMES, tick_fields

MANIFOLD_SIDE = 24  # latent grid points per side of the manifold layer
MANIFOLD_SPAN = 2.0  # the grid spans ±2 standard deviations of the noise


# fakes a grid point's minibatch features are taken against when D's landscape is drawn
LANDSCAPE_CONTEXT = 32


class Evaluation:
    """What every tick of an engine measures on: the fixed evaluation noise per run (`z`,
    (R, N, z_dim)), and for 2-D data the landscape's grid and extent and the latent grid."""

    def __init__(self, cfgs: Sequence[Any], data: Dataset, device: torch.device):
        c0, r = cfgs[0], len(cfgs)
        # fixed evaluation noise per seed, from its own stream so training never shifts it
        noise: dict[int, torch.Tensor] = {}
        for c in cfgs:
            if c.seed not in noise:
                ev = torch.Generator().manual_seed(c.seed + 7919)
                noise[c.seed] = torch.randn(c0.eval_samples, c0.z_dim, generator=ev)
        if len(noise) == 1:
            self.z = next(iter(noise.values()))[None].to(device).expand(r, -1, -1)
        else:
            self.z = torch.stack([noise[c.seed] for c in cfgs]).to(device)
        if data.kind == "2d":
            grid, self.extent = data.grid_points(c0.grid_size)
            self.grid = grid[None].to(device)  # (1, G·G, 2)
            self.latent_grid = _latent_grid(c0.z_dim).to(device)  # (M·M, z)


def _subset(eng: Any, module: torch.nn.Module, rows: list[int]) -> Any:
    """module restricted to some runs: itself for all, else a functional call over the
    rows' slices of its parameters and buffers."""
    if len(rows) == eng.runs:
        return module
    idx = torch.tensor(rows, device=eng.device)
    sd = {n: t[idx] for n, t in module.state_dict(keep_vars=True).items()}
    return lambda *a, **kw: functional_call(module, sd, a, kw)



@torch.no_grad()
def tick(eng: Any, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
         manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
    """One flat dict of metrics per run in `rows` (docs/metrics.md), by row.

    Runs in `pictures` also get D's landscape (`value_grid`), half the cost of a tick; runs
    in `manifolds` G's image of a latent grid (`manifold`). A run whose losses or samples
    are not finite gets `failed` (the reason) instead of going on.
    """
    rows = list(range(eng.runs)) if rows is None else list(rows)
    if not rows:
        return {}
    now = time.perf_counter()
    idx = torch.tensor(rows, device=eng.device)
    x = _subset(eng, eng.G, rows)(eng.evaluation.z[idx])  # (n, N, dim)
    n, ns = len(rows), x.shape[1]
    nearest, hq = eng.data.assign(x.reshape(n * ns, -1))
    nearest, hq = nearest.view(n, ns), hq.view(n, ns)
    weights = getattr(eng.data, "weights", None)
    n_d = torch.as_tensor(eng.n_d[rows], device=eng.device, dtype=torch.float32)
    n_g = torch.as_tensor(eng.n_g[rows], device=eng.device, dtype=torch.float32)
    means = eng.stats.means(n_d, n_g, idx)  # (S, n)
    packed = []
    for j, i in enumerate(rows):
        mm = mode_metrics(nearest[j], hq[j], eng.data.num_modes, eng.prev_occupancy[i],
                          weights)
        eng.prev_occupancy[i] = mm["occupancy"]
        packed.append(torch.cat([means[:, j], torch.stack([mm[k] for k in METRIC_NAMES]),
                                 mm["occupancy"]]))
    finite = torch.isfinite(x).flatten(1).all(dim=1)
    host = torch.cat([torch.stack(packed), finite[:, None].float()], dim=1).cpu().numpy()
    eng.stats.reset(idx)
    eng.n_d[rows] = 0
    eng.n_g[rows] = 0

    pics = [i for i in rows if i in set(pictures)] if eng.data.kind == "2d" else []
    grids = _value_grids(eng, pics, x, rows) if pics else {}
    mans = [i for i in rows if i in set(manifolds)] if eng.data.kind == "2d" else []
    manifold = {}
    if mans:
        zg = eng.evaluation.latent_grid[None].expand(len(mans), -1, -1)
        pts = _subset(eng, eng.G, mans)(zg).float().cpu().numpy()
        manifold = {i: pts[j].reshape(MANIFOLD_SIDE, MANIFOLD_SIDE, -1)
                    for j, i in enumerate(mans)}
    xs = x.float().cpu().numpy()
    near_np = nearest.to(torch.int16).cpu().numpy()
    hq_np = hq.cpu().numpy()

    out = {}
    for j, i in enumerate(rows):
        t = tick_fields(eng, i, now, host[j], STEP_NAMES, METRIC_NAMES)
        step = t["step"]
        bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(t[k])]
        if bad or host[j, -1] < 1:
            what = bad[0] if bad else "generated samples"
            t["failed"] = f"{what} became NaN/inf at step {step}"
        t["nearest"] = near_np[j]
        t["hq"] = hq_np[j]
        if eng.data.kind == "2d":
            t["samples"] = xs[j]
            t["extent"] = eng.evaluation.extent
            if i in grids:
                t["value_grid"] = grids[i]
            if i in manifold:
                t["manifold"] = manifold[i]
        else:
            t["samples"] = np.ascontiguousarray(xs[j, :64])  # (64, 64) images for display
        out[i] = t
    return out


def _value_grids(eng: Any, pics: list[int], x: torch.Tensor,
                 rows: list[int]) -> dict[int, np.ndarray]:
    """D's landscape over the value grid for runs `pics` (x: the tick's samples of `rows`)."""
    c0 = eng.cfgs[0]
    sel = torch.tensor([rows.index(i) for i in pics], device=eng.device)
    # batch features of a grid point are taken against (part of) the current fakes; with
    # packing, a grid point is scored as a pack of copies of iteng. Minibatch
    # discrimination's sums run over LANDSCAPE_CONTEXT fakes, each counting for
    # (batch − 1) / LANDSCAPE_CONTEXT of a training batch's others: the same expected
    # value as in training at a quarter of 128 fakes' pairs (grid² × context × kernels ×
    # dims is most of a watched tick's cost); the minibatch stddev takes up to 128 fakes
    ctx, weight = None, 1.0
    if c0.minibatch_disc or c0.mbstd:
        n = min(c0.batch_size, 128 if c0.mbstd else LANDSCAPE_CONTEXT)
        ctx = eng._packed(x[sel, : n * eng.pack])
        weight = (c0.batch_size - 1) / n
    d = _subset(eng, eng.D, pics)
    grid = eng.evaluation.grid.expand(len(pics), -1, -1).repeat(1, 1, eng.pack)
    scores = d(grid, **eng.flags, context=ctx, context_weight=weight)
    out = {}
    for j, i in enumerate(pics):
        v = eng.objective_of[i].value(scores[j])
        out[i] = v.view(c0.grid_size, c0.grid_size).float().cpu().numpy()
    return out


def _latent_grid(z_dim: int) -> torch.Tensor:
    """(M·M, z): z[0] and z[1] over ±MANIFOLD_SPAN, row by row from the lowest z[1]; the other
    coordinates 0 (a fixed 2-D slice of the latent space when z has more than 2 dimensions)."""
    m = MANIFOLD_SIDE
    ax = torch.linspace(-MANIFOLD_SPAN, MANIFOLD_SPAN, m)
    gy, gx = torch.meshgrid(ax, ax, indexing="ij")
    z = torch.zeros(m * m, z_dim)
    z[:, 0] = gx.reshape(-1)
    if z_dim > 1:
        z[:, 1] = gy.reshape(-1)
    return z
