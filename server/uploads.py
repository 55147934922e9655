"""User data from the browser: a CSV of 2-D points (drawn blobs carry a mode column), stored under
DATA_DIR/uploads/ with a name the server chooses, for a run to train on (`dataset: csv`).

`POST /api/uploads` takes the CSV as the raw body (text/csv). The size is refused from the
Content-Length header before anything is read, and again while reading; the content is parsed by
the trainer's own reader (trainer/datasets.py: parse_points) with an upload's smaller limits; a
bad file gets a 4xx naming the line and nothing is written. A good one is rewritten in a normal
form (`x,y` or `x,y,mode` per line) to a fresh file.

Uploads belong to who sent them: the teacher's (and the local user's) go to the folder itself, a
student's to a private folder `uploads/students/<key>/` (the key is a signature of the student's
session, so no other student can name it) that only its owner and the teacher may train on. Each
owner keeps at most `upload_files` uploads and `upload_bytes` bytes: past either, their *own*
oldest uploads go (files placed by hand, whatever their name, never do). All uploads together
stay under `upload_total_bytes`, past which an upload is 413. Pruning tolerates a file that a
parallel upload pruned first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from collapse_lab.server.api_runs import own_folder
from collapse_lab.server.auth import require_start
from collapse_lab.server.datapaths import STUDENTS, uploads_dir
from collapse_lab.trainer.datasets import parse_points
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["uploads"])

MAX_BYTES = 1 << 20  # 1 MiB: 20,000 drawn points take about 400 KB
MAX_POINTS = 20_000
TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")


class UploadOut(BaseModel):
    path: str = Field(description="the file, relative to the server's uploads folder: pass it "
                      "as `data` with dataset csv")
    name: str
    points: int
    modes: int | None = Field(description="drawn modes (the mode column), or none: k-means")
    bytes: int


def upload_dir(request: Request) -> Path:
    return uploads_dir(request.app.state.settings.data_dir)


async def read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "content-length: not a number")
        if int(declared) > MAX_BYTES:
            raise HTTPException(413, f"body: {int(declared):,} bytes; an upload holds at most "
                                f"{MAX_BYTES:,} bytes ({MAX_POINTS:,} points)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise HTTPException(413, f"body: more than {MAX_BYTES:,} bytes; an upload holds at "
                                f"most {MAX_BYTES:,} bytes ({MAX_POINTS:,} points)")
        chunks.append(chunk)
    return b"".join(chunks)


_NAMED = re.compile(r"^[0-9a-f]{16}\.csv$")  # the names the server chooses
_lock = threading.Lock()  # one upload at a time counts, writes and prunes


def _sizes(folder: Path) -> list[tuple[float, int, Path]]:
    """(mtime, bytes, path) of the uploads the server named in `folder`, oldest first; a file
    gone meanwhile is skipped."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for e in entries:
        if not _NAMED.match(e.name):
            continue
        try:
            st = e.stat()
        except FileNotFoundError:
            continue
        out.append((st.st_mtime, st.st_size, Path(e.path)))
    return sorted(out)


def _total(root: Path) -> int:
    total = sum(b for _, b, _ in _sizes(root))
    students = root / STUDENTS
    if students.is_dir():
        for d in students.iterdir():
            total += sum(b for _, b, _ in _sizes(d))
    return total


class Full(Exception):
    pass


def _store(folder: Path, points: np.ndarray, labels: np.ndarray | None, files: int,
           max_bytes: int, total_bytes: int) -> Path:
    rows = (f"{x:.6g},{y:.6g}" for x, y in points.tolist()) if labels is None else \
        (f"{x:.6g},{y:.6g},{m}" for (x, y), m in zip(points.tolist(), labels.tolist()))
    head = "x,y" if labels is None else "x,y,mode"
    text = (head + "\n" + "\n".join(rows) + "\n").encode()
    root = folder if folder.parent.name != STUDENTS else folder.parent.parent
    with _lock:
        # the owner's own oldest first, to fit their quota; then the server's total
        mine = _sizes(folder)
        while mine and (len(mine) + 1 > files or sum(b for _, b, _ in mine) + len(text)
                        > max_bytes):
            mine.pop(0)[2].unlink(missing_ok=True)
        if _total(root) + len(text) > total_bytes:
            raise Full
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{secrets.token_hex(8)}.csv"
        tmp = path.with_suffix(".part")
        try:
            tmp.write_bytes(text)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk cut it short: no half file stays
            raise
        os.replace(tmp, path)  # whole or not at all
    return path


@router.post("/uploads", response_model=UploadOut, status_code=201, responses={
    413: {"description": "too large"}, 415: {"description": "not a CSV"},
    507: {"description": "the disk is full"},
    422: {"description": "not 2-D points (the line and what was expected)"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string", "maxLength": MAX_BYTES}}}}})
async def upload(request: Request) -> UploadOut:
    """Store a CSV of 2-D points (`x,y`, or `x,y,mode` for drawn blobs) to train on, in the
    sender's own uploads (private to them and the teacher)."""
    require_start(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in TYPES:
        raise HTTPException(415, f"content-type: expected text/csv, got {ctype or 'none'!r}")
    body = await read_capped(request)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "body: not UTF-8 text; expected a CSV of x,y rows") from None
    try:
        points, labels = parse_points(text.splitlines(), "upload", MAX_POINTS)
    except ConfigError as e:
        raise HTTPException(422, e.message.replace("upload line", "line")) from None
    st = request.app.state.settings
    root = upload_dir(request)
    folder = own_folder(request) or root
    try:
        path = await asyncio.to_thread(_store, folder, points, labels, st.upload_files,
                                       st.upload_bytes, st.upload_total_bytes)
    except Full:
        raise HTTPException(413, f"uploads: the server keeps at most "
                            f"{st.upload_total_bytes:,} bytes of uploads (upload_total_bytes) "
                            "and they are full; ask the teacher to make room") from None
    except OSError as e:
        from collapse_lab.server.diskspace import disk_full_message, is_disk_full

        if not is_disk_full(e, folder):
            raise
        raise HTTPException(507, disk_full_message(folder, "the upload was not stored")) \
            from None
    modes = None if labels is None else len(np.unique(labels))
    out: dict[str, Any] = dict(path=path.relative_to(root).as_posix(), name=path.name,
                               points=len(points), modes=modes, bytes=len(body))
    return UploadOut(**out)
