#!/usr/bin/env python3
"""Checks of the chart's Grafana dashboard and Prometheus alerts with Helm's real engine and the
real promtool.

1. with default values neither the PrometheusRule nor the dashboard ConfigMap is rendered; with
   them enabled both are, with the values applied (namespace, labels, job, `for`, disabled
   alerts, runbook base URL, annotations), and the chart lints strictly;
2. rendered for a release named baton with default values, the PrometheusRule's groups are
   charts/baton/files/alerts.yaml as it is, and values.yaml / values.schema.json name exactly its
   alerts with the same `for`;
3. `promtool check rules` accepts the rendered rules; `promtool test rules` with
   tests/monitoring/alerts_test.yaml passes on them, and fails on renders that change an alert
   (a shorter `for`, a disabled alert): the cases cover every alert firing and staying quiet;
4. every alert has a severity, a summary and description naming what the series names, and a
   runbook anchor that is a heading of docs/operating.md;
5. the dashboard ConfigMap carries charts/baton/dashboards/baton.json unchanged; the dashboard
   has the datasource, job and namespace variables, every query uses them and
   $__rate_interval, panels do not overlap;
6. docs/operating.md "Dashboard and alerts": its `helm install` command's --set values render
   both objects, and its promtool commands pass.

Run: .venv/bin/python tests/helm/check_monitoring.py   (the venv has helm-python-sdk installed)
Exit status 0 when every check passed; the last line is "N passed, N failed".
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_chart import CHART, RESULTS, ROOT, check, find, helm, one, render  # noqa: E402

PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else "promtool")
ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "dashboards" / "baton.json"
ALERTS_TEST = ROOT / "tests" / "monitoring" / "alerts_test.yaml"
DOCS = ROOT / "docs" / "operating.md"
DEFAULT_JOB = 'job="baton-metrics"'
BOTH = {"metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}}


def load_yaml(path: Path) -> dict[str, Any]:
    return helm.values_from_yaml(path.read_text())


def file_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"]]


def rule_object(values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    objs = render(values, **kw)["objects"]
    rules = find(objs, "PrometheusRule")
    assert len(rules) == 1, f"expected one PrometheusRule, found {len(rules)}"
    return rules[0]


def rendered_rules(values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The `spec` of the rendered PrometheusRule: a rules file (`groups:`)."""
    return rule_object(values, **kw)["spec"]


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def promtool_test(rules: dict[str, Any]) -> subprocess.CompletedProcess:
    """`promtool test rules` with tests/monitoring/alerts_test.yaml on `rules` (JSON is YAML)."""
    cases = load_yaml(ALERTS_TEST)
    with tempfile.TemporaryDirectory(prefix="baton-rules-") as tmp:
        (Path(tmp) / "rules.yaml").write_text(json.dumps(rules))
        cases["rule_files"] = ["rules.yaml"]
        (Path(tmp) / "test.yaml").write_text(json.dumps(cases))
        return promtool("test", "rules", "test.yaml", cwd=Path(tmp))


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of `markdown`."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def docs_section() -> str:
    text = DOCS.read_text()
    assert "\n## Dashboard and alerts\n" in text, "docs/operating.md has no section Dashboard and alerts"
    return text.split("\n## Dashboard and alerts\n", 1)[1].split("\n## ", 1)[0]


def merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v
    return into


def human(duration: str) -> str:
    """A `for` as the docs say it: 5m → "5 minutes", 1h → "1 hour"."""
    m = re.fullmatch(r"(\d+)([mh])", duration)
    assert m, duration
    n, unit = int(m.group(1)), {"m": "minute", "h": "hour"}[m.group(2)]
    return f"{n} {unit}" + ("s" if n != 1 else "")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


@check("monitoring: off by default; the chart lints strictly with both on")
def _default() -> None:
    objs = render(None)["objects"]
    assert not find(objs, "PrometheusRule"), "a PrometheusRule by default"
    assert not [o for o in find(objs, "ConfigMap") if "grafana" in o["metadata"]["name"]], "a dashboard by default"
    objs = render(BOTH)["objects"]
    assert len(find(objs, "PrometheusRule")) == 1 and one(objs, "ConfigMap", "baton-grafana-dashboard")
    report = helm.lint(CHART, BOTH, strict=True, namespace="baton-system")
    bad = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not bad, f"lint findings: {bad}"


