"""A small pure-Python Arrow IPC stream reader and writer for sluice plugins.

pyarrow cannot run inside a WebAssembly component, so Python plugins (built with
componentize-py) read and write the Arrow IPC stream bytes of the sluice ABI with this
module: standard library only, no compression, little-endian, metadata version V5.

Reading covers every layout sluice hands a plugin: ints and unsigned ints of 8-64 bits,
float32/64, bool, utf8/binary (also large and view variants), date32/64, timestamp (with
unit and time zone), decimal128, null, fixed-size binary, nulls everywhere, and
dictionary-encoded columns (decoded to their values). Nested types (struct, list, map) are
carried through untouched but not decoded. Writing builds columns of the same flat types
from Python values, or passes a column read from the input through as is.

    schema, batches = read_stream(ipc_bytes)
    col = batches[0].column("email")          # a Column
    values = col.to_pylist()                  # Python values, None for nulls
    out = write_stream(schema, [batch.with_column(i, strings(col.type, masked))])
"""

import struct
from dataclasses import dataclass, field as dc_field
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "ArrowError", "DataType", "Field", "Schema", "Column", "RecordBatch",
    "read_stream", "read_schema", "write_stream", "column_from_pylist", "strings",
]


class ArrowError(ValueError):
    """The bytes are not an Arrow IPC stream this module can read, or a value does not fit."""


# Type ids of the flatbuffers `Type` union (Schema.fbs).
_NULL, _INT, _FLOAT, _BINARY, _UTF8, _BOOL, _DECIMAL, _DATE, _TIME, _TIMESTAMP = range(1, 11)
_INTERVAL, _LIST, _STRUCT, _UNION, _FIXED_BINARY, _FIXED_LIST, _MAP, _DURATION = range(11, 19)
_LARGE_BINARY, _LARGE_UTF8, _LARGE_LIST, _RUN_END, _BINARY_VIEW, _UTF8_VIEW = range(19, 25)
_TYPE_NAMES = {
    _NULL: "null", _INT: "int", _FLOAT: "float", _BINARY: "binary", _UTF8: "utf8", _BOOL: "bool",
    _DECIMAL: "decimal", _DATE: "date", _TIME: "time", _TIMESTAMP: "timestamp", _INTERVAL: "interval",
    _LIST: "list", _STRUCT: "struct", _UNION: "union", _FIXED_BINARY: "fixed_size_binary",
    _FIXED_LIST: "fixed_size_list", _MAP: "map", _DURATION: "duration", _LARGE_BINARY: "large_binary",
    _LARGE_UTF8: "large_utf8", _LARGE_LIST: "large_list", _RUN_END: "run_end_encoded",
    _BINARY_VIEW: "binary_view", _UTF8_VIEW: "utf8_view",
}
_NAME_IDS = {v: k for k, v in _TYPE_NAMES.items()}
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
_V5 = 4
_CONTINUATION = b"\xff\xff\xff\xff"


# --------------------------------------------------------------------------- flatbuffers

