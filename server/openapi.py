"""The OpenAPI document, made to say exactly what the server does.

FastAPI's generated document is close; this adds what it cannot know: the errors the guard
(server/guard.py) answers before any route runs (400 bad Host or body, 403 without the token,
408/413 for slow or large bodies), one 422 shape for body, query and path errors, the `device`
values this machine accepts, the token as a security scheme (on a token server), and links from
each created resource to the operations on it (what a client, or a stateful fuzzer, follows).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from collapse_lab.server.auth import OPEN_WRITES
from collapse_lab.server.devices import devices

CHANGING = ("post", "put", "patch", "delete")
ERROR = {"$ref": "#/components/schemas/ErrorOut"}
INVALID = {"$ref": "#/components/schemas/ValidationErrorOut"}

# created resource -> operations on it: (status, path, method) -> [(link, path, method, params)]
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, dict[str, str]]]] = {
    ("/api/runs", "post", "201"): [
        ("ReadRun", "/api/runs/{run_id}", "get", {"run_id": "$response.body#/id"}),
        ("ControlRun", "/api/runs/{run_id}/control", "post", {"run_id": "$response.body#/id"}),
        ("RunHistory", "/api/runs/{run_id}/history", "get", {"run_id": "$response.body#/id"}),
        ("RunReplay", "/api/runs/{run_id}/replay", "get", {"run_id": "$response.body#/id"}),
        ("DeleteRun", "/api/runs/{run_id}", "delete", {"run_id": "$response.body#/id"}),
    ],
    ("/api/compare", "post", "201"): [
        ("ReadGroup", "/api/compare/{group_id}", "get", {"group_id": "$response.body#/id"}),
        ("ControlGroup", "/api/compare/{group_id}/control", "post",
         {"group_id": "$response.body#/id"}),
        ("ExtendGroup", "/api/compare/{group_id}/runs", "post",
         {"group_id": "$response.body#/id"}),
        ("ReadFirstRun", "/api/runs/{run_id}", "get", {"run_id": "$response.body#/runs/0/id"}),
    ],
    ("/api/compare/{group_id}/runs", "post", "201"): [
        ("ReadGroup", "/api/compare/{group_id}", "get", {"group_id": "$response.body#/id"}),
    ],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def build(app: FastAPI, token: bool) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if token:
        # declared as the X-Collapse-Token header; `Authorization: Bearer TOKEN` is accepted
        # alike. A missing or wrong token is 403 (the server has no log-in to offer, so no 401)
        doc["components"]["securitySchemes"] = {
            "teacherToken": {"type": "apiKey", "in": "header", "name": "X-Collapse-Token",
                             "description": "the teacher token; `Authorization: Bearer TOKEN` "
                             "works the same"}}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            responses["400"] = _json(ERROR, "a Host this server does not answer to, or a body "
                                     "that cannot be read")
            if "parameters" in op or "requestBody" in op:
                responses["422"] = _json(INVALID, "a value the server refuses, named in `field`")
            if method in CHANGING:
                responses["403"] = _json(ERROR, "the server needs the teacher token, or the "
                                         "request came from a page of another origin")
                if token and path not in OPEN_WRITES:
                    op["security"] = [{"teacherToken": []}]
            if token:
                responses.setdefault("429", _json(ERROR, "too many wrong teacher tokens from "
                                                  "this address: wait Retry-After seconds"))
            if "requestBody" in op:
                responses["408"] = _json(ERROR, "the body arrived too slowly")
                responses["413"] = _json(ERROR, "the body is larger than the server takes")
            for (lpath, lmethod, status), links in LINKS.items():
                if (lpath, lmethod) == (path, method) and status in responses:
                    responses[status]["links"] = {
                        name: {"operationId": _op_id(doc, tpath, tmethod), "parameters": params}
                        for name, tpath, tmethod, params in links}
    # `device`: only what this machine has (a CPU-only server refuses "cuda" with 422)
    for name in ("RunCreate", "KnobsIn", "VariantIn"):
        dev = schemas.get(name, {}).get("properties", {}).get("device")
        if dev:
            _set_enum(dev, devices())
    return doc


def _op_id(doc: dict[str, Any], path: str, method: str) -> str:
    return str(doc["paths"][path][method]["operationId"])


def _set_enum(schema: dict[str, Any], values: list[str]) -> None:
    for branch in schema.get("anyOf", [schema]):
        if "enum" in branch:
            branch["enum"] = list(values)
        elif "const" in branch:
            pass


def install_openapi(app: FastAPI, token: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, token)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
