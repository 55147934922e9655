"""The knobs the papers' own settings need: G's batch norm, D's maxout units, the mixtures' scale.

Each is checked for what it computes, for stacking (a run in a stack is the run alone), for
determinism and for checkpoints (a saved run continues exactly).
"""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.gan.config import ConfigError, make_config
from collapse_lab.trainer.families.gan.engine import Engine
from collapse_lab.trainer.families.gan.models import Discriminator, Generator
from collapse_lab.trainer.families.gan.state import RunState

BASE = dict(batch_size=32, g_width=16, d_width=16, z_dim=4, eval_samples=200, grid_size=8,
            tick_every=5, device="cpu", g_batchnorm=True, d_maxout=3, g_depth=3)
PAPER = dict(z_dim=2, g_width=16, g_depth=4, g_batchnorm=True, d_width=8, d_depth=3,
             d_maxout=5, data_scale=0.5, beta1=0.8, lr_g=1e-4, lr_d=1e-4, batch_size=100)


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def engine(*knob_sets: dict) -> Engine:
    cfgs = [make_config({**BASE, **k}) for k in knob_sets]
    data = make_dataset(cfgs[0]).to("cpu")
    return Engine([RunState.fresh(c, data.dim, False) for c in cfgs], data, torch.device("cpu"))


def params(eng: Engine, i: int) -> torch.Tensor:
    st = eng.export(i)
    return torch.cat([t.flatten() for d in (st.G, st.D) for t in d.values()])


def test_maxout_unit_is_the_largest_of_its_pieces():
    gen = torch.Generator().manual_seed(0)
    d = Discriminator(2, 2, 6, 2, "relu", 4, 2, gen, maxout=3)
    assert d.body[0].weight.shape == (2, 2, 18) and d.body[1].weight.shape == (2, 6, 18)
    assert d.pack_w.shape == (2, 3 * 2, 18)
    x = torch.randn(2, 10, 2, generator=gen)
    pre = torch.baddbmm(d.body[0].bias, x, d.body[0].weight)  # (R, B, 6·3)
    want = torch.stack([pre[..., 3 * u:3 * u + 3].max(-1).values for u in range(6)], -1)
    h1 = d.body[0](x).unflatten(-1, (6, 3)).amax(-1)
    assert torch.equal(h1, want)
    assert d.features(x, sn=False).shape == (2, 10, 6)
    assert d(x).shape == (2, 10)
    # a unit below its other pieces does not matter: lowering one piece's bias far changes nothing
    with torch.no_grad():
        d.body[0].bias[..., 1::3] -= 1e3
    assert torch.equal(d.body[0](x).unflatten(-1, (6, 3)).amax(-1),
                       torch.maximum(pre[..., 0::3], pre[..., 2::3]))


