-- Receives sql/copy_out_value_counts.sql's stream.
CREATE TEMP TABLE :"counts" (value :value_type, n bigint) ON COMMIT DROP;
