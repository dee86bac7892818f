# The harness the README's example scripts share (sourced, not run):
# the binary to run, a temporary directory, a clean-up that stops what the
# script started, pass/fail counters and the check helpers. The sourcing
# script sets NAME first; the last line it prints is `NAME: N passed, M failed`.
# Usage, from a script in docs/examples/:
#   NAME=story; source "$(dirname "$0")/lib.sh" "$@"

A=${1:-${AUPD_BIN:-}}
if [ -z "$A" ]; then
    if [ -x target/release/aupd ]; then A=target/release/aupd; else A=target/debug/aupd; fi
fi
WORK=$(mktemp -d)
passed=0
failed=0
SERVER_PID=""
RECEIVER_PID=""
finish() {
    status=$?
    # Stop what this script started, by pid: SIGTERM lets aupd flush its store.
    for pid in $RECEIVER_PID $SERVER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $RECEIVER_PID $SERVER_PID; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    if [ "$failed" -ne 0 ]; then
        echo "--- aupd log (last 10 lines)"; tail -n 10 "$WORK/aupd.log" 2>/dev/null | cut -c1-300 || true
        echo "--- receiver log"; cat "$WORK/receiver.log" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    echo "$NAME: $passed passed, $failed failed"
    exit "$status"
}
trap finish EXIT
# Interrupted or terminated, still stop what was started.
trap 'exit 130' INT
trap 'exit 143' TERM
for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { echo "$NAME.sh needs $tool" >&2; exit 2; }
done
[ -x "$A" ] || { echo "no aupd binary at $A (cargo build first)" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
RPORT=$(free_port)
BASE=http://127.0.0.1:$PORT

# The settings of this run. Intake keeps a Bernoulli sample of what is pushed
# (5% by default, `sampling.intake_sample_rate`); the story keeps every post
# so that its 100 posts are all scored.
export AUPD__SERVER__BIND=127.0.0.1:$PORT
export AUPD__STORE__PATH=$WORK/store
export AUPD__POLICY__DIR=policies
export AUPD__SAMPLING__INTAKE_SAMPLE_RATE=1
# Webhooks may reach loopback only when allowed (the SSRF guard refuses it otherwise).
export AUPD__DELIVERY__ALLOW_CIDRS=127.0.0.0/8

say() { printf '\n## %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; exit 1; }
# expect WHAT ACTUAL WANTED
expect() { if [ "$2" = "$3" ]; then ok "$1: $2"; else fail "$1: got '$2', wanted '$3'"; fi; }

# call STATUS TOKEN METHOD PATH [BODY|@FILE]: the answer lands in $BODY; any
# other status than STATUS ends the story.
call() {
    local want=$1 token=$2 method=$3 path=$4 data=${5:-}
    local args=(-s -o "$WORK/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
    local got
    got=$(curl "${args[@]}" "$BASE$path")
    BODY=$(cat "$WORK/body")
    if [ "$got" != "$want" ]; then fail "$method $path answered $got, wanted $want: $BODY"; fi
    ok "$method $path → $got"
}
field() { jq -r "$1" <<<"$BODY"; }
# show FILTER: prints part of the last answer, as the README quotes it.
show() { printf '     → %s\n' "$(jq -c "$1" <<<"$BODY")"; }

# wait_for WHAT COMMAND...: retries COMMAND every 100 ms for up to 20 s.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 200); do
        if "$@" >/dev/null 2>&1; then ok "$what"; return 0; fi
        sleep 0.1
    done
    fail "timed out waiting for $what"
}
