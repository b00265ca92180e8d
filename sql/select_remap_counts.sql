-- How a staged column's references will be remapped: by natural key, to the fallback, or
-- unmatched (NULL).
SELECT count(*) FILTER (WHERE m.matched) AS by_natural_key,
       count(*) FILTER (WHERE NOT m.matched AND m.dst IS NOT NULL) AS to_fallback,
       count(*) FILTER (WHERE m.dst IS NULL) AS unmatched
FROM :"stage" AS s
JOIN :"map" AS m ON m.src = s.:"column";
