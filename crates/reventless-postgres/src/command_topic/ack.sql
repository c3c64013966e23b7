-- Deletes the message of receipt $2 on topic $1 if that receipt is of its
-- group's current take. The group's row is locked first and rechecked, so a
-- take committed meanwhile wins. Answers whether the group is free again
-- with messages queued (then the caller tells the receivers: notify.sql).
WITH target AS (
    SELECT m.sequence, m.group_id
    FROM command_message m
    JOIN command_group g ON g.topic = m.topic AND g.group_id = m.group_id
    WHERE m.topic = $1::text AND m.receipt = $2::uuid AND m.taken_in = g.generation
    FOR UPDATE OF m, g
), gone AS (
    DELETE FROM command_message m USING target t WHERE m.sequence = t.sequence
    RETURNING m.group_id
), updated AS (
    UPDATE command_group g
    SET queued = g.queued - 1, in_flight = GREATEST(g.in_flight - 1, 0)
    FROM gone WHERE g.topic = $1::text AND g.group_id = gone.group_id
    RETURNING g.topic, g.queued, g.in_flight
)
SELECT u.in_flight = 0 AND u.queued > 0 AS freed FROM updated u