class _Table:
    """A flatbuffers table: `buf` and the absolute position of the table."""

    __slots__ = ("buf", "pos", "vt", "vt_len")

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        if pos + 4 > len(buf):
            raise ArrowError("flatbuffer table out of bounds")
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]
        if self.vt < 0 or self.vt + 4 > len(buf):
            raise ArrowError("flatbuffer vtable out of bounds")
        self.vt_len = struct.unpack_from("<H", buf, self.vt)[0]

    def _field(self, i: int) -> int:
        at = 4 + 2 * i
        if at + 2 > self.vt_len:
            return 0
        off = struct.unpack_from("<H", self.buf, self.vt + at)[0]
        return self.pos + off if off else 0

    def scalar(self, i: int, fmt: str, default: Any = 0) -> Any:
        p = self._field(i)
        if not p:
            return default
        if p + struct.calcsize(fmt) > len(self.buf):
            raise ArrowError("flatbuffer field out of bounds")
        return struct.unpack_from("<" + fmt, self.buf, p)[0]

    def _indirect(self, i: int) -> int:
        p = self._field(i)
        if not p:
            return 0
        target = p + struct.unpack_from("<I", self.buf, p)[0]
        if target >= len(self.buf):
            raise ArrowError("flatbuffer offset out of bounds")
        return target

    def table(self, i: int) -> Optional["_Table"]:
        p = self._indirect(i)
        return _Table(self.buf, p) if p else None

    def string(self, i: int) -> Optional[str]:
        p = self._indirect(i)
        if not p:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        if p + 4 + n > len(self.buf):
            raise ArrowError("flatbuffer string out of bounds")
        return bytes(self.buf[p + 4:p + 4 + n]).decode("utf-8")

    def _vector(self, i: int, elem: int) -> Tuple[int, int]:
        p = self._indirect(i)
        if not p:
            return 0, 0
        n = struct.unpack_from("<I", self.buf, p)[0]
        if p + 4 + n * elem > len(self.buf):
            raise ArrowError("flatbuffer vector out of bounds")
        return p + 4, n

    def tables(self, i: int) -> List["_Table"]:
        start, n = self._vector(i, 4)
        out = []
        for k in range(n):
            at = start + 4 * k
            out.append(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out

    def structs(self, i: int, fmt: str) -> List[tuple]:
        size = struct.calcsize("<" + fmt)
        start, n = self._vector(i, size)
        return [struct.unpack_from("<" + fmt, self.buf, start + size * k) for k in range(n)]


class _Builder:
    """Writes a flatbuffer front to back: each object after the one that points to it, so
    every offset is positive, with scalars aligned to their size."""

    def __init__(self) -> None:
        self.buf = bytearray(4)  # root offset, patched in finish()

    def _align(self, n: int, extra: int = 0) -> None:
        while (len(self.buf) + extra) % n:
            self.buf.append(0)

    def finish(self, root: "_T") -> bytes:
        pos = self._write(root)
        struct.pack_into("<I", self.buf, 0, pos)
        self._align(8)
        return bytes(self.buf)

    def _write(self, obj: Any) -> int:
        if isinstance(obj, _T):
            return self._table(obj)
        if isinstance(obj, str):
            data = obj.encode("utf-8")
            self._align(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return pos
        if isinstance(obj, _Structs):
            self._align(8, 4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj.items))
            for item in obj.items:
                self.buf += struct.pack("<" + obj.fmt, *item)
            return pos
        if isinstance(obj, list):
            self._align(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj))
            slots = []
            for _ in obj:
                slots.append(len(self.buf))
                self.buf += b"\0\0\0\0"
            for slot, child in zip(slots, obj):
                struct.pack_into("<I", self.buf, slot, self._write(child) - slot)
            return pos
        raise TypeError(f"cannot write {obj!r} into a flatbuffer")

    def _table(self, t: "_T") -> int:
        fields = [(i, f) for i, f in enumerate(t.fields) if f is not None]
        # Lay out the table's fields (after its 4-byte vtable offset), largest first.
        sizes = {i: (4 if fmt == "off" else struct.calcsize(fmt)) for i, (fmt, _) in fields}
        order = sorted(fields, key=lambda f: -sizes[f[0]])
        vt_size = 4 + 2 * len(t.fields)
        self._align(2)
        vt_pos = len(self.buf)
        tbl_pos = vt_pos + vt_size
        tbl_pos += (-tbl_pos) % 8
        offsets: Dict[int, int] = {}
        cursor = tbl_pos + 4
        for i, _ in order:
            cursor += (-cursor) % sizes[i]
            offsets[i] = cursor - tbl_pos
            cursor += sizes[i]
        tbl_size = cursor - tbl_pos
        self.buf += struct.pack("<HH", vt_size, tbl_size)
        for i in range(len(t.fields)):
            self.buf += struct.pack("<H", offsets.get(i, 0))
        self.buf += bytes(tbl_pos - len(self.buf))
        self.buf += struct.pack("<i", tbl_pos - vt_pos) + bytes(tbl_size - 4)
        children = []
        for i, (fmt, value) in fields:
            at = tbl_pos + offsets[i]
            if fmt == "off":
                children.append((at, value))
            else:
                struct.pack_into("<" + fmt, self.buf, at, value)
        for at, child in children:
            struct.pack_into("<I", self.buf, at, self._write(child) - at)
        return tbl_pos


