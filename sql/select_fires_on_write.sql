-- Whether writing a table's rows makes something else happen: a trigger of its own (enabled in
-- any mode; not the internal ones behind foreign keys) or a rewrite rule. Such a table is
-- always emptied and loaded by a sync, never left in place even when its rows already are
-- production's: a load fires its INSERT triggers for every row, leaving it in place fires them
-- for none, and the two databases would differ wherever a trigger writes.
SELECT EXISTS (SELECT 1 FROM pg_trigger AS t
               WHERE t.tgrelid = :'table'::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D')
    OR EXISTS (SELECT 1 FROM pg_rewrite AS r
               WHERE r.ev_class = :'table'::regclass AND r.rulename <> '_RETURN') AS fires;
