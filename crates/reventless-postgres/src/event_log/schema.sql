-- event_log tables (schema version 1).

-- The last position of each log. Its row lock serializes the writers of one
-- log across processes: a writer takes it first, then checks and inserts
-- with plain READ COMMITTED statements that see every earlier writer's commit.
CREATE TABLE event_log_head (
    log TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- Every plugin's events, positions gapless per log. An aggregate's events
-- also carry their stream (stream_type = the entity tag key, `member`;
-- stream_id; version), which is how tag queries find them by their entity
-- tag `<key>:<id>` (they get no tag row for it). JSON, not JSONB: stored
-- and read back as written (no re-encoding, `\u0000` in strings kept).
CREATE TABLE event (
    log TEXT NOT NULL,
    position BIGINT NOT NULL,
    stream_type TEXT,
    stream_id TEXT,
    version BIGINT,
    event_id UUID NOT NULL,
    type TEXT NOT NULL,
    tags JSON NOT NULL,
    data JSON NOT NULL,
    meta JSON NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (log, position)
);
CREATE UNIQUE INDEX event_stream ON event (log, stream_type, stream_id, version) WHERE stream_id IS NOT NULL;
-- Queries by type alone, in position order.
CREATE INDEX event_type ON event (log, type, position);

-- One row per (event, tag) but an aggregate event's entity tag: what DCB
-- queries and append conditions search by, in position order, the type
-- beside it so that a condition on tag and type reads the index alone.
CREATE TABLE event_tag (
    log TEXT NOT NULL,
    tag TEXT NOT NULL,
    position BIGINT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (log, tag, position) INCLUDE (type)
);
