-- A page of the whole log in position order.
SELECT e.position, e.event_id, e.type, e.tags, e.data, e.meta, e.recorded_at, e.stream_id, e.version
FROM event e
WHERE e.log = $1::text AND e.position > $2::bigint
ORDER BY e.position
LIMIT $3::bigint
