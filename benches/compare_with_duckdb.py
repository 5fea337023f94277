#!/usr/bin/env python3
"""civica against DuckDB on the same files: access-log parsing and CSV ingest.

Usage (from the repository root, after `cargo build`):

    python3 benches/compare_with_duckdb.py --civica "$CARGO_TARGET_DIR/debug/civica"

It writes a demo lake with `civica demo` (skipped when present), makes an
uncompressed copy of its web logs (at least 1 GB with the defaults) and a
CSV data set of about 1 GB from its call-center exports, then times, best of
`--repeat` runs:

  - civica reading the logs (uncompressed, then gzipped) and computing
    aggregates that need every column parsed;
  - DuckDB reading the same lines and parsing them with `regexp_extract`
    (Combined Log Format), computing the same aggregates;
  - civica and DuckDB `read_csv` ingesting the CSV files (Italian format:
    `;`, decimal comma, `dd/mm/yyyy HH:MM:SS`).

Both tools use every core (`--threads`). MB are 10^6 bytes of uncompressed
input. The civica figures include process start; a release build of civica
gives the definitive figures, the dev profile works too.
"""

import argparse
import glob
import gzip
import os
import shutil
import subprocess
import sys
import time

import duckdb

LOG_REGEX = (
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\S+) "([^"]*)" "([^"]*)"'
)
LOG_SQL_CIVICA = """SELECT count(*) AS lines, sum(bytes) AS bytes, count(DISTINCT "user") AS users,
       max("timestamp") AS last, count(DISTINCT user_agent) AS agents,
       sum(length(path)) AS path_chars, sum(status) AS statuses
FROM web"""
CSV_SQL_CIVICA = """SELECT count(*) AS rows, sum(wait_s) AS wait, sum(talk_s) AS talk,
       count(DISTINCT queue) AS queues, max(started_at) AS last,
       count(DISTINCT caller_number) AS callers
FROM calls"""


def civica_default():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return os.path.join(target, "debug", "civica")


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def size(paths):
    return sum(os.path.getsize(p) for p in paths)


def prepare(args):
    lake = os.path.join(args.workdir, "lake")
    if not os.path.isdir(os.path.join(lake, "raw")):
        run([args.civica, "demo", "--out", lake, "--citizens", str(args.citizens),
             "--days", str(args.days), "-q"])
    gz_logs = sorted(glob.glob(os.path.join(lake, "raw/weblogs/*.log.gz")))
    plain = os.path.join(args.workdir, "logs_plain")
    if not os.path.isdir(plain):
        os.makedirs(plain + ".tmp", exist_ok=True)
        for path in gz_logs:
            name = os.path.basename(path)[: -len(".gz")]
            with gzip.open(path, "rb") as src, open(os.path.join(plain + ".tmp", name), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.rename(plain + ".tmp", plain)
    csv_dir = os.path.join(args.workdir, "csv")
    if not os.path.isdir(csv_dir):
        os.makedirs(csv_dir + ".tmp")
        calls = sorted(glob.glob(os.path.join(lake, "raw/callcenter/*.csv")))
        header = None
        body = []
        for path in calls:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            header = lines[0]
            body.extend(lines[1:])
        block = ("\n".join(body) + "\n").encode()
        per_file = args.csv_mb * 1_000_000 // 4
        for i in range(4):
            with open(os.path.join(csv_dir + ".tmp", f"calls_{i}.csv"), "wb") as out:
                out.write((header + "\n").encode())
                written = 0
                while written < per_file:
                    out.write(block)
                    written += len(block)
        os.rename(csv_dir + ".tmp", csv_dir)
    return {
        "gz_logs": gz_logs,
        "plain_logs": sorted(glob.glob(os.path.join(plain, "*.log"))),
        "plain_dir": plain,
        "gz_dir": os.path.join(lake, "raw/weblogs"),
        "csv_files": sorted(glob.glob(os.path.join(csv_dir, "*.csv"))),
        "csv_dir": csv_dir,
    }


def civica_pipeline(args, name, source_yaml, sql):
    folder = os.path.join(args.workdir, "pipelines")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.sql"), "w") as f:
        f.write(sql)
    path = os.path.join(folder, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(
            f"name: {name}\nsources:\n{source_yaml}transforms:\n  - name: result\n"
            f"    sql: {name}.sql\noutputs:\n  - {{ table: result, path: {folder}/out/{name}/ }}\n"
        )
    return path


def time_civica(args, pipeline):
    cmd = [args.civica, "run", pipeline, "-q"]
    print("$", " ".join(cmd), flush=True)
    env = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS=str(args.threads))
    best = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    folder = os.path.join(os.path.dirname(pipeline), "out", os.path.basename(pipeline)[:-5])
    row = duckdb.sql(
        f"SELECT COLUMNS(*)::VARCHAR FROM read_parquet('{folder}/*.parquet')"
    ).fetchall()[0]
    return best, row


def time_duckdb(args, sql):
    print("duckdb>", " ".join(sql.split()), flush=True)
    con = duckdb.connect()
    con.execute(f"PRAGMA threads={args.threads}")
    best, row = None, None
    for _ in range(args.repeat):
        started = time.perf_counter()
        row = con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM ({sql})").fetchall()[0]
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best, row


def duckdb_log_sql(pattern):
    lines = (
        f"read_csv('{pattern}', columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='', "
        "escape='', header=false, auto_detect=false, strict_mode=false)"
    )
    fields = "['ip','ident','user','ts','request','status','bytes','referer','agent']"
    return f"""
WITH parsed AS (SELECT regexp_extract(line, '{LOG_REGEX}', {fields}) AS f FROM {lines}),
typed AS (
  SELECT f.user AS "user", f.agent AS agent,
         strptime(f.ts, '%d/%b/%Y:%H:%M:%S %z') AS ts,
         TRY_CAST(f.status AS INTEGER) AS status,
         TRY_CAST(NULLIF(f.bytes, '-') AS BIGINT) AS bytes,
         split_part(split_part(f.request, ' ', 2), '?', 1) AS path
  FROM parsed WHERE f.ip <> '')
SELECT count(*), sum(bytes), count(DISTINCT NULLIF("user", '-')), max(ts),
       count(DISTINCT NULLIF(agent, '-')), sum(length(path)), sum(status)
FROM typed"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--civica", default=civica_default())
    parser.add_argument("--workdir", default="/tmp/civica-bench")
    parser.add_argument("--citizens", type=int, default=7000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--csv-mb", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["logs", "csv"],
                        help="run one workload instead of both")
    args = parser.parse_args()
    args.civica = os.path.abspath(args.civica)
    os.makedirs(args.workdir, exist_ok=True)
    data = prepare(args)

    log_mb = size(data["plain_logs"]) / 1e6
    csv_mb = size(data["csv_files"]) / 1e6
    results = []

    log_workloads = [
        ("logs, uncompressed", data["plain_dir"], ".log"),
        ("logs, gzip", data["gz_dir"], ".log.gz"),
    ]
    for label, folder, ext in log_workloads if args.only != "csv" else []:
        pipeline = civica_pipeline(
            args,
            "logs_" + ext.replace(".", ""),
            f"  web:\n    path: {folder}/\n    format: {{ type: access_log, extension: {ext} }}\n",
            LOG_SQL_CIVICA,
        )
        c_time, c_row = time_civica(args, pipeline)
        d_time, d_row = time_duckdb(args, duckdb_log_sql(f"{folder}/*{ext}"))
        results.append((label, log_mb, c_time, d_time, c_row, d_row))

    csv_pipeline = civica_pipeline(
        args,
        "csv",
        f"  calls:\n    path: {data['csv_dir']}/\n    format: {{ type: csv, delimiter: \";\", decimal: \",\", "
        "timestamp_format: \"%d/%m/%Y %H:%M:%S\" }\n",
        CSV_SQL_CIVICA,
    )
    if args.only != "logs":
        c_time, c_row = time_civica(args, csv_pipeline)
        d_time, d_row = time_duckdb(
            args,
            f"""SELECT count(*), sum(wait_s), sum(talk_s), count(DISTINCT queue), max(started_at),
                       count(DISTINCT caller_number)
                FROM read_csv('{data['csv_dir']}/*.csv', delim=';', header=true,
                              decimal_separator=',', timestampformat='%d/%m/%Y %H:%M:%S')""",
        )
        results.append(("CSV ingest", csv_mb, c_time, d_time, c_row, d_row))

    cores = args.threads
    print()
    print(f"{'workload':<20} {'MB':>8} {'civica s':>9} {'MB/s':>8} {'/core':>7} "
          f"{'duckdb s':>9} {'MB/s':>8} {'/core':>7} {'civica/duckdb':>14}")
    ok = True
    for label, mb, c, d, c_row, d_row in results:
        print(f"{label:<20} {mb:>8.0f} {c:>9.2f} {mb / c:>8.1f} {mb / c / cores:>7.1f} "
              f"{d:>9.2f} {mb / d:>8.1f} {mb / d / cores:>7.1f} {d / c:>13.2f}x")
        if c_row[0] != d_row[0]:
            ok = False
            print(f"  WARNING: row counts differ: civica {c_row[0]}, duckdb {d_row[0]}")
        else:
            print(f"  rows agree: {c_row[0]}; civica {c_row[1:3]} duckdb {d_row[1:3]}")
    print(f"\n{cores} thread(s); best of {args.repeat}; civica: {args.civica}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
