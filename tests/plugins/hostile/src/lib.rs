//! `hostile`: a test plugin that misbehaves on purpose, in the way its `mode` config key
//! names. The host must contain every mode: stop it with a clear error (exit 4) or, for
//! the probing modes, show that the sandbox gave it nothing.
//!
//! Modes that fail (the host must stop them and name the limit or the violation):
//! - `loop`: spins forever in `process` (a tight loop, no calls).
//! - `memory`: allocates 1 MiB blocks without end.
//! - `recurse`: recurses without end.
//! - `huge-output`: returns a result of 1 GiB + 1 MiB.
//! - `bad-offsets`, `bad-utf8`, `wrong-rows`, `wrong-schema`, `garbage`: return invalid
//!   Arrow (a string offset past the data, invalid UTF-8, a column shorter than the batch,
//!   a column other than the declared one, bytes that are not Arrow IPC).
//! - `trap-after`: echoes `after` batches (default 1), then traps.
//! - `panic`: panics.
//! - `random-huge`: asks the host for 1 GiB of randomness in one call.
//! - `random-flood`: asks for 1 MiB of randomness in a loop without end.
//! - `kernel-flood`: hashes 1 MiB with the host's SHA-256 kernel in a loop without end.
//! - `resources`: creates host resources (pollables) without end.
//! - `guest-resources`: creates its own `transformer` resources without end.
//!
//! Modes that probe (they succeed; each output row says what the plugin saw):
//! - `files`: opens `/etc/passwd`, `../`, `.`, `/`, creates a file, lists preopens.
//! - `env`: reads environment variables, arguments, the working directory.
//! - `net`: connects to `127.0.0.1:<port>` (std and raw WASI sockets), binds UDP,
//!   resolves `localhost`.
//! - `sleep`: sleeps one hour and reports how far the monotonic clock moved.
//! - `random`: returns 32 random bytes in hex.
//!
//! Modes that pass their input through: `spin` and `spin-wide` (burn `iterations` loop
//! turns per batch, latency-bound and throughput-bound, for benchmarks) and `log-flood` (writes long lines with control characters to stdout,
//! stderr and `log`, far beyond the log quota).
//!
//! It binds the WIT directly: the SDK would refuse to break the contract.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../../../wit/kernels"],
        inline: "package sluice:hostile;
            world hostile {
                include sluice:transform/transform-plugin@1.0.0;
                import sluice:kernels/hash@1.0.0;
            }",
        world: "sluice:hostile/hostile",
        generate_all,
    });
}

use std::cell::Cell;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use bindings::exports::sluice::transform::transform::{Error, Guest, GuestTransformer, Ipc, PluginInfo, Transformer};
use bindings::sluice::transform::host::{self, Level};

/// The plugin.
pub struct Hostile;

/// One open transformer.
pub struct HostileTransformer {
    mode: String,
    config: Vec<(String, String)>,
    input_schema: Vec<u8>,
    calls: Cell<u64>,
}

/// What a mode's output looks like.
enum Output {
    /// The input schema; `process` returns its input (or nothing, having failed first).
    Echo,
    /// One nullable `Utf8` column `seen`: one row per probe.
    Probe,
    /// One nullable `Utf8` column `s`: the invalid-Arrow modes.
    Strings,
}

const ECHO_MODES: &[&str] = &[
    "spin",
    "spin-wide",
    "loop",
    "memory",
    "recurse",
    "huge-output",
    "trap-after",
    "panic",
    "random-huge",
    "random-flood",
    "kernel-flood",
    "resources",
    "guest-resources",
    "log-flood",
];
const PROBE_MODES: &[&str] = &["files", "env", "net", "sleep", "random"];
const STRING_MODES: &[&str] = &["bad-offsets", "bad-utf8", "wrong-rows", "wrong-schema", "garbage"];

fn output_kind(mode: &str) -> Option<Output> {
    if ECHO_MODES.contains(&mode) {
        Some(Output::Echo)
    } else if PROBE_MODES.contains(&mode) {
        Some(Output::Probe)
    } else if STRING_MODES.contains(&mode) {
        Some(Output::Strings)
    } else {
        None
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

fn utf8_schema(name: &str) -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]))
}

