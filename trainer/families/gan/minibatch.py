"""Minibatch discrimination's pairwise feature (Salimans et al. 2016), computed fast and exactly.

For projected features M (R runs, B samples, K kernels, C dimensions) the feature of sample i in
kernel k is

    o_ik = Σ_{j ≠ i} exp(−Σ_c |M_ikc − M_jkc|)            (self-pairs excluded)

or, against a `context` batch M' (D's landscape: how D would score a point among the fakes),
o_ik = Σ_j exp(−Σ_c |M_ikc − M'_jkc|) over all of the context.

Written as broadcast tensor ops, the formula builds and keeps several (R, K, B, B) tensors for
autograd — on a CPU that costs many passes over fresh memory, forward and backward. Here a custom
autograd function works on blocks of rows that stay in cache and keeps nothing but the pair
weights E_ij = exp(−‖M_i − M_j‖₁):

- **Half the pairs.** E is symmetric, so for the batch against itself only the block upper
  triangle (rows i, columns j ≥ the block's first row) is computed; a pair's weight is added to
  the row sum of i and the column sum of j.
- **No exponential per pair (CPU).** Since |a − b| = a + b − 2·min(a, b),

      E_ij = u_i · u_j · Π_c min(β_ic, β_jc),   β_ic = exp(2·m_ic),  u_i = exp(−Σ_c m_ic),

  with m the features centred per kernel dimension (distances do not change). That is one
  `minimum` and one product per pair and dimension instead of a subtraction, an absolute value
  and, per pair, an exponential (which on some CPUs costs as much as ten simple passes). It is
  used while the features' spread keeps every factor within the float range (see
  `_PRODUCT_SPREAD`); otherwise, and on CUDA, E is computed directly, as
  2^(−log₂e · Σ_c |Δ_c|) from the centred features (`exp2` is the cheaper of the two).
- **A backward without the pair graph.** With upstream gradient g (the loss's derivative by o),

      ∂L/∂M_ic = −Σ_j (g_i + g_j) · E_ij · sign(M_ic − M_jc)

  (for a context: −Σ_j g_i E_ij sign(·) for M, and +Σ_i g_i E_ij sign(·) for M'), computed block
  by block from the kept E. sign(0) = 0, as autograd's derivative of |x| at 0, so identical
  samples (a collapsed batch) get exactly the gradient of the textbook formula.
- **Memory reused (CPU).** Blocks are computed into one scratch buffer per thread and E is kept
  in buffers recycled between steps: a fresh multi-megabyte allocation is returned to the
  operating system when freed, and touching its pages again costs more than the arithmetic.

Second derivatives (the gradient penalty, R1 or unrolling with the feature on) differentiate
that backward as a function of its own (`_Grad`), whose derivative is written out in closed form
and computed in blocks; only the batch against a context goes through the textbook formula,
`reference`, differentiated by autograd.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch

# elements of one block's (n, C, rows, columns) scratch: ~4 MB in float32 on a CPU (measured a
# little faster than 1 MB; a row of the largest configurations may exceed it, then a block is
# one row); on CUDA the blocks only bound memory
CPU_BLOCK = 1 << 19
CUDA_BLOCK = 1 << 26
# E is kept for the backward up to this many elements per call (else recomputed there)
KEEP_LIMIT = 1 << 26
# the product form multiplies per-sample factors exp(±m) whose logarithms add up to 1.5 × the
# spread Σ_c (max_c − min_c) of the (centred) features; it is used while that stays within this
# share of the dtype's exponent range, so no factor overflows and none underflows unless the
# pair weight itself is below ~exp(−spread/2 · …) (see `_product_ok`)
_PRODUCT_SPREAD = 0.6


def reference(m: torch.Tensor, mc: torch.Tensor | None = None) -> torch.Tensor:
    """The textbook formula, differentiable by autograd: m (R, B, K, C), mc (R, Bc, K, C) ->
    (R, B, K). Memory R·K·B·Bc per kernel dimension; used for tests and second derivatives."""
    y = m if mc is None else mc
    d = None
    for c in range(m.shape[3]):
        a = m[:, :, None, :, c] - y[:, None, :, :, c]  # (R, B, Bc, K)
        d = a.abs() if d is None else d + a.abs()
    assert d is not None
    o = torch.exp(-d).sum(dim=2)
    return o - 1.0 if mc is None else o


def pairwise_features(m: torch.Tensor, mc: torch.Tensor | None = None) -> torch.Tensor:
    """o (R, B, K) of m (R, B, K, C) against itself (self excluded) or against mc (R, Bc, K, C)."""
    r, b, k, c = m.shape
    xt = _kernel_major(m)
    yt = None if mc is None else _kernel_major(mc)
    needs_grad = torch.is_grad_enabled() and (
        m.requires_grad or (mc is not None and mc.requires_grad))
    if needs_grad:
        o = _PairwiseExpL1.apply(xt, yt)
    else:
        o = _forward(xt, yt, keep=False)[0]
    return o.view(r, k, b).transpose(1, 2)


def _kernel_major(m: torch.Tensor) -> torch.Tensor:
    """(R, B, K, C) -> (R·K, C, B), contiguous: the batch innermost, so a block's broadcast ops
    run along contiguous memory."""
    r, b, k, c = m.shape
    return m.permute(0, 2, 3, 1).reshape(r * k, c, b).contiguous()


def _reference_t(xt: torch.Tensor, yt: torch.Tensor | None) -> torch.Tensor:
    """`reference` in the kernel-major layout: (N, C, B), (N, C, Bc) -> (N, B)."""
    m = xt.permute(0, 2, 1)[:, :, None, :]  # (N, B, 1, C): N plays the runs, one kernel each
    mc = None if yt is None else yt.permute(0, 2, 1)[:, :, None, :]
    return reference(m, mc)[:, :, 0]


# ---------------------------------------------------------------------- memory reuse (CPU)
class _Arena(threading.local):
    """Per-thread scratch and a small free list of kept-E buffers, both CPU-only."""

    def __init__(self) -> None:
        self.scratch: dict[tuple[torch.dtype, int], torch.Tensor] = {}
        self.free: list[torch.Tensor] = []


_ARENA = _Arena()
_FREE_MAX = 8  # buffers kept for reuse; a training step holds at most a few E's at once


def _scratch(n: int, like: torch.Tensor, slot: int) -> torch.Tensor:
    """A flat buffer of ≥ n elements, reused across calls (CPU) or fresh (CUDA's allocator
    caches by itself)."""
    if like.device.type != "cpu":
        return like.new_empty(n)
    key = (like.dtype, slot)
    buf = _ARENA.scratch.get(key)
    if buf is None or buf.numel() < n:
        buf = like.new_empty(max(n, int(1.25 * (0 if buf is None else buf.numel()))))
        _ARENA.scratch[key] = buf
    return buf[:n]


class _Lease:
    """A buffer for a kept E; goes back to the free list when the autograd graph holding it is
    freed (not at the end of backward: a retained graph may run backward again)."""

    def __init__(self, n: int, like: torch.Tensor):
        self.cpu = like.device.type == "cpu"
        self.buf: torch.Tensor | None = None
        free = _ARENA.free
        if self.cpu:
            fits = [i for i, t in enumerate(free) if t.dtype == like.dtype and t.numel() >= n]
            if fits:
                self.buf = free.pop(min(fits, key=lambda i: free[i].numel()))
        if self.buf is None:
            self.buf = like.new_empty(n)

    def __del__(self) -> None:
        buf, self.buf = self.buf, None
        if buf is not None and self.cpu:
            free = _ARENA.free
            free.append(buf)
            if len(free) > _FREE_MAX:
                free.pop(min(range(len(free)), key=lambda i: free[i].numel()))


# ---------------------------------------------------------------------- the computation
@dataclass
class _Block:
    """Kernels [n0, n1) × rows [i0, i1) against columns [j0, cols): j0 = i0 for the batch
    against itself (the upper triangle in row blocks), else 0."""

    n0: int
    n1: int
    i0: int
    i1: int
    j0: int
    cols: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n1 - self.n0, self.i1 - self.i0, self.cols - self.j0

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        """t (N, ..., B) narrowed to this block's kernels and rows (no copy)."""
        t = t if self.n1 - self.n0 == t.shape[0] else t.narrow(0, self.n0, self.n1 - self.n0)
        bs = self.i1 - self.i0
        return t if bs == t.shape[-1] else t.narrow(-1, self.i0, bs)

    def columns(self, t: torch.Tensor) -> torch.Tensor:
        t = t if self.n1 - self.n0 == t.shape[0] else t.narrow(0, self.n0, self.n1 - self.n0)
        return t if self.j0 == 0 else t.narrow(-1, self.j0, self.cols - self.j0)


