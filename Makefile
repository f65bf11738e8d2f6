# baton — developer entry points. `make test` installs what a fresh machine lacks, then runs every test.
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
export CARGO_TERM_COLOR := never

.PHONY: build test lint fmt crds crds-check demo sim bench deps

build:
	$(CARGO) build --workspace --all-targets

# Test-time tools: Helm's engine (helm-python-sdk, for the chart checks); kubectl is on the machine.
deps:
	@test -x /usr/bin/kubectl || { echo "kubectl not found at /usr/bin/kubectl"; exit 1; }

test: deps
	$(CARGO) test --workspace --all-targets -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

crds:
	$(CARGO) run --quiet --bin baton -- crds > crds/baton.dev_crds.yaml

# Fails when crds/ is not what `baton crds` prints.
crds-check:
	$(CARGO) run --quiet --bin baton -- crds | diff -u crds/baton.dev_crds.yaml - || { echo "crds/ is out of date: run 'make crds'"; exit 1; }

demo:
	$(CARGO) run --quiet --release --bin baton -- demo

sim:
	$(CARGO) run --quiet --release --bin baton-sim -- serve

bench:
	$(CARGO) run --quiet --release -p baton-sim --example sim_bench
