-- Service requests by postcode (README, "Personal data in outputs"): the
-- output's `cell_count: citizens` leaves out postcodes of fewer than
-- `min_cell` citizens.
SELECT c.cap, count(DISTINCT r.citizen_id) AS citizens, count(*) AS requests
FROM service_requests r
JOIN citizens c ON c.citizen_id = r.citizen_id
GROUP BY c.cap
