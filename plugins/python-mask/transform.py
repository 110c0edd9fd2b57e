"""The `transformer` resource of the Python mask plugin (see app.py)."""

import hashlib
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world.exports import transform
from wit_world.exports.transform import Error_InvalidConfig, Error_InvalidInput

import sluice_arrow as arrow


class Transformer(transform.Transformer):
    def __init__(self, schema: arrow.Schema, columns: List[int]):
        self.schema = schema
        self.columns = columns

    @classmethod
    def open(cls, config: List[Tuple[str, str]], input_schema: bytes, state: Optional[bytes]) -> "Transformer":
        cfg = dict(config)
        unknown = [k for k in cfg if k != "columns"]
        if unknown:
            raise Err(Error_InvalidConfig(f"unknown config key `{unknown[0]}`; allowed keys: `columns`"))
        if "columns" not in cfg:
            raise Err(Error_InvalidConfig("missing config key `columns`: set it with --config columns=..."))
        try:
            schema = arrow.read_schema(input_schema)
        except arrow.ArrowError as e:
            raise Err(Error_InvalidInput(f"input schema: {e}"))
        columns: List[int] = []
        for name in (c.strip() for c in cfg["columns"].split(",")):
            try:
                i = schema.index(name)
            except KeyError as e:
                raise Err(Error_InvalidConfig(f"config key `columns`: {e.args[0]}"))
            f = schema.fields[i]
            if not f.type.is_string or f.dictionary is not None:
                raise Err(Error_InvalidConfig(
                    f"config key `columns`: column `{name}` is {f.type}; "
                    "mask works on string columns (Utf8, LargeUtf8, Utf8View)"))
            if i not in columns:
                columns.append(i)
        return cls(schema, columns)

    def output_schema(self) -> bytes:
        # A stream holding only the schema: the message, then end-of-stream.
        return arrow.write_stream(self.schema, [])

    def process(self, batch: bytes) -> bytes:
        try:
            _, batches = arrow.read_stream(batch)
        except arrow.ArrowError as e:
            raise Err(Error_InvalidInput(f"input batch: {e}"))
        out = []
        for b in batches:
            for i in self.columns:
                col = b.columns[i]
                masked = [None if v is None else hashlib.sha256(v.encode("utf-8")).hexdigest()
                          for v in col.to_pylist()]
                b = b.with_column(i, arrow.strings(col.field, masked))
            out.append(b)
        return arrow.write_stream(self.schema, out)

    def finish(self) -> bytes:
        return arrow.write_stream(self.schema, [])

    def checkpoint(self) -> bytes:
        return b""
