-- One row per portal session: a SPID user's page views within one clock
-- hour of local time. The identity step attributes each session to a
-- profile by its SPID subject; the session is known by a keyed pseudonym,
-- so the codice fiscale in the subject goes no further than this table.
SELECT
    pseudonym('portal_session', concat(upper(spid_user), '@', CAST(hour AS VARCHAR))) AS session_id,
    spid_user,
    hour
FROM (SELECT DISTINCT spid_user, hour FROM page_views)
