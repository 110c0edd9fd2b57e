use std::fs;
use std::path::Path;
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::basic::{Compression as ParquetCompression, Encoding, ZstdLevel};
use ::parquet::file::reader::{FileReader as _, SerializedFileReader};
use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, StringViewArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::FileReader;

use super::*;
use crate::error::ExitCode;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, true),
        Field::new("note", DataType::Utf8View, true),
    ]))
}

/// Rows `from..to`; `tag` repeats a few values so dictionary encoding pays.
fn batch(from: i64, to: i64) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(from..to));
    let tags: ArrayRef = Arc::new(StringArray::from_iter(
        (from..to).map(|i| (i % 5 != 0).then(|| format!("t{}", i % 3))),
    ));
    let notes: ArrayRef = Arc::new(StringViewArray::from_iter_values(
        (from..to).map(|i| format!("note number {i}")),
    ));
    RecordBatch::try_new(schema(), vec![ids, tags, notes]).unwrap()
}

/// Write `batches` to `path` and return what the sink reported.
fn write(path: &Path, format: OutputFormat, opts: &WriterOptions, batches: &[RecordBatch]) -> SinkStats {
    let file = fs::File::create(path).unwrap();
    let mut sink = create_sink(file, path, schema(), format, opts).unwrap();
    for b in batches {
        sink.write(b).unwrap();
    }
    sink.finish().unwrap()
}

fn opts(compression: &str) -> WriterOptions {
    WriterOptions {
        compression: compression.to_string(),
        ..WriterOptions::default()
    }
}

fn create_error(format: OutputFormat, opts: &WriterOptions) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = fs::File::create(&path).unwrap();
    match create_sink(file, &path, schema(), format, opts) {
        Ok(_) => panic!("expected {opts:?} to be rejected for {format}"),
        Err(e) => e,
    }
}

#[test]
fn parquet_round_trip_reports_rows_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let batches = [batch(0, 100), batch(100, 150)];
    let stats = write(&path, OutputFormat::Parquet, &WriterOptions::default(), &batches);
    assert_eq!(
        stats,
        SinkStats {
            rows: 150,
            bytes: fs::metadata(&path).unwrap().len(),
            digest: crate::digest::blake3_file(&path).unwrap(),
        }
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let read: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let read = arrow::compute::concat_batches(&schema(), &read).unwrap();
    assert_eq!(read, arrow::compute::concat_batches(&schema(), &batches).unwrap());
    // The stored Arrow schema brings back the view type, not plain Utf8.
    assert_eq!(read.schema().field(2).data_type(), &DataType::Utf8View);
}

#[test]
fn ipc_round_trip_with_each_codec() {
    let dir = tempfile::tempdir().unwrap();
    let batches = [batch(0, 100), batch(100, 130)];
    for codec in ["none", "zstd", "zstd(3)", "lz4", "zstd(1)"] {
        let path = dir.path().join("out.arrow");
        let stats = write(&path, OutputFormat::Ipc, &opts(codec), &batches);
        assert_eq!(
            stats,
            SinkStats {
                rows: 130,
                bytes: fs::metadata(&path).unwrap().len(),
                digest: crate::digest::blake3_file(&path).unwrap(),
            }
        );
        let reader = FileReader::try_new(fs::File::open(&path).unwrap(), None).unwrap();
        assert_eq!(reader.schema(), schema());
        let read: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(read, batches, "{codec}");
    }
}

#[test]
fn ipc_compression_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, packed) = (dir.path().join("a.arrow"), dir.path().join("b.arrow"));
    let batches = [batch(0, 5000)];
    let plain = write(&plain, OutputFormat::Ipc, &opts("none"), &batches).bytes;
    let packed = write(&packed, OutputFormat::Ipc, &opts("zstd"), &batches).bytes;
    assert!(packed * 2 < plain, "zstd {packed} vs none {plain}");
}

