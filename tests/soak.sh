#!/usr/bin/env bash
# Crash soak: SIGKILL `sluice run` at random moments, again and again, for SECONDS seconds;
# after each run completes, check its output is byte-identical to an uninterrupted run.
# The suite does 50 kills (tests/all/recovery.rs); this script is for longer soaks.
#
#   usage: tests/soak.sh [SECONDS=300] [ROWS=2000000]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-300}"
ROWS="${2:-2000000}"
WORK="${WORK:-/dev/shm/sluice-soak}"
cargo build -q --release -p sluice-host
cargo build -q --profile plugin --target wasm32-wasip2 -p dedupe -p passthrough
BIN=target/release/sluice
P=target/wasm32-wasip2/plugin
rm -rf "$WORK"; mkdir -p "$WORK"
python3 - "$WORK/input.csv" "$ROWS" <<'PY'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    f.write("id,key,value\n")
    for i in range(int(sys.argv[2])):
        f.write(f"{i},{r.randint(0, 500000)},{r.random():.6f}\n")
PY
args=(run --input "$WORK/input.csv" --chunk-rows 100000 --plugin "$P/dedupe.wasm" --config key=key
      --plugin "$P/passthrough.wasm")
"$BIN" "${args[@]}" --output "$WORK/reference" >/dev/null 2>&1
ref=$(cd "$WORK/reference/data" && sha256sum part-* | sha256sum)
end=$((SECONDS + DURATION)); kills=0; runs=0
while [ $SECONDS -lt $end ]; do
  runs=$((runs + 1)); out="$WORK/run"; rm -rf "$out"
  while true; do
    "$BIN" "${args[@]}" --output "$out" >/dev/null 2>&1 & pid=$!
    sleep "0.$((RANDOM % 1000))"
    if kill -9 "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; kills=$((kills + 1)); else wait "$pid"; break; fi
  done
  got=$(cd "$out/data" && sha256sum part-* | sha256sum)
  [ "$got" = "$ref" ] || { echo "MISMATCH after run $runs ($kills kills so far)"; exit 1; }
done
echo "soak ok: $runs runs, $kills kills, every output byte-identical to the reference"
