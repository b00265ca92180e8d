"""The one error tree of dbsync, and the exit code each branch maps to.

Callers catch :class:`DbsyncError`; foreign exceptions (psycopg, the filesystem, pydantic) are
translated into these at the boundary with ``raise ... from exc``, so the CLI can print one
clear sentence and exit with a documented code, never a traceback::

    DbsyncError                      exit 1  (unexpected: a bug, reported as such)
    ├── BadInput                     exit 2  nothing was changed
    │   ├── ConfigError                      malformed or invalid config file / option
    │   ├── ConnectionFailed                 wrong URL, password, unreachable host
    │   ├── SchemaError                      missing table/column, source and target differ
    │   ├── StoreError                       backup store: credentials, bucket, endpoint, disk
    │   └── ToolMissing                      no pg_dump/pg_restore as new as the server
    ├── Refused                      exit 3  a safety check refused the run; nothing changed
    │   └── SameDatabase                     source and target are one database
    ├── RolledBack                   exit 4  the run failed and the target was rolled back
    │   └── ProofFailed                      a pre-commit proof failed
    ├── OutcomeUnknown               exit 5  the connection died during COMMIT
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
    """A database could not be reached or refused our credentials."""

    kind = "connection"


class SchemaError(BadInput):
    """A table or column the run needs is missing, or source and target schemas differ."""

    kind = "schema"


class StoreError(BadInput):
    """The backup store cannot be used: wrong credentials, missing bucket, unreachable endpoint,
    unwritable folder, or a failed transfer."""

    kind = "store"


class ToolMissing(BadInput):
    """No pg_dump / pg_restore / psql at least as new as the server is installed."""

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
    """The connection was lost while COMMIT was in flight: the target may or may not be changed."""

    exit_code = 5
    kind = "outcome_unknown"


class BackupInvalid(DbsyncError):
    """A backup is incomplete, or its bytes do not match the size and SHA-256 of its manifest."""

    exit_code = 6
    kind = "backup_invalid"


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (a bug: please report it with the log)",
    2: "bad input: options, config, URLs or schema are wrong; nothing was changed",
    3: "refused by a safety check; nothing was changed",
    4: "failed and rolled back; the target is exactly as it was",
    5: "connection lost during COMMIT; check the target",
    6: "a backup is incomplete or corrupt (verify/restore refused to use it)",
    7: "dbsync run: SSH to the runner failed (unreachable, host key mismatch, refused login)",
    8: "dbsync run: the DigitalOcean API failed (token, clusters, reaping)",
    9: "dbsync run: Pulumi failed (locked stack, failed up)",
    10: "dbsync run: the teardown left something behind (named in the log)",
    130: "interrupted; the target transaction was rolled back",
}
