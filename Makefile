# watchstate-serverless: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PORT ?= 9000
HOST ?= 127.0.0.1
WATCHSTATE_DEMO ?= 0
WATCHSTATE_DATA_DIR ?= .watchstate
STORE ?= sqlite
PIP ?= python3 -m pip
export PATH := $(HOME)/.local/bin:$(PATH)

FUNCTIONS := webhook api push import export
## Lambda architecture of `make lambda-build` and `make cdk-deploy`: arm64 (default) or x86_64.
ARCH ?= arm64
CDK_DIR := infra/cdk
CDK = cd $(CDK_DIR) && CDK_DISABLE_CLI_TELEMETRY=true npx --no-install cdk

.PHONY: run test test-browser lint build deploy bench soak fanout bench-lambda lambda-build cdk-install cdk-build cdk-synth cdk-test cdk-deploy tools-run tools-test tools-browser tools-lint fmt clippy

## Local emulation: every function under `cargo lambda watch` on $(HOST):$(PORT) (HOST=0.0.0.0
## serves the LAN; WATCHSTATE_DEMO=1 adds the `demo` person the sample events address).
run: tools-run
	PORT=$(PORT) HOST=$(HOST) WATCHSTATE_DEMO=$(WATCHSTATE_DEMO) WATCHSTATE_DATA_DIR=$(WATCHSTATE_DATA_DIR) STORE=$(STORE) infra/local/run.sh

## Every test: unit, contract (SQLite and DynamoDB on moto), end-to-end on the binaries,
## then the console in real browsers (chromium and firefox-esr + playwright-core, tests/browser/).
## `cargo build --bins` builds the functions exactly as `cargo lambda watch` (the e2e and
## browser tests' emulator) builds them: the default members, no dev-dependencies; the
## tests then find them fresh. (`--workspace` would add the test crate's features: a
## third feature set of the whole tree, used by nothing.)
test: tools-test tools-browser
	cargo build --bins
	cargo test --workspace --no-fail-fast
	cd tests/browser && time node --test --test-concurrency=1
	$(MAKE) cdk-test


## The browser tests' console alone: the functions as the emulator builds them, and the
## test stack (console_stack).
test-browser: tools-browser
	cargo build --bins
	cargo build -p e2e --bin console_stack
	cd tests/browser && time node --test --test-concurrency=1

## Crates that must not come back (`make lint`): a second TLS stack, a C crypto build.
FORBIDDEN_CRATES := aws-lc-sys aws-lc-rs openssl-sys openssl
LAMBDA_FORBIDDEN_CRATES := aws-config aws-sdk-sts aws-sdk-sso regex-automata
space := $(subst ,, )

## fmt, clippy (warnings are errors), one TLS stack, and the SAM template checks.
lint: tools-lint
	cargo fmt --all -- --check
	# The library's layers: no module imports a layer above it (docs/ARCHITECTURE.md).
	python3 scripts/check_layers.py shared/src
	cargo clippy --workspace --all-targets -- -D warnings
	# The Lambda builds (no default features: no SQLite, no in-process bus) must build too.
	cargo clippy $(FUNCTIONS:%=-p %) --no-default-features -- -D warnings
	# One TLS stack (rustls with ring): neither aws-lc nor OpenSSL anywhere in the tree.
	@for crate in $(FORBIDDEN_CRATES); do \
	  if cargo tree --workspace --all-features --target all -e all -i $$crate --prefix none 2>/dev/null \
	      | grep -q "^$$crate v"; then \
	    echo "lint: $$crate is back in the dependency tree:"; \
	    cargo tree --workspace --all-features --target all -e all -i $$crate; exit 1; \
	  fi; \
	done; echo "lint: none of $(FORBIDDEN_CRATES) in the dependency tree"
	# What a Lambda build must not carry (size and init, docs/PERFORMANCE.md): the
	# SDK's default credential chain (STS, SSO, IMDS, profiles) and a regex engine.
	@for fn in $(FUNCTIONS); do \
	  found=$$(cargo tree -p $$fn --no-default-features -e normal --prefix none 2>/dev/null \
	    | grep -oE "^($(subst $(space),|,$(LAMBDA_FORBIDDEN_CRATES))) v" | sed 's/ v$$//' | sort -u | tr '\n' ' '); \
	  if [ -n "$$found" ]; then echo "lint: the $$fn Lambda build carries $$found"; exit 1; fi; \
	done; echo "lint: no Lambda build carries $(LAMBDA_FORBIDDEN_CRATES)"
	SAM_CLI_TELEMETRY=0 sam validate --lint --template-file infra/template.yaml --region us-east-1
	cfn-lint infra/template.yaml

## SAM build: cargo-lambda builds each function's binary (release) into .aws-sam/build.
build: tools-lint tools-run
	SAM_CLI_TELEMETRY=0 sam build --config-file $(CURDIR)/samconfig.toml --template-file infra/template.yaml

## Deploys .aws-sam/build/template.yaml with the settings in samconfig.toml (needs AWS credentials).
deploy: build
	SAM_CLI_TELEMETRY=0 sam deploy --config-file $(CURDIR)/samconfig.toml

