//! `sluice._sluice`: the Python binding of the sluice host ([`sluice_host::embed`]).
//!
//! Batches cross in both directions through the Arrow C Data Interface (the PyCapsule
//! protocol, `__arrow_c_array__` / `__arrow_c_stream__`): buffers are shared, not copied.
//! Wasm runs with the GIL released. Host errors become `sluice.SluiceError` subclasses
//! that carry the CLI's exit code and category, so a Spark or Ray job reports a failure
//! the way `sluice run` would.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, ToPyArrow};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_host::distributed::{self, TaskDigests, TaskReport};
use sluice_host::embed::{ChainOptions, ChainRunner, ChunkOutput};
use sluice_host::pipeline::PluginSpec;
use sluice_host::spec::ResolveOptions;
use sluice_host::{Error, Limits};

create_exception!(
    _sluice,
    SluiceError,
    PyException,
    "A sluice host error; `.exit_code` and `.category` are the CLI's."
);
create_exception!(
    _sluice,
    IoError,
    SluiceError,
    "An I/O failure; retrying may help (exit code 1)."
);
create_exception!(
    _sluice,
    UsageError,
    SluiceError,
    "A usage or configuration error (exit code 2)."
);
create_exception!(
    _sluice,
    QualityError,
    SluiceError,
    "A data quality gate failed (exit code 3)."
);
create_exception!(
    _sluice,
    PluginError,
    SluiceError,
    "A plugin trapped, hit a limit or broke the ABI (exit code 4)."
);
create_exception!(_sluice, InputError, SluiceError, "The input data is bad (exit code 5).");

/// The Python exception for a host error: same message, class by category; a plugin
/// error also names its plugin in `.plugin`.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    let plugin = match &e {
        Error::Plugin { plugin, .. } => Some(plugin.clone()),
        _ => None,
    };
    let err = match e {
        Error::Io { .. } => IoError::new_err(message),
        Error::Usage(_) => UsageError::new_err(message),
        Error::Quality { .. } => QualityError::new_err(message),
        Error::Plugin { .. } => PluginError::new_err(message),
        Error::Input(_) => InputError::new_err(message),
    };
    if let Some(p) = plugin {
        Python::attach(|py| {
            // Only fails for an exception object without a __dict__, which these have.
            let _ = err.value(py).setattr("plugin", p);
        });
    }
    err
}

/// The exit code and category each exception class carries, from `sluice_host::Error`.
fn categorize(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    use sluice_host::ExitCode;
    // The base class says "some failure" (1) until a subclass says which.
    let classes = [
        (py.get_type::<SluiceError>(), ExitCode::Retryable, "error"),
        (py.get_type::<IoError>(), ExitCode::Retryable, "io"),
        (py.get_type::<UsageError>(), ExitCode::Usage, "usage"),
        (py.get_type::<QualityError>(), ExitCode::Quality, "quality"),
        (py.get_type::<PluginError>(), ExitCode::Plugin, "plugin"),
        (py.get_type::<InputError>(), ExitCode::BadInput, "input"),
    ];
    for (class, code, category) in classes {
        class.setattr("exit_code", code as u8)?;
        class.setattr("category", category)?;
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// What one `Chain.transform` (or `Chain.finish`) call produced.
#[pyclass(module = "sluice._sluice", frozen, get_all)]
struct TransformResult {
    /// The output batches (`list[pyarrow.RecordBatch]`).
    batches: Py<PyList>,
    /// The output schema (`pyarrow.Schema`), also when there are no batches.
    schema: Py<PyAny>,
    /// Data digest (v1, `blake3:<hex>`) of the output rows, as `sluice run` records per chunk.
    digest: String,
    /// Data digest of the input rows.
    input_digest: String,
    /// Fuel used by the whole chain in this call.
    fuel: u64,
    /// Fuel used by each plugin, in chain order.
    fuel_per_plugin: Vec<u64>,
    /// Input rows.
    rows_in: u64,
    /// Output rows.
    rows_out: u64,
}

#[pymethods]
impl TransformResult {
    fn __repr__(&self) -> String {
        format!(
            "TransformResult(rows_in={}, rows_out={}, digest='{}', fuel={})",
            self.rows_in, self.rows_out, self.digest, self.fuel
        )
    }
}

/// Hand `out` to Python: all batches through one C stream (zero-copy).
fn to_result(py: Python<'_>, out: ChunkOutput) -> PyResult<TransformResult> {
    let schema = out.schema.as_ref().to_pyarrow(py)?.unbind();
    let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
        out.batches.into_iter().map(Ok),
        Arc::clone(&out.schema),
    ));
    let reader = reader.into_pyarrow(py)?;
    let batches = PyList::empty(py);
    for b in reader.try_iter()? {
        batches.append(b?)?;
    }
    Ok(TransformResult {
        batches: batches.unbind(),
        schema,
        digest: out.data_digest,
        input_digest: out.input_digest,
        fuel: out.fuel.iter().sum(),
        fuel_per_plugin: out.fuel,
        rows_in: out.rows_in,
        rows_out: out.rows_out,
    })
}

