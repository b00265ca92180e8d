-- The id of the current transaction (assigning one if it has written nothing yet) and the
-- session's process id, noted before COMMIT so that an interrupted COMMIT can be settled with
-- txid_status() afterwards, and the session cancelled if it is left waiting without a client.
SELECT txid_current()::text AS xid, pg_backend_pid() AS pid;