@check("schema: the monitoring values are checked")
def _schema() -> None:
    with helm.Chart.load(CHART) as chart:
        for bad in ({"prometheusRule": {"for": {"BatonNoLeader": "1 minute"}}},
                    {"prometheusRule": {"for": {"NoSuchAlert": "1m"}}},
                    {"prometheusRule": {"disabled": ["NoSuchAlert"]}},
                    {"prometheusRule": {"severity": "page"}},
                    {"grafanaDashboard": {"labels": {"grafana_dashboard": 1}}},
                    {"grafanaDashboard": {"folder": "baton"}}):
            merged = merge(json.loads(json.dumps(chart.values)), {"metrics": bad})
            try:
                chart.validate_schema(merged)
            except helm.HelmError:
                continue
            raise AssertionError(f"schema accepted {bad}")


@check("PrometheusRule: the default render is charts/baton/files/alerts.yaml; values and schema name its alerts")
def _rule_default() -> None:
    obj = rule_object({"metrics": {"prometheusRule": {"enabled": True}}})
    assert (obj["apiVersion"], obj["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule"), obj["kind"]
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("baton", "baton-system"), obj["metadata"]
    assert obj["spec"] == load_yaml(ALERTS), "the rendered groups differ from charts/baton/files/alerts.yaml"
    rules = file_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)) >= 9, names
    with helm.Chart.load(CHART) as chart:
        values = chart.values["metrics"]["prometheusRule"]
        schema = chart.schema["properties"]["metrics"]["properties"]["prometheusRule"]["properties"]
    assert values["for"] == {r["alert"]: r["for"] for r in rules}, f"values.yaml for: {values['for']}"
    assert sorted(schema["for"]["properties"]) == sorted(names), sorted(schema["for"]["properties"])
    assert sorted(schema["disabled"]["items"]["enum"]) == sorted(names), schema["disabled"]


@check("PrometheusRule: namespace, labels, job, for, disabled and runbookBaseUrl are applied")
def _rule_values() -> None:
    values = {"metrics": {"prometheusRule": {
        "enabled": True, "namespace": "monitoring", "labels": {"release": "prometheus"},
        "for": {"BatonNoLeader": "3m"}, "disabled": ["BatonRolloutStalled"],
        "runbookBaseUrl": "https://wiki.example.com/baton/operating"}}}
    obj = rule_object(values, name="ops", namespace="apps")
    meta = obj["metadata"]
    assert (meta["name"], meta["namespace"]) == ("ops-baton", "monitoring"), meta
    assert meta["labels"]["release"] == "prometheus" and meta["labels"]["app.kubernetes.io/instance"] == "ops", meta
    by_name = {r["alert"]: r for g in obj["spec"]["groups"] for r in g["rules"]}
    want = {r["alert"]: r for r in file_rules() if r["alert"] != "BatonRolloutStalled"}
    assert sorted(by_name) == sorted(want), sorted(by_name)
    for name, r in by_name.items():
        assert r["for"] == ("3m" if name == "BatonNoLeader" else want[name]["for"]), (name, r["for"])
        # Every selector of the job names this release's: none is left at the file's.
        assert DEFAULT_JOB not in r["expr"], r["expr"]
        assert r["expr"] == want[name]["expr"].replace(DEFAULT_JOB, 'job="ops-baton-metrics"'), r["expr"]
        assert r["annotations"]["runbook_url"] == f"https://wiki.example.com/baton/operating#{name.lower()}", r
        assert r["labels"] == want[name]["labels"], r["labels"]
    # A group all of whose alerts are disabled is left out, not rendered empty.
    rollout_alerts = [r["alert"] for g in load_yaml(ALERTS)["groups"] if g["name"] == "baton.rollouts" for r in g["rules"]]
    spec = rendered_rules({"metrics": {"prometheusRule": {"enabled": True, "disabled": rollout_alerts}}})
    assert [g["name"] for g in spec["groups"]] == ["baton.listeners", "baton.controller"], spec["groups"]
    spec = rendered_rules({"metrics": {"prometheusRule": {"enabled": True, "job": "kubernetes-pods"}}})
    exprs = [r["expr"] for g in spec["groups"] for r in g["rules"]]
    assert all('job="kubernetes-pods"' in e and DEFAULT_JOB not in e for e in exprs), exprs


