"""The one error tree of dbsync, and the exit code each branch maps to.

Callers catch :class:`DbsyncError`; foreign exceptions (psycopg, the filesystem, pydantic) are
translated into these at the boundary with ``raise ... from exc``, so the CLI can print one
clear sentence and exit with a documented code, never a traceback::

    DbsyncError                      exit 1  (unexpected: a bug, reported as such)
    ├── BadInput                             nothing was changed; each kind its own code,
    │   │                                    so CI can tell "fix the secret" from "retry"
    │   ├── ConfigError              exit 2  malformed or invalid config file / option / URL
    │   ├── ConnectionFailed         exit 11 the server refused the login (user, password, db)
    │   │   └── HostUnreachable      exit 12 no server answered, or it cannot take connections
    │   ├── SchemaError              exit 13 the schemas do not fit the run (missing table or
    │   │                                    column, a type, row-level security, a difference)
    │   ├── StoreError               exit 14 backup store: credentials, bucket, endpoint, disk,
    │   │                                    or no single backup matches the one asked for
    │   └── ToolMissing              exit 15 no pg_dump/pg_restore as new as the server
    ├── Refused                      exit 3  a safety check refused the run; nothing changed
    │   └── SameDatabase                     source and target are one database
    ├── RolledBack                   exit 4  the run failed and the target was rolled back
    │   └── ProofFailed                      a pre-commit proof failed
    ├── OutcomeUnknown               exit 5  COMMIT was interrupted and the server could not
    │                                        be asked how it ended (see outcome.py)
    ├── BackupInvalid                exit 6  a backup is incomplete or does not match its manifest
    ├── RemoteError                  exit 7  dbsync run: SSH (launch/remote.py)
    ├── CloudError                   exit 8  dbsync run: DigitalOcean API (launch/digitalocean.py)
    └── ProvisionError               exit 9  dbsync run: Pulumi (launch/provision.py)
    (exit 10: dbsync run's teardown left something behind)
"""

from __future__ import annotations


class DbsyncError(Exception):
    """Base of every error dbsync raises on purpose."""

    exit_code = 1
    kind = "error"


class BadInput(DbsyncError):
    """The input (options, config, URLs, schema) is wrong; nothing was changed."""

    exit_code = 2
    kind = "bad_input"


class ConfigError(BadInput):
    """The config file or an option is malformed or invalid; the message names the key."""

    kind = "config"


class ConnectionFailed(BadInput):
    """A database server answered and refused the login: a wrong user, password or database
    name, or a URL its server does not accept. Rerunning will not help; the secret must change."""

    exit_code = 11
    kind = "connection"


class HostUnreachable(ConnectionFailed):
    """A database server could not be reached at all (name not resolved, connection refused or
    timed out), or it answered that it cannot take connections now. Unlike a refused login,
    this may pass: CI can tell the two apart by the exit code and retry this one."""

    exit_code = 12
    kind = "unreachable"


class SchemaError(BadInput):
    """The databases' schemas do not fit the run: a table or column it (or the config) names is
    missing or of the wrong type, source and target differ, or row-level security would hide
    rows from dbsync's role."""

    exit_code = 13
    kind = "schema"


class StoreError(BadInput):
    """The backup store cannot be used: wrong credentials, missing bucket, unreachable endpoint,
    unwritable folder, or a failed transfer; or it holds no single backup that matches the one
    asked for."""

    exit_code = 14
    kind = "store"


class ToolMissing(BadInput):
    """No pg_dump / pg_restore / psql at least as new as the server is installed."""

    exit_code = 15
    kind = "tool_missing"


class Refused(DbsyncError):
    """A safety check refused the run before anything was changed."""

    exit_code = 3
    kind = "refused"


class SameDatabase(Refused):
    """Source and target are the same database, however the URLs are spelled."""

    kind = "same_database"


class RolledBack(DbsyncError):
    """The run failed after it began changing the target; the transaction was rolled back."""

    exit_code = 4
    kind = "rolled_back"


class ProofFailed(RolledBack):
    """A proof checked before COMMIT failed, so the transaction was rolled back."""

    kind = "proof_failed"


class OutcomeUnknown(DbsyncError):
    """The connection was lost, or a signal came, while COMMIT was in flight, and the server's
    commit log could not be read within a few seconds (see outcome): the target may or may not
    be changed. The message names the transaction and the query that tells."""

    exit_code = 5
    kind = "outcome_unknown"


class BackupInvalid(DbsyncError):
    """A backup is incomplete, or its bytes do not match the size and SHA-256 of its manifest."""

    exit_code = 6
    kind = "backup_invalid"


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (a bug: please report it with the log)",
    2: "bad input: a malformed config file, option or URL; nothing was changed",
    3: "refused by a safety check; nothing was changed",
    4: "failed and rolled back; the target is exactly as it was",
    5: "connection lost, or a signal came, while COMMIT was in flight, and the server could not be "
    "asked how it ended; the message gives the query that tells",
    6: "a backup is incomplete or corrupt (verify/restore refused to use it)",
    7: "dbsync run: SSH to the runner failed (unreachable, host key mismatch, refused login)",
    8: "dbsync run: the DigitalOcean API failed (token, clusters, reaping)",
    9: "dbsync run: Pulumi failed (locked stack, failed up)",
    10: "dbsync run: the teardown left something behind (named in the log)",
    11: "a database refused the login (user, password or database name); nothing was changed",
    12: "a database host could not be reached, or cannot take connections now; nothing was changed",
    13: "the schemas do not fit the run: a table or column it names is missing or of another type, "
    "the two schemas differ, or row-level security hides rows; nothing was changed",
    14: "the backup store cannot be used (credentials, bucket, endpoint, folder, transfer), or "
    "holds no single backup that matches the one asked for",
    15: "no pg_dump, pg_restore or psql at least as new as the server; nothing was changed",
    130: "interrupted: the target transaction was rolled back (or, during or after COMMIT, the run "
    "is committed; the message says which)",
}
