-- Tells every process's receivers that topic $1 may have messages to take
-- (after a send, or an ack or release that freed a group). A transaction
-- of its own that does not wait for the disk: PostgreSQL serializes the
-- commits of notifying transactions, which must not include a flush.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('reventless_commands', $1::text)
