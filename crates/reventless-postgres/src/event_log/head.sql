-- The last position of a log (no row: 0).
SELECT position FROM event_log_head WHERE log = $1::text
