use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::file::properties::WriterProperties;
use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::{FileWriter, StreamWriter};

use super::*;
use crate::error::ExitCode;

/// A batch of `n` rows: `id` (0..n), `name` and `score`, with some nulls.
fn sample(n: i64) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    let names: ArrayRef = Arc::new(StringArray::from_iter(
        (0..n).map(|i| (i % 4 != 3).then(|| format!("n{i}"))),
    ));
    let scores: ArrayRef = Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 2.0)));
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, false),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![ids, names, scores]).unwrap()
}

fn write_parquet(path: &Path, batches: &[RecordBatch], row_group_rows: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut w = ArrowWriter::try_new(fs::File::create(path).unwrap(), batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn write_ipc_file(path: &Path, batches: &[RecordBatch]) {
    let mut w = FileWriter::try_new(fs::File::create(path).unwrap(), &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

fn write_ipc_stream(path: &Path, batches: &[RecordBatch]) {
    let mut w = StreamWriter::try_new(fs::File::create(path).unwrap(), &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

fn read_all(paths: &[PathBuf], opts: &SourceOptions) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let source = Source::open(paths, opts)?;
    let schema = source.schema();
    let batches = source.collect::<Result<Vec<_>>>()?;
    Ok((schema, batches))
}

fn sizes(batches: &[RecordBatch]) -> Vec<usize> {
    batches.iter().map(RecordBatch::num_rows).collect()
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

/// The error of opening or reading `paths` to the end; panics if there is none.
fn read_error(paths: &[PathBuf], opts: &SourceOptions) -> Error {
    match read_all(paths, opts) {
        Ok((_, batches)) => panic!("expected an error, read {:?}", sizes(&batches)),
        Err(e) => e,
    }
}

fn assert_input_error(e: &Error, parts: &[&str]) {
    assert_eq!(e.exit_code(), ExitCode::BadInput, "{e}");
    let text = e.to_string();
    for part in parts {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

#[test]
fn parquet_round_trip_keeps_schema_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let batch = sample(10);
    write_parquet(&path, std::slice::from_ref(&batch), 1000);
    let (schema, batches) = read_all(std::slice::from_ref(&path), &SourceOptions::default()).unwrap();
    assert_eq!(schema.fields(), batch.schema().fields());
    assert_eq!(concat(&batches), batch);
    let source = Source::open(std::slice::from_ref(&path), &SourceOptions::default()).unwrap();
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(
        source.files(),
        &[InputFile {
            path,
            size,
            format: InputFormat::Parquet
        }]
    );
}

#[test]
fn parquet_keeps_view_and_decimal_types() {
    // The shape of tpchgen-cli output: decimal128(15,2) and string_view columns.
    let price: ArrayRef = Arc::new(
        Decimal128Array::from(vec![1234_i128, -5, 99_999])
            .with_precision_and_scale(15, 2)
            .unwrap(),
    );
    let comment: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "a much longer comment", "c"]));
    let batch = RecordBatch::try_from_iter([("l_extendedprice", price), ("l_comment", comment)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lineitem.parquet");
    write_parquet(&path, std::slice::from_ref(&batch), 1000);
    let (schema, batches) = read_all(&[path], &SourceOptions::default()).unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(15, 2));
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8View);
    assert_eq!(concat(&batches), batch);
}

#[test]
fn parquet_batches_follow_row_groups_and_batch_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_parquet(&path, &[sample(10)], 4);
    let opts = SourceOptions {
        batch_rows: 3,
        ..SourceOptions::default()
    };
    let (_, first) = read_all(std::slice::from_ref(&path), &opts).unwrap();
    let (_, second) = read_all(&[path], &opts).unwrap();
    // Row groups of 4, 4, 2 rows, each cut into batches of at most 3.
    assert_eq!(sizes(&first), [3, 1, 3, 1, 2]);
    assert_eq!(first, second);
    assert_eq!(concat(&first), sample(10));
}

#[test]
fn ipc_file_round_trip_slices_large_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.arrow");
    write_ipc_file(&path, &[sample(5), sample(2)]);
    let opts = SourceOptions {
        batch_rows: 2,
        ..SourceOptions::default()
    };
    let (schema, batches) = read_all(&[path], &opts).unwrap();
    assert_eq!(schema, sample(1).schema());
    assert_eq!(sizes(&batches), [2, 2, 1, 2]);
    assert_eq!(concat(&batches), concat(&[sample(5), sample(2)]));
}

#[test]
fn ipc_stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.arrows");
    write_ipc_stream(&path, &[sample(3), sample(4)]);
    let (_, batches) = read_all(std::slice::from_ref(&path), &SourceOptions::default()).unwrap();
    assert_eq!(sizes(&batches), [3, 4]);
    assert_eq!(concat(&batches), concat(&[sample(3), sample(4)]));
    assert_eq!(InputFormat::detect(&path).unwrap(), InputFormat::ArrowStream);
}

#[test]
fn csv_round_trip_infers_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "id,name,score,ok\n1,ann,0.5,true\n2,,1.5,false\n3,cy,2,\n").unwrap();
    let (schema, batches) = read_all(&[path], &SourceOptions::default()).unwrap();
    let types: Vec<_> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        [DataType::Int64, DataType::Utf8, DataType::Float64, DataType::Boolean]
    );
    let batch = concat(&batches);
    assert_eq!(batch.num_rows(), 3);
    let ok = batch.column(3).as_any().downcast_ref::<BooleanArray>().unwrap();
    assert_eq!(ok.iter().collect::<Vec<_>>(), [Some(true), Some(false), None]);
    let name = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(name.value(0), "ann");
}

