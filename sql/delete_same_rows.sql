-- Referenced global rows that production has too: same primary key (every column of it) and the same value of every
-- other unique key (or, for a table without one, the same values in every column). The
-- reference holds as it is; the row itself is replaced by production's.
DELETE FROM :"set" AS r
USING :"stage" AS s
WHERE :same_pk AND :same_keys;
