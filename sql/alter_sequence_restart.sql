-- Move a sequence. ALTER SEQUENCE ... RESTART is transactional (setval() is not), so a rolled
-- back run leaves the sequence where it was.
ALTER SEQUENCE :"sequence" RESTART WITH :'value';
