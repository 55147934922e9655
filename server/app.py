"""The FastAPI application: `create_app(settings)` wires the store, the supervisor and the routers.

Nothing is read or started at import; the lifespan opens the store, marks runs left active by a
dead server as interrupted, and on shutdown stops every worker (stop → terminate → kill).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from collapse_lab.server import api_compare, api_datasets, api_meta, api_runs, ws
from collapse_lab.server.settings import Settings
from collapse_lab.server.store import Store
from collapse_lab.server.supervisor import Conflict, Supervisor, project_version
from collapse_lab.trainer.config import ConfigError

log = logging.getLogger(__name__)


def frontend_dir() -> Path:
    """The static files, as installed package data (a wheel or an editable checkout)."""
    from importlib.resources import files

    return Path(str(files("collapse_lab.frontend")))


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def effective_token(settings: Settings) -> str | None:
    """The configured token; off loopback without one, a fresh token (never an open server)."""
    if settings.token:
        return settings.token
    if settings.is_loopback():
        return None
    return secrets.token_urlsafe(18)


def _field_of(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    if len(parts) > 1 and parts[0] in ("action", "set"):
        parts = parts[1:]  # the control union's tag ("action"/"set") is noise for a person
    return ".".join(parts) or "body"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_path, settings.max_snapshots)
        sup = Supervisor(settings, store)
        await sup.start()
        app.state.sup = sup
        app.state.started = time.time()
        try:
            yield
        finally:
            await sup.shutdown()
            store.close()

    app = FastAPI(title="Collapse Lab", version=project_version(), lifespan=lifespan,
                  description="Watch GAN mode collapse live, steer runs mid-training, compare "
                  "them side by side. Websocket: /ws/runs/{id} (docs/protocol.md).")
    app.state.settings = settings
    app.state.token = effective_token(settings)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        field = _field_of(tuple(first["loc"]))
        msg = first["msg"]
        if first.get("type") == "extra_forbidden":
            msg = "unknown field (see GET /api/options for every knob)"
        return JSONResponse({"detail": f"{field}: {msg}", "field": field,
                             "errors": [{"field": _field_of(tuple(e["loc"])), "message": e["msg"]}
                                        for e in errs[:20]]}, status_code=422)

    @app.exception_handler(ConfigError)
    async def bad_config(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": None}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "field": None}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    app.include_router(api_meta.router)
    app.include_router(api_runs.router)
    app.include_router(api_compare.router)
    app.include_router(api_datasets.router)
    app.include_router(ws.router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    # the dashboard last, so /api, /ws and /docs win
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True), name="frontend")
    return app
