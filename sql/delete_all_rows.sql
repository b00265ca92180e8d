-- Empty a synced table that TRUNCATE cannot take (referenced from a table outside the sync).
DELETE FROM :relation;
