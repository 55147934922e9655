#!/usr/bin/env bash
# The whole test suite: Python tests (trainer, API, real server, real browser) and the frontend's
# node tests. Run from the repository root inside the project's virtual environment.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
if compgen -G "frontend/test/*.test.mjs" >/dev/null; then
  node --test frontend/test/ || rc=$?
fi
python -m pytest "$@"
prc=$?
# pytest's 5 means "no tests collected"; anything else non-zero is a failure
if [ "$prc" != 0 ] && [ "$prc" != 5 ]; then rc=$prc; fi
exit $rc
