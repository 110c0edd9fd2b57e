//! Input files as one bounded, deterministic stream of Arrow record batches.
//!
//! [`Source::open`] resolves paths (files or directories), picks each file's format, reads
//! every file's schema up front and checks they agree, so a run fails before it writes
//! anything. Batches are then read lazily, one file at a time, never a whole file at once.
//! The same files and options always give the same batch boundaries: chunk digests and
//! resume points depend on it.

mod csv;
mod ipc;
mod ndjson;
mod parquet;

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::error::{Error, Result};

/// The batches of one open input file.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// A file format the source can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC file format (`ARROW1` magic, random access footer).
    ArrowFile,
    /// Arrow IPC stream format (a sequence of messages, no footer).
    ArrowStream,
    /// Comma (or otherwise) separated values.
    Csv,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
}

/// The names `FromStr` accepts, for error messages.
const INPUT_FORMAT_NAMES: &str = "`parquet`, `ipc`, `arrow`, `arrows`, `csv`, `ndjson`, `jsonl`, `json`";

impl InputFormat {
    /// Detect the format of `path`: magic bytes first, then the file extension.
    ///
    /// # Errors
    ///
    /// An input error if `path` does not exist, an I/O error if it cannot be read, and a
    /// usage error if neither its content nor its extension names a known format.
    pub fn detect(path: &Path) -> Result<Self> {
        let mut file = open_file(path)?;
        let mut head = [0u8; 8];
        let n = read_prefix(&mut file, &mut head).map_err(|e| Error::io("read", path, e))?;
        let head = &head[..n];
        if head.starts_with(b"PAR1") {
            return Ok(InputFormat::Parquet);
        }
        if head.starts_with(b"ARROW1") {
            return Ok(InputFormat::ArrowFile);
        }
        if head.starts_with(&[0xFF, 0xFF, 0xFF, 0xFF]) {
            return Ok(InputFormat::ArrowStream);
        }
        // Compressed text would otherwise fail later with a confusing parse error.
        if head.starts_with(&[0x1F, 0x8B]) || head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            return Err(Error::usage(format!(
                "input `{}` is compressed (gzip or zstd), which is not supported; decompress it first",
                path.display()
            )));
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet" | "pq" | "parq") => Ok(InputFormat::Parquet),
            Some("arrow" | "ipc" | "feather") => Ok(InputFormat::ArrowFile),
            Some("arrows") => Ok(InputFormat::ArrowStream),
            Some("csv") => Ok(InputFormat::Csv),
            Some("ndjson" | "jsonl" | "json") => Ok(InputFormat::Ndjson),
            _ => Err(Error::usage(format!(
                "cannot tell the format of input `{}` from its content or extension; \
                 pass `--input-format` (one of {INPUT_FORMAT_NAMES})",
                path.display()
            ))),
        }
    }

    /// A human name for messages, e.g. "Arrow IPC stream".
    fn label(self) -> &'static str {
        match self {
            InputFormat::Parquet => "Parquet",
            InputFormat::ArrowFile => "Arrow IPC file",
            InputFormat::ArrowStream => "Arrow IPC stream",
            InputFormat::Csv => "CSV",
            InputFormat::Ndjson => "NDJSON",
        }
    }
}

impl FromStr for InputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(InputFormat::Parquet),
            "ipc" | "arrow" => Ok(InputFormat::ArrowFile),
            "arrows" => Ok(InputFormat::ArrowStream),
            "csv" => Ok(InputFormat::Csv),
            "ndjson" | "jsonl" | "json" => Ok(InputFormat::Ndjson),
            _ => Err(Error::usage(format!(
                "unknown input format `{s}`; expected one of {INPUT_FORMAT_NAMES}"
            ))),
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Parquet => "parquet",
            InputFormat::ArrowFile => "ipc",
            InputFormat::ArrowStream => "arrows",
            InputFormat::Csv => "csv",
            InputFormat::Ndjson => "ndjson",
        })
    }
}

