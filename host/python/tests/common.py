"""Shared by the binding, Spark and Ray checks (run by tests/all/python_binding.rs).

Every check gets one JSON argument: {"plugins": [[path, {config}], ...], "input": parquet,
"cli_output": the output directory of `sluice run` over the same input and plugins,
"sluice": the CLI binary}. Each prints what it checked and exits non-zero on a mismatch.
"""

import glob
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def args():
    """The check's JSON argument."""
    return json.loads(sys.argv[1])


def plugins(a):
    """The `plugins=` argument of sluice.Chain, from the JSON (lists become tuples)."""
    return [tuple(p) for p in a["plugins"]]


def cli_output(a):
    """The CLI's output rows as one table, and its run record."""
    files = sorted(glob.glob(os.path.join(a["cli_output"], "data", "*.parquet")))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    with open(os.path.join(a["cli_output"], "_sluice", "manifest.json")) as f:
        manifest = json.load(f)
    return table, manifest


def rows(table):
    """The rows of `table` as sorted tuples of Python values: equal for the same rows in
    any order and any Arrow encoding (string vs large_string, chunking, nullability)."""
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted(zip(*cols), key=repr)


def check(ok, what):
    """Print one checked fact; fail the script on the first that does not hold."""
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


def same_rows(name, table, expected):
    """Check `table` holds exactly the rows of `expected` (order-independent)."""
    check(table.column_names == expected.column_names, f"{name}: columns {table.column_names}")
    got, want = rows(table), rows(expected)
    check(len(got) == len(want), f"{name}: {len(got)} rows, the CLI wrote {len(want)}")
    check(got == want, f"{name}: the same rows as the CLI (sorted, compared value by value)")


def check_distributed_record(name, a, manifest, reports, out_dir):
    """Provenance across partitions: fold the tasks' reports into a run record, check it
    against the CLI's run and let `sluice verify` check it against the engine's files,
    then show a lost output file is caught."""
    import subprocess

    import sluice

    record = sluice.combine_run_record(reports, out_dir)
    check(record["kind"] == "distributed" and len(record["tasks"]) >= 2,
          f"{name}: run record of {len(record['tasks'])} tasks")
    check(record["rows_in"] == manifest["rows_in"], f"{name}: record counts every input row once")
    check(record["rows_out"] == manifest["rows_out"], f"{name}: record's output rows equal the CLI's")
    cli = json.loads(subprocess.run([a["sluice"], "digest", a["cli_output"]], check=True,
                                    capture_output=True, text=True).stdout)
    check(record["output_rowset_digest"] == cli["rowset_digest"],
          f"{name}: row-set digest equals the one-machine run's ({cli['rowset_digest'][:24]}…)")
    v = subprocess.run([a["sluice"], "verify", out_dir], capture_output=True, text=True)
    check(v.returncode == 0, f"{name}: sluice verify accepts the record and the files ({v.stderr.strip()[-300:]})")
    files = sorted(f for f in glob.glob(os.path.join(out_dir, "**", "*.parquet"), recursive=True))
    check(len(files) >= 1, f"{name}: {len(files)} output files")
    os.rename(files[0], os.path.join(os.path.dirname(files[0]), "_" + os.path.basename(files[0])))
    v = subprocess.run([a["sluice"], "verify", out_dir], capture_output=True, text=True)
    check(v.returncode == 5 and "rows" in v.stderr, f"{name}: sluice verify names a lost output file (exit {v.returncode})")