/// A plugin chain loaded once (compiled components cached by sha256) that transforms
/// `pyarrow.RecordBatch`es; load one per Spark task or Ray actor.
#[pyclass(module = "sluice._sluice", name = "Chain", frozen)]
struct PyChain {
    // The lock serializes calls from several Python threads; wasm runs without the GIL.
    runner: Mutex<ChainRunner>,
}

/// A config value as the spec file would spell it (`true`, not Python's `True`).
fn config_value(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_string());
    }
    Ok(v.str()?.to_string())
}

/// A path given as `str` or `os.PathLike`.
fn path_of(v: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    v.extract::<PathBuf>()
}

/// One entry of `plugins=`: a path, `(path, config)` or `(path, config, pin)`.
fn plugin_spec(item: &Bound<'_, PyAny>, pins: Option<&Bound<'_, PyDict>>) -> PyResult<PluginSpec> {
    let (path, config, mut pin) = if let Ok(t) = item.cast::<PyTuple>() {
        let (path, config, pin) = match t.len() {
            2 => (t.get_item(0)?, Some(t.get_item(1)?), None),
            3 => (t.get_item(0)?, Some(t.get_item(1)?), Some(t.get_item(2)?)),
            n => {
                return Err(PyTypeError::new_err(format!(
                    "a plugin is a path, (path, config) or (path, config, sha256), got a tuple of {n}"
                )));
            }
        };
        (
            path,
            config,
            pin.filter(|p| !p.is_none())
                .map(|p| p.extract::<String>())
                .transpose()?,
        )
    } else {
        (item.clone(), None, None)
    };
    let path_buf = path_of(&path)?;
    if pin.is_none()
        && let Some(pins) = pins
        && let Some(p) = pins.get_item(path.str()?)?
    {
        pin = Some(p.extract::<String>()?);
    }
    let mut cfg = Vec::new();
    if let Some(c) = config.filter(|c| !c.is_none()) {
        let dict = c
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("a plugin's config must be a dict of str to str"))?;
        for (k, v) in dict.iter() {
            cfg.push((k.extract::<String>()?, config_value(&v)?));
        }
    }
    let mut spec = PluginSpec::new(path_buf, cfg);
    spec.sha256 = pin;
    Ok(spec)
}

