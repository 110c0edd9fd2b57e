//! Transform stage alone (batches already in memory): a wasm plugin through the sandbox vs
//! the same logic as a native arrow-rs kernel, per batch size. Also plugin instantiation and
//! data digests. Groups are named `stage/plugin/rows`.
//!
//! Run: `cargo bench -p sluice-host --bench transform`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, Scalar};
use arrow::compute::kernels::cmp;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_host::{Runtime, RuntimeOptions};
use sluice_test_artifacts as art;

fn lineitem_like(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_quantity", DataType::Decimal128(15, 2), false),
        Field::new("l_extendedprice", DataType::Decimal128(15, 2), false),
        Field::new("l_discount", DataType::Decimal128(15, 2), false),
    ]));
    let mut x: u64 = 42;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        x >> 33
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| i * 4))),
        Arc::new(
            Decimal128Array::from_iter_values((0..rows).map(|_| (next() % 50 + 1) as i128 * 100))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(
            Decimal128Array::from_iter_values((0..rows).map(|_| (next() % 10_000_000) as i128))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(
            Decimal128Array::from_iter_values((0..rows).map(|_| (next() % 11) as i128))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn native_filter(b: &RecordBatch) -> RecordBatch {
    let dec = |v: i128| Scalar::new(Decimal128Array::from(vec![v]).with_precision_and_scale(15, 2).unwrap());
    let disc = b.column(3);
    let qty = b.column(1);
    let m1: BooleanArray = cmp::gt_eq(disc, &dec(5)).unwrap();
    let m2 = cmp::lt_eq(disc, &dec(7)).unwrap();
    let m3 = cmp::lt(qty, &dec(2400)).unwrap();
    let m = arrow::compute::and(&arrow::compute::and(&m1, &m2).unwrap(), &m3).unwrap();
    arrow::compute::filter_record_batch(b, &m).unwrap()
}

fn transform(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeOptions::with_default_cache()).unwrap();
    let filter = rt.load_plugin(Path::new(art::FILTER)).unwrap();
    let passthrough = rt.load_plugin(Path::new(art::PASSTHROUGH)).unwrap();
    let config = vec![(
        "predicate".to_string(),
        "l_discount between 0.05 and 0.07 and l_quantity < 24".to_string(),
    )];
    for rows in [8_192usize, 65_536, 262_144] {
        let b = lineitem_like(rows);
        let mut g = c.benchmark_group(format!("transform/filter/{rows}"));
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_function(BenchmarkId::new("native", rows), |bench| {
            bench.iter(|| native_filter(&b))
        });
        let mut t = filter.open(&config, &b.schema(), None, &Default::default()).unwrap();
        g.bench_function(BenchmarkId::new("wasm", rows), |bench| {
            bench.iter(|| t.process(&b).unwrap())
        });
        g.finish();
        let mut g = c.benchmark_group(format!("transform/passthrough/{rows}"));
        g.throughput(Throughput::Elements(rows as u64));
        let mut t = passthrough.open(&[], &b.schema(), None, &Default::default()).unwrap();
        g.bench_function(BenchmarkId::new("wasm", rows), |bench| {
            bench.iter(|| t.process(&b).unwrap())
        });
        g.finish();
    }
    let b = lineitem_like(8);
    c.bench_function("instantiate/filter", |bench| {
        bench.iter(|| filter.open(&config, &b.schema(), None, &Default::default()).unwrap())
    });
    let big = lineitem_like(1 << 20);
    let mut g = c.benchmark_group("digest/batch/1048576");
    g.throughput(Throughput::Bytes(big.get_array_memory_size() as u64));
    g.bench_function("data-digest", |bench| {
        bench.iter(|| {
            let mut d = sluice_host::digest::DataDigest::new(&big.schema());
            d.update(&big);
            d.finish()
        })
    });
    g.finish();
}

/// The first `rows` rows of TPC-H lineitem (`SLUICE_BENCH_DATA`, default
/// `/tmp/tpch-sf1/lineitem.parquet`; see `benches/compare.sh` to generate it), in one batch.
fn lineitem(rows: usize) -> Option<RecordBatch> {
    let path = std::env::var("SLUICE_BENCH_DATA").unwrap_or_else(|_| "/tmp/tpch-sf1/lineitem.parquet".into());
    let file = std::fs::File::open(&path).ok()?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .ok()?
        .with_batch_size(rows)
        .build()
        .ok()?;
    let batch = reader.into_iter().next()?.ok()?;
    // One allocation per column, as a decoded batch that arrived in one piece would have.
    Some(arrow::compute::concat_batches(&batch.schema(), [&batch]).unwrap())
}

/// A plugin's own logic called natively (no sandbox, no IPC), as a chain.
struct NativeChain(Vec<Box<dyn FnMut(RecordBatch) -> Vec<RecordBatch>>>);

impl NativeChain {
    fn run(&mut self, b: &RecordBatch) -> usize {
        let mut batches = vec![b.clone()];
        for stage in &mut self.0 {
            batches = batches.into_iter().flat_map(&mut *stage).collect();
        }
        batches.iter().map(|b| b.num_rows()).sum()
    }
}

fn native<T: sluice_sdk::Transform + 'static>(
    config: &[(&str, &str)],
    schema: &SchemaRef,
) -> (Box<dyn FnMut(RecordBatch) -> Vec<RecordBatch>>, SchemaRef) {
    let config = sluice_sdk::Config::new(config.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut t = T::open(&config, Arc::clone(schema), None).unwrap();
    let out = t.output_schema();
    (Box::new(move |b| t.process(b).unwrap()), out)
}

/// The benchmark jobs' transform stage on real lineitem batches: the plugins' own code
/// called natively (for plugins with a column plan, the SDK runs the plan: project, the
/// plugin's kernels, then the same assembly the host does) vs the same plugins as wasm
/// through the sandbox.
fn jobs(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeOptions::with_default_cache()).unwrap();
    let load = |p: &str| rt.load_plugin(Path::new(p)).unwrap();
    let (filter, derive, mask, passthrough, echo) = (
        load(art::FILTER),
        load(art::DERIVE),
        load(art::MASK),
        load(art::PASSTHROUGH),
        load(art::ECHO),
    );
    let b1_filter = [("predicate", "l_discount between 0.05 and 0.07 and l_quantity < 24")];
    let b1_derive = [
        ("name", "revenue"),
        ("expr", "l_extendedprice * l_discount"),
        ("type", "decimal(18,4)"),
    ];
    let b2 = [("columns", "l_comment")];
    let owned = |c: &[(&str, &str)]| {
        c.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    for rows in [8_192usize, 65_536, 262_144] {
        let Some(b) = lineitem(rows) else {
            eprintln!("no lineitem data: skipping the job benchmarks (run benches/compare.sh once)");
            return;
        };
        let schema = b.schema();
        for job in ["b1", "b2", "b3"] {
            let mut g = c.benchmark_group(format!("transform/{job}/{rows}"));
            g.throughput(Throughput::Elements(rows as u64));
            let mut chain = match job {
                "b1" => {
                    let (f, s) = native::<filter::Filter>(&b1_filter, &schema);
                    let (d, _) = native::<derive::Derive>(&b1_derive, &s);
                    NativeChain(vec![f, d])
                }
                "b2" => NativeChain(vec![native::<mask::Mask>(&b2, &schema).0]),
                // `passthrough` returns its input batch: natively, that is the identity.
                _ => NativeChain(vec![Box::new(|b| vec![b])]),
            };
            g.bench_function("native", |bench| bench.iter(|| chain.run(&b)));
            let mut stages = match job {
                "b1" => {
                    let f = filter
                        .open(&owned(&b1_filter), &schema, None, &Default::default())
                        .unwrap();
                    let d = derive
                        .open(&owned(&b1_derive), f.output_schema(), None, &Default::default())
                        .unwrap();
                    vec![f, d]
                }
                "b2" => vec![mask.open(&owned(&b2), &schema, None, &Default::default()).unwrap()],
                _ => vec![passthrough.open(&[], &schema, None, &Default::default()).unwrap()],
            };
            g.bench_function("wasm", |bench| {
                bench.iter(|| {
                    let mut batches = vec![b.clone()];
                    for t in &mut stages {
                        batches = batches.iter().flat_map(|b| t.process(b).unwrap()).collect();
                    }
                    batches.iter().map(|b| b.num_rows()).sum::<usize>()
                })
            });
            if job == "b3" {
                // The whole-batch path of ABI 1.0 (`echo` returns its input bytes), for the
                // cost of the boundary itself that column plans avoid.
                let mut whole = echo.open(&[], &schema, None, &Default::default()).unwrap();
                g.bench_function("wasm-abi-1.0-echo", |bench| {
                    bench.iter(|| whole.process(&b).unwrap().iter().map(|b| b.num_rows()).sum::<usize>())
                });
            }
            g.finish();
        }
    }
    if let Some(big) = lineitem(1 << 20) {
        let mut g = c.benchmark_group("digest/lineitem/1048576");
        g.throughput(Throughput::Bytes(big.get_array_memory_size() as u64));
        g.bench_function("data-digest", |bench| {
            bench.iter(|| {
                let mut d = sluice_host::digest::DataDigest::new(&big.schema());
                d.update(&big);
                d.finish()
            })
        });
        // The order-independent digest of distributed records: one keyed hash per row.
        g.bench_function("rowset-digest", |bench| {
            bench.iter(|| {
                let mut d = sluice_host::digest::RowSetDigest::new(&big.schema());
                d.update(&big);
                d.finish()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, transform, jobs);
criterion_main!(benches);
