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


async def check_data(data_dir: Path | str, value: str) -> str:
    """resolve_data, then parse the file off the event loop (a bad file is refused now, with
    a 422 naming `data`, rather than failing later inside the worker)."""
    path = resolve_data(data_dir, value)
    await asyncio.to_thread(_check_points, path)
    return path
