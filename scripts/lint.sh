#!/usr/bin/env bash
# Static checks: ruff over the tree, mypy over the server, the trainer (every family) and the
# tracking client. Run from anywhere inside the project's virtual environment.
#
# The import package `collapse_lab` maps its subpackages onto the top-level folders
# (pyproject.toml: package-dir), which type checkers cannot follow; mypy reads it through a folder
# of symlinks laid out as the installed package is. Editors: docs/architecture.md, "Editors".
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
mkdir "$shadow/collapse_lab"
for d in server trainer frontend; do ln -s "$PWD/$d" "$shadow/collapse_lab/$d"; done
for f in collapse_lab/*.py; do ln -s "$PWD/$f" "$shadow/$f"; done
MYPYPATH="$shadow" mypy --cache-dir .mypy_cache -p collapse_lab.server -p collapse_lab.trainer \
  -m collapse_lab.tracking
