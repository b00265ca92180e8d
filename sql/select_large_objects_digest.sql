-- Count and order-independent digest of every large object (its oid and its bytes).
SELECT count(*) AS objects,
       coalesce(sum(('x' || substr(md5(m.oid::text || ':' || md5(lo_get(m.oid))), 1, 16))::bit(64)::bigint), 0)::text
           AS digest
FROM pg_largeobject_metadata AS m;
