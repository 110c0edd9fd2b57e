#!/usr/bin/env python3
"""Rows/s of the same plugin chain (job B1: filter + derive over TPC-H lineitem) run by the
`sluice` CLI, by Spark (`local[2]`, DataFrame.mapInArrow) and by Ray Data (map_batches with
a callable class), all on this machine's cores, Parquet in and Parquet out.

    usage: benches/cluster.py [--sf 1] [--runs 2] [--sluice target/release/sluice]
                              [--plugins target/wasm-plugins/wasm32-wasip2/plugin]

Needs the `sluice` Python package (a release wheel: `maturin build --release -m
host/python/Cargo.toml`, then pip install it), pyspark, ray[data] and tpchgen-cli
(tests/setup.sh installs the last three). Each engine also runs the identity (batches
passed through untouched) so the table shows what the engine itself costs. Times are wall
seconds of the job alone: the Spark session and the Ray cluster are started before the
clock (their start-up is printed apart), and each is warmed by one uncounted run. Outputs
go to tmpfs. Prints a table: median seconds over the runs, rows/s of input.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICATE = "l_discount between 0.05 and 0.07 and l_quantity < 24"


def b1(plugin_dir):
    """The B1 chain as `sluice.Chain(plugins=...)` takes it."""
    return [
        (os.path.join(plugin_dir, "filter.wasm"), {"predicate": PREDICATE}),
        (os.path.join(plugin_dir, "derive.wasm"),
         {"name": "revenue", "expr": "l_extendedprice * l_discount", "type": "decimal(18,4)"}),
    ]


def timed(runs, fn):
    """Median wall seconds of `fn` over `runs` runs, after one uncounted warm-up."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    return path


def cli(args, data, out, plugins):
    cmd = [args.sluice, "run", "--threads", "2", "--overwrite", "--input", data]
    for path, config in plugins:
        cmd += ["--plugin", path]
        for k, v in config.items():
            cmd += ["--config", f"{k}={v}"]
    cmd += ["--output", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spark_session():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_job(spark, data, out, plugins):
    import sluice
    from pyspark.sql.pandas.types import from_arrow_schema

    df = spark.read.parquet(data)
    if plugins is None:
        df.mapInArrow(lambda it: it, df.schema).write.mode("overwrite").parquet(out)
        return

    def transform(batches):
        chain = sluice.Chain(plugins)
        for batch in batches:
            yield from chain.transform(batch).batches

    schema = from_arrow_schema(sluice.Chain(plugins).output_schema(df.limit(0).toArrow().schema))
    df.mapInArrow(transform, schema).write.mode("overwrite").parquet(out)


class RayChain:
    """Ray's callable class: the chain is loaded once per actor."""

    def __init__(self, plugins):
        import sluice

        self.chain = sluice.Chain(plugins) if plugins else None

    def __call__(self, table):
        import pyarrow as pa

        if self.chain is None:
            return table
        rs = [self.chain.transform(b) for b in table.to_batches()]
        schema = rs[0].schema if rs else self.chain.output_schema(table.schema)
        return pa.Table.from_batches([b for r in rs for b in r.batches], schema=schema)


def ray_job(data, out, plugins):
    import ray

    ds = ray.data.read_parquet(data)
    ds = ds.map_batches(RayChain, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=2),
                        num_cpus=0.5, fn_constructor_kwargs={"plugins": plugins})
    ds.write_parquet(fresh(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sf", default="1")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--sluice", default=os.path.join(ROOT, "target/release/sluice"))
    p.add_argument("--plugins", default=os.path.join(ROOT, "target/wasm-plugins/wasm32-wasip2/plugin"))
    p.add_argument("--data", default=None)
    p.add_argument("--out", default="/dev/shm/sluice-cluster")
    p.add_argument("--engines", default="cli,spark,ray")
    args = p.parse_args()
    data = args.data or f"/tmp/tpch-sf{args.sf}/lineitem.parquet"
    if not os.path.exists(data):
        os.makedirs(os.path.dirname(data), exist_ok=True)
        subprocess.run(["tpchgen-cli", "parquet", "-s", args.sf, "--tables", "lineitem", "--num-threads", "2",
                        "--output-dir", os.path.dirname(data)], check=True)
    rows = pq.ParquetFile(data).metadata.num_rows
    plugins = b1(args.plugins)
    engines = args.engines.split(",")
    results = []

    def record(name, median, times):
        results.append((name, median, times))
        print(f"{name:<28} {median:8.2f} s  {rows / median:>12,.0f} rows/s  runs {['%.2f' % t for t in times]}",
              flush=True)

    print(f"input: {data}, {rows:,} rows; {os.cpu_count()} cores; runs: {args.runs} (+1 warm-up)", flush=True)
    if "cli" in engines:
        out = os.path.join(args.out, "cli")
        record("sluice CLI (B1)", *timed(args.runs, lambda: cli(args, data, fresh(out), plugins)))
    if "spark" in engines:
        start = time.perf_counter()
        spark = spark_session()
        print(f"spark session start: {time.perf_counter() - start:.1f} s", flush=True)
        out = os.path.join(args.out, "spark")
        record("spark identity", *timed(args.runs, lambda: spark_job(spark, data, out, None)))
        record("spark mapInArrow (B1)", *timed(args.runs, lambda: spark_job(spark, data, out, plugins)))
        spark.stop()
    if "ray" in engines:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"ray start: {time.perf_counter() - start:.1f} s", flush=True)
        out = os.path.join(args.out, "ray")
        record("ray identity", *timed(args.runs, lambda: ray_job(data, out, None)))
        record("ray map_batches (B1)", *timed(args.runs, lambda: ray_job(data, out, plugins)))
        ray.shutdown()
    shutil.rmtree(args.out, ignore_errors=True)
    print(json.dumps({"rows": rows, "results": [{"engine": n, "median_s": m, "runs_s": t} for n, m, t in results]}))


if __name__ == "__main__":
    main()
