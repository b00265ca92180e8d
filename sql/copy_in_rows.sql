-- Receive a stream of rows into a staging table.
COPY :"stage" (:columns) FROM STDIN;
