-- disintegrate-postgres 4's event store schema for PostgreSQL < 16, created
-- as its docs describe for `PgEventStore::new_uninitialized` ("recreate the
-- default structure"). Its migrator cannot run there: its epoch function
-- writes a hexadecimal integer literal, which PostgreSQL parses from 16 on.
-- Same objects, same behaviour; the mask is written in decimal.
CREATE SEQUENCE IF NOT EXISTS seq_event_event_id;

CREATE TABLE IF NOT EXISTS event (
    event_id BIGINT PRIMARY KEY DEFAULT nextval('seq_event_event_id'),
    event_type VARCHAR(255),
    payload BYTEA,
    inserted_at TIMESTAMP DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_event_type_btree ON event (event_type);

-- The domain id of the bench's events (the migrator adds one per `#[id]`).
ALTER TABLE event ADD COLUMN IF NOT EXISTS registration_id TEXT;
CREATE INDEX IF NOT EXISTS idx_event_registration_id ON event (registration_id) WHERE registration_id IS NOT NULL;

-- The highest event id every reader may see: below any writer still in flight.
CREATE OR REPLACE FUNCTION event_store_current_epoch() RETURNS BIGINT AS $$
DECLARE
    committed BIGINT;
    in_flight BIGINT;
    this_database INT;
BEGIN
    SELECT COALESCE(MAX(event_id), 0) INTO committed FROM event;
    SELECT oid INTO this_database FROM pg_database WHERE datname = current_database();
    SELECT MIN((high.objid::bigint << 32) + low.objid::bigint) INTO in_flight
    FROM pg_locks marker
    JOIN pg_locks low ON low.pid = marker.pid
    JOIN pg_locks high ON high.pid = marker.pid
    WHERE marker.classid = this_database AND low.classid = 1 AND high.classid = 2
      AND marker.locktype = 'advisory';
    RETURN LEAST(COALESCE(in_flight, committed), committed);
END;
$$ LANGUAGE plpgsql;

-- A writer announces itself with the sequence's value as it starts.
CREATE OR REPLACE FUNCTION event_store_begin_epoch() RETURNS void AS $$
DECLARE
    current_id BIGINT;
    this_database INT;
BEGIN
    SELECT last_value INTO current_id FROM seq_event_event_id;
    SELECT oid INTO this_database FROM pg_database WHERE datname = current_database();
    PERFORM pg_try_advisory_xact_lock_shared(this_database, 0);
    PERFORM pg_try_advisory_xact_lock_shared(1, (current_id & 4294967295)::bit(32)::integer);
    PERFORM pg_try_advisory_xact_lock_shared(2, (current_id >> 32)::bit(32)::integer);
END;
$$ LANGUAGE plpgsql;
