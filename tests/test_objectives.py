import math

import pytest
import torch

from collapse_lab.trainer.families.gan.config import RunConfig
from collapse_lab.trainer.families.gan.models import Discriminator
from collapse_lab.trainer.families.gan.objectives import OBJECTIVES, get_objective
from collapse_lab.trainer.families.gan.remedies import REMEDIES, DBatch, nn_entropy


def s(v, grad=False):
    return torch.tensor([[float(v)]], requires_grad=grad)  # (R=1, B=1) scores


def g_grad(name, f):
    x = s(f, grad=True)
    get_objective(name).g_loss(x).sum().backward()
    return float(x.grad)


def test_registry_matches_config_choices():
    from collapse_lab.trainer.families.gan.config import KNOBS

    assert KNOBS["objective"].choices == tuple(OBJECTIVES)
    assert RunConfig().objective in OBJECTIVES


def test_logistic_losses_by_hand():
    ns = get_objective("nsgan")
    assert math.isclose(float(ns.d_loss(s(0), s(0))), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(ns.g_loss(s(0))), math.log(2), rel_tol=1e-6)
    assert math.isclose(float(get_objective("minimax").g_loss(s(0))), -math.log(2), rel_tol=1e-6)
    # a confident D (score −10 on a fake): the saturating loss gives G almost no gradient, the
    # non-saturating one a full one (Goodfellow et al. 2014, §3)
    assert abs(g_grad("minimax", -10)) < 1e-4
    assert math.isclose(g_grad("nsgan", -10), -1.0, rel_tol=1e-3)
    # both push the fake's score up (a negative gradient of the loss)
    assert g_grad("minimax", 0) < 0 and g_grad("nsgan", 0) < 0


def test_wasserstein_hinge_least_squares_by_hand():
    w = get_objective("wgan")
    assert float(w.d_loss(s(3), s(1))) == -2.0  # fake − real
    assert g_grad("wgan", 5) == -1.0 and g_grad("wgan-gp", -5) == -1.0
    h = get_objective("hinge")
    assert float(h.d_loss(s(2), s(-2))) == 0.0  # both beyond the margin
    assert float(h.d_loss(s(0), s(0))) == 2.0
    ls = get_objective("lsgan")
    assert float(ls.d_loss(s(1), s(0))) == 0.0
    assert float(ls.g_loss(s(0))) == 0.5
    assert g_grad("lsgan", 0) == -1.0
    assert get_objective("wgan").clip_weights and not get_objective("wgan-gp").clip_weights


def linear_critic(w):
    w = torch.tensor(w)
    return lambda x: (x * w).sum(dim=2)  # (R, B, 2) -> (R, B)


def batch(critic, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DBatch(d=critic, real=torch.randn(1, 64, 2, generator=g),
                  fake=torch.randn(1, 64, 2, generator=g) + 3,
                  eps=torch.rand(1, 64, 1, generator=g))


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    gp = REMEDIES["gp"]
    assert float(gp.term(batch(linear_critic([0.6, 0.8])))) < 1e-10
    p = float(gp.term(batch(linear_critic([1.2, 1.6]))))  # ‖w‖ = 2
    assert math.isclose(p, 1.0, rel_tol=1e-5)


def test_r1_is_squared_weight_norm_for_linear_critic():
    w = [0.3, -1.7]
    gamma = 4.0
    r1 = REMEDIES["r1"]
    term = r1.weight(RunConfig(r1=gamma)) * float(r1.term(batch(linear_critic(w))))
    assert math.isclose(term, 0.5 * gamma * (0.3**2 + 1.7**2), rel_tol=1e-5)


def test_minibatch_features_tell_collapsed_from_diverse():
    torch.manual_seed(0)
    d = Discriminator(1, 2, 32, 2, "relu", mbd_kernels=8, mbd_dim=4,
                      gen=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    diverse = torch.randn(1, 64, 2, generator=g) * 2
    collapsed = diverse[:, :1].expand(1, 64, 2)
    with torch.no_grad():
        f_div = d.minibatch_features(d.features(diverse, False), None, True)
        f_col = d.minibatch_features(d.features(collapsed, False), None, True)
    assert f_col.shape == (1, 64, 8)
    # identical samples: every pair is at distance 0, so each feature is B − 1
    assert torch.allclose(f_col, torch.full_like(f_col, 63.0))
    assert float(f_div.mean()) < 0.8 * float(f_col.mean())


def test_entropy_estimate_is_higher_for_spread():
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(1, 128, 2, generator=g)
    narrow = wide * 0.01
    assert float(nn_entropy(wide)) > float(nn_entropy(narrow)) + 5


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_value_kind(name):
    o = get_objective(name)
    v = o.value(torch.tensor([[0.0]]))
    assert float(v) == (0.5 if o.value_kind == "probability" else 0.0)
