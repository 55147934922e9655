"""Before `serve` starts: is the data dir usable? One clear line naming the file and what to do,
instead of a traceback from inside the server's start-up.

Checked: the folder can be created and written to, `runs.sqlite3` is an SQLite database that
passes `PRAGMA quick_check` (a truncated file or a garbage header fails it), and it can be
written (a read-only file or file system fails here rather than on the first run).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from collapse_lab.server.store import SCHEMA

ASIDE = "move it aside (mv {f} {f}.broken) to start with an empty store, or use --data-dir DIR"


def problem(data_dir: Path, db: Path) -> str | None:
    """What stops the server from using `data_dir`, in one line; None when it is fine."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return (f"cannot create the data dir {data_dir}: {e.strerror}; create it or use "
                "--data-dir DIR")
    probe = data_dir / f".collapse-lab-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return (f"the data dir {data_dir} is not writable ({e.strerror}); make it writable "
                "or use --data-dir DIR")
    if db.exists() and not db.is_file():
        return f"{db} is not a file; {ASIDE.format(f=db)}"
    try:
        conn = sqlite3.connect(db, timeout=10)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                detail = "; ".join(str(r[0]) for r in rows[:3])
                return f"{db} is damaged ({detail[:200]}); {ASIDE.format(f=db)}"
            conn.executescript(SCHEMA)  # also proves it can be written
            conn.commit()
        finally:
            conn.close()
    except sqlite3.OperationalError as e:
        text = str(e)
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return (f"{db} cannot be written ({text}); make the data dir and the file "
                    "writable, or use --data-dir DIR")
        if "locked" in text:
            return (f"{db} is locked by another process ({text}); stop the other server "
                    "or use --data-dir DIR")
        return f"{db} is damaged or not a Collapse Lab store ({text}); {ASIDE.format(f=db)}"
    except sqlite3.DatabaseError as e:
        return f"{db} is damaged or not an SQLite database ({e}); {ASIDE.format(f=db)}"
    return None
