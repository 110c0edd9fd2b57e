//! `sluice plan`: estimate a run before doing it. Input sizes and row counts come from file
//! metadata (Parquet footers; CSV and NDJSON lines counted in a prefix of each file), and one
//! sample chunk (the first rows of the input) goes through the real plugin chain in memory
//! and through the output writer into a scratch file, giving selectivity, CPU time and
//! output bytes per row. Everything scales linearly from the sample.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::engine::Runtime;
use crate::error::{Error, Result};
use crate::pipeline::{Chain, RunSpec, load_chain};
use crate::sink::create_sink;
use crate::source::{InputFormat, Source};

/// Bytes of a CSV or NDJSON file read to count lines (the whole file when smaller).
pub const LINE_SAMPLE_BYTES: u64 = 4 << 20;

/// One input file's metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilePlan {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its rows: exact from a Parquet footer or a fully counted text file, else estimated.
    pub rows: Option<u64>,
    /// Whether `rows` is exact.
    pub rows_exact: bool,
}

/// Estimated totals at one volume.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Volume {
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Input bytes.
    pub input_bytes: u64,
    /// Output bytes (files in `data/`).
    pub output_bytes: u64,
    /// CPU time of the plugin chain and the writer, in milliseconds (all threads together).
    pub cpu_ms: u64,
    /// Chunks (output parts).
    pub chunks: u64,
}

/// What the sample chunk did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Rows read into the sample.
    pub rows_in: u64,
    /// Rows the chain returned for them.
    pub rows_out: u64,
    /// Bytes of the sample's output, written with the run's writer settings.
    pub output_bytes: u64,
    /// Output files (chunks) the sample was written as.
    pub files: u64,
    /// Bytes of an output file with no rows (header, schema, footer), paid once per chunk.
    pub file_overhead_bytes: u64,
    /// CPU time of the chain and the writer on the sample, in microseconds.
    pub cpu_us: u64,
    /// Fuel each plugin used on the sample.
    pub fuel: Vec<u64>,
    /// True when the sample is the whole input: the estimates are then measurements.
    pub whole_input: bool,
}

/// The plan of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// `planned`.
    pub status: String,
    /// Input files with their metadata.
    pub files: Vec<FilePlan>,
    /// Whether the total input row count is exact.
    pub rows_in_exact: bool,
    /// The sample chunk.
    pub sample: Sample,
    /// Estimates at the current input volume.
    pub current: Volume,
    /// Estimates at three times the input volume.
    pub x3: Volume,
}

/// CPU time of this process (user + system) in microseconds.
fn cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(u.ru_utime) + us(u.ru_stime)
}

/// Rows of a file from its metadata: (rows, exact).
fn file_rows(path: &Path, format: InputFormat, size: u64, header: bool) -> Result<(Option<u64>, bool)> {
    match format {
        InputFormat::Parquet => {
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let meta = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .map_err(|e| {
                    Error::input(format!(
                        "input `{}`: cannot read the Parquet footer: {e}; is the file complete?",
                        path.display()
                    ))
                })?;
            Ok((Some(meta.file_metadata().num_rows().max(0) as u64), true))
        }
        InputFormat::Csv | InputFormat::Ndjson => {
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let mut prefix = Vec::new();
            file.take(LINE_SAMPLE_BYTES)
                .read_to_end(&mut prefix)
                .map_err(|e| Error::io("read", path, e))?;
            let whole = prefix.len() as u64 >= size;
            let mut lines = prefix.iter().filter(|&&b| b == b'\n').count() as u64;
            if whole && prefix.last().is_some_and(|&b| b != b'\n') {
                lines += 1;
            }
            let skip = u64::from(format == InputFormat::Csv && header);
            if whole {
                return Ok((Some(lines.saturating_sub(skip)), true));
            }
            if lines <= skip {
                return Ok((None, false));
            }
            let per_line = prefix.len() as f64 / lines as f64;
            Ok((Some(((size as f64 / per_line) as u64).saturating_sub(skip)), false))
        }
        InputFormat::ArrowFile | InputFormat::ArrowStream => Ok((None, false)),
    }
}