@dataclass
class _T:
    """A table to write: field i is None (absent), (struct format, value) or ("off", child)."""
    fields: List[Optional[Tuple[str, Any]]]


@dataclass
class _Structs:
    """A vector of structs to write."""
    fmt: str
    items: List[tuple]


# --------------------------------------------------------------------------- schema

@dataclass(frozen=True)
class DataType:
    """An Arrow data type: `name` (e.g. `int`, `utf8`, `timestamp`) and its parameters.

    Parameters by name: int `bits`, `signed`; float `bits`; decimal `precision`, `scale`,
    `bits`; date `unit` (`day` or `millisecond`); time, timestamp and duration `unit`
    (`second`, `millisecond`, `microsecond`, `nanosecond`), timestamp `tz`;
    fixed_size_binary and fixed_size_list `width`.
    """
    name: str
    bits: int = 0
    signed: bool = True
    precision: int = 0
    scale: int = 0
    unit: str = ""
    tz: Optional[str] = None
    width: int = 0

    def __str__(self) -> str:
        if self.name == "int":
            return f"{'' if self.signed else 'u'}int{self.bits}"
        if self.name == "float":
            return f"float{self.bits}"
        if self.name == "timestamp":
            return f"timestamp[{self.unit}{', ' + self.tz if self.tz else ''}]"
        if self.name == "decimal":
            return f"decimal{self.bits}({self.precision}, {self.scale})"
        if self.name == "date":
            return "date32" if self.unit == "day" else "date64"
        return self.name

    @property
    def is_string(self) -> bool:
        """True for utf8, large_utf8 and utf8_view."""
        return self.name in ("utf8", "large_utf8", "utf8_view")


_UNITS = ["second", "millisecond", "microsecond", "nanosecond"]


@dataclass(frozen=True)
class Field:
    """A column of a schema. `dictionary` holds (id, index type) for a dictionary-encoded
    column, whose `type` is the type of its values."""
    name: str
    type: DataType
    nullable: bool = True
    children: Tuple["Field", ...] = ()
    metadata: Tuple[Tuple[str, str], ...] = ()
    dictionary: Optional[Tuple[int, DataType]] = None


@dataclass
class Schema:
    """The fields of a stream, and the schema message bytes it was read from (if any)."""
    fields: List[Field]
    metadata: Tuple[Tuple[str, str], ...] = ()
    message: Optional[bytes] = dc_field(default=None, repr=False, compare=False)

    def index(self, name: str) -> int:
        """The index of the column called `name`; KeyError naming the columns if none."""
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        names = ", ".join(f"`{f.name}`" for f in self.fields)
        raise KeyError(f"unknown column `{name}`; the input has {names}")


