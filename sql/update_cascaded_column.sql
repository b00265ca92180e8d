-- Carry an old -> new id map further down: a preserved row (g0) references, through a
-- multi-column key, a preserved row whose column in that key is about to be moved by the map
-- (a boarding pass's (ticket_no, flight_id) -> its ticket segment, whose flight_id follows a
-- re-keyed flight). Run before the referenced rows move; :moving holds when the row g0
-- references does move (nested EXISTS up to the rows the map moves directly), so only
-- references to rows that move follow them.
UPDATE :"preserved" AS g0
SET :"column" = k.new
FROM :"rekey" AS k
WHERE g0.:"column" = k.old
  AND :moving;
