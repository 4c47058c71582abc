# watchstate-serverless: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PORT ?= 9000
WATCHSTATE_DATA_DIR ?= .watchstate
STORE ?= sqlite
PIP ?= python3 -m pip
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: run test lint build deploy bench tools-run tools-test tools-lint fmt clippy

## Local emulation: every function under `cargo lambda watch` on 127.0.0.1:$(PORT).
run: tools-run
	PORT=$(PORT) WATCHSTATE_DATA_DIR=$(WATCHSTATE_DATA_DIR) STORE=$(STORE) infra/local/run.sh

## Every test: unit, contract (SQLite and DynamoDB on moto), end-to-end on the binaries.
test: tools-test
	cargo build --workspace --bins
	cargo test --workspace --no-fail-fast

## fmt, clippy (warnings are errors), and the SAM template checks.
lint: tools-lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

build:
	sam build --template-file infra/template.yaml

deploy: build
	sam deploy --config-file ../samconfig.toml

bench:
	cargo bench -p watchstate

tools-run:
	@command -v cargo-lambda >/dev/null || $(PIP) install --quiet cargo-lambda

tools-test:
	@command -v moto_server >/dev/null && python3 -c 'import flask, moto.server' 2>/dev/null \
	  || $(PIP) install --quiet 'moto[server]'
	@command -v cargo-lambda >/dev/null || $(PIP) install --quiet cargo-lambda

tools-lint:
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
