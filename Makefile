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

# Every debug build compiles the workspace the way `cargo test --workspace` does, so one
# set of dependency artefacts serves the tests, the demo and the docs: the tests'
# dev-dependencies turn on features (tokio's test-util, among others) that `cargo run -p
# demo` would not, and each different feature set recompiled most of the SDK stack (about
# seven minutes of a fresh `make test` on two cores). The binaries are then run from
# target/debug.
DEBUG_BUILD := cargo build --quiet --locked --workspace --bins --tests
DEBUG_BIN   := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug

# The architecture to build for: the one samconfig.toml deploys (x86_64 unless its
# parameter_overrides say Architecture=arm64), or `make ... ARCH=arm64`. Only the command
# line counts: an ARCH inherited from the shell (often amd64 or aarch64, set for other
# tools) is not a choice about this stack. The tests build for this machine instead.
CONFIG_ENV ?= default
ifneq ($(origin ARCH),command line)
ARCH := $(shell $(PYTHON) scripts/samconfig --config-env $(CONFIG_ENV) architecture)
endif
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SAM_BUILD := $(CURDIR)/.aws-sam/build
PACKAGED_BINS := $(CURDIR)/target/packaged-bins.env

.PHONY: help venv test test-repeat lint deny audit soak unit iam docs docs-check validate readme-blocks e2e-release demo build package deploy clean bench bench-chart bench-quick bench-subjects

help:
	@echo "make demo      run the suite locally against moto, the recording stub and a Slack sink"
	@echo "make test      what CI runs: fmt, clippy, every test (with the local servers), template validation, release e2e"
	@echo "make test-repeat N=5 [LOAD=1]   the tests N times (LOAD=1: with every core busy); names any test that failed once"
	@echo "make build     cargo lambda build --release of every function (Amazon Linux 2023 binaries)"
	@echo "make package   sam build: what a deploy uploads, in .aws-sam/build (no AWS account needed)"
	@echo "make deploy    make package, then sam deploy (--guided the first time; then from samconfig.toml)"
	@echo "make soak      10,000 invocations of each function on one process: memory and descriptors must stay flat"
	@echo "make audit     security advisories for every crate in Cargo.lock (needs a network: the RustSec database)"
	@echo "make bench     cold start, warm latency, peak memory and size of every function beside the floor and a Python peer"
	@echo "make bench-chart   redraw bench/results/latest.svg from bench/results/latest.md (measures nothing)"
	@echo "make docs      rewrite the documentation's variable and parameter tables from the code and template.yaml"
	@echo "make venv      create .venv/ with moto, aws-sam-cli and cargo-lambda (done on demand)"

venv: $(STAMP)

