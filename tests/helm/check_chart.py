#!/usr/bin/env python3
"""Checks of charts/baton with Helm's real engine (the helm-python-sdk package), and of config/.

1. lints the chart (strict) with its default values and with the alternative values below;
2. checks that values.schema.json rejects bad values;
3. renders it with default values, and with namespace-scoped RBAC + the agent Role + the
   ServiceMonitor, and checks what comes out (RBAC rules, env, probes, security context...);
4. installs it into a running baton-sim with Helm's default Secret release storage (twice:
   cluster-scoped defaults, then namespace-scoped RBAC + agent Role + the dashboard with its
   actions in another namespace, checking what the dashboard's ServiceAccount may do) and
   checks that every rendered object and the release Secret exist there afterwards
   (`kubectl get`), then uninstalls the second release and checks both are gone;
5. renders config/ and config/samples/ with `kubectl kustomize` and applies them to the
   simulator, checking every object was accepted.

Simulator: `--kubeconfig PATH` or $BATON_SIM_KUBECONFIG uses one that is already running
(tests/packaging/chart.rs starts one in-process); otherwise the script starts `baton-sim serve`
($BATON_SIM_BIN, else target/release/baton-sim or target/debug/baton-sim if built, else
`cargo run --release -p baton-sim --bin baton-sim`).

A shared cluster (`--kubeconfig PATH --shared SUFFIX`: the real control plane, where other tests
run at the same time): every release and namespace is named with `-SUFFIX` and removed at the
end (the releases' cluster-scoped objects are named after them), the CRDs are left as they are,
and config/ — whose names are fixed — is a server dry run (kube-apiserver validates and admits
each object as it would a write, and stores nothing) in a namespace of its own.

Run: .venv/bin/python tests/helm/check_chart.py   (the venv has helm-python-sdk installed)
Exit status 0 when every check passed; the last line is "N passed, N failed".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "baton"
CONFIG = ROOT / "config"
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else "kubectl")

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - reported as a failure below
    sys.stderr.write(
        "helm-python-sdk is not importable with this interpreter (%s).\n"
        "Create the venv: python3 -m venv .venv && .venv/bin/pip install helm-python-sdk\n" % sys.executable
    )
    sys.exit(2)

# Values of the second configuration: namespace-scoped RBAC, agent Role, ServiceMonitor.
NAMESPACED_VALUES: dict[str, Any] = {
    "rbac": {"scope": "namespace"},
    "agentRole": {"create": True, "secretNames": ["sxt-tokens"], "serviceAccounts": ["user-service"]},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
}


def namespaced_install_values() -> dict[str, Any]:
    """NAMESPACED_VALUES without the ServiceMonitor (the simulator has no monitoring.coreos.com CRD),
    with the dashboard and its actions."""
    values = json.loads(json.dumps(NAMESPACED_VALUES))
    values["metrics"]["serviceMonitor"]["enabled"] = False
    values["dashboard"] = {"enabled": True, "actions": True}
    return values


# The suffix of every release and namespace on a shared cluster (`--shared`); empty otherwise.
SHARED = ""


def uniq(name: str) -> str:
    """`name`, or `name-SUFFIX` on a shared cluster."""
    return f"{name}-{SHARED}" if SHARED else name


# ---------------------------------------------------------------------------------------------
# A tiny test runner: every check runs, failures are collected and reported at the end.

RESULTS: list[tuple[str, str | None]] = []


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            start = time.monotonic()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - report every failure
                detail = "".join(traceback.format_exception_only(type(e), e)).strip()
                if not isinstance(e, AssertionError):
                    detail = traceback.format_exc()
                RESULTS.append((name, detail))
                print(f"FAIL {name} ({time.monotonic() - start:.1f}s)\n     {detail}", flush=True)
            else:
                RESULTS.append((name, None))
                print(f"ok   {name} ({time.monotonic() - start:.1f}s)", flush=True)

        run.__name__ = fn.__name__
        return run

    return wrap


# ---------------------------------------------------------------------------------------------
# Helpers


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """Split a multi-document YAML stream and parse each document with Helm's own YAML parser."""
    docs = []
    for chunk in re.split(r"(?m)^---[ \t]*$", text):
        body = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("#")).strip()
        if not body:
            continue
        doc = helm.values_from_yaml(chunk)
        if doc:
            docs.append(doc)
    return docs


def render(values: dict[str, Any] | None, *, name: str = "baton", namespace: str = "baton-system") -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values=values, name=name, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(parse_manifests(text))
    return {"objects": objects, "notes": notes}


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)} among {kinds}"
    return found[0]


