-- Calls per day and queue of the call-center files a run reads: with an
-- incremental source, the new files only, appended to the earlier days
-- (README, "Incremental loads").
SELECT
    CAST(started_at AS DATE) AS day,
    queue,
    count(*) AS calls,
    avg(wait_s) AS avg_wait_s
FROM calls
GROUP BY CAST(started_at AS DATE), queue
ORDER BY day, queue
