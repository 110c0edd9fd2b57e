"""Write the seed corpus for the fuzz targets into seeds/<target>/ (needs pyarrow).

Seeds are small valid files with many Arrow types, so mutations start from inputs that
reach deep into the decoders. The `source` seeds start with one byte that picks the format
(0 Parquet, 1 IPC file, 2 IPC stream, 3 CSV, 4 NDJSON), as the target expects.
Journal and manifest seeds come from a real run: see run.sh.
"""

import datetime
import decimal
import io
import json
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))


def tables():
    n = 5
    yield pa.table({"id": pa.array(range(n), pa.int64()), "s": pa.array(["a", None, "ccc", "", "é"])})
    yield pa.table(
        {
            "i8": pa.array([1, -2, None, 4, 5], pa.int8()),
            "u32": pa.array([1, 2, 3, None, 5], pa.uint32()),
            "f": pa.array([1.5, float("nan"), None, -0.0, 1e300], pa.float64()),
            "b": pa.array([True, False, None, True, False]),
            "d": pa.array([datetime.date(2026, 11, i + 1) for i in range(n)], pa.date32()),
            "ts": pa.array([datetime.datetime(2026, 1, 1, i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "dec": pa.array([decimal.Decimal(f"{i}.25") for i in range(n)], pa.decimal128(15, 2)),
            "bin": pa.array([b"x", None, b"", b"\x00\xff", b"yz"], pa.binary()),
            "sv": pa.array(["short", "a string longer than twelve", None, "", "x"], pa.string_view()),
            "ls": pa.array(["l", "large", None, "", "s"], pa.large_string()),
        }
    )
    yield pa.table(
        {
            "list": pa.array([[1, 2], None, [], [3], [4, 5, 6]], pa.list_(pa.int32())),
            "struct": pa.array(
                [{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}, {"a": 4, "b": None}, {"a": 5, "b": "z"}],
                pa.struct([("a", pa.int64()), ("b", pa.string())]),
            ),
            "dict": pa.array(["red", "green", None, "red", "blue"]).dictionary_encode(),
            "fsb": pa.array([b"abcd", b"efgh", None, b"ijkl", b"mnop"], pa.binary(4)),
            "map": pa.array([[("k", 1)], None, [], [("a", 2), ("b", 3)], [("z", 0)]], pa.map_(pa.string(), pa.int64())),
        }
    )


def ipc_stream(t):
    sink = io.BytesIO()
    with ipc.new_stream(sink, t.schema) as w:
        for b in t.to_batches(max_chunksize=2):
            w.write_batch(b)
    return sink.getvalue()


def ipc_file(t):
    sink = io.BytesIO()
    with ipc.new_file(sink, t.schema) as w:
        w.write_table(t, max_chunksize=2)
    return sink.getvalue()


def parquet(t):
    sink = io.BytesIO()
    pq.write_table(t, sink, row_group_size=2, compression="snappy")
    return sink.getvalue()


def csv(t):
    flat = t.select([c for c in t.column_names if not pa.types.is_nested(t.schema.field(c).type)
                     and not pa.types.is_dictionary(t.schema.field(c).type)
                     and not pa.types.is_binary(t.schema.field(c).type)
                     and not pa.types.is_fixed_size_binary(t.schema.field(c).type)
                     and not pa.types.is_string_view(t.schema.field(c).type)])
    sink = io.BytesIO()
    pacsv.write_csv(flat, sink)
    return sink.getvalue()


def ndjson(t):
    rows = t.select([c for c in t.column_names if t.schema.field(c).type in (pa.int64(), pa.string(), pa.float64(), pa.bool_())]).to_pylist()
    clean = lambda v: None if isinstance(v, float) and v != v else v  # JSON has no NaN
    return "".join(json.dumps({k: clean(v) for k, v in r.items()}) + "\n" for r in rows).encode()


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for i, t in enumerate(tables()):
        write("decode_output", f"stream-{i}.arrows", ipc_stream(t))
        write("source", f"parquet-{i}", b"\x00" + parquet(t))
        write("source", f"ipc-file-{i}", b"\x01" + ipc_file(t))
        write("source", f"ipc-stream-{i}", b"\x02" + ipc_stream(t))
        if i < 2:  # the third table is all nested and dictionary columns: no text form
            write("source", f"csv-{i}", b"\x03" + csv(t))
            write("source", f"ndjson-{i}", b"\x04" + ndjson(t))
    write("decode_output", "schema-only.arrows", ipc_stream(pa.table({"x": pa.array([], pa.int64())})))
    write("source", "csv-quoted", b'\x03a,b\n"x, y",1\n"say ""hi""",2\n')


if __name__ == "__main__":
    sys.exit(main())
