//! Run a [`Transform`] natively in tests (feature `harness`).
//!
//! The runs go through the same IPC code as the wasm build ([`Session`]): batches are
//! encoded as the host encodes them, decoded by the SDK, and the output is encoded and
//! decoded again. So a unit test also catches schema mismatches and IPC problems.

use std::fmt::Write as _;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::SchemaRef;

use crate::ipc::{decode_all, encode_all};
use crate::session::Session;
use crate::{Config, Error, Transform};

fn decode_output(bytes: Vec<u8>, out: &mut Vec<RecordBatch>) -> Result<(), Error> {
    let (_, batches) = decode_all(bytes).map_err(|e| e.context("plugin output"))?;
    out.extend(batches);
    Ok(())
}

fn open<T: Transform>(config: &Config, schema_ipc: &[u8], state: Option<&[u8]>) -> Result<Session<T>, Error> {
    Session::<T>::open(config, schema_ipc, state)
}

/// Open `T` with `config` over `input_schema`, process every batch, finish; return all
/// output batches in order.
///
/// # Errors
///
/// The first error `open`, `process` or `finish` returns.
pub fn run_native<T: Transform>(
    config: &[(&str, &str)],
    input_schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, Error> {
    run_native_checkpointed::<T>(config, input_schema, batches, usize::MAX)
}

/// Like [`run_native`], but every `split_every` batches take a checkpoint, drop the
/// instance and open a new one with the state, as the host does when resuming a run.
///
/// For a correct plugin the result equals [`run_native`]'s.
pub fn run_native_checkpointed<T: Transform>(
    config: &[(&str, &str)],
    input_schema: SchemaRef,
    batches: &[RecordBatch],
    split_every: usize,
) -> Result<Vec<RecordBatch>, Error> {
    let config = Config::new(config.iter().copied());
    let schema_ipc = encode_all(&input_schema, &[])?;
    let mut session = open::<T>(&config, &schema_ipc, None)?;
    let mut out = vec![];
    let split_every = split_every.max(1);
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 && i % split_every == 0 {
            let state = session.checkpoint()?;
            drop(session);
            session = open::<T>(&config, &schema_ipc, Some(&state))?;
        }
        let bytes = encode_all(&input_schema, std::slice::from_ref(batch))?;
        decode_output(session.process(bytes)?, &mut out)?;
    }
    decode_output(session.finish()?, &mut out)?;
    Ok(out)
}

/// Like [`run_native`], but through the real sluice host from a built `.wasm` (feature
/// `harness-wasm`): the sandbox, the ABI and the host's validation of every batch.
///
/// Compiled plugins are cached in the default cache directory (`$SLUICE_CACHE_DIR`).
///
/// # Errors
///
/// The host's error, as text (with its category: `usage`, `plugin`, `input`, ...).
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
pub fn run_wasm(
    wasm: impl AsRef<std::path::Path>,
    config: &[(&str, &str)],
    input_schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    run_wasm_checkpointed(wasm, config, input_schema, batches, usize::MAX)
}

/// Like [`run_native_checkpointed`], through the real host from a built `.wasm`.
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
pub fn run_wasm_checkpointed(
    wasm: impl AsRef<std::path::Path>,
    config: &[(&str, &str)],
    input_schema: SchemaRef,
    batches: &[RecordBatch],
    split_every: usize,
) -> Result<Vec<RecordBatch>, String> {
    let fail = |e: sluice_host::Error| format!("{}: {e}", e.category());
    let rt = sluice_host::Runtime::new(sluice_host::RuntimeOptions::with_default_cache()).map_err(fail)?;
    let plugin = rt.load_plugin(wasm.as_ref()).map_err(fail)?;
    let config: Vec<(String, String)> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let det = sluice_host::Determinism::default();
    let mut t = plugin.open(&config, &input_schema, None, &det).map_err(fail)?;
    let mut out = Vec::new();
    let split_every = split_every.max(1);
    for (i, b) in batches.iter().enumerate() {
        if i > 0 && i % split_every == 0 {
            let state = t.checkpoint().map_err(fail)?;
            t = plugin.open(&config, &input_schema, Some(&state), &det).map_err(fail)?;
        }
        out.extend(t.process(b).map_err(fail)?);
    }
    out.extend(t.finish().map_err(fail)?);
    Ok(out)
}

