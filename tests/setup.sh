#!/usr/bin/env bash
# Install what the test suite needs on a fresh machine; safe to run again (every step is
# idempotent). The README's test command and `.ci/run` call this first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust plugins and test plugins are built for this target by tests/artifacts/build.rs.
rustup target add wasm32-wasip2
# tpchgen-cli (TPC-H data) and duckdb (the reference answer) for tests/all/tpch.rs.
pip install -q -r tests/requirements.txt