/// How to find and decode the input files.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The format of every file; `None` detects it per file.
    pub format: Option<InputFormat>,
    /// Maximum rows per batch (Parquet, CSV, NDJSON decode to this size; larger IPC
    /// batches are sliced to it).
    pub batch_rows: usize,
    /// Whether CSV files start with a header line.
    pub csv_header: bool,
    /// The CSV field delimiter.
    pub csv_delimiter: u8,
    /// The schema of CSV and NDJSON files; `None` infers it from each file.
    pub schema: Option<SchemaRef>,
    /// How many records CSV and NDJSON inference reads; 0 reads the whole file.
    pub infer_rows: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            format: None,
            batch_rows: 65_536,
            csv_header: true,
            csv_delimiter: b',',
            schema: None,
            infer_rows: 10_000,
        }
    }
}

/// One resolved input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The file's path, as given or as found in a given directory.
    pub path: PathBuf,
    /// The file's size in bytes when the source was opened.
    pub size: u64,
    /// The format it is read as.
    pub format: InputFormat,
}

/// A stream of record batches over one or more input files, read in order.
///
/// # Example
///
/// ```no_run
/// use sluice_host::source::{Source, SourceOptions};
///
/// let source = Source::open(&["data/".into()], &SourceOptions::default())?;
/// println!("{} files, schema {:?}", source.files().len(), source.schema());
/// for batch in source {
///     let batch = batch?;
///     println!("{} rows", batch.num_rows());
/// }
/// # Ok::<(), sluice_host::Error>(())
/// ```
pub struct Source {
    schema: SchemaRef,
    files: Vec<InputFile>,
    opts: SourceOptions,
    /// Index of the next file to open.
    next_file: usize,
    /// The file being read and the batches left in it.
    current: Option<(usize, Batches)>,
    /// A large IPC batch being handed out in `batch_rows` slices: (batch, next offset).
    pending: Option<(RecordBatch, usize)>,
    /// Set after an error: the stream ends rather than skipping data.
    failed: bool,
    /// Each Parquet file's parsed footer, read once when the schemas are: shared with every
    /// [`Source::reopen`], so workers reading their own chunks do not parse it again per
    /// chunk (SF10 lineitem's footer is 1 MB, its 524 row groups each described per column).
    footers: Arc<[OnceLock<parquet::Footer>]>,
}

impl Source {
    /// Resolve `paths`, read and compare every file's schema, and prepare to stream.
    ///
    /// A path may be a file or a directory; a directory contributes its regular files
    /// (not subdirectories), sorted by name, skipping hidden and `_`-prefixed ones.
    ///
    /// # Errors
    ///
    /// A usage error for bad options or an undetectable format; an input error for a
    /// missing path, an empty or unreadable file, or schemas that differ between files;
    /// an I/O error when the OS refuses access.
    pub fn open(paths: &[PathBuf], opts: &SourceOptions) -> Result<Source> {
        if opts.batch_rows == 0 {
            return Err(Error::usage("the batch size must be at least 1 row, got `0`"));
        }
        if paths.is_empty() {
            return Err(Error::usage(
                "no input given; pass at least one input file or directory",
            ));
        }
        let mut files = Vec::new();
        for path in paths {
            for (path, size) in expand(path)? {
                let format = match opts.format {
                    Some(format) => format,
                    None => InputFormat::detect(&path)?,
                };
                files.push(InputFile { path, size, format });
            }
        }

        let footers: Arc<[OnceLock<parquet::Footer>]> = files.iter().map(|_| OnceLock::new()).collect();
        let mut schema: Option<(SchemaRef, usize)> = None;
        for (i, input) in files.iter().enumerate() {
            let this = guard(input, || read_schema(input, opts, &footers[i]))?;
            // A batch without columns declares a row count nothing backs: a few bytes could
            // claim 10^17 rows. No transform has use for it.
            if this.fields().is_empty() {
                return Err(Error::input(format!(
                    "input `{}` has no columns; there is nothing to transform (re-create the file with at least one column)",
                    input.path.display()
                )));
            }
            match &schema {
                None => schema = Some((this, i)),
                Some((first, first_i)) => {
                    if let Some(diff) = schema_difference(first, &this) {
                        return Err(Error::input(format!(
                            "input `{}` does not have the same schema as `{}`: {diff}; \
                             all inputs of a run must share one schema",
                            input.path.display(),
                            files[*first_i].path.display(),
                        )));
                    }
                }
            }
        }
        // `files` is never empty: `expand` fails on an empty directory.
        let (schema, _) = schema.ok_or_else(|| Error::usage("no input files found"))?;
        Ok(Source {
            schema,
            footers,
            files,
            opts: opts.clone(),
            next_file: 0,
            current: None,
            pending: None,
            failed: false,
        })
    }

