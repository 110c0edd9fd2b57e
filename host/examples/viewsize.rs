use arrow::array::{Array, AsArray};
fn main() {
    let file = std::fs::File::open("/tmp/tpch-sf1/lineitem.parquet").unwrap();
    for rows in [8192usize, 65536] {
        let file = file.try_clone().unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .with_batch_size(rows)
            .build()
            .unwrap();
        for (i, b) in reader.into_iter().take(3).enumerate() {
            let b = b.unwrap();
            let c = b.column_by_name("l_comment").unwrap();
            println!("{rows} batch {i} type {}", c.data_type());
            if let Some(a) = c.as_string_view_opt() {
                let held: usize = a.data_buffers().iter().map(|b| b.len()).sum();
                println!(
                    "  buffers {} held {} used {}",
                    a.data_buffers().len(),
                    held,
                    a.total_buffer_bytes_used()
                );
            }
            let cc = arrow::compute::concat_batches(&b.schema(), [&b]).unwrap();
            let a = cc.column_by_name("l_comment").unwrap().as_string_view();
            let held: usize = a.data_buffers().iter().map(|b| b.len()).sum();
            println!(
                "  concat: buffers {} held {} used {}",
                a.data_buffers().len(),
                held,
                a.total_buffer_bytes_used()
            );
        }
    }
}
