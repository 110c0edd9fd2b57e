#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60), one after another, then summarize.
#
#   host/fuzz/run.sh [SECONDS] [TARGET...]
#
# Targets: decode_output (plugin output, `ipc::decode_stream`), source (input readers over a
# file of each format), journal (`journal::parse`), manifest (the run record), pipeline_spec
# (`spec::LoadedSpec::load`, `spec::expand_partitions`). Needs the nightly toolchain and
# cargo-fuzz (installed from crates.io if missing). Builds with AddressSanitizer, so memory
# errors in unsafe code (ours or a decoder's) are crashes too, as are panics, and single
# allocations or a resident set over 2 GiB (a small input must not make us allocate much).
#
# Corpora grow in corpus/TARGET (seeded from seeds/TARGET, not committed); crashes land in
# artifacts/TARGET. Reproduce one with `cargo +nightly fuzz run TARGET artifacts/TARGET/FILE`,
# then copy it to regressions/TARGET/ so tests/all/fuzz_replay.rs keeps checking it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_output source journal manifest pipeline_spec)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build
mkdir -p logs
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    echo "== $t: ${secs}s"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -print_final_stats=1 >"logs/$t.log" 2>&1; then
        status=1
        echo "   CRASH: see logs/$t.log and artifacts/$t/"
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 || true)
    echo "   executions: $execs, $cov, corpus: $(ls "corpus/$t" | wc -l) inputs, crashes: $(ls "artifacts/$t" | wc -l)"
done
exit $status
