"""The manifold view's latent grid and G's image of it (trainer/manifold.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from collapse_lab.trainer import manifold
from collapse_lab.trainer.models import Generator


def test_latent_grid_layout():
    z = manifold.latent_grid(5, side=4, span=2.0)
    assert z.shape == (16, 5)
    ticks = [-2.0, -2 / 3, 2 / 3, 2.0]
    for r in range(4):
        for c in range(4):
            p = z[r * 4 + c]
            # z[0] along a row, z[1] down the rows (row 0 at −2σ), the rest 0
            assert p[0].item() == pytest.approx(ticks[c])
            assert p[1].item() == pytest.approx(ticks[r])
            assert p[2:].abs().max().item() == 0
    line = manifold.latent_grid(1, side=3)
    assert line.shape == (9, 1) and line[:3, 0].tolist() == line[3:6, 0].tolist()
    with pytest.raises(ValueError, match="at least 2"):
        manifold.latent_grid(2, side=1)


def test_notes_say_which_slice():
    assert manifold.note(16) == "z[0], z[1] over ±2σ, the other 14 of z fixed at 0"
    assert "whole latent plane" in manifold.note(2)
    assert "line" in manifold.note(1)


def test_manifold_is_g_of_each_grid_point_for_every_stacked_run():
    g = Generator(2, 3, 8, 2, 2, "relu", False, torch.Generator().manual_seed(0))
    with torch.no_grad():  # make the two runs differ
        g.layers[0].weight[1].mul_(-1.5)
    z = manifold.latent_grid(3, side=5)
    out = manifold.manifold(g, z, 5)
    assert out.shape == (2, 5, 5, 2) and out.dtype == np.float32
    with torch.no_grad():
        for run in range(2):
            for r, c in [(0, 0), (2, 3), (4, 4)]:
                point = z[r * 5 + c].expand(2, 1, 3)
                want = g(point)[run, 0].numpy()
                np.testing.assert_allclose(out[run, r, c], want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[0], out[1])
