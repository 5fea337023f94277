-- Pages seen by citizens logged in with SPID or CIE (the user field is
-- TINIT-<codice fiscale>, in whatever case the identity provider sent)
-- over the 90 days ending on {{ ds }}; static assets, automated clients and
-- errors are not page views. A step of its own, so the web logs are read
-- once even though later steps use it twice.
-- The window's bounds are constants, not a joined table: a join with a
-- one-row table is a nested-loop join, which needs memory of its own.
SELECT
    w."user" AS spid_user,
    to_unixtime(w."timestamp") + w.utc_offset_minutes * 60 AS local_s,
    CAST((to_unixtime(w."timestamp") + w.utc_offset_minutes * 60) / 3600 AS BIGINT) AS hour,
    CASE WHEN w.path LIKE '/servizi/%' THEN split_part(w.path, '/', 3) END AS service
FROM web w
WHERE w."user" ILIKE 'tinit-%'
  AND w.status < 400
  AND NOT is_static_asset(w.path)
  AND NOT is_bot(w.user_agent)
  AND to_unixtime(w."timestamp") + w.utc_offset_minutes * 60
      >= to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) - 89 * 86400
  AND to_unixtime(w."timestamp") + w.utc_offset_minutes * 60
      < to_unixtime(CAST('{{ ds }}' AS TIMESTAMP)) + 86400
