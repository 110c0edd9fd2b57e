"""sluice: run pinned, sandboxed WebAssembly transform plugins over Arrow data from Python.

The same host as the ``sluice`` CLI (the Rust crate ``sluice-host``), built for Python:
load a chain once per worker, then transform ``pyarrow.RecordBatch``es; batches cross as
Arrow C data (zero-copy) and the wasm runs without the GIL.

    import sluice
    chain = sluice.Chain([("filter.wasm", {"column": "qty", "min": "10"})])
    result = chain.transform(batch)     # one chunk
    result.batches, result.digest, result.fuel, result.rows_in, result.rows_out

In a distributed job, each task transforms through ``chain.task(id)`` and writes a report;
``sluice.combine_run_record(reports_dir, output_dir)`` folds them into a run record that
``sluice verify`` checks.

Errors are ``sluice.SluiceError`` subclasses whose ``exit_code`` and ``category`` are the
CLI's (``PluginError`` 4, ``InputError`` 5, ``UsageError`` 2, ``QualityError`` 3,
``IoError`` 1). See the README, "Running on a cluster", for the Spark and Ray recipes.
"""

import json
import os

from ._sluice import (
    Chain,
    Task,
    _combine_run_record,
    InputError,
    IoError,
    PluginError,
    QualityError,
    SluiceError,
    TransformResult,
    UsageError,
    __version__,
    data_digest,
    sha256_file,
)

__all__ = [
    "Chain",
    "Task",
    "TransformResult",
    "SluiceError",
    "IoError",
    "UsageError",
    "QualityError",
    "PluginError",
    "InputError",
    "data_digest",
    "sha256_file",
    "combine_run_record",
    "__version__",
]


def combine_run_record(reports, output):
    """Fold the task reports of a distributed job into one run record.

    ``reports`` is the directory the tasks wrote their reports to (``Task.write_report``),
    or an iterable of the reports themselves (``Task.report()`` JSON strings, e.g. returned
    as rows by the tasks). The record is written to ``output/_sluice/manifest.json``, next
    to the engine's output files, where ``sluice verify output`` checks the files against
    it; its ``output_rowset_digest`` equals ``sluice digest`` of a one-machine ``sluice run``
    of the same input and chain. Returns the record as a dict. Raises ``InputError`` when
    tasks disagree (other plugins, configs or schemas; one task id with two results).
    """
    if isinstance(reports, (str, os.PathLike)):
        text = _combine_run_record(os.fspath(reports), None, os.fspath(output))
    else:
        texts = [r if isinstance(r, str) else json.dumps(r) for r in reports]
        text = _combine_run_record(None, texts, os.fspath(output))
    return json.loads(text)
