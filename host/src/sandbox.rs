//! The sandbox a plugin instance lives in: deny-all, deterministic WASI and resource limits.
//!
//! A plugin gets no files, no environment, no arguments, no sockets and no name lookup.
//! Clocks are virtual: the wall clock is fixed at the run's logical time; the monotonic clock
//! advances by one microsecond per read (so elapsed-time loops still terminate) and by the
//! full length of a sleep, which returns at once. Randomness is a BLAKE3 stream seeded from
//! the run. The same inputs therefore always see the same values, and nothing a plugin can
//! call blocks the host.
//!
//! [`Limits`] bound what one instance may use; [`Limiter`] enforces the memory and table
//! limits inside wasmtime, and the other limits are set on the store in [`crate::plugin`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// Resource limits applied to every plugin instance.
///
/// Each has a `sluice run` flag (named in its doc) and a default chosen so that a
/// well-behaved plugin never comes near it, while a runaway one is stopped in seconds and
/// cannot take the host's memory. A plugin that hits a limit fails the run with exit code 4
/// and a message naming the limit and its flag.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Limits {
    /// Linear memory per instance, in bytes, summed over all its memories
    /// (`--max-memory`, default 1 GiB).
    pub memory_bytes: u64,
    /// Fuel (about one unit per wasm instruction) per plugin call; deterministic, so the
    /// same job fails the same way on every machine (`--fuel-per-call`, default 2·10¹¹,
    /// a few minutes of pure compute).
    pub fuel_per_call: u64,
    /// Wall-clock time per plugin call, in milliseconds, enforced with epoch interruption
    /// at a 10 ms resolution (`--max-call-time`, default 60 s). Unlike fuel it also stops
    /// a plugin that spends its time in host calls.
    pub call_time_ms: u64,
    /// Wasm stack per call, in bytes (`--max-stack`, default 1 MiB, at most 4 MiB). Wasm
    /// frames live on the calling thread's native stack, which must be larger than this
    /// (the main thread's 8 MiB is; a library user calling plugins from a thread with a
    /// small stack should lower this limit).
    pub stack_bytes: u64,
    /// Table elements per instance, summed over all its tables
    /// (`--max-table-elements`, default 1,000,000).
    pub table_elements: u64,
    /// Wasm instances (core module and component instances) per plugin instance
    /// (`--max-instances`, default 100).
    pub instances: u64,
    /// Tables per instance (`--max-tables`, default 100).
    pub tables: u64,
    /// Linear memories per instance (`--max-memories`, default 10).
    pub memories: u64,
    /// Live resources per instance: WASI handles in the host (streams, pollables) and
    /// component-model handles, each counted separately (`--max-resources`, default 10,000).
    pub resources: u64,
    /// Bytes a plugin may return from one call, checked before they are copied out of the
    /// plugin; it also bounds a log line (`--max-output-bytes`, default 1 GiB).
    pub max_output_bytes: u64,
    /// Log bytes (stdout, stderr and `log`) a plugin may emit per instance; the rest is
    /// dropped with one warning (`--max-log-bytes`, default 1 MiB).
    pub max_log_bytes: u64,
    /// Maximum length of one log line in bytes; longer ones are truncated
    /// (`--max-log-line`, default 4096).
    pub max_log_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            fuel_per_call: 200_000_000_000,
            call_time_ms: 60_000,
            stack_bytes: 1 << 20,
            table_elements: 1_000_000,
            instances: 100,
            tables: 100,
            memories: 10,
            resources: 10_000,
            max_output_bytes: 1 << 30,
            max_log_bytes: 1 << 20,
            max_log_line: 4096,
        }
    }
}

/// The largest `--max-stack`: wasm frames live on the calling thread's native stack, and
/// a limit beyond what that stack has would crash the process instead of trapping.
pub const MAX_STACK_BYTES: u64 = 4 << 20;

impl Limits {
    /// Check that every limit is usable.
    ///
    /// # Errors
    /// A usage error naming the flag of the first limit that is zero or out of range.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = [
            ("--max-memory", self.memory_bytes),
            ("--fuel-per-call", self.fuel_per_call),
            ("--max-call-time", self.call_time_ms),
            ("--max-table-elements", self.table_elements),
            ("--max-instances", self.instances),
            ("--max-tables", self.tables),
            ("--max-memories", self.memories),
            ("--max-resources", self.resources),
            ("--max-output-bytes", self.max_output_bytes),
            ("--max-log-line", self.max_log_line as u64),
        ];
        for (flag, v) in positive {
            if v == 0 {
                return Err(crate::Error::usage(format!("{flag} must be greater than `0`")));
            }
        }
        if !(64 << 10..=MAX_STACK_BYTES).contains(&self.stack_bytes) {
            return Err(crate::Error::usage(format!(
                "--max-stack must be between `64KiB` and `4MiB`, got `{}` bytes",
                self.stack_bytes
            )));
        }
        Ok(())
    }
}

