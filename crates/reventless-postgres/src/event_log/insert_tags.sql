-- A batch's tag rows, one per array element.
INSERT INTO event_tag (log, tag, position, type)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[])