/// Plan `spec`: file metadata plus one sample chunk of at most `sample_rows` rows through
/// the chain. Nothing is written to the output directory.
///
/// # Errors
/// The errors a run would give opening the inputs and plugins, or processing the sample.
pub fn plan(rt: &Runtime, spec: &RunSpec, sample_rows: usize) -> Result<Plan> {
    if sample_rows == 0 {
        return Err(Error::usage("--sample-rows must be at least 1"));
    }
    let plugins = load_chain(rt, spec)?;
    let source = Source::open(&spec.inputs, &spec.source)?;
    let mut files = Vec::new();
    for f in source.files() {
        let (rows, exact) = file_rows(&f.path, f.format, f.size, spec.source.csv_header)?;
        files.push(FilePlan {
            path: f.path.clone(),
            format: f.format.to_string(),
            bytes: f.size,
            rows,
            rows_exact: exact,
        });
    }
    let input_schema = source.schema();
    let mut chain = Chain::open(&plugins, &input_schema, None, [0; 32])?;
    let stateful = plugins.iter().any(|(p, _)| p.info().stateful);
    let mut fuel_done = vec![0u64; plugins.len()];
    let add = |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
    let out_schema = Arc::clone(chain.output_schema());
    // The sample: the first rows of the stream, as the run would read them.
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut rows_in = 0usize;
    let mut source = source;
    let mut whole_input = true;
    for b in source.by_ref() {
        let b = b?;
        if rows_in >= sample_rows {
            whole_input = false;
            break;
        }
        let take = (sample_rows - rows_in).min(b.num_rows());
        if take < b.num_rows() {
            whole_input = false;
        }
        rows_in += take;
        batches.push(b.slice(0, take));
    }
    if whole_input && rows_in >= sample_rows {
        // The sample ended exactly at its bound: the input may go on.
        whole_input = source.next().is_none();
    }
    let scratch = std::env::temp_dir().join(format!(
        ".sluice-plan-{}-{}.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let result = || -> Result<(u64, u64, u64, u64, u64)> {
        let new_sink = || -> Result<Box<dyn crate::sink::BatchSink>> {
            let file = std::fs::File::create(&scratch).map_err(|e| Error::io("create a scratch file", &scratch, e))?;
            create_sink(file, &scratch, Arc::clone(&out_schema), spec.format, &spec.writer)
        };
        let file_len = || -> Result<u64> {
            Ok(std::fs::metadata(&scratch)
                .map_err(|e| Error::io("read", &scratch, e))?
                .len())
        };
        // The sample is written as the run would write it: one file per chunk of input rows.
        let chunk_rows = spec.chunk_rows.max(1);
        let start = cpu_us();
        let (mut rows_out, mut bytes, mut files) = (0u64, 0u64, 0u64);
        let mut sink = new_sink()?;
        let mut offset = 0usize;
        for b in batches {
            let mut at = 0;
            while at < b.num_rows() {
                let take = (chunk_rows - offset % chunk_rows).min(b.num_rows() - at);
                for o in chain.process(b.slice(at, take))? {
                    rows_out += o.num_rows() as u64;
                    sink.write(&o)?;
                }
                at += take;
                offset += take;
                if offset.is_multiple_of(chunk_rows) {
                    // As in a run: a stateless chain ends with its chunk (the next chunk gets
                    // fresh instances); a stateful one is carried and finishes at the end.
                    if !stateful {
                        for o in chain.finish()? {
                            rows_out += o.num_rows() as u64;
                            sink.write(&o)?;
                        }
                        fuel_done = add(&fuel_done, &chain.fuel());
                        chain = Chain::open(&plugins, &input_schema, None, [0; 32])?;
                    }
                    sink.finish()?;
                    bytes += file_len()?;
                    files += 1;
                    sink = new_sink()?;
                }
            }
        }
        if !offset.is_multiple_of(chunk_rows) || offset == 0 {
            for o in chain.finish()? {
                rows_out += o.num_rows() as u64;
                sink.write(&o)?;
            }
            sink.finish()?;
            bytes += file_len()?;
            files += 1;
        } else {
            drop(sink);
        }
        let cpu = cpu_us().saturating_sub(start);
        // What a file costs with no rows (header, schema, footer): paid once per chunk.
        new_sink()?.finish()?;
        let empty = file_len()?;
        Ok((rows_out, bytes, (empty * files).min(bytes), files, cpu))
    };
    let result = result();
    let _ = std::fs::remove_file(&scratch);
    let (rows_out, output_bytes, overhead, sample_files, cpu) = result?;
    let file_overhead_bytes = overhead / sample_files.max(1);
    let sample = Sample {
        rows_in: rows_in as u64,
        rows_out,
        output_bytes,
        file_overhead_bytes,
        files: sample_files,
        cpu_us: cpu,
        fuel: add(&fuel_done, &chain.fuel()),
        whole_input,
    };
    let input_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let (total_rows, rows_in_exact) = if whole_input {
        (rows_in as u64, true)
    } else {
        let known: u64 = files.iter().filter_map(|f| f.rows).sum();
        let exact = files.iter().all(|f| f.rows_exact);
        if files.iter().all(|f| f.rows.is_some()) {
            (known, exact)
        } else {
            // Files without row metadata (Arrow IPC): scale by bytes from the files that
            // have it, else assume the sample's rows cover the first file's share.
            let (kb, kr) = files
                .iter()
                .filter_map(|f| f.rows.map(|r| (f.bytes, r)))
                .fold((0u64, 0u64), |(b, r), (fb, fr)| (b + fb, r + fr));
            let per_byte = if kr > 0 && kb > 0 {
                kr as f64 / kb as f64
            } else {
                rows_in as f64 / files[0].bytes.max(1) as f64
            };
            let unknown: u64 = files.iter().filter(|f| f.rows.is_none()).map(|f| f.bytes).sum();
            (known + (unknown as f64 * per_byte) as u64, false)
        }
    };
    let current = scale(&sample, total_rows, input_bytes, spec.chunk_rows, 1);
    let x3 = scale(&sample, total_rows, input_bytes, spec.chunk_rows, 3);
    Ok(Plan {
        status: "planned".into(),
        files,
        rows_in_exact,
        sample,
        current,
        x3,
    })
}

/// Extrapolate the sample linearly to `rows` input rows, times `factor`.
fn scale(s: &Sample, rows: u64, input_bytes: u64, chunk_rows: usize, factor: u64) -> Volume {
    let rows_in = rows * factor;
    let ratio = |n: u64| {
        if s.rows_in == 0 {
            0
        } else {
            (n as f64 * rows_in as f64 / s.rows_in as f64).round() as u64
        }
    };
    let rows_out = ratio(s.rows_out);
    let chunks = rows_in.div_ceil(chunk_rows.max(1) as u64).max(1);
    // Per-row bytes net of the per-file overhead, plus that overhead once per chunk.
    let per_row = if s.rows_out == 0 {
        0.0
    } else {
        s.output_bytes.saturating_sub(s.file_overhead_bytes * s.files) as f64 / s.rows_out as f64
    };
    let output_bytes = (per_row * rows_out as f64).round() as u64 + s.file_overhead_bytes * chunks;
    Volume {
        rows_in,
        rows_out,
        input_bytes: input_bytes * factor,
        output_bytes,
        cpu_ms: ratio(s.cpu_us) / 1000,
        chunks,
    }
}

/// The plan as a readable table.
pub fn table(p: &Plan) -> String {
    let approx = |exact: bool| if exact { "" } else { "~" };
    let mut s = String::new();
    s.push_str("input files:\n");
    for f in &p.files {
        let rows = f
            .rows
            .map_or("?".to_string(), |r| format!("{}{r}", approx(f.rows_exact)));
        s.push_str(&format!(
            "  {}  {}  {} bytes  {} rows\n",
            f.path.display(),
            f.format,
            f.bytes,
            rows
        ));
    }
    s.push_str(&format!(
        "sample: {} rows in -> {} rows out, {} output bytes, {:.1} ms CPU{}\n\n",
        p.sample.rows_in,
        p.sample.rows_out,
        p.sample.output_bytes,
        p.sample.cpu_us as f64 / 1000.0,
        if p.sample.whole_input { " (the whole input)" } else { "" }
    ));
    let a = approx(p.rows_in_exact);
    let b = approx(p.sample.whole_input);
    s.push_str(&format!("{:<16}{:>20}{:>20}\n", "", "current", "3x"));
    let rows: [(&str, u64, u64, &str); 6] = [
        ("rows in", p.current.rows_in, p.x3.rows_in, a),
        ("rows out", p.current.rows_out, p.x3.rows_out, b),
        ("input bytes", p.current.input_bytes, p.x3.input_bytes, ""),
        ("output bytes", p.current.output_bytes, p.x3.output_bytes, "~"),
        ("CPU ms", p.current.cpu_ms, p.x3.cpu_ms, "~"),
        ("chunks", p.current.chunks, p.x3.chunks, a),
    ];
    for (name, c, x, m) in rows {
        s.push_str(&format!(
            "{name:<16}{:>20}{:>20}\n",
            format!("{m}{c}"),
            format!("{m}{x}")
        ));
    }
    s
}
