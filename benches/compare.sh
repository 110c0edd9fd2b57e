#!/usr/bin/env bash
# sluice against its peers (native arrow-rs program, DuckDB, Polars) on the DESIGN.md jobs
# B1 filter+derive, B2 pii-mask, B3 passthrough over TPC-H lineitem, end to end
# (Parquet in, Parquet out: SNAPPY, 122,880-row row groups, input order kept, 2 threads).
#
#   usage: benches/compare.sh [RUNS=5] [JOBS="b1 b2 b3"]
#   env:   SF=1  DATA=/tmp/tpch-sf$SF/lineitem.parquet  OUT=/dev/shm/sluice-compare
#          PEERS_DIR=../shared/bench (the peer scripts, used in place)  THREADS=2
#          PEERS="sluice native-t2 native-t1 duckdb polars"  (b2 adds polars-plugin)  SKIP_BUILD=1
#
# Every run is a whole process timed with GNU time (wall, peak RSS). Runs are interleaved
# (round r runs every peer once, in an order rotated by r) so machine noise hits all peers
# alike; one uncounted warm-up round fills the page cache and sluice's compile cache.
# Outputs go to tmpfs ($OUT, /dev/shm by default): disk write-back on 2 cores would
# otherwise distort the timings. After the runs each output is checked with DuckDB: row
# count and an order-insensitive checksum over every value must equal DuckDB's output.
# Prints one table: median wall seconds (min-max), median peak RSS, and each peer's time
# relative to sluice.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"
JOBS="${2:-b1 b2 b3}"
SF="${SF:-1}"
DATA="${DATA:-/tmp/tpch-sf$SF/lineitem.parquet}"
OUT="${OUT:-/dev/shm/sluice-compare}"
PEERS_DIR="$(cd "${PEERS_DIR:-$ROOT/../shared/bench}" && pwd)"
THREADS="${THREADS:-2}"
PEERS="${PEERS:-sluice native-t2 native-t1 duckdb polars}"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }
python3 -c 'import duckdb, polars, polars_hash, pyarrow' 2>/dev/null ||
  pip install -q -r "$PEERS_DIR/requirements.txt"

if [ ! -f "$DATA" ]; then
  command -v tpchgen-cli >/dev/null || pip install -q tpchgen-cli==4.0.0
  mkdir -p "$(dirname "$DATA")"
  tpchgen-cli parquet -s "$SF" --tables lineitem --num-threads 2 --output-dir "$(dirname "$DATA")"
fi

# Builds: sluice (release), the plugins exactly as the tests build them (+simd128, profile
# `plugin`), and the native peer from the shared sources into our target dir.
# SKIP_BUILD=1 uses what is already built (e.g. while other builds hold cargo's locks).
if [ -z "${SKIP_BUILD:-}" ]; then
cargo build -q --release -p sluice-host
CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C target-feature=+simd128" \
  cargo build -q --target wasm32-wasip2 --profile plugin --target-dir target/wasm-plugins \
  -p filter -p derive -p mask -p passthrough
if [[ " $PEERS " == *" native-"* ]]; then
  cargo build -q --release --locked --manifest-path "$PEERS_DIR/native-rs/Cargo.toml" --target-dir target/peer-native-rs
fi
fi
BIN="$ROOT/target/release/sluice"
P="$ROOT/target/wasm-plugins/wasm32-wasip2/plugin"
NATIVE="$ROOT/target/peer-native-rs/release/native-rs"
export SLUICE_CACHE_DIR="${SLUICE_CACHE_DIR:-$OUT/cache}"
export SLUICE_THREADS="$THREADS"
mkdir -p "$OUT"

