#!/usr/bin/env bash
# Fuzzes the served API against its own OpenAPI document with schemathesis:
# no 5xx, responses match their schemas and content types, and every status
# answered is documented. Operator routes run with an admin token, the tenant
# portal with a tenant token. Bounded by --max-examples and --max-time.
#
#   bash .ci/api-fuzz.sh [path/to/aupd]
#
# schemathesis is installed from PyPI into target/api-venv. The server runs on
# a temporary store and is stopped on exit. Exits non-zero on any failure;
# the last lines are schemathesis' own summaries and `api fuzz: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

A=${1:-${AUPD_BIN:-target/debug/aupd}}
[ -x "$A" ] || { echo "no aupd binary at $A (cargo build first)" >&2; exit 2; }
EXAMPLES=${AUPD_FUZZ_EXAMPLES:-10}
MAX_TIME=${AUPD_FUZZ_MAX_TIME:-40}
VENV=target/api-venv
if ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
    # Missing, or a venv copied from another path whose scripts point at the
    # old one: build it afresh.
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q 'schemathesis>=4,<5'
fi

WORK=$(mktemp -d)
SERVER_PID=""
passed=0
failed=0
finish() {
    status=$?
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
        echo "--- aupd log (errors)"; grep '"level":"ERROR"' "$WORK/aupd.log" 2>/dev/null | tail -n 20 | cut -c1-400 || true
    fi
    rm -rf "$WORK"
    echo "api fuzz: $passed passed, $failed failed"
    if [ "$failed" -ne 0 ] && [ "$status" -eq 0 ]; then status=1; fi
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

ADMIN=$("$A" token create --role admin --name fuzz-admin 2>/dev/null)
"$A" serve >"$WORK/aupd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$BASE/readyz" >/dev/null || { echo "aupd did not become ready"; exit 1; }

api() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' "$@"; }
api -d '{"id":"fuzz","name":"Fuzz tenant"}' "$BASE/v1/tenants" >/dev/null
token() { api -d "{\"role\":\"$1\",\"name\":\"$2\"}" "$BASE/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
TENANT=$(token tenant:fuzz fuzz-dashboard)
REPORTER=$(token reporter fuzz-reporter)

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
run() {
    local name=$1 token=$2
    shift 2
    echo "== schemathesis: $name"
    if "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
        --checks "$CHECKS" \
        --header "Authorization: Bearer $token" \
        --max-examples "$EXAMPLES" --max-time "$MAX_TIME" \
        --phases examples,coverage,fuzzing \
        --workers 2 --seed 1 --no-color \
        --suppress-health-check all \
        "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}
# Operator routes with the admin token (the token routes are left out so a
# generated request cannot revoke the tokens this run uses).
run "operator routes (admin token)" "$ADMIN" --exclude-path-regex '^/v1/(tenant/|tokens|reports)'
run "employee reports (reporter token)" "$REPORTER" --include-path-regex '^/v1/reports'
run "tenant portal (tenant token)" "$TENANT" --include-path-regex '^/v1/tenant/'
run "token routes (tenant token, all refused)" "$TENANT" --include-path-regex '^/v1/tokens'