## Every function as Lambda runs it: release, no default features (no SQLite, no
## in-process bus; what `sam build` builds too), into target/lambda/{fn}/bootstrap, for
## ARCH (arm64 on an x86_64 machine: `rustup target add aarch64-unknown-linux-gnu`;
## cargo-lambda cross-links with zig).
LAMBDA_BUILD = cargo lambda build --release --no-default-features
lambda-build: tools-run
	$(LAMBDA_BUILD) $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(FUNCTIONS:%=-p %)

## Cold start and size of the Lambda builds (x86_64, this machine) with the deployed
## configuration, AWS endpoints on moto, next to hello-world built the same way: wall
## clock (25 runs) and instructions to the first poll (callgrind, 3 runs: load-proof).
bench-lambda: tools-run tools-test
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
	# Two builds: one build of all would unify hello-world's lambda_runtime "tracing"
	# feature (EnvFilter, regex) into the functions, and theirs into hello-world.
	$(LAMBDA_BUILD) --x86-64 $(FUNCTIONS:%=-p %)
	$(LAMBDA_BUILD) --x86-64 -p hello-lambda
	cargo run -p e2e --bin cold_start -- --deployed --runs 25 --instructions 3 --lambda-dir target/lambda

## CDK app (infra/cdk): npm ci when package-lock.json changed, then compile.
cdk-install: $(CDK_DIR)/node_modules/.package-lock.json
$(CDK_DIR)/node_modules/.package-lock.json: $(CDK_DIR)/package-lock.json
	cd $(CDK_DIR) && npm ci --no-audit --no-fund
	touch $@
cdk-build: cdk-install
	cd $(CDK_DIR) && npx --no-install tsc

## Synthesize the CDK app into infra/cdk/cdk.out: offline, no AWS account, and no Rust
## build needed (functions not built yet get placeholder code, with a warning).
cdk-synth: cdk-build
	$(CDK) synth --no-notices --quiet -c architecture=$(ARCH)

## The SAM/CDK comparison (and construct) tests.
cdk-test: cdk-build
	@python3 -c 'import samtranslator' 2>/dev/null || $(PIP) install --quiet 'cfn-lint==$(CFN_LINT_VERSION)'
	cd $(CDK_DIR) && node --test test/*.test.mjs

## Build the functions for ARCH, then deploy the CDK app (needs AWS credentials and a
## bootstrapped account: `npx cdk bootstrap` in infra/cdk once).
cdk-deploy: lambda-build cdk-build
	cd $(CDK_DIR) && WATCHSTATE_REQUIRE_BUILD=1 CDK_DISABLE_CLI_TELEMETRY=true \
	  npx --no-install cdk deploy --no-notices -c architecture=$(ARCH) $(CDK_DEPLOY_FLAGS)

## Parse benchmark (criterion), 100,000-item import, then cold start and size of the release binaries.
bench:
	cargo bench -p watchstate
	cargo bench -p e2e --bench import
	cargo build --release --workspace --bins
	cargo run --release -p e2e --bin cold_start
	$(MAKE) bench-lambda

## Fan-out at scale (issue 10): a first import of 20,000 changes (43,000 items) from the
## outbox through EventBridge and SQS on moto to push in batches; prints push invocations,
## the peak of concurrent calls to the fake Jellyfin, and the times. Our crates at
## opt-level 1 (dependencies already are).
FANOUT_ITEMS ?= 43000
fanout: tools-test
	FANOUT_ITEMS=$(FANOUT_ITEMS) CARGO_PROFILE_DEV_OPT_LEVEL=1 \
	  cargo test -p e2e --test fanout -- --nocapture --exact a_first_import_reaches_jellyfin_in_batches_one_call_at_a_time_per_server

## Convergence soak (issue 8): many seeds of the simulation, release build; prints the figures.
SOAK_ARGS ?= --seeds 24 --actions 500
soak:
	cargo run --release -p e2e --bin soak -- $(SOAK_ARGS)

tools-run:
	@command -v cargo-lambda >/dev/null || $(PIP) install --quiet cargo-lambda

tools-test:
	@command -v moto_server >/dev/null && python3 -c 'import flask, moto.server' 2>/dev/null \
	  || $(PIP) install --quiet 'moto[server]'
	@command -v cargo-lambda >/dev/null || $(PIP) install --quiet cargo-lambda

# Debian's chromium and firefox-esr (playwright-core drives them, over CDP and WebDriver
# BiDi; it downloads no browser of its own) and the test's npm packages, exactly as
# package-lock.json pins them (again when the installed playwright-core is another).
BROWSER_PACKAGES := chromium firefox-esr
tools-browser:
	@command -v chromium >/dev/null && command -v firefox-esr >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; }
	@cd tests/browser && [ "$$(node -p 'require("./node_modules/playwright-core/package.json").version' 2>/dev/null)" \
	  = "$$(node -p 'require("./package.json").dependencies["playwright-core"]')" ] \
	  || npm ci --no-audit --no-fund --loglevel=error

CFN_LINT_VERSION := 1.58.0
SAM_CLI_VERSION := 1.170.0
tools-lint:
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
	@{ command -v cfn-lint >/dev/null && [ "$$(cfn-lint --version)" = "cfn-lint $(CFN_LINT_VERSION)" ] \
	   && command -v sam >/dev/null; } \
	  || $(PIP) install --quiet 'cfn-lint==$(CFN_LINT_VERSION)' 'aws-sam-cli==$(SAM_CLI_VERSION)'
