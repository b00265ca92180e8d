-- The id of the current transaction (assigning one if it has written nothing yet), noted
-- before COMMIT so that an interrupted COMMIT can be settled with txid_status() afterwards.
SELECT txid_current()::text AS xid;