/// Chain options from the keyword arguments.
fn chain_options(
    limits: Option<&Bound<'_, PyDict>>,
    cache_dir: Option<&Bound<'_, PyAny>>,
    seed: Option<&[u8]>,
) -> PyResult<ChainOptions> {
    let mut opts = ChainOptions::default();
    if let Some(l) = limits {
        // Overlay the given fields on the defaults, by the names of `Limits`' fields.
        let mut value = serde_json::to_value(Limits::default()).map_err(|e| to_py(Error::usage(e.to_string())))?;
        let fields = value.as_object_mut().expect("Limits serializes to an object");
        for (k, v) in l.iter() {
            let k: String = k.extract()?;
            if !fields.contains_key(&k) {
                let known: Vec<&String> = fields.keys().collect();
                return Err(to_py(Error::usage(format!(
                    "unknown limit `{k}`; the limits are {known:?}"
                ))));
            }
            let v: u64 = v.extract()?;
            fields.insert(k, v.into());
        }
        opts.limits = serde_json::from_value(value).map_err(|e| to_py(Error::usage(format!("bad limits: {e}"))))?;
    }
    if let Some(c) = cache_dir {
        opts.cache_dir = if let Ok(false) = c.extract::<bool>() {
            None
        } else {
            Some(path_of(c)?)
        };
    }
    if let Some(s) = seed {
        opts.seed = s
            .try_into()
            .map_err(|_| to_py(Error::usage(format!("seed must be 32 bytes, got {}", s.len()))))?;
    }
    Ok(opts)
}

#[pymethods]
impl PyChain {
    /// Load `plugins` (paths, `(path, config)` or `(path, config, sha256)`), each checked
    /// against its pin (from the tuple or `pins={path: "sha256:..."}`) before compiling.
    #[new]
    #[pyo3(signature = (plugins, *, pins=None, limits=None, cache_dir=None, seed=None))]
    fn new(
        py: Python<'_>,
        plugins: &Bound<'_, PyAny>,
        pins: Option<&Bound<'_, PyDict>>,
        limits: Option<&Bound<'_, PyDict>>,
        cache_dir: Option<&Bound<'_, PyAny>>,
        seed: Option<&[u8]>,
    ) -> PyResult<Self> {
        let specs = plugins
            .try_iter()?
            .map(|item| plugin_spec(&item?, pins))
            .collect::<PyResult<Vec<_>>>()?;
        let opts = chain_options(limits, cache_dir, seed)?;
        let runner = py.detach(|| ChainRunner::new(&specs, opts)).map_err(to_py)?;
        Ok(PyChain {
            runner: Mutex::new(runner),
        })
    }

    /// Load the plugin chain of a pipeline spec (`pipeline.toml`), resolved and pinned as
    /// `sluice run PIPELINE` does; its inputs and output are not touched.
    #[staticmethod]
    #[pyo3(signature = (path, *, allow_unpinned=false, limits=None, cache_dir=None, seed=None))]
    fn from_spec(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        allow_unpinned: bool,
        limits: Option<&Bound<'_, PyDict>>,
        cache_dir: Option<&Bound<'_, PyAny>>,
        seed: Option<&[u8]>,
    ) -> PyResult<Self> {
        let path = path_of(path)?;
        let opts = chain_options(limits, cache_dir, seed)?;
        let resolve = ResolveOptions {
            allow_unpinned,
            ..ResolveOptions::default()
        };
        let runner = py
            .detach(|| ChainRunner::from_spec(&path, &resolve, opts))
            .map_err(to_py)?;
        Ok(PyChain {
            runner: Mutex::new(runner),
        })
    }

    /// Transform one `pyarrow.RecordBatch` (or any `__arrow_c_array__` object) as one chunk.
    fn transform(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<TransformResult> {
        let batch = RecordBatch::from_pyarrow_bound(batch)?;
        let out = py.detach(|| self.lock()?.transform(batch)).map_err(to_py)?;
        to_result(py, out)
    }

    /// Flush a stateful chain; `None` for a stateless one (each call already finished).
    fn finish(&self, py: Python<'_>) -> PyResult<Option<TransformResult>> {
        match py.detach(|| self.lock()?.finish()).map_err(to_py)? {
            Some(out) => Ok(Some(to_result(py, out)?)),
            None => Ok(None),
        }
    }

    /// The schema the chain returns for input `schema` (a `pyarrow.Schema`).
    fn output_schema<'py>(&self, py: Python<'py>, schema: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let schema: SchemaRef = Arc::new(Schema::from_pyarrow_bound(schema)?);
        let out = py.detach(|| self.lock()?.output_schema(&schema)).map_err(to_py)?;
        out.as_ref().to_pyarrow(py)
    }