$(STAMP): scripts/requirements.txt
	@echo "==> creating $(VENV) (moto, aws-sam-cli, cargo-lambda); first run only"
	$(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
	"$(VENV)/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
	touch "$@"

test: venv lint deny unit iam docs-check validate e2e-release bench-quick readme-blocks
	@echo "==> make test: all checks passed"

# Not in CI: a hunt for flaky tests. Run `make build` first to include the release bootstraps.
N ?= 5
test-repeat: venv
	scripts/test-repeat $(N) $(if $(filter 1,$(LOAD)),--load)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# Supply chain (deny.toml): crates.io only, no git sources, allowed licences, duplicate
# versions as warnings. cargo-deny is built from crates.io into .venv/bin on first use.
DENY_VERSION := 0.20.2
CARGO_DENY   := $(VENV)/bin/cargo-deny

$(CARGO_DENY): | $(STAMP)
	@echo "==> building cargo-deny $(DENY_VERSION) into $(VENV)/bin (first run only, a few minutes)"
	cargo install --quiet --locked cargo-deny --version $(DENY_VERSION) --root "$(VENV)"

deny: $(CARGO_DENY)
	"$(CARGO_DENY)" check --hide-inclusion-graph bans licenses sources

# Security advisories need the RustSec database, fetched from GitHub: without a network this
# says so and fails, rather than passing with nothing checked.
ADVISORY_DB := https://github.com/RustSec/advisory-db
audit: $(CARGO_DENY)
	@if ! timeout 30 git ls-remote --heads "$(ADVISORY_DB)" >/dev/null 2>&1; then \
	  echo "make audit: cannot reach $(ADVISORY_DB) (no network here?): security advisories were NOT checked" >&2; \
	  exit 2; \
	fi
	"$(CARGO_DENY)" check --hide-inclusion-graph advisories

# The recording stub appends every AWS call the functions' tests make to target/aws-calls/,
# which `iam` then compares with each function's role in the template.
CALL_LOG := $(CURDIR)/target/aws-calls

unit: venv
	rm -rf "$(CALL_LOG)"
	STANDINS_CALL_LOG="$(CALL_LOG)" cargo test --workspace --locked

# Each role grants exactly what its function was seen to call (needs `unit` first).
iam: venv
	python scripts/iam-check "$(CALL_LOG)"

# The documentation's tables (README.md, docs/*.md, functions/*/README.md) come from each
# function's declared variable list (what its loader reads, with those defaults) and
# template.yaml's parameters: `docs` writes them, `docs-check` (in `make test`) fails when
# they, the template's Environment blocks or events/env.json disagree, when a page names a
# test that does not exist, or when a relative link in a page leads nowhere.
VARIABLES_JSON := $(CURDIR)/target/variables.json

docs: venv
	mkdir -p target
	$(DEBUG_BUILD)
	"$(DEBUG_BIN)/docs" > "$(VARIABLES_JSON)"
	python scripts/readme-tables --write "$(VARIABLES_JSON)"

docs-check: venv
	mkdir -p target
	$(DEBUG_BUILD)
	"$(DEBUG_BIN)/docs" > "$(VARIABLES_JSON)"
	python scripts/readme-tables --check "$(VARIABLES_JSON)"
	python scripts/tests-named
	python scripts/docs-links

validate: venv
	sam validate --lint --template template.yaml --region us-east-1
	python scripts/adoption-check
	python scripts/metrics-check
	python scripts/name-limits

# Each function's tests/runtime_api.rs runs the debug binary in `unit`; here the same tests
# drive the bootstraps `sam build` put in .aws-sam/build, the files a deploy uploads
# (<NAME>_BIN points them there; scripts/package-check names them). One workspace invocation
# reuses the test binaries `unit` built.
e2e-release: ARCH := $(HOST_ARCH)
e2e-release: venv package
	@echo "==> packaged bootstraps through the Lambda Runtime API: $(FUNCTIONS)"
	env $$(cat "$(PACKAGED_BINS)") cargo test --workspace --locked --test runtime_api

# `make bench` (bench/harness says what it measures): the release bootstraps `make build`
# makes, the floor and the policy case built the same way, and the Python peer in its own
# virtualenv. The harness itself is a debug build shared with the tests; its Runtime API adds
# the same small cost to every subject, the floor included.
BENCH_VENV := $(CURDIR)/bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): bench/python/requirements.txt
	$(PYTHON) -m venv "$(BENCH_VENV)"
	"$(BENCH_VENV)/bin/pip" install --quiet --disable-pip-version-check -r bench/python/requirements.txt
	touch "$@"

# The subjects run here, so they are built for this machine whatever ARCH says. bench-policy
# (the policy case: ecr-scan-gate's policy engine in-process, no Lambda runtime) is built the
# same way as the floor, though it is never packaged: with `--bin`, like `build`, it reuses the
# release artefacts `build` just made (seconds), where `cargo build --release -p` would compile
# the SDK stack again for a second target directory (minutes on two cores).
bench-subjects: override ARCH := $(HOST_ARCH)
bench-subjects: venv build $(BENCH_STAMP)
	cargo lambda build --release --locked $(if $(filter arm64,$(ARCH)),--arm64) --bin bench-floor --bin bench-policy
	$(DEBUG_BUILD)

