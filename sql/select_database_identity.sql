-- Who is this database? Compared between source and target to refuse syncing a database
-- into itself. pg_control_system() is readable by any role on PostgreSQL 10 and later.
SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       current_database() AS dbname,
       (SELECT oid::bigint FROM pg_database WHERE datname = current_database()) AS db_oid,
       current_setting('server_version_num')::int AS server_version_num,
       current_setting('server_version') AS server_version,
       current_user AS role;
