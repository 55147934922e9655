"""Collapse Lab: watch mode collapse live, and steer the run.

`collapse_lab.track(...)` streams a training loop of your own into the dashboard
(docs/tracking.md); the rest of the package is its subpackages `server`, `trainer` and
`frontend`. Importing this package loads nothing else.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import Any

__all__ = ["track"]

# Run from the checkout's root (`python -m pytest`), Python finds this folder first, which holds
# none of the subpackages: they are wherever the install put them (a strict editable install's
# link tree, a wheel in site-packages; docs/architecture.md, "Type checking and editors").
__path__ = extend_path(__path__, __name__)


def track(target: str, *args: Any, **kwargs: Any) -> Any:
    """A tracked run on a Collapse Lab server (`http://host:port`) or in a data folder; see
    `collapse_lab.tracking.track`."""
    from collapse_lab.tracking import track as _track

    return _track(target, *args, **kwargs)