#[test]
fn parquet_options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let cases = [
        ("none", ParquetCompression::UNCOMPRESSED),
        ("snappy", ParquetCompression::SNAPPY),
        ("zstd(3)", ParquetCompression::ZSTD(ZstdLevel::default())),
        ("lz4", ParquetCompression::LZ4_RAW),
        ("gzip(9)", ParquetCompression::GZIP(Default::default())),
        ("brotli(5)", ParquetCompression::BROTLI(Default::default())),
    ];
    for (codec, expected) in cases {
        for dictionary in [true, false] {
            let o = WriterOptions {
                compression: codec.to_string(),
                row_group_rows: 40,
                dictionary,
            };
            write(&path, OutputFormat::Parquet, &o, &[batch(0, 70), batch(70, 100)]);
            let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
            let meta = reader.metadata();
            let groups: Vec<_> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
            assert_eq!(groups, [40, 40, 20], "{codec}");
            for g in meta.row_groups() {
                for c in g.columns() {
                    // The footer records the codec, not its level: compare codecs only.
                    assert_eq!(
                        std::mem::discriminant(&c.compression()),
                        std::mem::discriminant(&expected),
                        "{codec}"
                    );
                }
                let tag = g.column(1);
                let dict = tag.encodings().any(|e| e == Encoding::RLE_DICTIONARY);
                assert_eq!(dict, dictionary, "{codec}: dictionary={dictionary}");
            }
        }
    }
}

#[test]
fn compression_level_changes_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let batches = [batch(0, 20_000)];
    write(&a, OutputFormat::Parquet, &opts("gzip(1)"), &batches);
    write(&b, OutputFormat::Parquet, &opts("gzip(9)"), &batches);
    assert_ne!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn writes_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for (format, codec) in [
        (OutputFormat::Parquet, "zstd(1)"),
        (OutputFormat::Parquet, "snappy"),
        (OutputFormat::Ipc, "zstd"),
        (OutputFormat::Ipc, "lz4"),
    ] {
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let batches = [batch(0, 300), batch(300, 1000)];
        write(&a, format, &opts(codec), &batches);
        write(&b, format, &opts(codec), &batches);
        let (a, b) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert!(!a.is_empty());
        assert!(a == b, "{format} {codec}: two writes differ");
    }
}

#[test]
fn invalid_compression_is_a_usage_error_listing_valid_values() {
    for bad in [
        "zip",
        "zstd(0)",
        "zstd(23)",
        "gzip(10)",
        "brotli(12)",
        "lz4(1)",
        "zstd(",
        "none(1)",
        "",
    ] {
        let e = create_error(OutputFormat::Parquet, &opts(bad));
        assert_eq!(e.exit_code(), ExitCode::Usage, "{bad}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("`{bad}`")) && text.contains("`zstd(N)`"),
            "{text}"
        );
        assert!(text.contains("`snappy`") && text.contains("`brotli(N)`"), "{text}");
    }
    for bad in ["snappy", "gzip", "brotli(3)"] {
        let e = create_error(OutputFormat::Ipc, &opts(bad));
        assert_eq!(e.exit_code(), ExitCode::Usage, "{bad}: {e}");
        let text = e.to_string();
        assert!(text.contains("Arrow IPC") && text.contains("`lz4`"), "{text}");
        assert!(!text.contains("`gzip(N)`"), "{text}");
    }
    let e = create_error(
        OutputFormat::Parquet,
        &WriterOptions {
            row_group_rows: 0,
            ..WriterOptions::default()
        },
    );
    assert_eq!(e.exit_code(), ExitCode::Usage);
    assert!(e.to_string().contains("row group"), "{e}");
}

#[test]
fn codec_names_are_case_and_space_insensitive() {
    assert_eq!(
        Codec::parse(" ZSTD( 7 ) ", OutputFormat::Parquet).unwrap(),
        Codec::Zstd(7)
    );
    assert_eq!(Codec::parse("zstd", OutputFormat::Ipc).unwrap(), Codec::Zstd(1));
    assert_eq!(Codec::parse("gzip", OutputFormat::Parquet).unwrap(), Codec::Gzip(6));
    assert_eq!(Codec::parse("uncompressed", OutputFormat::Ipc).unwrap(), Codec::None);
}