#[test]
fn csv_options_and_given_schema_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.txt");
    fs::write(&path, "1;x\n2;y\n3;z\n").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int32, false),
        Field::new("b", DataType::Utf8, true),
    ]));
    let opts = SourceOptions {
        format: Some(InputFormat::Csv),
        csv_header: false,
        csv_delimiter: b';',
        schema: Some(Arc::clone(&schema)),
        batch_rows: 2,
        ..SourceOptions::default()
    };
    let (got, batches) = read_all(&[path], &opts).unwrap();
    assert_eq!(got, schema);
    assert_eq!(sizes(&batches), [2, 1]);
    assert_eq!(batches[0].schema(), schema);
}

#[test]
fn csv_inference_only_reads_infer_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "v\n1\n2\n3.5\n").unwrap();
    let narrow = SourceOptions {
        infer_rows: 2,
        ..SourceOptions::default()
    };
    let e = read_error(std::slice::from_ref(&path), &narrow);
    // `3.5` is on the fourth line of the file.
    assert_input_error(&e, &["t.csv", "3.5", "at line 4", "first 2 rows"]);
    let all = SourceOptions {
        infer_rows: 0,
        ..SourceOptions::default()
    };
    let (schema, _) = read_all(&[path], &all).unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Float64);
}

#[test]
fn csv_header_must_match_a_given_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "b,a\n1,2\n").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    let opts = SourceOptions {
        schema: Some(schema),
        ..SourceOptions::default()
    };
    let e = read_error(&[path], &opts);
    assert_input_error(&e, &["t.csv", "\"a\"", "file's order"]);
}

#[test]
fn csv_duplicate_header_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "a,a\n1,2\n").unwrap();
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.csv", "`a` twice"]);
}

#[test]
fn ndjson_round_trip_infers_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    fs::write(
        &path,
        "{\"a\": 1, \"b\": \"x\"}\n\n{\"a\": 2}\n{\"a\": 3, \"b\": \"z\"}",
    )
    .unwrap();
    let opts = SourceOptions {
        batch_rows: 2,
        ..SourceOptions::default()
    };
    let (schema, batches) = read_all(&[path], &opts).unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    assert_eq!(sizes(&batches), [2, 1]);
    let b = concat(&batches);
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(a.values(), &[1, 2, 3]);
    assert!(b.column(1).is_null(1));
}

#[test]
fn ndjson_inference_orders_fields_by_name_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    fs::write(&path, "{\"b\": 1, \"a\": \"x\"}\n{\"c\": true, \"a\": \"y\"}\n").unwrap();
    let (schema, _) = read_all(std::slice::from_ref(&path), &SourceOptions::default()).unwrap();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    // serde_json (without `preserve_order`) sorts keys: the order is stable across runs
    // and files. If this changes, inferred schemas (and their digests) change with it.
    assert_eq!(names, ["a", "b", "c"]);
    fs::write(&path, "{\"a\": 1}\n\n{\"a\": }\n").unwrap();
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.ndjson", "line 3, column 7"]);
}

#[test]
fn ndjson_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    fs::write(&path, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": }\n").unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    let opts = SourceOptions {
        schema: Some(schema),
        ..SourceOptions::default()
    };
    let e = read_error(&[path], &opts);
    assert_input_error(&e, &["t.ndjson", "line 3"]);
}

