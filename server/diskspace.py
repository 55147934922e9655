"""A full disk, told apart from other write failures and said in words.

torch reports a checkpoint that could not be written as "[enforce fail at inline_container.cc]
... file write failed", SQLite as "database or disk is full", Python as ENOSPC: all three mean
the same to a teacher, who needs the words "disk full" and the folder to clear, not a trace.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

# below this many free bytes a failed write is put down to the disk (a checkpoint of the largest
# networks the knobs allow is a few MiB; the store writes a few KiB at a time)
LOW_FREE = 16 << 20
FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system holding `folder` (its nearest existing parent)."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """Did `exc`, raised while writing under `folder`, come from a full disk (or quota)?"""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
        return True
    free = free_bytes(folder)
    return free is not None and free < LOW_FREE


def disk_full_message(folder: Path, what: str) -> str:
    free = free_bytes(folder)
    left = f"{free / (1 << 20):.1f} MiB free" if free is not None else "no space left"
    return f"disk full: {what} ({left} under {folder}); free some space, then resume"
