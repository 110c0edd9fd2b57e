//! Arithmetic expressions over columns: `+ - * /`, parentheses, unary minus, numeric
//! literals and column names (bare, or `"quoted"`).

use std::sync::Arc;

use arrow_arith::numeric;
use arrow_cast::cast::{CastOptions, cast_with_options};
use sluice_sdk::Error;
use sluice_sdk::arrow_array::{Array, ArrayRef, Datum, RecordBatch, Scalar, StringArray};
use sluice_sdk::arrow_schema::{ArrowError, DataType, SchemaRef};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// A parsed expression; columns are resolved to indices.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input batch.
    Column(usize),
    /// A numeric literal, kept as text and typed against the other operand.
    Literal(String),
    /// `-expr`
    Neg(Box<Expr>),
    /// `lhs op rhs`
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

fn err(msg: impl Into<String>) -> Error {
    Error::InvalidConfig(format!("config key `expr`: {}", msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(String),
    Sym(char),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, Error> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            toks.push(Tok::Sym(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || matches!(chars[i], 'e' | 'E')
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if text.parse::<f64>().is_err() {
                return Err(err(format!("`{text}` is not a number")));
            }
            toks.push(Tok::Num(text));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Name(chars[start..i].iter().collect()));
        } else if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&q| q == '"')
                .ok_or_else(|| err(format!("unterminated \"...\" in `{s}`")))?;
            toks.push(Tok::Name(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else {
            return Err(err(format!(
                "unexpected `{c}` in `{s}`: only + - * / ( ), numbers and column names are allowed"
            )));
        }
    }
    Ok(toks)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    schema: &'a SchemaRef,
}

impl Parser<'_> {
    fn peek_sym(&self) -> Option<char> {
        match self.toks.get(self.pos) {
            Some(Tok::Sym(c)) => Some(*c),
            _ => None,
        }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        let mut lhs = self.term()?;
        while let Some(c @ ('+' | '-')) = self.peek_sym() {
            self.pos += 1;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(self.term()?));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, Error> {
        let mut lhs = self.factor()?;
        while let Some(c @ ('*' | '/')) = self.peek_sym() {
            self.pos += 1;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(self.factor()?));
        }
        Ok(lhs)
    }

    fn factor(&mut self) -> Result<Expr, Error> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Sym('-')) => Ok(Expr::Neg(Box::new(self.factor()?))),
            Some(Tok::Sym('+')) => self.factor(),
            Some(Tok::Sym('(')) => {
                let e = self.expr()?;
                if self.peek_sym() != Some(')') {
                    return Err(err("missing `)`"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Num(n)) => Ok(Expr::Literal(n)),
            Some(Tok::Name(name)) => self.schema.index_of(&name).map(Expr::Column).map_err(|_| {
                let names: Vec<String> = self.schema.fields().iter().map(|f| format!("`{}`", f.name())).collect();
                err(format!("unknown column `{name}`; the input has {}", names.join(", ")))
            }),
            Some(Tok::Sym(c)) => Err(err(format!("unexpected `{c}`"))),
            None => Err(err("the expression ends too early")),
        }
    }
}

/// Parse `s`, resolving column names against `schema`.
pub fn parse(s: &str, schema: &SchemaRef) -> Result<Expr, Error> {
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
        schema,
    };
    if p.toks.is_empty() {
        return Err(err("the expression is empty"));
    }
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(err(format!(
            "unexpected {:?} after a complete expression",
            p.toks[p.pos]
        )));
    }
    if !e.has_column() {
        return Err(err("the expression must use at least one column"));
    }
    Ok(e)
}

/// An evaluated operand: a full column or a one-row scalar.
struct Value {
    array: ArrayRef,
    scalar: bool,
}

impl Value {
    fn datum(&self) -> Box<dyn Datum + '_> {
        if self.scalar {
            Box::new(Scalar::new(&self.array))
        } else {
            Box::new(&self.array)
        }
    }
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

fn int_digits(dt: &DataType) -> u8 {
    match dt {
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        DataType::Int64 => 19,
        _ => 20,
    }
}

fn is_decimal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..)
    )
}

/// Decimal types of any width as the same width arrow computes in (128, or 256 if either is).
fn widen_decimal(dt: &DataType, wide: bool) -> DataType {
    match dt {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if wide => {
            DataType::Decimal256(*p, *s)
        }
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        d => d.clone(),
    }
}

