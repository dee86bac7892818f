#!/usr/bin/env bash
# Proves the OpenAPI document usable, not only valid: generates a Python
# client from the served /openapi.json with openapi-python-client (from PyPI,
# into target/api-venv) and runs the README story's main calls through it
# (.ci/api_client_story.py).
#
#   bash .ci/api-client.sh [path/to/aupd]
#
# The last line is `api client: N passed, M failed`; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

A=${1:-${AUPD_BIN:-target/debug/aupd}}
[ -x "$A" ] || { echo "no aupd binary at $A (cargo build first)" >&2; exit 2; }
VENV=target/api-venv
if ! "$VENV/bin/openapi-python-client" --version >/dev/null 2>&1; then
    # Missing, or installed in a venv copied from another path (its scripts
    # point at the old one): a fresh venv if its python does not run, and a
    # reinstall, which writes the scripts anew.
    "$VENV/bin/python" -c '' >/dev/null 2>&1 || { rm -rf "$VENV"; python3 -m venv "$VENV"; }
    "$VENV/bin/python" -m pip install -q --force-reinstall 'openapi-python-client>=0.28'
fi

WORK=$(mktemp -d)
SERVER_PID=""
finish() {
    status=$?
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ "$status" -ne 0 ]; then
        echo "--- aupd log (last 10 lines)"; tail -n 10 "$WORK/aupd.log" 2>/dev/null | cut -c1-300 || true
        grep -q '^api client:' "$WORK/story.log" 2>/dev/null || echo "api client: 0 passed, 1 failed"
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export AUPD__SERVER__BIND=127.0.0.1:$PORT
export AUPD__STORE__PATH=$WORK/store
export AUPD__POLICY__DIR=policies
export AUPD__SAMPLING__INTAKE_SAMPLE_RATE=1

ADMIN=$("$A" token create --role admin --name client-admin 2>/dev/null)
"$A" serve >"$WORK/aupd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$BASE/readyz" >/dev/null || { echo "aupd did not become ready"; exit 1; }

curl -sf "$BASE/openapi.json" >"$WORK/openapi.json"
GEN=$PWD/$VENV/bin/openapi-python-client
(cd "$WORK" && "$GEN" generate --path openapi.json --meta none --output-path aupd_client >gen.log 2>&1) ||
    { cat "$WORK/gen.log"; exit 1; }
PYTHONPATH=$WORK "$VENV/bin/python" .ci/api_client_story.py "$BASE" "$ADMIN" docs/examples/posts.json 2>&1 | tee "$WORK/story.log"
exit "${PIPESTATUS[0]}"
