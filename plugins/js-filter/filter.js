// `filter` in JavaScript: keeps the rows that match an AND of conditions, the same
// predicate language and SQL null semantics as plugins/filter (Rust):
//   col op literal (= == != <> < <= > >=), col [not] between a and b, col [not] in (...),
//   col is [not] null; literals: numbers, 'strings', date '2024-01-31', timestamp '...',
//   true/false. Config: `predicate`.
//
// Built with componentize-js (see build.mjs); Arrow IPC is read and written with the
// apache-arrow npm package. The exports follow jco's conventions: the `transform`
// interface is an object with `info` and the `Transformer` resource class; a WIT error is
// thrown as the variant value itself, e.g. { tag: 'invalid-config', val: '...' }.

import { tableFromIPC, tableToIPC, Table, Type, DateUnit, RecordBatch, Struct, makeData, vectorFromArray } from "apache-arrow";

const configError = (msg) => ({ tag: "invalid-config", val: `config key \`predicate\`: ${msg}` });

// ---- tokenizer and parser (mirrors plugins/filter/src/parse.rs) ----

function tokenize(s) {
  const toks = [];
  let i = 0;
  const isDigit = (c) => c !== undefined && c >= "0" && c <= "9";
  // No Unicode property escapes in the embedded engine: a letter is what has case, or `_`.
  const isLetter = (c) => c === "_" || c.toLowerCase() !== c.toUpperCase();
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === "(" || c === ")" || c === ",") { toks.push({ k: c }); i++; continue; }
    if (c === "'" || c === '"') {
      let text = "";
      i++;
      for (;;) {
        if (i >= s.length) throw configError(`unterminated ${c}...${c} in \`${s}\``);
        if (s[i] === c && s[i + 1] === c) { text += c; i += 2; continue; }
        if (s[i] === c) { i++; break; }
        text += s[i++];
      }
      toks.push({ k: c === "'" ? "str" : "quoted", v: text });
      continue;
    }
    if ("=!<>".includes(c)) {
      const two = s.slice(i, i + 2);
      const ops = { "==": "=", "!=": "!=", "<>": "!=", "<=": "<=", ">=": ">=" };
      if (ops[two]) { toks.push({ k: "op", v: ops[two] }); i += 2; continue; }
      if (c === "=" || c === "<" || c === ">") { toks.push({ k: "op", v: c }); i++; continue; }
      throw configError(`unexpected \`${c}\` in \`${s}\``);
    }
    if (isDigit(c) || c === "." || ((c === "-" || c === "+") && (isDigit(s[i + 1]) || s[i + 1] === "."))) {
      const start = i++;
      while (i < s.length) {
        const d = s[i];
        const expSign = (d === "-" || d === "+") && (s[i - 1] === "e" || s[i - 1] === "E");
        if (isDigit(d) || d === "." || d === "e" || d === "E" || expSign) i++; else break;
      }
      let text = s.slice(start, i);
      if (text.startsWith("+")) text = text.slice(1);
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw configError(`\`${text}\` is not a number`);
      toks.push({ k: "num", v: text });
      continue;
    }
    if (isLetter(c)) {
      const start = i;
      while (i < s.length && (isLetter(s[i]) || isDigit(s[i]) || s[i] === ".")) i++;
      toks.push({ k: "word", v: s.slice(start, i) });
      continue;
    }
    throw configError(`unexpected \`${c}\` in \`${s}\``);
  }
  return toks;
}

const RESERVED = ["and", "or", "not", "between", "in", "is", "null", "true", "false"];

