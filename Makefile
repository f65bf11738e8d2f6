# baton — developer entry points. `make test` installs what a fresh machine lacks, then runs every test.
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
HELM_SDK := helm-python-sdk==0.2.2
export CARGO_TERM_COLOR := never

.PHONY: build test lint fmt crds crds-check demo sim bench bench-scale bench-listeners-scale bench-listeners-rebalance deps compat chart-check conformance protobuf

build:
	$(CARGO) build --workspace --all-targets

# What the tests need beyond cargo: real kubectl (on these machines at /usr/bin/kubectl), Helm's
# engine from PyPI (helm-python-sdk) in a virtualenv, for the chart checks, Debian's headless
# Chromium with chromedriver, for the dashboard's browser test, Debian's Prometheus, for the
# Rollout's prometheus checks, and Debian's Lua 5.1, which runs the Argo CD health scripts as
# Argo CD does (installed when missing).
deps:
	@test -x /usr/bin/kubectl || { echo "kubectl not found at /usr/bin/kubectl"; exit 1; }
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver -a -x /usr/bin/prometheus -a -x /usr/bin/lua5.1 || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "installing Debian's chromium, chromium-driver (the dashboard's browser test), prometheus (prometheus checks) and lua5.1 (Argo CD health scripts)"; \
		$$SUDO apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver prometheus lua5.1 >/dev/null; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -c 'import helm_python' 2>/dev/null || $(VENV)/bin/pip install --quiet '$(HELM_SDK)'

# The baton of the per-listener ownership protocol (the last commit before the liveness Leases),
# built from this repository's history, for the mixed-version upgrade tests (tests/listener_procs/upgrade.rs):
# its sources at that commit, with its binary renamed baton-v1 so that it never takes the place of
# the binary under test, in this target directory (the dependencies are shared).
COMPAT_REV := 0d2f28776ef561c289a9bb970d765c3498d01523
COMPAT_DIR := target/compat
compat:
	@test -x target/debug/baton-v1 || { \
		git cat-file -e $(COMPAT_REV)^{commit} 2>/dev/null || \
			{ test "$$(git rev-parse --is-shallow-repository)" = true && git fetch --quiet --unshallow; } || true; \
		git cat-file -e $(COMPAT_REV)^{commit} 2>/dev/null || { \
			echo "make compat: commit $(COMPAT_REV) is not in this clone's history (a shallow clone?): fetch it (git fetch --unshallow) to build the baton of the per-listener protocol for tests/listener_procs/upgrade.rs"; exit 1; }; \
		rm -rf $(COMPAT_DIR)/src && mkdir -p $(COMPAT_DIR)/src && \
		git archive $(COMPAT_REV) | tar -x -C $(COMPAT_DIR)/src && \
		sed -i '/^\[\[bin\]\]/,/^path/ s/^name = "baton"$$/name = "baton-v1"/' $(COMPAT_DIR)/src/Cargo.toml && \
		echo "building the baton of the per-listener protocol ($(COMPAT_REV)) as target/debug/baton-v1" && \
		cd $(COMPAT_DIR)/src && CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) build --quiet --locked --no-default-features --bin baton-v1; }

test: deps compat
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

crds:
	$(CARGO) run --quiet --bin baton -- crds > crds/baton.dev_crds.yaml
	cp crds/baton.dev_crds.yaml charts/baton/crds/baton.dev_crds.yaml
	cp crds/baton.dev_crds.yaml config/crd/baton.dev_crds.yaml

# Fails when crds/ is not what `baton crds` prints (also checked by tests/crds.rs).
crds-check:
	$(CARGO) run --quiet --bin baton -- crds | diff -u crds/baton.dev_crds.yaml - || { echo "crds/ is out of date: run 'make crds'"; exit 1; }

# The simulator's JSON <-> protobuf conversions, generated from the k8s-pb crate's messages.
protobuf:
	$(CARGO) run --quiet -p baton-sim --example protobuf_codegen > sim/src/protobuf/generated.rs.new
	mv sim/src/protobuf/generated.rs.new sim/src/protobuf/generated.rs
	rustfmt --edition 2021 sim/src/protobuf/generated.rs

# kube-rs 5.0.0's own #[ignore]d cluster tests (from the crate sources crates.io serves) against
# a fresh simulator; see sim/conformance/run.sh and docs/simulator.md.
conformance:
	bash sim/conformance/run.sh

chart-check: deps
	$(VENV)/bin/python tests/helm/check_chart.py

demo:
	$(CARGO) run --quiet --release --bin baton -- demo

sim:
	$(CARGO) run --quiet --release --bin baton-sim -- serve

# Benchmarks print their figures; docs/benchmarks.md records them with these commands.
bench:
	$(CARGO) build --release --bin baton --examples
	$(CARGO) build --release -p baton-sim --bin baton-sim --examples
	$(CARGO) run --quiet --release -p baton-sim --example sim_bench
	$(CARGO) run --quiet --release --example rollout_bench
	$(CARGO) run --quiet --release --example check_bench
	$(CARGO) run --quiet --release --example failover_bench
	$(CARGO) run --quiet --release --example listener_bench
	$(CARGO) run --quiet --release --example dashboard_bench
	$(CARGO) run --quiet --release --example listener_safety
	$(CARGO) run --quiet --release --example workload_handover

# ListenerSets at scale (docs/benchmarks.md, "ListenerSets at scale"): 1,000 to 50,000
# listeners on 20 and 100 pods with real agents and the controller as the image ships it.
# Takes ~20 min after the build; SIZES (e.g. "1000x20 10000x20") runs fewer.
SIZES ?=
bench-listeners-scale:
	$(CARGO) build --profile image --no-default-features --bin baton
	$(CARGO) build --release --example listener_scale
	BATON_TEST_BIN=target/image/baton target/release/examples/listener_scale $(SIZES)

# Evening out after a scale-out (docs/listeners.md, "Balance"): 2,000 listeners 5 → 10 pods and
# 10,000 listeners 10 → 20 pods, real agents and apps that take 200 ms to stop. ~5 min.
bench-listeners-rebalance:
	$(CARGO) build --profile image --no-default-features --bin baton
	$(CARGO) build --release --example listener_rebalance
	BATON_TEST_BIN=target/image/baton target/release/examples/listener_rebalance $(SIZES)

# Many Rollouts on one controller (its own process), then the
# 1,000-instance single rollout against its bound. Takes ~15-30 min; see docs/benchmarks.md.
bench-scale:
	$(CARGO) build --release --bin baton --example scale_bench --example rollout_bench --example owner_lookup_bench
	# The controller as the image ships it (Dockerfile: the `image` profile, no `demo` feature).
	$(CARGO) build --profile image --no-default-features --bin baton
	$(CARGO) run --quiet --release --example owner_lookup_bench
	BATON_BIN=target/image/baton $(CARGO) run --quiet --release --example scale_bench
	$(CARGO) run --quiet --release --example rollout_bench
	$(CARGO) run --quiet --release --example check_bench
