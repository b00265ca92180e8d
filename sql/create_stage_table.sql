-- Stage a synced table: an empty temporary table with the columns to copy and their types,
-- no constraints, gone at the end of the transaction. Production's rows land here first.
-- psql -v stage=dbsync_s_1 -v relation='ONLY public.apps_orders_order' -v columns='id, tenant_id' ...
CREATE TEMP TABLE :"stage" ON COMMIT DROP AS
SELECT :columns FROM :relation WITH NO DATA;