# A full run writes bench/results/latest.md and latest.svg and rewrites the results block in
# docs/performance.md (it fails, before measuring, if that page lacks the block's markers).
bench: bench-subjects
	"$(DEBUG_BIN)/bench"

# The chart alone, redrawn from the table of the last full run (bench/results/latest.md):
# the harness is built as the tests build it (the debug build every target shares), nothing
# is measured.
bench-chart:
	$(DEBUG_BUILD)
	"$(DEBUG_BIN)/bench" --chart-only

# Not in `make test`: SOAK_N invocations of each function on one warm process, as deployed
# (with the idempotency table); its peak memory and open descriptors must stay flat (growth
# past 10% fails). A run of 10,000 or more rewrites the soak table in docs/performance.md.
SOAK_N ?= 10000
soak: bench-subjects
	"$(DEBUG_BIN)/bench" --soak $(SOAK_N)

# In `make test`: one cold start and a few warm invocations each, so the harness cannot rot.
# No timing is asserted; only that every subject answered.
bench-quick: bench-subjects
	"$(DEBUG_BIN)/bench" --quick --out "$(CURDIR)/target/bench-quick"

# The shell blocks of every page (README.md, docs/*.md, functions/*/README.md), run as a new
# user would (scripts/readme-blocks says how).
readme-blocks: venv
	python scripts/readme-blocks

demo: venv
	$(DEBUG_BUILD)
	"$(DEBUG_BIN)/demo"

build: venv
	@if [ -z "$(filter x86_64 arm64,$(ARCH))" ]; then echo "ARCH must be x86_64 or arm64 (samconfig.toml's Architecture, or ARCH= on the command line), not '$(ARCH)'" >&2; exit 1; fi
	@if [ "$(ARCH)" = arm64 ] && [ ! -d "$$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu" ]; then \
	  echo "arm64 needs Rust's aarch64 target: rustup target add aarch64-unknown-linux-gnu" >&2; exit 1; fi
	cargo lambda build --release --locked $(if $(filter arm64,$(ARCH)),--arm64) $(addprefix --bin ,$(FUNCTIONS))

# SAM builds each function on its own, `cargo lambda build --release --bin <name>` from the
# workspace root. Cargo resolves features for `--bin` across every workspace member (unlike
# `-p`), so `build` selects the same way: SAM then finds everything compiled and only copies
# the bootstraps (with `-p` it recompiled the whole SDK stack, minutes on two cores).
package: venv build
	sam build --beta-features --parameter-overrides Architecture=$(ARCH)
	mkdir -p "$(dir $(PACKAGED_BINS))"
	python scripts/package-check "$(SAM_BUILD)/template.yaml" > "$(PACKAGED_BINS)"
	@echo "==> $(ARCH) package in .aws-sam/build; deploy it with: make deploy"

# Not $(MAKE) in the recipe: make runs such a line even under `make -n`, which would deploy.
REMAKE := $(MAKE)
# The first deploy asks for the stack's parameters and saves them in samconfig.toml (commit
# it); later ones deploy from there. GUIDED=1 asks again, CONFIRM=0 skips the change-set
# question (CI), CONFIG_ENV picks a samconfig environment, and FUNCTIONS="ecr-scan-gate …"
# deploys only those functions (asked again with the others switched off, and saved).
# scripts/deploy says how the architecture is kept in step with the stack's.
deploy: package
	BUILT_ARCH=$(ARCH) CONFIG_ENV=$(CONFIG_ENV) GUIDED=$(GUIDED) CONFIRM=$(CONFIRM) MAKE="$(REMAKE)" \
	  DEPLOY_FUNCTIONS="$(if $(filter command line,$(origin FUNCTIONS)),$(FUNCTIONS))" scripts/deploy

clean:
	cargo clean
	rm -rf .aws-sam
	rm -rf "$(VENV)"
