"""Is the `collapse_lab` this interpreter imports the checkout's, complete?

A strict editable install (`pip install -e . --config-settings editable_mode=strict`, what CI and
the README's test command use) serves the package from a tree of links that setuptools builds
under build/ at install time: a module added since is missing from it until the install is run
again. This finds such modules, so `import` fails here with the fix named instead of deep inside a
test. With `--mypy` it also refuses an install that type checkers cannot follow (a plain `-e`
install serves the mapping through an import hook). Why: docs/architecture.md, "Type checking and
editors".

    python scripts/check_install.py [--mypy]      # exit 1 and say what to run when it is not
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SUBPACKAGES = ("collapse_lab.server", "collapse_lab.trainer", "collapse_lab.frontend")
FIX = ("run `pip install --no-deps -e . --config-settings editable_mode=strict` in the "
       "checkout (seconds)")


def problems(*, mypy: bool = False) -> list[str]:
    """What is wrong with the installed package, one line each (empty: nothing)."""
    out = []
    for name in SUBPACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            out.append(f"{name} is not installed: {FIX}")
            continue
        init = Path(spec.origin)
        if init.parent.parent.name != "collapse_lab":
            # a plain editable install: the folder itself, through setuptools' import hook
            if mypy:
                out.append(f"{name} is installed through an import hook that mypy and editors "
                           f"cannot follow: {FIX}")
            continue
        src = init.resolve().parent
        if src == init.parent:
            continue  # a wheel: a copy, complete by construction
        missing = sorted(str(p.relative_to(src.parent)) for p in src.rglob("*.py")
                         if "__pycache__" not in p.parts
                         and not (init.parent / p.relative_to(src)).exists())
        if missing:
            out.append(f"{len(missing)} module(s) added since the install are missing from "
                       f"{name} ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})"
                       f": {FIX}")
    return out


if __name__ == "__main__":
    found = problems(mypy="--mypy" in sys.argv[1:])
    for line in found:
        print(line, file=sys.stderr)
    sys.exit(1 if found else 0)