    /// A task of a distributed job: transforms like this chain and collects the digests
    /// of everything it transforms into a task report (see `combine_run_record`). Give a
    /// stable id of the task's input (Spark: the partition id); without one the id is
    /// derived from the input rows, so a retried task reports under the same id.
    #[pyo3(signature = (task_id=None))]
    fn task(slf: &Bound<'_, Self>, task_id: Option<String>) -> PyTask {
        PyTask {
            chain: slf.clone().unbind(),
            id: task_id,
            state: Mutex::new(TaskState {
                digests: None,
                fuel: Vec::new(),
            }),
        }
    }

    /// Whether a plugin keeps state across batches (then `finish()` flushes it).
    #[getter]
    fn stateful(&self) -> PyResult<bool> {
        Ok(self.lock().map_err(to_py)?.is_stateful())
    }

    /// The plugins as `[{"name", "version", "sha256", "stateful"}]`, in chain order.
    #[getter]
    fn plugins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let runner = self.lock().map_err(to_py)?;
        let list = PyList::empty(py);
        for (p, _) in runner.plugins() {
            let d = PyDict::new(py);
            d.set_item("name", &p.info().name)?;
            d.set_item("version", &p.info().version)?;
            d.set_item("sha256", p.sha256())?;
            d.set_item("stateful", p.info().stateful)?;
            list.append(d)?;
        }
        Ok(list)
    }
}

impl PyChain {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ChainRunner>, Error> {
        // A panic inside a call poisons the lock; later calls say so instead of panicking.
        self.runner
            .lock()
            .map_err(|_| Error::usage("this Chain failed inside an earlier call; load a new one"))
    }
}

struct TaskState {
    /// Opened by the first batch (the schemas come from it).
    digests: Option<TaskDigests>,
    /// Fuel per plugin, summed over the task's calls.
    fuel: Vec<u64>,
}

/// One task of a distributed job over a `Chain`: `transform` as the chain does, then
/// `report()` / `write_report(dir)` for `combine_run_record`.
#[pyclass(module = "sluice._sluice", name = "Task", frozen)]
struct PyTask {
    chain: Py<PyChain>,
    id: Option<String>,
    state: Mutex<TaskState>,
}

impl PyTask {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, TaskState>, Error> {
        self.state
            .lock()
            .map_err(|_| Error::usage("this Task failed inside an earlier call; start the task again"))
    }

    /// The report, or `None` when no batch came (an empty partition has nothing to record).
    fn build_report(&self) -> Result<Option<TaskReport>, Error> {
        let st = self.state()?;
        let Some(d) = st.digests.as_ref() else {
            return Ok(None);
        };
        let runner = self.chain.get().lock()?;
        let mut report = runner.task_report(d, st.fuel.clone());
        if self.id.is_none() {
            // Content-derived: the same input rows give the same id on a retry.
            let digest = d.input_rowset().digest();
            let hex = digest.rsplit(':').next().unwrap_or(&digest);
            report.task = format!("input-{}", &hex[..hex.len().min(32)]);
        }
        Ok(Some(report))
    }
}

#[pymethods]
impl PyTask {
    /// Transform one batch as the chain does, and count it in the task's digests.
    fn transform(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<TransformResult> {
        let batch = RecordBatch::from_pyarrow_bound(batch)?;
        let out = py
            .detach(|| -> Result<ChunkOutput, Error> {
                let mut runner = self.chain.get().lock()?;
                let mut st = self.state()?;
                if st.digests.is_none() {
                    let id = self.id.clone().unwrap_or_default();
                    st.digests = Some(runner.task(id, &batch.schema())?);
                }
                st.digests.as_mut().expect("opened above").input(&batch);
                let out = runner.transform(batch)?;
                let d = st.digests.as_mut().expect("opened above");
                for b in &out.batches {
                    d.output(b);
                }
                if st.fuel.len() < out.fuel.len() {
                    st.fuel.resize(out.fuel.len(), 0);
                }
                for (acc, f) in st.fuel.iter_mut().zip(&out.fuel) {
                    *acc += f;
                }
                Ok(out)
            })
            .map_err(to_py)?;
        to_result(py, out)
    }

    /// The task's id (derived from its input rows when none was given and a batch came).
    #[getter]
    fn task_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        if self.id.is_some() {
            return Ok(self.id.clone());
        }
        Ok(py.detach(|| self.build_report()).map_err(to_py)?.map(|r| r.task))
    }

