"""The token never reaches a log line: a filter on every handler rewrites `token=…` in query
strings (uvicorn's access log records the full path) and `Bearer …` values to `[redacted]`."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

_QUERY = re.compile(r"\?([^\s\"'#]*)")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def _query(m: re.Match[str]) -> str:
    pairs = []
    for pair in m.group(1).split("&"):
        key, eq, _ = pair.partition("=")
        # the server reads `%74oken=` as `token=` too (query strings are percent-decoded)
        if eq and unquote_plus(key).strip().lower() == "token":
            pair = f"{key}=[redacted]"
        pairs.append(pair)
    return "?" + "&".join(pairs)


def redact(text: str) -> str:
    if "?" in text:
        text = _QUERY.sub(_query, text)
    return _BEARER.sub(lambda m: m.group(1) + "[redacted]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


def install() -> None:
    """Attach the filter to the loggers uvicorn writes to and to every handler in use (call
    after uvicorn has configured logging, i.e. after `uvicorn.Config(...)`)."""
    f = RedactTokens()
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "collapse_lab")
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(x, RedactTokens) for x in logger.filters):
            logger.addFilter(f)
        for h in logger.handlers:
            if not any(isinstance(x, RedactTokens) for x in h.filters):
                h.addFilter(f)
