-- As commit.sql, and checkpoint $5 advanced to position $6 in the same
-- statement (one transaction). The rows are written only if the checkpoint
-- moved forward: a commit at or behind the stored position changes nothing
-- and answers 0. Two processes committing the same batch serialize on the
-- checkpoint's row; the second sees the first's position and loses.
WITH advanced AS (
    INSERT INTO checkpoint (name, position) VALUES ($5::text, $6::bigint)
    ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position
    WHERE checkpoint.position < EXCLUDED.position
    RETURNING 1
), put AS (
    INSERT INTO query_row (tbl, id, data)
    SELECT $1::text, u.id, u.data FROM unnest($2::text[], $3::jsonb[]) AS u (id, data)
    WHERE EXISTS (SELECT 1 FROM advanced)
    ON CONFLICT (tbl, id) DO UPDATE SET data = EXCLUDED.data
    RETURNING 1
), removed AS (
    DELETE FROM query_row WHERE tbl = $1::text AND id = ANY($4::text[]) AND EXISTS (SELECT 1 FROM advanced)
    RETURNING 1
)
SELECT (SELECT count(*) FROM advanced), (SELECT count(*) FROM put) + (SELECT count(*) FROM removed)
