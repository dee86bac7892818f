#!/usr/bin/env bash
# The README's review walkthrough, run end to end against the real binary:
# reviewers label a tenant's sampled posts from the review queue, a second
# reviewer settles what the first flagged, and the prevalence shows the
# label estimate and the corrected count beside the model's count. CI runs
# it (.ci/run).
#
#   bash docs/examples/review.sh [path/to/aupd]
#
# The binary defaults to target/release/aupd, else target/debug/aupd. Needs
# curl, jq and python3. Everything lives in a fresh temporary directory; the
# server and the receiver it starts are stopped on exit, whatever happens.
# Each checked answer counts; the last line is `story: N passed, M failed`,
# and the script exits non-zero at the first unexpected answer.
set -euo pipefail
cd "$(dirname "$0")/../.."

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
    echo "review: $passed passed, $failed failed"
    exit "$status"
}
trap finish EXIT
# Interrupted or terminated, still stop what was started.
trap 'exit 130' INT
trap 'exit 143' TERM
for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { echo "review.sh needs $tool" >&2; exit 2; }
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

say "Tokens for an operator and two reviewers; the tenant's posts pushed and scored"
ADMIN=$("$A" token create --role admin --name ada 2>/dev/null)
"$A" serve >"$WORK/aupd.log" 2>&1 &
SERVER_PID=$!
wait_for "aupd ready on $BASE" curl -sf "$BASE/readyz"
tok() {
    curl -s -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
        -d "{\"role\":\"$1\",\"name\":\"$2\"}" "$BASE/v1/tokens" | jq -r .token
}
OLIVIA=$(tok operator olivia)
ANN=$(tok reviewer ann)
BOB=$(tok reviewer bob)
call 201 "$OLIVIA" POST /v1/tenants '{"id":"parlor","name":"Parlor Social","risk_tier":"elevated"}'
call 200 "$OLIVIA" POST /v1/tenants/parlor/content @docs/examples/posts.json
expect "sampled, flagged" "$(field '"\(.sampled) \(.flagged)"')" "100 5"

say "A reviewer may review, and nothing more"
call 403 "$ANN" GET /v1/tenants/parlor/samples
expect "code" "$(field .code)" forbidden

say "Ann labels what the queue serves: highest score band first, then band by band"
call 200 "$ANN" GET '/v1/review/next?tenant=parlor'
show '{population, targets, item: .item | {item, band, score, flagged, excerpt}}'
expect "first item is flagged" "$(field '.item.flagged | index("violent-incitement") != null')" true
OVERRULED=""
LABELLED=0
while :; do
    call 200 "$ANN" GET '/v1/review/next?tenant=parlor' >/dev/null
    ITEM=$(field .item.item)
    [ "$ITEM" = null ] && break
    # Ann agrees with the model, except on one flagged post she reads as reporting.
    if [ "$(field '.item.flagged | index("violent-incitement") != null')" = true ]; then
        if [ -z "$OVERRULED" ]; then ANSWER=does_not; OVERRULED=$ITEM; else ANSWER=violates; fi
    else
        ANSWER=does_not
    fi
    call 200 "$ANN" POST "/v1/review/$ITEM/label?tenant=parlor" \
        "{\"labels\":{\"violent-incitement\":\"$ANSWER\"}}" >/dev/null
    LABELLED=$((LABELLED + 1))
done
expect "items ann labelled until the queue was empty" "$LABELLED" 100
call 200 "$ANN" GET '/v1/review/next?tenant=parlor'
show '{population, targets, reviewed}'

say "Bob gives the second opinions: each flagged item needs two reviewers who agree"
SECOND=0
while :; do
    call 200 "$BOB" GET '/v1/review/next?tenant=parlor&queue=second' >/dev/null
    ITEM=$(field .item.item)
    [ "$ITEM" = null ] && break
    call 200 "$BOB" POST "/v1/review/$ITEM/label?tenant=parlor" '{"labels":{"violent-incitement":"violates"}}' >/dev/null
    SECOND=$((SECOND + 1))
done
expect "second opinions given" "$SECOND" 4
call 200 "$ANN" GET '/v1/review/labels?tenant=parlor&disagreement=true'
expect "items still disputed" "$(field '[.labels[].item] | unique | length')" 0
call 200 "$OLIVIA" GET '/v1/review/agreement?tenant=parlor'
show '.agreement'

say "The prevalence: the model's count, the label estimate and the corrected count"
call 200 "$OLIVIA" GET /v1/tenants/parlor/prevalence
show '.categories[] | select(.category=="violent-incitement") | {estimate, sampled, flagged, rate, lower, upper, reviewed, labelled_evidence, labelled, corrected}'
expect "reviewed, labelled evidence" \
    "$(field '.categories[] | select(.category=="violent-incitement") | "\(.reviewed) \(.labelled_evidence)"')" "100 4"
expect "the labels find fewer than the model" \
    "$(field '.categories[] | select(.category=="violent-incitement") | .labelled.rate < .rate')" true

say "The labels leave as CSV for training, with the service stopped"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "aupd did not stop cleanly"
SERVER_PID=""
"$A" review export --tenant parlor >"$WORK/labels.csv" 2>"$WORK/export.log" || fail "review export failed"
head -n 1 "$WORK/labels.csv"
expect "rows exported" "$(($(wc -l <"$WORK/labels.csv") - 1))" 100
