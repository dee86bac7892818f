#!/usr/bin/env bash
# Three aupd replicas on one local PostgreSQL: a push to one replica opens a
# case that the others see, the work leases sit on one replica each, and
# when the replica holding them is killed another takes the work over.
#
#   bash docs/examples/replicas.sh [path/to/aupd]
#
# Needs Debian's postgresql package (.ci/pg-start.sh installs it when
# missing), curl and jq. Everything it starts lives under a temporary
# directory and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
aupd="$(realpath "${1:-target/release/aupd}")"
work="$(mktemp -d /tmp/aupd-replicas.XXXXXX)"
chmod 755 "$work" # the cluster runs as the postgres user
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); else as=(); fi
    "${as[@]}" "$bin/pg_ctl" -D "$work/pg/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# A throwaway cluster on 127.0.0.1 and a database for aupd.
admin="$(bash .ci/pg-start.sh "$work/pg" | tail -1)"
psql -q "$admin" -c "CREATE DATABASE aupd"
db="${admin%/postgres}/aupd"

# Every replica shares the database, the admin token and the key that seals
# webhook secrets; each has its own id and port.
export AUPD__STORE__BACKEND=postgres AUPD__STORE__DATABASE_URL="$db"
export AUPD__AUTH__ADMIN_TOKEN="replicas-demo-admin-token-0123"
export AUPD__DELIVERY__SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AUPD__CLUSTER__LEASE_MS=3000 AUPD__LOG__LEVEL=warn
# Keep every pushed item (the default keeps a 5% sample), for the demo.
export AUPD__SAMPLING__INTAKE_SAMPLE_RATE=1
for i in 0 1 2; do
    AUPD__CLUSTER__REPLICA_ID="replica-$i" AUPD__SERVER__BIND="127.0.0.1:1808$i" \
        AUPD__STORE__PATH="$work/replica-$i" "$aupd" serve 2>"$work/replica-$i.log" &
    pids+=("$!")
done
for i in 0 1 2; do
    until curl -sf "127.0.0.1:1808$i/readyz" >/dev/null; do sleep 0.2; done
done
echo "three replicas ready on 127.0.0.1:18080-18082"

api() { curl -sf -H "authorization: Bearer $AUPD__AUTH__ADMIN_TOKEN" -H 'content-type: application/json' "$@"; }
holders() {
    for i in 0 1 2; do
        curl -sf "127.0.0.1:1808$i/metrics" 2>/dev/null \
            | awk -v r="replica-$i" '/^aupd_lease_held/ && $2 == 1 { sub(/.*lease="/, ""); sub(/".*/, ""); print "  " $0 " lease: " r }' \
            || true # a killed replica does not answer
    done | sort
}

# A tenant registered on replica 0, a critical post pushed to replica 1 ...
api -X POST 127.0.0.1:18080/v1/tenants -d '{"id": "parlor", "name": "Parlor"}' >/dev/null
api -X POST 127.0.0.1:18081/v1/tenants/parlor/content \
    -d '{"items": [{"id": "p1", "text": "we must storm the capitol tomorrow, bring your guns"}]}' \
    | jq -c '{received, sampled, flagged}'
# ... opens a case, which replica 2 shows.
for _ in $(seq 100); do
    [ "$(api '127.0.0.1:18082/v1/cases?tenant=parlor' | jq '.total')" -ge 1 ] && break
    sleep 0.2
done
[ "$(api '127.0.0.1:18082/v1/cases?tenant=parlor' | jq '.total')" -ge 1 ] \
    || { echo "FAILED: replica 2 never saw the case"; exit 1; }
api '127.0.0.1:18082/v1/cases?tenant=parlor' | jq -c '.cases[0] | {tenant, state, severity}'

echo "work leases:"
holders
# Kill the replica that runs the deadline ticker; another takes it over
# within the lease time.
ticker="$(holders | awk '/enforcement lease/ { print $NF }')"
victim="${pids[${ticker#replica-}]}"
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
echo "killed $ticker"
for _ in $(seq 50); do
    [ "$(holders | wc -l)" -ge 2 ] && break
    sleep 0.2
done
echo "work leases:"
holders
[ "$(holders | wc -l)" -ge 2 ] && ! holders | grep -q "$ticker" \
    || { echo "FAILED: the leases did not move off $ticker"; exit 1; }
survivor="$(holders | awk '/enforcement lease/ { print substr($NF, 9) }')"
api "127.0.0.1:1808$survivor/v1/audit/head" | jq -r '"audit log head: " + .head'
# The same state, straight from PostgreSQL's tables (docs/replicas.md).
psql -qAt "$db" -c "SELECT 'cases table: ' || tenant || ' ' || state || CASE WHEN open THEN ' (open)' ELSE '' END FROM cases"
psql -qAt "$db" -c "SELECT 'deadlines table: ' || count(*) || ' pending' FROM deadlines"
psql -qAt "$db" -c "SELECT 'findings table: ' || tenant || ' ' || category || ' ' || severity || ' (score ' || round(score::numeric, 2) || ')' FROM findings"