/// An IPC stream with `schema` and, if given, one batch.
fn stream(schema: &Schema, batch: Option<&RecordBatch>) -> Result<Vec<u8>, Error> {
    let mut w = StreamWriter::try_new(Vec::new(), schema).map_err(internal)?;
    if let Some(b) = batch {
        w.write(b).map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

/// An IPC stream of one `Utf8` column `name` holding `rows`.
fn strings(name: &str, rows: Vec<String>) -> Result<Vec<u8>, Error> {
    let schema = utf8_schema(name);
    let col: ArrayRef = Arc::new(StringArray::from(rows));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![col]).map_err(internal)?;
    stream(&schema, Some(&batch))
}

/// Replace the first occurrence of `from` in `bytes` with `to` (same length).
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) -> Result<(), Error> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .ok_or_else(|| Error::Internal(format!("pattern {from:?} not found in the encoded stream")))?;
    bytes[at..at + to.len()].copy_from_slice(to);
    Ok(())
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Recurses without end. Not a tail call: the arithmetic after the call keeps every frame.
#[inline(never)]
fn descend(depth: u64, stop: u64) -> u64 {
    if depth == stop {
        return 0;
    }
    let below = descend(depth.wrapping_add(1), stop);
    below.wrapping_mul(31).wrapping_add(depth)
}

/// Outcome of one probe: what the sandbox let the plugin do. A probe that got anything
/// says `ALLOWED`; the tests look for that word.
fn probe<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>, show: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => format!("{what}: ALLOWED ({})", show(v)),
        Err(e) => format!("{what}: denied ({e:?})"),
    }
}

fn probe_files() -> Vec<String> {
    let mut rows = Vec::new();
    rows.push(probe("read /etc/passwd", std::fs::read("/etc/passwd"), |b| {
        format!("{} bytes", b.len())
    }));
    rows.push(probe("read ../Cargo.toml", std::fs::read("../Cargo.toml"), |b| {
        format!("{} bytes", b.len())
    }));
    for dir in ["/", ".", ".."] {
        rows.push(probe(&format!("list {dir}"), std::fs::read_dir(dir), |d| {
            format!("{} entries", d.count())
        }));
    }
    rows.push(probe("stat /", std::fs::metadata("/"), |m| format!("{m:?}")));
    rows.push(probe(
        "create sluice-hostile-was-here",
        std::fs::File::create("sluice-hostile-was-here"),
        |_| "created".into(),
    ));
    let preopens = wasip2::filesystem::preopens::get_directories();
    let names: Vec<String> = preopens.iter().map(|(_, n)| n.clone()).collect();
    rows.push(probe(
        "preopened directories",
        if names.is_empty() { Err("none") } else { Ok(names) },
        |n| n.join(", "),
    ));
    rows
}

fn probe_env() -> Vec<String> {
    let mut rows = Vec::new();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    rows.push(probe(
        "std::env::vars",
        if vars.is_empty() { Err("none") } else { Ok(vars) },
        |v| format!("{v:?}"),
    ));
    let raw = wasip2::cli::environment::get_environment();
    rows.push(probe(
        "wasi get-environment",
        if raw.is_empty() { Err("none") } else { Ok(raw) },
        |v| format!("{v:?}"),
    ));
    let args = wasip2::cli::environment::get_arguments();
    rows.push(probe(
        "wasi get-arguments",
        if args.is_empty() { Err("none") } else { Ok(args) },
        |v| format!("{v:?}"),
    ));
    let cwd = wasip2::cli::environment::initial_cwd();
    rows.push(probe("wasi initial-cwd", cwd.ok_or("none"), |c| c));
    rows.push(probe("std::env::var HOME", std::env::var("HOME"), |v| v));
    rows
}

fn probe_net(port: u16) -> Vec<String> {
    use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let mut rows = Vec::new();
    rows.push(probe(
        &format!("std connect 127.0.0.1:{port}"),
        std::net::TcpStream::connect(("127.0.0.1", port)),
        |s| format!("{s:?}"),
    ));
    rows.push(probe(
        "std bind udp 127.0.0.1:0",
        std::net::UdpSocket::bind(("127.0.0.1", 0)),
        |s| format!("{s:?}"),
    ));
    rows.push(probe(
        "std resolve localhost",
        std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port)).map(|a| a.collect::<Vec<_>>()),
        |a| format!("{a:?}"),
    ));
    let network = wasip2::sockets::instance_network::instance_network();
    let raw = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4).and_then(|sock| {
        let addr = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (127, 0, 0, 1),
        });
        sock.start_connect(&network, addr)?;
        sock.subscribe().block();
        sock.finish_connect().map(|_| ())
    });
    rows.push(probe(&format!("wasi tcp connect 127.0.0.1:{port}"), raw, |_| {
        "connected".into()
    }));
    let lookup = wasip2::sockets::ip_name_lookup::resolve_addresses(&network, "localhost").and_then(|s| {
        s.subscribe().block();
        s.resolve_next_address()
    });
    rows.push(probe("wasi resolve localhost", lookup, |a| format!("{a:?}")));
    rows
}

