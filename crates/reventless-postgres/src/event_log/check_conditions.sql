-- Each append condition of a batch, checked in one statement. A condition
-- arrives as its sources, one row each (job: its place in the batch):
--   tag    events carrying tag `a` (the tag index)
--   stream the events of stream (type `a`, id `b`): an aggregate's events
--          carry their entity tag this way, without a tag row
--   type   events of type `a` (the type index)
--   all    any event
-- after position `after`; a tag or stream source also limited to the
-- types of JSON list `types` (NULL: any) and to events carrying every tag
-- of JSON list `rest` ([{tag, key, id}], as a tag row or as their stream).
-- Returns a violating position for each source that has one. Each branch
-- is ordered by its index, so that it reads the index from `after` on.
SELECT c.job, v.position
FROM UNNEST($1::int[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])
    AS c (job, kind, log, after, a, b, types, rest)
CROSS JOIN LATERAL (SELECT ARRAY(SELECT json_array_elements_text(c.types::json)) AS list) ty
CROSS JOIN LATERAL (
    (SELECT t.position FROM event_tag t
     WHERE c.kind = 'tag' AND t.log = c.log AND t.tag = c.a AND t.position > c.after
       AND (c.types IS NULL OR t.type = ANY(ty.list))
       AND NOT EXISTS (
           SELECT 1 FROM json_array_elements(c.rest::json) r
           WHERE NOT EXISTS (SELECT 1 FROM event_tag tn
                             WHERE tn.log = c.log AND tn.tag = r->>'tag' AND tn.position = t.position)
             AND NOT EXISTS (SELECT 1 FROM event en
                             WHERE en.log = c.log AND en.position = t.position
                               AND en.stream_type = r->>'key' AND en.stream_id = r->>'id'))
     ORDER BY t.position LIMIT 1)
    UNION ALL
    (SELECT e.position FROM event e
     WHERE c.kind = 'stream' AND e.log = c.log AND e.stream_type = c.a AND e.stream_id = c.b
       AND e.position > c.after
       AND (c.types IS NULL OR e.type = ANY(ty.list))
       AND NOT EXISTS (
           SELECT 1 FROM json_array_elements(c.rest::json) r
           WHERE NOT EXISTS (SELECT 1 FROM event_tag tn
                             WHERE tn.log = c.log AND tn.tag = r->>'tag' AND tn.position = e.position)
             AND NOT (e.stream_type = r->>'key' AND e.stream_id = r->>'id'))
     ORDER BY e.version LIMIT 1)
    UNION ALL
    (SELECT e.position FROM event e
     WHERE c.kind = 'type' AND e.log = c.log AND e.type = c.a AND e.position > c.after
     ORDER BY e.position LIMIT 1)
    UNION ALL
    (SELECT e.position FROM event e
     WHERE c.kind = 'all' AND e.log = c.log AND e.position > c.after
     ORDER BY e.position LIMIT 1)
    LIMIT 1
) v
