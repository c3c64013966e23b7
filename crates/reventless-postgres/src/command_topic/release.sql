-- Makes the message of receipt $2 on topic $1 visible at once (in its place
-- by sequence) if that receipt is of its group's current take; answers
-- whether the group is free again, as ack.sql. A release lost in a crash
-- only delays the message to its visibility timeout: its commit does not
-- wait for the disk.
WITH settings AS (
    SELECT set_config('synchronous_commit', 'off', true)
), target AS (
    SELECT m.sequence, m.group_id
    FROM command_message m
    JOIN command_group g ON g.topic = m.topic AND g.group_id = m.group_id
    CROSS JOIN settings
    WHERE m.topic = $1::text AND m.receipt = $2::uuid AND m.taken_in = g.generation
    FOR UPDATE OF m, g
), freed AS (
    UPDATE command_message m SET receipt = NULL FROM target t WHERE m.sequence = t.sequence
    RETURNING m.group_id
), updated AS (
    UPDATE command_group g
    SET in_flight = GREATEST(g.in_flight - 1, 0)
    FROM freed WHERE g.topic = $1::text AND g.group_id = freed.group_id
    RETURNING g.topic, g.queued, g.in_flight
)
SELECT u.in_flight = 0 AND u.queued > 0 AS freed FROM updated u