/// A limit a plugin instance ran into; the error inside the trap that stopped it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Growing linear memory would pass `--max-memory`.
    #[error(
        "exceeded the memory limit: it asked for {} of linear memory, over the limit of {} per instance (raise it with --max-memory)",
        fmt_bytes(*.wanted),
        fmt_bytes(*.limit)
    )]
    Memory {
        /// Total bytes the instance would have had.
        wanted: u64,
        /// The limit.
        limit: u64,
    },
    /// Growing tables would pass `--max-table-elements`.
    #[error(
        "exceeded the table limit: it asked for {wanted} table elements, over the limit of {limit} per instance (raise it with --max-table-elements)"
    )]
    TableElements {
        /// Total elements the instance would have had.
        wanted: u64,
        /// The limit.
        limit: u64,
    },
}

/// `1073741824` as `1 GiB (1073741824 bytes)`, or just `512 bytes` when small.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            let shown = if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{v:.1} {unit}")
            };
            return format!("{shown} ({n} bytes)");
        }
    }
    format!("{n} bytes")
}

/// Enforces [`Limits`] on one store: memory and table sizes summed over the instance,
/// and the number of instances, tables and memories.
pub(crate) struct Limiter {
    memory_limit: u64,
    memory_used: u64,
    table_limit: u64,
    table_used: u64,
    instances: usize,
    tables: usize,
    memories: usize,
}

impl Limiter {
    fn new(limits: &Limits) -> Self {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Limiter {
            memory_limit: limits.memory_bytes,
            memory_used: 0,
            table_limit: limits.table_elements,
            table_used: 0,
            instances: count(limits.instances),
            tables: count(limits.tables),
            memories: count(limits.memories),
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self
            .memory_used
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if wanted > self.memory_limit {
            // An error (not `Ok(false)`) traps right at the `memory.grow`, with this message,
            // instead of letting the guest's allocator turn the failure into an abort.
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                wanted,
                limit: self.memory_limit,
            }));
        }
        self.memory_used = wanted;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("the host could not grow the plugin's memory"))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self
            .table_used
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if wanted > self.table_limit {
            return Err(wasmtime::Error::new(LimitExceeded::TableElements {
                wanted,
                limit: self.table_limit,
            }));
        }
        self.table_used = wanted;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Fixed inputs for the deterministic parts of WASI.
#[derive(Debug, Clone, Copy, Default)]
pub struct Determinism {
    /// What `wasi:clocks/wall-clock.now` returns, as seconds since the Unix epoch.
    pub wall_clock_secs: u64,
    /// Seed for all randomness a plugin can ask for.
    pub seed: [u8; 32],
}

/// Everything a live plugin instance's store holds.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) log: LogCapture,
    /// The virtual monotonic clock, in nanoseconds: reads advance it by 1 µs, sleeps by
    /// their duration, and no real time passes.
    clock: Arc<AtomicU64>,
}

impl PluginState {
    /// Build the deny-all, deterministic state for plugin `name`.
    pub fn new(name: &str, limits: &Limits, det: &Determinism) -> Self {
        let log = LogCapture::new(name, limits);
        let clock = Arc::new(AtomicU64::new(0));
        let mut b = WasiCtx::builder();
        b.stderr(log.clone())
            .stdout(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .wall_clock(FixedClock(Duration::from_secs(det.wall_clock_secs)))
            .monotonic_clock(VirtualClock(Arc::clone(&clock)))
            .secure_random(SeededRng::new(det.seed, b"secure"))
            .insecure_random(SeededRng::new(det.seed, b"insecure"))
            .insecure_random_seed(u128::from_le_bytes(det.seed[..16].try_into().expect("16 bytes")))
            .max_random_size(MAX_RANDOM_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(usize::try_from(limits.resources).unwrap_or(usize::MAX));
        PluginState {
            wasi: b.build(),
            table,
            limiter: Limiter::new(limits),
            log,
            clock,
        }
    }

    /// A pollable that is ready at once and moves the virtual clock to `deadline` (ns)
    /// when polled: `wasi:clocks/monotonic-clock.subscribe-*` for plugins. With wasmtime's
    /// own, a plugin that sleeps would block the host in real time, where neither fuel nor
    /// the call deadline can stop it.
    pub(crate) fn virtual_sleep(&mut self, deadline: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wakeup = self.table.push(Wakeup {
            clock: Arc::clone(&self.clock),
            deadline,
        })?;
        wasmtime_wasi::p2::subscribe(&mut self.table, wakeup)
    }

    /// The virtual monotonic clock's current reading, in nanoseconds.
    pub(crate) fn clock_now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
}

/// The most random bytes a plugin may ask for in one call.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct FixedClock(Duration);
impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// The virtual monotonic clock; shares its counter with [`PluginState::virtual_sleep`].
struct VirtualClock(Arc<AtomicU64>);
impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::Relaxed) + 1_000
    }
}