#[test]
fn a_batch_with_another_schema_is_an_input_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for format in [OutputFormat::Parquet, OutputFormat::Ipc] {
        let path = dir.path().join("out");
        let file = fs::File::create(&path).unwrap();
        let mut sink = create_sink(file, &path, schema(), format, &WriterOptions::default()).unwrap();
        let good = batch(0, 3);

        // `id` as Int32 instead of Int64.
        let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let wrong_type = RecordBatch::try_from_iter([
            ("id", ids),
            ("tag", Arc::clone(good.column(1))),
            ("note", Arc::clone(good.column(2))),
        ])
        .unwrap();
        let e = sink.write(&wrong_type).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::BadInput);
        assert!(e.to_string().contains("`id`") && e.to_string().contains("Int32"), "{e}");

        let renamed = RecordBatch::try_from_iter([
            ("id", Arc::clone(good.column(0))),
            ("label", Arc::clone(good.column(1))),
            ("note", Arc::clone(good.column(2))),
        ])
        .unwrap();
        let e = sink.write(&renamed).unwrap_err();
        assert!(
            e.to_string().contains("`label`") && e.to_string().contains("`tag`"),
            "{e}"
        );

        let e = sink.write(&good.project(&[0, 1]).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("2 columns") && e.to_string().contains("has 3"),
            "{e}"
        );

        // Nulls into the non-nullable `id`.
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let nulls = RecordBatch::try_from_iter([
            ("id", ids),
            ("tag", Arc::clone(good.column(1))),
            ("note", Arc::clone(good.column(2))),
        ])
        .unwrap();
        let e = sink.write(&nulls).unwrap_err();
        assert!(e.to_string().contains("`id` holds nulls"), "{e}");

        // A batch that matches but carries its own schema object (nullable `id`) is fine.
        let relaxed = RecordBatch::try_from_iter([
            ("id", Arc::clone(good.column(0))),
            ("tag", Arc::clone(good.column(1))),
            ("note", Arc::clone(good.column(2))),
        ])
        .unwrap();
        sink.write(&relaxed).unwrap();
        assert_eq!(sink.finish().unwrap().rows, 3);
    }
}

#[test]
fn empty_output_is_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let stats = write(&path, OutputFormat::Parquet, &WriterOptions::default(), &[]);
    assert_eq!(stats.rows, 0);
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.schema().fields(), schema().fields());
}

#[test]
fn format_names_parse_and_display() {
    for (text, format, ext) in [
        ("parquet", OutputFormat::Parquet, "parquet"),
        ("ipc", OutputFormat::Ipc, "arrow"),
        ("Arrow", OutputFormat::Ipc, "arrow"),
    ] {
        let parsed: OutputFormat = text.parse().unwrap();
        assert_eq!(parsed, format);
        assert_eq!(parsed.extension(), ext);
        assert_eq!(parsed.to_string().parse::<OutputFormat>().unwrap(), format);
    }
    let e = "csv".parse::<OutputFormat>().unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Usage);
    assert!(
        e.to_string().contains("`csv`") && e.to_string().contains("`parquet`"),
        "{e}"
    );
}

/// The digest a sink reports is hashed as it writes; it must be the digest of the file's
/// bytes, also when the file is many times the 1 MiB write buffer (block flushes, writes
/// larger than the buffer that go straight through).
#[test]
fn reported_digest_is_the_file_digest_for_files_larger_than_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..6).map(|k| batch(k * 60_000, (k + 1) * 60_000)).collect();
    for (format, codec) in [
        (OutputFormat::Parquet, "none"),
        (OutputFormat::Parquet, "snappy"),
        (OutputFormat::Ipc, "none"),
    ] {
        let path = dir.path().join(format!("big-{codec}.{}", format.extension()));
        let stats = write(&path, format, &opts(codec), &batches);
        let len = fs::metadata(&path).unwrap().len();
        assert!(len > 3 << 20, "{format} {codec}: only {len} bytes, not several buffers");
        assert_eq!(stats.bytes, len, "{format} {codec}");
        assert_eq!(
            stats.digest,
            crate::digest::blake3_file(&path).unwrap(),
            "{format} {codec}"
        );
    }
}