fn probe_sleep() -> Vec<String> {
    let before = wasip2::clocks::monotonic_clock::now();
    std::thread::sleep(std::time::Duration::from_secs(3600));
    let after = wasip2::clocks::monotonic_clock::now();
    let moved = after.saturating_sub(before);
    let verdict = if moved >= 3_600_000_000_000 {
        "at least one hour"
    } else {
        "less than one hour"
    };
    vec![format!("sleep 3600 s: the monotonic clock moved {verdict}")]
}

impl Guest for Hostile {
    type Transformer = HostileTransformer;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "1.0.0".into(),
            description: "Misbehaves as its `mode` config key says (host test fixture).".into(),
            stateful: false,
        }
    }
}

impl HostileTransformer {
    fn get(&self, key: &str) -> Option<&str> {
        self.config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::InvalidConfig(format!("`{key}` must be a number, got `{v}`"))),
        }
    }

    fn log_flood(&self) {
        use std::io::Write;
        let evil = "forged\nERROR sluice: fake line \x1b[31mred\x1b[0m \u{202e}reversed\u{202c} bell\x07";
        let long = "x".repeat(100_000);
        for i in 0..200 {
            host::log(Level::Warn, &format!("log {i}: {evil} {long}"));
            let _ = writeln!(std::io::stderr(), "stderr {i}: {evil} {long}");
            let _ = writeln!(std::io::stdout(), "stdout {i}: {evil}");
        }
    }
}

impl GuestTransformer for HostileTransformer {
    fn open(config: Vec<(String, String)>, input_schema: Ipc, _state: Option<Vec<u8>>) -> Result<Transformer, Error> {
        let mode = config
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if output_kind(&mode).is_none() {
            let all: Vec<&str> = ECHO_MODES
                .iter()
                .chain(PROBE_MODES)
                .chain(STRING_MODES)
                .copied()
                .collect();
            return Err(Error::InvalidConfig(format!(
                "unknown `mode` `{mode}`; one of: {}",
                all.join(", ")
            )));
        }
        Ok(Transformer::new(HostileTransformer {
            mode,
            config,
            input_schema,
            calls: Cell::new(0),
        }))
    }

    fn output_schema(&self) -> Ipc {
        match output_kind(&self.mode) {
            Some(Output::Echo) | None => self.input_schema.clone(),
            Some(Output::Probe) => stream(&utf8_schema("seen"), None).unwrap_or_default(),
            Some(Output::Strings) => stream(&utf8_schema("s"), None).unwrap_or_default(),
        }
    }

