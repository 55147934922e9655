"""R small GRU language models as one set of stacked tensors, and Adam over them.

Each run's parameters are a slice [r] of every tensor (emb (R, V, E), the GRU's input and
hidden weights (R, E, 3H), (R, H, 3H), the output layer (R, H, V)), so one batched matmul steps
every run and the gradient of the sum of the runs' losses is each run's own gradient. The GRU
is PyTorch's (reset, update, new gates: torch.nn.GRU's equations), written out over the stack.
"""

from __future__ import annotations

import math

import torch

PARAMS = ("emb", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out")


def init(vocab: int, embed: int, hidden: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One run's fresh parameters (PyTorch's defaults: embeddings N(0, 1), the rest uniform in
    ±1/√hidden), drawn from `gen` in a fixed order."""
    a = 1.0 / math.sqrt(hidden)

    def u(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=gen) * 2 - 1) * a

    return dict(emb=torch.randn(vocab, embed, generator=gen), w_ih=u(embed, 3 * hidden),
                b_ih=u(3 * hidden), w_hh=u(hidden, 3 * hidden), b_hh=u(3 * hidden),
                w_out=u(hidden, vocab), b_out=u(vocab))


def embed(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Token ids x (R, ...) -> embeddings (R, ..., E), each run by its own table."""
    r, v, e = p["emb"].shape
    off = torch.arange(r, device=x.device).view(r, *([1] * (x.dim() - 1))) * v
    return p["emb"].reshape(r * v, e)[x + off]


def cell(p: dict[str, torch.Tensor], gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One GRU step: input gates gi (R, B, 3H) (x·W_ih + b_ih), state h (R, B, H) -> new h."""
    gh = torch.baddbmm(p["b_hh"][:, None], h, p["w_hh"])
    ir, iz, in_ = gi.chunk(3, -1)
    hr, hz, hn = gh.chunk(3, -1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def gates(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Input gates of token ids x (R, B, L) -> (R, B, L, 3H)."""
    e = embed(p, x)
    r, b, length, d = e.shape
    g = torch.baddbmm(p["b_ih"][:, None], e.reshape(r, b * length, d), p["w_ih"])
    return g.view(r, b, length, -1)


def logits(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Next-word logits (R, B, L, V) after each prefix of the inputs x (R, B, L), from a zero
    state."""
    gi = gates(p, x)
    r, b, length, _ = gi.shape
    h = gi.new_zeros(r, b, p["w_hh"].shape[1])
    hs = []
    for t in range(length):
        h = cell(p, gi[:, :, t], h)
        hs.append(h)
    hseq = torch.stack(hs, 2).view(r, b * length, -1)
    return torch.baddbmm(p["b_out"][:, None], hseq, p["w_out"]).view(r, b, length, -1)


def step_logits(p: dict[str, torch.Tensor], tok: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: the last tokens (R, B) and states (R, B, H) -> (log-probs (R, B, V),
    new states)."""
    e = embed(p, tok)  # (R, B, E)
    gi = torch.baddbmm(p["b_ih"][:, None], e, p["w_ih"])
    h = cell(p, gi, h)
    out = torch.baddbmm(p["b_out"][:, None], h, p["w_out"])
    return torch.log_softmax(out, -1), h


class Adam:
    """Adam (β 0.9, 0.999, ε 1e-8) over stacked parameters, with a learning rate and a step
    count per run (runs join a stack at different steps)."""

    B1, B2, EPS = 0.9, 0.999, 1e-8

    def __init__(self, params: dict[str, torch.Tensor], m: dict[str, torch.Tensor],
                 v: dict[str, torch.Tensor], t: torch.Tensor, lr: torch.Tensor):
        self.params, self.m, self.v, self.t, self.lr = params, m, v, t, lr

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        c1 = 1 - self.B1 ** self.t  # (R,)
        c2 = 1 - self.B2 ** self.t
        for k, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            self.m[k].mul_(self.B1).add_(g, alpha=1 - self.B1)
            self.v[k].mul_(self.B2).addcmul_(g, g, value=1 - self.B2)
            mh = self.m[k] / c1.view(shape)
            vh = self.v[k] / c2.view(shape)
            p.sub_(self.lr.view(shape) * mh / (vh.sqrt() + self.EPS))
            p.grad = None
