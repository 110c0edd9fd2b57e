//! Comparisons of a `Decimal128` column with a literal of its type, as arrow's `cmp`
//! kernels give them, without 128-bit arithmetic when the column's values fit in 64 bits.
//!
//! wasm has no 128-bit compare: arrow's kernels run a two-word compare per value, which was
//! the largest part of B1's `filter` in the sandbox. Decimals of precision up to 18 (most
//! money columns) fit in 64 bits, so each comparison checks that in the same pass and compares as `i64`.

use sluice_sdk::arrow_array::{Array, ArrayRef, BooleanArray, Datum, Decimal128Array, Scalar};
use sluice_sdk::arrow_buffer::BooleanBuffer;

use crate::parse::Op;

/// `col` as a `Decimal128` column.
fn decimal(col: &ArrayRef) -> Option<&Decimal128Array> {
    col.as_any().downcast_ref::<Decimal128Array>()
}

/// The literal as an `i64`, when it is a non-null decimal of `c`'s type that fits.
fn literal(c: &Decimal128Array, lit: &Scalar<ArrayRef>) -> Option<i64> {
    let (l, _) = lit.get();
    let l = l.as_any().downcast_ref::<Decimal128Array>()?;
    if l.data_type() != c.data_type() || l.len() != 1 || l.is_null(0) {
        return None;
    }
    i64::try_from(l.value(0)).ok()
}

/// `f` of every value as an `i64`, or `None` if a value (under nulls too) does not fit in
/// 64 bits: the check rides along in the same pass over the column.
fn collect(c: &Decimal128Array, f: impl Fn(i64) -> bool) -> Option<BooleanArray> {
    let values = c.values();
    let mut fits = true;
    let bits = BooleanBuffer::collect_bool(values.len(), |i| {
        let x = values[i];
        fits &= x as i64 as i128 == x;
        f(x as i64)
    });
    fits.then(|| BooleanArray::new(bits, c.nulls().cloned()))
}

/// `col <op> lit`, or `None` when the column is not such a column.
pub(crate) fn compare(op: Op, col: &ArrayRef, lit: &Scalar<ArrayRef>) -> Option<BooleanArray> {
    let c = decimal(col)?;
    let v = literal(c, lit)?;
    match op {
        Op::Eq => collect(c, |x| x == v),
        Op::Ne => collect(c, |x| x != v),
        Op::Lt => collect(c, |x| x < v),
        Op::Le => collect(c, |x| x <= v),
        Op::Gt => collect(c, |x| x > v),
        Op::Ge => collect(c, |x| x >= v),
    }
}

/// `lo <= col <= hi` in one pass, or `None` when the column is not such a column.
pub(crate) fn between(col: &ArrayRef, lo: &Scalar<ArrayRef>, hi: &Scalar<ArrayRef>) -> Option<BooleanArray> {
    let c = decimal(col)?;
    let (lo, hi) = (literal(c, lo)?, literal(c, hi)?);
    if lo > hi {
        return collect(c, |_| false);
    }
    // One unsigned compare: x - lo lands in 0..=hi - lo exactly when x is in lo..=hi.
    let span = hi.wrapping_sub(lo) as u64;
    collect(c, |x| (x.wrapping_sub(lo) as u64) <= span)
}
