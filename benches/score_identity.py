#!/usr/bin/env python3
"""Scores the quickstart's identity tables against the demo lake's truth.

Usage (from the repository root, after the quickstart ran on a demo lake):

    python3 benches/score_identity.py lake

It reads `LAKE/marts/identity_profiles`, `LAKE/marts/touchpoint_attribution`
and, when present, `LAKE/marts/segments`, next to the demo's
`truth/crm_records.csv` (citizen_id, person_id), `truth/touchpoints.csv`
(source, record_id, person_id or empty) and `truth/segments.csv`, and prints:

  - per source (calls, desk, email): contacts attributed, attributable
    (the truth names a person), correct (attributed to a profile holding a
    CRM record of that person), precision = correct / attributed and
    recall = correct / attributable;
  - profiles holding records of two people (over-merging), people whose
    records are in more than one profile (under-merging), and the
    omocodic pair (citizens 100001 and 100003) apart or not;
  - the adjusted Rand index of the published segments against the planted
    ones, when the segments are there.

DuckDB does the joins; scikit-learn computes the index.
"""

import argparse
import os
import sys

import duckdb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lake", help="a demo lake the quickstart ran on")
    args = parser.parse_args()
    lake = args.lake.rstrip("/")
    marts = os.path.join(lake, "marts")
    con = duckdb.connect()
    con.sql(f"CREATE VIEW profiles AS SELECT CAST(citizen_id AS VARCHAR) AS citizen_id, profile_id FROM read_parquet('{marts}/identity_profiles/**/*.parquet')")
    con.sql(f"CREATE VIEW attributed AS SELECT source, CAST(record_id AS VARCHAR) AS record_id, profile_id FROM read_parquet('{marts}/touchpoint_attribution/**/*.parquet')")
    con.sql(f"CREATE VIEW records AS SELECT * FROM read_csv('{lake}/truth/crm_records.csv', all_varchar = true)")
    con.sql(f"CREATE VIEW truth AS SELECT * FROM read_csv('{lake}/truth/touchpoints.csv', all_varchar = true)")
    # The people each profile holds.
    con.sql("CREATE TABLE held AS SELECT DISTINCT profile_id, person_id FROM profiles JOIN records USING (citizen_id) WHERE person_id IS NOT NULL")

    rows = con.sql(
        """SELECT t.source,
                count(a.profile_id) AS attributed,
                count(t.person_id) AS attributable,
                count(h.person_id) AS correct,
                count(*) FILTER (WHERE a.record_id IS NULL) AS missing
           FROM truth t
           LEFT JOIN attributed a USING (source, record_id)
           LEFT JOIN held h ON h.profile_id = a.profile_id AND h.person_id = t.person_id
           GROUP BY t.source ORDER BY t.source"""
    ).fetchall()
    print(f"{'source':8} {'attributed':>11} {'attributable':>13} {'correct':>9} {'precision':>10} {'recall':>8}")
    failed = False
    for source, attributed, attributable, correct, missing in rows:
        precision = correct / attributed if attributed else 1.0
        recall = correct / attributable if attributable else 1.0
        print(f"{source:8} {attributed:11,} {attributable:13,} {correct:9,} {precision:10.4f} {recall:8.4f}")
        if missing:
            print(f"  {missing:,} {source} contacts of the truth are not in touchpoint_attribution")
            failed = True

    over = con.sql("SELECT count(*) FROM (SELECT profile_id FROM held GROUP BY 1 HAVING count(*) > 1)").fetchall()[0][0]
    under = con.sql("SELECT count(*) FROM (SELECT person_id FROM held GROUP BY 1 HAVING count(DISTINCT profile_id) > 1)").fetchall()[0][0]
    counts = con.sql("SELECT count(*), count(DISTINCT profile_id) FROM profiles").fetchall()[0]
    omocodic = con.sql("SELECT count(DISTINCT profile_id) FROM profiles WHERE citizen_id IN ('100001', '100003')").fetchall()[0][0]
    print(f"{counts[0]:,} CRM records in {counts[1]:,} profiles; {over} profiles hold two people, {under} people are split")
    print(f"omocodic pair 100001 / 100003: {'two profiles' if omocodic == 2 else 'one profile'}")

    segments = os.path.join(marts, "segments")
    if os.path.isdir(segments):
        from sklearn.metrics import adjusted_rand_score

        pairs = con.sql(
            f"""SELECT t.segment, CAST(s.segment AS VARCHAR)
                FROM read_csv('{lake}/truth/segments.csv', all_varchar = true) t
                JOIN read_parquet('{segments}/**/*.parquet') s ON CAST(s.citizen_id AS VARCHAR) = t.citizen_id"""
        ).fetchall()
        ari = adjusted_rand_score([p[0] for p in pairs], [p[1] for p in pairs])
        print(f"adjusted Rand index against the planted segments: {ari:.4f} ({len(pairs):,} citizens)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
