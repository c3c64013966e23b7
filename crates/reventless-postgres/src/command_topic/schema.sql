-- command_topic tables (schema version 1).
-- A queued message. `receipt` is set by the delivery that took it and
-- `taken_in` names that delivery's take of the group (its generation): a
-- receipt of an older take no longer acks or releases anything.
CREATE TABLE command_message (
    sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic TEXT NOT NULL,
    group_id TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    body JSONB NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt UUID,
    taken_in BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX command_message_queue ON command_message (topic, sequence);
CREATE UNIQUE INDEX command_message_receipt ON command_message (receipt) WHERE receipt IS NOT NULL;
-- A message group: the unit of locking. A receiver locks the rows of the
-- groups it takes (FOR UPDATE SKIP LOCKED), so no two consumers take one
-- group at once; the group stays locked while `in_flight` of its messages
-- are out and `locked_until` (the visibility timeout) has not passed.
CREATE TABLE command_group (
    topic TEXT NOT NULL,
    group_id TEXT NOT NULL,
    queued INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    generation BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, group_id)
);
-- Dedup ids seen within the dedup window (kept past acks, purged after).
CREATE TABLE command_dedup (
    topic TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, dedup_id)
);
CREATE INDEX command_dedup_age ON command_dedup (sent_at);