@check("promtool check rules: the rendered PrometheusRule and charts/baton/files/alerts.yaml")
def _promtool_check() -> None:
    n = len(file_rules())
    for label, spec in (("default", rendered_rules({"metrics": {"prometheusRule": {"enabled": True}}})),
                        ("release ops", rendered_rules(BOTH, name="ops", namespace="apps"))):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(json.dumps(spec))
            f.flush()
            out = promtool("check", "rules", f.name)
        assert out.returncode == 0, f"{label}: {out.stdout}{out.stderr}"
        assert f"SUCCESS: {n} rules found" in out.stdout, out.stdout
    out = promtool("check", "rules", str(ALERTS))
    assert out.returncode == 0 and f"SUCCESS: {n} rules found" in out.stdout, out.stdout + out.stderr


@check("promtool test rules: tests/monitoring/alerts_test.yaml passes on the rendered rules, fails on changed ones")
def _promtool_test() -> None:
    enabled = {"metrics": {"prometheusRule": {"enabled": True}}}
    out = promtool_test(rendered_rules(enabled))
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    # Every alert is shown firing and shown quiet.
    cases = [c for t in load_yaml(ALERTS_TEST)["tests"] for c in t["alert_rule_test"]]
    names = {r["alert"] for r in file_rules()}
    assert {c["alertname"] for c in cases if c.get("exp_alerts")} == names, "an alert is never shown firing"
    assert {c["alertname"] for c in cases if not c.get("exp_alerts")} == names, "an alert is never shown quiet"
    # The cases notice a changed alert.
    for change, alert in (({"for": {"BatonRolloutDegraded": "1m"}}, "BatonRolloutDegraded"),
                          ({"disabled": ["BatonNoLeader"]}, "BatonNoLeader"),
                          ({"job": "other"}, "BatonListenersOrphaned")):
        out = promtool_test(rendered_rules(merge(json.loads(json.dumps(enabled)), {"metrics": {"prometheusRule": change}})))
        assert out.returncode != 0 and alert in out.stdout + out.stderr, f"{change} passed:\n{out.stdout}{out.stderr}"


@check("alerts: severity, summary, description naming namespace/name, runbook anchors in docs/operating.md")
def _annotations() -> None:
    headings = anchors(DOCS.read_text())
    for r in file_rules():
        name = r["alert"]
        assert r["labels"]["severity"] in ("critical", "warning"), (name, r["labels"])
        ann = r["annotations"]
        assert ann["summary"] and ann["description"], (name, ann)
        path, _, anchor = ann["runbook_url"].partition("#")
        assert path == "docs/operating.md" and anchor == name.lower(), (name, ann["runbook_url"])
        assert anchor in headings, f"{name}: docs/operating.md has no heading #{anchor}"
        by = re.search(r"by \(([^)]*)\)", r["expr"])
        grouped = {s.strip() for s in by.group(1).split(",")} if by else set()
        for label in grouped & {"namespace", "name", "controller"}:
            for key in ("summary", "description"):
                assert f"$labels.{label}" in ann[key], f"{name}: {key} does not name {label}"


