"""The FastAPI application: `create_app(settings)` wires the store, the supervisor and the routers.

Nothing is read or started at import; the lifespan opens the store, marks runs left active by a
dead server as interrupted, and on shutdown stops every worker (stop → terminate → kill).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from collapse_lab.server import (
    api_class,
    api_compare,
    api_datasets,
    api_estimate,
    api_meta,
    api_runs,
    api_track,
    classroom,
    lessons,
    uploads,
    ws,
)
from collapse_lab.server.auth import set_session_cookie, slow_down, token_attempt, token_matches
from collapse_lab.server.dispatch import project_version
from collapse_lab.server.errors import config_body, validation_body
from collapse_lab.server.guard import Guard, HostCheck
from collapse_lab.server.identity import Identity
from collapse_lab.server.openapi import install_openapi
from collapse_lab.server.settings import Settings
from collapse_lab.server.store import Store
from collapse_lab.server.supervisor import Conflict, Supervisor
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)


def frontend_dir() -> Path:
    """The static files, as installed package data (a wheel or an editable checkout): the real
    folder, since a strict editable install's link tree holds symlinks that the static server
    refuses (they lead out of the folder it serves) and only the files present at install."""
    from importlib.resources import files

    return Path(str(files("collapse_lab.frontend") / "index.html")).resolve().parent


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


# plotly.js (3.x and later) adds the stylesheet of its map traces (maplibre) as an inline <style>
# when it loads, unless an element with that stylesheet's id is already in the document
_SELF_STYLED = re.compile(r'getElementById\("([0-9a-f]{16,64})"\)\)\{var [\w$]+='
                          r'document\.createElement\("style"\)')
_style_guard: dict[Path, bytes] = {}


def plotly_style_guard(bundle: Path) -> bytes:
    """A script, run before plotly.js, that puts an empty placeholder in the document under the
    id of each stylesheet the bundle would inject into the page itself.

    The page draws no maps, and its Content-Security-Policy (server/guard.py) refuses inline
    stylesheets: without the placeholders the browser refuses plotly's and logs a CSP error on
    every page load. The ids are read from the installed bundle, so another plotly version
    brings its own (none for plotly.js 2.x, which injects nothing)."""
    if bundle not in _style_guard:
        ids = sorted(set(_SELF_STYLED.findall(bundle.read_text(encoding="utf-8",
                                                                errors="replace"))))
        _style_guard[bundle] = (
            "// plotly.js's own stylesheets the page does not use (map traces): marked present\n"
            f"for (const id of {json.dumps(ids)}) {{\n"
            "  if (!document.getElementById(id)) {\n"
            "    const m = document.createElement(\"meta\");\n"
            "    m.id = id;\n"
            "    document.head.append(m);\n"
            "  }\n"
            "}\n").encode()
    return _style_guard[bundle]


def effective_token(settings: Settings) -> str | None:
    """The configured token; off loopback without one, a fresh token (never an open server)."""
    if settings.token:
        return settings.token
    if settings.is_loopback():
        return None
    return secrets.token_urlsafe(18)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_path, settings.max_snapshots, settings.max_ticks)
        await asyncio.to_thread(app.state.identity.attach, store, settings.db_path)
        sup = Supervisor(settings, store)
        await sup.start()
        app.state.sup = sup
        app.state.tracker = sup.tracker = api_track.Tracker(sup)
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
    app.state.identity = Identity(settings.data_dir, settings.sessions_per_address)
    app.state.classroom = classroom.Classroom(
        max_members=settings.max_class, max_text=settings.viewer_queue,
        students_may_run=settings.students_may_run, student_cap=settings.student_cap)
    app.add_middleware(HeadAsGet)
    # outermost: Host, auth and size are settled before anything reads the request
    app.add_middleware(Guard, hosts=HostCheck(settings.allowed_hosts),
                       max_body=settings.max_body, max_json_body=settings.max_json_body,
                       body_timeout=settings.body_timeout)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body([dict(x) for x in exc.errors()]), status_code=422)

    @app.exception_handler(ConfigError)
    async def bad_config(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(config_body(exc), status_code=422)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": None}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
        status = exc.status_code
        if status == 404 and request.url.path.startswith("/api/"):
            # a GET to a POST-only route falls through to the dashboard's static files, which
            # know nothing of it: the path exists, the method does not
            served = allowed_methods(app, request.url.path)
            if request.method not in served and served - {"OPTIONS"}:
                status = 405
        if status == 405:
            methods = allowed_methods(app, request.url.path)
            headers["allow"] = ", ".join(sorted(methods))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=headers)
            detail = f"{request.method} is not allowed here; allowed: {headers['allow']}"
        else:
            detail = exc.detail
        return JSONResponse({"detail": detail, "field": None}, status_code=status,
                            headers=headers or None)

    app.include_router(api_meta.router)
    app.include_router(api_estimate.router)  # before /api/runs/{id}: its own path
    app.include_router(api_runs.router)
    app.include_router(api_compare.router)
    app.include_router(api_datasets.router)
    app.include_router(ws.router)
    app.include_router(api_track.router)
    app.include_router(api_class.router)
    app.include_router(classroom.router)
    app.include_router(uploads.router)
    app.include_router(lessons.router)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        """The dashboard. Opened with the teacher link (`/?token=…`), it trades the token for a
        session cookie and sends the browser to `/`, so the token leaves the address bar and the
        history; an old or wrong teacher link lands on `/?link=expired`, watch only."""
        given = request.query_params.get("token")
        if given is None:
            return FileResponse(frontend_dir() / "index.html",
                                headers={"cache-control": "no-cache"})
        headers = {"cache-control": "no-store"}  # Referrer-Policy: the Guard, on every reply
        token = app.state.token
        if not token:
            return RedirectResponse("/", 303, headers=headers)
        wait = token_attempt(request, given)
        if wait > 0:
            return JSONResponse({"detail": slow_down(wait), "field": None}, status_code=429,
                                headers={**headers, "retry-after": str(int(wait) + 1)})
        if not token_matches(given, token):
            return RedirectResponse("/?link=expired", 303, headers=headers)
        resp = RedirectResponse("/", 303, headers=headers)
        set_session_cookie(request, resp)
        return resp

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    @app.get("/vendor/plotly-styles.js", include_in_schema=False)
    async def plotly_styles() -> Response:
        return Response(plotly_style_guard(plotly_js()), media_type="text/javascript",
                        headers={"cache-control": "public, max-age=86400"})

    # the dashboard last, so /api, /ws and /docs win
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True), name="frontend")
    install_openapi(app, token=bool(app.state.token))
    return app


class HeadAsGet:
    """HEAD is answered as GET without its body (FastAPI's routes serve GET only, while `Allow`
    names HEAD wherever GET is): the same status and headers, Content-Length included."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Any) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method the API serves at `path`, as its OpenAPI document says (Starlette's 405
    names only the methods of the first route that matched the path)."""
    table = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            regex = re.compile(f"^{pattern}$")
            table.append((regex, "{" not in template, {m.upper() for m in item}))
        app.state.method_table = table
    # a path written out in the document (/api/runs/stop) is that path's, not also a template's
    # (/api/runs/{run_id}) that happens to match it
    matches = [(literal, ms) for regex, literal, ms in table if regex.match(path)]
    if any(literal for literal, _ in matches):
        matches = [(literal, ms) for literal, ms in matches if literal]
    methods = {"OPTIONS"}
    for _, ms in matches:
        methods |= ms
    if "GET" in methods:
        methods.add("HEAD")
    return methods
