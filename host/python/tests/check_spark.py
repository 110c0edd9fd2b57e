"""The plugin chain in Apache Spark (`local[2]`, DataFrame.mapInArrow) against the CLI."""

import os
import sys

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

import sluice
from common import args, check, check_distributed_record, cli_output, plugins, same_rows

a = args()
expected, manifest = cli_output(a)
PLUGINS = plugins(a)

# Workers run this interpreter (the venv with the wheel), like the driver.
os.environ["PYSPARK_PYTHON"] = sys.executable
# Everything stays on the loopback interface.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
spark = (
    SparkSession.builder.master("local[2]")
    .appName("sluice-check")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.sql.shuffle.partitions", "2")
    # Several tasks, each with several Arrow batches, so the chain really is distributed.
    .config("spark.sql.files.maxPartitionBytes", str(max(os.path.getsize(a["input"]) // 3, 1)))
    .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.parquet(a["input"])


def transform(batches):
    """mapInArrow: one Chain per task (compiled components come from the cache)."""
    chain = sluice.Chain(PLUGINS)
    for batch in batches:
        yield from chain.transform(batch).batches


def digests(batches):
    """The per-chunk provenance each task returns: a digest row per transformed batch."""
    chain = sluice.Chain(PLUGINS)
    for batch in batches:
        r = chain.transform(batch)
        yield pa.record_batch({"digest": [r.digest], "input_digest": [r.input_digest],
                               "rows_in": [r.rows_in], "rows_out": [r.rows_out], "fuel": [r.fuel]})


# The output schema Spark needs up front, asked of the chain for Spark's input schema.
probe = sluice.Chain(PLUGINS)
out_schema = from_arrow_schema(probe.output_schema(df.limit(0).toArrow().schema))
result = df.mapInArrow(transform, out_schema).toArrow()
check(df.rdd.getNumPartitions() >= 2, f"spark read the input as {df.rdd.getNumPartitions()} partitions")
same_rows("spark mapInArrow", result, expected)

chunks = df.mapInArrow(digests, "digest string, input_digest string, rows_in long, rows_out long, fuel long")
chunks = chunks.toArrow()
check(chunks.num_rows >= 2, f"{chunks.num_rows} chunk digests returned by the tasks")
check(pa.compute.sum(chunks["rows_in"]).as_py() == manifest["rows_in"], "chunks cover every input row once")
check(pa.compute.sum(chunks["rows_out"]).as_py() == manifest["rows_out"], "chunks' output rows add up to the CLI's")
check(all(d.startswith("blake3:") for d in chunks["digest"].to_pylist()), "chunk digests are blake3 data digests")

# Provenance across partitions: each task reports under its partition id, Spark writes the
# rows, and the reports fold into a run record next to Spark's files.
REPORTS = os.path.join(a["scratch"], "spark-reports")
OUT = os.path.join(a["scratch"], "spark-out")


def transform_with_report(batches):
    """mapInArrow with a task report per partition (written once the input is consumed)."""
    from pyspark import TaskContext

    task = sluice.Chain(PLUGINS).task(f"part-{TaskContext.get().partitionId():05d}")
    for batch in batches:
        yield from task.transform(batch).batches
    task.write_report(REPORTS)


# The sample file is one row group, so Spark reads it as one non-empty partition: hash
# partition it (deterministic, unlike round-robin, so a retried task sees the same rows).
parts = df.repartition(3, "l_orderkey")
parts.mapInArrow(transform_with_report, out_schema).write.mode("overwrite").parquet(OUT)
check_distributed_record("spark", a, manifest, REPORTS, OUT)
spark.stop()
print("spark: all checks passed")