    /// The schema of every batch the source yields (the first file's schema).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The input files, in the order they are read.
    pub fn files(&self) -> &[InputFile] {
        &self.files
    }

    /// The total row count of the input, when every file is Parquet (their footers give
    /// it without decoding a row); `None` for other formats.
    ///
    /// With it, a run can cut the input into chunks before reading it, and each worker can
    /// read its own chunk ([`Source::reopen`] then [`Source::skip_rows`]) instead of one
    /// thread decoding for all of them.
    ///
    /// # Errors
    /// As reading: a Parquet footer that cannot be read.
    pub fn parquet_rows(&self) -> Result<Option<u64>> {
        let mut total = 0u64;
        for (i, input) in self.files.iter().enumerate() {
            if input.format != InputFormat::Parquet {
                return Ok(None);
            }
            let file = open_file(&input.path)?;
            total += guard(input, || parquet::rows(&input.path, &file, &self.footers[i]))?;
        }
        Ok(Some(total))
    }

    /// A new source over the same files, schema and options, before its first row: what
    /// [`Source::open`] returned, without resolving paths or reading schemas again.
    pub fn reopen(&self) -> Source {
        Source {
            schema: Arc::clone(&self.schema),
            files: self.files.clone(),
            opts: self.opts.clone(),
            next_file: 0,
            current: None,
            pending: None,
            failed: false,
            footers: Arc::clone(&self.footers),
        }
    }

    /// Skip up to `rows` rows from the start without decoding them where the format allows:
    /// whole Parquet files and row groups (their row counts are in the footer). Returns how
    /// many rows were skipped; the batches that follow start right after them, so the
    /// caller drops the rest (`rows` minus that) from those batches. Only before reading.
    ///
    /// # Errors
    /// As reading: a Parquet footer that cannot be read.
    pub fn skip_rows(&mut self, rows: u64) -> Result<u64> {
        if self.next_file != 0 || self.current.is_some() || self.pending.is_some() {
            return Ok(0);
        }
        let mut skipped = 0u64;
        while self.next_file < self.files.len() && skipped < rows {
            let index = self.next_file;
            let input = &self.files[index];
            if input.format != InputFormat::Parquet {
                break;
            }
            let file = open_file(&input.path)?;
            let (n, total, batches) = guard(input, || {
                parquet::skipping(
                    &input.path,
                    file,
                    self.opts.batch_rows,
                    rows - skipped,
                    &self.footers[index],
                )
            })?;
            skipped += n;
            self.next_file += 1;
            self.current = Some((index, batches));
            if n < total {
                // The rows to skip end inside this file: read on from its row group.
                break;
            }
            // The whole file was skipped: nothing of it is left to read.
            self.current = None;
        }
        Ok(skipped)
    }

    /// Open file `index` for reading batches.
    fn open_batches(&self, index: usize) -> Result<Batches> {
        let input = &self.files[index];
        let path = &input.path;
        let file = open_file(path)?;
        let schema = Arc::clone(&self.schema);
        match input.format {
            InputFormat::Parquet => parquet::batches(path, file, self.opts.batch_rows, &self.footers[index]),
            InputFormat::ArrowFile => ipc::file_batches(path, file),
            InputFormat::ArrowStream => ipc::stream_batches(path, file),
            InputFormat::Csv => csv::batches(path, file, schema, &self.opts),
            InputFormat::Ndjson => ndjson::batches(path, file, schema, &self.opts),
        }
    }

