#!/usr/bin/env bash
# Static checks: ruff over the tree, mypy over the server, the trainer (every family) and the
# tracking client. Run from anywhere inside the project's virtual environment.
#
# mypy finds `collapse_lab` where Python does: the project must be installed in setuptools' strict
# editable mode (`pip install -e '.[test,ray,lightning]' --config-settings editable_mode=strict`,
# as CI and the README do), whose link tree under build/ type checkers and editors follow. Its
# reports name the checkout's files. Why: docs/architecture.md, "Type checking and editors".
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
python scripts/check_install.py --mypy
mypy --cache-dir .mypy_cache -p collapse_lab.server -p collapse_lab.trainer -m collapse_lab.tracking \
  2>&1 | python -c '
import os, re, sys
for line in sys.stdin:  # a path in the link tree -> the file it links to, relative to the checkout
    m = re.match(r"([^:\s]+\.pyi?)(:.*)", line, re.S)
    sys.stdout.write(os.path.relpath(os.path.realpath(m[1])) + m[2]
                     if m and os.path.exists(m[1]) else line)'
