-- Stream a table's rows (the given columns) out of the source, in the run's snapshot.
COPY (SELECT :columns FROM :relation) TO STDOUT;
