"""Which data files a run started over the network may read: only files in `DATA_DIR/uploads/`.

A run config's `data` names a CSV of points. Over HTTP and the websocket it may only name a file
in the uploads folder — a bare file name (`points.csv`) or a relative path inside the folder
(`class-3/points.csv`). Absolute paths, `..` and symlinks that lead out are refused with one
message that never depends on whether the path exists, and a file that does not parse is
refused without quoting its contents. An absolute path that already lies inside the folder (what
`GET /api/runs/{id}` shows, so a run's config can be sent back to clone it) is accepted.

`collapse-lab train --data FILE` does not come through here: a local user may train on any file
they can read, since that command faces no network.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from collapse_lab.trainer.knobs import ConfigError

UPLOADS = "uploads"
WHERE = ("name a CSV file in the server's uploads folder (a file name such as points.csv, "
         "or a path inside that folder); absolute paths and '..' are not allowed")


def uploads_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / UPLOADS


def resolve_data(data_dir: Path | str, value: str) -> str:
    """The absolute path of the uploaded file `value` names; ConfigError('data') otherwise.

    Nothing outside the folder is touched on the way: the name is checked as text first, so
    the answer for `/etc/shadow` and for `/no/such/file` is the same.
    """
    root = Path(os.path.abspath(uploads_dir(data_dir)))
    if not isinstance(value, str) or not value or len(value) > 4096 or "\x00" in value:
        raise ConfigError("data", WHERE)
    text = value.replace("\\", "/")
    p = PurePosixPath(text)
    if p.is_absolute():
        try:
            p = PurePosixPath(os.path.normpath(text)).relative_to(root.as_posix())
        except ValueError:
            raise ConfigError("data", WHERE) from None
        if ".." in PurePosixPath(text).parts:
            raise ConfigError("data", WHERE)
    if ".." in p.parts or re.match(r"^[A-Za-z]:", text) or not p.parts:
        raise ConfigError("data", WHERE)
    target = root.joinpath(*p.parts)
    try:
        real = target.resolve(strict=False)
        real.relative_to(root.resolve(strict=False))
    except (ValueError, OSError, RuntimeError):
        raise ConfigError("data", WHERE) from None  # a symlink that leads out
    if not real.is_file():
        raise ConfigError("data", f"no file {p.as_posix()!r} in the uploads folder; {WHERE}")
    return str(real)


def _check_points(path: str) -> None:
    from collapse_lab.trainer.datasets import read_points

    try:
        read_points(path)
    except ConfigError as e:
        # say what is wrong and where, never what the file holds
        msg = re.sub(r",? got (['\"]).*$", "", e.message)
        raise ConfigError("data", msg) from None
    except (OSError, UnicodeError):
        raise ConfigError("data", f"cannot read {Path(path).name}") from None


async def check_data(data_dir: Path | str, value: str, own: Path | None = None) -> str:
    """resolve_data, then parse the file off the event loop (a bad file is refused now, with
    a 422 naming `data`, rather than failing later inside the worker). `own`: a student's
    folder; another student's file is refused as if it were not there."""
    path = resolve_data(data_dir, value)
    if not readable_by(data_dir, path, own):
        raise ConfigError("data", f"no file {Path(path).name!r} in your uploads; {WHERE}")
    await asyncio.to_thread(_check_points, path)
    return path


# ---------------------------------------------------------------------------- owners' folders
STUDENTS = "students"  # uploads/students/<key>/: one private folder per student


def student_folder(data_dir: Path | str, key: str) -> Path:
    return uploads_dir(data_dir) / STUDENTS / key


def readable_by(data_dir: Path | str, path: str, own: Path | None) -> bool:
    """May an owner whose own folder is `own` (None: the teacher, who reads every file) train
    on the resolved upload `path`? A student reads their own folder and the teacher's files,
    never another student's."""
    if own is None:
        return True
    p = Path(path)
    private = Path(os.path.abspath(uploads_dir(data_dir) / STUDENTS)).resolve()
    return not p.is_relative_to(private) or p.is_relative_to(own.resolve())


def shown_path(data_dir: Path | str, value: Any, full: bool) -> Any:
    """A run's `data` as a client sees it: relative to the uploads folder (the server's own
    paths are nobody's business), and a student's private file by its bare name except to its
    owner and the teacher (`full`)."""
    if not isinstance(value, str) or not value:
        return value
    root = Path(os.path.abspath(uploads_dir(data_dir)))
    p = Path(value)
    try:
        rel = p.relative_to(root) if p.is_absolute() else p
    except ValueError:
        return p.name  # a local file of `collapse-lab train`'s kind: its name only
    if rel.parts[:1] == (STUDENTS,) and not full:
        return rel.name
    return rel.as_posix()
