-- Carry an old -> new id map one step further down: a preserved row references, through a
-- multi-column key, a preserved row whose column in that key is about to be moved by the map
-- (a boarding pass's (ticket_no, flight_id) -> its ticket segment, whose flight_id follows a
-- re-keyed flight). Run before the referenced rows move, so that only references to rows that
-- do move follow them.
UPDATE :"preserved" AS g
SET :"column" = k.new
FROM :"rekey" AS k
WHERE g.:"column" = k.old
  AND EXISTS (SELECT 1 FROM :"referenced" AS c WHERE :reference);
