-- Housekeeping, at most once a minute per process: dedup ids past the
-- window ($1 ms) and groups with nothing queued. Rows another transaction
-- holds are left for next time (SKIP LOCKED: the purge never waits, so it
-- never deadlocks with a send); a send that finds its group gone inserts
-- the row afresh.
WITH old_ids AS (
    DELETE FROM command_dedup d USING (
        SELECT topic, dedup_id FROM command_dedup
        WHERE sent_at < now() - $1::bigint * interval '1 millisecond'
        FOR UPDATE SKIP LOCKED
    ) o
    WHERE d.topic = o.topic AND d.dedup_id = o.dedup_id
    RETURNING 1
), empty_groups AS (
    DELETE FROM command_group g USING (
        SELECT topic, group_id FROM command_group WHERE queued = 0 FOR UPDATE SKIP LOCKED
    ) e
    WHERE g.topic = e.topic AND g.group_id = e.group_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM old_ids), (SELECT count(*) FROM empty_groups)