def _read_type(f: _Table) -> DataType:
    tid = f.scalar(2, "B")
    name = _TYPE_NAMES.get(tid)
    if name is None:
        raise ArrowError(f"field `{f.string(0)}`: unknown Arrow type id {tid}")
    t = f.table(3)
    if t is None:
        if tid in (_INT, _FLOAT, _DECIMAL, _TIMESTAMP, _FIXED_BINARY, _FIXED_LIST):
            raise ArrowError(f"field `{f.string(0)}`: type {name} without its parameters")
        return DataType(name, unit="millisecond" if tid in (_DATE, _TIME, _DURATION) else "",
                        bits=32 if tid == _TIME else 0)
    if tid == _INT:
        return DataType("int", bits=t.scalar(0, "i"), signed=bool(t.scalar(1, "B")))
    if tid == _FLOAT:
        return DataType("float", bits={0: 16, 1: 32, 2: 64}[t.scalar(0, "h")])
    if tid == _DECIMAL:
        return DataType("decimal", precision=t.scalar(0, "i"), scale=t.scalar(1, "i"), bits=t.scalar(2, "i", 128))
    if tid == _DATE:
        return DataType("date", unit="day" if t.scalar(0, "h", 1) == 0 else "millisecond")
    if tid == _TIME:
        return DataType("time", unit=_UNITS[t.scalar(0, "h", 1)], bits=t.scalar(1, "i", 32))
    if tid == _TIMESTAMP:
        return DataType("timestamp", unit=_UNITS[t.scalar(0, "h")], tz=t.string(1))
    if tid == _DURATION:
        return DataType("duration", unit=_UNITS[t.scalar(0, "h", 1)])
    if tid in (_FIXED_BINARY, _FIXED_LIST):
        return DataType(name, width=t.scalar(0, "i"))
    return DataType(name)


def _read_metadata(t: _Table, i: int) -> Tuple[Tuple[str, str], ...]:
    return tuple((kv.string(0) or "", kv.string(1) or "") for kv in t.tables(i))


def _read_field(f: _Table) -> Field:
    dictionary = None
    d = f.table(4)
    if d is not None:
        it = d.table(1)
        index = DataType("int", bits=it.scalar(0, "i"), signed=bool(it.scalar(1, "B"))) if it else DataType(
            "int", bits=32)
        dictionary = (d.scalar(0, "q"), index)
    return Field(
        name=f.string(0) or "",
        type=_read_type(f),
        nullable=bool(f.scalar(1, "B")),
        children=tuple(_read_field(c) for c in f.tables(5)),
        metadata=_read_metadata(f, 6),
        dictionary=dictionary,
    )


def _type_table(t: DataType) -> Tuple[int, _T]:
    tid = _NAME_IDS.get(t.name)
    if tid is None:
        raise ArrowError(f"cannot write type {t}")
    if t.name == "int":
        return tid, _T([("i", t.bits), ("B", int(t.signed))])
    if t.name == "float":
        return tid, _T([("h", {16: 0, 32: 1, 64: 2}[t.bits])])
    if t.name == "decimal":
        return tid, _T([("i", t.precision), ("i", t.scale), ("i", t.bits or 128)])
    if t.name == "date":
        return tid, _T([("h", 0 if t.unit == "day" else 1)])
    if t.name == "time":
        return tid, _T([("h", _UNITS.index(t.unit)), ("i", t.bits)])
    if t.name == "timestamp":
        return tid, _T([("h", _UNITS.index(t.unit)), ("off", t.tz) if t.tz is not None else None])
    if t.name == "duration":
        return tid, _T([("h", _UNITS.index(t.unit))])
    if t.name in ("fixed_size_binary", "fixed_size_list"):
        return tid, _T([("i", t.width)])
    return tid, _T([])


def _metadata_tables(md: Sequence[Tuple[str, str]]) -> Optional[Tuple[str, Any]]:
    return ("off", [_T([("off", k), ("off", v)]) for k, v in md]) if md else None


def _field_table(f: Field) -> _T:
    tid, t = _type_table(f.type)
    dictionary = None
    if f.dictionary is not None:
        did, index = f.dictionary
        dictionary = ("off", _T([("q", did), ("off", _T([("i", index.bits), ("B", int(index.signed))]))]))
    return _T([
        ("off", f.name),
        ("B", int(f.nullable)),
        ("B", tid),
        ("off", t),
        dictionary,
        ("off", [_field_table(c) for c in f.children]),
        _metadata_tables(f.metadata),
    ])


def _message(header_type: int, header: _T, body_len: int) -> bytes:
    fb = _Builder().finish(_T([("h", _V5), ("B", header_type), ("off", header), ("q", body_len)]))
    return _CONTINUATION + struct.pack("<i", len(fb)) + fb


