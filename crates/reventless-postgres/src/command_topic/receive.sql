-- Takes up to $2 messages of topic $1 in send order from groups nobody
-- holds, for $3 ms. Rows of groups another receiver is taking are skipped
-- (SKIP LOCKED); a group taken and committed meanwhile is rechecked on its
-- new row and no longer qualifies. Each taken group gets a new generation,
-- so receipts of an earlier, expired take stop working.
-- A take lost in a crash is as if its visibility ran out (the message comes
-- again), so its commit does not wait for the disk; the ack that follows
-- does, and makes the take durable with it.
WITH settings AS (
    SELECT set_config('synchronous_commit', 'off', true)
), picked AS (
    SELECT m.sequence, m.group_id
    FROM command_message m
    JOIN command_group g ON g.topic = m.topic AND g.group_id = m.group_id
    CROSS JOIN settings
    WHERE m.topic = $1::text AND (g.in_flight = 0 OR g.locked_until <= now())
    ORDER BY m.sequence
    LIMIT $2::bigint
    FOR UPDATE OF m, g SKIP LOCKED
), locked AS (
    UPDATE command_group g
    SET in_flight = p.taken, locked_until = now() + $3::bigint * interval '1 millisecond',
        generation = g.generation + 1
    FROM (SELECT group_id, count(*)::integer AS taken FROM picked GROUP BY group_id) p
    WHERE g.topic = $1::text AND g.group_id = p.group_id
    RETURNING g.group_id, g.generation
), taken AS (
    UPDATE command_message m
    SET receipt = gen_random_uuid(), receive_count = m.receive_count + 1, taken_in = l.generation
    FROM picked p JOIN locked l ON l.group_id = p.group_id
    WHERE m.sequence = p.sequence
    RETURNING m.sequence, m.group_id, m.dedup_id, m.body, m.receive_count, m.receipt
)
SELECT receipt, group_id, dedup_id, body, receive_count FROM taken ORDER BY sequence
