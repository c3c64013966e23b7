-- A batch's events, one row per array element; $11 is their recording time.
INSERT INTO event (log, position, stream_type, stream_id, version, event_id, type, tags, data, meta, recorded_at)
SELECT log, position, stream_type, stream_id, version, event_id, type, tags::json, data::json, meta::json, $11::bigint
FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::uuid[], $7::text[], $8::text[],
            $9::text[], $10::text[])
    AS e (log, position, stream_type, stream_id, version, event_id, type, tags, data, meta)
