# Two commands: `make run` (the gateway on conf/tollgate.toml with the mock
# provider) and `make test` (every test). Both install what they need first.
CARGO ?= cargo
BIN := target/release
VENV := .venv
VENV_MCP1 := .venv-mcp1

.PHONY: run test build setup setup-test check lint bench bench-smoke clean-venv soak

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

# One build of every target (binaries, unit tests, benches) in one profile,
# so the test run that follows compiles nothing again.
build: setup
	$(CARGO) build --release --workspace --all-targets

run: build
	scripts/run-demo.sh

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

$(VENV_MCP1)/.installed: tests/requirements-mcp1.txt
	python3 -m venv $(VENV_MCP1)
	$(VENV_MCP1)/bin/pip install -q --disable-pip-version-check -r tests/requirements-mcp1.txt
	touch $@

# The unit tests of the caller formats feed what tollgate renders through the
# official SDKs (OPENAI_SDK_PYTHON; the Anthropic check reads a dump).
SDK_DUMP := target/anthropic-ingress-dump
test: setup-test build $(VENV)/.installed $(VENV_MCP1)/.installed
	rm -rf $(SDK_DUMP)
	OPENAI_SDK_PYTHON=$(CURDIR)/$(VENV)/bin/python ANTHROPIC_INGRESS_DUMP=$(CURDIR)/$(SDK_DUMP) \
		$(CARGO) test --release --workspace
	$(VENV)/bin/python crates/tollgate-llm/tests/anthropic_ingress_sdk_check.py $(SDK_DUMP)
	TOLLGATE_BIN_DIR=$(BIN) TOLLGATE_MCP1_PYTHON=$(CURDIR)/$(VENV_MCP1)/bin/python $(VENV)/bin/pytest -q tests/e2e

# Lints CI holds the tree to: clippy with every warning an error (unwrap and
# expect denied outside tests, by the workspace's [lints]), and rustfmt.
lint: setup
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

# A long run under mixed traffic, faults and reloads (README "Soak").
SOAK_MINUTES ?= 10
soak: build $(VENV)/.installed
	TOLLGATE_BIN_DIR=$(BIN) $(VENV)/bin/python tests/soak.py --minutes $(SOAK_MINUTES)

check: build
	$(BIN)/tollgate check -c conf/tollgate.toml

clean-venv:
	rm -rf $(VENV) $(VENV_MCP1)

# Benchmarks (bench/README.md): tollgate side by side with nginx and the bare
# mock, on the release binaries. `bench` takes about 3 minutes and writes a
# report to bench/results/; `bench-smoke` (CI) only checks every path answers.
bench:
	@scripts/setup.sh --bench
	@$(MAKE) --no-print-directory build
	python3 bench/run.py $(BENCH_ARGS)

bench-smoke:
	@scripts/setup.sh --bench
	@$(MAKE) --no-print-directory build
	python3 bench/run.py --smoke $(BENCH_ARGS)
