#!/usr/bin/env python3
"""`helm install` of charts/baton into a running simulator with Helm's real engine
(helm-python-sdk), for the Rust tests that then run baton with the chart's RBAC
(tests/packaging/chart_rbac). Prints the release's manifest as one JSON list of objects on stdout.

Run: .venv/bin/python tests/helm/install_chart.py --kubeconfig K --release baton \
       --namespace baton-system --values '{"rbac": {"scope": "namespace"}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_chart  # noqa: E402  (helm_python, the chart path and the install/parse helpers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--release", default="baton")
    parser.add_argument("--namespace", default="baton-system")
    parser.add_argument("--values", default="{}", help="chart values as JSON")
    args = parser.parse_args()
    rel = check_chart.install(args.kubeconfig, args.release, args.namespace, json.loads(args.values))
    if rel.get("status") != "deployed":
        print(f"release not deployed: {rel.get('status')}", file=sys.stderr)
        return 1
    print(json.dumps(check_chart.parse_manifests(rel["manifest"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
