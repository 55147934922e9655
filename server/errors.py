"""Every error the API answers, in one shape: `{"detail", "field"}`, and for 422 also `errors`.

Validation errors name the field the way a person wrote it (`lr_g`, `variants[1].lr_g`, `since`)
and, for a knob, say what the knob accepts in the registry's words
(trainer/registry.py), so the
API, the CLI and the page speak alike.
"""

from __future__ import annotations

from typing import Any

from collapse_lab.server.models import SHARED
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import allowed, knobs

_KNOBS = {k["name"] for k in knobs()}


def field_of(loc: tuple | list) -> str:
    parts: list[str] = []
    for p in loc:
        if p in ("body", "query", "path"):
            continue
        if isinstance(p, int):
            if parts:
                parts[-1] += f"[{p}]"
            continue  # a position in the JSON text, not a field
        parts.append(str(p))
    if len(parts) > 1 and parts[0] in ("action", "set"):
        parts = parts[1:]  # the control union's tag ("action"/"set") is noise for a person
    if len(parts) > 1 and parts[0] == "set":
        parts = parts[1:]  # {"set": {"lr_g": …}}: the knob is the field
    return ".".join(parts) or "body"


def short(v: Any) -> str:
    """A refused value in a few words (never the repr of a 10,000-item list)."""
    if isinstance(v, list):
        return f"a list of {len(v)} items"
    if isinstance(v, dict):
        return f"an object with {len(v)} keys"
    if isinstance(v, str) and len(v) > 60:
        return repr(v[:57] + "...")
    return repr(v)[:60]


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    knob = str(err["loc"][-1]) if err.get("loc") else ""
    if kind == "extra_forbidden":
        if knob in SHARED and any(str(p).startswith("variant") for p in err.get("loc", ())):
            return "runs of a compare group share dataset, data and seed; put it in base"
        if knob in ("preset", "label") and any(str(p).startswith("variant")
                                               for p in err.get("loc", ())):
            return "a variant holds knobs only; put a preset in base"
        return "unknown field (see GET /api/options for every knob)"
    if kind == "json_invalid":
        return "the body is not valid JSON"
    if knob == "preset" and kind == "literal_error":
        from collapse_lab.trainer.registry import PRESETS

        return (f"unknown preset {short(err.get('input'))}; expected one of "
                + ", ".join(PRESETS))
    if knob in _KNOBS and kind not in ("missing",):
        return f"expected {allowed(knob)}, got {short(err.get('input'))}"
    return str(err.get("msg", "invalid value"))


def validation_body(errs: list[dict[str, Any]]) -> dict[str, Any]:
    """The 422 body of a pydantic ValidationError's errors()."""
    if not errs:
        errs = [{"loc": (), "msg": "invalid request"}]
    listed = [{"field": field_of(e.get("loc", ())), "message": _message(e)} for e in errs[:20]]
    first = listed[0]
    return {"detail": f"{first['field']}: {first['message']}", "field": first["field"],
            "errors": listed}


def config_body(exc: ConfigError) -> dict[str, Any]:
    return {"detail": str(exc), "field": exc.field,
            "errors": [{"field": exc.field, "message": exc.message}]}
