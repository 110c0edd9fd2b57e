//! The sandbox a plugin instance lives in: deny-all, deterministic WASI and resource limits.
//!
//! A plugin gets no files, no environment, no arguments, no sockets and no name lookup.
//! Clocks are fixed (wall clock at the run's logical time; the monotonic clock advances by
//! one microsecond per read, so elapsed-time loops still terminate) and randomness is a
//! BLAKE3 stream seeded from the run. The same inputs therefore always see the same values.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Resource limits applied to every plugin instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Maximum linear memory per instance, in bytes.
    pub memory_bytes: u64,
    /// Fuel (roughly, wasm instructions) allowed per plugin call.
    pub fuel_per_call: u64,
    /// Maximum bytes a plugin may return from one call.
    pub max_output_bytes: u64,
    /// Maximum log bytes (stderr plus `log`) a plugin may emit per instance.
    pub max_log_bytes: u64,
    /// Maximum length of one log message; longer ones are truncated.
    pub max_log_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            fuel_per_call: 200_000_000_000,
            max_output_bytes: 1 << 30,
            max_log_bytes: 1 << 20,
            max_log_line: 4096,
        }
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
    pub(crate) limits: StoreLimits,
    pub(crate) log: LogCapture,
}

impl PluginState {
    /// Build the deny-all, deterministic state for plugin `name`.
    pub fn new(name: &str, limits: &Limits, det: &Determinism) -> Self {
        let log = LogCapture::new(name, limits);
        let mut b = WasiCtx::builder();
        b.stderr(log.clone())
            .stdout(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .wall_clock(FixedClock(Duration::from_secs(det.wall_clock_secs)))
            .monotonic_clock(SteppingClock(Mutex::new(0)))
            .secure_random(SeededRng::new(det.seed, b"secure"))
            .insecure_random(SeededRng::new(det.seed, b"insecure"))
            .insecure_random_seed(u128::from_le_bytes(det.seed[..16].try_into().expect("16 bytes")))
            .max_random_size(1 << 20);
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX))
            .table_elements(1_000_000)
            .instances(100)
            .tables(100)
            .memories(10)
            .trap_on_grow_failure(true)
            .build();
        PluginState { wasi: b.build(), table: ResourceTable::new(), limits: store_limits, log }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
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

struct SteppingClock(Mutex<u64>);
impl HostMonotonicClock for SteppingClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += 1_000;
        *t
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
/// line by line, within the log quota, with control characters escaped.
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
}

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
}

impl LogInner {
    fn admit(&mut self, n: u64) -> bool {
        if self.used + n > self.quota {
            if !self.dropped {
                self.dropped = true;
                tracing::warn!(plugin = %self.plugin, "plugin log quota of {} bytes reached; further plugin output is dropped", self.quota);
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

/// Escape control characters (so a plugin cannot forge log lines or terminal sequences)
/// and truncate to `max` bytes.
fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str("…[truncated]");
            break;
        }
        if c.is_control() {
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
    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_controls_and_truncate() {
        assert_eq!(escape("a\nb\x1b[31m", 100), "a\\nb\\u{1b}[31m");
        assert!(escape(&"x".repeat(50), 10).starts_with("xxxxxxxxxx…"));
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        use rand_core::TryRng;
        let mut a = SeededRng::new([7; 32], b"secure");
        let mut b = SeededRng::new([7; 32], b"secure");
        let mut c = SeededRng::new([8; 32], b"secure");
        let (x, y, z) = (a.try_next_u64().unwrap(), b.try_next_u64().unwrap(), c.try_next_u64().unwrap());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
