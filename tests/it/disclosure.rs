//! Disclosure control: no aggregate the segment step publishes counts
//! fewer than `min_cell` citizens (default 10, never below 3). A small
//! segment gets no profile; a small migration cell is suppressed with
//! complements in its row and column.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int32Type, Int64Type};

use crate::common::{DS, civica_command, describe, query, read_parquet};

/// Groups of citizens, each at one point of (u, v): `groups` gives
/// each group's point and its citizens' ids.
fn write_features(dir: &Path, groups: &[((f64, f64), std::ops::RangeInclusive<i64>)]) {
    let mut csv = String::from("citizen_id,u,v\n");
    for ((x, y), ids) in groups {
        for id in ids.clone() {
            // A little spread, so that a group is not one repeated point.
            let jitter = (id % 3) as f64 * 0.1;
            csv.push_str(&format!("{id},{},{}\n", x + jitter, y - jitter));
        }
    }
    std::fs::create_dir_all(dir.join("in")).expect("mkdir");
    std::fs::write(dir.join("in/features.csv"), csv).expect("csv");
}

fn run(dir: &Path) {
    std::fs::write(
        dir.join("pipeline.yaml"),
        "name: small\nruns: out/_runs/\nsources:\n  features:\n    path: in/\n    format: { type: csv }\nsegment:\n  from: features\n  id: citizen_id\n  features: [u, v]\n  model: { type: kmeans, k: 3, seed: 1 }\noutputs:\n  - { table: segments, path: out/segments/ }\n  - { table: segment_profiles, path: out/profiles/ }\n  - { table: segment_migrations, path: out/migrations/ }\n",
    )
    .expect("pipeline");
    let out = civica_command(dir, &["run", "pipeline.yaml", "--var", &format!("ds={DS}")])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", describe(&out));
}

/// Each citizen's segment.
fn segment_of(dir: &Path) -> BTreeMap<i64, i32> {
    let mut found = BTreeMap::new();
    for batch in read_parquet(&dir.join("out/segments")) {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let segments = batch.column(1).as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            found.insert(ids.value(i), segments.value(i));
        }
    }
    found
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[test]
fn a_segment_of_four_gets_no_profile_and_a_small_migration_is_hidden_with_its_complements() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = ((0.0, 0.0), (100.0, 0.0), (0.0, 100.0));
    write_features(dir.path(), &[(a, 1..=30), (b, 31..=60), (c, 61..=64)]);
    run(dir.path());
    let first = segment_of(dir.path());
    let small = first[&61];
    let profiles = query(
        &[("p", &dir.path().join("out/profiles"))],
        &format!("SELECT size, share, suppressed, label_en, u, z_u FROM p WHERE segment = {small}"),
    );
    assert_eq!(rows(&profiles), 1, "the small segment has its row");
    let row = &profiles[0];
    for column in [0, 1, 4, 5] {
        assert!(
            row.column(column).is_null(0),
            "column {column} is published"
        );
    }
    assert!(row.column(2).as_boolean().value(0), "not marked suppressed");
    assert_eq!(
        row.column(3).as_string_view_opt().map_or_else(
            || row.column(3).as_string::<i32>().value(0).to_string(),
            |v| v.value(0).to_string()
        ),
        "Segment of fewer than 10 citizens"
    );
    let shown = query(
        &[("p", &dir.path().join("out/profiles"))],
        "SELECT count(*) FROM p WHERE NOT suppressed AND size >= 30",
    );
    assert_eq!(shown[0].column(0).as_primitive::<Int64Type>().value(0), 2);

    // The next night: 2 citizens of A move to B (a cell of 2), 15 to C.
    write_features(
        dir.path(),
        &[
            (b, 1..=2),
            (c, 3..=17),
            (a, 18..=30),
            (b, 31..=60),
            (c, 61..=64),
        ],
    );
    run(dir.path());
    let second = segment_of(dir.path());
    let (seg_a, seg_b, seg_c) = (first[&1], first[&31], first[&61]);
    assert_eq!(
        (second[&18], second[&31], second[&61]),
        (seg_a, seg_b, seg_c),
        "ids are stable"
    );
    let batches = read_parquet(&dir.path().join("out/migrations"));
    let mut cells = BTreeMap::new();
    for batch in &batches {
        let from = batch.column(0).as_primitive::<Int32Type>();
        let to = batch.column(1).as_primitive::<Int32Type>();
        let citizens = batch.column(2).as_primitive::<Int64Type>();
        let suppressed = batch.column(3).as_boolean();
        for i in 0..batch.num_rows() {
            let count = (!citizens.is_null(i)).then(|| citizens.value(i));
            assert_eq!(
                count.is_none(),
                suppressed.value(i),
                "a suppressed cell has no count"
            );
            cells.insert((from.value(i), to.value(i)), count);
        }
    }
    // A→A 13, A→B 2, A→C 15, B→B 30, C→C 4: the 2 and the 4 are small;
    // the 2's row hides A→A, its column B→B, and A→C then hides C's column.
    assert_eq!(cells.len(), 5, "{cells:?}");
    assert_eq!(cells[&(seg_a, seg_b)], None, "the small cell is published");
    assert_eq!(cells[&(seg_c, seg_c)], None, "the cell of 4 is published");
    for (line, of) in [("row", 0usize), ("column", 1)] {
        let mut hidden: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
        for ((from, to), count) in &cells {
            let key = if of == 0 { *from } else { *to };
            let entry = hidden.entry(key).or_default();
            entry.0 += 1;
            entry.1 += usize::from(count.is_none());
        }
        for (key, (all, suppressed)) in hidden {
            assert!(
                suppressed != 1 || all == 1,
                "{line} {key} hides one cell of {all}, which its total would give away: {cells:?}"
            );
        }
    }
}