# run_peer JOB PEER -> appends "wall rss" to $OUT/JOB-PEER.times
run_peer() {
  local job=$1 peer=$2 out="$OUT/$1-$2" t=$OUT/$1-$2.one
  rm -rf "$out" "$out.parquet"
  case "$peer" in
    sluice)
      local args=()
      case "$job" in
        b1) args=(--plugin "$P/filter.wasm" --config "predicate=l_discount between 0.05 and 0.07 and l_quantity < 24"
                  --plugin "$P/derive.wasm" --config name=revenue --config "expr=l_extendedprice * l_discount"
                  --config "type=decimal(18,4)") ;;
        b2) args=(--plugin "$P/mask.wasm" --config columns=l_comment) ;;
        b3) args=(--plugin "$P/passthrough.wasm") ;;
      esac
      $TIME -f '%e %M' -o "$t" "$BIN" run --input "$DATA" "${args[@]}" --compression snappy \
        --row-group-rows 122880 --output "$out" >"$out.log" 2>&1 ;;
    native-t2) $TIME -f '%e %M' -o "$t" "$NATIVE" "$job" "$DATA" "$out.parquet" --threads "$THREADS" >"$out.log" 2>&1 ;;
    native-t1) $TIME -f '%e %M' -o "$t" "$NATIVE" "$job" "$DATA" "$out.parquet" --threads 1 >"$out.log" 2>&1 ;;
    duckdb) $TIME -f '%e %M' -o "$t" python3 "$PEERS_DIR/peer_duckdb.py" "$job" "$DATA" "$out.parquet" "$THREADS" >"$out.log" 2>&1 ;;
    polars) $TIME -f '%e %M' -o "$t" python3 "$PEERS_DIR/peer_polars.py" "$job" "$DATA" "$out.parquet" "$THREADS" >"$out.log" 2>&1 ;;
    polars-plugin) $TIME -f '%e %M' -o "$t" python3 "$PEERS_DIR/peer_polars.py" "$job-plugin" "$DATA" "$out.parquet" "$THREADS" >"$out.log" 2>&1 ;;
    *) echo "unknown peer $peer" >&2; return 1 ;;
  esac || { echo "$job $peer FAILED, see $out.log" >&2; tail -5 "$out.log" >&2; return 1; }
  tail -n1 "$t"
}

for job in $JOBS; do
  peers="$PEERS"
  [ "$job" = b2 ] && [[ " $peers " == *" polars "* ]] && peers="$peers polars-plugin"
  read -r -a list <<<"$peers"
  for p in "${list[@]}"; do : >"$OUT/$job-$p.times"; done
  for ((r = 0; r <= RUNS; r++)); do   # round 0 is the warm-up
    n=${#list[@]}
    for ((k = 0; k < n; k++)); do
      p=${list[$(((k + r) % n))]}
      line=$(run_peer "$job" "$p")
      [ "$r" -gt 0 ] && echo "$line" >>"$OUT/$job-$p.times"
    done
  done
done

python3 - "$OUT" "$JOBS" "$PEERS" "$RUNS" <<'PY'
import os, statistics, sys
import duckdb
out, jobs, peers, runs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
con = duckdb.connect()
con.execute("SET threads = 2")

def source(job, peer):
    base = os.path.join(out, f"{job}-{peer}")
    return f"read_parquet('{base}/data/*.parquet')" if peer == "sluice" else f"read_parquet('{base}.parquet')"

def check(job, peer):
    # Row count, and an order-insensitive checksum over every value of every row (the
    # hash of the row as a struct, summed): any differing value changes it.
    return con.execute(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM (SELECT * FROM {source(job, peer)}) t").fetchone()

print(f"{'job':<4} {'peer':<14} {'wall s med (min-max)':>22} {'peak RSS MiB':>13} {'vs sluice':>10} {'rows':>10} check")
for job in jobs:
    names = [p for p in peers] + (["polars-plugin"] if job == "b2" and "polars" in peers else [])
    rows = {}
    for p in names:
        t = [tuple(map(float, l.split())) for l in open(os.path.join(out, f"{job}-{p}.times")) if l.strip()]
        rows[p] = t
    ref = check(job, "duckdb") if "duckdb" in names else None
    base = statistics.median(r[0] for r in rows["sluice"]) if "sluice" in rows else None
    for p in names:
        w = sorted(r[0] for r in rows[p])
        med = statistics.median(w)
        rss = statistics.median(r[1] for r in rows[p]) / 1024
        n, h = check(job, p)
        ok = "ok" if ref is None or (n, h) == ref else f"DIFFERS from duckdb ({n} rows)"
        ratio = f"{med / base:.2f}x" if base else "-"
        print(f"{job:<4} {p:<14} {med:>9.2f} ({w[0]:.2f}-{w[-1]:.2f}) {rss:>13.0f} {ratio:>10} {n:>10} {ok}")
print(f"\n{runs} counted runs per cell after one warm-up round, interleaved; outputs on {out} (tmpfs).")
print("'vs sluice' = peer median / sluice median (above 1.00x: sluice is faster).")
PY
