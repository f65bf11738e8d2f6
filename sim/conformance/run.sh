#!/usr/bin/env bash
# `make conformance`: kube-rs 5.0.0's own `#[ignore]`d cluster tests against a fresh baton-sim.
#
# The test code is kube-rs's, taken at build time from the crate sources cargo keeps in its
# registry (fetched from crates.io) and copied under target/, never into this repository.
# Prints one line per test and a closing "N passed, N failed" line; exits non-zero when fewer
# than MIN_PASS pass or a test the simulator claims fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
MIN_PASS=${MIN_PASS:-25}
WORK=$ROOT/target/conformance
VERSION=5.0.0
CRATES=(kube kube-client kube-runtime)
start=$(date +%s)

# 1. The crate sources, from crates.io through cargo's own cache.
registry_src() {
    local dir
    dir=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$1-$VERSION" 2>/dev/null | head -n1 || true)
    echo "$dir"
}
if [ -z "$(registry_src kube)" ] || [ -z "$(registry_src kube-client)" ] || [ -z "$(registry_src kube-runtime)" ]; then
    # A throwaway package depending on the three makes cargo download (and unpack) them.
    mkdir -p "$WORK/fetch/src"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\nkube = "=%s"\nkube-client = "=%s"\nkube-runtime = "=%s"\n' \
        "$VERSION" "$VERSION" "$VERSION" > "$WORK/fetch/Cargo.toml"
    touch "$WORK/fetch/src/lib.rs"
    $CARGO fetch --manifest-path "$WORK/fetch/Cargo.toml"
fi

# 2. One workspace of copies, so each crate is built once.
rm -rf "$WORK/ws"
mkdir -p "$WORK/ws"
for c in "${CRATES[@]}"; do
    src=$(registry_src "$c")
    [ -n "$src" ] || { echo "conformance: $c-$VERSION not in the cargo registry" >&2; exit 1; }
    cp -R "$src" "$WORK/ws/$c"
    rm -f "$WORK/ws/$c/Cargo.lock"
    chmod -R u+w "$WORK/ws/$c"
done
cp "$(registry_src kube)/Cargo.lock" "$WORK/ws/Cargo.lock"
# crates.io drops path-only dev-dependencies on publish: the tests of kube-client and
# kube-runtime use `kube` itself, as kube-rs's own workspace gives them.
printf '\n[dev-dependencies.kube]\npath = "../kube"\nfeatures = ["derive", "client", "ws"]\n' >> "$WORK/ws/kube-client/Cargo.toml"
printf '\n[dev-dependencies.kube]\npath = "../kube"\nfeatures = ["derive", "client", "runtime"]\n' >> "$WORK/ws/kube-runtime/Cargo.toml"
cat > "$WORK/ws/Cargo.toml" <<TOML
[workspace]
members = ["kube", "kube-client", "kube-runtime"]
resolver = "2"
[patch.crates-io]
kube-client = { path = "kube-client" }
kube-runtime = { path = "kube-runtime" }
TOML

# 3. Build the tests and the simulator.
FEATURES="kube/client,kube/config,kube/derive,kube/runtime,kube/rustls-tls,kube/ring,kube/ws,kube/jsonpatch,kube/unstable-client,kube-client/ws,kube-client/kubelet-debug,kube-client/unstable-client"
export CARGO_TARGET_DIR=$WORK/target
# kube-rs's workspace has no profile of its own: full debuginfo made its test binaries ~2.4 GB
# on disk; no debuginfo, no incremental state (a clean CI disk filled while linking).
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_INCREMENTAL=0
$CARGO test --manifest-path "$WORK/ws/Cargo.toml" -p kube -p kube-client -p kube-runtime \
    --features "$FEATURES" --lib --no-run
unset CARGO_TARGET_DIR CARGO_PROFILE_DEV_DEBUG
# The debug build `make test` has already made (a release build would compile everything again).
$CARGO build -p baton-sim --bin baton-sim
built=$(date +%s)

# 4. A fresh simulator and a kubeconfig pointing at it.
source "$ROOT/sim/conformance/start-sim.sh" "conformance"

# 5. The ignored tests, one report.
export CARGO_TARGET_DIR=$WORK/target CARGO_PROFILE_DEV_DEBUG=0 CARGO_INCREMENTAL=0
set +e
$CARGO test --manifest-path "$WORK/ws/Cargo.toml" -p kube -p kube-client -p kube-runtime \
    --features "$FEATURES" --lib --no-fail-fast -- --ignored --test-threads=4 2>&1 | tee "$RUN/tests.log"
set -e
unset CARGO_TARGET_DIR CARGO_PROFILE_DEV_DEBUG
end=$(date +%s)

passed=$(grep -cE '^test .* \.\.\. ok$' "$RUN/tests.log" || true)
failed=$(grep -cE '^test .* \.\.\. FAILED$' "$RUN/tests.log" || true)
echo
echo "conformance: tests that failed:"
grep -E '^test .* \.\.\. FAILED$' "$RUN/tests.log" | sed 's/^test /  /; s/ \.\.\. FAILED$//' || true
# Tests of what the simulator does not claim (docs/simulator.md lists them).
UNCLAIMED=$(grep -vE '^\s*(#|$)' "$ROOT/sim/conformance/unclaimed.txt")
unexpected=0
while read -r t; do
    [ -z "$t" ] && continue
    if ! grep -qxF "$t" <<< "$UNCLAIMED"; then
        echo "conformance: $t failed and is not listed in sim/conformance/unclaimed.txt" >&2
        unexpected=1
    fi
done < <(grep -E '^test .* \.\.\. FAILED$' "$RUN/tests.log" | sed 's/^test //; s/ \.\.\. FAILED$//')
echo "conformance: build $((built - start)) s, tests $((end - built)) s"
echo "$passed passed, $failed failed"
if [ "$passed" -lt "$MIN_PASS" ]; then
    echo "conformance: fewer than $MIN_PASS passed" >&2
    exit 1
fi
exit $unexpected
