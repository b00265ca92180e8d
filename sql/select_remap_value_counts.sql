-- The remap's counts for a column remapped on the way out of production (see
-- sql/copy_out_filtered_rows.sql), from its value counts: rows mapped by natural key, to the
-- fallback, to NULL (unmatched), and rows whose value the remap changed.
SELECT coalesce(sum(v.n) FILTER (WHERE m.matched), 0) AS by_natural_key,
       coalesce(sum(v.n) FILTER (WHERE NOT m.matched AND m.dst IS NOT NULL), 0) AS to_fallback,
       coalesce(sum(v.n) FILTER (WHERE m.dst IS NULL), 0) AS unmatched,
       coalesce(sum(v.n) FILTER (WHERE m.dst IS DISTINCT FROM m.src), 0) AS rewritten
FROM :"counts" AS v
JOIN :"map" AS m ON m.src = v.value;
