import math

import pytest
import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.datasets import Lines, Spiral, grid25, read_points, ring8
from collapse_lab.trainer.families.gan.config import ConfigError, make_config


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_ring8_centres_are_distinct_on_radius_2():
    d = ring8()
    assert d.centres.shape == (8, 2)
    assert torch.allclose(d.centres.norm(dim=1), torch.full((8,), 2.0), atol=1e-5)
    assert torch.pdist(d.centres).min() > 1.5  # no repeated centre
    x = d.sample(4000, gen())
    assert x.shape == (4000, 2)
    nearest, hq = d.assign(x)
    assert hq.float().mean() > 0.98  # 1 − e^(−4.5) ≈ 98.9 % of a 2-D Gaussian lies within 3σ
    counts = torch.bincount(nearest, minlength=8).float() / 4000
    assert (counts - 1 / 8).abs().max() < 0.03


def test_grid25_spacing_and_std():
    d = grid25()
    assert d.centres.shape == (25, 2)
    assert set(d.centres[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    x = d.sample(5000, gen())
    nearest, hq = d.assign(x)
    assert hq.float().mean() > 0.98
    assert len(torch.unique(nearest)) == 25
    assert abs(float((x - d.centres[nearest]).std()) - 0.05) < 0.005


def test_lines_assign_by_distance_to_segment():
    d = Lines()
    x = d.sample(2000, gen())
    nearest, hq = d.assign(x)
    assert hq.float().mean() > 0.99
    assert len(torch.unique(nearest)) == 5
    # a point beyond a segment's end is not high quality, a point on it is
    far = torch.tensor([[3.0, 0.0], [0.5, 0.0], [0.0, 0.5]])
    n, q = d.assign(far)
    assert q.tolist() == [False, True, False]
    assert n[1] == 2  # y = 0 is the third line


def test_spiral_segments_have_equal_mass():
    d = Spiral()
    x = d.sample(8000, gen())
    nearest, hq = d.assign(x)
    assert hq.float().mean() > 0.98
    share = torch.bincount(nearest, minlength=8).float() / 8000
    assert (share - 1 / 8).abs().max() < 0.03


def test_csv_points_and_bad_line(tmp_path):
    g = torch.Generator().manual_seed(1)
    pts = torch.cat([torch.randn(100, 2, generator=g) * 0.1 + c
                     for c in (torch.tensor([5.0, 5.0]), torch.tensor([-5.0, 5.0]),
                               torch.tensor([0.0, -5.0]))])
    good = tmp_path / "pts.csv"
    good.write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in pts.tolist()))
    cfg = make_config(dict(dataset="csv", data=str(good)))
    d = make_dataset(cfg)
    assert d.num_modes == 3  # chosen by silhouette
    nearest, hq = d.assign(d.sample(900, gen()))
    assert hq.float().mean() > 0.95
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,4\n5,oops\n")
    with pytest.raises(ConfigError, match="line 4"):
        read_points(bad)


def test_csv_needs_a_file():
    with pytest.raises(ConfigError) as e:
        make_config(dict(dataset="csv"))
    assert e.value.field == "data"


def test_digits_modes_are_classes(tmp_path):
    cfg = make_config(dict(dataset="digits"))
    d = make_dataset(cfg, tmp_path)
    assert d.dim == 64 and d.num_modes == 10
    assert d.test_accuracy > 0.9
    assert (tmp_path / "digits_classifier_v1.pt").is_file()
    x = d.sample(500, gen())
    assert x.min() >= -1 and x.max() <= 1
    cls, hq = d.assign(d.images[:300])
    assert (cls == d.labels[:300]).float().mean() > 0.9
    # cached: a second load reads the file and reports the same accuracy
    d2 = make_dataset(cfg, tmp_path)
    assert math.isclose(d2.test_accuracy, d.test_accuracy)