    /// The next batch, before slicing and re-labelling with the stream's schema.
    fn next_raw(&mut self) -> Option<Result<(usize, RecordBatch)>> {
        loop {
            if let Some((index, batches)) = &mut self.current {
                let index = *index;
                match guard(&self.files[index], || batches.next().transpose()) {
                    Ok(Some(batch)) => return Some(Ok((index, batch))),
                    Ok(None) => self.current = None,
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.next_file >= self.files.len() {
                return None;
            }
            let index = self.next_file;
            self.next_file += 1;
            match guard(&self.files[index], || self.open_batches(index)) {
                Ok(batches) => self.current = Some((index, batches)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Give `batch` (read from file `index`) the stream's schema object.
    ///
    /// Files only have to agree on names, types and nullability; schema and field
    /// metadata may differ, and consumers compare against [`Source::schema`].
    fn relabel(&self, index: usize, batch: RecordBatch) -> Result<RecordBatch> {
        if Arc::ptr_eq(batch.schema_ref(), &self.schema) {
            return Ok(batch);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(self.schema(), batch.columns().to_vec(), &options).map_err(|e| {
            Error::input(format!(
                "input `{}` changed while it was read: {}",
                self.files[index].path.display(),
                arrow_message(&e)
            ))
        })
    }
}

impl Iterator for Source {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rows = self.opts.batch_rows;
        if let Some((batch, offset)) = self.pending.take() {
            let len = rows.min(batch.num_rows() - offset);
            let slice = batch.slice(offset, len);
            if offset + len < batch.num_rows() {
                self.pending = Some((batch, offset + len));
            }
            return Some(Ok(slice));
        }
        let result = self.next_raw()?.and_then(|(index, batch)| self.relabel(index, batch));
        match result {
            Ok(batch) if batch.num_rows() > rows => {
                // Only IPC batches can be larger than asked for; slicing is zero-copy.
                let slice = batch.slice(0, rows);
                self.pending = Some((batch, rows));
                Some(Ok(slice))
            }
            Ok(batch) => Some(Ok(batch)),
            Err(e) => {
                self.failed = true;
                self.current = None;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for Source {}

/// Resolve one input path to its files and their sizes.
fn expand(path: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let meta = std::fs::metadata(path).map_err(|e| not_found_or_io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| os_error("list", path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| os_error("list", path, e))?;
        let name = entry.file_name();
        // Hidden files and `_`-prefixed ones (`_SUCCESS`, `_sluice/`) are not data.
        if name
            .as_encoded_bytes()
            .first()
            .is_some_and(|b| *b == b'.' || *b == b'_')
        {
            continue;
        }
        let child = entry.path();
        // `fs::metadata` follows symlinks, so a link to a regular file counts.
        let meta = std::fs::metadata(&child).map_err(|e| os_error("read", &child, e))?;
        if meta.is_file() {
            found.push((name, child, meta.len()));
        }
    }
    if found.is_empty() {
        return Err(Error::input(format!(
            "input directory `{}` contains no data files (hidden and `_`-prefixed files and \
             subdirectories are skipped)",
            path.display()
        )));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().map(|(_, path, size)| (path, size)).collect())
}

/// Read the schema of one input file, checking it is not empty.
fn read_schema(input: &InputFile, opts: &SourceOptions, footer: &OnceLock<parquet::Footer>) -> Result<SchemaRef> {
    let path = &input.path;
    let text = matches!(input.format, InputFormat::Csv | InputFormat::Ndjson);
    if input.size == 0 {
        // An empty text file with a known schema is a valid file of zero rows.
        if let (true, Some(schema)) = (text, &opts.schema) {
            return Ok(Arc::clone(schema));
        }
        let hint = if text {
            "; pass a schema to read an empty file as zero rows"
        } else {
            ""
        };
        return Err(Error::input(format!(
            "input `{}` is empty (0 bytes), which is not a valid {} file{hint}",
            path.display(),
            input.format.label()
        )));
    }
    if let (true, Some(schema)) = (text, &opts.schema) {
        return Ok(Arc::clone(schema));
    }
    let file = open_file(path)?;
    match input.format {
        InputFormat::Parquet => parquet::schema(path, &file, footer),
        InputFormat::ArrowFile => ipc::file_schema(path, file, input.size),
        InputFormat::ArrowStream => ipc::stream_schema(path, file),
        InputFormat::Csv => csv::infer_schema(path, file, opts),
        InputFormat::Ndjson => ndjson::infer_schema(path, file, opts),
    }
}

/// How schema `b` first differs from `a` in names, types or nullability, if it does.
///
/// Metadata is ignored: writers add their own (pandas, Spark) to otherwise equal files.
fn schema_difference(a: &Schema, b: &Schema) -> Option<String> {
    for (i, (fa, fb)) in a.fields().iter().zip(b.fields().iter()).enumerate() {
        if fa.name() != fb.name() {
            return Some(format!(
                "field {i} is `{}` in one and `{}` in the other",
                fa.name(),
                fb.name()
            ));
        }
        if !fa.data_type().equals_datatype(fb.data_type()) {
            return Some(format!(
                "field `{}` is `{}` in one and `{}` in the other",
                fa.name(),
                fa.data_type(),
                fb.data_type()
            ));
        }
        if fa.is_nullable() != fb.is_nullable() {
            let null = |n: bool| if n { "nullable" } else { "non-nullable" };
            return Some(format!(
                "field `{}` is {} in one and {} in the other",
                fa.name(),
                null(fa.is_nullable()),
                null(fb.is_nullable())
            ));
        }
    }
    let (na, nb) = (a.fields().len(), b.fields().len());
    match na.cmp(&nb) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(format!("it has an extra field `{}`", b.field(na).name())),
        std::cmp::Ordering::Greater => Some(format!("it lacks field `{}`", a.field(nb).name())),
    }
}

/// Open `path` for reading, mapping a missing file to an input error.
fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| not_found_or_io(path, e))
}

/// A missing or unreadable input is bad input (exit 5); anything else the OS says is an
/// I/O error, worth retrying.
fn not_found_or_io(path: &Path, e: std::io::Error) -> Error {
    os_error("read", path, e)
}

/// Map an OS error on input `path` while trying to `what` it: the errors that retrying
/// cannot fix (missing, not a directory, no permission) are input errors that say what
/// to do; the rest stay I/O errors.
fn os_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(format!("input `{}` does not exist", path.display())),
        std::io::ErrorKind::NotADirectory => Error::input(format!(
            "input `{}` does not exist: a parent of it is not a directory",
            path.display()
        )),
        std::io::ErrorKind::PermissionDenied => Error::input(format!(
            "cannot {what} input `{}`: permission denied; give the user running sluice read access to it \
             (and search access to its directories)",
            path.display()
        )),
        _ => Error::io(what, path, e),
    }
}

/// Read up to `buf.len()` bytes, stopping early only at the end of the file.
fn read_prefix(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The text of an Arrow error without its category prefix ("Csv error: " and the like),
/// which only adds noise after our own "failed to read CSV input" context.
fn arrow_message(e: &ArrowError) -> String {
    match e {
        ArrowError::ParseError(m)
        | ArrowError::CsvError(m)
        | ArrowError::JsonError(m)
        | ArrowError::IpcError(m)
        | ArrowError::InvalidArgumentError(m)
        | ArrowError::SchemaError(m)
        | ArrowError::ComputeError(m)
        | ArrowError::CastError(m)
        | ArrowError::MemoryError(m)
        | ArrowError::ParquetError(m) => m.clone(),
        ArrowError::IoError(m, _) => m.clone(),
        ArrowError::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// Map a decoder error for `path` to our error: an OS failure stays an I/O error (worth
/// retrying), everything else, including a short read, means the file is bad.
fn decode_error(path: &Path, e: ArrowError, what: impl FnOnce(String) -> String) -> Error {
    if let Some(io) = io_source(&e)
        && io.kind() != std::io::ErrorKind::UnexpectedEof
    {
        let kind = io.kind();
        return Error::io("read", path, std::io::Error::new(kind, arrow_message(&e)));
    }
    Error::input(what(arrow_message(&e)))
}

/// The OS error inside an Arrow error, if there is one.
fn io_source(e: &ArrowError) -> Option<&std::io::Error> {
    match e {
        ArrowError::IoError(_, io) => Some(io),
        ArrowError::ExternalError(inner) => inner.downcast_ref::<std::io::Error>(),
        _ => None,
    }
}

/// Run `f`, which decodes `input`, turning a panic into an input error.
///
/// The decoders of untrusted bytes are third-party code: a panic on malformed data must
/// become an error naming the file, not take down the run.
fn guard<T>(input: &InputFile, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::contain::catch(f).unwrap_or_else(|panic| {
        Err(Error::input(format!(
            "failed to decode {} input `{}`: the decoder failed an internal check on malformed data ({panic}); \
             the file is corrupt",
            input.format.label(),
            input.path.display(),
        )))
    })
}

#[cfg(test)]
mod tests;