def rule_for(role: dict[str, Any], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for r in role.get("rules", []):
        if group in r.get("apiGroups", []) and resource in r.get("resources", []):
            verbs |= set(r.get("verbs", []))
    return verbs


def env_of(deploy: dict[str, Any]) -> dict[str, Any]:
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None, check_rc: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check_rc and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def objects_to_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as one v1 List document (kubectl reads a JSON stream only as a single document)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def assert_exist(kubeconfig: str, objects: list[dict[str, Any]], default_namespace: str) -> None:
    """Every object exists in the cluster, with the labels it was rendered with."""
    missing = []
    for o in objects:
        ident = f"{o['kind']}/{o['metadata']['name']}"
        ns = o["metadata"].get("namespace", default_namespace)
        proc = kubectl(kubeconfig, "get", "-n", ns, "-f", "-", "-o", "json", stdin=json.dumps(o), check_rc=False)
        if proc.returncode != 0:
            missing.append(f"{ident} (ns {ns}): {proc.stderr.strip()}")
            continue
        live = json.loads(proc.stdout)
        if live.get("kind") == "List":
            live = live["items"][0]
        want_labels = o["metadata"].get("labels", {}) or {}
        have_labels = live["metadata"].get("labels", {}) or {}
        wrong = {k: (v, have_labels.get(k)) for k, v in want_labels.items() if have_labels.get(k) != v}
        if wrong:
            missing.append(f"{ident}: labels differ (want, have): {wrong}")
        if o["kind"] in ("ClusterRole", "Role"):
            if (live.get("rules") or []) != (o.get("rules") or []) and not o.get("aggregationRule"):
                missing.append(f"{ident}: rules differ: {live.get('rules')} != {o.get('rules')}")
    assert not missing, "objects not accepted by the cluster:\n  " + "\n  ".join(missing)


# ---------------------------------------------------------------------------------------------
# Simulator


class Simulator:
    def __init__(self, kubeconfig: str | None) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp: str | None = None
        self.kubeconfig = kubeconfig or os.environ.get("BATON_SIM_KUBECONFIG") or ""
        if not self.kubeconfig:
            self._start()

    def _command(self, kubeconfig: str) -> list[str]:
        explicit = os.environ.get("BATON_SIM_BIN")
        if explicit:
            return [explicit, "serve", "--kubeconfig", kubeconfig]
        for profile in ("release", "debug"):
            binary = ROOT / "target" / profile / "baton-sim"
            if binary.exists():
                return [str(binary), "serve", "--kubeconfig", kubeconfig]
        cargo = os.environ.get("CARGO", "cargo")
        return [cargo, "run", "--quiet", "--release", "-p", "baton-sim", "--bin", "baton-sim", "--",
                "serve", "--kubeconfig", kubeconfig]

    def _start(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="baton-helm-")
        kubeconfig = os.path.join(self.tmp, "kubeconfig")
        cmd = self._command(kubeconfig)
        print("starting simulator:", " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 900  # a cold `cargo run --release` compiles first
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"simulator exited ({self.proc.wait()}) before it was ready")
            m = re.search(r"baton-sim listening on (\S+) kubeconfig=(\S+)", line)
            if m:
                print(line.strip(), flush=True)
                self.kubeconfig = m.group(2)
                return
        raise RuntimeError("simulator did not report ready in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def release_secrets(kubeconfig: str, release: str, namespace: str) -> list[dict[str, Any]]:
    """Helm's release records for `release` as stored in the cluster (Secret driver)."""
    out = kubectl(kubeconfig, "get", "secrets", "-n", namespace, "-l", f"owner=helm,name={release}", "-o", "json").stdout
    return json.loads(out)["items"]


def install(kubeconfig: str, release: str, namespace: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """`helm install --create-namespace` with Helm's default (Secret) release storage.

    client-go writes the release record as a protobuf Secret, which baton-sim decodes; the record
    must then be in the simulator, readable by kubectl as JSON, and listed by `helm list`.
    """
    with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace, storage_driver="secret") as cfg:
        cfg.check_reachable()
        rel = cfg.install(CHART, release, values, namespace=namespace, create_namespace=True, timeout=120)
        listed = [r["name"] for r in cfg.list(all_states=True)]
        assert release in listed, f"release {release} not listed by helm list: {listed}"
    records = release_secrets(kubeconfig, release, namespace)
    names = [s["metadata"]["name"] for s in records]
    assert names == [f"sh.helm.release.v1.{release}.v1"], f"release Secrets in {namespace}: {names}"
    record = records[0]
    assert record["type"] == "helm.sh/release.v1", record["type"]
    assert record["metadata"]["labels"].get("status") == "deployed", record["metadata"]["labels"]
    assert record["data"].get("release"), "the release Secret holds no release record"
    return rel


def upgrade(kubeconfig: str, release: str, namespace: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """`helm upgrade`: Helm updates the old record (PUT, status superseded) and creates a new one."""
    with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace, storage_driver="secret") as cfg:
        rel = cfg.upgrade(CHART, release, values, namespace=namespace, timeout=120)
    statuses = {s["metadata"]["name"]: s["metadata"]["labels"].get("status")
                for s in release_secrets(kubeconfig, release, namespace)}
    prefix = f"sh.helm.release.v1.{release}"
    assert statuses == {f"{prefix}.v1": "superseded", f"{prefix}.v2": "deployed"}, statuses
    return rel


def uninstall(kubeconfig: str, release: str, namespace: str) -> None:
    """`helm uninstall`; Helm deletes its release Secrets, so none may be left in the simulator."""
    with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace, storage_driver="secret") as cfg:
        cfg.uninstall(release, timeout=60)
    left = [s["metadata"]["name"] for s in release_secrets(kubeconfig, release, namespace)]
    assert not left, f"release Secrets left after uninstall: {left}"


# ---------------------------------------------------------------------------------------------
# Checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="kubeconfig of a running baton-sim (default: $BATON_SIM_KUBECONFIG or start one)")
    parser.add_argument("--no-install", action="store_true", help="only lint and render (no simulator)")
    parser.add_argument("--shared", metavar="SUFFIX", default="",
                        help="the cluster of --kubeconfig is shared: name releases and namespaces with -SUFFIX")
    args = parser.parse_args()
    global SHARED
    SHARED = args.shared
    if SHARED and not args.kubeconfig:
        parser.error("--shared needs --kubeconfig")

    print(f"helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), chart {CHART}", flush=True)

    @check("lint: strict, default values")
    def _lint_default() -> None:
        report = helm.lint(CHART, strict=True, namespace="baton-system")
        bad = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
        assert not bad, f"lint findings: {bad}"

    @check("lint: strict, namespace-scoped RBAC + agent Role + ServiceMonitor")
    def _lint_ns() -> None:
        for values in (NAMESPACED_VALUES, {"replicaCount": 1, "controller": {"leaderElection": {"enabled": False}},
                                           "rbac": {"secrets": {"read": False}}, "podAntiAffinity": "hard"},
                       {"dashboard": {"enabled": True, "actions": True, "allowedHosts": ["baton.example.com"]}},
                       {"shards": [{"name": "a", "selector": "baton.dev/shard=a"}, {"name": "b", "selector": "baton.dev/shard=b"}]}):
            report = helm.lint(CHART, values, strict=True, namespace="team-a")
            bad = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
            assert not bad, f"lint findings with {values}: {bad}"

    @check("schema: values.schema.json rejects bad values")
    def _schema() -> None:
        with helm.Chart.load(CHART) as chart:
            assert chart.schema is not None, "chart has no values.schema.json"
            chart.validate_schema(chart.values)
            for bad in ({"rbac": {"scope": "everywhere"}}, {"replicaCount": "two"},
                        {"controller": {"logFormat": "xml"}}, {"unknownKey": 1},
                        {"controller": {"leaderElection": {"leaseDuration": "15 seconds"}}},
                        {"dashboard": {"port": "web"}}, {"dashboard": {"enabled": "yes"}},
                        {"dashboard": {"allowedHosts": [""]}}, {"dashboard": {"theme": "dark"}},
                        {"controller": {"watchNamespaces": ["Team-A"]}}, {"controller": {"watchNamespaces": "team-a"}}):
                merged = chart.merge_values(bad)
                try:
                    chart.validate_schema(merged)
                except helm.HelmValuesError:
                    continue
                raise AssertionError(f"schema accepted {bad}")

    @check("render: default values")
    def _render_default() -> None:
        r = render(None)
        objs = r["objects"]
        kinds = sorted({o["kind"] for o in objs})
        assert kinds == sorted(["ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role",
                                "RoleBinding", "Service", "ServiceAccount", "ValidatingAdmissionPolicy",
                                "ValidatingAdmissionPolicyBinding"]), kinds
        for o in objs:
            assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm", o["metadata"]
        cr = one(objs, "ClusterRole", "baton-controller")
        # Least privilege (tests/packaging/chart_rbac/least_privilege.rs measures it against what is
        # used).
        assert rule_for(cr, "baton.dev", "rollouts") == {"list", "watch"}
        assert rule_for(cr, "baton.dev", "listenersets") == {"list", "watch", "patch"}
        for sub in ("rollouts/status", "listenersets/status"):
            assert rule_for(cr, "baton.dev", sub) == {"patch"}, sub
        for sub in ("rollouts/scale", "listenersets/scale"):
            assert rule_for(cr, "baton.dev", sub) == set(), sub
        assert rule_for(cr, "", "pods") == {"get", "list", "watch", "create", "delete", "patch"}
        assert rule_for(cr, "apps", "controllerrevisions") == {"list", "watch", "create", "delete"}
        assert rule_for(cr, "coordination.k8s.io", "leases") == {"get", "list", "watch", "create", "patch", "delete"}
        assert rule_for(cr, "", "events") == {"create", "patch"}
        assert rule_for(cr, "events.k8s.io", "events") == set()
        # No Secret anywhere by default: rbac.secrets.namespaces names where (see _render_options).
        assert rule_for(cr, "", "secrets") == set()
        assert not find(objs, "Role", "baton-controller-secrets")
        assert env_of(one(objs, "Deployment", "baton"))["BATON_READ_SECRETS"] == "false"
        assert rule_for(cr, "", "configmaps") == set()
        for rule in cr["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not find(objs, "ClusterRole", "baton-crd-reader"), "the startup check reads no CRD"
        le = one(objs, "Role", "baton-leader-election")
        assert le["metadata"]["namespace"] == "baton-system"
        assert le["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["baton-controller"],
             "verbs": ["get", "list", "watch", "update"]},
        ], le["rules"]  # create: the ClusterRole grants it (a second grant would hide a removal)
        le = one(render({"rbac": {"scope": "namespace"}, "controller": {"leaderElection": {"leaseNamespace": "elsewhere"}}})["objects"],
                 "Role", "baton-leader-election")
        assert le["rules"][1:] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}], le
        for role, label in (("admin", "aggregate-to-admin"), ("edit", "aggregate-to-edit"), ("view", "aggregate-to-view")):
            agg = one(objs, "ClusterRole", f"baton-{role}")
            assert agg["metadata"]["labels"][f"rbac.authorization.k8s.io/{label}"] == "true"
            verbs = rule_for(agg, "baton.dev", "rollouts")
            assert ("patch" in verbs) == (role != "view"), (role, verbs)
            assert not rule_for(agg, "baton.dev", "rollouts/status") - {"get", "list", "watch"}, "status is the controller's"
        binding = one(objs, "ClusterRoleBinding", "baton-controller")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "baton", "namespace": "baton-system"}]

        d = one(objs, "Deployment", "baton")
        spec = d["spec"]["template"]["spec"]
        assert d["spec"]["replicas"] == 2
        c = spec["containers"][0]
        assert c["image"] == "ghcr.io/baton-dev/baton:0.1.0", c["image"]
        assert c["args"] == ["controller"], c["args"]
        env = env_of(d)
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert "BATON_WATCH_NAMESPACE" not in env, "cluster scope watches every namespace"
        assert env["BATON_LEADER_ELECT"] == "true"
        assert env["BATON_LEASE_NAME"] == "baton-controller"
        assert env["BATON_LEASE_NAMESPACE"] == "baton-system"
        assert (env["BATON_LEASE_DURATION"], env["BATON_RENEW_DEADLINE"], env["BATON_RETRY_PERIOD"]) == ("15s", "10s", "2s")
        assert env["BATON_METRICS_ADDR"] == "0.0.0.0:8080"
        assert env["BATON_LOG_FORMAT"] == "json" and env["BATON_CONCURRENCY"] == "8"
        # The default reads no Secret (rbac.secrets.namespaces names where it may).
        assert env["BATON_READ_SECRETS"] == "false" and "BATON_SECRET_NAMESPACES" not in env, env
        assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert c["resources"]["requests"] and c["resources"]["limits"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["serviceAccountName"] == "baton"
        anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        pdb = one(objs, "PodDisruptionBudget", "baton")
        assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"] == d["spec"]["selector"]
        svc = one(objs, "Service", "baton-metrics")
        assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
        assert not find(objs, "ServiceMonitor") and not find(objs, "Role", "baton-agent")
        vap = one(objs, "ValidatingAdmissionPolicy", "baton-lease-guard")
        assert vap["spec"]["failurePolicy"] == "Fail"
        conditions = " ".join(c["expression"] for c in vap["spec"]["matchConditions"])
        assert "'system:serviceaccount:baton-system:baton'" in conditions, conditions
        assert "request.name == 'baton-controller'" in conditions, conditions
        vapb = one(objs, "ValidatingAdmissionPolicyBinding", "baton-lease-guard")
        assert vapb["spec"] == {"policyName": "baton-lease-guard", "validationActions": ["Deny"]}, vapb
        assert "baton-system" in r["notes"] and "all namespaces" in r["notes"]
        # The deploy gate the notes recommend is the Ready condition, not Available.
        assert "kubectl wait --for=condition=Ready rollout/user-service" in r["notes"], r["notes"]
        assert "condition=Available" not in r["notes"], r["notes"]

    @check("render: namespace-scoped RBAC + agent Role + ServiceMonitor")
    def _render_ns() -> None:
        r = render(NAMESPACED_VALUES, name="baton", namespace="team-a")
        objs = r["objects"]
        # Only the aggregated roles are cluster-scoped; nothing cluster-wide is bound.
        cluster_roles = sorted(o["metadata"]["name"] for o in find(objs, "ClusterRole"))
        assert cluster_roles == ["baton-admin", "baton-edit", "baton-view"], cluster_roles
        assert [o["metadata"]["name"] for o in find(objs, "ClusterRoleBinding")] == []
        role = one(objs, "Role", "baton-controller")
        assert role["metadata"]["namespace"] == "team-a"
        assert rule_for(role, "", "pods") == {"get", "list", "watch", "create", "delete", "patch"}
        assert rule_for(role, "", "secrets") == {"get", "list", "watch"}
        rb = one(objs, "RoleBinding", "baton-controller")
        assert rb["roleRef"]["kind"] == "Role" and rb["metadata"]["namespace"] == "team-a"
        env = env_of(one(objs, "Deployment", "baton"))
        assert env["BATON_WATCH_NAMESPACE"] == "team-a", env
        agent = one(objs, "Role", "baton-agent")
        assert rule_for(agent, "coordination.k8s.io", "leases") == {"get", "list", "watch", "patch"}
        secret_rules = [x for x in agent["rules"] if "secrets" in x["resources"]]
        assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["sxt-tokens"], "verbs": ["get"]}], secret_rules
        arb = one(objs, "RoleBinding", "baton-agent")
        assert arb["subjects"] == [{"kind": "ServiceAccount", "name": "user-service", "namespace": "team-a"}]
        sm = one(objs, "ServiceMonitor", "baton")
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["metadata"]["labels"]["release"] == "prometheus"
        assert sm["spec"]["endpoints"][0]["port"] == "metrics"
        # The series' own `namespace` label (the object's) must survive the scrape.
        assert sm["spec"]["endpoints"][0]["honorLabels"] is True, sm
        assert sm["spec"]["selector"]["matchLabels"] == one(objs, "Deployment", "baton")["spec"]["selector"]["matchLabels"]
        # The Lease guard covers the namespace the controller is confined to (another release's
        # controller elsewhere is not refused); the controller's own policy stays cluster-wide.
        guard = one(objs, "ValidatingAdmissionPolicyBinding", "baton-lease-guard")["spec"]
        assert guard["matchResources"] == {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}]}}, guard
        assert "matchResources" not in one(objs, "ValidatingAdmissionPolicyBinding", "baton-controller-leases")["spec"]

    @check("render: a list of watched namespaces (a Role in each, nothing cluster-wide; no dashboard)")
    def _render_namespaces() -> None:
        values = {"rbac": {"scope": "namespace"}, "controller": {"watchNamespace": "team-a", "watchNamespaces": ["team-b", "team-a"]}}
        r = render(values, name="baton", namespace="baton-system")
        objs = r["objects"]
        assert [o["metadata"]["name"] for o in find(objs, "ClusterRoleBinding")] == []
        for kind in ("Role", "RoleBinding"):
            placed = sorted(o["metadata"]["namespace"] for o in find(objs, kind, "baton-controller"))
            assert placed == ["team-a", "team-b"], (kind, placed)
        assert env_of(one(objs, "Deployment", "baton"))["BATON_WATCH_NAMESPACE"] == "team-a,team-b"
        guard = one(objs, "ValidatingAdmissionPolicyBinding", "baton-lease-guard")["spec"]
        guarded = guard["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"]
        assert guarded == ["team-a", "team-b", "baton-system"], guarded
        # The leader Lease's namespace is not watched: its Role grants create there.
        le = one(objs, "Role", "baton-leader-election")
        assert "create" in rule_for(le, "coordination.k8s.io", "leases"), le
        assert 'watches the namespaces team-a, team-b.' in r["notes"], r["notes"]
        try:
            render({**values, "dashboard": {"enabled": True}})
        except helm.HelmError as e:
            assert "the dashboard watches one namespace or all" in str(e), e
        else:
            raise AssertionError("a dashboard rendered for a controller watching two namespaces")

    @check("render: other options (secrets off / per-namespace, digest, leader election off, hard anti-affinity)")
    def _render_options() -> None:
        objs = render({"rbac": {"secrets": {"read": False}}})["objects"]
        assert rule_for(one(objs, "ClusterRole", "baton-controller"), "", "secrets") == set()
        # The controller is told not to watch what it may not read.
        assert env_of(one(objs, "Deployment", "baton"))["BATON_READ_SECRETS"] == "false"
        objs = render({"rbac": {"secrets": {"namespaces": ["apps", "billing"]}}})["objects"]
        assert rule_for(one(objs, "ClusterRole", "baton-controller"), "", "secrets") == set()
        assert env_of(one(objs, "Deployment", "baton"))["BATON_SECRET_NAMESPACES"] == "apps,billing"
        roles = find(objs, "Role", "baton-controller-secrets")
        assert sorted(o["metadata"]["namespace"] for o in roles) == ["apps", "billing"]
        assert all(rule_for(o, "", "secrets") == {"get", "list", "watch"} for o in roles)
        assert env_of(one(objs, "Deployment", "baton"))["BATON_READ_SECRETS"] == "true"
        objs = render({"rbac": {"secrets": {"clusterWide": True}}})["objects"]
        assert rule_for(one(objs, "ClusterRole", "baton-controller"), "", "secrets") == {"get", "list", "watch"}
        assert not find(objs, "Role", "baton-controller-secrets")
        env = env_of(one(objs, "Deployment", "baton"))
        assert env["BATON_READ_SECRETS"] == "true" and "BATON_SECRET_NAMESPACES" not in env, env
        objs = render({"image": {"digest": "sha256:" + "a" * 64}, "podAntiAffinity": "hard"})["objects"]
        d = one(objs, "Deployment", "baton")
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/baton-dev/baton@sha256:" + "a" * 64
        assert "requiredDuringSchedulingIgnoredDuringExecution" in d["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        objs = render({"leaseGuard": {"enabled": False}})["objects"]
        assert not find(objs, "ValidatingAdmissionPolicy") and not find(objs, "ValidatingAdmissionPolicyBinding")
        objs = render({"replicaCount": 1, "controller": {"leaderElection": {"enabled": False}}})["objects"]
        assert not find(objs, "PodDisruptionBudget") and not find(objs, "Role", "baton-leader-election")
        assert env_of(one(objs, "Deployment", "baton"))["BATON_LEADER_ELECT"] == "false"
        try:
            render({"controller": {"leaderElection": {"enabled": False}}})
        except helm.HelmError as e:
            assert "leaderElection" in str(e), e
        else:
            raise AssertionError("2 replicas without leader election rendered")
        objs = render(None, name="prod")["objects"]
        assert one(objs, "Deployment", "prod-baton") and one(objs, "ClusterRole", "prod-baton-view")

    @check("render: shards (a Deployment, PDB and leader Lease per shard; RBAC and the Lease guard name every Lease)")
    def _render_shards() -> None:
        # Unsharded (the default): one Deployment, no shard label or selector, the plain Lease.
        objs = render(None)["objects"]
        d = one(objs, "Deployment", "baton")
        env = env_of(d)
        assert "BATON_SELECTOR" not in env and "BATON_SHARD" not in env, env
        assert env["BATON_LEASE_NAME"] == "baton-controller"
        assert env["BATON_KUBE_API_QPS"] == "50" and env["BATON_KUBE_API_BURST"] == "100", env
        shards = [{"name": "a", "selector": "baton.dev/shard=a"}, {"name": "b", "selector": "baton.dev/shard in (b,c)"}]
        objs = render({"shards": shards, "controller": {"kubeApiQps": 20, "kubeApiBurst": 30}})["objects"]
        assert not find(objs, "Deployment", "baton")
        for shard in shards:
            name = shard["name"]
            d = one(objs, "Deployment", f"baton-{name}")
            env = env_of(d)
            assert env["BATON_SELECTOR"] == shard["selector"] and env["BATON_SHARD"] == name, env
            assert env["BATON_LEASE_NAME"] == f"baton-controller-{name}", env
            assert env["BATON_KUBE_API_QPS"] == "20" and env["BATON_KUBE_API_BURST"] == "30", env
            labels = d["spec"]["selector"]["matchLabels"]
            assert labels["baton.dev/controller-shard"] == name, labels
            assert d["spec"]["template"]["metadata"]["labels"]["baton.dev/controller-shard"] == name
            pdb = one(objs, "PodDisruptionBudget", f"baton-{name}")
            assert pdb["spec"]["selector"]["matchLabels"] == labels
        role = one(objs, "Role", "baton-leader-election")
        named = [r for r in role["rules"] if r.get("resourceNames")]
        assert named and named[0]["resourceNames"] == ["baton-controller-a", "baton-controller-b"], role
        guard = one(objs, "ValidatingAdmissionPolicy", "baton-lease-guard")
        text = str(guard)
        assert "request.name in ['baton-controller-a', 'baton-controller-b']" in text, text
        try:
            render({"shards": [{"name": "Bad_Name", "selector": "x=y"}]})
        except helm.HelmError as e:
            assert "shards" in str(e), e
        else:
            raise AssertionError("a shard name that is not a DNS label rendered")

    @check("render: dashboard (off by default; view + Leases, edit only with actions; cluster or namespace scope)")
    def _render_dashboard() -> None:
        assert not [o for o in render(None)["objects"] if o["metadata"]["name"].startswith("baton-dashboard")]
        objs = render({"dashboard": {"enabled": True}})["objects"]
        d = one(objs, "Deployment", "baton-dashboard")
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        assert c["args"] == ["dashboard", "--address", "0.0.0.0:3100", "--all-namespaces", "--read-only",
                             "--log-format", "json"], c["args"]
        assert spec["serviceAccountName"] == "baton-dashboard"
        assert c["ports"] == [{"name": "http", "containerPort": 3100, "protocol": "TCP"}]
        assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True and spec["securityContext"]["runAsNonRoot"] is True
        # Its pods are not the controller's: neither selector picks the other's pods.
        ctl = one(objs, "Deployment", "baton")["spec"]["selector"]["matchLabels"]
        mine = d["spec"]["selector"]["matchLabels"]
        assert ctl != mine and mine["app.kubernetes.io/component"] == "dashboard", (ctl, mine)
        svc = one(objs, "Service", "baton-dashboard")
        assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == mine
        assert svc["spec"]["ports"][0]["port"] == 3100 and svc["spec"]["ports"][0]["targetPort"] == "http"
        one(objs, "ServiceAccount", "baton-dashboard")
        bindings = {o["metadata"]["name"]: o for o in find(objs, "ClusterRoleBinding") if "dashboard" in o["metadata"]["name"]}
        assert sorted(bindings) == ["baton-dashboard-leases", "baton-dashboard-view"], sorted(bindings)
        assert bindings["baton-dashboard-view"]["roleRef"]["name"] == "view"
        for b in bindings.values():
            assert b["subjects"] == [{"kind": "ServiceAccount", "name": "baton-dashboard", "namespace": "baton-system"}]
        leases = one(objs, "ClusterRole", "baton-dashboard-leases")
        assert leases["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                    "verbs": ["get", "list", "watch"]}], leases["rules"]
        # Actions: the baton part of `edit`, never the whole of it.
        objs = render({"dashboard": {"enabled": True, "actions": True, "allowedHosts": ["baton.example.com"]}})["objects"]
        args = one(objs, "Deployment", "baton-dashboard")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--read-only" not in args and args[args.index("--allowed-host") + 1] == "baton.example.com", args
        edit = one(objs, "ClusterRoleBinding", "baton-dashboard-edit")
        assert edit["roleRef"]["name"] == "baton-edit", edit["roleRef"]
        assert not [o for o in objs if o.get("roleRef", {}).get("name") == "edit"], "bound the whole edit role"
        # Namespace scope: RoleBindings in the watched namespace, and -n.
        objs = render({"rbac": {"scope": "namespace"}, "dashboard": {"enabled": True, "actions": True}},
                      namespace="team-a")["objects"]
        assert not [o for o in find(objs, "ClusterRoleBinding") if "dashboard" in o["metadata"]["name"]]
        rbs = sorted((o["metadata"]["name"], o["metadata"]["namespace"]) for o in find(objs, "RoleBinding")
                     if "dashboard" in o["metadata"]["name"])
        assert rbs == [("baton-dashboard-edit", "team-a"), ("baton-dashboard-leases", "team-a"),
                       ("baton-dashboard-view", "team-a")], rbs
        args = one(objs, "Deployment", "baton-dashboard")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--namespace") + 1] == "team-a" and "--all-namespaces" not in args, args
        try:
            render({"dashboard": {"enabled": True}, "aggregatedRoles": {"enabled": False}})
        except helm.HelmError as e:
            assert "aggregatedRoles" in str(e), e
        else:
            raise AssertionError("the dashboard rendered without the aggregated roles it is bound to")

    @check("crds: the chart ships crds/baton.dev_crds.yaml unchanged")
    def _crds() -> None:
        with helm.Chart.load(CHART) as chart:
            crds = chart.crds
        top = (ROOT / "crds" / "baton.dev_crds.yaml").read_text()
        assert [c["filename"].split("/", 1)[-1] for c in crds] == ["crds/baton.dev_crds.yaml"], crds and crds[0]["filename"]
        assert crds[0]["data"] == top, "charts/baton/crds/baton.dev_crds.yaml differs from crds/baton.dev_crds.yaml"
        assert (CONFIG / "crd" / "baton.dev_crds.yaml").read_text() == top, "config/crd copy differs"

    @check("package: the chart archives and loads back with its CRDs and schema")
    def _package() -> None:
        with tempfile.TemporaryDirectory() as tmp, helm.Chart.load(CHART) as chart:
            archive = chart.save(tmp)
            with helm.Chart.load(archive) as packed:
                assert packed.name == "baton" and packed.version == chart.version
                assert packed.crds and packed.schema == chart.schema
                assert packed.render(name="baton", namespace="baton-system") == chart.render(name="baton", namespace="baton-system")

    @check("kustomize: config/ and config/samples/ render")
    def _kustomize() -> None:
        for d in (CONFIG, CONFIG / "samples", CONFIG / "crd", CONFIG / "rbac", CONFIG / "manager"):
            proc = subprocess.run([KUBECTL, "kustomize", str(d)], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"kubectl kustomize {d} failed: {proc.stderr}"
            objs = parse_manifests(proc.stdout)
            assert objs, f"kubectl kustomize {d} rendered nothing"
        objs = parse_manifests(subprocess.run([KUBECTL, "kustomize", str(CONFIG)], capture_output=True, text=True).stdout)
        names = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objs)
        for want in ("CustomResourceDefinition/rollouts.baton.dev", "CustomResourceDefinition/listenersets.baton.dev",
                     "Namespace/baton-system", "ServiceAccount/baton-controller", "ClusterRole/baton-controller",
                     "ClusterRoleBinding/baton-controller", "Role/baton-leader-election", "Deployment/baton-controller",
                     "PodDisruptionBudget/baton-controller", "Service/baton-controller-metrics",
                     "ClusterRole/baton-admin", "ClusterRole/baton-edit", "ClusterRole/baton-view",
                     "ValidatingAdmissionPolicy/baton-lease-guard", "ValidatingAdmissionPolicyBinding/baton-lease-guard"):
            assert want in names, f"{want} missing from kubectl kustomize config/: {names}"
        # config/policy is the chart's policy for the names config/ uses.
        chart = render({"fullnameOverride": "baton", "serviceAccount": {"name": "baton-controller"}})["objects"]
        for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
            for name in ("baton-lease-guard", "baton-controller-leases"):
                mine = one(objs, kind, name)["spec"]
                theirs = one(chart, kind, name)["spec"]
                assert mine == theirs, f"config/policy {kind}/{name} differs from the chart's: {mine} != {theirs}"
        # config/argocd: a component merging the health scripts into Argo CD's argocd-cm.
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(CONFIG / "argocd", os.path.join(d, "argocd"))
            with open(os.path.join(d, "cm.yaml"), "w") as f:
                f.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: argocd}\ndata: {url: x}\n")
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                f.write("resources: [cm.yaml]\ncomponents: [argocd]\n")
            proc = subprocess.run([KUBECTL, "kustomize", d], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"config/argocd as a component: {proc.stderr}"
            cm = one(parse_manifests(proc.stdout), "ConfigMap", "argocd-cm")
            for kind in ("Rollout", "ListenerSet"):
                script = (CONFIG / "argocd" / "baton.dev" / kind / "health.lua").read_text()
                assert cm["data"][f"resource.customizations.health.baton.dev_{kind}"] == script, kind
            assert cm["data"]["url"] == "x", "the rest of argocd-cm is kept"
            # The actions key is the action scripts in argocd-cm's format, nothing else.
            rollout = CONFIG / "argocd" / "baton.dev" / "Rollout"
            indent = lambda text, n: "".join((" " * n + l) if l.strip() else l for l in text.splitlines(True))
            want = "discovery.lua: |\n" + indent((rollout / "actions" / "discovery.lua").read_text(), 2) + "definitions:\n"
            for a in ("promote", "promote-full", "abort", "retry", "restart", "pause", "resume"):
                want += f"  - name: {a}\n    action.lua: |\n" + indent((rollout / "actions" / a / "action.lua").read_text(), 6)
            assert cm["data"]["resource.customizations.actions.baton.dev_Rollout"] == want, "actions.yaml is stale"
        for o in objs:
            if o["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                                 "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
                assert o["metadata"].get("namespace") == "baton-system", o["metadata"]

    checks = [_lint_default, _lint_ns, _schema, _render_default, _render_ns, _render_namespaces, _render_options, _render_shards, _render_dashboard, _crds,
              _package, _kustomize]
    for c in checks:
        c()

    if not args.no_install:
        sim: Simulator | None = None
        try:
            sim = Simulator(args.kubeconfig)
        except Exception as e:  # noqa: BLE001
            RESULTS.append(("simulator", repr(e)))
            print(f"FAIL simulator: {e}", flush=True)
        if sim is not None:
            try:
                run_install_checks(sim.kubeconfig)
            finally:
                sim.stop()

    failed = [(n, d) for n, d in RESULTS if d is not None]
    passed = len(RESULTS) - len(failed)
    if failed:
        print("\nFailures:")
        for n, d in failed:
            print(f"  {n}: {d.strip().splitlines()[-1] if d else ''}")
    print(f"{passed} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


def delete_namespaces(kubeconfig: str, *names: str) -> None:
    """On a shared cluster: delete the namespaces a check made (in the background)."""
    if SHARED:
        kubectl(kubeconfig, "delete", "namespace", "--wait=false", "--ignore-not-found", *names, check_rc=False)


def run_install_checks(kubeconfig: str) -> None:
    @check("install: default values into baton-system; every object and the CRDs exist")
    def _install_default() -> None:
        release, ns = uniq("baton"), uniq("baton-system")
        # On a shared cluster the controller watches its own namespace only, so its Lease guard
        # binds there: a guard over every namespace would refuse other tests' controllers.
        values = {"controller": {"watchNamespace": ns}} if SHARED else None
        try:
            rel = install(kubeconfig, release, ns, values)
            assert rel["status"] == "deployed", rel
            objs = parse_manifests(rel["manifest"])
            assert objs, "release has no manifest"
            expected = render(values, name=release, namespace=ns)["objects"]
            assert sorted((o["kind"], o["metadata"]["name"]) for o in objs) == sorted(
                (o["kind"], o["metadata"]["name"]) for o in expected
            ), "installed manifest differs from the offline render"
            assert_exist(kubeconfig, objs, ns)
            with helm.Chart.load(CHART) as chart:
                crds = [o for c in chart.crds for o in parse_manifests(c["data"])]
            assert_exist(kubeconfig, crds, "default")
            # The CRDs serve their resources: the sample objects are accepted.
            out = kubectl(kubeconfig, "api-resources", "--api-group=baton.dev", "-o", "name").stdout.split()
            assert sorted(out) == ["listenersets.baton.dev", "rollouts.baton.dev"], out
        finally:
            if SHARED:
                try:
                    with helm.Config(kubeconfig_path=kubeconfig, namespace=ns, storage_driver="secret") as cfg:
                        cfg.uninstall(release, timeout=60)
                except Exception as e:  # noqa: BLE001 - the install's own failure is the one to report
                    print(f"     helm uninstall {release}: {e}", flush=True)
                delete_namespaces(kubeconfig, ns)

    @check("install: namespace-scoped RBAC + agent Role into team-a; every object exists; upgrade; uninstall removes them")
    def _install_ns() -> None:
        release, ns = uniq("baton-team-a"), uniq("team-a")
        try:
            install_ns(kubeconfig, release, ns)
        finally:
            delete_namespaces(kubeconfig, ns)

    @check("kustomize: kubectl apply -k config/ and config/samples/ are accepted")
    def _apply_config() -> None:
        if SHARED:
            apply_config_shared(kubeconfig)
            return
        kubectl(kubeconfig, "apply", "-k", str(CONFIG))
        objs = parse_manifests(kubectl(kubeconfig, "kustomize", str(CONFIG)).stdout)
        assert_exist(kubeconfig, objs, "baton-system")
        apply_samples(kubeconfig, "default")

    for c in (_install_default, _install_ns, _apply_config):
        c()


def install_ns(kubeconfig: str, release: str, ns: str) -> None:
    """Release `release` into `ns` with namespace-scoped RBAC, the agent Role and the dashboard:
    every object exists, the dashboard may do what it should there only; upgrade; uninstall."""
    values = namespaced_install_values()
    rel = install(kubeconfig, release, ns, values)
    assert rel["status"] == "deployed", rel
    objs = parse_manifests(rel["manifest"])
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("Role", f"{release}-agent") in kinds and ("Role", f"{release}-controller") in kinds, kinds
    assert ("ClusterRole", f"{release}-controller") not in kinds, kinds
    assert_exist(kubeconfig, objs, ns)
    # The dashboard's ServiceAccount may read what it shows and patch Rollouts, in its namespace only.
    sa = f"system:serviceaccount:{ns}:{release}-dashboard"
    for verb, what, where, want in (("list", "rollouts.baton.dev", ns, "yes"), ("watch", "leases", ns, "yes"),
                                    ("list", "controllerrevisions.apps", ns, "yes"), ("list", "events", ns, "yes"),
                                    ("patch", "rollouts.baton.dev", ns, "yes"), ("get", "secrets", ns, "no"),
                                    ("patch", "rollouts.baton.dev", "default", "no"), ("patch", "deployments.apps", ns, "no")):
        got = kubectl(kubeconfig, "auth", "can-i", verb, what, "-n", where, "--as", sa, check_rc=False).stdout.strip()
        assert got == want, f"{sa} can-i {verb} {what} -n {where}: {got}, want {want}"
    values["replicaCount"] = 3
    rel = upgrade(kubeconfig, release, ns, values)
    assert rel["status"] == "deployed", rel
    live = json.loads(kubectl(kubeconfig, "get", "-n", ns, "deployment", release, "-o", "json").stdout)
    assert live["spec"]["replicas"] == 3, live["spec"]
    uninstall(kubeconfig, release, ns)
    deadline = time.monotonic() + 30
    while True:
        left = kubectl(kubeconfig, "get", "-n", ns, "--ignore-not-found", "-f", "-", "-o", "name",
                       stdin=objects_to_yaml(objs)).stdout.split()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not left, f"left after uninstall: {left}"


def apply_samples(kubeconfig: str, ns: str) -> None:
    """`kubectl apply -k config/samples/` into `ns`: every object exists."""
    kubectl(kubeconfig, "apply", "-n", ns, "-k", str(CONFIG / "samples"))
    samples = parse_manifests(kubectl(kubeconfig, "kustomize", str(CONFIG / "samples")).stdout)
    # The service, its listeners and their Secret; the app (a ConfigMap) and the identity its
    # `baton agent` sidecar runs with (ServiceAccount, Role, RoleBinding).
    assert {o["kind"] for o in samples} == {
        "Rollout", "ListenerSet", "Secret", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"}
    assert_exist(kubeconfig, samples, ns)
    rollout = json.loads(kubectl(kubeconfig, "get", "-n", ns, "rollout", "user-service", "-o", "json").stdout)
    assert rollout["spec"]["replicas"] == 3 and rollout["spec"]["version"], rollout["spec"]


def apply_config_shared(kubeconfig: str) -> None:
    """config/ on a shared cluster: its objects but the CRDs (installed already, and left as they
    are) and its Namespace, with the namespaced ones moved to a namespace of the check's own,
    applied as a server dry run — every object validated and admitted, none stored; the
    samples applied for real in another namespace of the check's own."""
    ns, samples = uniq("baton-system"), uniq("samples")
    kubectl(kubeconfig, "create", "namespace", ns)
    kubectl(kubeconfig, "create", "namespace", samples)
    try:
        objs = parse_manifests(kubectl(kubeconfig, "kustomize", str(CONFIG)).stdout)
        objs = [o for o in objs if o["kind"] not in ("CustomResourceDefinition", "Namespace")]
        for o in objs:
            if o["metadata"].get("namespace") == "baton-system":
                o["metadata"]["namespace"] = ns
        out = kubectl(kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=objects_to_yaml(objs)).stdout
        said = [line for line in out.splitlines() if line.strip()]
        assert len(said) == len(objs), f"{len(objs)} objects, kubectl said:\n{out}"
        done = re.compile(r"^\S+ (created|configured|unchanged) \(server dry run\)$")
        assert all(done.match(line) for line in said), out
        apply_samples(kubeconfig, samples)
    finally:
        delete_namespaces(kubeconfig, ns, samples)


if __name__ == "__main__":
    sys.exit(main())
