-- What became of a transaction, by the id txid_current() gave inside it: 'committed',
-- 'aborted' or 'in progress' (NULL once it is too old to tell). Read from PostgreSQL's commit
-- log, so any session on the same cluster (or on a standby that replayed it) can ask.
SELECT txid_status(:'xid'::bigint) AS status;
