//! The library API: load a plugin chain once, then push record batches through it.
//!
//! This is what `sluice run` does to each chunk, without files: the same spec resolution
//! ([`LoadedSpec::resolve_plugins`]), the same pinned loading ([`load_chain`], compiled
//! components cached by sha256), the same [`Chain`], and the same data digest (v1,
//! [`DataDigest`]) that the run record keeps per chunk. Engines that hand out data in
//! batches (Spark, Ray, the Python binding in `host/python`) build on it.
//!
//! Each [`ChainRunner::transform`] call is one chunk. A stateless chain gets a fresh
//! instance of every plugin per call (opened, fed, finished), as `sluice run` does per
//! chunk, so a call's output, digest and fuel depend only on its batch: the rows are the
//! same however an engine partitions the input. A stateful chain (any plugin declaring
//! state) is one instance carried across calls and flushed by [`ChainRunner::finish`]; its
//! output then depends on how the input was split among runners.
//!
//! ```no_run
//! use sluice_host::embed::{ChainOptions, ChainRunner};
//! use sluice_host::pipeline::PluginSpec;
//! # use std::sync::Arc;
//! # let batch = arrow::record_batch::RecordBatch::try_from_iter([(
//! #     "qty",
//! #     Arc::new(arrow::array::Int64Array::from(vec![5, 20])) as arrow::array::ArrayRef,
//! # )])
//! # .expect("one column");
//! let plugins = vec![PluginSpec::new("filter.wasm", vec![("min_qty".into(), "10".into())])];
//! let mut runner = ChainRunner::new(&plugins, ChainOptions::default())?;
//! let out = runner.transform(batch)?;
//! println!("{} rows, {}, fuel {:?}", out.rows_out, out.data_digest, out.fuel);
//! # Ok::<(), sluice_host::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::digest::DataDigest;
use crate::distributed::{TaskDigests, TaskReport};
use crate::engine::{Runtime, RuntimeOptions, default_cache_dir};
use crate::error::{Error, Result};
use crate::pipeline::{Chain, LoadedPlugin, PluginRecord, PluginSpec, RunSpec, load_chain};
use crate::sandbox::Limits;
use crate::spec::{LoadedSpec, ResolveOptions};
use crate::store::PluginStore;

/// How a [`ChainRunner`] runs its plugins.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Limits applied to every plugin instance (the CLI's `--max-*` flags).
    pub limits: Limits,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Seed of the plugins' deterministic randomness. `sluice run` derives it from the
    /// job's data key, which a worker cannot know; the default is all zeros.
    pub seed: [u8; 32],
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            limits: Limits::default(),
            cache_dir: default_cache_dir(),
            seed: [0; 32],
        }
    }
}

/// What one [`ChainRunner::transform`] (or [`ChainRunner::finish`]) call produced.
#[derive(Debug, Clone)]
pub struct ChunkOutput {
    /// The output batches, in order.
    pub batches: Vec<RecordBatch>,
    /// The schema of the output (also when there are no batches).
    pub schema: SchemaRef,
    /// Data digest (v1, `blake3:<hex>`) of the output rows: a chunk's `data_digest`.
    pub data_digest: String,
    /// Data digest of the input rows: a CLI chunk's `input_digest` under `--input-digest data`.
    pub input_digest: String,
    /// Fuel each plugin used in this call, in chain order.
    pub fuel: Vec<u64>,
    /// Input rows.
    pub rows_in: u64,
    /// Output rows.
    pub rows_out: u64,
}

/// A loaded plugin chain that transforms batches: the embeddable core of `sluice run`.
pub struct ChainRunner {
    rt: Runtime,
    plugins: Vec<LoadedPlugin>,
    /// The specs the plugins were loaded from (for records: which config keys are secret).
    specs: Vec<PluginSpec>,
    seed: [u8; 32],
    stateful: bool,
    /// The stateful chain's one instance, opened by the first batch.
    carried: Option<Chain>,
}

impl ChainRunner {
    /// Load `plugins` (each checked against its pin, if any, before compiling).
    ///
    /// # Errors
    /// A usage error for bad limits or a pin mismatch, an I/O error for an unreadable
    /// file, a plugin error for a component that does not fit the ABI.
    pub fn new(plugins: &[PluginSpec], opts: ChainOptions) -> Result<ChainRunner> {
        if plugins.is_empty() {
            return Err(Error::usage("a chain needs at least one plugin"));
        }
        let rt = Runtime::new(RuntimeOptions {
            limits: opts.limits,
            cache_dir: opts.cache_dir,
        })?;
        // load_chain takes a RunSpec; only its plugins are read.
        let mut spec = RunSpec::new(Vec::new(), PathBuf::new());
        spec.plugins = plugins.to_vec();
        let plugins = load_chain(&rt, &spec)?;
        let stateful = plugins.iter().any(|(p, _)| p.info().stateful);
        Ok(ChainRunner {
            rt,
            plugins,
            specs: spec.plugins,
            seed: opts.seed,
            stateful,
            carried: None,
        })
    }

