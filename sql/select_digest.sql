-- Row count and an order-independent digest of a relation's rows: the sum of the first 64 bits
-- of md5(row text). Equal multisets of rows give equal digests on any server that renders the
-- values alike (dbsync sets TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output).
SELECT count(*) AS rows,
       coalesce(sum(('x' || substr(md5(ROW(:columns)::text), 1, 16))::bit(64)::bigint), 0)::text AS digest
FROM :relation AS t;
