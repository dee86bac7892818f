"""Asserts what the aupd chart must always render, whatever the values.

Usage: chart_assert.py RENDERED.yaml
Reads `helm template` output and exits non-zero, listing every broken rule.
Schema validity is kubernetes-validate's job; this checks the chart's own
promises: hardened, reachable, draining pods with parsable settings; with
store.backend sled one pod of a StatefulSet on a volume, with postgres a
Deployment without volumes, its database URL from a Secret, migrations in a
hook Job and a PodDisruptionBudget when there are several pods.
"""

import sys
import tomllib

import yaml

KNOWN_SETTINGS = {
    "server": {"bind", "max_body_bytes", "workers", "shutdown_grace_secs"},
    "store": {"path", "cache_mb", "backend", "database_url", "pool_size"},
    "cluster": {"replica_id", "lease_ms"},
    "policy": {"dir"},
    "auth": {"admin_token", "admin_token_file"},
    "log": {"format", "level"},
}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def main(path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors = []

    def need(cond, message):
        if not cond:
            errors.append(message)

    for d in docs:
        labels = d.get("metadata", {}).get("labels", {})
        name = f'{d["kind"]}/{d["metadata"]["name"]}'
        for label in STANDARD_LABELS:
            need(label in labels, f"{name}: missing label {label}")

    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    need(
        len(workloads) == 1,
        f'expected one StatefulSet or Deployment, found {[d["kind"] for d in workloads]}',
    )
    if len(workloads) != 1:
        return report(errors)
    workload = workloads[0]
    postgres = workload["kind"] == "Deployment"
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "aupd"]

    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot must be true")
    need(psc.get("runAsUser", 0) > 0, "pod: runAsUser must be a fixed non-root uid")
    need(psc.get("runAsGroup", 0) > 0, "pod: runAsGroup must be a fixed non-root gid")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccomp RuntimeDefault")
    need(pod.get("automountServiceAccountToken") is False, "pod: service account token mounted")

    csc = container.get("securityContext", {})
    need(csc.get("readOnlyRootFilesystem") is True, "container: readOnlyRootFilesystem must be true")
    need(csc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation must be false")
    need(csc.get("capabilities", {}).get("drop") == ["ALL"], "container: capabilities must drop ALL")
    need(csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "container: seccomp RuntimeDefault")

    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    need(env.get("AUPD__SERVER__BIND") == "0.0.0.0:8080", "AUPD__SERVER__BIND must be 0.0.0.0:8080")
    need(env.get("AUPD__POLICY__DIR") == "/etc/aupd/policies", "AUPD__POLICY__DIR must be the image's policies")
    need(bool(env.get("AUPD__AUTH__ADMIN_TOKEN_FILE")), "admin token must come from a file")
    need("AUPD__AUTH__ADMIN_TOKEN" not in env, "admin token must not be a plain variable")
    need(
        env.get("AUPD__DELIVERY__SECRET_KEY_FILE") == "/etc/aupd/webhook-key/key",
        "the webhook sealing key must come from the mounted Secret",
    )
    need("AUPD__DELIVERY__SECRET_KEY" not in env, "the webhook sealing key must not be a plain variable")
    ports = [p["containerPort"] for p in container.get("ports", [])]
    need(ports == [8080], f"container ports {ports}, expected [8080]")

    probes = {
        kind: container.get(kind, {}).get("httpGet", {}).get("path")
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    need(probes["livenessProbe"] == "/healthz", "liveness must probe /healthz")
    need(probes["readinessProbe"] == "/readyz", "readiness must probe /readyz")
    need(probes["startupProbe"] == "/healthz", "startup must probe /healthz")

    res = container.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            need(what in res.get(kind, {}), f"resources.{kind}.{what} missing")

    # Every mount has a volume; only the data volume and /tmp are writable.
    volumes = {v["name"] for v in pod.get("volumes", [])}
    volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    for m in container.get("volumeMounts", []):
        need(m["name"] in volumes, f'mount {m["mountPath"]} has no volume {m["name"]}')
        if m["mountPath"] not in ("/var/lib/aupd", "/tmp"):
            need(m.get("readOnly") is True, f'mount {m["mountPath"]} must be read-only')
    if postgres:
        postgres_rules(docs, workload, container, need)
    else:
        sled_rules(docs, workload, container, need)
    annotations = spec["template"]["metadata"].get("annotations", {})
    need("checksum/config" in annotations, "pod lacks the checksum/config annotation")

    # The settings file parses and names only keys aupd knows.
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "aupd.toml" in d.get("data", {})]
    need(len(maps) == 1, "expected one ConfigMap holding aupd.toml")
    for cm in maps:
        try:
            settings = tomllib.loads(cm["data"]["aupd.toml"])
        except tomllib.TOMLDecodeError as e:
            errors.append(f"aupd.toml does not parse: {e}")
            continue
        for section, keys in settings.items():
            known = KNOWN_SETTINGS.get(section)
            need(known is not None, f"aupd.toml: unknown section [{section}]")
            for key in keys:
                need(known is None or key in known, f"aupd.toml: unknown key {section}.{key}")
        if not postgres:
            # A sled install may run an aupd release that predates these keys.
            need("cluster" not in settings, "aupd.toml: [cluster] written for sled")
            need("pool_size" not in settings.get("store", {}), "aupd.toml: store.pool_size written for sled")
        grace = settings.get("server", {}).get("shutdown_grace_secs", 30)
        need(
            pod["terminationGracePeriodSeconds"] > grace,
            f'terminationGracePeriodSeconds {pod["terminationGracePeriodSeconds"]} <= shutdown_grace_secs {grace}',
        )
    return report(errors)


def sled_rules(docs, sts, container, need):
    """One pod, the store on the data volume, nothing of the postgres mode."""
    spec = sts["spec"]
    need(spec["replicas"] in (0, 1), f'replicas is {spec["replicas"]}, sled allows one pod')
    env = {e["name"]: e for e in container.get("env", [])}
    need(
        str(env.get("AUPD__STORE__PATH", {}).get("value", "")).startswith("/var/lib/aupd/"),
        "store must live on the data volume",
    )
    need(
        any(m["mountPath"] == "/var/lib/aupd" for m in container.get("volumeMounts", [])),
        "the store volume is not mounted at /var/lib/aupd",
    )
    for name in ("AUPD__STORE__BACKEND", "AUPD__STORE__DATABASE_URL", "AUPD__CLUSTER__REPLICA_ID"):
        need(name not in env, f"sled: {name} is set")
    for kind in ("Job", "PodDisruptionBudget"):
        need(not any(d["kind"] == kind for d in docs), f"sled: renders a {kind}")


def secret_ref(env, name):
    """(secret, key) of a variable taken from a Secret, else None."""
    ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def postgres_rules(docs, dep, container, need):
    """A Deployment without volumes, its database URL from a Secret, the
    replica id from the pod name, migrations in a hook Job, and a
    PodDisruptionBudget when there are several pods."""
    spec = dep["spec"]
    replicas = spec["replicas"]
    pod_labels = spec["template"]["metadata"]["labels"]
    env = {e["name"]: e for e in container.get("env", [])}
    need(env.get("AUPD__STORE__BACKEND", {}).get("value") == "postgres", "AUPD__STORE__BACKEND must be postgres")
    db = secret_ref(env, "AUPD__STORE__DATABASE_URL")
    need(db is not None, "the database URL must come from a Secret (secretKeyRef), never as text")
    need(
        env.get("AUPD__CLUSTER__REPLICA_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        == "metadata.name",
        "AUPD__CLUSTER__REPLICA_ID must be the pod name (downward API)",
    )
    need("AUPD__STORE__PATH" not in env, "postgres: AUPD__STORE__PATH is set")
    need(
        not any(m["mountPath"] == "/var/lib/aupd" for m in container.get("volumeMounts", [])),
        "postgres: a store volume is mounted",
    )
    need("volumeClaimTemplates" not in spec, "postgres: the Deployment has volume claims")
    need(not any(d["kind"] == "PersistentVolumeClaim" for d in docs), "postgres: renders a PersistentVolumeClaim")
    need(not any(d["kind"] == "StatefulSet" for d in docs), "postgres: renders a StatefulSet")

    # The database Secret, when the chart makes it, exists before the Job.
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    db_secret = secrets.get(db[0]) if db else None

    jobs = [d for d in docs if d["kind"] == "Job"]
    need(len(jobs) == 1, f"postgres: expected one migration Job, found {len(jobs)}")
    for job in jobs:
        notes = job["metadata"].get("annotations", {})
        hooks = set(notes.get("helm.sh/hook", "").split(","))
        need({"pre-install", "pre-upgrade"} <= hooks, f"migration Job hooks are {sorted(hooks)}")
        jpod = job["spec"]["template"]["spec"]
        (jc,) = jpod["containers"]
        need(jc.get("args") == ["migrate"], f'migration Job runs {jc.get("args")}, not aupd migrate')
        need(jc["image"] == container["image"], "migration Job must run the Deployment's image")
        jenv = {e["name"]: e for e in jc.get("env", [])}
        need(jenv.get("AUPD__STORE__BACKEND", {}).get("value") == "postgres", "migration Job: backend not postgres")
        need(secret_ref(jenv, "AUPD__STORE__DATABASE_URL") == db, "migration Job must read the Deployment's Secret")
        need(jpod.get("restartPolicy") == "Never", "migration Job: restartPolicy must be Never")
        need(jpod.get("automountServiceAccountToken") is False, "migration Job: service account token mounted")
        psc, csc = jpod.get("securityContext", {}), jc.get("securityContext", {})
        need(psc.get("runAsNonRoot") is True, "migration Job: runAsNonRoot must be true")
        need(csc.get("readOnlyRootFilesystem") is True, "migration Job: readOnlyRootFilesystem must be true")
        need(csc.get("allowPrivilegeEscalation") is False, "migration Job: allowPrivilegeEscalation must be false")
        need(csc.get("capabilities", {}).get("drop") == ["ALL"], "migration Job: capabilities must drop ALL")
        jlabels = job["spec"]["template"]["metadata"].get("labels", {})
        need(
            not selects(spec["selector"]["matchLabels"], jlabels),
            "migration Job pod carries the serving pods' selector labels (the Service would route to it)",
        )
        for m in jc.get("volumeMounts", []):
            need(m["mountPath"] == "/tmp" or m.get("readOnly") is True, f'migration Job: {m["mountPath"]} writable')
        if db_secret is not None:
            sn = db_secret["metadata"].get("annotations", {})
            need(
                {"pre-install", "pre-upgrade"} <= set(sn.get("helm.sh/hook", "").split(","))
                and int(sn.get("helm.sh/hook-weight", "0")) < int(notes.get("helm.sh/hook-weight", "0")),
                "the chart's database Secret must be a hook created before the migration Job",
            )

    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if replicas > 1:
        need(len(pdbs) == 1, f"postgres with {replicas} replicas: expected one PodDisruptionBudget")
        for pdb in pdbs:
            need(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels), "the PodDisruptionBudget selects no pod")
            need(
                pdb["spec"].get("maxUnavailable", 0) < replicas,
                "the PodDisruptionBudget allows every pod down at once",
            )
    else:
        need(not pdbs, "a PodDisruptionBudget for a single pod would only block node drains")


def report(errors):
    for e in errors:
        print(f"  - {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
