-- A page of the whole log in position order, events of types other than
-- $4 as position markers (no tags, data or meta to send and parse).
SELECT e.position, e.event_id, e.type,
       CASE WHEN e.type = ANY($4::text[]) THEN e.tags ELSE '[]'::json END,
       CASE WHEN e.type = ANY($4::text[]) THEN e.data ELSE 'null'::json END,
       CASE WHEN e.type = ANY($4::text[]) THEN e.meta ELSE '{}'::json END,
       e.recorded_at, e.stream_id, e.version
FROM event e
WHERE e.log = $1::text AND e.position > $2::bigint
ORDER BY e.position
LIMIT $3::bigint
