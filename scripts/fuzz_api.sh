#!/usr/bin/env bash
# The long API fuzz: a real token server (one worker, a short queue) and schemathesis with every
# check and its stateful phase. Prints schemathesis' summary; exits non-zero on any failure.
#   bash scripts/fuzz_api.sh [MAX_EXAMPLES (default 50)] [more schemathesis options]
# Run from the repository root inside the project's virtual environment.
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
shift || true
data=$(mktemp -d)
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
token=fuzz-$(python -c "import secrets; print(secrets.token_hex(8))")
COLLAPSE_LAB_MAX_QUEUED=3 COLLAPSE_LAB_WORKER_THREADS=1 OMP_NUM_THREADS=1 \
  python -m collapse_lab.server.cli serve --port "$port" --data-dir "$data" --max-workers 1 \
  --token "$token" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 300); do
  python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/health')" \
    2>/dev/null && break
  sleep 0.2
done
schemathesis run "http://127.0.0.1:$port/openapi.json" --checks all --max-examples "$n" \
  --seed 1 --generation-database none -H "X-Collapse-Token: $token" --no-color \
  --exclude-path /api/class/rotate "$@"  # a rotated token would lock the fuzzer out
