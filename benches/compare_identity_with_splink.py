#!/usr/bin/env python3
"""civica's identity step against Splink deduplicating the same CRM export.

Usage (from the repository root, after `cargo build`; Splink from PyPI):

    pip install splink duckdb
    python3 benches/compare_identity_with_splink.py --civica "$CARGO_TARGET_DIR/debug/civica"

It writes a demo lake (`civica demo --days 1`, skipped when present) whose
CRM export holds every citizen once, two test records and the citizens a
clerk registered again (the same code with a name mistyped, the code left
out, or mistyped), then deduplicates `raw/crm/citizens/citizens.csv`:

  - civica: a pipeline of the CRM alone with the quickstart's `identity:`
    section (codice fiscale, phone and e-mail rules, then the
    probabilistic tier: first and last name, birth date, gender, CAP,
    phone and e-mail compared, blocking on birth date and a name, or on
    the phone), timed as a whole run (process start, reading the CSV,
    pseudonyms, writing Parquet);
  - Splink 5 with DuckDB, the same columns compared as Splink's own
    comparison library does (names by Jaro-Winkler, birth date by its date
    comparison, the others exact; the codice fiscale as one more exact
    comparison, phones reduced to their national digits and e-mails lower
    cased, as civica normalises them), blocking on the code and on
    civica's three lists, u from random pairs, m by EM on two blocking
    rules (birth date; surname and CAP), links at a match probability of
    0.99 and clusters at 0.99;
    timed from reading the CSV to the clusters.

Both are scored against `truth/crm_records.csv`: a pair of records is a true
match when they are one person; pairwise precision is true pairs found over
pairs found, recall true pairs found over true pairs. Wall time and peak
memory (resident set) of each; Splink runs in a child process so that its
memory is its own. `--citizens` sets the lake's size (5,000 by default;
100,000 or 1,000,000 for the figures at scale).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import duckdb

PIPELINE = """name: identity_bench
runs: out/_runs/
sources:
  citizens: {{ path: "{crm}", format: {{ type: csv, delimiter: ";" }} }}
identity:
  crm:
    table: citizens
    id: citizen_id
    identifiers: {{ codice_fiscale: cf, phone: phone, email: email }}
  probabilistic:
    compare:
      first_name: name
      last_name: name
      birth_date: date
      gender: exact
      cap: exact
      phone: exact
      email: exact
    blocking: [[birth_date, last_name], [birth_date, first_name], [phone]]
outputs:
  - {{ table: identity_profiles, path: out/identity_profiles/ }}
