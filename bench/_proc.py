"""Helpers the benches that start a real server share (run as `python bench/x.py`, so this
folder is on the import path)."""

from __future__ import annotations

import socket
from pathlib import Path


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (NaN where /proc does not say)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
