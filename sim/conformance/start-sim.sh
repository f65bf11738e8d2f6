# Sourced by the conformance scripts: start a fresh `baton-sim serve` (already built at
# $ROOT/target/debug/baton-sim), stop it and remove its directory on exit, and export
# KUBECONFIG pointing at it. $1 names the caller in the message when it does not start.
# Sets RUN (the simulator's directory) and SIM_PID.
RUN=$(mktemp -d)
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT
"$ROOT/target/debug/baton-sim" serve --kubeconfig "$RUN/kubeconfig" > "$RUN/sim.out" 2> "$RUN/sim.err" &
SIM_PID=$!
for _ in $(seq 1 600); do
    grep -q listening "$RUN/sim.out" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$RUN/sim.out" || { echo "$1: baton-sim did not start" >&2; cat "$RUN/sim.err" >&2; exit 1; }
export KUBECONFIG=$RUN/kubeconfig
