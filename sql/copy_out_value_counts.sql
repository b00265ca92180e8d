-- How often each value of a reference to an excluded table occurs among the rows a filtered
-- COPY sends (before its remap): what the remap's counts in the report are computed from, on
-- the target, against the natural-key map. As many rows as distinct values (users), not rows.
COPY (:with_clause SELECT c.:"column", count(*) FROM :relation AS c WHERE NOT :excluded GROUP BY 1) TO STDOUT;
