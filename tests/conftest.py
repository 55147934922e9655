"""Shared fixtures. Tests run on CPU with one torch thread so they are fast and repeatable."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_sessionstart(session):
    """A strict editable install that predates a module stops the run here, naming the fix,
    instead of failing tests one by one with an import error (scripts/check_install.py)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "check_install.py"
    check = runpy.run_path(str(script))
    problems = check["problems"]()
    if problems:
        raise pytest.UsageError("\n".join(problems))


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
