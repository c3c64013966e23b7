-- The new last position of each log a batch appended to.
UPDATE event_log_head h SET position = u.position
FROM UNNEST($1::text[], $2::bigint[]) AS u (log, position)
WHERE h.log = u.log
