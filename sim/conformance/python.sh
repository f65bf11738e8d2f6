#!/usr/bin/env bash
# The Python clients' own cluster tests against a fresh baton-sim: lightkube's
# `e2e-tests/test_client.py` and the Kubernetes Python client's `kubernetes/e2e_test/`.
#
# Neither project publishes these tests to PyPI (lightkube's sdist and the `kubernetes` wheel and
# sdist ship no e2e tests), so they are read from checkouts of their repositories:
#
#   LIGHTKUBE_SRC=/path/to/lightkube PYTHON_CLIENT_SRC=/path/to/kubernetes-client-python \
#       bash sim/conformance/python.sh [pytest -k expression]
#
# The clients themselves (lightkube, kubernetes) and pytest come from PyPI into the repository's
# virtualenv (.venv). Prints pytest's report per suite; exits non-zero when a selected test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
SELECT=${1:-}
VENV=$ROOT/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet lightkube kubernetes pytest pytest-asyncio anyio

$CARGO build --quiet -p baton-sim --bin baton-sim
source "$ROOT/sim/conformance/start-sim.sh" "python conformance"

status=0
run_suite() {
    local name=$1 dir=$2
    shift 2
    echo "== $name"
    (cd "$dir" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider ${SELECT:+-k "$SELECT"} "$@") || status=1
}
if [ -n "${LIGHTKUBE_SRC:-}" ]; then
    run_suite lightkube "$LIGHTKUBE_SRC" e2e-tests/test_client.py
else
    echo "== lightkube: LIGHTKUBE_SRC not set, skipped"
fi
if [ -n "${PYTHON_CLIENT_SRC:-}" ]; then
    # The tests import `kubernetes.e2e_test.base`, which the PyPI package does not ship: the
    # checkout's e2e_test package runs against the installed client.
    work=$RUN/python-client
    mkdir -p "$work"
    cp -R "$PYTHON_CLIENT_SRC/kubernetes/e2e_test" "$work/e2e_test"
    site=$("$VENV/bin/python" -c 'import kubernetes, os; print(os.path.dirname(kubernetes.__file__))')
    rm -rf "$site/e2e_test"
    cp -R "$work/e2e_test" "$site/e2e_test"
    run_suite "kubernetes python client" "$site/e2e_test" test_apps.py
    rm -rf "$site/e2e_test"
else
    echo "== kubernetes python client: PYTHON_CLIENT_SRC not set, skipped"
fi
exit $status
