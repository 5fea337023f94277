//! The Parquet outputs opened by real peers: pyarrow and DuckDB from Python, installed by the test command.

use crate::common::{default_lake, profiled_records, python};

#[test]
fn pyarrow_reads_segments_with_the_expected_schema() {
    let folder = default_lake().join("marts/segments");
    let script = format!(
        "import pyarrow.parquet as pq\n\
         t = pq.read_table({:?})\n\
         print(t.num_rows)\n\
         for f in t.schema: print(f.name, f.type)\n\
         print(pq.ParquetFile({:?}).metadata.row_group(0).column(0).compression)",
        folder.display().to_string(),
        folder.join("part-00000.parquet").display().to_string()
    );
    let out = python(&script);
    let profiled = profiled_records(default_lake());
    assert_eq!(
        out,
        format!(
            "{profiled}\ncitizen_id int64\nsegment int32\ndistance double\nsecond_segment int32\nmargin double\nZSTD\n"
        )
    );
}

#[test]
fn duckdb_reads_profiles_and_features() {
    let lake = default_lake();
    let script = format!(
        "import duckdb\n\
         print(duckdb.sql(\"SELECT count(*), sum(size) FROM read_parquet('{}/marts/segment_profiles/*.parquet')\").fetchall()[0])\n\
         print(duckdb.sql(\"SELECT count(*), count(DISTINCT citizen_id) FROM read_parquet('{}/marts/citizen_features/*.parquet')\").fetchall()[0])",
        lake.display(),
        lake.display()
    );
    let out = python(&script);
    let profiled = profiled_records(lake);
    // Citizens who objected to profiling are in neither.
    assert_eq!(out, format!("(5, {profiled})\n({profiled}, {profiled})\n"));
}
