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
# Each checked answer counts; the last line is `review: N passed, M failed`,
# and the script exits non-zero at the first unexpected answer.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=review
# shellcheck source=docs/examples/lib.sh
source docs/examples/lib.sh "$@"

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
