"""Data first: a dataset's real samples and mode centres, before any run starts.

`GET /api/datasets/{name}/preview` answers with the binary real-samples message a run's
websocket sends after its hello (type 2, docs/protocol.md), carrying the dataset's description
(modes, centres, extent) in its JSON part, so the page draws the data the moment a dataset or a
preset is picked. Read-only: anyone who may watch may ask.

Each dataset's preview is built once (off the event loop: sampling is tensor work, and digits
loads scikit-learn's images) and kept; there are only a handful of datasets. The samples are the
ones a seed-0 run shows; another seed draws other points from the same distribution.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from collapse_lab.server import protocol
from collapse_lab.server.api_runs import ERRORS
from collapse_lab.trainer.run_knobs import DATASETS

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

PREVIEW_SEED = 0  # the seed whose real samples the preview shows (trainer.loop: seed + 1)
POINTS = 2500  # as many real points as a run's websocket sends
IMAGES = 64
USER_DATA = ("csv",)  # a user's own points: nothing to show before the file is given


def build_preview(name: str, data_dir: Path | None) -> bytes:
    """The type-2 message of dataset `name`: real samples, their modes, and the description."""
    import torch

    from collapse_lab.trainer.data import make_dataset
    from collapse_lab.trainer.families import make_config

    data = make_dataset(make_config({"dataset": name, "seed": PREVIEW_SEED}), data_dir)
    n = POINTS if data.kind == "2d" else IMAGES
    g = torch.Generator().manual_seed(PREVIEW_SEED + 1)  # as Trainer.real_samples draws them
    real = data.to_cpu_sample(n, g).numpy()
    modes = data.assign(torch.as_tensor(real))[0].numpy() if data.kind == "2d" else None
    return protocol.encode_real(real, modes, meta={"dataset": data.describe()})


class PreviewCache:
    """One preview per dataset, built once even when many viewers ask at the same moment.
    Names are checked against the registry before they get here, so it holds a handful."""

    def __init__(self, data_dir: Path | None):
        self.data_dir = data_dir
        self.done: dict[str, bytes] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def get(self, name: str) -> bytes:
        if name not in self.done:
            async with self.locks.setdefault(name, asyncio.Lock()):
                if name not in self.done:
                    self.done[name] = await asyncio.to_thread(build_preview, name,
                                                              self.data_dir)
        return self.done[name]


def _cache(request: Request) -> PreviewCache:
    st = request.app.state
    if getattr(st, "previews", None) is None:
        st.previews = PreviewCache(Path(st.settings.data_dir))
    return st.previews


@router.get("/{name}/preview", responses={**ERRORS, 200: {
    "content": {"application/octet-stream": {}},
    "description": "a real-samples message (type 2, docs/protocol.md) whose JSON part is "
                   "{\"dataset\": {name, kind, dim, num_modes, mode_names, centres, extent}}"}})
async def preview(request: Request, name: str) -> Response:
    """A dataset's real samples and mode centres, for the page to draw before a run starts."""
    if name in USER_DATA:
        raise HTTPException(404, f"dataset {name!r} has no preview: its points are your file")
    if name not in DATASETS:
        allowed = ", ".join(d for d in DATASETS if d not in USER_DATA)
        raise HTTPException(404, f"no dataset {name[:64]!r}; expected one of {allowed}")
    body = await _cache(request).get(name)
    return Response(body, media_type="application/octet-stream",
                    headers={"cache-control": "public, max-age=3600"})