/// One native run of `T` that resumes at each batch index in `splits` as `sluice run` does
/// between chunks: a stateful plugin is checkpointed and reopened with the state, a
/// stateless one finished and reopened fresh. Without splits, a stateful plugin is still
/// checkpointed after every batch. Returns the output and every checkpoint taken.
fn native_run<T: Transform>(
    config: &Config,
    input_schema: &SchemaRef,
    batches: &[RecordBatch],
    splits: &[usize],
) -> Result<(Vec<RecordBatch>, Vec<Vec<u8>>), Error> {
    let stateful = T::INFO.stateful;
    let schema_ipc = encode_all(input_schema, &[])?;
    let mut session = open::<T>(config, &schema_ipc, None)?;
    let mut out = vec![];
    let mut checkpoints = vec![];
    for (i, batch) in batches.iter().enumerate() {
        if splits.contains(&i) {
            let state = if stateful {
                let s = session.checkpoint()?;
                checkpoints.push(s.clone());
                Some(s)
            } else {
                decode_output(session.finish()?, &mut out)?;
                None
            };
            drop(session);
            session = open::<T>(config, &schema_ipc, state.as_deref())?;
        }
        let bytes = encode_all(input_schema, std::slice::from_ref(batch))?;
        decode_output(session.process(bytes)?, &mut out)?;
        if stateful && splits.is_empty() {
            checkpoints.push(session.checkpoint()?);
        }
    }
    decode_output(session.finish()?, &mut out)?;
    Ok((out, checkpoints))
}

/// Run `T` natively with the checks `sluice test` makes, and return its output: a second
/// run gives the same batches and checkpoints, and splitting the input at every batch
/// boundary (alone, then all at once; checkpoint/restore for a stateful plugin, finish and a
/// fresh instance for a stateless one) gives the same values.
///
/// Natively the clock and randomness are the machine's, so a plugin that reads them may
/// slip through here; [`check_cases_wasm`] runs at two logical times and catches it.
///
/// # Errors
///
/// The plugin's error, or the first failed check with the first differing row and column.
pub fn check_native<T: Transform>(
    config: &[(&str, &str)],
    input_schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    let config = Config::new(config.iter().copied());
    let run = |splits: &[usize]| native_run::<T>(&config, &input_schema, batches, splits);
    let (first, states) = run(&[]).map_err(|e| format!("run failed: {e}"))?;
    let (second, states2) = run(&[]).map_err(|e| format!("second run failed: {e}"))?;
    if let Some(d) = batches_diff(&first, &second) {
        return Err(format!("not deterministic: a second run gave different output: {d}"));
    }
    if states != states2 {
        return Err("not deterministic: a second run gave different checkpoints".into());
    }
    let mut split_sets: Vec<Vec<usize>> = (1..batches.len()).map(|i| vec![i]).collect();
    if batches.len() > 2 {
        split_sets.push((1..batches.len()).collect());
    }
    for splits in split_sets {
        let (split, _) = run(&splits).map_err(|e| format!("run split at {splits:?} failed: {e}"))?;
        if let Some(d) = batches_diff(&first, &split) {
            return Err(format!(
                "output changes when the input is split at batches {splits:?}: {d} (left: one run, right: split run)"
            ));
        }
    }
    Ok(first)
}

/// Run `T` natively through every conformance case in `dir` (the format `sluice test
/// --cases` reads; see `sluice_host::conformance`) with the same checks, except that the
/// second run cannot change the machine's clock. Use it in `cargo test` before building
/// the `.wasm`; then [`check_cases_wasm`] on the build.
///
/// # Errors
///
/// One line per failed case, or a problem with the cases themselves.
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
pub fn check_cases_native<T: Transform>(dir: impl AsRef<std::path::Path>) -> Result<(), String> {
    check_cases(dir.as_ref(), |case, bless| {
        sluice_host::conformance::check_case(&mut NativeRunner::<T>(std::marker::PhantomData), case, bless)
    })
}

