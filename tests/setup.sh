#!/usr/bin/env bash
# Install what the test suite needs on a fresh machine; safe to run again (every step is
# idempotent). The README's test command and `.ci/run` call this first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust plugins and test plugins are built for this target by tests/artifacts/build.rs.
rustup target add wasm32-wasip2
# tpchgen-cli (TPC-H data) and duckdb (the reference answer) for tests/all/tpch.rs;
# maturin, pyspark and ray[data] for the Python binding's tests (tests/all/python_binding.rs).
pip install -q -r tests/requirements.txt

# Spark (pyspark 4) needs a Java 17+ runtime.
if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless
fi

# C plugins (plugins/c-template, built by tests/artifacts/build.rs): clang, lld and
# wasi-libc from the distribution (Debian/Ubuntu package names).
c_packages="clang lld wasi-libc libclang-rt-dev-wasm32"
if ! dpkg -s $c_packages >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $c_packages
fi

# JavaScript plugins (plugins/js-filter): componentize-js, esbuild and apache-arrow at the
# versions pinned in its package-lock.json, into plugins/js-filter/node_modules (ignored by
# git). Skipped when that install is newer than the lock file.
js=plugins/js-filter
if [ ! -f $js/node_modules/.package-lock.json ] || [ $js/package-lock.json -nt $js/node_modules/.package-lock.json ]; then
    (cd $js && npm ci --no-audit --no-fund)
fi