#[test]
fn ndjson_value_error_names_the_lines_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    fs::write(&path, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n{\"a\": \"x\"}\n").unwrap();
    let opts = SourceOptions {
        infer_rows: 2,
        batch_rows: 2,
        ..SourceOptions::default()
    };
    let e = read_error(std::slice::from_ref(&path), &opts);
    assert_input_error(&e, &["t.ndjson", "lines 3 to 4", "first 2 lines"]);
    // A field that first appears after the inference window is an error, not dropped.
    fs::write(&path, "{\"a\": 1}\n{\"a\": 2, \"b\": 1}\n").unwrap();
    let opts = SourceOptions {
        infer_rows: 1,
        ..SourceOptions::default()
    };
    let e = read_error(&[path], &opts);
    assert_input_error(&e, &["t.ndjson", "lines 1 to 2", "'b'"]);
}

#[test]
fn ndjson_truncated_last_record_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    fs::write(&path, "{\"a\": 1}\n{\"a\": 2").unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    let opts = SourceOptions {
        schema: Some(schema),
        ..SourceOptions::default()
    };
    let e = read_error(&[path], &opts);
    assert_input_error(&e, &["t.ndjson", "line 2", "truncated"]);
}

#[test]
fn directory_is_read_as_one_stream_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("b.csv"), "id,v\n3,c\n4,d\n").unwrap();
    fs::write(dir.path().join("a.csv"), "id,v\n1,a\n2,b\n").unwrap();
    fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    fs::write(dir.path().join(".hidden.csv"), "garbage").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub").join("c.csv"), "id,v\n9,z\n").unwrap();
    let source = Source::open(&[dir.path().to_path_buf()], &SourceOptions::default()).unwrap();
    let names: Vec<_> = source
        .files()
        .iter()
        .map(|f| f.path.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a.csv", "b.csv"]);
    assert!(source.files().iter().all(|f| f.format == InputFormat::Csv));
    let batches = source.collect::<Result<Vec<_>>>().unwrap();
    assert_eq!(sizes(&batches), [2, 2]);
    let ids = concat(&batches);
    let ids = ids.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values(), &[1, 2, 3, 4]);
}

#[test]
fn files_of_different_formats_with_one_schema_form_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (p, i) = (dir.path().join("1.parquet"), dir.path().join("2.arrow"));
    write_parquet(&p, &[sample(3)], 100);
    write_ipc_file(&i, &[sample(2)]);
    let (schema, batches) = read_all(&[p, i], &SourceOptions::default()).unwrap();
    assert!(batches.iter().all(|b| Arc::ptr_eq(b.schema_ref(), &schema)));
    assert_eq!(sizes(&batches), [3, 2]);
}

#[test]
fn schema_mismatch_names_both_files_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    fs::write(&a, "id,v\n1,2\n").unwrap();
    fs::write(&b, "id,v\n1,x\n").unwrap();
    let e = read_error(&[a.clone(), b.clone()], &SourceOptions::default());
    assert_input_error(&e, &["a.csv", "b.csv", "`v`", "Int64", "Utf8"]);

    fs::write(&b, "id,w\n1,2\n").unwrap();
    let e = read_error(&[a.clone(), b.clone()], &SourceOptions::default());
    assert_input_error(&e, &["a.csv", "b.csv", "`v`", "`w`"]);

    fs::write(&b, "id,v,x\n1,2,3\n").unwrap();
    let e = read_error(&[a, b], &SourceOptions::default());
    assert_input_error(&e, &["a.csv", "b.csv", "extra field `x`"]);
}

#[test]
fn truncated_parquet_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_parquet(&path, &[sample(100)], 1000);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.parquet", "truncated"]);
}

#[test]
fn corrupt_parquet_page_names_the_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(50))
        .set_compression(::parquet::basic::Compression::SNAPPY)
        .build();
    let batch = sample(100);
    let mut w = ArrowWriter::try_new(fs::File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    let meta = w.close().unwrap();
    // Overwrite the second row group's first column chunk (past its page header) with junk.
    let (start, len) = meta.row_group(1).column(0).byte_range();
    let mut bytes = fs::read(&path).unwrap();
    let from = (start + len / 2) as usize;
    for b in &mut bytes[from..(start + len) as usize] {
        *b = 0xAB;
    }
    fs::write(&path, bytes).unwrap();
    let mut source = Source::open(&[path], &SourceOptions::default()).unwrap();
    assert_eq!(source.next().unwrap().unwrap().num_rows(), 50);
    let e = source.next().unwrap().unwrap_err();
    assert_input_error(&e, &["t.parquet", "row group 1", "rows 50..100"]);
    assert!(source.next().is_none(), "the stream ends after an error");
}