/// Run a built `.wasm` through every conformance case in `dir` via the real host: exactly
/// what `sluice test WASM --cases DIR` checks.
///
/// # Errors
///
/// One line per failed case, or the host's error loading the plugin or the cases.
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
pub fn check_cases_wasm(wasm: impl AsRef<std::path::Path>, dir: impl AsRef<std::path::Path>) -> Result<(), String> {
    let fail = |e: sluice_host::Error| format!("{}: {e}", e.category());
    let rt = sluice_host::Runtime::new(sluice_host::RuntimeOptions::with_default_cache()).map_err(fail)?;
    let plugin = rt.load_plugin(wasm.as_ref()).map_err(fail)?;
    check_cases(dir.as_ref(), |case, bless| {
        sluice_host::conformance::run_case(&plugin, case, bless)
    })
}

#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
fn check_cases(
    dir: &std::path::Path,
    mut one: impl FnMut(&sluice_host::conformance::Case, bool) -> sluice_host::Result<sluice_host::conformance::CaseResult>,
) -> Result<(), String> {
    let fail = |e: sluice_host::Error| format!("{}: {e}", e.category());
    let cases = sluice_host::conformance::load_cases(dir).map_err(fail)?;
    let mut failures = String::new();
    for case in &cases {
        if let Some(why) = one(case, false).map_err(fail)?.failure {
            let _ = writeln!(failures, "case `{}`: {why}", case.name);
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures) }
}

/// Runs `T` natively for the host's conformance checks.
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
struct NativeRunner<T>(std::marker::PhantomData<T>);

#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
impl<T: Transform> sluice_host::conformance::Runner for NativeRunner<T> {
    fn stateful(&self) -> bool {
        T::INFO.stateful
    }