@check("dashboard: the ConfigMap carries charts/baton/dashboards/baton.json with the values applied")
def _dashboard_configmap() -> None:
    cm = one(render(BOTH)["objects"], "ConfigMap", "baton-grafana-dashboard")
    assert cm["metadata"]["namespace"] == "baton-system" and cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]
    assert not cm["metadata"].get("annotations"), cm["metadata"]
    assert cm["data"]["baton.json"].strip() == DASHBOARD.read_text().strip(), "the ConfigMap's baton.json differs"
    assert json.loads(cm["data"]["baton.json"]) == json.loads(DASHBOARD.read_text())
    # Labels merge with the default (a Grafana selecting another label drops it with null).
    values = {"metrics": {"grafanaDashboard": {"enabled": True, "namespace": "grafana",
                                                "labels": {"dashboards": "ops"},
                                                "annotations": {"grafana_folder": "baton"}}}}
    cm = one(render(values, name="ops")["objects"], "ConfigMap", "ops-baton-grafana-dashboard")
    meta = cm["metadata"]
    assert meta["namespace"] == "grafana" and meta["annotations"] == {"grafana_folder": "baton"}, meta
    assert meta["labels"]["dashboards"] == "ops" and meta["labels"]["grafana_dashboard"] == "1", meta["labels"]
    values["metrics"]["grafanaDashboard"]["labels"]["grafana_dashboard"] = None
    labels = one(render(values, name="ops")["objects"], "ConfigMap", "ops-baton-grafana-dashboard")["metadata"]["labels"]
    assert labels["dashboards"] == "ops" and "grafana_dashboard" not in labels, labels


@check("dashboard: datasource, job and namespace variables; every query uses them and $__rate_interval")
def _dashboard() -> None:
    d = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ns = variables["namespace"]
    assert ns["multi"] and ns["includeAll"] and ns["allValue"] == ".*", ns
    assert 'job="$job"' in ns["query"]["query"] and "job" in variables, ns["query"]
    ids, boxes, exprs = set(), [], []
    for p in panels(d):
        assert p["id"] not in ids, f"panel id {p['id']} twice"
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for (t, x, y, w, h) in boxes:
            overlap = g["x"] < x + w and x < g["x"] + g["w"] and g["y"] < y + h and y < g["y"] + g["h"]
            assert not overlap, f"panels {t!r} and {p['title']!r} overlap"
        boxes.append((p["title"], g["x"], g["y"], g["w"], g["h"]))
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            e = t["expr"]
            exprs.append(e)
            assert 'job="$job"' in e, f"{p['title']}: {e}"
            if re.search(r"baton_(rollout|listener)", e):
                assert 'namespace=~"$namespace"' in e, f"{p['title']}: {e}"
            ranges = re.findall(r"\[([^\]]*)\]", e)
            assert all(r == "$__rate_interval" for r in ranges), f"{p['title']}: {e}"
    titles = {p["title"] for p in panels(d)}
    for want in ("Rollouts by phase", "Batch progress", "Rollbacks and degraded rollouts", "Listeners by state",
                 "Handover gap", "Reconciles by result", "Reconcile errors by kind", "API requests by code", "Leader"):
        assert want in titles, f"no panel {want!r}"
    assert len(exprs) >= 15, exprs


@check("docs: the helm install of 'Dashboard and alerts' renders both; its promtool commands pass")
def _docs() -> None:
    section = docs_section()
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip()]
    installs = [ln for ln in lines if ln.startswith("helm install")]
    assert len(installs) == 1, installs
    args = shlex.split(installs[0])
    values: dict[str, Any] = {}
    for i, a in enumerate(args):
        if a == "--set":
            merge(values, helm.parse_set_string(args[i + 1]))
    namespace = args[args.index("-n") + 1]
    objs = render(values, name=args[2], namespace=namespace)["objects"]
    assert len(find(objs, "PrometheusRule")) == 1 and len(find(objs, "ServiceMonitor")) == 1, values
    one(objs, "ConfigMap", "baton-grafana-dashboard")
    commands = [ln for ln in lines if ln.startswith("promtool ")]
    assert len(commands) == 2, commands
    for c in commands:
        out = promtool(*shlex.split(c)[1:])
        assert out.returncode == 0 and "SUCCESS" in out.stdout, f"{c}:\n{out.stdout}{out.stderr}"
    for r in file_rules():
        assert f"#### {r['alert']}\n" in section, f"no section for {r['alert']}"
        assert f"after {human(r['for'])}" in section.split(f"#### {r['alert']}\n", 1)[1].split("####", 1)[0], r["alert"]


def main() -> int:
    print(f"helm SDK {helm.helm_sdk_version()}, {subprocess.run([PROMTOOL, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}", flush=True)
    for c in (_default, _schema, _rule_default, _rule_values, _promtool_check, _promtool_test, _annotations,
              _dashboard_configmap, _dashboard, _docs):
        c()
    failed = [n for n, d in RESULTS if d]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