#[test]
fn truncated_and_corrupt_ipc_files_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.arrow");
    write_ipc_file(&path, &[sample(100)]);
    let good = fs::read(&path).unwrap();

    fs::write(&path, &good[..good.len() - 20]).unwrap();
    let e = read_error(std::slice::from_ref(&path), &SourceOptions::default());
    assert_input_error(&e, &["t.arrow", "corrupt"]);

    // A record batch block in the footer that claims an enormous body must not be
    // allocated: find the block by its metadata length and inflate the body length.
    let footer_len = u32::from_le_bytes(good[good.len() - 10..good.len() - 6].try_into().unwrap());
    let footer_start = good.len() - 10 - footer_len as usize;
    let footer = root_as_footer(&good[footer_start..good.len() - 10]).unwrap();
    let block = footer.recordBatches().unwrap().get(0);
    let needle: Vec<u8> = [
        block.offset().to_le_bytes().as_slice(),
        &block.metaDataLength().to_le_bytes(),
    ]
    .concat();
    let at = good[footer_start..]
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let body_at = footer_start + at + 16;
    let mut bad = good.clone();
    bad[body_at..body_at + 8].copy_from_slice(&(1_i64 << 50).to_le_bytes());
    fs::write(&path, &bad).unwrap();
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.arrow", "beyond the end"]);
}

use arrow::ipc::root_as_footer;

#[test]
fn truncated_ipc_stream_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.arrows");
    write_ipc_stream(&path, &[sample(100), sample(100)]);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.arrows", "record batch 1"]);
}

#[test]
fn ragged_csv_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "a,b\n1,2\n3\n4,5\n").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    let opts = SourceOptions {
        schema: Some(schema),
        ..SourceOptions::default()
    };
    let e = read_error(std::slice::from_ref(&path), &opts);
    assert_input_error(&e, &["t.csv", "line 3", "expected 2 got 1", "delimiter"]);
    // Inference reads the same rows and fails the same way.
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["t.csv"]);
}

#[test]
fn invalid_utf8_in_csv_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, b"a,b\n1,ok\n2,\xff\xfe\n").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let opts = SourceOptions {
        schema: Some(schema),
        ..SourceOptions::default()
    };
    let e = read_error(&[path], &opts);
    assert_input_error(&e, &["t.csv", "UTF-8"]);
}

#[test]
fn empty_files_are_input_errors_unless_the_schema_is_given() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["e.parquet", "e.arrow", "e.arrows", "e.csv", "e.ndjson"] {
        let path = dir.path().join(name);
        fs::write(&path, "").unwrap();
        let e = read_error(&[path], &SourceOptions::default());
        assert_input_error(&e, &[name, "is empty"]);
    }
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    let opts = SourceOptions {
        schema: Some(Arc::clone(&schema)),
        ..SourceOptions::default()
    };
    let (got, batches) = read_all(&[dir.path().join("e.csv")], &opts).unwrap();
    assert_eq!(got, schema);
    assert!(batches.is_empty());
}

#[test]
fn missing_input_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.parquet");
    let e = read_error(&[path], &SourceOptions::default());
    assert_input_error(&e, &["input `", "nope.parquet` does not exist"]);
    let empty = tempfile::tempdir().unwrap();
    let e = read_error(&[empty.path().to_path_buf()], &SourceOptions::default());
    assert_input_error(&e, &["contains no data files"]);
}

#[test]
fn a_path_through_a_file_is_an_input_error() {
    // ENOTDIR: retrying cannot help, so it is bad input (exit 5), not an I/O error (exit 1).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.csv");
    fs::write(&file, "a\n1\n").unwrap();
    let e = read_error(&[file.join("child.csv")], &SourceOptions::default());
    assert_input_error(&e, &["child.csv` does not exist: a parent of it is not a directory"]);
}

#[test]
fn os_errors_map_to_exit_codes() {
    let p = Path::new("x.csv");
    let kind = |k: std::io::ErrorKind| os_error("read", p, std::io::Error::from(k)).exit_code();
    assert_eq!(kind(std::io::ErrorKind::NotFound), ExitCode::BadInput);
    assert_eq!(kind(std::io::ErrorKind::PermissionDenied), ExitCode::BadInput);
    assert_eq!(kind(std::io::ErrorKind::NotADirectory), ExitCode::BadInput);
    assert_eq!(kind(std::io::ErrorKind::Interrupted), ExitCode::Retryable);
    assert_eq!(kind(std::io::ErrorKind::StorageFull), ExitCode::Retryable);
    let e = os_error("list", p, std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    assert!(
        e.to_string().contains("cannot list input `x.csv`: permission denied"),
        "{e}"
    );
}

#[test]
fn source_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Source>();
}

