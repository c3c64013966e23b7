-- The current version (0: none) of each stream a batch appends to, in one
-- statement (job: the append's place in the batch).
SELECT j.job,
       COALESCE((SELECT MAX(e.version) FROM event e
                 WHERE e.log = j.log AND e.stream_type = j.key AND e.stream_id = j.id), 0)::bigint
FROM UNNEST($1::int[], $2::text[], $3::text[], $4::text[]) AS j (job, log, key, id)
