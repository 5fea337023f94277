-- One row per citizen with what they did over the 90 days ending on {{ ds }}.
--
-- Times are compared as "local seconds": call-center times are written in
-- local time without a zone, and web-log times are UTC instants with the
-- server's offset, so both are turned into seconds of local wall-clock time.
-- `page_views` (sql/page_views.sql) holds the portal pages each citizen saw.
-- The window is the 90 days ending on {{ ds }}: from
-- to_unixtime('{{ ds }}') - 89 days to the end of {{ ds }}, written as
-- constants (a join with a one-row table of bounds would be a nested-loop
-- join, holding memory of its own).
WITH
-- A session is a citizen's page views within one clock hour.
web_sessions AS (
    SELECT codice_fiscale, COUNT(DISTINCT CAST(local_s / 3600 AS BIGINT)) AS sessions
    FROM page_views
    GROUP BY codice_fiscale
),
calls_in_window AS (
    SELECT c.call_id, c.caller_number, c.queue, to_unixtime(c.started_at) AS local_s
    FROM calls c
    WHERE to_unixtime(c.started_at) >= to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - 89 * 86400
      AND to_unixtime(c.started_at) < to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) + 86400
),
calls_per_number AS (
    SELECT caller_number, COUNT(*) AS calls
    FROM calls_in_window
    GROUP BY caller_number
),
-- "Failure demand": a call on a service within 24 hours after the citizen
-- looked at that service on the portal.
followups AS (
    SELECT z.citizen_id, COUNT(DISTINCT k.call_id) AS followups
    FROM citizens z
    JOIN calls_in_window k ON k.caller_number = z.phone
    JOIN page_views p ON p.codice_fiscale = z.codice_fiscale
        AND p.service = k.queue
        AND k.local_s >= p.local_s
        AND k.local_s < p.local_s + 86400
    GROUP BY z.citizen_id
),
requests AS (
    SELECT
        r.citizen_id,
        COUNT(*) AS requests,
        SUM(CASE WHEN r.service = 'scuola' THEN 1 ELSE 0 END) AS school_requests
    FROM service_requests r
    WHERE to_unixtime(r.opened_at) >= to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - 89 * 86400
      AND to_unixtime(r.opened_at) < to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) + 86400
    GROUP BY r.citizen_id
)
SELECT
    c.citizen_id,
    CAST(floor((to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - to_unixtime(CAST(c.birth_date AS TIMESTAMP))) / 31557600) AS BIGINT) AS age,
    COALESCE(s.sessions, 0) AS web_sessions_90d,
    COALESCE(n.calls, 0) AS calls_90d,
    COALESCE(r.requests, 0) AS requests_90d,
    COALESCE(CAST(r.school_requests AS DOUBLE) / NULLIF(r.requests, 0), 0.0) AS school_share,
    COALESCE(f.followups, 0) AS followup_calls_90d
FROM citizens c
LEFT JOIN web_sessions s ON s.codice_fiscale = c.codice_fiscale
LEFT JOIN calls_per_number n ON n.caller_number = c.phone
LEFT JOIN requests r ON r.citizen_id = c.citizen_id
LEFT JOIN followups f ON f.citizen_id = c.citizen_id
