"""MLP generator and discriminator, with every weight stacked along a leading runs dimension R.

A single run is R = 1. Writing the layers as batched matmuls (`baddbmm` over (R, in, out)
weights) from the start means a compare grid of R runs trains as one set of kernels without a
second model implementation; on one run it costs the same as `nn.Linear`.

Shapes: inputs are (R, B, features); D returns (R, B) scores.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from collapse_lab.trainer.families.gan.minibatch import pairwise_features

MAX_PACK = 4  # the most samples a packing discriminator judges at once (PacGAN)

ACT = {
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "tanh": torch.tanh,
}
# the same, in place: used where no gradient is kept (metric ticks, D's landscape), which saves
# an allocation and a pass over memory per layer on the evaluation batch
ACT_ = {
    "relu": torch.relu_,
    "leaky_relu": lambda x: F.leaky_relu_(x, 0.2),
    "tanh": torch.tanh_,
}


def _act(name: str):
    plain, inplace = ACT[name], ACT_[name]
    return lambda x: plain(x) if torch.is_grad_enabled() else inplace(x)


class StackedLinear(nn.Module):
    """R independent linear layers: y[r] = x[r] @ W[r] + b[r]."""

    def __init__(self, runs: int, fan_in: int, fan_out: int, gen: torch.Generator,
                 init_std: float = 0.0):
        super().__init__()
        if init_std > 0:  # N(0, std²) weights and zero biases, as in PacGAN's code
            w = torch.randn(fan_in, fan_out, generator=gen) * init_std
            b = torch.zeros(1, fan_out)
        else:
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(1, fan_out, generator=gen) * 2 - 1) * bound
        # every run starts from the same weights: differences come from the config alone
        self.weight = nn.Parameter(w.expand(runs, -1, -1).clone())  # (R, in, out)
        self.bias = nn.Parameter(b.expand(runs, -1, -1).clone())  # (R, 1, out)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight if weight is None else weight)


def _maxout(pieces: int):
    """A maxout unit (Goodfellow et al. 2013): the largest of `pieces` consecutive linear
    outputs, (R, B, width·pieces) -> (R, B, width)."""
    return lambda x: x.unflatten(-1, (-1, pieces)).amax(-1)


class Generator(nn.Module):
    """MLP from noise to samples. With `batchnorm`, each hidden layer's pre-activations are
    normalised over the batch (per run and unit) and given a learned scale and shift, as in
    PacGAN's generator. The batch's own statistics are used in training and at evaluation alike
    (no running averages): the evaluation batch of thousands of samples gives statistics as good
    as running ones, and a run's state stays its parameters alone."""

    def __init__(self, runs: int, z_dim: int, width: int, depth: int, out_dim: int,
                 activation: str, out_tanh: bool, gen: torch.Generator,
                 batchnorm: bool = False, init_std: float = 0.0):
        super().__init__()
        dims = [z_dim] + [width] * depth + [out_dim]
        self.layers = nn.ModuleList(StackedLinear(runs, a, b, gen, init_std)
                                    for a, b in zip(dims, dims[1:]))
        self.act = _act(activation)
        self.out_tanh = out_tanh
        self.batchnorm = batchnorm
        if batchnorm:
            self.bn_scale = nn.ParameterList(nn.Parameter(torch.ones(runs, 1, width))
                                             for _ in range(depth))
            self.bn_shift = nn.ParameterList(nn.Parameter(torch.zeros(runs, 1, width))
                                             for _ in range(depth))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (R, B, z) -> (R, B, out)
        h = z
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                if self.batchnorm:
                    var, mean = torch.var_mean(h, dim=1, unbiased=False, keepdim=True)
                    h = (h - mean) * torch.rsqrt(var + 1e-5) * self.bn_scale[i] + self.bn_shift[i]
                h = self.act(h)
        return torch.tanh(h) if self.out_tanh else h


