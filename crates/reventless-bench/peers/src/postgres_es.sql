-- The events table that postgres-es documents for its event repository
-- (its db/init.sql; the crate does not create it). No snapshots table: the
-- bench uses `postgres_cqrs`, the plain event store.
CREATE TABLE IF NOT EXISTS events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
