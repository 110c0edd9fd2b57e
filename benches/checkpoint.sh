#!/usr/bin/env bash
# Checkpointing overhead on TPC-H lineitem SF1 through `passthrough`: the default chunk size
# (1,048,576 rows, so 6 chunks, each committed with three fsyncs, digests and a journal line)
# against a single chunk. Runs are interleaved (A B A B …) so machine
# noise hits both sides alike; prints medians and the ratio.
#
#   usage: benches/checkpoint.sh [RUNS=5]
#   env:   DATA=/tmp/tpch-sf1/lineitem.parquet  OUT=/dev/shm/sluice-ckpt  SF=1
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
SF="${SF:-1}"
DATA="${DATA:-/tmp/tpch-sf$SF/lineitem.parquet}"
OUT="${OUT:-/dev/shm/sluice-ckpt}"
if [ ! -f "$DATA" ]; then
  command -v tpchgen-cli >/dev/null || pip install -q tpchgen-cli==4.0.0
  tpchgen-cli -s "$SF" --tables lineitem --format parquet --output-dir "$(dirname "$DATA")"
fi
cargo build -q --release -p sluice-host
cargo build -q --profile plugin --target wasm32-wasip2 -p passthrough
BIN=target/release/sluice
P=target/wasm32-wasip2/plugin
run() { # $1 = chunk rows, $2 = tag
  rm -rf "$OUT-$2"
  /usr/bin/time -f '%e' -o "$OUT-$2.time" "$BIN" run --input "$DATA" --plugin "$P/passthrough.wasm" \
    --chunk-rows "$1" --output "$OUT-$2" >/dev/null 2>&1
  cat "$OUT-$2.time"
}
run 1048576 warm >/dev/null  # compile cache + page cache
chunked=(); single=()
for ((i = 0; i < RUNS; i++)); do
  chunked+=("$(run 1048576 chunked)")
  single+=("$(run 100000000 single)")
done
python3 - "${chunked[*]}" "${single[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]; s = [float(x) for x in sys.argv[2].split()]
mc, ms = statistics.median(c), statistics.median(s)
print(f"checkpoint overhead, SF1 passthrough: default chunks {mc:.2f}s vs one chunk {ms:.2f}s "
      f"-> ratio {mc/ms:.3f} ({(mc/ms-1)*100:+.1f}%)  runs={len(c)} (chunked {c}, single {s})")
PY
rm -rf "$OUT-chunked" "$OUT-single" "$OUT-warm" "$OUT"-*.time
