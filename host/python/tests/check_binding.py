"""The Python binding against the CLI: same rows, same digests, same errors."""

import json
import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

import sluice
from common import args, check, cli_output, plugins, same_rows

a = args()
expected, manifest = cli_output(a)
table = pq.read_table(a["input"])
chain = sluice.Chain(plugins(a))
check(not chain.stateful and len(chain.plugins) == len(a["plugins"]), f"loaded {chain.plugins}")
for p, recorded in zip(chain.plugins, manifest["plugins"]):
    check(p["sha256"] == recorded["sha256"], f"{p['name']}: the sha256 the CLI recorded")

# The whole input as one batch is the CLI's one chunk: the same digests, bit for bit.
check(len(manifest["chunks"]) == 1, "the CLI run is one chunk")
whole = table.combine_chunks().to_batches()[0]
one = chain.transform(whole)
chunk = manifest["chunks"][0]
check(one.input_digest == chunk["input_digest"], f"input digest {one.input_digest} is the CLI's")
check(one.digest == chunk["data_digest"], f"output digest {one.digest} is the CLI's")
check(one.rows_in == manifest["rows_in"] and one.rows_out == manifest["rows_out"],
      f"rows {one.rows_in} -> {one.rows_out}, as the CLI")
check(one.fuel > 0 and one.fuel == sum(one.fuel_per_plugin), f"fuel {one.fuel} = {one.fuel_per_plugin}")
check(one.schema == expected.schema.remove_metadata() or one.schema.equals(expected.schema, check_metadata=False),
      "output schema is the CLI's")

# Many small batches (each its own chunk): the same rows, and since the digest does not
# depend on batch boundaries, the same digest over all of them.
outs = [chain.transform(b) for b in table.to_batches(max_chunksize=7_000)]
batches = [b for r in outs for b in r.batches]
same_rows("7k-row batches", pa.Table.from_batches(batches, schema=one.schema), expected)
check(sluice.data_digest(batches, one.schema) == chunk["data_digest"],
      "data_digest over the batches' outputs is the CLI's chunk digest")
check(sum(r.rows_in for r in outs) == table.num_rows, "every input row counted once")
check(chain.finish() is None, "finish() of a stateless chain has nothing to flush")
check(len(chain.transform(whole.slice(0, 0)).batches) <= 1, "an empty batch transforms")

# A stateful chain is one instance across calls: keys seen in one call are dropped in the
# next, and finish() flushes it.
dedupe = sluice.Chain([(a["dedupe_plugin"], {"key": "l_returnflag"})])
check(dedupe.stateful, "dedupe is a stateful chain")
part1 = dedupe.transform(whole.slice(0, 30_000))
part2 = dedupe.transform(whole.slice(30_000))
keys = set(table.column("l_returnflag").to_pylist())
check(part1.rows_out + part2.rows_out == len(keys), f"dedupe across calls keeps {len(keys)} keys once")
flushed = dedupe.finish()
check(flushed is not None and flushed.rows_out == 0, "finish() of a stateful chain flushes it")
check(dedupe.finish() is None, "a finished chain has nothing left")

# The chain of a pipeline spec, pinned as `sluice run PIPELINE` pins it; the spec's inputs
# need not exist where the chain runs (a worker is handed its data by the engine).
os.makedirs(a["scratch"], exist_ok=True)
spec = os.path.join(a["scratch"], "pipeline.toml")
stages = "".join(
    f'[[plugins]]\npath = {json.dumps(path)}\nsha256 = "{sluice.sha256_file(path)}"\nconfig = {{ '
    + ", ".join(f"{k} = {json.dumps(v)}" for k, v in config.items()) + " }\n"
    for path, config in a["plugins"])
with open(spec, "w") as f:
    f.write(f'version = 1\nname = "b1"\n[input]\npaths = ["nowhere/*.parquet"]\n{stages}[output]\npath = "out"\n')
