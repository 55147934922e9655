"""The fast minibatch-discrimination feature (trainer/families/gan/minibatch.py) against the
textbook formula.

Bounds. Everything is compared in float64 (unit roundoff u = 2⁻⁵³) with the textbook formula,
`reference`, as the truth. For one pair the fast path computes E = exp(−Σ_c |Δ_c|) from the
features centred per dimension (|m| ≤ S_c/2, S = Σ_c S_c their spread), either as
u_i·u_j·Π_c min(β_ic, β_jc) or directly as 2^(−Σ_c |Δ_c|·log₂e). Rounding the centred (and
scaled) features, the C − 1 additions inside u or Σ_c, the C + 2 exponentials (each within 2u
on x86-64's libm/SLEEF/MKL) and the C + 1 products move log E by at most (C + 1)·u·S +
(3C + 5)·u; the reference's own Σ_c|Δ_c| (|Δ| ≤ S) adds 2C·u·S + 2u.
A feature sums B pair weights (≤ B·u relative each side), so per sample

    |o_fast − o_ref| ≤ γ·(o_ref + 1),   γ = (3C + 1)·u·S + (3C + 7)·u + 2B·u,

(+1: the reference subtracts the self-pair). The gradient of either is
−Σ_j (g_i + g_j)·E_ij·sign(Δ_c) with the same signs (the same float subtraction), so its error is
within (γ + 2B·u)·Σ_j |g_i + g_j|·E_ij. The tests use twice these bounds; they are ~1e-13, far
below any real mistake (a dropped pair, a wrong sign or a missed self-pair is ≥ e^{−S} ≈ 1e-2).
"""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer.families.gan import minibatch as mb
from collapse_lab.trainer.families.gan.minibatch import pairwise_features, reference
from collapse_lab.trainer.families.gan.models import Discriminator

U64 = 2.0**-53


def features(seed: int, r: int, b: int, k: int, c: int, scale: float = 1.0,
             dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(r, b, k, c, generator=g, dtype=dtype) * scale).requires_grad_(True)


def gamma(m: torch.Tensor, mc: torch.Tensor | None, u: float = U64) -> float:
    both = (m if mc is None else torch.cat([m, mc], dim=1)).detach()
    spread = float((both.amax(dim=1) - both.amin(dim=1)).sum(dim=-1).max())  # max over r, k
    c, b = m.shape[3], (m if mc is None else mc).shape[1]
    return (3 * c + 1) * u * spread + (3 * c + 7) * u + 2 * b * u


def check(m: torch.Tensor, mc: torch.Tensor | None = None) -> None:
    """Values and gradients (for m and mc) within the module's derived bounds."""
    ins = [t for t in (m, mc) if t is not None]
    o_ref = reference(m, mc)
    o = pairwise_features(m, mc)
    assert o.shape == o_ref.shape
    gam = gamma(m, mc)
    assert ((o - o_ref).abs() <= 2 * gam * (o_ref.detach() + 1)).all()
    g = torch.randn(o.shape, generator=torch.Generator().manual_seed(9), dtype=o.dtype)
    grads_ref = torch.autograd.grad(o_ref, ins, g)
    grads = torch.autograd.grad(o, ins, g)
    # the bound's scale: Σ_j |g_i + g_j|·E_ij (for m) and Σ_i |g_i|·E_ij (for mc)
    with torch.no_grad():
        y = m if mc is None else mc
        e = torch.exp(-(m[:, :, None] - y[:, None]).abs().sum(-1))  # (R, B, Bc, K)
        if mc is None:
            e = e * (1 - torch.eye(m.shape[1], dtype=m.dtype))[None, :, :, None]
            scale_m = ((g[:, :, None] + g[:, None]).abs() * e).sum(2)  # (R, B, K)
        else:
            scale_m = (g[:, :, None].abs() * e).sum(2)
            scale_y = (g[:, :, None].abs() * e).sum(1)  # (R, Bc, K)
    bound = 2 * (gam + 2 * m.shape[1] * U64)
    assert ((grads[0] - grads_ref[0]).abs() <= bound * scale_m[..., None] + 1e-300).all()
    if mc is not None:
        assert ((grads[1] - grads_ref[1]).abs() <= bound * scale_y[..., None] + 1e-300).all()


@pytest.mark.parametrize("shape", [(1, 7, 3, 2), (2, 33, 5, 5), (3, 64, 16, 4), (1, 130, 2, 1)])
def test_matches_the_formula_batch_against_itself(shape):
    check(features(0, *shape))


def test_matches_the_formula_against_a_context():
    check(features(1, 2, 40, 3, 4), features(2, 2, 17, 3, 4))


def test_blocks_split_kernels_and_rows(monkeypatch):
    """A budget far below one batch's pairs: blocks of a few kernels and rows, the triangle's
    column sums and the context's row blocks all in play."""
    monkeypatch.setattr(mb, "CPU_BLOCK", 200)
    m = features(3, 2, 37, 6, 3)
    assert len(mb._plan(12, 3, 37, 37, True, 200)) > 20
    check(m)
    check(features(4, 2, 21, 6, 3), features(5, 2, 29, 6, 3))


def test_wide_features_take_the_direct_exponential():
    """Features spread wider than the product form allows are computed as exp(−Σ|Δ|)."""
    m = features(6, 1, 50, 4, 4, scale=60.0)
    xt = mb._kernel_major(m.detach())
    assert not mb._product_ok(xt, None)[0]
    assert mb._product_ok(xt / 60.0, None)[0]
    check(m)


