//! What CPU limits cost: the same plugin calls on engines with no CPU metering, fuel
//! metering, epoch interruption, and both. Groups are named `limits/plugin/rows`.
//!
//! The engines are built here rather than through `Runtime` so the unmetered baseline
//! can be measured; their settings otherwise match `engine.rs` (NaN canonicalization,
//! deterministic relaxed SIMD, Cranelift speed). `spin` (a loop bound by multiply latency)
//! and `spin-wide` (four independent additions per turn, bound by throughput: the worst
//! case for per-block metering) are tight loops and nothing else; `mask` hashes strings; `filter` and `derive`
//! are the benchmark jobs' kernels plus the IPC round trip.
//!
//! Not criterion: on a shared 2-core machine its wall-time samples mostly measured the
//! neighbours (the unmetered engine came out slower than the metered ones). Instead each
//! plugin's four engines run the same call in interleaved rounds, timed with the thread's
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`), and the minimum over the rounds is compared.
//! `LIMITS_ROUNDS` sets the number of rounds (default 30).
//!
//! Run: `cargo bench -p sluice-host --bench limits`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
// The 1.0 bindings: the bench calls only 1.0 functions, which 1.1 plugins export too
// (wasmtime finds their `transform@1.1.0` export semver-compatibly).
use sluice_host::abi::v1_0::{TransformPlugin, TransformPluginPre};
use sluice_host::sandbox::PluginState;
use sluice_host::{Determinism, Limits};
use sluice_test_artifacts as art;
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, OptLevel, Store};

#[derive(Clone, Copy)]
enum Meter {
    None,
    Fuel,
    Epoch,
    Both,
}

impl Meter {
    fn name(self) -> &'static str {
        match self {
            Meter::None => "none",
            Meter::Fuel => "fuel",
            Meter::Epoch => "epoch",
            Meter::Both => "fuel+epoch",
        }
    }
    fn fuel(self) -> bool {
        matches!(self, Meter::Fuel | Meter::Both)
    }
    fn epoch(self) -> bool {
        matches!(self, Meter::Epoch | Meter::Both)
    }
}

fn engine(m: Meter) -> Engine {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .shared_memory(false)
        .consume_fuel(m.fuel())
        .epoch_interruption(m.epoch())
        .cranelift_opt_level(OptLevel::Speed);
    Engine::new(&c).unwrap()
}

struct Instance {
    store: Store<PluginState>,
    plugin: TransformPlugin,
    handle: ResourceAny,
}

impl Instance {
    fn open(m: Meter, wasm: &str, config: &[(String, String)], schema: &Schema) -> Instance {
        let engine = engine(m);
        let mut linker: Linker<PluginState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        sluice_host::abi::add_to_linker(&mut linker).unwrap();
        let component = Component::from_file(&engine, Path::new(wasm)).unwrap();
        let pre = TransformPluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let mut store = Store::new(
            &engine,
            PluginState::new("bench", &Limits::default(), &Determinism::default()),
        );
        if m.fuel() {
            store.set_fuel(u64::MAX).unwrap();
        }
        if m.epoch() {
            // Never reached (nothing increments the epoch): this measures the checks alone.
            store.set_epoch_deadline(u64::MAX);
        }
        let plugin = pre.instantiate(&mut store).unwrap();
        let schema_ipc = sluice_host::ipc::encode_schema(schema);
        let handle = plugin
            .sluice_transform_transform()
            .transformer()
            .call_open(&mut store, config, &schema_ipc, None)
            .unwrap()
            .unwrap();
        Instance { store, plugin, handle }
    }

    fn process(&mut self, bytes: &Vec<u8>) -> usize {
        let t = self.plugin.sluice_transform_transform().transformer();
        t.call_process(&mut self.store, self.handle, bytes)
            .unwrap()
            .unwrap()
            .len()
    }
}

fn lineitem_like(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_quantity", DataType::Decimal128(15, 2), false),
        Field::new("l_extendedprice", DataType::Decimal128(15, 2), false),
        Field::new("l_discount", DataType::Decimal128(15, 2), false),
        Field::new("l_comment", DataType::Utf8, false),
    ]));
    let mut x: u64 = 42;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        x >> 33
    };
    let dec = |v: Vec<i128>| Decimal128Array::from(v).with_precision_and_scale(15, 2).unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| i * 4))),
        Arc::new(dec((0..rows).map(|_| (next() % 50 + 1) as i128 * 100).collect())),
        Arc::new(dec((0..rows).map(|_| (next() % 10_000_000) as i128).collect())),
        Arc::new(dec((0..rows).map(|_| (next() % 11) as i128).collect())),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("carefully final deposits {i} haggle slyly")),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn limits() {
    let rows = 65_536;
    let rounds: usize = std::env::var("LIMITS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let batch = lineitem_like(rows);
    let bytes = sluice_host::ipc::encode_batches(&batch.schema(), std::slice::from_ref(&batch)).unwrap();
    let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    type Config = Vec<(String, String)>;
    let jobs: Vec<(&str, &str, Config)> = vec![
        (
            "spin",
            art::HOSTILE,
            vec![("iterations".into(), "20000000".into()), ("mode".into(), "spin".into())],
        ),
        (
            "spin-wide",
            art::HOSTILE,
            vec![
                ("iterations".into(), "50000000".into()),
                ("mode".into(), "spin-wide".into()),
            ],
        ),
        ("mask", art::MASK, kv("columns", "l_comment")),
        (
            "filter",
            art::FILTER,
            kv("predicate", "l_discount between 0.05 and 0.07 and l_quantity < 24"),
        ),
        (
            "derive",
            art::DERIVE,
            vec![
                ("expr".into(), "l_extendedprice * l_discount".into()),
                ("name".into(), "revenue".into()),
            ],
        ),
    ];
    let meters = [Meter::None, Meter::Fuel, Meter::Epoch, Meter::Both];
    println!(
        "thread CPU time per call, {rounds} interleaved rounds; min and median in ms, overhead of the min vs `none`"
    );
    println!(
        "{:<24} {:>11} {:>9} {:>9} {:>9}",
        "group", "mode", "min", "median", "overhead"
    );
    for (name, wasm, config) in &jobs {
        let mut insts: Vec<Instance> = meters
            .iter()
            .map(|&m| Instance::open(m, wasm, config, &batch.schema()))
            .collect();
        for inst in &mut insts {
            inst.process(&bytes); // warm-up
        }
        let mut times = vec![Vec::with_capacity(rounds); meters.len()];
        for round in 0..rounds {
            // Rotate the order so no mode always runs right after another.
            for k in 0..meters.len() {
                let i = (round + k) % meters.len();
                let t0 = thread_cpu_ns();
                std::hint::black_box(insts[i].process(&bytes));
                times[i].push(thread_cpu_ns() - t0);
            }
        }
        let stats: Vec<(f64, f64)> = times
            .iter_mut()
            .map(|t| {
                t.sort_unstable();
                (t[0] as f64 / 1e6, t[t.len() / 2] as f64 / 1e6)
            })
            .collect();
        for (m, (min, median)) in meters.iter().zip(&stats) {
            let overhead = (min / stats[0].0 - 1.0) * 100.0;
            println!(
                "{:<24} {:>11} {:>9.2} {:>9.2} {:>8.1}%",
                format!("limits/{name}/{rows}"),
                m.name(),
                min,
                median,
                overhead
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to configure.
    limits();
}
