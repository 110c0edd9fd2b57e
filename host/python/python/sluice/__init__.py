"""sluice: run pinned, sandboxed WebAssembly transform plugins over Arrow data from Python.

The same host as the ``sluice`` CLI (the Rust crate ``sluice-host``), built for Python:
load a chain once per worker, then transform ``pyarrow.RecordBatch``es; batches cross as
Arrow C data (zero-copy) and the wasm runs without the GIL.

    import sluice
    chain = sluice.Chain([("filter.wasm", {"column": "qty", "min": "10"})])
    result = chain.transform(batch)     # one chunk
    result.batches, result.digest, result.fuel, result.rows_in, result.rows_out

Errors are ``sluice.SluiceError`` subclasses whose ``exit_code`` and ``category`` are the
CLI's (``PluginError`` 4, ``InputError`` 5, ``UsageError`` 2, ``QualityError`` 3,
``IoError`` 1). See the README, "Running on a cluster", for the Spark and Ray recipes.
"""

from ._sluice import (
    Chain,
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


def combine_run_record(chunks, *, output=None):
    """Combine the chunk digests of a distributed job into one run record (coming).

    ``chunks`` will be the ``TransformResult``s (or their ``digest``/``input_digest``/
    ``rows_in``/``rows_out``/``fuel`` fields) that the engine's tasks returned, in any
    order; the result will be a run record that ``sluice verify`` accepts, built on the
    host's order-independent digest. That host part is being built separately; until it
    lands this raises ``NotImplementedError``. Collect the per-chunk fields now (see the
    README recipes) so jobs can produce the record once it exists.
    """
    # TODO(issue 9): call the host's combine (order-independent digest + manifest) once
    # it exists in sluice-host, through a `_sluice.combine_run_record` binding.
    raise NotImplementedError(
        "sluice.combine_run_record is not available yet: the host does not combine "
        "distributed chunk digests into a run record yet (issue 9)"
    )
