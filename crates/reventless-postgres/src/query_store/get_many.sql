-- The rows among ids $2 of table $1, in one round trip.
SELECT id, data FROM query_row WHERE tbl = $1::text AND id = ANY($2::text[])