    fn process(&self, batch: Ipc) -> Result<Ipc, Error> {
        let call = self.calls.get();
        self.calls.set(call + 1);
        match self.mode.as_str() {
            "spin" => {
                let n = self.number("iterations", 1_000_000)?;
                let mut x = batch.len() as u64;
                for i in 0..n {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
                if x == 42 {
                    return Err(Error::Internal("unlucky".into()));
                }
                Ok(batch)
            }
            "spin-wide" => {
                // Four independent additions per turn: bound by instruction throughput, not
                // by latency, so per-block metering shows here if anywhere.
                let n = self.number("iterations", 1_000_000)?;
                let (mut a, mut b, mut c, mut d) = (batch.len() as u64, 1u64, 2u64, 3u64);
                for i in 0..n {
                    a = a.wrapping_add(i);
                    b = b.wrapping_add(a ^ i);
                    c = c.wrapping_add(b >> 3);
                    d = d.wrapping_add(c | i);
                    // Keeps LLVM from turning the loop into a closed form.
                    // SAFETY: `d` is a live local.
                    unsafe { std::ptr::write_volatile(&mut d, d) };
                }
                if a ^ b ^ c ^ d == 42 {
                    return Err(Error::Internal("unlucky".into()));
                }
                Ok(batch)
            }
            "loop" => {
                let mut x = batch.len() as u64;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    // The volatile read keeps the loop from being optimized away.
                    // SAFETY: `x` is a live local.
                    if unsafe { std::ptr::read_volatile(&x) } == 0 {
                        break Ok(batch);
                    }
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    if hoard.len() == usize::MAX {
                        break Ok(batch);
                    }
                }
            }
            "recurse" => {
                let depth = descend(batch.len() as u64, u64::MAX);
                Err(Error::Internal(format!("recursion ended at {depth}")))
            }
            "huge-output" => Ok(vec![0u8; (1 << 30) + (1 << 20)]),
            "trap-after" => {
                if call < self.number("after", 1)? {
                    Ok(batch)
                } else {
                    trap()
                }
            }
            "panic" => panic!("hostile plugin panics on purpose in call {call}"),
            "random-huge" => {
                let bytes = wasip2::random::random::get_random_bytes(1 << 30);
                Err(Error::Internal(format!("got {} random bytes", bytes.len())))
            }
            "random-flood" => {
                let mut total = 0u64;
                loop {
                    total += wasip2::random::random::get_random_bytes(1 << 20).len() as u64;
                    if total == u64::MAX {
                        break Ok(batch);
                    }
                }
            }
            "kernel-flood" => {
                let data = vec![0u8; 1 << 20];
                let mut total = 0u64;
                loop {
                    let sums = bindings::sluice::kernels::hash::sha256_many(&data, &[1 << 20]).unwrap_or_default();
                    total += sums.len() as u64;
                    if total == u64::MAX {
                        break Ok(batch);
                    }
                }
            }
            "resources" => loop {
                std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(0));
            },
            "guest-resources" => loop {
                std::mem::forget(Transformer::new(HostileTransformer {
                    mode: "spin".into(),
                    config: Vec::new(),
                    input_schema: Vec::new(),
                    calls: Cell::new(0),
                }));
            },
            "log-flood" => {
                self.log_flood();
                Ok(batch)
            }
            "files" => strings("seen", probe_files()),
            "env" => strings("seen", probe_env()),
            "net" => {
                let port = u16::try_from(self.number("port", 9)?).map_err(internal)?;
                strings("seen", probe_net(port))
            }
            "sleep" => strings("seen", probe_sleep()),
            "random" => {
                let bytes = wasip2::random::random::get_random_bytes(32);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                strings("seen", vec![format!("random: {hex}")])
            }
            "bad-offsets" => {
                // Offsets of "aaaa", "bbbb", "cccc" are [0, 4, 8, 12]; point the third past the data.
                let mut bytes = strings("s", vec!["aaaa".into(), "bbbb".into(), "cccc".into()])?;
                let offsets: Vec<u8> = [0i32, 4, 8, 12].iter().flat_map(|v| v.to_le_bytes()).collect();
                let bad: Vec<u8> = [0i32, 4, 100, 12].iter().flat_map(|v| v.to_le_bytes()).collect();
                patch(&mut bytes, &offsets, &bad)?;
                Ok(bytes)
            }
            "bad-utf8" => {
                let mut bytes = strings("s", vec!["aaaa".into(), "bbbb".into(), "cccc".into()])?;
                patch(&mut bytes, b"bbbb", &[0xff, 0xfe, 0xc0, 0x80])?;
                Ok(bytes)
            }
            "wrong-rows" => {
                let schema = utf8_schema("s");
                let col: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
                // SAFETY: deliberately inconsistent (3-row column, 5-row batch): the host must
                // reject it. The writer only reads `num_rows` and each column's own length.
                let batch = unsafe { RecordBatch::new_unchecked(Arc::clone(&schema), vec![col], 5) };
                stream(&schema, Some(&batch))
            }
            "wrong-schema" => strings("t", vec!["declared `s`, returned `t`".into()]),
            "garbage" => Ok(b"this is not an Arrow IPC stream".to_vec()),
            other => Err(Error::Internal(format!("mode `{other}` has no `process`"))),
        }
    }

    fn finish(&self) -> Result<Ipc, Error> {
        match output_kind(&self.mode) {
            Some(Output::Echo) | None => Ok(self.input_schema.clone()),
            Some(Output::Probe) => stream(&utf8_schema("seen"), None),
            Some(Output::Strings) => stream(&utf8_schema("s"), None),
        }
    }

    fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(vec![])
    }
}

// Exports only exist in the wasm build: natively, the export names (with `:` and `@`)
// are not valid linker symbols, and `cargo test --workspace` links every member.
#[cfg(target_arch = "wasm32")]
bindings::export!(Hostile with_types_in bindings);