def test_batchnorm_normalises_each_hidden_unit_over_the_batch():
    gen = torch.Generator().manual_seed(1)
    g = Generator(2, 4, 16, 3, 2, "relu", False, gen, batchnorm=True)
    z = torch.randn(2, 500, 4, generator=gen)
    out = g(z)
    # a constant added to a hidden layer's bias is removed by the normalisation after it
    with torch.no_grad():
        g.layers[1].bias += 5.0
    assert torch.allclose(g(z), out, atol=1e-9)
    plain = Generator(2, 4, 16, 3, 2, "relu", False, torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain.layers[1].bias += 5.0
    assert not torch.allclose(plain(z), out, atol=1e-3)
    # the first layer's pre-activations, normalised: mean 0, variance 1 per run and unit
    h = g.layers[0](z)
    var, mean = torch.var_mean(h, dim=1, unbiased=False)
    hn = (h - mean[:, None]) / torch.sqrt(var[:, None] + 1e-5)
    assert hn.mean(1).abs().max() < 1e-9 and (hn.var(1, unbiased=False) - 1).abs().max() < 1e-3


def test_paper_knobs_stack_and_repeat():
    """Runs with these knobs in one stack are the runs alone; the same seed, the same run."""
    variants = [dict(PAPER, seed=1), dict(PAPER, seed=2, lr_g=3e-4), dict(PAPER, seed=1, pack=2)]
    # pack is structural: the third runs in its own stack; the first two share one
    stack = engine(*variants[:2])
    for _ in range(5):
        stack.step()
    for i, v in enumerate(variants[:2]):
        alone = engine(v)
        for _ in range(5):
            alone.step()
        want, start = params(alone, 0), params(engine(v), 0)
        err = float((params(stack, i) - want).norm() / (want - start).norm())
        assert err < 1e-8, (v, err)
    a, b = engine(variants[2]), engine(variants[2])
    for _ in range(3):
        a.step()
        b.step()
    assert torch.equal(params(a, 0), params(b, 0))
    assert not torch.equal(params(a, 0), params(engine(variants[2]), 0))  # it did train


def test_checkpoint_continues_exactly_with_paper_knobs(tmp_path):
    knobs = dict(PAPER, unroll=2, pack=2)
    full = engine(knobs)
    for _ in range(6):
        full.step()
    half = engine(knobs)
    for _ in range(3):
        half.step()
    half.export(0).save(tmp_path / "ck.pt")
    st = RunState.load(tmp_path / "ck.pt")
    assert "bn_scale.0" in st.G and st.D["body.0.weight"].shape == (2, 8 * 5)
    resumed = Engine([st], half.data, torch.device("cpu"))
    for _ in range(3):
        resumed.step()
    assert torch.equal(params(full, 0), params(resumed, 0))


def test_data_scale_scales_centres_stds_and_the_quality_rule():
    ring = make_dataset(make_config(dict(dataset="ring8", data_scale=0.5))).to("cpu")
    assert torch.allclose(ring.centres.norm(dim=1), torch.full((8,), 1.0))
    assert torch.allclose(ring.stds, torch.full((8,), 0.01))
    # 3 std of PacGAN's ring is 0.03: a point 0.029 from a centre is high quality, 0.031 not
    c = ring.centres[2]
    _, hq = ring.assign(torch.stack([c * 1.029, c * 1.031]))
    assert hq.tolist() == [True, False]
    grid = make_dataset(make_config(dict(dataset="grid25", data_scale=2.0))).to("cpu")
    assert float(grid.centres.abs().max()) == 8.0 and float(grid.stds[0]) == pytest.approx(0.1)
    with pytest.raises(ConfigError) as e:
        make_config(dict(dataset="lines", data_scale=0.5))
    assert e.value.field == "data_scale"
    for name, bad in (("data_scale", 0.0), ("d_maxout", 9), ("g_batchnorm", "maybe")):
        with pytest.raises(ConfigError) as e:
            make_config({name: bad})
        assert e.value.field == name


def test_init_std_draws_gaussian_weights_and_zero_biases():
    cfg = make_config(dict(init_std=0.02, g_width=400, d_width=200, d_maxout=5))
    st = RunState.fresh(cfg, 2, False)
    w = st.G["layers.1.weight"]  # 400 × 400 draws
    assert abs(float(w.std()) - 0.02) < 0.001 and abs(float(w.mean())) < 0.001
    assert float(st.D["body.1.bias"].abs().max()) == 0.0
    plain = RunState.fresh(make_config(dict(g_width=400)), 2, False)
    # PyTorch's default: uniform ±1/√400, std 0.05/√3
    assert abs(float(plain.G["layers.1.weight"].std()) - 0.05 / 3 ** 0.5) < 0.001


def test_paper_presets_follow_the_papers_and_claim_their_numbers():
    from collapse_lab.trainer.registry import (
        PRESETS,
        claim_text,
        from_preset,
        meets_claim,
    )

    pac = from_preset("paper-pacgan4-ring8")
    assert (pac.g_width, pac.g_depth, pac.g_batchnorm, pac.z_dim) == (400, 4, True, 2)
    assert (pac.d_width, pac.d_depth, pac.d_maxout, pac.pack) == (200, 3, 5, 4)
    assert (pac.lr_g, pac.lr_d, pac.beta1, pac.batch_size, pac.data_scale) == (
        1e-4, 1e-4, 0.8, 100, 0.5)
    assert from_preset("paper-pacgan-gan-grid25").data_scale == 1.0
    metz = from_preset("paper-metz-unrolled10-ring8")
    assert (metz.unroll, metz.z_dim, metz.activation, metz.batch_size) == (10, 256, "tanh", 512)
    assert (metz.lr_g, metz.lr_d, metz.beta1) == (1e-3, 1e-4, 0.5)
    assert claim_text("paper-pacgan4-ring8") == "≥ 7 of 8 modes captured at the end"
    assert meets_claim("paper-pacgan4-ring8", {"modes_captured": 7, "modes_covered": 0})
    assert not meets_claim("paper-pacgan4-ring8", {"modes_captured": 6, "modes_covered": 8})
    assert claim_text("paper-veegan-gan-ring8") == "≤ 2 of 8 modes captured at the end"
    papers = [n for n in PRESETS if n.startswith("paper-")]
    assert len(papers) == 11 and all(PRESETS[n].expect for n in papers)