#[test]
fn min_cell_below_the_sistan_minimum_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_features(dir.path(), &[((0.0, 0.0), 1..=10)]);
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        "name: small\nmin_cell: 2\nsources:\n  features:\n    path: in/\n    format: { type: csv }\noutputs:\n  - { table: features, path: out/f/ }\n",
    )
    .expect("pipeline");
    let out = civica_command(dir.path(), &["validate", "pipeline.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "pipeline.yaml:2:11: `min_cell` must be at least 3 (the Sistan minimum: fewer citizens in a cell can be singled out), found 2"
        ),
        "{}",
        describe(&out)
    );
}

/// Counts by postcode, a quasi-identifier: published only with
/// `cell_count`, and then without the postcodes of fewer than `min_cell`
/// citizens.
#[test]
fn counts_by_a_quasi_identifier_are_published_only_in_groups_of_min_cell_citizens() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    let mut csv = String::from("citizen_id,cap\n");
    for id in 1..=15 {
        csv.push_str(&format!(
            "{id},{}\n",
            if id <= 12 { "40121" } else { "40122" }
        ));
    }
    std::fs::write(dir.path().join("in/people.csv"), csv).expect("csv");
    std::fs::write(
        dir.path().join("by_cap.sql"),
        "SELECT cap, count(DISTINCT citizen_id) AS citizens FROM people GROUP BY cap ORDER BY cap",
    )
    .expect("sql");
    let write = |output: &str| {
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            format!(
                "name: caps\nsources:\n  people:\n    path: in/\n    format: {{ type: csv }}\n    tags: {{ cap: quasi_identifier }}\ntransforms:\n  - {{ name: by_cap, sql: by_cap.sql }}\noutputs:\n  - {{ table: by_cap, path: out/by_cap/{output} }}\n"
            ),
        )
        .expect("pipeline");
    };
    let civica_in = |command: &str| {
        civica_command(dir.path(), &[command, "pipeline.yaml"])
            .output()
            .expect("the civica binary runs")
    };
    // Without it, the postcode is refused like any quasi-identifier.
    write("");
    let out = civica_in("validate");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would publish `cap`"),
        "{}",
        describe(&out)
    );
    write(", cell_count: cap_count");
    let out = civica_in("validate");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "output `by_cap` has `cell_count: cap_count`, which is not one of its columns"
        ),
        "{}",
        describe(&out)
    );
    write(", cell_count: citizens");
    let out = civica_in("run");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("1 row(s) counting fewer than 10 citizens left out"),
        "{}",
        describe(&out)
    );
    let rows = query(
        &[("t", &dir.path().join("out/by_cap"))],
        "SELECT CAST(cap AS VARCHAR), CAST(citizens AS BIGINT) FROM t",
    );
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(crate::common::strings(&rows[0], 0), ["40121"]);
    assert_eq!(rows[0].column(1).as_primitive::<Int64Type>().value(0), 12);
}
