"""The plugin chain in Ray Data (map_batches, a callable class per actor) against the CLI."""

import pyarrow as pa
import ray

import sluice
import os

from common import args, check, check_distributed_record, cli_output, plugins, same_rows

a = args()
expected, manifest = cli_output(a)
PLUGINS = plugins(a)


class SluiceTransform:
    """Loads the chain once per actor; each Ray batch (a pyarrow.Table) is transformed
    batch by batch. Keeps its chunks' digests for the provenance of the job."""

    def __init__(self, plugins):
        self.chain = sluice.Chain(plugins)

    def __call__(self, table: pa.Table) -> pa.Table:
        results = [self.chain.transform(b) for b in table.to_batches()]
        schema = results[0].schema if results else self.chain.output_schema(table.schema)
        return pa.Table.from_batches([b for r in results for b in r.batches], schema=schema)


class SluiceDigests(SluiceTransform):
    """Returns one row of provenance per transformed batch instead of the rows."""

    def __call__(self, table: pa.Table) -> pa.Table:
        rs = [self.chain.transform(b) for b in table.to_batches()]
        return pa.table({"digest": [r.digest for r in rs], "rows_in": [r.rows_in for r in rs],
                         "rows_out": [r.rows_out for r in rs], "fuel": [r.fuel for r in rs]},
                        schema=pa.schema([("digest", pa.string()), ("rows_in", pa.int64()),
                                          ("rows_out", pa.int64()), ("fuel", pa.int64())]))


REPORTS = os.path.join(a["scratch"], "ray-reports")
OUT = os.path.join(a["scratch"], "ray-out")


class SluiceReporting(SluiceTransform):
    """One task per Ray batch, its id derived from the batch's rows (Ray gives batches no
    stable index); the report is written before the rows are returned."""

    def __call__(self, table: pa.Table) -> pa.Table:
        task = self.chain.task()
        results = [task.transform(b) for b in table.to_batches()]
        task.write_report(REPORTS)
        schema = results[0].schema if results else self.chain.output_schema(table.schema)
        return pa.Table.from_batches([b for r in results for b in r.batches], schema=schema)


# Small and quiet on a 2-core machine: no dashboard; actors take half a CPU each so the
# read tasks always find a CPU next to the two actors.
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
ctx = ray.data.DataContext.get_current()
ctx.enable_progress_bars = False
# Several blocks and batches, so the chain really is distributed over the two actors.
ds = ray.data.read_parquet(a["input"], override_num_blocks=4)
kw = dict(batch_format="pyarrow", batch_size=5000, compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.5,
          fn_constructor_kwargs={"plugins": PLUGINS})
out = pa.concat_tables(ray.get(ds.map_batches(SluiceTransform, **kw).to_arrow_refs()))
same_rows("ray map_batches", out, expected)
chunks = pa.concat_tables(ray.get(ds.map_batches(SluiceDigests, **kw).to_arrow_refs()))
check(chunks.num_rows >= 2, f"{chunks.num_rows} chunk digests returned by the actors")
check(pa.compute.sum(chunks["rows_in"]).as_py() == manifest["rows_in"], "chunks cover every input row once")
check(pa.compute.sum(chunks["rows_out"]).as_py() == manifest["rows_out"], "chunks' output rows add up to the CLI's")
ds.map_batches(SluiceReporting, **kw).write_parquet(OUT)
check_distributed_record("ray", a, manifest, REPORTS, OUT)
ray.shutdown()
print("ray: all checks passed")