function parse(predicate) {
  const toks = tokenize(predicate);
  let pos = 0;
  const peek = () => toks[pos];
  const describe = () => {
    const t = peek();
    if (!t) return "the end";
    if (t.k === "word" || t.k === "num") return `\`${t.v}\``;
    if (t.k === "str") return `\`'${t.v}'\``;
    if (t.k === "quoted") return `\`"${t.v}"\``;
    if (t.k === "op") return `\`${t.v}\``;
    return `\`${t.k}\``;
  };
  const keyword = (kw) => {
    const t = peek();
    if (t && t.k === "word" && t.v.toLowerCase() === kw) { pos++; return true; }
    return false;
  };
  const expectKeyword = (kw, after) => {
    if (!keyword(kw)) throw configError(`expected \`${kw}\` after ${after}, found ${describe()}`);
  };
  const column = () => {
    const t = peek();
    if (t && ((t.k === "word" && !RESERVED.includes(t.v.toLowerCase())) || t.k === "quoted")) { pos++; return t.v; }
    throw configError(`expected a column name, found ${describe()}`);
  };
  const literal = () => {
    const found = describe();
    const t = toks[pos++];
    if (t && t.k === "num") return { kind: "number", text: t.v };
    if (t && t.k === "str") return { kind: "string", text: t.v };
    if (t && t.k === "word") {
      const w = t.v.toLowerCase();
      if (w === "true" || w === "false") return { kind: "bool", value: w === "true" };
      if (w === "null") throw configError("a comparison with null is never true; use `col is null` or `col is not null`");
      if (w === "date" || w === "timestamp") {
        const s = toks[pos++];
        if (!s || s.k !== "str") throw configError(`expected a quoted string after \`${t.v}\`, e.g. ${t.v} '2024-01-31'`);
        return { kind: w, text: s.v };
      }
    }
    throw configError(`expected a literal (number, 'string', date '...', true, false), found ${found}`);
  };
  const cond = () => {
    const col = column();
    const t = peek();
    if (t && t.k === "op") { pos++; return { col, test: "cmp", op: t.v, lits: [literal()] }; }
    if (keyword("is")) {
      const not = keyword("not");
      expectKeyword("null", "`is`");
      return { col, test: "isnull", not, lits: [] };
    }
    const not = keyword("not");
    if (keyword("between")) {
      const lo = literal();
      expectKeyword("and", "`between` and its lower bound");
      return { col, test: "between", not, lits: [lo, literal()] };
    }
    if (keyword("in")) {
      const open = toks[pos++];
      if (!open || open.k !== "(") throw configError("expected `(` after `in`");
      const lits = [literal()];
      for (;;) {
        const n = toks[pos++];
        if (n && n.k === ",") lits.push(literal());
        else if (n && n.k === ")") break;
        else throw configError("expected `,` or `)` in the `in` list");
      }
      return { col, test: "in", not, lits };
    }
    throw configError(`expected an operator (=, !=, <, <=, >, >=), \`between\`, \`in\` or \`is\` after column \`${col}\`, found ${describe()}`);
  };
  if (toks.length === 0) throw configError("the predicate is empty");
  const conds = [cond()];
  while (peek()) {
    if (keyword("or")) throw configError("`or` is not supported: only `and` of conditions");
    expectKeyword("and", "a condition");
    conds.push(cond());
  }
  return conds;
}

// ---- binding conditions to columns ----

const DAY_MS = 86400000;

function typeKind(type) {
  switch (type.typeId) {
    case Type.Int: return type.bitWidth === 64 ? "bigint" : "number";
    case Type.Float: return "number";
    case Type.Utf8: case Type.LargeUtf8: return "string";
    case Type.Bool: return "bool";
    case Type.Date: case Type.Timestamp: return "time";
    default: return null;
  }
}

function describeLit(l) {
  if (l.kind === "number") return l.text;
  if (l.kind === "string") return `'${l.text.replaceAll("'", "''")}'`;
  if (l.kind === "bool") return String(l.value);
  return `${l.kind} '${l.text}'`;
}

// The literal as a value comparable with the column's values (see `cell`).
function bindLiteral(l, kind, name, type, integral) {
  const mismatch = (what) => configError(`${what} ${describeLit(l)} cannot be compared with column \`${name}\` of type ${type}`);
  if (kind === "string") {
    if (l.kind === "number") throw configError(`number ${l.text} cannot be compared with column \`${name}\` of type ${type}; quote it to compare as text: '${l.text}'`);
    if (l.kind !== "string") throw mismatch(l.kind === "bool" ? "boolean" : "date/time literal");
    return l.text;
  }
  if (kind === "bool") {
    if (l.kind === "bool") return l.value;
    if (l.kind === "string" && /^(true|false)$/i.test(l.text)) return l.text.toLowerCase() === "true";
    throw mismatch(l.kind === "number" ? "number" : "date/time literal");
  }
  if (kind === "time") {
    if (l.kind !== "date" && l.kind !== "timestamp" && l.kind !== "string") throw mismatch(l.kind);
    const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(l.text) ? `${l.text}T00:00:00Z` : l.text.replace(" ", "T") + (/[zZ]|[+-]\d\d:?\d\d$/.test(l.text) ? "" : "Z"));
    if (Number.isNaN(ms)) throw configError(`literal ${describeLit(l)} does not cast to the type of column \`${name}\` (${type})`);
    return ms;
  }
  // numeric columns
  if (l.kind === "bool") throw mismatch("boolean");
  if (l.kind === "date" || l.kind === "timestamp") throw mismatch("date/time literal");
  const n = Number(l.text);
  if (Number.isNaN(n)) throw configError(`literal ${describeLit(l)} does not cast to the type of column \`${name}\` (${type})`);
  if (kind === "bigint" && integral) return BigInt(l.text);
  return n;
}