    fn run(
        &mut self,
        config: &[(String, String)],
        schema: &SchemaRef,
        batches: &[RecordBatch],
        splits: &[usize],
        _other_time: bool,
    ) -> sluice_host::Result<sluice_host::conformance::RunOutput> {
        let config = Config::new(config.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let name = T::INFO.name;
        // Declared by a separate open, as the host asks `output-schema` right after `open`.
        let schema_ipc = encode_all(schema, &[]).map_err(|e| sluice_host::Error::plugin(name, e.to_string()))?;
        let declared = open::<T>(&config, &schema_ipc, None)
            .and_then(|s| crate::ipc::decode_schema(s.output_schema_ipc()))
            .map_err(|e| host_error(name, e))?;
        let (batches, checkpoints) =
            native_run::<T>(&config, schema, batches, splits).map_err(|e| host_error(name, e))?;
        Ok(sluice_host::conformance::RunOutput {
            schema: declared,
            batches,
            checkpoints,
        })
    }
}

/// The host error a guest error becomes (same categories and exit codes).
#[cfg(all(feature = "harness-wasm", not(target_arch = "wasm32")))]
fn host_error(name: &str, e: Error) -> sluice_host::Error {
    match e {
        Error::InvalidConfig(m) => sluice_host::Error::usage(format!("plugin `{name}`: invalid config: {m}")),
        Error::InvalidInput(m) => sluice_host::Error::input(format!("plugin `{name}`: invalid input: {m}")),
        Error::Internal(m) => sluice_host::Error::plugin(name, m),
    }
}

fn format_value(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let options = FormatOptions::default().with_null("NULL");
    match ArrayFormatter::try_new(array.as_ref(), &options) {
        Ok(f) => f.value(row).to_string(),
        Err(_) => format!("{:?}", array.slice(row, 1)),
    }
}

fn first_difference(a: &ArrayRef, b: &ArrayRef) -> Option<usize> {
    (0..a.len().min(b.len())).find(|&i| a.slice(i, 1).to_data() != b.slice(i, 1).to_data())
}

/// Assert that two lists of batches hold the same schema and values (batch boundaries
/// ignored); on failure, panic with the first differing row and column.
///
/// Floats compare bitwise: NaN equals NaN, `-0.0` differs from `0.0`.
#[track_caller]
pub fn assert_batches_eq(left: &[RecordBatch], right: &[RecordBatch]) {
    if let Some(message) = batches_diff(left, right) {
        panic!("batches differ: {message}");
    }
}

/// The first difference between two lists of batches, or `None` if they are equal.
pub fn batches_diff(left: &[RecordBatch], right: &[RecordBatch]) -> Option<String> {
    let (Some(l0), Some(r0)) = (left.first(), right.first()) else {
        let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
        return (rows(left) != rows(right)).then(|| {
            format!(
                "left has {} batches ({} rows), right has {} batches ({} rows)",
                left.len(),
                rows(left),
                right.len(),
                rows(right)
            )
        });
    };
    if l0.schema_ref().fields() != r0.schema_ref().fields() {
        return Some(format!(
            "schemas differ:\n  left:  {:?}\n  right: {:?}",
            l0.schema_ref().fields(),
            r0.schema_ref().fields()
        ));
    }
    let concat = |b: &[RecordBatch], s: &SchemaRef| arrow_select::concat::concat_batches(s, b);
    let (l, r) = match (concat(left, l0.schema_ref()), concat(right, r0.schema_ref())) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => return Some(format!("cannot concatenate: {:?} / {:?}", l.err(), r.err())),
    };
    if l.num_rows() != r.num_rows() {
        return Some(format!(
            "row counts differ: left {}, right {}",
            l.num_rows(),
            r.num_rows()
        ));
    }
    for (c, field) in l.schema_ref().fields().iter().enumerate() {
        let (a, b) = (l.column(c), r.column(c));
        if a.to_data() == b.to_data() {
            continue;
        }
        let mut msg = String::new();
        match first_difference(a, b) {
            Some(row) => {
                let _ = write!(
                    msg,
                    "first difference at row {row}, column `{}`: left {}, right {}",
                    field.name(),
                    format_value(a, row),
                    format_value(b, row)
                );
            }
            None => {
                let _ = write!(
                    msg,
                    "column `{}` differs in layout only: left {:?}, right {:?}",
                    field.name(),
                    a,
                    b
                );
            }
        }
        return Some(msg);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(v: Vec<Option<f64>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("f", DataType::Float64, true),
        ]));
        let i = Int64Array::from_iter_values(0..v.len() as i64);
        RecordBatch::try_new(schema, vec![Arc::new(i), Arc::new(Float64Array::from(v))]).unwrap()
    }

    #[test]
    fn diff_names_row_and_column() {
        let a = [batch(vec![Some(1.0), None]), batch(vec![Some(2.0)])];
        let b = [batch(vec![Some(1.0), None, Some(2.5)])];
        // batch boundaries ignored, but `i` differs at row 2 (1 vs 2), reported first
        let d = batches_diff(&a, &b).unwrap();
        assert!(d.contains("row 2") && d.contains("column `i`"), "{d}");
        let c = [batch(vec![Some(1.0), None, Some(2.0)])];
        let a2 = [batch(vec![Some(1.0), None, Some(2.0)])];
        assert_eq!(batches_diff(&a2, &c), None);
        let nan = [batch(vec![Some(f64::NAN), Some(-0.0)])];
        assert_eq!(batches_diff(&nan, &nan.clone()), None);
        let zero = [batch(vec![Some(f64::NAN), Some(0.0)])];
        let d = batches_diff(&nan, &zero).unwrap();
        assert!(d.contains("row 1") && d.contains("-0"), "{d}");
        assert!(batches_diff(&[], &a).is_some());
        assert_eq!(batches_diff(&[], &[]), None);
    }

    #[test]
    #[should_panic(expected = "batches differ")]
    fn assert_panics() {
        assert_batches_eq(&[batch(vec![Some(1.0)])], &[batch(vec![Some(2.0)])]);
    }
}
