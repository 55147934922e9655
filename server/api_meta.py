"""Health and options: what the server is and what a user may choose."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from collapse_lab.server import protocol
from collapse_lab.server.dispatch import project_version
from collapse_lab.server.models import HealthOut, OptionsOut

router = APIRouter(prefix="/api", tags=["meta"])


@router.get("/health", response_model=HealthOut)
async def health(request: Request) -> HealthOut:
    st = request.app.state
    return HealthOut(version=project_version(), protocol=protocol.VERSION,
                     uptime_s=round(time.time() - st.started, 3), runs=len(st.sup.runs),
                     active_workers=st.sup.active_workers(),
                     max_workers=st.settings.max_workers, token_required=bool(st.token),
                     disk_full=st.sup.store.disk_full)


@router.get("/options", response_model=OptionsOut)
def options() -> OptionsOut:
    """Datasets, objectives, remedies, presets and every knob (type, default, range, help)."""
    from collapse_lab.trainer.registry import options as registry_options

    return OptionsOut(**registry_options())