"""


def civica_default():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return os.path.join(target, "debug", "civica")


def write_lake(civica, lake, citizens, seed):
    crm = os.path.join(lake, "raw/crm/citizens/citizens.csv")
    if os.path.exists(crm):
        return crm
    subprocess.run(
        [civica, "demo", "--out", lake, "--citizens", str(citizens), "--days", "1",
         "--seed", str(seed), "--end-date", "2026-11-21", "-q"],
        check=True,
    )
    return crm


def pairwise(con, clusters_sql, truth):
    """Precision and recall of the pairs within clusters against the truth."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE found AS {clusters_sql}")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE truth AS
        SELECT CAST(citizen_id AS VARCHAR) AS citizen_id,
               COALESCE(NULLIF(CAST(person_id AS VARCHAR), ''), 'none-' || CAST(citizen_id AS VARCHAR)) AS person
        FROM read_csv('{truth}', all_varchar = true)"""
    )
    pairs = lambda group: con.execute(
        f"SELECT COALESCE(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM found JOIN truth USING (citizen_id) GROUP BY {group})"
    ).fetchone()[0]
    found, true, both = pairs("cluster"), pairs("person"), pairs("cluster, person")
    return {
        "pairs_found": int(found),
        "true_pairs": int(true),
        "true_found": int(both),
        "precision": both / found if found else 1.0,
        "recall": both / true if true else 1.0,
    }


def run_civica(civica, lake, crm):
    work = tempfile.mkdtemp(prefix="civica-identity-bench-")
    with open(os.path.join(work, "pipeline.yaml"), "w") as f:
        f.write(PIPELINE.format(crm=crm))
    env = dict(os.environ, CIVICA_PSEUDONYM_KEY_FILE=os.path.join(lake, "_demo/pseudonym.key"))
    start = time.perf_counter()
    subprocess.run([civica, "run", "pipeline.yaml", "-q"], cwd=work, env=env, check=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    profiles = os.path.join(work, "out/identity_profiles")
    return work, wall, peak, f"""SELECT CAST(citizen_id AS VARCHAR) AS citizen_id, profile_id AS cluster
        FROM read_parquet('{profiles}/**/*.parquet')"""


def run_splink(crm, out):
    """Deduplicates the CRM with Splink; writes citizen_id,cluster to `out`."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    start = time.perf_counter()
    con = duckdb.connect()
    records = con.sql(
        f"""SELECT CAST(citizen_id AS VARCHAR) AS unique_id,
            NULLIF(upper(trim(codice_fiscale)), '') AS codice_fiscale,
            NULLIF(lower(trim(first_name)), '') AS first_name,
            NULLIF(lower(trim(last_name)), '') AS last_name,
            NULLIF(trim(birth_date), '') AS birth_date,
            NULLIF(trim(gender), '') AS gender,
            NULLIF(trim(cap), '') AS cap,
            NULLIF(regexp_replace(regexp_replace(phone, '[^0-9]', '', 'g'), '^(00)?39([0-9]{{9,}})$', '\\2'), '') AS phone,
            NULLIF(lower(trim(email)), '') AS email
        FROM read_csv('{crm}', delim = ';', all_varchar = true, header = true)"""
    ).df()
    db_api = DuckDBAPI(connection=con)
    frame = db_api.register(records, dataset_display_name="crm")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("codice_fiscale"),
            cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("last_name", [0.9, 0.7]),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("gender"),
            cl.ExactMatch("cap"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("email"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("codice_fiscale"),
            block_on("birth_date", "last_name"),
            block_on("birth_date", "first_name"),
            block_on("phone"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(frame, settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("codice_fiscale"), block_on("first_name", "last_name", "birth_date")],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("last_name", "cap")
    )
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.99)
    clusters.as_duckdbpyrelation().select("unique_id AS citizen_id, cluster_id AS cluster").write_csv(out)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "peak": peak}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--civica", default=civica_default())
    parser.add_argument("--citizens", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lake", help="demo lake folder (default: a folder in /tmp per size)")
    parser.add_argument(
        "--no-splink", action="store_true",
        help="time civica alone (Splink did not finish at a million records on 2 cores)",
    )
    parser.add_argument("--splink-child", nargs=2, metavar=("CRM", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.splink_child:
        run_splink(*args.splink_child)
        return

    lake = args.lake or os.path.join(tempfile.gettempdir(), f"civica-identity-lake-{args.citizens}-{args.seed}")
    crm = write_lake(args.civica, lake, args.citizens, args.seed)
    truth = os.path.join(lake, "truth/crm_records.csv")
    records = sum(1 for _ in open(crm)) - 1
    print(f"CRM export: {records:,} records ({args.citizens:,} citizens), {lake}")

    con = duckdb.connect()
    work, wall, peak, clusters_sql = run_civica(args.civica, lake, crm)
    ours = pairwise(con, clusters_sql, truth) | {"wall": wall, "peak": peak}
    header = f"{'':8} {'precision':>10} {'recall':>8} {'pairs found':>12} {'true pairs':>11} {'wall s':>8} {'peak MiB':>9}"
    row = lambda name, r: (
        f"{name:8} {r['precision']:10.4f} {r['recall']:8.4f} {r['pairs_found']:12,} {r['true_pairs']:11,} {r['wall']:8.2f} {r['peak']:9.0f}"
    )
    if args.no_splink:
        print(header)
        print(row("civica", ours))
        return

    out = os.path.join(work, "splink_clusters.csv")
    child = subprocess.run(
        [sys.executable, __file__, "--splink-child", crm, out],
        check=True, capture_output=True, text=True,
    )
    splink = json.loads(child.stdout.strip().splitlines()[-1])
    theirs = pairwise(
        con, f"SELECT CAST(citizen_id AS VARCHAR) AS citizen_id, CAST(cluster AS VARCHAR) AS cluster FROM read_csv('{out}', all_varchar = true)", truth
    ) | splink

    print(header)
    for name, r in [("civica", ours), ("splink", theirs)]:
        print(row(name, r))
    print(f"time splink/civica: {theirs['wall'] / ours['wall']:.1f}x, memory {theirs['peak'] / ours['peak']:.1f}x")


if __name__ == "__main__":
    main()
