"""Asserts what the aupd chart must always render, whatever the values.

Usage: chart_assert.py RENDERED.yaml
Reads `helm template` output and exits non-zero, listing every broken rule.
Schema validity is kubernetes-validate's job; this checks the chart's own
promises: one pod, hardened, reachable, draining, with its settings parsable.
"""

import sys
import tomllib

import yaml

KNOWN_SETTINGS = {
    "server": {"bind", "max_body_bytes", "workers", "shutdown_grace_secs"},
    "store": {"path", "cache_mb"},
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

    sets = [d for d in docs if d["kind"] == "StatefulSet"]
    need(len(sets) == 1, f"expected one StatefulSet, found {len(sets)}")
    if not sets:
        return report(errors)
    sts = sets[0]
    spec = sts["spec"]
    need(spec["replicas"] in (0, 1), f'replicas is {spec["replicas"]}, sled allows one pod')
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
    need(str(env.get("AUPD__STORE__PATH", "")).startswith("/var/lib/aupd/"), "store must live on the data volume")
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
    need(
        any(m["mountPath"] == "/var/lib/aupd" for m in container.get("volumeMounts", [])),
        "the store volume is not mounted at /var/lib/aupd",
    )
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
        grace = settings.get("server", {}).get("shutdown_grace_secs", 30)
        need(
            pod["terminationGracePeriodSeconds"] > grace,
            f'terminationGracePeriodSeconds {pod["terminationGracePeriodSeconds"]} <= shutdown_grace_secs {grace}',
        )
    return report(errors)


def report(errors):
    for e in errors:
        print(f"  - {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