// How to read a column's cells as comparable values: `valid(i)` and `value(i)`. Numbers
// and day dates are read from the typed arrays directly: the engine is an interpreter, and
// `vector.get(i)` per cell costs several times more.
function accessor(vector, kind, integral) {
  const data = vector.data[0];
  const off = data.offset;
  const bits = data.nullCount > 0 ? data.nullBitmap : null;
  const valid = bits ? (i) => ((bits[(i + off) >> 3] >> ((i + off) & 7)) & 1) === 1 : () => true;
  const t = data.type;
  const v = data.values;
  let value;
  if (t.typeId === Type.Float || (t.typeId === Type.Int && t.bitWidth < 64)) {
    value = (i) => v[i + off];
  } else if (t.typeId === Type.Int) {
    value = integral ? (i) => v[i + off] : (i) => Number(v[i + off]);
  } else if (t.typeId === Type.Date && t.unit === DateUnit.DAY) {
    value = (i) => v[i + off] * DAY_MS;
  } else if (kind === "time") {
    value = (i) => { const x = vector.get(i); return x instanceof Date ? x.getTime() : Number(x); };
  } else {
    value = (i) => vector.get(i);
  }
  return { valid, value };
}

function cmp(a, op, b) {
  switch (op) {
    case "=": return a === b;
    case "!=": return a !== b;
    case "<": return a < b;
    case "<=": return a <= b;
    case ">": return a > b;
    case ">=": return a >= b;
  }
  return false;
}

function compile(conds, schema) {
  return conds.map((c) => {
    const index = schema.fields.findIndex((f) => f.name === c.col);
    if (index < 0) {
      const names = schema.fields.map((f) => `\`${f.name}\``).join(", ");
      throw configError(`unknown column \`${c.col}\`; the input has ${names}`);
    }
    const type = schema.fields[index].type;
    const kind = typeKind(type);
    if (kind === null && c.test !== "isnull") {
      throw configError(`column \`${c.col}\` has type ${type}, which this plugin cannot compare`);
    }
    // Integer columns compare exactly with integer literals, as doubles with fractional ones.
    const integral = c.lits.every((l) => l.kind !== "number" || /^-?\d+$/.test(l.text));
    const lits = c.lits.map((l) => bindLiteral(l, kind, c.col, type, integral));
    return { ...c, index, kind, integral, lits };
  });
}

function keep(check, cells, i) {
  if (check.test === "isnull") return cells.valid(i) === check.not;
  if (!cells.valid(i)) return false;  // SQL: a comparison with null is not true
  const v = cells.value(i);
  if (check.test === "cmp") return cmp(v, check.op, check.lits[0]);
  if (check.test === "between") return (v >= check.lits[0] && v <= check.lits[1]) !== check.not;
  return check.lits.some((l) => l === v) !== check.not;
}

// ---- the exported interface ----

class Transformer {
  constructor(schemaIpc, schema, checks) {
    this.schemaIpc = schemaIpc;
    this.schema = schema;
    this.checks = checks;
  }

  static open(config, inputSchema, _state) {
    const cfg = new Map(config);
    for (const k of cfg.keys()) {
      if (k !== "predicate") throw { tag: "invalid-config", val: `unknown config key \`${k}\`; allowed keys: \`predicate\`` };
    }
    if (!cfg.has("predicate")) throw { tag: "invalid-config", val: "missing config key `predicate`: set it with --config predicate=..." };
    const schema = tableFromIPC(inputSchema).schema;
    const checks = compile(parse(cfg.get("predicate")), schema);
    return new Transformer(new Uint8Array(inputSchema), schema, checks);
  }

  outputSchema() {
    return this.schemaIpc;
  }

  process(batch) {
    const table = tableFromIPC(batch);
    const out = [];
    for (const rb of table.batches) {
      const cells = this.checks.map((c) => accessor(rb.getChildAt(c.index), c.kind, c.integral));
      const kept = [];
      for (let i = 0; i < rb.numRows; i++) {
        if (this.checks.every((c, j) => keep(c, cells[j], i))) kept.push(i);
      }
      if (kept.length === 0) continue;
      if (kept.length === rb.numRows) { out.push(rb); continue; }
      // Gather the kept rows into one new batch: one output batch per input batch, however
      // scattered the rows (a slice per run of rows made thousands of tiny batches).
      const children = this.schema.fields.map((f, c) => {
        const col = rb.getChildAt(c);
        return vectorFromArray(kept.map((i) => col.get(i)), f.type).data[0];
      });
      const data = makeData({ type: new Struct(this.schema.fields), length: kept.length, nullCount: 0, children });
      out.push(new RecordBatch(this.schema, data));
    }
    if (out.length === 0) return this.schemaIpc;
    return tableToIPC(new Table(out), "stream");
  }

  finish() {
    return this.schemaIpc;
  }

  checkpoint() {
    return new Uint8Array(0);
  }
}

export const transform = {
  info() {
    return {
      name: "filter-js",
      version: "1.0.0",
      description: "Keeps the rows matching a predicate (`predicate=...`); written in JavaScript.",
      stateful: false,
    };
  },
  Transformer,
};
