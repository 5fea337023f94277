# deploy/airflow/civica_segments_dag.py
"""civica's nightly citizen segmentation as an Airflow 3 DAG.

One run a night at 02:30 (Rome time) processes the day before: civica's
run date (--date, `ds` in the pipeline) is the day before the run's
data_interval_end. In Airflow 3 a cron schedule is a trigger timetable: a
run's logical date, Airflow's own `ds`, data_interval_start and
data_interval_end are all the time it was due (02:30 on the morning after
the night), or with [scheduler] create_cron_data_intervals = True the start
is the previous 02:30: data_interval_end is the same in both. The times are
in UTC, the same day as 02:30 in Rome.

max_active_runs=1: one run of the pipeline at a time. catchup=False: after
a pause only the latest night runs (the incremental sources read every file
no successful run has read); `civica backfill --from ... --to ...` redoes
past days. Exit 75 (skipped, another run of this pipeline is under way)
marks the task skipped; any other non-zero exit fails it.
"""

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="civica_segments",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Rome"),
    catchup=False,
    max_active_runs=1,
    tags=["civica"],
):
    BashOperator(
        task_id="civica_citizen_segments",
        cwd="/srv/civica",
        bash_command=(
            "/usr/local/bin/civica run --log-format json "
            "pipelines/citizen_segments.yaml --var lake=/data/lake "
            "--date {{ macros.ds_add(data_interval_end | ds, -1) }}"
        ),
        skip_on_exit_code=75,
    )
