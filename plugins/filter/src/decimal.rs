//! Comparisons of a `Decimal128` column with a literal of its type, as arrow's `cmp`
//! kernels give them, without 128-bit arithmetic when the column's values fit in 64 bits.
//!
//! wasm has no 128-bit compare: arrow's kernels run a two-word compare per value, which was
//! the largest part of B1's `filter` in the sandbox. Decimals of precision up to 18 (most
//! money columns) fit in 64 bits, so each comparison checks that in the same pass and compares as `i64`.

use sluice_sdk::arrow_array::{Array, ArrayRef, BooleanArray, Datum, Decimal128Array, Scalar};
use sluice_sdk::arrow_buffer::{BooleanBuffer, MutableBuffer};

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
/// 64 bits: the check rides along in the same pass over the column. With `NOT`, each result
/// bit is inverted (`!f`), once per output word instead of once per pair of values.
///
/// The values are read as pairs of 64-bit words (low, high; arrow buffers are little
/// endian) and compared as two-lane vectors, eight values (one output byte) per step and
/// 64 per output word, with no branch in the step. The closure-per-bit form
/// (`BooleanBuffer::collect_bool` over `i128`s) cost about 4 ns per value in wasm, most of
/// B1's `filter`: wasm has no per-lane shift, so LLVM left it scalar. Eight values per
/// step rather than two: the sandbox's fuel and interruption checks run once per loop
/// iteration, and the compiled loop reloaded its constants from the stack every iteration.
fn collect<const NOT: bool>(c: &Decimal128Array, f: impl Fn(X2) -> X2) -> Option<BooleanArray> {
    let len = c.len();
    // `i128` buffers are 8-byte aligned in practice; one that is not is left to arrow's kernel.
    let buffer = c.values().inner();
    if !(buffer.as_ptr() as usize).is_multiple_of(8) {
        return None;
    }
    let words = &buffer.typed_data::<u64>()[..2 * len];
    let mut out = MutableBuffer::new(len.div_ceil(64) * 8);
    let mut bad = X2::splat(0);
    let mut block = |words: &[u64]| {
        let mut packed = 0u64;
        let mut octets = words.chunks_exact(16);
        for (k, o) in (&mut octets).enumerate() {
            let o: &[u64; 16] = o.try_into().expect("chunks of 16");
            let (l0, h0) = X2::load(o[0..4].try_into().expect("4 words"));
            let (l1, h1) = X2::load(o[4..8].try_into().expect("4 words"));
            let (l2, h2) = X2::load(o[8..12].try_into().expect("4 words"));
            let (l3, h3) = X2::load(o[12..16].try_into().expect("4 words"));
            bad = bad
                .or(l0.misfit(h0))
                .or(l1.misfit(h1))
                .or(l2.misfit(h2))
                .or(l3.misfit(h3));
            let byte = f(l0).bitmask() | (f(l1).bitmask() << 2) | (f(l2).bitmask() << 4) | (f(l3).bitmask() << 6);
            packed |= u64::from(byte) << (8 * k);
        }
        let done = words.len() / 2 - octets.remainder().len() / 2;
        let mut quads = octets.remainder().chunks_exact(4);
        for (k, q) in (&mut quads).enumerate() {
            let (lo, hi) = X2::load(q.try_into().expect("chunks of 4"));
            bad = bad.or(lo.misfit(hi));
            packed |= u64::from(f(lo).bitmask()) << (done + 2 * k);
        }
        if let [l, h] = *quads.remainder() {
            // An odd last value: padded with itself, and only its own bit kept.
            let (lo, hi) = X2::load(&[l, h, l, h]);
            bad = bad.or(lo.misfit(hi));
            packed |= u64::from(f(lo).bitmask() & 1) << (words.len() / 2 - 1);
        }
        if NOT {
            // Only the block's own values: bits past the end stay clear.
            let n = words.len() / 2;
            packed = !packed & (u64::MAX >> (64 - n));
        }
        packed
    };
    let mut blocks = words.chunks_exact(128);
    for words in &mut blocks {
        out.push(block(words));
    }
    if !blocks.remainder().is_empty() {
        out.push(block(blocks.remainder()));
    }
    bad.is_zero()
        .then(|| BooleanArray::new(BooleanBuffer::new(out.into(), 0, len), c.nulls().cloned()))
}

