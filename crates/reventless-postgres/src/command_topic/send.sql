-- Queues message ($2 group, $3 dedup id, $4 body) on topic $1 unless its
-- dedup id was sent within the window ($5 ms). The group's row is written
-- first: sends to one group serialize on it, so their sequence numbers
-- follow their commit order. Answers one row when queued (the caller then
-- tells the receivers: notify.sql).
WITH fresh AS (
    INSERT INTO command_dedup (topic, dedup_id, sent_at) VALUES ($1::text, $3::text, now())
    ON CONFLICT (topic, dedup_id) DO UPDATE SET sent_at = EXCLUDED.sent_at
    WHERE command_dedup.sent_at <= EXCLUDED.sent_at - $5::bigint * interval '1 millisecond'
    RETURNING 1
), grouped AS (
    INSERT INTO command_group (topic, group_id, queued) SELECT $1::text, $2::text, 1 FROM fresh
    ON CONFLICT (topic, group_id) DO UPDATE SET queued = command_group.queued + 1
    RETURNING 1
), queued AS (
    INSERT INTO command_message (topic, group_id, dedup_id, body)
    SELECT $1::text, $2::text, $3::text, $4::jsonb FROM grouped
    RETURNING 1
)
SELECT 1 FROM queued
