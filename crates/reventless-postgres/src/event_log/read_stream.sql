-- An aggregate's stream after a version, in version order.
SELECT e.position, e.event_id, e.type, e.tags, e.data, e.meta, e.recorded_at, e.stream_id, e.version
FROM event e
WHERE e.log = $1::text AND e.stream_type = $2::text AND e.stream_id = $3::text AND e.version > $4::bigint
ORDER BY e.version