    /// Load the plugin chain of a pipeline spec (`pipeline.toml`), resolved and pinned as
    /// `sluice run PIPELINE` resolves it; its inputs and output are not touched.
    ///
    /// # Errors
    /// As [`LoadedSpec::load`], [`LoadedSpec::resolve_plugins`] and [`ChainRunner::new`].
    pub fn from_spec(path: &Path, resolve: &ResolveOptions, opts: ChainOptions) -> Result<ChainRunner> {
        let loaded = LoadedSpec::load(path)?;
        let plugins = loaded.resolve_plugins(&PluginStore::default_location(), resolve)?;
        ChainRunner::new(&plugins, opts)
    }

    /// The runtime (engine settings, limits) the chain runs in.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The loaded plugins and their configs, in order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The chain as a run record lists it (secret config values redacted).
    pub fn plugin_records(&self) -> Vec<PluginRecord> {
        self.plugins
            .iter()
            .zip(&self.specs)
            .map(|((p, _), s)| PluginRecord::new(p, s))
            .collect()
    }

    /// Start collecting the digests of one engine task whose input has `input_schema`
    /// (see [`crate::distributed`]).
    ///
    /// # Errors
    /// As [`ChainRunner::output_schema`].
    pub fn task(&self, task: impl Into<String>, input_schema: &SchemaRef) -> Result<TaskDigests> {
        let output = self.output_schema(input_schema)?;
        Ok(TaskDigests::new(task, input_schema, &output))
    }

    /// The report of a task whose batches went through this chain, `fuel` per plugin.
    pub fn task_report(&self, digests: &TaskDigests, fuel: Vec<u64>) -> TaskReport {
        digests.report(self.plugin_records(), self.rt.settings(), fuel)
    }

    /// Whether a plugin keeps state across batches (then calls are not independent).
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }

    /// The schema the chain returns for input `schema` (negotiated, no data moves).
    pub fn output_schema(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        let chain = Chain::open(&self.plugins, schema, None, self.seed)?;
        Ok(Arc::clone(chain.output_schema()))
    }

    /// Transform one batch as one chunk (see the module docs for stateful chains).
    ///
    /// # Errors
    /// A plugin error for a trap, a limit or a contract violation; a usage error when a
    /// stateful chain is fed batches of different schemas.
    pub fn transform(&mut self, batch: RecordBatch) -> Result<ChunkOutput> {
        let schema = batch.schema();
        let mut input = DataDigest::new(&schema);
        input.update(&batch);
        if self.stateful {
            if self.carried.is_none() {
                self.carried = Some(Chain::open(&self.plugins, &schema, None, self.seed)?);
            }
            let chain = self.carried.as_mut().expect("opened above");
            if chain.input_schema().fields() != schema.fields() {
                return Err(Error::usage(format!(
                    "a stateful chain was opened for the input schema {:?} and cannot take a batch of {:?}",
                    chain.input_schema().fields(),
                    schema.fields()
                )));
            }
            let before = chain.fuel();
            let batches = chain.process(batch)?;
            return Ok(output(chain, batches, &input, &before));
        }
        let mut chain = Chain::open(&self.plugins, &schema, None, self.seed)?;
        let before = chain.fuel();
        let mut batches = chain.process(batch)?;
        batches.extend(chain.finish()?);
        Ok(output(&chain, batches, &input, &before))
    }

    /// Flush a stateful chain: what its plugins still hold. `None` for a stateless chain
    /// (every call already finished its instance) or when no batch came.
    ///
    /// # Errors
    /// A plugin error for a trap, a limit or a contract violation.
    pub fn finish(&mut self) -> Result<Option<ChunkOutput>> {
        let Some(mut chain) = self.carried.take() else {
            return Ok(None);
        };
        let before = chain.fuel();
        let batches = chain.finish()?;
        let input = DataDigest::new(chain.input_schema());
        Ok(Some(output(&chain, batches, &input, &before)))
    }
}

fn output(chain: &Chain, batches: Vec<RecordBatch>, input: &DataDigest, before: &[u64]) -> ChunkOutput {
    let schema = Arc::clone(chain.output_schema());
    let mut out = DataDigest::new(&schema);
    for b in &batches {
        out.update(b);
    }
    ChunkOutput {
        rows_out: out.rows(),
        rows_in: input.rows(),
        data_digest: out.finish(),
        input_digest: input.finish(),
        fuel: chain
            .fuel()
            .iter()
            .zip(before)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect(),
        schema,
        batches,
    }
}
