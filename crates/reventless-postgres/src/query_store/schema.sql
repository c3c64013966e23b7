-- query_store tables (schema version 1).
-- One row of a plugin's query table: JSON by (table, id). Ids and tables
-- compare byte-wise (COLLATE "C"), as every other backend orders them.
CREATE TABLE query_row (
    tbl TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    data JSONB NOT NULL,
    PRIMARY KEY (tbl, id)
);
-- A projection's progress: the last log position applied, written in the
-- transaction of its rows.
CREATE TABLE checkpoint (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- A field's sort key, in three parts that order JSON values as every
-- backend does (null < bool < number < string < array < object; strings
-- byte-wise): its kind, its number (booleans 0/1) and its text. Listings
-- filter and order on these, and a declared index field gets an expression
-- index on them (`create_indexes`). A missing field sorts as null.
CREATE FUNCTION reventless_rank(value JSONB) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3
        WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END
$$;
CREATE FUNCTION reventless_number(value JSONB) RETURNS NUMERIC
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'number' THEN value::numeric
        WHEN 'boolean' THEN CASE WHEN value = 'true'::jsonb THEN 1 ELSE 0 END
        ELSE 0 END
$$;
CREATE FUNCTION reventless_text(value JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'string' THEN value #>> '{}'
        WHEN 'array' THEN value::text WHEN 'object' THEN value::text
        ELSE '' END
$$;
