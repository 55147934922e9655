"""User data from the browser: a CSV of 2-D points (drawn blobs carry a mode column), stored under
DATA_DIR/uploads/ with a name the server chooses, for a run to train on (`dataset: csv`).

`POST /api/uploads` takes the CSV as the raw body (text/csv). The size is refused from the
Content-Length header before anything is read, and again while reading; the content is parsed by
the trainer's own reader (trainer/datasets.py: parse_points) with an upload's smaller limits; a
bad file gets a 4xx naming the line and nothing is written. A good one is rewritten in a normal
form (`x,y` or `x,y,mode` per line) to a fresh file; the oldest uploads beyond `MAX_FILES` go.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from collapse_lab.server.auth import require_start
from collapse_lab.server.datapaths import uploads_dir
from collapse_lab.trainer.datasets import parse_points
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["uploads"])

MAX_BYTES = 1 << 20  # 1 MiB: 20,000 drawn points take about 400 KB
MAX_POINTS = 20_000
MAX_FILES = 200
TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")


class UploadOut(BaseModel):
    path: str = Field(description="the file on the server: pass it as `data` with dataset csv")
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


def _store(folder: Path, points: np.ndarray, labels: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(8)}.csv"
    rows = (f"{x:.6g},{y:.6g}" for x, y in points.tolist()) if labels is None else \
        (f"{x:.6g},{y:.6g},{m}" for (x, y), m in zip(points.tolist(), labels.tolist()))
    head = "x,y" if labels is None else "x,y,mode"
    tmp = path.with_suffix(".part")
    tmp.write_text(head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # whole or not at all
    old = sorted(folder.glob("*.csv"), key=lambda p: p.stat().st_mtime)
    for p in old[:-MAX_FILES]:
        p.unlink(missing_ok=True)
    return path


@router.post("/uploads", response_model=UploadOut, status_code=201, responses={
    413: {"description": "too large"}, 415: {"description": "not a CSV"},
    422: {"description": "not 2-D points (the line and what was expected)"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string", "maxLength": MAX_BYTES}}}}})
async def upload(request: Request) -> UploadOut:
    """Store a CSV of 2-D points (`x,y`, or `x,y,mode` for drawn blobs) to train on."""
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
    path = await asyncio.to_thread(_store, upload_dir(request), points, labels)
    modes = None if labels is None else len(np.unique(labels))
    out: dict[str, Any] = dict(path=str(path), name=path.name, points=len(points), modes=modes,
                               bytes=len(body))
    return UploadOut(**out)
