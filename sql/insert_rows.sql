-- Load a synced table from a staged or preserved set, in one statement.
INSERT INTO :"table" (:columns) :overriding
SELECT :columns FROM :"source";
