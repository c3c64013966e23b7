-- The current version of an aggregate's stream (0: none).
SELECT COALESCE(MAX(version), 0)::bigint FROM event
WHERE log = $1::text AND stream_type = $2::text AND stream_id = $3::text