/// The types both operands are cast to before `op` (arrow kernels need matching types).
fn coerce(op: BinOp, l: &DataType, r: &DataType) -> (DataType, DataType) {
    use DataType::*;
    let wide = matches!(l, Decimal256(..)) || matches!(r, Decimal256(..));
    match (l, r) {
        // SQL (and DuckDB): `/` of integers is a real division.
        (a, b) if op == BinOp::Div && a.is_integer() && b.is_integer() => (Float64, Float64),
        (a, b) if a == b => (a.clone(), b.clone()),
        (a, b) if is_decimal(a) && is_decimal(b) => (widen_decimal(a, wide), widen_decimal(b, wide)),
        (a, b) if is_decimal(a) && b.is_integer() => (
            widen_decimal(a, wide),
            widen_decimal(&Decimal128(int_digits(b), 0), wide),
        ),
        (a, b) if a.is_integer() && is_decimal(b) => (
            widen_decimal(&Decimal128(int_digits(a), 0), wide),
            widen_decimal(b, wide),
        ),
        (a, b)
            if a.is_numeric()
                && b.is_numeric()
                && (a.is_floating() || b.is_floating() || is_decimal(a) || is_decimal(b)) =>
        {
            (Float64, Float64)
        }
        (a, b) if a.is_unsigned_integer() && b.is_unsigned_integer() => (UInt64, UInt64),
        (a, b) if a.is_integer() && b.is_integer() => (Int64, Int64),
        (a, b) => (a.clone(), b.clone()),
    }
}

/// The type of a literal used next to an operand of type `other`.
fn literal_type(text: &str, other: Option<&DataType>) -> DataType {
    let integral = !text.contains(['.', 'e', 'E']);
    let exponent = text.contains(['e', 'E']);
    match other {
        Some(d) if is_decimal(d) && !exponent => {
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let int = int.trim_start_matches('0');
            let scale = frac.len().min(38) as u8;
            let precision = (int.len() + frac.len()).clamp(1, 38) as u8;
            DataType::Decimal128(precision.max(scale), scale as i8)
        }
        Some(d) if d.is_floating() => d.clone(),
        _ if integral => DataType::Int64,
        _ => DataType::Float64,
    }
}

fn literal(text: &str, dt: &DataType) -> Result<Value, ArrowError> {
    let array = cast_with_options(&StringArray::from(vec![text]), dt, &strict())?;
    Ok(Value { array, scalar: true })
}

fn cast_value(v: Value, dt: &DataType) -> Result<Value, ArrowError> {
    if v.array.data_type() == dt {
        return Ok(v);
    }
    Ok(Value {
        array: cast_with_options(&v.array, dt, &strict())?,
        scalar: v.scalar,
    })
}

