#!/usr/bin/env bash
# The README's story, run end to end against the real binary and a real
# loopback webhook receiver (docs/examples/receiver.py), so the README shows
# what aupd really answers. CI runs it (.ci/run).
#
#   bash docs/examples/story.sh [path/to/aupd]
#
# The binary defaults to target/release/aupd, else target/debug/aupd. Needs
# curl, jq and python3. Everything lives in a fresh temporary directory; the
# server and the receiver it starts are stopped on exit, whatever happens.
# Each checked answer counts; the last line is `story: N passed, M failed`,
# and the script exits non-zero at the first unexpected answer.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=story
# shellcheck source=docs/examples/lib.sh
source docs/examples/lib.sh "$@"

say "The first token, made with the service stopped"
ADMIN=$("$A" token create --role admin --name ada 2>/dev/null)
expect "admin token prefix" "${ADMIN:0:5}" "aupd_"

"$A" serve >"$WORK/aupd.log" 2>&1 &
SERVER_PID=$!
wait_for "aupd ready on $BASE" curl -sf "$BASE/readyz"

# peek TOKEN PATH: a GET whose answer is only looked at (polling, tokens).
peek() { curl -s -H "Authorization: Bearer $1" "$BASE$2"; }
tok() {
    curl -s -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
        -d "{\"role\":\"$1\",\"name\":\"$2\"}" "$BASE/v1/tokens" | jq -r .token
}
OLIVIA=$(tok operator olivia)
ALICE=$(tok approver alice)
BOB=$(tok approver bob)
CAROL=$(tok approver carol)
RITA=$(tok reporter rita)
PARLOR=$(tok tenant:parlor parlor-dashboard)
ORCH=$(tok service orchestrator)
for t in "$OLIVIA" "$ALICE" "$BOB" "$CAROL" "$RITA" "$PARLOR" "$ORCH"; do
    [ "${t:0:5}" = aupd_ ] || fail "a token was not made: $t"
done
ok "7 tokens: olivia (operator), alice, bob, carol (approvers), rita (reporter), parlor's dashboard, the orchestrator"

say "The workflow system listens for signed webhooks"
call 201 "$OLIVIA" POST /v1/webhooks "{\"url\":\"http://127.0.0.1:$RPORT/aupd\",\"description\":\"orchestrator\"}"
SECRET=$(field .secret)
expect "endpoint secret prefix" "${SECRET:0:6}" "whsec_"
WEBHOOK_SECRET=$SECRET python3 -u docs/examples/receiver.py "$RPORT" >"$WORK/receiver.log" 2>&1 &
RECEIVER_PID=$!

say "Register the tenant and push a mirrored batch of its public posts"
call 201 "$OLIVIA" POST /v1/tenants '{"id":"parlor","name":"Parlor Social","risk_tier":"elevated"}'
call 200 "$ORCH" POST /v1/tenants/parlor/content @docs/examples/posts.json
show 'del(.samples)'
expect "received, sampled, flagged" "$(field '"\(.received) \(.sampled) \(.flagged)"')" "100 100 5"
call 200 "$OLIVIA" GET /v1/tenants/parlor/prevalence
show '.categories[] | select(.category=="violent-incitement")'
expect "violent-incitement sampled/flagged, threshold crossed" \
    "$(field '.categories[] | select(.category=="violent-incitement") | "\(.sampled)/\(.flagged) \(.threshold_crossed)"')" "100/5 true"

say "A post above the critical score opened a case; the critical ladder noticed the tenant at once"
case_opened() {
    [ "$(peek "$OLIVIA" '/v1/cases?tenant=parlor' | jq -r '"\(.total) \(.cases[0].state)"')" = "1 noticed" ]
}
wait_for "a case for parlor" case_opened
call 200 "$OLIVIA" GET '/v1/cases?tenant=parlor'
CASE=$(field '.cases[0].id')
show '.cases[0] | {id, state, severity, seconds_to_deadline, evidence: (.evidence | length)}'
expect "case severity and categories" "$(field '.cases[0] | "\(.severity) \(.categories | join(","))"')" "critical violent-incitement"
echo "CASE=$CASE"