def _plan(n: int, c: int, rows: int, cols: int, same: bool, budget: int) -> list[_Block]:
    """Blocks whose (kernels, C, rows, columns) scratch fits the budget (≥ one row each)."""
    nn = max(1, min(n, budget // max(1, c * cols)))
    out = []
    for n0 in range(0, n, nn):
        n1 = min(n, n0 + nn)
        i0 = 0
        while i0 < rows:
            j0 = i0 if same else 0
            bs = max(1, min(rows - i0, budget // ((n1 - n0) * c * (cols - j0))))
            out.append(_Block(n0, n1, i0, i0 + bs, j0, cols))
            i0 += bs
    return out


def _product_ok(xt: torch.Tensor, yt: torch.Tensor | None) -> tuple[bool, torch.Tensor]:
    """Whether the product form is safe here, and the centre of each kernel dimension (N, C, 1).

    Centred at the midpoint, each m_c lies within ±s_c/2 (s_c its spread over both batches);
    every factor of E_ij = (Π_c min(β_ic, β_jc) · u_i) · u_j then lies in [exp(−1.5·S),
    exp(S)] with S = Σ_c s_c, and the only values that can leave the float range are partial
    products of pairs whose E is itself below exp(−S/2)·(smallest normal). The form is used
    while 1.5·S stays within `_PRODUCT_SPREAD` of the exponent range (S ≤ ~52 in float32, ~425
    in float64) and only on a CPU, where reading the check back costs nothing.
    """
    lo, hi = torch.aminmax(xt, dim=2, keepdim=True)
    if yt is not None:
        lo2, hi2 = torch.aminmax(yt, dim=2, keepdim=True)
        lo, hi = torch.minimum(lo, lo2), torch.maximum(hi, hi2)
    centre = (hi + lo).mul_(0.5)
    if xt.device.type != "cpu":
        return False, centre
    limit = _PRODUCT_SPREAD * -math.log(torch.finfo(xt.dtype).tiny) / 1.5
    spread = float(hi.sub_(lo).sum(dim=1).max())
    return spread <= limit, centre


class _Factors:
    """Per-sample values a block's pair weights are made from, for one batch.

    Product form: β = exp(2m) (N, C, B) and u = exp(−Σ_c m) (N, B), m centred. Otherwise the
    centred features times log₂e, so that E = 2^(−Σ_c |Δ_c|·log₂e): `exp2` costs about 60 % of
    `exp` on CPUs whose `exp` is MKL's, and centring keeps the scaling's rounding within the
    features' spread.
    """

    def __init__(self, t: torch.Tensor, centre: torch.Tensor, product: bool):
        mc = t - centre
        self.product = product
        if product:
            self.u = mc.sum(dim=1).neg_().exp_()
            self.beta = mc.mul_(2.0).exp_()
        else:
            self.scaled = mc.mul_(_LOG2E)
            # the largest x for which 2^(−x) is a normal float (125 in float32, 1021 in float64)
            self.cap = float(-math.log2(torch.finfo(t.dtype).tiny) - 1)


_LOG2E = 1.0 / math.log(2.0)


def _pair_weights(blk: _Block, fx: _Factors, fy: _Factors, e: torch.Tensor,
                  same: bool) -> torch.Tensor:
    """E of one block into e (n, rows, columns)."""
    nn, bs, bj = blk.shape
    if fx.product:
        c = fx.beta.shape[1]
        p = _scratch(nn * c * bs * bj, e, 0).view(nn, c, bs, bj)
        torch.minimum(blk.rows(fx.beta).unsqueeze(3), blk.columns(fy.beta).unsqueeze(2), out=p)
        torch.prod(p, dim=1, out=e)
        e.mul_(blk.rows(fx.u).unsqueeze(2)).mul_(blk.columns(fy.u).unsqueeze(1))
    else:
        c = fx.scaled.shape[1]
        p = _scratch(nn * c * bs * bj, e, 0).view(nn, c, bs, bj)
        torch.sub(blk.rows(fx.scaled).unsqueeze(3), blk.columns(fy.scaled).unsqueeze(2),
                  out=p).abs_()
        torch.sum(p, dim=1, out=e)
        # 2^(−x) with x capped where 2^(−x) is still a normal float, less that floor: exactly 0
        # for the capped (and for pairs that would underflow anyway). `exp2` of arguments whose
        # result underflows runs ~3× slower (`exp`, ~20×), and most pairs of a batch spread over
        # distinct modes are such pairs; subnormal results would slow every later product too.
        cap = fx.cap
        e.clamp_(max=cap).neg_().exp2_().sub_(2.0**-cap)
    if same and blk.j0 == blk.i0:  # the self-pairs, on the block's leading square
        e.narrow(2, 0, bs).diagonal(dim1=1, dim2=2).zero_()
    return e


def _forward(xt: torch.Tensor, yt: torch.Tensor | None, keep: bool):
    """o (N, B); with `keep`, also what the backward needs."""
    n, c, b = xt.shape
    same = yt is None
    y = xt if yt is None else yt
    cols = y.shape[2]
    use_product, centre = _product_ok(xt, yt)
    fx = _Factors(xt, centre, use_product)
    fy = fx if same else _Factors(y, centre, use_product)
    budget = CPU_BLOCK if xt.device.type == "cpu" else CUDA_BLOCK
    blocks = _plan(n, c, b, cols, same, budget)
    sizes = [math.prod(blk.shape) for blk in blocks]
    keep = keep and sum(sizes) <= KEEP_LIMIT
    lease = _Lease(sum(sizes), xt) if keep else None
    o = xt.new_zeros(n, b)
    kept = []
    off = 0
    for blk, size in zip(blocks, sizes):
        if lease is not None:
            assert lease.buf is not None
            e = lease.buf[off:off + size].view(blk.shape)
            off += size
            kept.append(e)
        else:
            e = _scratch(size, xt, 1).view(blk.shape)
        _pair_weights(blk, fx, fy, e, same)
        blk.rows(o).add_(e.sum(dim=2))
        if same and blk.i1 < b:  # pairs (i, j past the block's rows) count for j too
            bs = blk.i1 - blk.i0
            blk.columns(o).narrow(1, bs, blk.cols - blk.i1).add_(e.narrow(2, bs, b - blk.i1)
                                                                   .sum(dim=1))
    return o, blocks, kept, lease, (fx, fy)


def _backward(xt: torch.Tensor, yt: torch.Tensor | None, g: torch.Tensor, blocks: list[_Block],
              kept: list[torch.Tensor], factors, need_y: bool):
    n, c, b = xt.shape
    same = yt is None
    y = xt if yt is None else yt
    g = g.contiguous()
    gx = torch.zeros_like(xt)
    gy = torch.zeros_like(y) if (need_y and not same) else None
    fx, fy = factors
    for k, blk in enumerate(blocks):
        nn, bs, bj = blk.shape
        size = nn * bs * bj
        if kept:
            e = kept[k]
        else:
            e = _pair_weights(blk, fx, fy, _scratch(size, xt, 1).view(blk.shape), same)
        # w_ij = ∂L/∂E_ij: g_i + g_j for the batch against itself (E_ij is in o_i and o_j)
        w = _scratch(size, xt, 2).view(blk.shape)
        if same:
            torch.add(blk.rows(g).unsqueeze(2), blk.columns(g).unsqueeze(1), out=w)
        else:
            w.copy_(blk.rows(g).unsqueeze(2).expand(nn, bs, bj))
        w.mul_(e)
        s = _scratch(nn * c * bs * bj, xt, 0).view(nn, c, bs, bj)
        torch.sub(blk.rows(xt).unsqueeze(3), blk.columns(y).unsqueeze(2), out=s)
        s.sign_().mul_(w.unsqueeze(1))
        # ∂E_ij/∂m_i = −E_ij·sign(m_i − m_j), ∂E_ij/∂m_j = +E_ij·sign(m_i − m_j)
        blk.rows(gx).sub_(s.sum(dim=3))
        if same:
            if blk.i1 < b:
                blk.columns(gx).narrow(2, bs, b - blk.i1).add_(s.narrow(3, bs, b - blk.i1)
                                                                .sum(dim=2))
        elif gy is not None:
            blk.columns(gy).add_(s.sum(dim=2))
    return gx, gy


class _PairwiseExpL1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xt, yt):  # type: ignore[override]
        o, blocks, kept, lease, factors = _forward(xt, yt, keep=True)
        ctx.save_for_backward(xt, yt)
        ctx.blocks, ctx.kept, ctx.lease, ctx.factors = blocks, kept, lease, factors
        return o

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        xt, yt = ctx.saved_tensors
        if torch.is_grad_enabled() and yt is None and not ctx.needs_input_grad[1]:
            # a second derivative is wanted (create_graph, e.g. a gradient penalty): the first
            # derivative as a function of its own, with the second in closed form (_Grad)
            return _Grad.apply(xt, g, ctx.blocks, ctx.kept, ctx.factors), None
        if torch.is_grad_enabled():
            # against a context: differentiate the textbook formula
            inputs = [t for t in (xt, yt) if t is not None and t.requires_grad]
            with torch.enable_grad():
                o = _reference_t(xt, yt)
            grads = iter(torch.autograd.grad(o, inputs, g, create_graph=True))
            return tuple(next(grads) if t is not None and t.requires_grad else None
                         for t in (xt, yt))
        need_y = yt is not None and ctx.needs_input_grad[1]
        gx, gy = _backward(xt, yt, g, ctx.blocks, ctx.kept, ctx.factors, need_y)
        return (gx if ctx.needs_input_grad[0] else None), gy


# rows of a block of the second derivative: N × C × rows × B elements per temporary
SECOND_BLOCK = 1 << 21


class _Grad(torch.autograd.Function):
    """∂L/∂M of the batch against itself, gx_ic = −Σ_j (g_i + g_j) E_ij s_ijc (s = sign of
    M_ic − M_jc), as a differentiable function of M and g, for second derivatives.

    With h the upstream gradient of gx and q_ij = Σ_c (h_ic − h_jc) s_ijc (symmetric):

        ∂/∂g_i = −Σ_j E_ij q_ij,        ∂/∂M_id = Σ_j (g_i + g_j) E_ij q_ij s_ijd

    (sign's derivative is 0, as autograd's of |x|; the self-pair has s = 0 and adds nothing).
    Computed in blocks of rows against the whole batch: a few passes over N × C × B² numbers
    instead of the textbook formula's graph of many (R, B, B, K) tensors per dimension; a third
    derivative (unrolling through a penalty) differentiates these operations.
    """

    @staticmethod
    def forward(ctx, xt, g, blocks, kept, factors):  # type: ignore[override]
        ctx.save_for_backward(xt, g)
        return _backward(xt, None, g, blocks, kept, factors, False)[0]

    @staticmethod
    def backward(ctx, h):  # type: ignore[override]
        xt, g = ctx.saved_tensors
        tx, tg = _second(xt, g, h)
        return tx, tg, None, None, None


def _second(xt: torch.Tensor, g: torch.Tensor, h: torch.Tensor):
    """_Grad's derivative in blocks of rows; with grad enabled (a third derivative is wanted)
    built from differentiable operations only."""
    n, c, b = xt.shape
    h = h.contiguous()
    rows = max(1, SECOND_BLOCK // max(1, n * c * b))
    diff = torch.is_grad_enabled()
    txs, tgs = [], []
    for i0 in range(0, b, rows):
        i1 = min(b, i0 + rows)
        d = xt[:, :, i0:i1, None] - xt[:, :, None, :]  # (N, C, r, B)
        e = d.abs().sum(dim=1).neg().exp()  # (N, r, B)
        s = d.sign() if diff else d.sign_()
        q = (h[:, :, i0:i1, None] - h[:, :, None, :]) * s
        q = q.sum(dim=1) * e  # E_ij q_ij
        tgs.append(q.sum(dim=2).neg())
        q = q * (g[:, i0:i1, None] + g[:, None, :])
        txs.append((s * q[:, None]).sum(dim=3) if diff else s.mul_(q[:, None]).sum(dim=3))
    return torch.cat(txs, dim=2), torch.cat(tgs, dim=1)