def networks(runs: int, cfg: Any, data_dim: int, out_tanh: bool,
             gen: torch.Generator) -> tuple[Generator, Discriminator]:
    """G and D of `runs` stacked runs with cfg's shapes, weights drawn from `gen` (G first)."""
    G = Generator(runs, cfg.z_dim, cfg.g_width, cfg.g_depth, data_dim, cfg.activation, out_tanh,
                  gen, batchnorm=cfg.g_batchnorm, init_std=cfg.init_std)
    D = Discriminator(runs, data_dim, cfg.d_width, cfg.d_depth, cfg.activation, cfg.mbd_kernels,
                      cfg.mbd_dim, gen, maxout=cfg.d_maxout, init_std=cfg.init_std)
    return G, D


class Discriminator(nn.Module):
    """MLP body f(x), optional batch features, linear head.

    The head's weights for the batch features are parameters of their own (`head_mbd` for the
    minibatch-discrimination kernels, `head_std` for the minibatch stddev), kept whether the
    feature is on or off, so switching a remedy mid-run keeps every parameter's shape. When a
    feature is switched on its head weights start at zero (see `zero_head`): D's output is
    unchanged at the switch and it learns to use the feature from there; the optimizer starts
    their moments afresh (trainer/families/gan/optim.py).
    """

    def __init__(self, runs: int, in_dim: int, width: int, depth: int, activation: str,
                 mbd_kernels: int, mbd_dim: int, gen: torch.Generator, maxout: int = 1,
                 init_std: float = 0.0):
        super().__init__()
        # with maxout, each hidden unit is the largest of `maxout` linear pieces (PacGAN's D)
        dims = [in_dim] + [width] * depth
        self.body = nn.ModuleList(StackedLinear(runs, a, b * maxout, gen, init_std)
                                  for a, b in zip(dims, dims[1:]))
        self.act = _act(activation) if maxout == 1 else _maxout(maxout)
        self.mbd_kernels, self.mbd_dim = mbd_kernels, mbd_dim
        # PacGAN (Lin et al. 2018): D may judge packs of up to MAX_PACK samples, concatenated.
        # The first layer's weights for a pack's 2nd, 3rd and 4th sample are a parameter of
        # their own, zero when packing starts (D's scores unchanged at the switch)
        self.in_dim = in_dim
        self.pack_w = nn.Parameter(torch.zeros(runs, (MAX_PACK - 1) * in_dim, width * maxout))
        # minibatch discrimination tensor T (Salimans et al. 2016): A × B × C, A = width
        t = torch.randn(width, mbd_kernels * mbd_dim, generator=gen) * 0.1
        self.mbd_T = nn.Parameter(t.expand(runs, -1, -1).clone())  # (R, A, B*C)
        self.head = StackedLinear(runs, width, 1, gen, init_std)  # (R, A, 1)
        # the batch features' head weights start at zero, whether the feature is on from the
        # start or switched on mid-run: the same start either way
        self.head_mbd = nn.Parameter(torch.zeros(runs, mbd_kernels, 1))
        self.head_std = nn.Parameter(torch.zeros(runs, 1, 1))
        # power-iteration vectors of spectral normalization, one per weight matrix
        for i, layer in enumerate(self.linears()):
            r, fan_in, fan_out = layer.weight.shape
            u = F.normalize(torch.randn(fan_out, generator=gen), dim=0)
            self.register_buffer(f"sn_u{i}", u.expand(r, -1).clone())  # (R, out)

    def linears(self) -> list[StackedLinear]:
        return [*self.body, self.head]

    def feature_params(self) -> dict[str, list[nn.Parameter]]:
        """The parameters each batch feature owns, by remedy name; their optimizer state starts
        afresh when the feature is switched on (a feature that is off gets no gradient)."""
        return {"minibatch_disc": [self.head_mbd, self.mbd_T], "mbstd": [self.head_std],
                "pack": [self.pack_w]}

    @torch.no_grad()
    def zero_head(self, feature: str, runs: torch.Tensor) -> None:
        """Zero a feature's input weights for the given runs: D's scores are unchanged at once."""
        head = {"minibatch_disc": self.head_mbd, "mbstd": self.head_std,
                "pack": self.pack_w}[feature]
        head[runs] = 0.0

    def _layer_weight(self, i: int, pack: int) -> torch.Tensor:
        """Body layer i's weight (R, in, out); the first layer's over a pack of `pack` samples."""
        w: torch.Tensor = self.body[i].weight  # type: ignore[assignment]  # a Parameter
        if i == 0 and pack > 1:
            w = torch.cat([w, self.pack_w[:, : (pack - 1) * self.in_dim]], dim=1)
        return w

    def _head_weight(self) -> torch.Tensor:  # (R, A + kernels + 1, 1)
        return torch.cat([self.head.weight, self.head_mbd, self.head_std], dim=1)

    @torch.no_grad()
    def power_iteration(self, pack: int = 1) -> None:
        """One power-iteration step per weight (Miyato et al. 2018); call once per update."""
        for i, layer in enumerate(self.linears()):
            w = self._head_weight() if layer is self.head else self._layer_weight(i, pack)
            u = getattr(self, f"sn_u{i}")
            v = F.normalize(torch.bmm(w, u[:, :, None]).squeeze(2), dim=1)  # (R, in)
            u.copy_(F.normalize(torch.bmm(v[:, None, :], w).squeeze(1), dim=1))

    def _sn_weight(self, i: int, w: torch.Tensor) -> torch.Tensor:
        u = getattr(self, f"sn_u{i}")  # (R, out)
        v = F.normalize(torch.bmm(w, u[:, :, None]).squeeze(2), dim=1).detach()  # (R, in)
        sigma = torch.einsum("ri,rio,ro->r", v, w, u)  # (R,) largest singular value estimate
        return w / sigma[:, None, None]

    def forward(self, x: torch.Tensor, *, mbd: bool = False, mbstd: bool = False,
                sn: bool = False, pack: int = 1,
                context: torch.Tensor | None = None, context_weight: float = 1.0) -> torch.Tensor:
        """Scores (R, B) for x (R, B, pack·in): each row a pack of `pack` samples.

        The batch features compare each row with the others of its batch; with `context`
        (R, Bc, pack·in) they compare it with that batch instead (used to draw D's landscape:
        how D would score a point among the current fakes), each context sample counting
        `context_weight` times in minibatch discrimination's sums (a small context standing
        for a whole training batch).
        """
        f = self.features(x, sn, pack)  # (R, B, A)
        a = f.shape[2]
        if sn:  # the head is normalised as one matrix over all its inputs
            w = self._sn_weight(len(self.body), self._head_weight())
            w_f, w_mbd, w_std = w[:, :a], w[:, a:a + self.mbd_kernels], w[:, -1, 0]
        else:
            w_f, w_mbd, w_std = self.head.weight, self.head_mbd, self.head_std[:, 0, 0]
        s = torch.baddbmm(self.head.bias, f, w_f).squeeze(2)  # (R, B)
        if not (mbd or mbstd):
            return s
        fc = f if context is None else self.features(context, sn, pack)
        if mbstd:
            # mean over features of the per-feature std across the batch (Karras et al. 2018)
            # (√(var + 1e-8) as in ProGAN: the plain std has no derivative where it is 0)
            std_feature = torch.sqrt(fc.var(dim=1, unbiased=False) + 1e-8).mean(dim=1)  # (R,)
            s = s + (std_feature * w_std)[:, None]
        if mbd:
            o = self.minibatch_features(f, fc, context is None)  # (R, B, kernels)
            if context is not None and context_weight != 1.0:
                o = o * context_weight
            s = s + torch.bmm(o, w_mbd).squeeze(2)
        return s

    def features(self, x: torch.Tensor, sn: bool, pack: int = 1) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.body):
            w = self._layer_weight(i, pack)
            h = self.act(layer(h, self._sn_weight(i, w) if sn else w))
        return h

    def minibatch_features(self, f: torch.Tensor, fc: torch.Tensor, same: bool) -> torch.Tensor:
        """o(x_i)_b = Σ_j exp(−‖M_i,b − M_j,b‖₁) over the batch, self excluded -> (R, B, kernels),
        M = f·T; with `same` False, over the context batch fc (self not excluded). The pairwise
        sum is trainer/families/gan/minibatch.py's (half the pairs, no per-pair graph kept for
        backward)."""
        r, b, _ = f.shape
        k, c = self.mbd_kernels, self.mbd_dim
        m = torch.bmm(f, self.mbd_T).view(r, b, k, c)
        if same:
            return pairwise_features(m)
        return pairwise_features(m, torch.bmm(fc, self.mbd_T).view(r, fc.shape[1], k, c))
