# The two commands a newcomer needs: `make demo` and `make test` (what CI runs).
# Everything they need is installed here, into .venv/, on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := $(CURDIR)/.venv
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

# moto, sam and cargo-lambda (with its zig) come from the virtualenv.
export PATH := $(VENV)/bin:$(PATH)
export MOTO_SERVER := $(VENV)/bin/moto_server
# Nothing here may reach real AWS: no instance metadata look-ups, fake credentials.
export AWS_EC2_METADATA_DISABLED := true
export SAM_CLI_TELEMETRY := 0

FUNCTIONS := $(notdir $(wildcard functions/*))

.PHONY: help venv test test-repeat lint unit iam docs docs-check validate e2e-release demo build clean

help:
	@echo "make demo      run the suite locally against moto, the recording stub and a Slack sink"
	@echo "make test      what CI runs: fmt, clippy, every test (with the local servers), template validation, release e2e"
	@echo "make test-repeat N=5 [LOAD=1]   the tests N times (LOAD=1: with every core busy); names any test that failed once"
	@echo "make build     cargo lambda build --release of every function (Amazon Linux 2023 binaries)"
	@echo "make docs      rewrite the README's variable and parameter tables from the code and template.yaml"
	@echo "make venv      create .venv/ with moto, aws-sam-cli and cargo-lambda (done on demand)"

venv: $(STAMP)

$(STAMP): scripts/requirements.txt
	@echo "==> creating $(VENV) (moto, aws-sam-cli, cargo-lambda); first run only"
	$(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
	"$(VENV)/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
	touch "$@"

test: venv lint unit iam docs-check validate e2e-release
	@echo "==> make test: all checks passed"

# Not in CI: a hunt for flaky tests. Run `make build` first to include the release bootstraps.
N ?= 5
test-repeat: venv
	scripts/test-repeat $(N) $(if $(filter 1,$(LOAD)),--load)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The recording stub appends every AWS call the functions' tests make to target/aws-calls/,
# which `iam` then compares with each function's role in the template.
CALL_LOG := $(CURDIR)/target/aws-calls

unit: venv
	rm -rf "$(CALL_LOG)"
	STANDINS_CALL_LOG="$(CALL_LOG)" cargo test --workspace --locked

# Each role grants exactly what its function was seen to call (needs `unit` first).
iam: venv
	python scripts/iam-check "$(CALL_LOG)"

# The README's tables come from each function's declared variable list (what its loader reads,
# with those defaults) and template.yaml's parameters: `docs` writes them, `docs-check` (in
# `make test`) fails when they, the template's Environment blocks or events/env.json disagree.
VARIABLES_JSON := $(CURDIR)/target/variables.json

docs: venv
	mkdir -p target
	cargo run --quiet --locked -p docs > "$(VARIABLES_JSON)"
	python scripts/readme-tables --write "$(VARIABLES_JSON)"

docs-check: venv
	mkdir -p target
	cargo run --quiet --locked -p docs > "$(VARIABLES_JSON)"
	python scripts/readme-tables --check "$(VARIABLES_JSON)"

validate: venv
	sam validate --lint --template template.yaml --region us-east-1

# Each function's tests/runtime_api.rs runs the debug binary in `unit`; here the same tests
# drive the release bootstrap that Lambda would run (<NAME>_BIN points them at it). One
# workspace invocation reuses the test binaries `unit` built.
RELEASE_BINS := $(foreach f,$(FUNCTIONS),$(shell echo '$(f)' | tr 'a-z-' 'A-Z_')_BIN=$(CURDIR)/target/lambda/$(f)/bootstrap)

e2e-release: venv build
	@echo "==> release bootstraps through the Lambda Runtime API: $(FUNCTIONS)"
	env $(RELEASE_BINS) cargo test --workspace --locked --test runtime_api

demo: venv
	cargo build --quiet --locked --bins
	cargo run --quiet --locked -p demo

build: venv
	@if [ -z "$(FUNCTIONS)" ]; then echo "no functions yet under functions/"; else \
	  cargo lambda build --release --locked $(addprefix -p ,$(FUNCTIONS)); fi

clean:
	cargo clean
	rm -rf "$(VENV)"
