-- Cancel the session still running transaction :'xid' (a COMMIT whose client is gone: a COMMIT
-- waiting for a synchronous standby does not notice a lost client and would wait, locks held,
-- for as long as the standby is away). Cancelled there, the commit stands; cancelled before its
-- commit record (deferred triggers), it is rolled back. Either way txid_status() can then tell.
-- Only the session with that process id AND that transaction is signalled.
SELECT pg_cancel_backend(pid)
FROM pg_stat_activity
WHERE pid = :'pid'::int
  AND backend_xid::text::bigint = :'xid'::bigint % 4294967296;
