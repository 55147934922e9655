"""The OpenAPI document is the truth: schemathesis, with every check and its stateful phase
(following the document's links from a created run or group to the operations on it), finds no
request where the server's answer disagrees with its document. A bounded run, so drift fails the
suite; `scripts/fuzz_api.sh` runs the long version (thousands of requests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_hardening import Serve

pytestmark = [pytest.mark.server, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fuzz-token-12345"


def schemathesis_cli() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    return [str(exe)] if exe.exists() else [shutil.which("schemathesis") or "schemathesis"]


def test_schemathesis_finds_no_disagreement(tmp_path, monkeypatch):
    pytest.importorskip("schemathesis")
    monkeypatch.setenv("COLLAPSE_LAB_MAX_QUEUED", "3")  # most starts are 429: few workers
    srv = Serve(tmp_path / "data", "--token", TOKEN, "--max-workers", "1")
    try:
        out = subprocess.run(
            [*schemathesis_cli(), "run", f"{srv.url}/openapi.json", "--checks", "all",
             "--max-examples", "3", "--seed", "1", "--generation-database", "none",
             "-H", f"X-Collapse-Token: {TOKEN}", "--no-color", "--request-timeout", "30",
             # rotating the token would lock the fuzzer out (tests/test_auth.py tests rotation)
             "--exclude-path", "/api/class/rotate"],
            cwd=ROOT, capture_output=True, text=True, timeout=500,
            env=dict(os.environ, SCHEMATHESIS_HOOKS=""))
    finally:
        srv.stop()
    tail = out.stdout[-6000:]
    assert out.returncode == 0, tail
    assert "Stateful" in tail and " passed" in tail and "failed" not in tail.split(
        "SUMMARY")[-1], tail
