-- Takes the head rows of a batch's logs ($1: names, sorted so that two
-- writers never wait on each other in opposite orders), creating them for
-- new logs, and returns each log's last position. The row locks are held
-- until the batch commits: a writer of the same log in another process
-- waits here, and then sees this batch's events.
INSERT INTO event_log_head (log, position)
SELECT name, 0 FROM UNNEST($1::text[]) AS name
ON CONFLICT (log) DO UPDATE SET position = event_log_head.position
RETURNING log, position