/// A sleep on the virtual clock: ready at once; polling it moves the clock forward.
struct Wakeup {
    clock: Arc<AtomicU64>,
    deadline: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wakeup {
    async fn ready(&mut self) {
        self.clock.fetch_max(self.deadline, Ordering::Relaxed);
    }
}

/// A deterministic random stream: BLAKE3 in XOF mode keyed by the run seed.
struct SeededRng(blake3::OutputReader);
impl SeededRng {
    fn new(seed: [u8; 32], domain: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_keyed(&seed);
        h.update(domain);
        SeededRng(h.finalize_xof())
    }
}
impl rand_core::TryRng for SeededRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

/// Collects what a plugin writes to stdout/stderr or `log`s and forwards it to `tracing`,
/// line by line, within the log quota, with control characters escaped and long lines
/// truncated. It also keeps the last bytes written to stdout/stderr of the current call
/// (even past the quota), so that a trap after a panic can quote the panic message.
#[derive(Clone)]
pub struct LogCapture {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    plugin: String,
    partial: Vec<u8>,
    used: u64,
    quota: u64,
    max_line: usize,
    dropped: bool,
    /// The last [`TAIL_BYTES`] bytes of stdout/stderr written during the current call.
    tail: VecDeque<u8>,
}

/// How much recent stdout/stderr output is kept for error messages.
const TAIL_BYTES: usize = 4096;

impl LogCapture {
    fn new(plugin: &str, limits: &Limits) -> Self {
        LogCapture {
            inner: Arc::new(Mutex::new(LogInner {
                plugin: plugin.to_string(),
                partial: Vec::new(),
                used: 0,
                quota: limits.max_log_bytes,
                max_line: limits.max_log_line,
                dropped: false,
                tail: VecDeque::with_capacity(TAIL_BYTES),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one message from the `log` import.
    pub fn message(&self, level: tracing::Level, msg: &str) {
        let mut g = self.lock();
        if g.admit(msg.len() as u64) {
            let line = escape(msg, g.max_line);
            emit(level, &g.plugin, &line);
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut g = self.lock();
        let keep = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let excess = (g.tail.len() + keep.len()).saturating_sub(TAIL_BYTES);
        g.tail.drain(..excess);
        g.tail.extend(keep);
        if !g.admit(bytes.len() as u64) {
            return;
        }
        g.partial.extend_from_slice(bytes);
        while let Some(pos) = g.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = g.partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let text = escape(&text, g.max_line);
            emit(tracing::Level::WARN, &g.plugin, &text);
        }
        if g.partial.len() > g.max_line {
            let line: Vec<u8> = std::mem::take(&mut g.partial);
            let text = escape(&String::from_utf8_lossy(&line), g.max_line);
            emit(tracing::Level::WARN, &g.plugin, &text);
        }
    }

    /// Emit whatever is left without a trailing newline (at the end of a call).
    pub fn flush(&self) {
        let mut g = self.lock();
        if !g.partial.is_empty() {
            let line: Vec<u8> = std::mem::take(&mut g.partial);
            let text = escape(&String::from_utf8_lossy(&line), g.max_line);
            emit(tracing::Level::WARN, &g.plugin, &text);
        }
    }

    /// Forget the output of earlier calls (called as each call starts).
    pub(crate) fn start_call(&self) {
        self.lock().tail.clear();
    }

    /// The message of a Rust panic printed during the current call, if there was one:
    /// `panicked at src/lib.rs:3:5: the message`, escaped and at most 512 bytes.
    pub(crate) fn last_panic(&self) -> Option<String> {
        let g = self.lock();
        let tail: Vec<u8> = g.tail.iter().copied().collect();
        let text = String::from_utf8_lossy(&tail);
        let at = text.rfind("panicked at ")?;
        let rest = &text[at..];
        // std prints `panicked at FILE:LINE:COL:\nMESSAGE\nnote: run with ...`.
        let end = rest.find("\nnote: ").unwrap_or(rest.len());
        let message = rest[..end].trim_end().replace('\n', " ");
        Some(escape(&message, 512))
    }
}

impl LogInner {
    fn admit(&mut self, n: u64) -> bool {
        if self.used.saturating_add(n) > self.quota {
            if !self.dropped {
                self.dropped = true;
                tracing::warn!(
                    plugin = %self.plugin,
                    "plugin `{}` reached its log quota of {}; its further output is dropped (raise it with --max-log-bytes)",
                    self.plugin,
                    fmt_bytes(self.quota)
                );
            }
            return false;
        }
        self.used += n;
        true
    }
}

fn emit(level: tracing::Level, plugin: &str, msg: &str) {
    match level {
        tracing::Level::ERROR => tracing::error!(target: "plugin", plugin, "{msg}"),
        tracing::Level::WARN => tracing::warn!(target: "plugin", plugin, "{msg}"),
        tracing::Level::INFO => tracing::info!(target: "plugin", plugin, "{msg}"),
        tracing::Level::DEBUG => tracing::debug!(target: "plugin", plugin, "{msg}"),
        tracing::Level::TRACE => tracing::trace!(target: "plugin", plugin, "{msg}"),
    }
}

/// Whether `c` could forge log lines or mislead a reader: control characters (newlines,
/// terminal escapes), line and paragraph separators, and the bidirectional overrides and
/// isolates that reorder displayed text ("Trojan Source").
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Escape what [`needs_escape`] names (as `\n`, `\u{1b}`, …) and truncate to about `max`
/// bytes, saying how long the message was.
fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 32);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str(&format!("…[truncated, {} bytes in all]", s.len()));
            break;
        }
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl IsTerminal for LogCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogCapture {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_controls_and_truncate() {
        assert_eq!(escape("a\nb\x1b[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(escape(&"x".repeat(50), 10), "xxxxxxxxxx…[truncated, 50 bytes in all]");
        assert_eq!(
            escape("a\u{202e}b\u{2028}c\u{2067}", 100),
            "a\\u{202e}b\\u{2028}c\\u{2067}"
        );
        assert_eq!(escape("tab\there ünï", 100), "tab\\there ünï");
    }

    #[test]
    fn memory_and_tables_are_limited_in_total_across_the_instance() {
        use wasmtime::ResourceLimiter;
        let mut l = Limiter::new(&Limits {
            memory_bytes: 100 << 20,
            table_elements: 1000,
            ..Limits::default()
        });
        assert!(l.memory_growing(0, 60 << 20, None).unwrap());
        // A second memory may not take the total over the limit, however it is split.
        let e = l.memory_growing(0, 50 << 20, None).unwrap_err();
        assert_eq!(
            e.downcast_ref::<LimitExceeded>(),
            Some(&LimitExceeded::Memory {
                wanted: 110 << 20,
                limit: 100 << 20
            })
        );
        assert!(
            l.memory_growing(60 << 20, 100 << 20, None).unwrap(),
            "growing one memory to the limit is fine"
        );
        assert!(l.table_growing(0, 600, None).unwrap());
        assert!(l.table_growing(0, 401, None).is_err());
        assert!(l.table_growing(600, 1000, None).unwrap());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(fmt_bytes(512), "512 bytes");
        assert_eq!(fmt_bytes(1 << 30), "1 GiB (1073741824 bytes)");
        assert_eq!(fmt_bytes((1 << 20) + (1 << 19)), "1.5 MiB (1572864 bytes)");
    }

    #[test]
    fn the_panic_message_is_found_in_the_last_output_of_the_call() {
        let log = LogCapture::new("p", &Limits::default());
        log.write_bytes(b"starting\n");
        assert_eq!(log.last_panic(), None);
        log.write_bytes(
            b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom \x1b[31m\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(
            log.last_panic().as_deref(),
            Some("panicked at src/lib.rs:3:5: boom \\u{1b}[31m")
        );
        log.start_call();
        assert_eq!(log.last_panic(), None, "a new call starts clean");
    }

    #[test]
    fn zero_and_out_of_range_limits_are_refused_naming_the_flag() {
        assert!(Limits::default().validate().is_ok());
        let e = Limits {
            resources: 0,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("--max-resources"), "{e}");
        let e = Limits {
            stack_bytes: 64 << 20,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("--max-stack"), "{e}");
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        use rand_core::TryRng;
        let mut a = SeededRng::new([7; 32], b"secure");
        let mut b = SeededRng::new([7; 32], b"secure");
        let mut c = SeededRng::new([8; 32], b"secure");
        let (x, y, z) = (
            a.try_next_u64().unwrap(),
            b.try_next_u64().unwrap(),
            c.try_next_u64().unwrap(),
        );
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