def encode_schema(schema: Schema) -> bytes:
    """The schema message of `schema` (reused verbatim when it was read from a stream)."""
    if schema.message is not None:
        return schema.message
    fields = [_field_table(f) for f in schema.fields]
    return _message(_SCHEMA, _T([("h", 0), ("off", fields), _metadata_tables(schema.metadata)]), 0)


# --------------------------------------------------------------------------- columns

def _buffer_count(f: Field, variadic: List[int]) -> int:
    """Buffers this field uses in a record batch, children included; consumes one
    variadic count per view column."""
    name = "int" if f.dictionary is not None else f.type.name
    if name == "null":
        n = 0
    elif name in ("utf8", "binary", "large_utf8", "large_binary"):
        n = 3
    elif name in ("utf8_view", "binary_view"):
        n = 2 + (variadic.pop(0) if variadic else 0)
    elif name in ("struct", "fixed_size_list"):
        n = 1
    elif name in ("list", "large_list", "map"):
        n = 2
    elif name in ("union", "run_end_encoded"):
        raise ArrowError(f"column `{f.name}`: type {name} is not supported")
    else:
        n = 2
    return n + sum(_buffer_count(c, variadic) for c in f.children)


def _node_count(f: Field) -> int:
    return 1 + sum(_node_count(c) for c in f.children)


class Column:
    """One column of a record batch in Arrow layout: `length`, `null_count`, the raw
    `buffers` (bytes-like, Arrow order for the type), `children` for nested types and,
    for a dictionary-encoded column, the `dictionary` Column its indices point into.
    """

    __slots__ = ("field", "length", "null_count", "buffers", "children", "dictionary")

    def __init__(self, field: Field, length: int, null_count: int, buffers: List[Any],
                 children: Optional[List["Column"]] = None, dictionary: Optional["Column"] = None):
        self.field = field
        self.length = length
        self.null_count = null_count
        self.buffers = buffers
        self.children = children or []
        self.dictionary = dictionary

    @property
    def type(self) -> DataType:
        """The value type (for a dictionary column, the type of its values)."""
        return self.field.type

    def __len__(self) -> int:
        return self.length

    def is_valid(self, i: int) -> bool:
        """False if row `i` is null."""
        if self.field.type.name == "null" and self.field.dictionary is None:
            return False
        v = self.buffers[0]
        if self.null_count == 0 or len(v) == 0:
            return True
        return bool(v[i >> 3] >> (i & 7) & 1)

    def to_pylist(self) -> List[Any]:
        """The values as Python objects, None for nulls. Ints, floats, bools; str for
        strings; bytes for binary; dates as days (date32) or ms (date64) since the epoch;
        timestamps as ints in the type's unit; decimals as unscaled ints. Dictionary
        columns are decoded to their values."""
        n = self.length
        valid = [self.is_valid(i) for i in range(n)]
        if self.field.dictionary is not None:
            if self.dictionary is None:
                raise ArrowError(f"column `{self.field.name}`: dictionary batch missing")
            index = Column(Field(self.field.name, self.field.dictionary[1]), n, self.null_count, self.buffers)
            values = self.dictionary.to_pylist()
            return [values[k] if ok else None for k, ok in zip(index.to_pylist(), valid)]
        t = self.field.type
        name = t.name
        if name == "null":
            return [None] * n
        if name == "bool":
            data = self.buffers[1]
            vals = [bool(data[i >> 3] >> (i & 7) & 1) for i in range(n)]
        elif name in ("int", "date", "timestamp", "time", "duration", "float", "decimal", "fixed_size_binary"):
            vals = self._fixed(t, n)
        elif name in ("utf8", "binary", "large_utf8", "large_binary"):
            fmt = "q" if name.startswith("large") else "i"
            offsets = struct.unpack_from(f"<{n + 1}{fmt}", self.buffers[1]) if n else (0,)
            data = bytes(self.buffers[2])
            vals = [data[offsets[i]:offsets[i + 1]] for i in range(n)]
            if name in ("utf8", "large_utf8"):
                vals = [v.decode("utf-8") for v in vals]
        elif name in ("utf8_view", "binary_view"):
            views = self.buffers[1]
            vals = []
            for i in range(n):
                size = struct.unpack_from("<i", views, 16 * i)[0]
                if size <= 12:
                    v = bytes(views[16 * i + 4:16 * i + 4 + size])
                else:
                    b, off = struct.unpack_from("<ii", views, 16 * i + 8)
                    v = bytes(self.buffers[2 + b][off:off + size])
                vals.append(v.decode("utf-8") if name == "utf8_view" else v)
        else:
            raise ArrowError(f"column `{self.field.name}`: reading values of type {t} is not supported")
        return [v if ok else None for v, ok in zip(vals, valid)]

    def _fixed(self, t: DataType, n: int) -> List[Any]:
        data = self.buffers[1]
        if t.name == "decimal":
            size = t.bits // 8
            return [int.from_bytes(bytes(data[size * i:size * (i + 1)]), "little", signed=True) for i in range(n)]
        if t.name == "fixed_size_binary":
            return [bytes(data[t.width * i:t.width * (i + 1)]) for i in range(n)]
        fmt = _fixed_format(t)
        return list(struct.unpack_from(f"<{n}{fmt}", data)) if n else []


