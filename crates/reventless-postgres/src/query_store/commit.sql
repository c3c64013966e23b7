-- Rows of table $1 written at once: puts (ids $2, rows $3), deletes (ids $4).
-- Each id appears once ($2 and $4 are disjoint), so one statement can hold them.
WITH put AS (
    INSERT INTO query_row (tbl, id, data)
    SELECT $1::text, u.id, u.data FROM unnest($2::text[], $3::jsonb[]) AS u (id, data)
    ON CONFLICT (tbl, id) DO UPDATE SET data = EXCLUDED.data
    RETURNING 1
), removed AS (
    DELETE FROM query_row WHERE tbl = $1::text AND id = ANY($4::text[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM put) + (SELECT count(*) FROM removed)