say "The tenant's dashboard sees its case: AUP text, evidence, countdown"
call 200 "$PARLOR" GET "/v1/tenant/cases/$CASE"
show '{state, deadline, evidence: [.evidence[] | select(.kind=="sampled_item")][0] | {excerpt, matched: [.matched[].text] | unique}}'
expect "tenant view state" "$(field .state)" noticed
expect "sampled items with matched text" \
    "$(field '[.evidence[] | select(.kind=="sampled_item" and (.matched | length) > 0)] | length > 0')" true
expect "reporters or owner shown to the tenant" "$(field 'has("reports") or has("owner")')" false

say "The tenant appeals the finding; an approver who took no part decides"
call 200 "$PARLOR" POST "/v1/tenant/cases/$CASE/appeal" '{"text":"These posts quote a film script."}'
expect "appeal waiting" "$(field '.appeals[0].outcome')" null
call 403 "$OLIVIA" POST "/v1/cases/$CASE/actions" '{"action":"decide_appeal","outcome":"denied","reason":"x"}'
show .
expect "an operator does not decide appeals" "$(field .code)" not_allowed
call 200 "$CAROL" POST "/v1/cases/$CASE/actions" \
    '{"action":"decide_appeal","outcome":"denied","reason":"calls to storm the capitol are not a film script"}'
show '.case.appeals[0]'
expect "denied; the case stands" "$(field '"\(.case.appeals[0].outcome) \(.case.state)"')" "denied noticed"

say "An employee reports more of the same: the report joins the open case"
call 202 "$RITA" POST /v1/reports '{"tenant":"parlor","category":"violent-incitement","urls":["https://parlor.example/p/3"],"description":"armed march being organised"}'
expect "report joined the case" "$(field .case)" "$CASE"

say "No cure: escalate, propose, two approvers who took no part approve"
call 200 "$OLIVIA" POST "/v1/cases/$CASE/actions" '{"action":"escalate","reason":"organising an armed march"}'
call 200 "$OLIVIA" POST "/v1/cases/$CASE/actions" '{"action":"propose_suspension","reason":"critical and ongoing"}'
expect "state" "$(field .case.state)" suspension_proposed
call 200 "$ALICE" POST "/v1/cases/$CASE/actions" '{"action":"approve_suspension","reason":"evidence is clear"}'
call 200 "$BOB" POST "/v1/cases/$CASE/actions" '{"action":"approve_suspension","reason":"agree"}'
expect "state" "$(field .case.state)" suspension_ordered

say "The receiver verified each message; the suspension order carries the key of the action"
# The order and the approval are queued together and may arrive in either order.
five_messages() { [ "$(grep -c . "$WORK/receiver.log")" -ge 5 ]; }
wait_for "five messages at the receiver" five_messages
sed "s/^/    /" "$WORK/receiver.log"
expect "messages received, by type" \
    "$(cut -d' ' -f1 "$WORK/receiver.log" | sort | tr '\n' ' ')" \
    "case.notice_sent case.opened enforcement.suspend suspension.approved suspension.proposed "
expect "no message refused" "$(grep -c 'bad signature' "$WORK/receiver.log" || true)" 0
KEY=$(awk '$1 == "enforcement.suspend" { print $2 }' "$WORK/receiver.log")
expect "key of the order" "$KEY" "$CASE:enforcement.suspend:v$(field .case.version)"

say "The workflow system suspends the tenant and confirms; only then is the case suspended"
call 200 "$ORCH" POST "/v1/actions/$KEY/receipt" '{"outcome":"executed","details":{"ticket":"OPS-1234"}}'
show .
expect "receipt outcome and case state" "$(field '"\(.outcome) \(.case_state)"')" "executed suspended"
call 200 "$OLIVIA" GET "/v1/cases/$CASE"
expect "case state" "$(field .state)" suspended
expect "appeal on the case" "$(field '.appeals[0] | "\(.outcome) \(.decided_by)"')" "denied carol"
call 200 "$OLIVIA" GET '/v1/audit?limit=1000'
expect "appeal decision in the audit log" \
    "$(field '[.records[] | select(.kind=="case.appeal_denied") | .data.actor.id] | join(",")')" carol

say "The audit chain verifies with the service stopped"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "aupd did not stop cleanly"
SERVER_PID=""
if "$A" audit verify >"$WORK/verify.log" 2>&1; then
    ok "aupd audit verify: $(tail -n 1 "$WORK/verify.log")"
else
    cat "$WORK/verify.log"
    fail "aupd audit verify failed"
fi