def _fixed_format(t: DataType) -> str:
    if t.name == "int":
        fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[t.bits]
        return fmt if t.signed else fmt.upper()
    if t.name == "float":
        return {16: "e", 32: "f", 64: "d"}[t.bits]
    if t.name == "date":
        return "i" if t.unit == "day" else "q"
    if t.name == "time":
        return "i" if t.bits == 32 else "q"
    if t.name in ("timestamp", "duration"):
        return "q"
    raise ArrowError(f"no fixed-width layout for {t}")


def _validity(values: Sequence[Any]) -> Tuple[bytes, int]:
    nulls = sum(1 for v in values if v is None)
    if nulls == 0:
        return b"", 0
    bits = bytearray((len(values) + 7) // 8)
    for i, v in enumerate(values):
        if v is not None:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits), nulls


def column_from_pylist(f: Field, values: Sequence[Any]) -> Column:
    """Build a column of field `f`'s (flat, non-dictionary) type from Python values, None
    for nulls; the value conventions are those of `Column.to_pylist`."""
    t = f.type
    n = len(values)
    validity, nulls = _validity(values)
    if nulls and not f.nullable:
        raise ArrowError(f"column `{f.name}` is not nullable but got {nulls} nulls")
    name = t.name
    if name == "null":
        return Column(f, n, n, [])
    if name == "bool":
        bits = bytearray((n + 7) // 8)
        for i, v in enumerate(values):
            if v:
                bits[i >> 3] |= 1 << (i & 7)
        return Column(f, n, nulls, [validity, bytes(bits)])
    if name in ("utf8", "binary", "large_utf8", "large_binary", "utf8_view", "binary_view"):
        raw = [b"" if v is None else (v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values]
        if name in ("utf8_view", "binary_view"):
            views = bytearray()
            data = bytearray()
            for v in raw:
                if len(v) <= 12:
                    views += struct.pack("<i", len(v)) + v + bytes(12 - len(v))
                else:
                    views += struct.pack("<i4sii", len(v), v[:4], 0, len(data))
                    data += v
            return Column(f, n, nulls, [validity, bytes(views), bytes(data)])
        fmt = "q" if name.startswith("large") else "i"
        offsets = [0]
        for v in raw:
            offsets.append(offsets[-1] + len(v))
        if fmt == "i" and offsets[-1] >= 2 ** 31:
            raise ArrowError(f"column `{f.name}`: over 2 GiB of {name} data; use a large type")
        return Column(f, n, nulls, [validity, struct.pack(f"<{n + 1}{fmt}", *offsets), b"".join(raw)])
    if name == "decimal":
        size = t.bits // 8
        data = b"".join((0 if v is None else v).to_bytes(size, "little", signed=True) for v in values)
        return Column(f, n, nulls, [validity, data])
    if name == "fixed_size_binary":
        data = b"".join(bytes(t.width) if v is None else bytes(v) for v in values)
        return Column(f, n, nulls, [validity, data])
    fmt = _fixed_format(t)
    zero = 0.0 if name == "float" else 0
    data = struct.pack(f"<{n}{fmt}", *[zero if v is None else v for v in values])
    return Column(f, n, nulls, [validity, data])


def strings(f: Field, values: Sequence[Optional[str]]) -> Column:
    """A string column of field `f` (utf8, large_utf8 or utf8_view) from str values."""
    if not f.type.is_string:
        raise ArrowError(f"column `{f.name}` is {f.type}, not a string type")
    return column_from_pylist(f, values)


# --------------------------------------------------------------------------- batches

class RecordBatch:
    """Columns of equal length with a schema."""

    __slots__ = ("schema", "columns", "num_rows")

    def __init__(self, schema: Schema, columns: List[Column], num_rows: Optional[int] = None):
        self.schema = schema
        self.columns = columns
        self.num_rows = columns[0].length if num_rows is None and columns else (num_rows or 0)

    def column(self, name: str) -> Column:
        """The column called `name`."""
        return self.columns[self.schema.index(name)]

    def with_column(self, i: int, col: Column) -> "RecordBatch":
        """A batch with column `i` replaced (same schema)."""
        cols = list(self.columns)
        cols[i] = col
        return RecordBatch(self.schema, cols, self.num_rows)


def _messages(data: bytes):
    """Yield (Message table, body memoryview, the message's raw bytes) for each message of
    an IPC stream."""
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        start = pos
        if data[pos:pos + 4] == _CONTINUATION:
            pos += 4
        if pos + 4 > len(data):
            raise ArrowError(f"truncated IPC stream at byte {pos}")
        size = struct.unpack_from("<i", data, pos)[0]
        pos += 4
        if size == 0:
            return
        if size < 0 or pos + size > len(data):
            raise ArrowError(f"IPC message at byte {pos} declares {size} bytes of metadata, past the end")
        meta = bytes(view[pos:pos + size])
        pos += size
        root = struct.unpack_from("<I", meta, 0)[0]
        msg = _Table(meta, root)
        body_len = msg.scalar(3, "q")
        if body_len < 0 or pos + body_len > len(data):
            raise ArrowError(f"IPC message body at byte {pos} runs past the end of the stream")
        yield msg, view[pos:pos + body_len], data[start:pos + body_len]
        pos += body_len


def _read_columns(fields: List[Field], rb: _Table, body: memoryview, dictionaries: Dict[int, Column]) -> Tuple[
        int, List[Column]]:
    if rb.table(3) is not None:
        raise ArrowError("compressed IPC record batches are not supported")
    nodes = rb.structs(1, "qq")
    bufs = rb.structs(2, "qq")
    start, count = rb._vector(4, 8)
    variadic = [struct.unpack_from("<q", rb.buf, start + 8 * k)[0] for k in range(count)]
    node_i = 0
    buf_i = 0

    def take(f: Field) -> Column:
        nonlocal node_i, buf_i
        if node_i >= len(nodes):
            raise ArrowError(f"column `{f.name}`: record batch has too few field nodes")
        length, nulls = nodes[node_i]
        node_i += 1
        n = _buffer_count(Field(f.name, f.type, dictionary=f.dictionary), variadic)
        mine = []
        for off, size in bufs[buf_i:buf_i + n]:
            if off < 0 or size < 0 or off + size > len(body):
                raise ArrowError(f"column `{f.name}`: buffer [{off}, {off + size}) outside the message body")
            mine.append(body[off:off + size])
        if len(mine) != n:
            raise ArrowError(f"column `{f.name}`: record batch has too few buffers")
        buf_i += n
        children = [take(c) for c in f.children]
        dictionary = None
        if f.dictionary is not None:
            dictionary = dictionaries.get(f.dictionary[0])
        return Column(f, length, nulls, mine, children, dictionary)

    cols = [take(f) for f in fields]
    return rb.scalar(0, "q"), cols


def read_schema(data: bytes) -> Schema:
    """The schema of an IPC stream (its first message)."""
    for msg, _, raw in _messages(data):
        if msg.scalar(1, "B") != _SCHEMA:
            raise ArrowError("the IPC stream does not start with a schema message")
        s = msg.table(2)
        return Schema([_read_field(f) for f in s.tables(1)], _read_metadata(s, 2), bytes(raw))
    raise ArrowError("the IPC stream holds no schema message")


def read_stream(data: bytes) -> Tuple[Schema, List[RecordBatch]]:
    """The schema and record batches of an IPC stream, dictionaries resolved."""
    schema = None
    batches: List[RecordBatch] = []
    dictionaries: Dict[int, Column] = {}
    dict_fields: Dict[int, Field] = {}
    for msg, body, raw in _messages(data):
        kind = msg.scalar(1, "B")
        header = msg.table(2)
        if kind == _SCHEMA:
            schema = Schema([_read_field(f) for f in header.tables(1)], _read_metadata(header, 2), bytes(raw))

            def walk(fs: Sequence[Field]) -> None:
                for f in fs:
                    if f.dictionary is not None:
                        dict_fields[f.dictionary[0]] = Field(f.name, f.type, True, f.children)
                    walk(f.children)
            walk(schema.fields)
        elif schema is None:
            raise ArrowError("the IPC stream does not start with a schema message")
        elif kind == _DICTIONARY_BATCH:
            did = header.scalar(0, "q")
            if header.scalar(2, "B"):
                raise ArrowError(f"dictionary {did}: delta dictionaries are not supported")
            if did not in dict_fields:
                raise ArrowError(f"dictionary batch for unknown dictionary id {did}")
            _, cols = _read_columns([dict_fields[did]], header.table(1), body, dictionaries)
            dictionaries[did] = cols[0]
        elif kind == _RECORD_BATCH:
            n, cols = _read_columns(schema.fields, header, body, dictionaries)
            batches.append(RecordBatch(schema, cols, n))
        else:
            raise ArrowError(f"unsupported IPC message type {kind}")
    if schema is None:
        raise ArrowError("the IPC stream holds no schema message")
    return schema, batches


def _pad8(n: int) -> int:
    return (8 - n % 8) % 8


def _batch_message(batch: RecordBatch) -> bytes:
    nodes: List[tuple] = []
    buffers: List[tuple] = []
    variadic: List[int] = []
    body = bytearray()

    def put(col: Column) -> None:
        if col.field.dictionary is not None:
            raise ArrowError(f"column `{col.field.name}`: writing dictionary-encoded columns is not supported")
        nodes.append((col.length, col.null_count))
        if col.field.type.name in ("utf8_view", "binary_view"):
            variadic.append(len(col.buffers) - 2)
        for b in col.buffers:
            b = bytes(b)
            buffers.append((len(body), len(b)))
            body.extend(b)
            body.extend(bytes(_pad8(len(b))))
        for c in col.children:
            put(c)

    for col in batch.columns:
        if col.length != batch.num_rows:
            raise ArrowError(f"column `{col.field.name}` has {col.length} rows, the batch {batch.num_rows}")
        put(col)
    header = _T([
        ("q", batch.num_rows),
        ("off", _Structs("qq", nodes)),
        ("off", _Structs("qq", buffers)),
        None,
        ("off", _Structs("q", [(v,) for v in variadic])) if variadic else None,
    ])
    return _message(_RECORD_BATCH, header, len(body)) + bytes(body)


def write_stream(schema: Schema, batches: Sequence[RecordBatch]) -> bytes:
    """An IPC stream: the schema message, then one message per batch, then end-of-stream."""
    out = bytearray(encode_schema(schema))
    for b in batches:
        out += _batch_message(b)
    out += _CONTINUATION + b"\0\0\0\0"
    return bytes(out)
