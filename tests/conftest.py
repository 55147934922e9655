"""Shared fixtures. Tests run on CPU with one torch thread so they are fast and repeatable."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def small():
    """Knobs for a quick run: small networks and batches, CPU."""
    return dict(g_width=32, d_width=32, z_dim=4, batch_size=64, eval_samples=500, grid_size=16,
                tick_every=10, device="cpu")
