-- Calls per queue on the run's day (`ds`): one `day=` partition a run, which
-- `mode: overwrite_partition` replaces (README, "Outputs").
SELECT
    CAST(started_at AS DATE) AS day,
    queue,
    count(*) AS calls,
    avg(wait_s) AS avg_wait_s
FROM calls
WHERE CAST(started_at AS DATE) = DATE '{{ ds }}'
GROUP BY CAST(started_at AS DATE), queue
ORDER BY queue