impl Expr {
    /// The input columns the expression reads, sorted, without repeats.
    pub fn columns(&self) -> Vec<usize> {
        fn walk(e: &Expr, out: &mut Vec<usize>) {
            match e {
                Expr::Column(i) => out.push(*i),
                Expr::Literal(_) => {}
                Expr::Neg(e) => walk(e, out),
                Expr::Binary(_, l, r) => {
                    walk(l, out);
                    walk(r, out)
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The same expression with column `i` renamed to `map(i)`.
    pub fn remap(&self, map: &impl Fn(usize) -> usize) -> Expr {
        match self {
            Expr::Column(i) => Expr::Column(map(*i)),
            Expr::Literal(l) => Expr::Literal(l.clone()),
            Expr::Neg(e) => Expr::Neg(Box::new(e.remap(map))),
            Expr::Binary(op, l, r) => Expr::Binary(*op, Box::new(l.remap(map)), Box::new(r.remap(map))),
        }
    }

    fn has_column(&self) -> bool {
        match self {
            Expr::Column(_) => true,
            Expr::Literal(_) => false,
            Expr::Neg(e) => e.has_column(),
            Expr::Binary(_, l, r) => l.has_column() || r.has_column(),
        }
    }

    /// Evaluate with literals typed after `context` (the type of the other operand).
    fn eval_in(&self, batch: &RecordBatch, context: Option<&DataType>) -> Result<Value, ArrowError> {
        match self {
            Expr::Column(i) => Ok(Value {
                array: Arc::clone(batch.column(*i)),
                scalar: false,
            }),
            Expr::Literal(text) => literal(text, &literal_type(text, context)),
            Expr::Neg(e) => {
                let v = e.eval_in(batch, context)?;
                Ok(Value {
                    array: numeric::neg(&v.array)?,
                    scalar: v.scalar,
                })
            }
            Expr::Binary(op, l, r) => {
                // Type the non-literal side first, so a literal can follow it.
                let (lv, rv) = match (l.as_ref(), r.as_ref()) {
                    (Expr::Literal(_), _) => {
                        let rv = r.eval_in(batch, context)?;
                        let lv = l.eval_in(batch, Some(rv.array.data_type()))?;
                        (lv, rv)
                    }
                    _ => {
                        let lv = l.eval_in(batch, context)?;
                        let rv = r.eval_in(batch, Some(lv.array.data_type()))?;
                        (lv, rv)
                    }
                };
                let (lt, rt) = coerce(*op, lv.array.data_type(), rv.array.data_type());
                let (lv, rv) = (cast_value(lv, &lt)?, cast_value(rv, &rt)?);
                // Natively, 128-bit multiplies are machine instructions: arrow's kernel is as fast.
                if cfg!(target_arch = "wasm32")
                    && *op == BinOp::Mul
                    && !lv.scalar
                    && !rv.scalar
                    && let Some(array) = mul_small_decimals(&lv.array, &rv.array)?
                {
                    return Ok(Value { array, scalar: false });
                }
                let (ld, rd) = (lv.datum(), rv.datum());
                let array = match op {
                    BinOp::Add => numeric::add(ld.as_ref(), rd.as_ref())?,
                    BinOp::Sub => numeric::sub(ld.as_ref(), rd.as_ref())?,
                    BinOp::Mul => numeric::mul(ld.as_ref(), rd.as_ref())?,
                    BinOp::Div => numeric::div(ld.as_ref(), rd.as_ref())?,
                };
                Ok(Value {
                    array,
                    scalar: lv.scalar && rv.scalar,
                })
            }
        }
    }

    /// Evaluate over `batch`: one value per row.
    pub fn eval(&self, batch: &RecordBatch) -> Result<ArrayRef, ArrowError> {
        // `parse` guarantees a column, so the result is a full column.
        Ok(self.eval_in(batch, None)?.array)
    }
}

/// `l * r` for two `Decimal128` columns whose values all fit in 32 bits, as a 64-bit
/// product: the same values and type arrow's `mul` gives (which multiplies 128-bit values
/// with an overflow check: a software routine in wasm, the better part of B1's `derive`).
/// `None` when the inputs are not such columns; arrow then computes the product.
///
/// Values are read as pairs of 64-bit words (low, high; arrow buffers are little endian):
/// the loop has no 128-bit operation and no branch.
pub(crate) fn mul_small_decimals(l: &ArrayRef, r: &ArrayRef) -> Result<Option<ArrayRef>, ArrowError> {
    use sluice_sdk::arrow_array::Decimal128Array;
    use sluice_sdk::arrow_buffer::{MutableBuffer, NullBuffer, ScalarBuffer};
    let (Some(a), Some(b)) = (
        l.as_any().downcast_ref::<Decimal128Array>(),
        r.as_any().downcast_ref::<Decimal128Array>(),
    ) else {
        return Ok(None);
    };
    if a.len() != b.len() {
        return Ok(None);
    }
    let typed = mul_type(a.data_type(), b.data_type())?;
    let n = a.len();
    let (x, y) = (
        a.values().inner().typed_data::<u64>(),
        b.values().inner().typed_data::<u64>(),
    );
    let mut out = MutableBuffer::from_len_zeroed(n * 16);
    // Nonzero once a value (under nulls too: zeros in practice, and a false "too wide" only
    // means arrow computes the column) does not fit in 32 bits.
    let mut wide = 0u64;
    // One value: `x * y` into `d`, and whether `x` or `y` is not an `i128` that fits in an `i32`.
    let step = |x: &[u64], y: &[u64], d: &mut [u64]| {
        let (xl, xh, yl, yh) = (x[0] as i64, x[1] as i64, y[0] as i64, y[1] as i64);
        let misfit = |lo: i64, hi: i64| ((i64::from(lo as i32) ^ lo) | (hi ^ (lo >> 63))) as u64;
        // Both below 2^31 in magnitude: the product is below 2^62, exact in an `i64`.
        let p = xl.wrapping_mul(yl);
        d[0] = p as u64;
        d[1] = (p >> 63) as u64;
        misfit(xl, xh) | misfit(yl, yh)
    };
    // Eight values a step: the sandbox's fuel and interruption checks run once per loop
    // iteration, which cost more than one value's work.
    let ((xs, x_tail), (ys, y_tail)) = (x.as_chunks::<16>(), y.as_chunks::<16>());
    let (ds, d_tail) = out.typed_data_mut::<u64>().as_chunks_mut::<16>();
    for ((x, y), d) in xs.iter().zip(ys).zip(ds.iter_mut()) {
        for k in (0..16).step_by(2) {
            wide |= step(&x[k..k + 2], &y[k..k + 2], &mut d[k..k + 2]);
        }
    }
    for ((x, y), d) in x_tail
        .chunks_exact(2)
        .zip(y_tail.chunks_exact(2))
        .zip(d_tail.chunks_exact_mut(2))
    {
        wide |= step(x, y, d);
    }
    if wide != 0 {
        return Ok(None);
    }
    let nulls = NullBuffer::union(a.nulls(), b.nulls());
    let array = Decimal128Array::new(ScalarBuffer::new(out.into(), 0, n), nulls).with_data_type(typed);
    Ok(Some(Arc::new(array)))
}

/// The type arrow's `mul` gives `l * r` (its precision and scale rule), asked of arrow once
/// per pair of types: calling its kernel on empty columns for it was a fifth of
/// [`mul_small_decimals`] on a 1,000-row call.
fn mul_type(l: &DataType, r: &DataType) -> Result<DataType, ArrowError> {
    use sluice_sdk::arrow_array::new_empty_array;
    use std::cell::RefCell;
    thread_local! {
        static SEEN: RefCell<Vec<(DataType, DataType, DataType)>> = const { RefCell::new(Vec::new()) };
    }
    if let Some(t) = SEEN.with_borrow(|seen| {
        seen.iter()
            .find(|(a, b, _)| a == l && b == r)
            .map(|(_, _, t)| t.clone())
    }) {
        return Ok(t);
    }
    let t = numeric::mul(&new_empty_array(l), &new_empty_array(r))?
        .data_type()
        .clone();
    SEEN.with_borrow_mut(|seen| seen.push((l.clone(), r.clone(), t.clone())));
    Ok(t)
}

/// `value` (a `Decimal128` column) as `target`, a `Decimal128` of the same scale and a
/// smaller precision, when every value fits it: the same buffer under the narrower type.
/// `None` otherwise, and arrow's cast then gives the value or names the one that does not
/// fit. (Arrow checks each value through a checked 128-bit multiply by 1, a software
/// routine in wasm.)
pub(crate) fn narrow_decimal(value: &ArrayRef, target: &DataType) -> Option<ArrayRef> {
    use sluice_sdk::arrow_array::Decimal128Array;
    let (DataType::Decimal128(_, from), DataType::Decimal128(p, to)) = (value.data_type(), target) else {
        return None;
    };
    if from != to || *p == 0 || *p > 38 {
        return None;
    }
    let a = value.as_any().downcast_ref::<Decimal128Array>()?;
    // Values under nulls count too: a false "does not fit" only means arrow casts.
    let fits = if *p <= 18 {
        // The bound fits in 64 bits: each value is checked as a pair of 64-bit words, an
        // `i64` (the high word is the low word's sign) within the bound, without a branch.
        let max = 10i64.pow(u32::from(*p)) - 1;
        let span = (2 * max) as u64;
        let bad = |v: &[u64]| {
            let (lo, hi) = (v[0] as i64, v[1] as i64);
            (hi ^ (lo >> 63)) as u64 | u64::from(lo.wrapping_add(max) as u64 > span)
        };
        // Eight values a step (see `mul_small_decimals`).
        let (octets, tail) = a.values().inner().typed_data::<u64>().as_chunks::<16>();
        let any = octets.iter().fold(0u64, |acc, o| {
            (0..16).step_by(2).fold(acc, |acc, k| acc | bad(&o[k..k + 2]))
        });
        tail.chunks_exact(2).fold(any, |acc, v| acc | bad(v)) == 0
    } else {
        let max = 10i128.pow(u32::from(*p)) - 1;
        let span = (2 * max) as u128;
        a.values().iter().all(|&v| (v.wrapping_add(max) as u128) <= span)
    };
    fits.then(|| Arc::new(a.clone().with_data_type(target.clone())) as ArrayRef)
}