from_spec = sluice.Chain.from_spec(spec)
check(from_spec.transform(whole).digest == chunk["data_digest"], "Chain.from_spec(pipeline.toml): the same digest")
with open(spec, "a") as f:
    f.write("[[plugins]]\n" + f"path = {json.dumps(a['plugins'][0][0])}\n")
try:
    sluice.Chain.from_spec(spec)
    check(False, "an unpinned plugin in a spec raises")
except sluice.UsageError as e:
    check("no `sha256` pin" in str(e), f"unpinned plugin in a spec: UsageError: {e}")

# Errors: the CLI's message, exit code and category.
first = a["plugins"][0]
bad = [(first[0], {"predicate": "no_such_column > 1"})]
cli = subprocess.run([a["sluice"], "run", "--input", a["input"], "--plugin", first[0],
                      "--config", "predicate=no_such_column > 1", "--output", os.path.join(a["scratch"], "bad-config-out")],
                     capture_output=True, text=True)
try:
    sluice.Chain(bad).transform(whole)
    check(False, "a bad config raises")
except sluice.UsageError as e:
    check(e.exit_code == cli.returncode == 2 and e.category == "usage",
          f"bad config: UsageError, exit code {e.exit_code} like the CLI's {cli.returncode}")
    check(str(e) in cli.stderr, f"bad config: the CLI's message: {e}")
try:
    sluice.Chain([(first[0], first[1], "sha256:" + "0" * 64)])
    check(False, "a wrong pin raises")
except sluice.SluiceError as e:
    check(isinstance(e, sluice.UsageError) and e.exit_code == 2, f"wrong pin: {type(e).__name__}: {e}")
try:
    sluice.Chain([(a["hostile_plugin"], {"mode": "panic"})]).transform(whole)
    check(False, "a panicking plugin raises")
except sluice.PluginError as e:
    check(e.exit_code == 4 and e.category == "plugin" and e.plugin, f"panic: PluginError from `{e.plugin}`: {e}")

# Tasks of a distributed job: reports fold into a run record; the order of reports and
# how rows were partitioned do not matter; disagreeing tasks are refused.
# Two partitions of interleaved 9k-row slices, in the order an engine might hand them out.
slices = table.to_batches(max_chunksize=9_000)
halves = [pa.Table.from_batches(slices[i::2]) for i in (0, 1)]
reports = []
for i, part in enumerate(halves):
    task = chain.task(f"part-{i}")
    for b in reversed(part.to_batches()):
        task.transform(b)
    reports.append(task.report())
check(chain.task("empty").report() is None, "a task that transformed nothing has no report")
out_a = os.path.join(a["scratch"], "record-a")
out_b = os.path.join(a["scratch"], "record-b")
rec_a = sluice.combine_run_record(reports, out_a)
rec_b = sluice.combine_run_record(list(reversed(reports)) + [reports[0]], out_b)
check(rec_a == rec_b, "the record depends on neither report order nor a retried task's duplicate")
check(rec_a["rows_in"] == table.num_rows and rec_a["rows_out"] == manifest["rows_out"],
      f"record rows {rec_a['rows_in']} -> {rec_a['rows_out']}")
cli_rowset = json.loads(subprocess.run([a["sluice"], "digest", a["cli_output"]], check=True,
                                       capture_output=True, text=True).stdout)["rowset_digest"]
check(rec_a["output_rowset_digest"] == cli_rowset, "record's row-set digest equals the CLI output's")
anon = chain.task()
anon.transform(halves[0].to_batches()[0])
check(anon.task_id.startswith("input-"), f"a task without an id is named by its input rows: {anon.task_id}")
other = sluice.Chain([(first[0], {**first[1], "predicate": "l_quantity < 2"})]).task("part-1")
other.transform(halves[1].to_batches()[0])
try:
    sluice.combine_run_record([reports[0], other.report()], os.path.join(a["scratch"], "record-c"))
    check(False, "tasks with other plugin configs are refused")
except sluice.InputError as e:
    check(e.exit_code == 5 and "part-1" in str(e), f"mixed configs: InputError: {e}")
print("binding: all checks passed")
