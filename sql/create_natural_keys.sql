-- The source's ids of an excluded table with their natural keys, copied in to be matched.
CREATE TEMP TABLE :"keys" (src :pk_type, :key_columns) ON COMMIT DROP;