#[test]
fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "a\n1\n").unwrap();
    let opts = SourceOptions {
        batch_rows: 0,
        ..SourceOptions::default()
    };
    assert_eq!(read_error(&[path], &opts).exit_code(), ExitCode::Usage);
    assert_eq!(read_error(&[], &SourceOptions::default()).exit_code(), ExitCode::Usage);
}

#[test]
fn detect_prefers_magic_bytes_over_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("really-parquet.csv");
    write_parquet(&p, &[sample(1)], 10);
    assert_eq!(InputFormat::detect(&p).unwrap(), InputFormat::Parquet);
    let i = dir.path().join("really-ipc.json");
    write_ipc_file(&i, &[sample(1)]);
    assert_eq!(InputFormat::detect(&i).unwrap(), InputFormat::ArrowFile);
    let s = dir.path().join("stream.arrow");
    write_ipc_stream(&s, &[sample(1)]);
    assert_eq!(InputFormat::detect(&s).unwrap(), InputFormat::ArrowStream);

    for (name, format) in [
        ("x.CSV", InputFormat::Csv),
        ("x.jsonl", InputFormat::Ndjson),
        ("x.json", InputFormat::Ndjson),
        ("x.ndjson", InputFormat::Ndjson),
        ("x.pq", InputFormat::Parquet),
        ("x.arrows", InputFormat::ArrowStream),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, "").unwrap();
        assert_eq!(InputFormat::detect(&path).unwrap(), format, "{name}");
    }

    let unknown = dir.path().join("data.bin");
    fs::write(&unknown, "1,2\n").unwrap();
    let e = InputFormat::detect(&unknown).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Usage);
    assert!(
        e.to_string().contains("data.bin") && e.to_string().contains("`--input-format`"),
        "{e}"
    );

    let gz = dir.path().join("data.csv.gz");
    fs::write(&gz, [0x1F, 0x8B, 8, 0]).unwrap();
    assert!(
        InputFormat::detect(&gz)
            .unwrap_err()
            .to_string()
            .contains("decompress it first")
    );
}

#[test]
fn format_names_parse_and_display() {
    for (text, format) in [
        ("parquet", InputFormat::Parquet),
        ("ipc", InputFormat::ArrowFile),
        ("arrow", InputFormat::ArrowFile),
        ("arrows", InputFormat::ArrowStream),
        ("CSV", InputFormat::Csv),
        ("ndjson", InputFormat::Ndjson),
        ("jsonl", InputFormat::Ndjson),
        ("json", InputFormat::Ndjson),
    ] {
        let parsed: InputFormat = text.parse().unwrap();
        assert_eq!(parsed, format);
        assert_eq!(parsed.to_string().parse::<InputFormat>().unwrap(), format);
    }
    let e = "xlsx".parse::<InputFormat>().unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Usage);
    assert!(
        e.to_string().contains("`xlsx`") && e.to_string().contains("`arrows`"),
        "{e}"
    );
}

/// Flipping bytes anywhere in a file must give errors, never a panic or an abort.
#[test]
fn corrupted_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    type Writer = fn(&Path);
    let cases: [(&str, Writer); 3] = [
        ("f.parquet", |p| write_parquet(p, &[sample(64)], 16)),
        ("f.arrow", |p| write_ipc_file(p, &[sample(32), sample(32)])),
        ("f.arrows", |p| write_ipc_stream(p, &[sample(32), sample(32)])),
    ];
    for (name, write) in cases {
        let path = dir.path().join(name);
        write(&path);
        let good = fs::read(&path).unwrap();
        let mut seen_errors = 0;
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x5A;
            fs::write(&path, &bad).unwrap();
            let result = std::panic::catch_unwind(|| read_all(std::slice::from_ref(&path), &SourceOptions::default()));
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    seen_errors += 1;
                    assert!(e.to_string().contains(name), "{e}");
                }
                Err(_) => panic!("{name}: panicked with byte {i} flipped"),
            }
        }
        assert!(seen_errors > 0, "{name}: no corruption was detected");
    }
}
