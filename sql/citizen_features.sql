-- One row per CRM record with what its citizen did over the 90 days ending
-- on {{ ds }}, on every channel: the portal, the phone, the desk, e-mail and
-- service requests.
--
-- A citizen is a profile of the identity step: the CRM records of one
-- person (`identity_profiles`), and the calls, desk visits, e-mails and
-- portal sessions attributed to it (`touchpoint_attribution`). Features
-- are counted per profile, and each of its records carries them, so that a
-- citizen recorded twice is one citizen with one segment.
--
-- Times are compared as "local seconds": call-center times are written in
-- local time without a zone, and web-log times are UTC instants with the
-- server's offset, so both are turned into seconds of local wall-clock time.
-- The window is the 90 days ending on {{ ds }}: from
-- to_unixtime('{{ ds }}') - 89 days to the end of {{ ds }}, written as
-- constants (a join with a one-row table of bounds would be a nested-loop
-- join, holding memory of its own).
WITH
attributed AS (
    SELECT source, record_id, profile_id
    FROM touchpoint_attribution
    WHERE profile_id IS NOT NULL
),
-- Calls, desk visits and e-mails as one table, by their source's name in
-- touchpoint_attribution, so that they meet the attributions in one join.
contacts AS (
    SELECT 'calls' AS source, CAST(call_id AS VARCHAR) AS record_id,
           to_unixtime(started_at) AS local_s, queue AS service
    FROM calls
    UNION ALL
    SELECT 'desk', CAST(appointment_id AS VARCHAR), to_unixtime(booked_at), service
    FROM desk
    UNION ALL
    SELECT 'email', CAST(message_id AS VARCHAR), to_unixtime(received_at), service
    FROM email
),
contacts_in_window AS (
    SELECT a.profile_id, c.source, c.record_id, c.local_s, c.service
    FROM contacts c
    JOIN attributed a ON a.source = c.source AND a.record_id = c.record_id
    WHERE c.local_s >= to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - 89 * 86400
      AND c.local_s < to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) + 86400
),
-- Portal sessions are in the window already (sql/page_views.sql).
channels AS (
    SELECT
        profile_id,
        SUM(CASE WHEN source = 'portal' THEN 1 ELSE 0 END) AS sessions,
        SUM(CASE WHEN source = 'calls' THEN 1 ELSE 0 END) AS calls,
        SUM(CASE WHEN source = 'desk' THEN 1 ELSE 0 END) AS visits,
        SUM(CASE WHEN source = 'email' THEN 1 ELSE 0 END) AS emails
    FROM (
        SELECT profile_id, source FROM contacts_in_window
        UNION ALL
        SELECT profile_id, source FROM attributed WHERE source = 'portal'
    ) t
    GROUP BY profile_id
),
-- The services each profile looked at on the portal: per session and
-- service, the first and the last view. A session's views fall within one
-- clock hour, so "within 24 hours after one of them" is exactly "from the
-- first to 24 hours after the last".
profile_views AS (
    SELECT a.profile_id, v.service, v.first_s, v.last_s
    FROM (
        SELECT spid_user, hour, service, MIN(local_s) AS first_s, MAX(local_s) AS last_s
        FROM page_views
        WHERE service IS NOT NULL
        GROUP BY spid_user, hour, service
    ) v
    JOIN portal_sessions s ON s.spid_user = v.spid_user AND s.hour = v.hour
    JOIN attributed a ON a.source = 'portal' AND a.record_id = s.session_id
),
-- "Failure demand": a call on a service within 24 hours after the citizen
-- looked at that service on the portal.
followups AS (
    SELECT k.profile_id, COUNT(DISTINCT k.record_id) AS followups
    FROM contacts_in_window k
    JOIN profile_views p ON p.profile_id = k.profile_id
        AND p.service = k.service
        AND k.local_s >= p.first_s
        AND k.local_s < p.last_s + 86400
    WHERE k.source = 'calls'
    GROUP BY k.profile_id
),
requests AS (
    SELECT
        i.profile_id,
        COUNT(*) AS requests,
        SUM(CASE WHEN r.service = 'scuola' THEN 1 ELSE 0 END) AS school_requests
    FROM service_requests r
    JOIN identity_profiles i ON i.citizen_id = r.citizen_id
    WHERE to_unixtime(r.opened_at) >= to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - 89 * 86400
      AND to_unixtime(r.opened_at) < to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) + 86400
    GROUP BY i.profile_id
)
SELECT
    c.citizen_id,
    i.profile_id,
    CAST(floor((to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - to_unixtime(CAST(c.birth_date AS TIMESTAMP))) / 31557600) AS BIGINT) AS age,
    COALESCE(n.sessions, 0) AS web_sessions_90d,
    COALESCE(n.calls, 0) AS calls_90d,
    COALESCE(n.visits, 0) AS desk_visits_90d,
    COALESCE(n.emails, 0) AS emails_90d,
    COALESCE(r.requests, 0) AS requests_90d,
    COALESCE(CAST(r.school_requests AS DOUBLE) / NULLIF(r.requests, 0), 0.0) AS school_share,
    COALESCE(f.followups, 0) AS followup_calls_90d
FROM citizens c
JOIN identity_profiles i ON i.citizen_id = c.citizen_id
LEFT JOIN channels n ON n.profile_id = i.profile_id
LEFT JOIN requests r ON r.profile_id = i.profile_id
LEFT JOIN followups f ON f.profile_id = i.profile_id
