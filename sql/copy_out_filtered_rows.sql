-- Stream a table's production rows out of the source, in the run's snapshot, without the rows
-- of production's test tenants (runner/dbsync/source_filter.py builds :with_clause, the test
-- tenants' rows of the tables this one depends on, and :excluded, true for a row of theirs).
-- :columns may rewrite references to excluded tables through :joins, small VALUES lists of the
-- natural-key maps' changing ids (production id -> target id): the remap, done on the way.
COPY (:with_clause SELECT :columns FROM :relation AS c :joins WHERE NOT :excluded) TO STDOUT;