    /// The task report as JSON (`None` when the task transformed no batch).
    fn report(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let r = py.detach(|| self.build_report()).map_err(to_py)?;
        Ok(r.map(|r| serde_json::to_string(&r).expect("reports serialize")))
    }

    /// Write the report to `DIR/<task id>.json` (atomically; a retry overwrites it with the
    /// same bytes) and return its path; `None` when the task transformed no batch.
    fn write_report(&self, py: Python<'_>, dir: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
        let dir = path_of(dir)?;
        py.detach(|| -> Result<Option<PathBuf>, Error> {
            let Some(r) = self.build_report()? else {
                return Ok(None);
            };
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
            let name: String = r
                .task
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = dir.join(format!("{name}.json"));
            let json = serde_json::to_vec(&r).expect("reports serialize");
            sluice_host::outdir::write_atomic(&path, &json)?;
            Ok(Some(path))
        })
        .map_err(to_py)
    }
}

/// Fold task reports (from directory `dir`, or the JSON strings `reports`) into one run
/// record written to `OUTPUT/_sluice/manifest.json`; returns the record as JSON. The
/// `sluice.combine_run_record` wrapper picks the argument.
#[pyfunction]
#[pyo3(name = "_combine_run_record")]
fn combine_run_record(
    py: Python<'_>,
    dir: Option<PathBuf>,
    reports: Option<Vec<String>>,
    output: PathBuf,
) -> PyResult<String> {
    py.detach(|| -> Result<String, Error> {
        let reports = match (dir, reports) {
            (Some(d), _) => distributed::read_reports(&d)?,
            (None, Some(r)) => r
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    serde_json::from_str::<TaskReport>(text)
                        .map_err(|e| Error::input(format!("report {i} is not a sluice task report: {e}")))
                })
                .collect::<Result<Vec<_>, Error>>()?,
            (None, None) => return Err(Error::usage("give a directory of task reports or the reports")),
        };
        let record = distributed::combine(reports)?;
        distributed::write_record(&output, &record)?;
        Ok(serde_json::to_string(&record).expect("records serialize"))
    })
    .map_err(to_py)
}

/// Data digest (v1, `blake3:<hex>`) of record batches: what `sluice run` records per chunk.
#[pyfunction]
#[pyo3(signature = (batches, schema=None))]
fn data_digest(py: Python<'_>, batches: &Bound<'_, PyAny>, schema: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
    let batches = batches
        .try_iter()?
        .map(|b| RecordBatch::from_pyarrow_bound(&b?))
        .collect::<PyResult<Vec<_>>>()?;
    let schema: SchemaRef = match (schema, batches.first()) {
        (Some(s), _) => Arc::new(Schema::from_pyarrow_bound(s)?),
        (None, Some(b)) => b.schema(),
        (None, None) => return Err(PyTypeError::new_err("data_digest of no batches needs a schema")),
    };
    Ok(py.detach(|| {
        let mut d = sluice_host::digest::DataDigest::new(&schema);
        for b in &batches {
            d.update(b);
        }
        d.finish()
    }))
}

/// `sha256:<hex>` of a file: the pin of a plugin artifact.
#[pyfunction]
fn sha256_file(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<String> {
    let path = path_of(path)?;
    py.detach(|| sluice_host::digest::sha256_file(&path)).map_err(to_py)
}

/// The extension module `sluice._sluice`; the `sluice` package re-exports it.
#[pymodule]
fn _sluice(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyChain>()?;
    m.add_class::<TransformResult>()?;
    m.add_class::<PyTask>()?;
    m.add_function(wrap_pyfunction!(combine_run_record, m)?)?;
    m.add_function(wrap_pyfunction!(data_digest, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_file, m)?)?;
    categorize(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