/// `col <op> lit`, or `None` when the column is not such a column.
pub(crate) fn compare(op: Op, col: &ArrayRef, lit: &Scalar<ArrayRef>) -> Option<BooleanArray> {
    let c = decimal(col)?;
    let v = X2::splat(literal(c, lit)?);
    match op {
        Op::Eq => collect::<false>(c, |x| x.eq(v)),
        Op::Ne => collect::<true>(c, |x| x.eq(v)),
        Op::Lt => collect::<false>(c, |x| v.gt(x)),
        Op::Le => collect::<true>(c, |x| x.gt(v)),
        Op::Gt => collect::<false>(c, |x| x.gt(v)),
        Op::Ge => collect::<true>(c, |x| v.gt(x)),
    }
}

/// `lo <= col <= hi` in one pass, or `None` when the column is not such a column.
pub(crate) fn between(col: &ArrayRef, lo: &Scalar<ArrayRef>, hi: &Scalar<ArrayRef>) -> Option<BooleanArray> {
    let c = decimal(col)?;
    let (lo, hi) = (X2::splat(literal(c, lo)?), X2::splat(literal(c, hi)?));
    // Neither below `lo` nor above `hi` (empty when lo > hi, as arrow's two comparisons give).
    collect::<true>(c, |x| lo.gt(x).or(x.gt(hi)))
}

/// Two signed 64-bit lanes: wasm's `v128` in the sandbox; elsewhere (the native build and
/// its tests) a pair with the same operations, lane by lane.
#[derive(Clone, Copy)]
pub(crate) struct X2(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] core::arch::wasm32::v128,
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [i64; 2],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl X2 {
    fn splat(v: i64) -> Self {
        Self(core::arch::wasm32::i64x2_splat(v))
    }
    /// Two `i128`s as (low words, high words).
    #[inline(always)]
    fn load(q: &[u64; 4]) -> (Self, Self) {
        use core::arch::wasm32::*;
        // SAFETY: `q` is 32 readable bytes; `v128_load` reads 16 of them unaligned.
        let (a, b) = unsafe { (v128_load(q.as_ptr().cast()), v128_load(q.as_ptr().add(2).cast())) };
        (Self(i64x2_shuffle::<0, 2>(a, b)), Self(i64x2_shuffle::<1, 3>(a, b)))
    }
    fn gt(self, o: Self) -> Self {
        Self(core::arch::wasm32::i64x2_gt(self.0, o.0))
    }
    fn eq(self, o: Self) -> Self {
        Self(core::arch::wasm32::i64x2_eq(self.0, o.0))
    }
    fn or(self, o: Self) -> Self {
        Self(core::arch::wasm32::v128_or(self.0, o.0))
    }
    /// Non-zero in a lane whose value (`self` the low word, `hi` the high word) does not
    /// fit in 64 bits: it fits when `hi` is the low word's sign extension, 0 or -1, that is
    /// when `hi` plus the low word's sign bit is 0. A logical shift, not an arithmetic one:
    /// x86 has no 64-bit arithmetic shift before AVX-512, so that compiles to several.
    fn misfit(self, hi: Self) -> Self {
        use core::arch::wasm32::*;
        Self(i64x2_add(hi.0, u64x2_shr(self.0, 63)))
    }
    /// Bit `i` set when lane `i`'s top bit is.
    fn bitmask(self) -> u8 {
        core::arch::wasm32::i64x2_bitmask(self.0)
    }
    fn is_zero(self) -> bool {
        !core::arch::wasm32::v128_any_true(self.0)
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl X2 {
    fn splat(v: i64) -> Self {
        Self([v, v])
    }
    /// Two `i128`s as (low words, high words).
    fn load(q: &[u64; 4]) -> (Self, Self) {
        (Self([q[0] as i64, q[2] as i64]), Self([q[1] as i64, q[3] as i64]))
    }
    fn lanes(self, o: Self, f: impl Fn(i64, i64) -> i64) -> Self {
        Self([f(self.0[0], o.0[0]), f(self.0[1], o.0[1])])
    }
    fn gt(self, o: Self) -> Self {
        self.lanes(o, |a, b| -i64::from(a > b))
    }
    fn eq(self, o: Self) -> Self {
        self.lanes(o, |a, b| -i64::from(a == b))
    }
    fn or(self, o: Self) -> Self {
        self.lanes(o, |a, b| a | b)
    }
    /// Non-zero in a lane whose value does not fit in 64 bits (see the wasm version).
    fn misfit(self, hi: Self) -> Self {
        hi.lanes(self, |h, l| h.wrapping_add((l as u64 >> 63) as i64))
    }
    /// Bit `i` set when lane `i`'s top bit is.
    fn bitmask(self) -> u8 {
        u8::from(self.0[0] < 0) | (u8::from(self.0[1] < 0) << 1)
    }
    fn is_zero(self) -> bool {
        self.0 == [0, 0]
    }
}