def test_a_collapsed_batch_gives_the_formula_exactly():
    """Identical samples: every distance is 0, each feature is B − 1, and the gradient is 0
    (sign(0) = 0, as autograd's derivative of |x| at 0)."""
    m = features(7, 2, 24, 5, 4)[:, :1].detach().expand(2, 24, 5, 4).clone().requires_grad_(True)
    o = pairwise_features(m)
    assert torch.equal(o, torch.full_like(o, 23.0))
    (grad,) = torch.autograd.grad(o, m, torch.randn_like(o))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_gradcheck_and_second_derivatives():
    m = features(8, 2, 6, 2, 3)
    mc = features(9, 2, 5, 2, 3)
    assert torch.autograd.gradcheck(pairwise_features, (m,))
    assert torch.autograd.gradcheck(pairwise_features, (m, mc))
    # second derivatives (gradient penalty, R1, unrolling): the closed form of mb._Grad for
    # the batch against itself, the textbook formula against a context
    assert torch.autograd.gradgradcheck(pairwise_features, (m,))
    assert torch.autograd.gradgradcheck(pairwise_features, (m, mc))


def test_second_derivatives_match_the_formula_in_blocks(monkeypatch):
    """A penalty on the gradient, differentiated again, by the parameters of both the feature
    and its upstream (what a gradient penalty needs), row blocks of 3 of 40: the textbook
    formula's numbers to float64 rounding; a third derivative too."""
    monkeypatch.setattr(mb, "SECOND_BLOCK", 2 * 5 * 3 * 40 * 3)
    m0 = features(12, 2, 40, 5, 3)
    w0 = torch.randn(2, 40, 5, dtype=torch.float64)

    def grads(f, order: int = 2):
        m = m0.detach().clone().requires_grad_(True)
        w = w0.clone().requires_grad_(True)
        o = f(m)
        (gm,) = torch.autograd.grad((o * w * o).sum(), m, create_graph=True)
        out = torch.autograd.grad((gm ** 2).sum(), (m, w), create_graph=order > 2)
        if order > 2:
            out = torch.autograd.grad(out[0].pow(2).sum(), (m, w))
        return out

    for order in (2, 3):
        for a, b in zip(grads(pairwise_features, order), grads(reference, order), strict=True):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-9), (order, (a - b).abs().max())


def test_a_retained_graph_gives_the_same_gradient_twice():
    m = features(10, 1, 40, 4, 4)
    o = pairwise_features(m)
    g = torch.randn_like(o)
    (a,) = torch.autograd.grad(o, m, g, retain_graph=True)
    pairwise_features(features(11, 1, 40, 4, 4)).sum().backward()  # recycles memory meanwhile
    (b,) = torch.autograd.grad(o, m, g)
    assert torch.equal(a, b)


def test_float32_stays_within_float32_bounds():
    """The training dtype: the same bound with float32's u, on features as spread as a run's."""
    for scale in (1.0, 4.0):
        m64 = features(12, 1, 64, 16, 4, scale=scale)
        m32 = m64.detach().float()
        o = pairwise_features(m32).double()
        o_ref = reference(m64.detach())
        gam = gamma(m64, None, u=2.0**-24)
        assert ((o - o_ref).abs() <= 2 * gam * (o_ref + 1)).all()


def test_memory_stays_within_the_block_budget(monkeypatch):
    """No (B, B, K, C) tensor: the scratch never exceeds the block budget, and the pair weights
    kept for the backward are the upper triangle in row blocks, not the square."""
    monkeypatch.setattr(mb, "CPU_BLOCK", 1 << 14)
    mb._ARENA.scratch.clear()
    m = features(13, 1, 128, 8, 4, dtype=torch.float32)
    pairwise_features(m).sum().backward()
    assert max(t.numel() for t in mb._ARENA.scratch.values()) <= 1 << 14
    blocks = mb._plan(8, 4, 128, 128, True, 1 << 14)
    kept = sum(blk.shape[0] * blk.shape[1] * blk.shape[2] for blk in blocks)
    assert kept < 0.7 * 8 * 128 * 128


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_the_formula():
    m = features(14, 2, 50, 4, 4).detach().cuda().requires_grad_(True)
    mc = features(15, 2, 30, 4, 4).detach().cuda().requires_grad_(True)
    check(m)
    check(m, mc)


# ---------------------------------------------------------------------- the Discriminator's use
def disc(k: int = 6, c: int = 3) -> Discriminator:
    return Discriminator(2, 2, 32, 2, "relu", k, c, torch.Generator().manual_seed(0)).double()


def test_discriminator_features_are_the_formula_on_its_projections():
    """D's minibatch features are the pairwise sum over M = f·T, against the batch and against
    a context batch, within the float64 bound above."""
    d = disc()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 40, 2, generator=g, dtype=torch.float64)
    xc = torch.randn(2, 25, 2, generator=g, dtype=torch.float64)
    f, fc = d.features(x, False), d.features(xc, False)
    k, c = d.mbd_kernels, d.mbd_dim
    m = torch.bmm(f, d.mbd_T).view(2, 40, k, c)
    mc = torch.bmm(fc, d.mbd_T).view(2, 25, k, c)
    for got, want, gam in ((d.minibatch_features(f, f, True), reference(m), gamma(m, None)),
                           (d.minibatch_features(f, fc, False), reference(m, mc), gamma(m, mc))):
        assert got.shape == (2, 40, k)
        assert ((got - want).abs() <= 2 * gam * (want.detach() + 1)).all()
    # and they reach D's score and T's gradient (the head's feature weights start at zero)
    with torch.no_grad():
        d.head_mbd.fill_(1.0)
    d(x, mbd=True).sum().backward()
    assert float(d.mbd_T.grad.abs().sum()) > 0
