#!/usr/bin/env bash
# Plugins in C, Python and JavaScript next to their Rust counterparts: file size, a 1-row
# run (start-up + instantiation dominate; warm compile cache) and throughput on 200,000
# rows of the sample orders (Arrow IPC input, output on /dev/shm). Best of N runs of the
# release `sluice run`, from its JSON summary (`elapsed_ms`). No assertions: it prints.
#
#   cargo build --release -p sluice-host && cargo test -p sluice-host --test e2e --no-run
#   benches/languages.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
S=target/release/sluice
W=target/wasm-plugins
work=/dev/shm/sluice-languages
mkdir -p $work

# Inputs: the sample orders repeated to 200,000 rows (unique order_id), and one row.
python3 - "$work" <<'PY'
import sys
lines = open("tests/data/orders.csv").read().splitlines()
hdr, rows = lines[0], lines[1:]
with open(f"{sys.argv[1]}/orders200k.csv", "w") as f:
    f.write(hdr + "\n")
    n = 0
    for _ in range(100):
        for r in rows:
            n += 1
            f.write(f"{n},{r.split(',', 1)[1]}\n")
with open(f"{sys.argv[1]}/orders1.csv", "w") as f:
    f.write(hdr + "\n" + rows[0] + "\n")
PY
for n in 200k 1; do
    $S run --input $work/orders$n.csv --plugin $W/wasm32-wasip2/plugin/passthrough.wasm \
        --output $work/in$n --overwrite --format ipc >/dev/null 2>&1
done

best() { # best elapsed_ms of $runs runs of `sluice run` with the given arguments
    local b=999999999
    for _ in $(seq "$runs"); do
        local ms
        # A fresh output directory each time: a finished run with the same key is a no-op.
        rm -rf $work/out
        ms=$($S run "$@" --output $work/out 2>/dev/null | tail -1 |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["elapsed_ms"])')
        [ "$ms" -lt "$b" ] && b=$ms
    done
    echo "$b"
}

printf '%-13s %-10s %10s %12s %14s %12s\n' plugin language "size (KB)" "1 row (ms)" "200k rows (ms)" "rows/s"
row() { # label language wasm config...
    local label=$1 lang=$2 wasm=$3; shift 3
    local cfg=()
    for c in "$@"; do cfg+=(--config "$c"); done
    # Warm the compile cache first.
    $S run --input $work/in1/data --plugin "$wasm" "${cfg[@]}" --output $work/out --overwrite >/dev/null 2>&1
    local one many
    one=$(best --input $work/in1/data --plugin "$wasm" "${cfg[@]}")
    many=$(best --input $work/in200k/data --plugin "$wasm" "${cfg[@]}")
    printf '%-13s %-10s %10d %12d %14d %12d\n' "$label" "$lang" $(($(stat -c %s "$wasm") / 1024)) "$one" "$many" \
        $((200000 * 1000 / (many > 0 ? many : 1)))
}
pred="predicate=quantity < 24 and discount between 0.05 and 0.07"
row passthrough Rust $W/wasm32-wasip2/plugin/passthrough.wasm
row passthrough C $W/c/passthrough_c.wasm
row filter Rust $W/wasm32-wasip2/plugin/filter.wasm "$pred"
row filter JavaScript $W/js/filter_js.wasm "$pred"
row mask Rust $W/wasm32-wasip2/plugin/mask.wasm columns=customer_email
row mask Python $W/python/mask_py.wasm columns=customer_email
