"""Each classroom attack of docs/operations.md's threat model, against a real `serve` with the
token and students allowed (and a local server without a token): bench/attacks.py, quick, must
find every one refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_every_attack_is_refused():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "attacks.py"), "--quick",
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=500,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert out.returncode in (0, 1), out.stderr[-3000:]
    assert len(results) >= 15, out.stderr[-3000:]
    missed = [r for r in results if not r["refused"]]
    assert not missed, missed
    assert {r["item"] for r in results} == {"1", "2", "3", "4", "5", "8", "10"}
