"""``dbsync sync``: production's business data into UAT, in one transaction, proven before COMMIT.

The steps, in order (the report and the progress lines use these names):

1. ``connect``   both databases; refuse when they are one database.
2. ``inspect``   read both catalogs; production in a REPEATABLE READ, READ ONLY transaction
                 whose exported snapshot every later read of production uses.
3. ``plan``      decide tables, roles, order, remaps (:mod:`dbsync.plan`, pure).
4. ``lock``      open the target transaction (REPEATABLE READ, all deferrable constraints
                 deferred), lock the synced tables against writers, take the "before" digests.
   ``backup``    dump the target with pg_dump in that transaction's exported snapshot (exactly
                 what the run will replace) into the backup store. The step ends when pg_dump
                 has exited; reading the dump back, re-hashing it and writing its manifest run
                 on a thread beside steps 5-12, and ``commit`` waits for them. Every change
                 before that is inside the uncommitted transaction: nothing is committed
                 without a verified backup, and a backup that fails its check rolls back.
5. ``preserve``  collect UAT's test tenants and every row that belongs to them (the preserved
                 set) into temporary tables, and the global rows surviving rows may reference;
                 suspend the foreign keys that touch synced tables (re-added in ``apply``).
6. ``stage``     COPY production's rows. The *direct* load (the normal case) empties the synced
                 tables and COPYs straight into them: every row is written once. The *staged*
                 load COPYs into temporary tables instead, for a dry run (which must not empty
                 anything), when the role cannot suspend foreign keys, or when a synced table is
                 partitioned. Either way "the stage" below is where production's rows now are.
                 A direct table whose rows (preserved ones aside) already are exactly the rows
                 production sends is left in place instead (``skip_unchanged``): only its
                 preserved rows are removed, and the later steps find what the COPY would
                 have written.
7. ``scope``     drop production's test tenants and every row that belongs to them from the
                 stage; decide which referenced global rows to keep.
8. ``remap``     rewrite references to excluded tables (users, content types, ...) by natural
                 key.
9. ``rekey``     give preserved rows whose primary key production now uses fresh ids, and
                 update every reference to them; after each table's re-key, re-point the
                 references to its rows that production has under other ids; then resolve
                 the unique-key collisions the remap created, and refuse on any other unique
                 key shared with production.
10. ``apply``    direct: insert the preserved rows; staged: empty the synced tables and load
                 preserved + staged rows (parents first). Then re-add the foreign keys, which
                 checks every row against each.
11. ``sequences`` move every sequence of a synced table past the largest id, plus headroom.
12. ``prove``    counts, digests, foreign keys, preserved rows, untouched tables, fallback
                 user, sequences; any failure rolls everything back.
13. ``commit``    wait for the backup's check, COMMIT, then keep the newest N backups of the
                 series (pruning never fails a run).

The content proof is a chain from production: production's digest of each table (taken in the
snapshot, on a second connection, while the COPY streams), minus the digests of the rows the
run removed from the stage, plus the change of digest of every row it rewrote (each statement
that changes the stage returns what it changed), plus the preserved rows, must equal the final
table's digest. One scan of each table at the end proves the load, the filtering and the
rewrites; nothing is hashed twice.

Nothing is written to the target outside that one transaction, and the source is only read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.pq import TransactionStatus

from . import faults, outcome
from .backup import DEFAULT_COMPRESSION, BackupFailed, Owner, Sealing, dump_backup, prune, series_for
from .catalog import INTEGER_RANGES, Catalog, ForeignKey, SequenceUse, Table, TableName, read_catalog
from .compression import Compression
from .config import SyncConfig
from .connect import Connection, Endpoint, close_all, connect
from .copy_out import copy_out
from .errors import ConfigError, DbsyncError, OutcomeUnknown, ProofFailed, Refused, RolledBack
from .fingerprint import table_counts
from .identity import Identity, identify, refuse_same_database
from .pgtools import find_tool, server_major
from .plan import Edge, GenericRelation, Plan, TablePlan, make_plan
from .progress import Progress
from .readers import SnapshotReaders, readers_beside
from .redact import redact
from .report import Proof, Report, TableEntry, commit_settled, pruning_after_commit
from .source_filter import Filter, Link, plan_filters
from .sqlfiles import query
from .sqlparts import columns, equal, key_items, not_null, relation, temp
from .store import BackupStore

Digest = tuple[int, int]  # (rows, sum of 64-bit row hashes)


@dataclass(frozen=True)
class _GenericEdge:
    """One generic relation narrowed to one content type: rows of ``relation.table`` whose
    content type column equals ``content_type`` point at ``parent`` rows by primary key."""

    relation: GenericRelation
    content_type: Any
    parent: TableName
    parent_pk: str

    def match(self, child: str = "c", parent: str = "p") -> sql.Composed:
        """The join condition between a generic row (alias ``child``) and a parent row."""
        return sql.SQL("{} = {} AND {}::text = {}::text").format(
            sql.Identifier(child, self.relation.content_type_column),
            sql.Literal(self.content_type),
            sql.Identifier(child, self.relation.object_id_column),
            sql.Identifier(parent, self.parent_pk),
        )


@dataclass(frozen=True)
class BackupSettings:
    """Where the pre-sync backup of the target goes, under which series, and how many to keep."""

    store: BackupStore
    series: str | None = None  # None: derived from the target
    retain: int = 7
    compression: Compression = DEFAULT_COMPRESSION


@dataclass
class _State:
    """What the steps hand to each other: temp table names and the numbers proofs compare."""

    stage: dict[TableName, str] = field(default_factory=dict)  # temp table names (staged load)
    stage_rel: dict[TableName, sql.Composable] = field(default_factory=dict)  # where the rows are
    expected: dict[TableName, Digest] = field(default_factory=dict)  # the stage's digest, accounted
    direct: bool = False  # the synced tables are emptied before the load, not after
    into_table: set[TableName] = field(default_factory=set)  # loaded straight into the table
    # direct tables emptied only at their turn: left in place if their rows already are production's
    skippable: set[TableName] = field(default_factory=set)
    unchanged: set[TableName] = field(default_factory=set)  # those left in place
    changing_maps: set[TableName] = field(default_factory=set)  # maps that change some id
    map_changes: dict[TableName, list[tuple[Any, Any]]] = field(default_factory=dict)  # small maps
    source_remapped: set[TableName] = field(default_factory=set)  # remapped in production's SELECT
    value_counts: dict[tuple[TableName, str], str] = field(default_factory=dict)
    source_filtered: bool = False  # production's test tenants were left out by the COPY
    filters: dict[TableName, Filter] | None = None  # how the COPY leaves them out, if it can
    used_content_types: dict[TableName, set[Any]] = field(default_factory=dict)  # in production
    suspended: list[ForeignKey] = field(default_factory=list)  # dropped, re-added in apply
    unvalidated_checks: list[tuple[TableName, str, str]] = field(default_factory=list)  # likewise
    candidates: dict[TableName, str] = field(default_factory=dict)  # global rows kept aside
    preserved_sizes: dict[TableName, int] = field(default_factory=dict)
    preserved: dict[TableName, str] = field(default_factory=dict)
    rekey: dict[TableName, str] = field(default_factory=dict)
    alias: dict[TableName, str] = field(default_factory=dict)
    # (table, column) -> the maps carried into it through a multi-column key (see _cascade)
    cascaded: dict[tuple[TableName, str], list[str]] = field(default_factory=dict)
    content_types: dict[str, dict[Any, TableName]] = field(default_factory=dict)  # side -> id -> table
    maps: dict[TableName, str] = field(default_factory=dict)
    before: dict[TableName, Digest] = field(default_factory=dict)
    preserved_digest: dict[TableName, Digest] = field(default_factory=dict)
    fallback_user: Any = None
    fallback_used: bool = False
    # (table, column) -> production's largest id (smallest, for a descending sequence)
    max_incoming: dict[tuple[TableName, str], Any] = field(default_factory=dict)
    validated_keys: set[tuple[TableName, str]] = field(default_factory=set)  # proven when re-added


def _digest(cur: psycopg.Cursor[Any], rel: sql.Composable, cols: sql.Composable) -> Digest:
    cur.execute(query("select_sync_digest", relation=rel, columns=cols))
    return _fetch_digest(cur)


def _fetch_digest(cur: psycopg.Cursor[Any]) -> Digest:
    row = cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _relay(source: psycopg.Connection[Any], statement: sql.Composable, into: psycopg.Copy) -> None:
    """Pass production's COPY on to the target's in pieces of about 64 KiB, read from libpq
    many rows at a time (see :mod:`dbsync.copy_out`): the server sends a message a row, and a
    Python step a row costs more than the bytes it carries. Memory stays bounded by the piece."""
    for piece in copy_out(source, statement):
        into.write(piece)


def _returning(cols: tuple[str, ...], old: dict[str, sql.Composable] | None = None) -> dict[str, Any]:
    """The RETURNING list and row expressions of a statement that changes stage rows (see
    sql/update_remap_column.sql): new values as n1..nk, and, when ``old`` gives the old value of
    the changed columns, the old row as o1..ok (the other columns are unchanged)."""
    new_items = [
        sql.SQL("s.{} AS {}").format(sql.Identifier(c), sql.Identifier(f"n{i}")) for i, c in enumerate(cols)
    ]
    names = [sql.Identifier("c", f"n{i}") for i in range(len(cols))]
    parts: dict[str, Any] = {"new_row": sql.SQL(", ").join(names)}
    items = list(new_items)
    if old is not None:
        items += [
            sql.SQL("{} AS {}").format(old.get(c, sql.Identifier("s", c)), sql.Identifier(f"o{i}"))
            for i, c in enumerate(cols)
        ]
        parts["old_row"] = sql.SQL(", ").join(sql.Identifier("c", f"o{i}") for i in range(len(cols)))
    parts["returned"] = sql.SQL(", ").join(items)
    return parts


def _scalar(cur: psycopg.Cursor[Any], statement: sql.Composed | sql.SQL) -> Any:
    cur.execute(statement)
    row = cur.fetchone()
    return None if row is None else row[0]


def _generic_restore(
    edge: _GenericEdge,
) -> tuple[Callable[[sql.Identifier], sql.Composable], Callable[[sql.Identifier], sql.Composable]]:
    """Join condition and old-value expression that turn a followed generic reference back."""
    rel = edge.relation

    def on(m: sql.Identifier) -> sql.Composable:
        return sql.SQL("{} = {} AND {}.new::text = {}::text").format(
            sql.Identifier("t", rel.content_type_column),
            sql.Literal(edge.content_type),
            m,
            sql.Identifier("t", rel.object_id_column),
        )

    def old(m: sql.Identifier) -> sql.Composable:
        return sql.SQL("CAST({}.old::text AS {})").format(m, sql.SQL(rel.object_id_type))

    return on, old


def _add_constraint(cur: psycopg.Cursor[Any], on: TableName, name: str, definition: str) -> None:
    """Re-create a dropped constraint from its ``pg_get_constraintdef`` text, under its name."""
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            on.ident, sql.Identifier(name), sql.SQL(definition)
        )
    )


def _plain(value: Any) -> Any:
    """An id as JSON can hold it (uuids as text)."""
    return value if isinstance(value, int | str) else str(value)


def _db_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip()]
    if diag.message_detail:
        parts.append(diag.message_detail)
    return redact(" ".join(parts))


@dataclass(frozen=True)
class _ReadSpec:
    """One table's read of production: its COPY statement, the filter it applies (None: none),
    and the digest of what it sends, run on one of the snapshot readers."""

    copy_out: sql.Composed
    shaped: Filter | None
    digest: Callable[[Connection], tuple[Digest, int]]


class SyncRun:
    """One run of ``dbsync sync``. Create, then :meth:`run`; the report is filled either way."""

    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        config: SyncConfig,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        report: Report | None = None,
        backup: BackupSettings | None = None,
        jobs: int | None = None,
    ) -> None:
        self.jobs = jobs
        self.backup = backup
        self._sealing: Sealing | None = None  # the backup, read back beside the run (see _backup)
        self._series_choice: tuple[str, Owner] = ("", Owner("", "", ""))  # set by _lock (see _choose_series)
        self.target_snapshot: str | None = None
        self.target_identity: Identity | None = None
        self.source_ep = source
        self.target_ep = target
        self.config = config
        self.dry_run = dry_run
        self.progress = progress or Progress(quiet=True)
        self.report = report or Report(command="sync", dry_run=dry_run)
        self.report.source = {"database": source.description}
        self.report.target = {"database": target.description}
        self.src: Connection | None = None
        self.tgt: Connection | None = None
        self.plan: Plan | None = None
        self.state = _State()
        self._readers: SnapshotReaders | None = None  # production's digests (preserve to stage)
        self._specs: dict[TableName, _ReadSpec] = {}
        self._digests: dict[TableName, Future[tuple[Digest, int]]] = {}
        self._in_transaction = False
        self._current_step: str | None = None

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Report:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("connect", self._connect),
            ("inspect", self._inspect),
            ("plan", self._plan),
            ("lock", self._lock),
            *([("backup", self._backup)] if self.backup is not None and not self.dry_run else []),
            ("preserve", self._preserve),
            ("stage", self._stage),
            ("scope", self._scope),
            ("remap", self._remap),
            ("rekey", self._rekey),
        ]
        if not self.dry_run:
            steps += [
                ("apply", self._apply),
                ("sequences", self._sequences),
                ("prove", self._prove),
                ("commit", self._commit),
            ]
        try:
            try:
                for name, action in steps:
                    self._current_step = name
                    with self.progress.step(self.report, name):
                        faults.checkpoint(name)
                        action()
                if self.dry_run:
                    self._rollback()
                    self.report.finish("dry_run")
                    return self.report
            except BaseException as exc:
                self._fail(exc)
                raise self._translate(exc) from None
            # Committed: an interruption while old backups are pruned leaves the status as it
            # is (the CLI says the sync was committed), never "rolled back".
            self._retain()
            return self.report
        finally:
            self._close()

    def _fail(self, exc: BaseException) -> None:
        if self.report.status == "committed":  # a signal after COMMIT: nothing to undo or say
            return
        was_open = self._in_transaction
        error = self._translate(exc)
        self._stop_digests()  # production's readers stop now, not after the rollback's waits
        # The report first: a second signal during the cleanup below still leaves it right.
        if isinstance(error, DbsyncError):
            self.report.fail(self._current_step, error.kind, str(error))
        else:
            self.report.fail(self._current_step, "interrupted", "interrupted by a signal")
        if isinstance(error, OutcomeUnknown):
            self.report.finish("outcome_unknown")
        elif isinstance(error, Refused):
            self.report.finish("refused")
        elif isinstance(exc, KeyboardInterrupt):  # as restore says it, and as exit 130 does
            self.report.finish("interrupted")
        elif isinstance(error, RolledBack) or was_open:
            self.report.finish("rolled_back")
        else:
            self.report.finish("failed")
        self._rollback()
        if not isinstance(exc, KeyboardInterrupt):
            self._settle_backup()

    def _translate(self, exc: BaseException) -> BaseException:
        """Our error for ``exc``. Our own errors pass through (a refusal stays a refusal even
        inside the target transaction: it was rolled back before anything was written);
        anything else that happens once the target transaction is open becomes RolledBack."""
        if isinstance(exc, DbsyncError | KeyboardInterrupt):
            return exc
        step = self._current_step
        if isinstance(exc, psycopg.Error):
            message = f"step {step} failed: {_db_message(exc)}"
        else:
            message = f"step {step} failed: {type(exc).__name__}: {redact(str(exc))}"
        if self._began_writing():
            return RolledBack(message + "; the target transaction was rolled back, nothing changed")
        return DbsyncError(message)

    def _began_writing(self) -> bool:
        return self._current_step not in (None, "connect", "inspect", "plan")

    def _rollback(self) -> None:
        if self.tgt is not None and not self.tgt.closed:
            # If the connection is gone, the server has already aborted the transaction.
            with contextlib.suppress(psycopg.Error):
                self.tgt.rollback()
        self._in_transaction = False

    def _close(self) -> None:
        try:
            self._stop_digests()
        finally:
            close_all(self.src, self.tgt)

    # -- 1. connect --------------------------------------------------------------------------

    def _connect(self) -> None:
        self.src = connect(self.source_ep)
        self.tgt = connect(self.target_ep)
        src_id = identify(self.src)
        tgt_id = identify(self.tgt)
        self.target_identity = tgt_id
        for side, ident in (("source", src_id), ("target", tgt_id)):
            getattr(self.report, side).update(
                server_version=ident.server_version,
                system_identifier=ident.system_identifier,
                dbname=ident.dbname,
                role=ident.role,
            )
        refuse_same_database(self.src, self.tgt, src_id, tgt_id, self.target_ep.description)

    # -- 2. inspect --------------------------------------------------------------------------

    def _inspect(self) -> None:
        assert self.src is not None and self.tgt is not None
        self.src.autocommit = False
        self.src.isolation_level = IsolationLevel.REPEATABLE_READ
        self.src.read_only = True
        with self.src.cursor() as cur:
            self.report.snapshot = _scalar(cur, sql.SQL("SELECT pg_export_snapshot()"))
        self.source_catalog = read_catalog(self.src, self.config.schemas)
        self.target_catalog = read_catalog(self.tgt, self.config.schemas)

    # -- 3. plan -----------------------------------------------------------------------------

    def _plan(self) -> None:
        self.plan = make_plan(self.source_catalog, self.target_catalog, self.config)
        if self.config.tenants.test_values is not None:
            self._check_test_values()
        self.report.excluded_tables = [str(t) for t in self.plan.excluded]
        self.report.untouched_tables = [str(t) for t in self.plan.untouched]
        self.report.warnings.extend(self.plan.warnings)
        for i, tp in enumerate(self.plan.tables):
            self.state.stage[tp.name] = f"dbsync_s_{i}"
            self.state.preserved[tp.name] = f"dbsync_p_{i}"
            self.report.tables.append(TableEntry(table=str(tp.name), role=tp.role))
        self.progress.say(
            f"plan: {len(self.plan.tables)} synced tables, {len(self.plan.excluded)} excluded, "
            f"{len(self.plan.untouched)} untouched, {len(self.plan.maps)} natural-key maps"
        )

    def _check_test_values(self) -> None:
        """``tenants.test_values`` are read as the tenant column's own type: one that is not a
        value of that type is a configuration error now, not a failed COPY later. PostgreSQL
        reads the literals while it plans the statement, so LIMIT 0 reads no row."""
        assert self.plan is not None and self.src is not None and self.tgt is not None
        tenants = self.config.tenants
        for side, conn, catalog in (
            ("source", self.src, self.source_catalog),
            ("target", self.tgt, self.target_catalog),
        ):
            table = catalog.tables[self.plan.tenant_table]
            check = sql.SQL("SELECT 1 FROM {} AS t WHERE {} LIMIT 0").format(
                relation(table), tenants.test_match("t")
            )
            try:
                with conn.cursor() as cur:
                    cur.execute(check)
            except (psycopg.errors.DataError, psycopg.errors.UndefinedFunction) as exc:  # no "=": json
                column = table.column(tenants.test_column)
                assert column is not None
                raise ConfigError(
                    f"tenants.test_values: {_db_message(exc)} (the values are compared with "
                    f"{table.name}.{column.name}, a {column.type} column in the {side} database)"
                ) from None

    # -- 4. lock -----------------------------------------------------------------------------

    def _choose_series(self) -> tuple[str, Owner]:
        """The backup's series and its owner, before the lock step takes UAT's locks: the
        choice may read the store (see backup.series_for)."""
        assert self.tgt is not None and self.backup is not None
        ident = self.target_identity
        assert ident is not None
        owner = Owner(ident.system_identifier, ident.dbname, self.target_ep.description)
        if self.backup.series is not None:
            return self.backup.series, owner
        port = str(self.tgt.info.port)
        series, moved = series_for(self.backup.store, self.target_ep, "pre-sync", owner, port)
        if moved:
            self.report.warnings.append(moved)
        return series, owner

    def _lock(self) -> None:
        assert self.tgt is not None and self.plan is not None
        if self.backup is not None and not self.dry_run:
            self._series_choice = self._choose_series()
        tgt = self.tgt
        tgt.autocommit = False
        tgt.isolation_level = IsolationLevel.REPEATABLE_READ
        self._in_transaction = True
        with tgt.cursor() as cur:
            # Neither SET nor LOCK takes the transaction's snapshot: the snapshot is taken
            # after the locks, so it already includes every write the locks waited for.
            cur.execute(
                sql.SQL("SET LOCAL lock_timeout = {}").format(
                    sql.Literal(f"{int(self.config.lock_timeout_seconds * 1000)}ms")
                )
            )
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
            if not self.dry_run:
                try:
                    cur.execute(
                        sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
                            sql.SQL(", ").join(t.ident for t in self.plan.synced)
                        )
                    )
                except psycopg.errors.LockNotAvailable:
                    raise RolledBack(
                        f"the target's synced tables are in use: they could not be locked within "
                        f"{self.config.lock_timeout_seconds:g}s (lock_timeout_seconds); nothing "
                        "changed, run again when the target is quieter"
                    ) from None
            if self.backup is not None and not self.dry_run:
                # The backup is dumped in this very snapshot: exactly what the run replaces.
                self.target_snapshot = _scalar(cur, sql.SQL("SELECT pg_export_snapshot()"))
            if read_catalog(tgt, self.config.schemas) != self.target_catalog:
                raise RolledBack("the target's schema changed while dbsync was planning; run again")
            for name in (*self.plan.excluded, *self.plan.untouched):
                self.state.before[name] = _digest(
                    cur, relation(self.target_catalog.tables[name]), sql.SQL("t")
                )
            for tp in self.plan.tables:
                rows = _scalar(cur, sql.SQL("SELECT count(*) FROM {}").format(relation(tp.table)))
                self.report.table(str(tp.name)).rows_target_before = int(rows)

    # -- 4b. backup ---------------------------------------------------------------------------

    def _backup(self) -> None:
        """Dump the target in the run's own snapshot into the store. pg_dump has exited (its
        locks are gone) when this returns; the read-back, re-hash and manifest run on a thread
        beside the next steps, and :meth:`_commit` waits for them: nothing is committed
        without a verified backup, and a backup that fails its check rolls the run back."""
        assert self.tgt is not None and self.backup is not None and self.target_identity is not None
        ident = self.target_identity
        tool = find_tool("pg_dump", server_major(ident.server_version_num))
        series = self._series_choice[0]
        with self.tgt.cursor() as cur:
            counts = table_counts(cur)
        try:
            unsealed = dump_backup(
                self.backup.store,
                conninfo=self.target_ep.conninfo,
                tool=tool,
                series=series,
                run_id=self.report.run_id,
                kind="pre-sync",
                database={
                    "description": self.target_ep.description,
                    "dbname": ident.dbname,
                    "system_identifier": ident.system_identifier,
                },
                server_version=ident.server_version,
                tables=counts,
                snapshot=self.target_snapshot,
                compression=self.backup.compression,
                lock_wait_seconds=self.config.lock_timeout_seconds,
            )
        except BackupFailed as exc:
            if "LOCK TABLE" not in str(exc):
                raise
            # pg_dump's share lock queued behind a statement waiting on the run's own locks
            raise RolledBack(
                f"the target's tables are in use: pg_dump could not lock them within "
                f"{self.config.lock_timeout_seconds:g}s (lock_timeout_seconds); nothing changed, "
                "run again when the target is quieter"
            ) from None
        self.progress.say(f"backup: {unsealed.written.size:,} bytes to {unsealed.written.key}, checking")
        self.report.backup = {
            "store": self.backup.store.url,
            "series": series,
            "restore_with": f"dbsync backups restore --backup-store {self.backup.store.url.split(' ')[0]} "
            f"--series {series} {self.report.run_id} --target URL",
        }
        self._sealing = Sealing(unsealed, self.report.backup)

    def _await_backup(self) -> None:
        """Wait for the backup's read-back (see :meth:`_backup`); its failure is the backup
        step's, whichever step waited for it."""
        if self._sealing is None:
            return
        try:
            self._sealing.wait("the target")
        except Exception:
            self._current_step = "backup"
            raise
        self.progress.say(f"backup: {self._sealing.entry['key']} read back and verified")

    def _settle_backup(self) -> None:
        """A run that failed for another reason still completes its backup, as it did when the
        read-back preceded the changes: operators find it verified in the store and the report."""
        error = self._sealing.settle() if self._sealing is not None else None
        if error is not None and self._current_step != "backup":  # else the run's own error
            self.report.warnings.append(f"the backup of the target did not complete: {redact(str(error))}")

    def _retain(self) -> None:
        """Keep the newest N backups of the series; a failure here is a warning, not a failure
        of the sync that already committed."""
        with pruning_after_commit(self.report):
            faults.checkpoint("retain")
            if self.backup is None or self.report.backup is None:
                return
            plan = prune(
                self.backup.store,
                self.report.backup["series"],
                self.backup.retain,
                protect=[self.report.run_id],
                owner=self._series_choice[1],
            )
            self.report.backup["pruned"] = [b.folder for b in [*plan.delete, *plan.leftovers]]

    # -- 6. stage ----------------------------------------------------------------------------

    def _stage(self) -> None:
        assert self.src is not None and self.tgt is not None and self.plan is not None
        if self.state.direct:
            with self.tgt.cursor() as cur:
                self.state.skippable = self._skippable(cur)
                later = self.state.skippable
                self._empty_tables(cur, [tp for tp in self.plan.tables if tp.name not in later])
            faults.checkpoint("stage.load")
        assert self._readers is not None  # started in preserve
        try:
            for tp in self.plan.tables:
                self._stage_table(tp, self._specs[tp.name], self._digests[tp.name])
        finally:
            self._stop_digests()
        # Production is read for the remap's counts here, then no more.

    def _start_digests(self) -> None:
        """Open the readers and queue every table's digest of what its COPY will send, in load
        order. Called as soon as the filters and remaps are decided (in ``preserve``), so that
        production hashes while the target builds its preserved sets: a table the load may
        leave in place waits for its digest before anything else (see :meth:`_left_in_place`)."""
        assert self.plan is not None and self.report.snapshot is not None
        filters = self.state.filters
        self.state.source_filtered = filters is not None
        self._specs = {
            tp.name: self._read_spec(tp, filters.get(tp.name) if filters else None) for tp in self.plan.tables
        }
        # --jobs connections read production at once: the COPY's, and the others take every
        # table's digest, queued in load order (with more than one, they run ahead of the COPY
        # instead of one beside each table). Without parallel workers: those would take more of
        # production's cores than --jobs grants, and compete with the COPY the target waits for
        # (measured: 0.15-0.2 s less per sync at the benchmark's scale).
        self._readers = SnapshotReaders(
            self.source_ep, self.report.snapshot, readers_beside(self.jobs), parallel_workers=False
        )
        self._digests = {name: self._readers.submit(spec.digest) for name, spec in self._specs.items()}

    def _stop_digests(self) -> None:
        """Close the readers (a digest still queued is cancelled, one running is interrupted)."""
        if self._readers is not None:
            self._readers.close()
            self._readers = None

    def _skippable(self, cur: psycopg.Cursor[Any]) -> set[TableName]:
        """The direct-load tables that may be left in place (``skip_unchanged``): those whose load
        is production's COPY and nothing else until the preserved rows return, so that rows
        equal to what the COPY would send make every later step act as after the COPY. Not a
        table rewritten on the target (remaps, conflicts: staged anyway), nor one whose test
        tenants are removed after the copy (a cycle), nor one with a column the COPY does not
        write (the load would reset it to its default, or compute a generated column afresh;
        leaving the rows would keep UAT's value), nor one with triggers or rules of its own
        (a load fires them for every row, leaving it in place for none).

        They are locked now as the TRUNCATE of the others locks those: readers wait from the
        load on, as for every table a load empties, and no table is locked later in the load."""
        assert self.plan is not None
        if not self.config.skip_unchanged or self.state.filters is None:
            return set()
        skippable = set()
        for tp in self.plan.tables:
            if tp.name not in self.state.into_table:
                continue
            if set(tp.copy_columns) != set(tp.table.writable_columns):
                continue
            if any(c.generated for c in tp.table.columns):
                continue
            if _scalar(cur, query("select_fires_on_write", table=tp.name.ident.as_string(cur))):
                continue
            skippable.add(tp.name)
        exclusive = [tp.table for tp in self.plan.tables if tp.name in skippable & self.plan.truncatable]
        if exclusive:
            try:
                cur.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                        sql.SQL(", ").join(t.name.ident for t in exclusive)
                    )
                )
            except psycopg.errors.LockNotAvailable:
                raise RolledBack(
                    f"the target's synced tables are being read: they could not be locked for the "
                    f"load within {self.config.lock_timeout_seconds:g}s (lock_timeout_seconds); "
                    "nothing changed, run again when the target is quieter"
                ) from None
        return skippable

    def _left_in_place(self, cur: psycopg.Cursor[Any], tp: TablePlan, source: Digest) -> int | None:
        """For a skippable table: when its rows other than the preserved ones are exactly the
        rows production sends (``source``: their count and digest, over the same columns as the
        content proof), remove only the preserved rows (``apply`` inserts them again, re-keyed
        as needed, as after any load) and return how many rows are left; None when the table
        must be emptied and loaded. Compared before anything is removed; the count first, which
        costs no scan. The content proof later checks the table like any loaded one."""
        entry = self.report.table(str(tp.name))
        pset = self.state.preserved[tp.name]
        if entry.rows_target_before - self.state.preserved_sizes.get(tp.name, 0) != source[0]:
            return None
        cols = columns(tp.copy_columns)
        whole = _digest(cur, relation(tp.table), cols)
        kept = _digest(cur, temp(pset), cols)
        if (whole[0] - kept[0], whole[1] - kept[1]) != source:
            return None
        parts = _returning(tp.copy_columns)
        cur.execute(
            query(
                "delete_set_rows",
                stage=relation(tp.table),
                set=pset,
                returned=parts["returned"],
                row=parts["new_row"],
            )
        )
        removed = _fetch_digest(cur)
        entry.rows_deleted += removed[0]
        if removed != (kept[0], -kept[1]):  # the set no longer names these rows: load instead
            return None
        faults.checkpoint("stage.unchanged")
        return whole[0] - removed[0]

    def _source_filters(self) -> dict[TableName, Filter] | None:
        """Conditions that leave production's test tenants out of the COPY itself (see
        :mod:`dbsync.source_filter`); None when a cycle needs the target-side fixed point."""
        assert self.plan is not None
        plan = self.plan
        links = [
            Link(
                e.child,
                e.parent,
                tuple(sql.Identifier("c", col) for col in e.columns),
                tuple(sql.Identifier("p", col) for col in e.ref_columns),
            )
            for e in plan.edges
        ]
        links += [
            Link(
                g.relation.table,
                g.parent,
                (sql.SQL("{}::text").format(sql.Identifier("c", g.relation.object_id_column)),),
                (sql.SQL("{}::text").format(sql.Identifier("p", g.parent_pk)),),
                sql.SQL("{} = {}").format(
                    sql.Identifier("c", g.relation.content_type_column), sql.Literal(g.content_type)
                ),
            )
            for g in self._generic_edges("source")
            if g.content_type in self._used_content_types(g.relation)
        ]
        seed = self.config.tenants.test_match("c")
        relations = {tp.name: relation(tp.table) for tp in plan.tables}
        filters = plan_filters(plan.synced, relations, plan.tenant_table, seed, links)
        if filters is None:
            self.progress.say(
                "stage: a cycle among tenant-scoped tables: test tenants are removed after the copy"
            )
        return filters

    def _used_content_types(self, generic: GenericRelation) -> set[Any]:
        """The content types ``generic``'s rows name in production's snapshot (cached)."""
        assert self.src is not None
        if generic.table not in self.state.used_content_types:
            with self.src.cursor() as cur:
                cur.execute(
                    query(
                        "select_used_content_types",
                        relation=relation(self.source_catalog.tables[generic.table]),
                        ct_column=generic.content_type_column,
                    )
                )
                self.state.used_content_types[generic.table] = {row[0] for row in cur.fetchall()}
        return self.state.used_content_types[generic.table]

    def _read_spec(self, tp: TablePlan, source_filter: Filter | None) -> _ReadSpec:
        """How one table is read from production: the COPY, and the digest of exactly what it
        sends (the start of the content proof's chain, see the module's docstring)."""
        cols = columns(tp.copy_columns)
        rel = relation(tp.table)
        select_list, joins = self._projection(tp)
        if source_filter is None and joins is None:
            # Neither filtered nor remapped: the plain statements, which a DBA reads most easily.
            def plain(conn: Connection) -> tuple[Digest, int]:
                with conn.cursor() as cur:
                    return _digest(cur, rel, cols), 0

            return _ReadSpec(query("copy_out_rows", columns=cols, relation=rel), None, plain)
        shaped = source_filter or Filter(sql.SQL(""), sql.SQL("false"))
        statement = query(
            "copy_out_filtered_rows",
            with_clause=shaped.with_clause,
            columns=select_list,
            relation=rel,
            joins=joins or sql.SQL(""),
            excluded=shaped.excluded,
        )
        digest_query = query(
            "select_filtered_digest",
            with_clause=shaped.with_clause,
            columns=select_list,
            row=columns(tp.copy_columns, "e"),
            excluded=shaped.excluded,
            relation=rel,
            joins=joins or sql.SQL(""),
        )

        def filtered(conn: Connection) -> tuple[Digest, int]:
            with conn.cursor() as cur:
                cur.execute(digest_query)
                found: tuple[Any, ...] | None = cur.fetchone()
                assert found is not None
                return (int(found[0]), int(found[1])), int(found[2])

        return _ReadSpec(statement, shaped, filtered)

    def _stage_table(self, tp: TablePlan, spec: _ReadSpec, pending: Future[tuple[Digest, int]]) -> None:
        """COPY one table's production rows into the stage; its digest is being taken meanwhile.
        A skippable table waits for that digest instead, and is left in place when its rows
        already are production's (see :meth:`_left_in_place`)."""
        assert self.src is not None and self.tgt is not None
        entry = self.report.table(str(tp.name))
        started = time.monotonic()
        with self.tgt.cursor() as tcur:
            left: int | None = None
            if tp.name in self.state.skippable:
                left = self._left_in_place(tcur, tp, pending.result()[0])
                if left is None:
                    self._empty_tables(tcur, [tp])
            if left is None:
                received = self._copy_in(tcur, tp, spec)
            else:
                self.state.stage_rel[tp.name] = relation(tp.table)
                self.state.unchanged.add(tp.name)
                self.report.load[str(tp.name)] = "unchanged"
                received = left
            if tp.name in self.state.source_remapped:
                self._copy_value_counts(tp, tcur, spec.shaped or Filter(sql.SQL(""), sql.SQL("false")))
        source_digest, left_out = pending.result()
        entry.rows_source = source_digest[0] + left_out
        entry.rows_excluded_test = left_out
        self.state.expected[tp.name] = source_digest
        if left is not None:
            # Not a check of its own: the record of the comparison that left the table in place.
            self._proof(
                "in_place",
                str(tp.name),
                True,
                f"source {source_digest[0]} rows in the snapshot ({left_out} of test tenants left "
                f"out); UAT's {received} rows besides the preserved ones had the same count and "
                "digest, and were left in place; the content proof checks the table at the end",
            )
        else:
            self._proof(
                "transit",
                str(tp.name),
                received == source_digest[0],
                f"source {source_digest[0]} rows in the snapshot ({left_out} of test tenants left out), "
                f"COPY loaded {received}; the content is proven from production's digest by the "
                "content proof",
                fatal=True,
            )
        entry.seconds += time.monotonic() - started
        note = f" ({left_out:,} of production's test tenants left out)" if left_out else ""
        if left is not None:
            note += ", unchanged: left in place"
        self.progress.say(f"stage {tp.name}: {source_digest[0]:,} rows{note}")

    def _copy_in(self, tcur: psycopg.Cursor[Any], tp: TablePlan, spec: _ReadSpec) -> int:
        """COPY production's rows of one table into the stage (the table itself, its indexes and
        keys rebuilt after; or a temporary table); returns how many rows arrived."""
        assert self.src is not None
        cols = columns(tp.copy_columns)
        rel = relation(tp.table)
        rebuild: list[sql.Composed] = []
        if tp.name in self.state.into_table:
            into_table: sql.Composable = tp.name.ident  # COPY writes this very table, no children
            self.state.stage_rel[tp.name] = rel
            rebuild = self._drop_rebuildable(tcur, tp)
        else:
            stage = self.state.stage[tp.name]
            tcur.execute(query("create_stage_table", stage=stage, relation=rel, columns=cols))
            into_table = temp(stage)
            self.state.stage_rel[tp.name] = temp(stage)
        with tcur.copy(query("copy_in_rows", stage=into_table, columns=cols)) as into:
            _relay(self.src, spec.copy_out, into)
        received = tcur.rowcount
        for statement in rebuild:  # as pg_get_constraintdef and pg_get_indexdef print them
            tcur.execute(statement)
        if not self.state.source_filtered or tp.name not in self.state.into_table:
            # Fresh statistics for the scope's closure over the stage (a temporary table has
            # none). A table loaded directly with its test tenants already left out is not
            # scanned by a closure: its indexes serve the few lookups, and the sample ANALYZE
            # reads would cost ~0.1 s a table.
            tcur.execute(sql.SQL("ANALYZE {}").format(into_table))
        return received

    def _drop_rebuildable(self, cur: psycopg.Cursor[Any], tp: TablePlan) -> list[sql.Composed]:
        """Drop the indexes and key constraints a direct load builds again after its COPY (see
        sql/select_rebuildable_indexes.sql and sql/select_rebuildable_constraints.sql); returns
        the statements that add them back, keys first."""
        table = tp.name.ident.as_string(cur)
        cur.execute(query("select_rebuildable_constraints", table=table))
        keys = [(str(name), str(definition)) for name, definition in cur.fetchall()]
        cur.execute(query("select_rebuildable_indexes", table=table))
        indexes = [(str(name), str(definition)) for name, definition in cur.fetchall()]
        for name, _definition in keys:
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(tp.name.ident, sql.SQL(name)))
        for name, _definition in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
        return [
            *(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    tp.name.ident, sql.SQL(name), sql.SQL(definition)
                )
                for name, definition in keys
            ),
            *(sql.Composed([sql.SQL(definition)]) for _name, definition in indexes),
        ]

    def _projection(self, tp: TablePlan) -> tuple[sql.Composable, sql.Composable | None]:
        """What production's SELECT returns for a table: its columns over alias ``c``, with the
        references to excluded tables rewritten through VALUES lists of the maps' changing ids
        when the table is remapped at the source; and those joins (None: no remap)."""
        assert self.plan is not None
        if tp.name not in self.state.source_remapped:
            return columns(tp.copy_columns, "c"), None
        maps = {m.table: m for m in self.plan.maps}
        by_column = {r.column: r for r in tp.remaps}
        items: list[sql.Composable] = []
        joins: list[sql.Composable] = []
        for i, col in enumerate(tp.copy_columns):
            remap = by_column.get(col)
            changes = self.state.map_changes.get(remap.target) if remap is not None else None
            if remap is None or not changes:
                items.append(sql.Identifier("c", col))
                continue
            alias = sql.Identifier(f"dbsync_m{i}")
            pk_type = sql.SQL(maps[remap.target].pk_type)
            values = sql.SQL(", ").join(
                sql.SQL("(CAST({} AS {}), CAST({} AS {}))").format(
                    sql.Literal(src), pk_type, sql.Literal(dst), pk_type
                )
                for src, dst in changes
            )
            joins.append(
                sql.SQL("LEFT JOIN (VALUES {}) AS {}(src, dst) ON {}.src = {}").format(
                    values, alias, alias, sql.Identifier("c", col)
                )
            )
            items.append(
                sql.SQL("CASE WHEN {a}.src IS NULL THEN {c} ELSE {a}.dst END AS {name}").format(
                    a=alias, c=sql.Identifier("c", col), name=sql.Identifier(col)
                )
            )
        return sql.SQL(", ").join(items), sql.SQL(" ").join(joins) if joins else None

    def _copy_value_counts(self, tp: TablePlan, tcur: psycopg.Cursor[Any], shaped: Filter) -> None:
        """For a table remapped at the source: how often each referenced id occurs among the rows
        it sent, into a temporary table, for the remap step's counts and refusals."""
        assert self.plan is not None and self.src is not None
        position = self.plan.tables.index(tp)
        for j, remap in enumerate(tp.remaps):
            counts = f"dbsync_v_{position}_{j}"
            column = tp.table.column(remap.column)
            assert column is not None
            tcur.execute(query("create_value_counts", counts=counts, value_type=sql.SQL(column.type)))
            statement = query(
                "copy_out_value_counts",
                with_clause=shaped.with_clause,
                column=remap.column,
                relation=relation(tp.table),
                excluded=shaped.excluded,
            )
            with tcur.copy(query("copy_in_rows", stage=counts, columns=columns(("value", "n")))) as into:
                _relay(self.src, statement, into)
            self.state.value_counts[(tp.name, remap.column)] = counts

    def _account(self, name: TableName, change: Digest, sign: int = 1) -> int:
        """Add a change that a statement made to the stage (its returned count and digest change)
        to the stage's expected digest; returns the count."""
        rows, digest = self.state.expected[name]
        self.state.expected[name] = (rows + sign * change[0], digest + change[1])
        return change[0]

    # -- row sets, content types (preserve, scope) --------------------------------------------

    def _closure(
        self,
        cur: psycopg.Cursor[Any],
        sets: dict[TableName, str],
        relations: dict[TableName, sql.Composable],
        cols: dict[TableName, tuple[str, ...]],
        seeded: dict[TableName, int],
        side: str,
    ) -> dict[TableName, int]:
        """Grow the row sets along every edge (foreign keys, and the generic relations as the
        content types of ``side`` resolve them) until nothing is added; returns set sizes."""
        assert self.plan is not None
        links: list[tuple[TableName, TableName, sql.Composable]] = [
            (e.child, e.parent, equal("p", e.ref_columns, "c", e.columns)) for e in self.plan.edges
        ]
        links += [(g.relation.table, g.parent, g.match()) for g in self._generic_edges(side)]
        # Children after their parents (the plan's order): then one pass carries every row to its
        # descendants, and only a self-reference or a cycle needs another round. Every extra
        # round is a scan of each child relation, so they are worth avoiding.
        position = {name: i for i, name in enumerate(self.plan.synced)}
        links.sort(key=lambda link: (position[link[0]], position[link[1]]))
        acyclic = all(position[parent] < position[child] for child, parent, _ in links if child != parent)
        sizes = dict(seeded)

        def grow(child: TableName, parent: TableName, match: sql.Composable) -> int:
            if not sizes.get(parent):
                return 0
            cur.execute(
                query(
                    "insert_referencing_rows",
                    child_set=sets[child],
                    parent_set=sets[parent],
                    relation=relations[child],
                    columns=columns(cols[child], "c"),
                    match=match,
                )
            )
            added = cur.rowcount
            if added > 0:
                sizes[child] = sizes.get(child, 0) + added
                # Fresh statistics let the planner probe the child's foreign-key index with the
                # few rows of the set instead of scanning the whole child.
                cur.execute(sql.SQL("ANALYZE {}").format(temp(sets[child])))
            return added

        while True:
            added_in_pass = 0
            for child, parent, match in links:
                added = grow(child, parent, match)
                added_in_pass += added
                while child == parent and added > 0:  # a tree within one table: down a level
                    added = grow(child, parent, match)
            if acyclic or added_in_pass == 0:
                return sizes

    def _generic_edges(self, side: str) -> list[_GenericEdge]:
        assert self.plan is not None
        edges = []
        for relation_ in self.plan.generic:
            for content_type, parent in self.state.content_types.get(side, {}).items():
                pk = self.target_catalog.tables[parent].primary_key
                if pk and len(pk) == 1:
                    edges.append(_GenericEdge(relation_, content_type, parent, pk[0]))
        return edges

    def _read_content_types(
        self, conn: Connection, catalog: Catalog, tables: set[TableName] | None = None
    ) -> dict[Any, TableName]:
        """Content type id -> the table it names (Django's default table name), among ``tables``
        (default: the synced ones)."""
        assert self.plan is not None
        if self.plan.content_type_table is None or self.plan.content_type_table not in catalog.tables:
            return {}
        synced = tables if tables is not None else set(self.plan.synced)
        with conn.cursor() as cur:
            cur.execute(
                query("select_content_types", relation=relation(catalog.tables[self.plan.content_type_table]))
            )
            found = {}
            for content_type, app_label, model in cur.fetchall():
                for schema in self.config.schemas:
                    name = TableName(schema, f"{app_label}_{model}")
                    if name in synced:
                        found[content_type] = name
                        break
        return found

    def _follow_generic(self, cur: psycopg.Cursor[Any], parent: TableName, map_table: str) -> None:
        """Apply an old -> new id map of ``parent`` to the preserved generic references to it."""
        for edge in self._generic_edges("target"):
            if edge.parent != parent:
                continue
            cur.execute(
                query(
                    "update_generic_reference",
                    preserved=self.state.preserved[edge.relation.table],
                    map=map_table,
                    id_column=edge.relation.object_id_column,
                    ct_column=edge.relation.content_type_column,
                    content_type=edge.content_type,
                    id_type=sql.SQL(edge.relation.object_id_type),
                )
            )

    def _new_sets(
        self,
        cur: psycopg.Cursor[Any],
        prefix: str,
        relations: dict[TableName, sql.Composable],
        cols: dict[TableName, tuple[str, ...]],
    ) -> dict[TableName, str]:
        assert self.plan is not None
        sets = {}
        for i, tp in enumerate(self.plan.tables):
            name = f"{prefix}{i}"
            cur.execute(
                query(
                    "create_row_set",
                    set=name,
                    relation=relations[tp.name],
                    columns=columns(cols[tp.name], "t"),
                )
            )
            sets[tp.name] = name
        return sets

    def _seed_tenants(
        self, cur: psycopg.Cursor[Any], set_name: str, rel: sql.Composable, cols: tuple[str, ...]
    ) -> int:
        assert self.plan is not None
        cur.execute(
            query(
                "insert_test_tenants",
                set=set_name,
                relation=rel,
                columns=columns(cols, "t"),
                is_test=self.config.tenants.test_match("t"),
            )
        )
        return cur.rowcount

    def _read_all_content_types(self) -> None:
        assert self.plan is not None and self.src is not None and self.tgt is not None
        plan = self.plan
        self.state.content_types["source"] = self._read_content_types(self.src, self.source_catalog)
        self.state.content_types["target"] = self._read_content_types(self.tgt, self.target_catalog)
        self.state.content_types["target-excluded"] = self._read_content_types(
            self.tgt, self.target_catalog, set(plan.excluded)
        )
        self.report.generic_relations = [
            {
                "table": str(g.table),
                "content_type_column": g.content_type_column,
                "object_id_column": g.object_id_column,
            }
            for g in plan.generic
        ]

    # -- 5. preserve -------------------------------------------------------------------------

    def _preserve(self) -> None:
        """UAT's test tenants and everything that belongs to them are preserved: copied into
        temporary tables before anything is emptied. Then, for the direct load, the global rows
        that may have to stay (see :meth:`_collect_candidates`)."""
        assert self.tgt is not None and self.plan is not None
        plan = self.plan
        tenant = plan.tenant_table
        with self.tgt.cursor() as cur:
            if not self.dry_run:
                suspended = self._suspend_foreign_keys(cur)
                self.state.suspended = suspended or []
                self.state.unvalidated_checks = self._suspend_unvalidated_checks(cur)
                self.state.direct = (
                    self.config.load == "direct"
                    and suspended is not None
                    and not any(tp.table.partitioned for tp in plan.tables)
                )
            self._build_maps()
            if plan.generic:
                self._read_all_content_types()
            self.state.filters = self._source_filters()
            generic_tables = {g.table for g in plan.generic}
            # Remapping in production's SELECT needs the SELECT to leave the test tenants out:
            # the remap's counts (and its refusal of unmatched references) are taken there, and
            # must count only the rows that are copied.
            self.state.source_remapped = {
                tp.name
                for tp in plan.tables
                if tp.remaps
                and not tp.conflict_keys
                and tp.name not in generic_tables
                and all(r.target in self.state.map_changes for r in tp.remaps)
                and self.state.filters is not None
            }
            if self.state.direct:
                self.state.into_table = {tp.name for tp in plan.tables if not self._needs_stage(tp)}
            self.report.load = {
                str(tp.name): "direct" if tp.name in self.state.into_table else "staged" for tp in plan.tables
            }
            staged = [str(tp.name) for tp in plan.tables if tp.name not in self.state.into_table]
            if self.state.direct and staged:
                self.progress.say(f"preserve: staged first (their remaps rewrite rows): {', '.join(staged)}")
            self._start_digests()  # production is idle until the load otherwise
            live_rel = {tp.name: relation(tp.table) for tp in plan.tables}
            live_cols = {tp.name: tp.table.writable_columns for tp in plan.tables}
            preserved = self.state.preserved
            for tp in plan.tables:
                cur.execute(
                    query(
                        "create_row_set",
                        set=preserved[tp.name],
                        relation=live_rel[tp.name],
                        columns=columns(live_cols[tp.name], "t"),
                    )
                )
            seeded = self._seed_tenants(cur, preserved[tenant], live_rel[tenant], live_cols[tenant])
            sizes = self._closure(cur, preserved, live_rel, live_cols, {tenant: seeded}, "target")
            self.state.preserved_sizes = sizes
            for tp in plan.tables:
                self.report.table(str(tp.name)).rows_preserved = sizes.get(tp.name, 0)
            self.progress.say(
                f"preserve: {seeded} UAT test tenant(s), {sum(sizes.values())} row(s) preserved"
            )
            for tp in plan.tables:
                if tp.role != "global":
                    self._take_preserved_digest(cur, tp)
            if self.state.direct:
                self._collect_candidates(cur)

    def _needs_stage(self, tp: TablePlan) -> bool:
        """Whether a table's rows go through a temporary table even in a direct load: when the
        remap rewrites some of its references (an UPDATE of a loaded row writes a new version
        of it and of every index entry: measured at ~20 us a row with Django's indexes, where a
        temporary table has neither indexes nor WAL), and when a unique key holds a remapped
        column (the remap can make two of its rows collide, two memberships of one tenant
        landing on one UAT user, which the conflict step resolves before they meet the
        table's unique index)."""
        assert self.plan is not None
        if tp.conflict_keys:
            return True
        if tp.name in self.state.source_remapped:
            return False  # its remap happens in production's SELECT
        if any(r.target in self.state.changing_maps for r in tp.remaps):
            return True
        return any(g.table == tp.name for g in self.plan.generic) and bool(self.state.changing_maps)

    def _collect_candidates(self, cur: psycopg.Cursor[Any]) -> None:
        """Before the direct load empties the synced tables: set aside every row of a global
        table that a preserved row, another set-aside row or a row of an unsynced table
        references. :meth:`_keep_referenced` later chooses among exactly these rows, as it
        would among the live table's (it only ever follows these references), once production's
        rows are there to compare with."""
        assert self.plan is not None
        plan = self.plan
        for i, tp in enumerate(plan.tables):
            if tp.role != "global":
                continue
            set_name = f"dbsync_g_{i}"
            cur.execute(
                query(
                    "create_row_set",
                    set=set_name,
                    relation=relation(tp.table),
                    columns=columns(tp.table.writable_columns, "t"),
                )
            )
            self.state.candidates[tp.name] = set_name
        for tp in self._globals_referrers_first():
            name, table, cset = tp.name, tp.table, self.state.candidates[tp.name]
            referrers: list[tuple[sql.Composable, sql.Composable]] = []
            for e in plan.edges:
                if e.parent == name:
                    referrers += [
                        (rows, equal("r", e.columns, "g", e.ref_columns))
                        for rows in self._referrer_sets(e.child)
                    ]
            for g in self._generic_edges("target"):
                if g.parent == name:
                    referrers += [(rows, g.match("r", "g")) for rows in self._referrer_sets(g.relation.table)]
            for fk in plan.outside_fks:
                if fk.ref_table == name:
                    referrers.append(
                        (
                            relation(self.target_catalog.tables[fk.table]),
                            equal("r", fk.columns, "g", fk.ref_columns),
                        )
                    )
            changed = True
            while changed:  # a self-reference (a category's parent) needs more than one pass
                changed = False
                for referrer, match in referrers:
                    cur.execute(
                        query(
                            "insert_referenced_rows",
                            set=cset,
                            tableoid=sql.SQL("g.tableoid"),
                            ctid=sql.SQL("g.ctid"),
                            relation=relation(table),
                            columns=columns(table.writable_columns, "g"),
                            referrer=referrer,
                            match=match,
                            unless=sql.SQL(""),
                        )
                    )
                    changed = changed or cur.rowcount > 0
            cur.execute(sql.SQL("ANALYZE {}").format(temp(cset)))

    def _globals_referrers_first(self) -> list[TablePlan]:
        """The global tables, each after every global table that references it: foreign keys
        (the reverse of the load order), references no constraint holds and generic relations
        (which the load order ignores). A referenced table's rows are chosen from what its
        referrers' chosen rows reference, so those must be chosen first. Tables in a cycle
        follow the reverse load order."""
        assert self.plan is not None
        remaining = [tp for tp in reversed(self.plan.tables) if tp.role == "global"]
        names = {tp.name for tp in remaining}
        pairs = {(e.child, e.parent) for e in self.plan.edges}
        pairs |= {(g.relation.table, g.parent) for g in self._generic_edges("target")}
        referrers = {
            name: {child for child, parent in pairs if parent == name and child in names and child != name}
            for name in names
        }
        ordered: list[TablePlan] = []
        while remaining:
            done = {tp.name for tp in ordered}
            tp = next((t for t in remaining if referrers[t.name] <= done), remaining[0])
            remaining.remove(tp)
            ordered.append(tp)
        return ordered

    def _referrer_sets(self, child: TableName) -> list[sql.Composable]:
        """The rows of ``child`` whose references :meth:`_collect_candidates` follows: its
        preserved rows, and a global table's set-aside rows too."""
        sets: list[sql.Composable] = [temp(self.state.preserved[child])]
        if child in self.state.candidates:
            sets.append(temp(self.state.candidates[child]))
        return sets

    # -- 7. scope ----------------------------------------------------------------------------

    def _scope(self) -> None:
        assert self.tgt is not None and self.plan is not None
        plan = self.plan
        tenant = plan.tenant_table
        with self.tgt.cursor() as cur:
            # Production's test tenants and everything that belongs to them leave the stage.
            stage_rel = dict(self.state.stage_rel)
            stage_cols = {tp.name: tp.copy_columns for tp in plan.tables}
            excluded_sets = self._new_sets(cur, "dbsync_x_", stage_rel, stage_cols)
            seeded = self._seed_tenants(cur, excluded_sets[tenant], stage_rel[tenant], stage_cols[tenant])
            sizes = self._closure(cur, excluded_sets, stage_rel, stage_cols, {tenant: seeded}, "source")
            for tp in plan.tables:
                if sizes.get(tp.name):
                    removed = self._delete_set(cur, tp, excluded_sets[tp.name])
                    self.report.table(str(tp.name)).rows_excluded_test += removed
                    cur.execute(sql.SQL("ANALYZE {}").format(self._analyzable(tp)))
            total = sum(self.report.table(str(tp.name)).rows_excluded_test for tp in plan.tables)
            tenants = self.report.table(str(tenant)).rows_excluded_test
            self.progress.say(
                f"scope: {tenants} production test tenant(s), {total} row(s) in all, not copied"
            )
            self._keep_referenced(cur, self.state.preserved_sizes)

    def _analyzable(self, tp: TablePlan) -> sql.Composable:
        """The stage's table as ANALYZE names it (it takes no ONLY)."""
        return tp.name.ident if tp.name in self.state.into_table else self.state.stage_rel[tp.name]

    def _delete_set(self, cur: psycopg.Cursor[Any], tp: TablePlan, set_name: str) -> int:
        """Remove a set's rows from the stage, accounting for them; returns how many."""
        parts = _returning(tp.copy_columns)
        cur.execute(
            query(
                "delete_set_rows",
                stage=self.state.stage_rel[tp.name],
                set=set_name,
                returned=parts["returned"],
                row=parts["new_row"],
            )
        )
        return self._account(tp.name, _fetch_digest(cur), sign=-1)

    def _keep_referenced(self, cur: psycopg.Cursor[Any], preserved_sizes: dict[TableName, int]) -> None:
        """Decide, for every global row a surviving row references, which row it will reference.

        Global tables are visited referrers first. A referenced target row is
        - *same* when production has its primary key with the same other unique keys: the
          reference holds as it is;
        - an *alias* when production has it under another id (equal on a unique key): the
          preserved references are re-pointed to production's id;
        - *own* otherwise (a UAT-only row): it is kept, and re-keyed later if production uses
          its id.
        Rows referenced by tables dbsync does not write keep their ids: they are kept unless
        production has the same key.
        """
        assert self.plan is not None
        plan = self.plan
        sizes = dict(preserved_sizes)
        for tp in self._globals_referrers_first():
            name, table = tp.name, tp.table
            pset, stage = self.state.preserved[name], self.state.stage_rel[name]
            # The live table, or (direct load: it is emptied by now) its rows set aside before.
            if name in self.state.candidates:
                rows_of = sql.Composed([temp(self.state.candidates[name])])
                identity = {"tableoid": sql.SQL("g.dbsync_tableoid"), "ctid": sql.SQL("g.dbsync_ctid")}
            else:
                rows_of = sql.Composed([relation(table)])
                identity = {"tableoid": sql.SQL("g.tableoid"), "ctid": sql.SQL("g.ctid")}
            cols = columns(table.writable_columns, "g")
            links: list[tuple[TableName, sql.Composable]] = [
                (e.child, equal("r", e.columns, "g", e.ref_columns)) for e in plan.edges if e.parent == name
            ]
            links += [
                (g.relation.table, g.match("r", "g"))
                for g in self._generic_edges("target")
                if g.parent == name
            ]
            changed = True
            while changed:  # a self-reference (a category's parent) needs more than one pass
                changed = False
                for child, match in links:
                    if not sizes.get(child):
                        continue
                    cur.execute(
                        query(
                            "insert_referenced_rows",
                            set=pset,
                            relation=rows_of,
                            **identity,
                            columns=cols,
                            referrer=temp(self.state.preserved[child]),
                            match=match,
                            unless=sql.SQL(""),
                        )
                    )
                    if cur.rowcount > 0:
                        sizes[name] = sizes.get(name, 0) + cur.rowcount
                        changed = True
            if sizes.get(name) and table.primary_key and (len(table.primary_key) == 1 or self._plain_key(tp)):
                self._classify_referenced(cur, tp)
            for fk in plan.outside_fks:
                if fk.ref_table != name:
                    continue
                cur.execute(
                    query(
                        "insert_referenced_rows",
                        set=pset,
                        relation=rows_of,
                        **identity,
                        columns=cols,
                        referrer=relation(self.target_catalog.tables[fk.table]),
                        match=equal("r", fk.columns, "g", fk.ref_columns),
                        unless=sql.SQL("AND NOT EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
                            stage, equal("s", fk.ref_columns, "g", fk.ref_columns)
                        ),
                    )
                )
            kept = int(_scalar(cur, sql.SQL("SELECT count(*) FROM {}").format(temp(pset))))
            sizes[name] = kept
            self.report.table(str(name)).rows_kept_referenced = kept
            self._take_preserved_digest(cur, tp)
            if kept:
                self.progress.say(f"scope: keeping {kept} row(s) of {name} that surviving rows reference")

    def _plain_key(self, tp: TablePlan) -> bool:
        """A multi-column primary key whose values mean the same on both sides by now: none of
        its columns is remapped later (a user id) or references a synced table, whose rows may
        still be re-pointed or re-keyed after this table is classified (referrers come first).
        Rows of other multi-column keys are never taken for production's: they stay UAT's own,
        and a collision is refused at rekey."""
        assert self.plan is not None and tp.table.primary_key is not None
        moving = {r.column for r in tp.remaps}
        moving.update(c for e in self.plan.edges if e.child == tp.name for c in e.columns)
        return not moving.intersection(tp.table.primary_key)

    def _classify_referenced(self, cur: psycopg.Cursor[Any], tp: TablePlan) -> None:
        """Drop the *same* rows from the kept set, and the *alias* rows too, mapping their ids
        to production's (the references follow in the rekey step: :meth:`_repoint`)."""
        assert self.plan is not None and tp.table.primary_key is not None
        pk_cols = tp.table.primary_key
        pset, stage = self.state.preserved[tp.name], self.state.stage_rel[tp.name]
        keys = [
            u.columns for u in tp.table.uniques if not u.primary and set(u.columns) <= set(tp.copy_columns)
        ]
        same: sql.Composable
        if keys:  # the unique keys say which entity a row is: production's version replaces it
            same = sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT DISTINCT FROM {}").format(sql.Identifier("s", c), sql.Identifier("r", c))
                for key in keys
                for c in key
            )
        else:
            # Only the id says which entity it is, and an id says little across two databases
            # (pagila's address 334 is another street in UAT): the same row is the same values,
            # compared as text (also for types without an equality operator, such as json).
            # Otherwise the row is UAT's own: kept, and re-keyed since production uses its id.
            # Columns remapped later (a creator's user id) differ by design and are left out.
            remapped = {r.column for r in tp.remaps}
            compared = [c for c in tp.copy_columns if c not in remapped]
            same = sql.SQL("ROW({})::text IS NOT DISTINCT FROM ROW({})::text").format(
                columns(compared, "s"), columns(compared, "r")
            )
            if tp.rekey is None or any(fk.ref_table == tp.name for fk in self.plan.outside_fks):
                # A row that cannot be re-keyed (a text key; tables dbsync does not write
                # reference the id) cannot be kept beside production's: the id decides, as it
                # did before, and the report says how many references now see other values.
                differ = _scalar(
                    cur,
                    sql.SQL("SELECT count(*) FROM {} AS r JOIN {} AS s ON {} WHERE NOT ({})").format(
                        temp(pset), stage, equal("s", pk_cols, "r", pk_cols), same
                    ),
                )
                if differ:
                    self.report.warnings.append(
                        f"{differ} row(s) of {tp.name} that the test tenants' rows reference differ "
                        "from production's row with the same id, and cannot be kept beside it "
                        "(their key cannot be re-keyed, or tables dbsync does not write reference "
                        "it): those references now see production's values"
                    )
                same = sql.SQL("true")
        same_pk = equal("s", pk_cols, "r", pk_cols)
        cur.execute(query("delete_same_rows", set=pset, stage=stage, same_pk=same_pk, same_keys=same))
        if not keys or len(pk_cols) != 1:
            # Aliases re-point single-column references; a row of a multi-column key that
            # production has under another key stays UAT's own.
            return
        pk = pk_cols[0]
        alias = f"dbsync_a_{self.plan.tables.index(tp)}"
        any_key = sql.SQL(" OR ").join(sql.SQL("({})").format(equal("s", key, "r", key)) for key in keys)
        cur.execute(query("create_alias_map", alias=alias, set=pset, stage=stage, pk=pk, any_key=any_key))
        count = int(_scalar(cur, sql.SQL("SELECT count(*) FROM {}").format(temp(alias))))
        if not count:
            return
        self.state.alias[tp.name] = alias
        cur.execute(
            sql.SQL("DELETE FROM {} AS r WHERE r.{} IN (SELECT old FROM {})").format(
                temp(pset), sql.Identifier(pk), temp(alias)
            )
        )
        # The references follow in the rekey step (:meth:`_repoint`), after this table's own
        # re-key: an id may be both an alias's new id and a UAT row's that is re-keyed away.
        self.progress.say(f"scope: {count} referenced row(s) of {tp.name} are production's under other ids")

    def _repoint(self, cur: psycopg.Cursor[Any], tp: TablePlan) -> None:
        """Re-point the preserved references to ``tp``'s alias rows to production's ids (the
        map :meth:`_classify_referenced` made)."""
        assert tp.table.primary_key is not None
        pk = tp.table.primary_key[0]
        pairs = self._follow_map(cur, tp.name, pk, self.state.alias[tp.name])
        self.report.repointed.append({"table": str(tp.name), "column": pk, "ids": pairs})

    def _follow_map(
        self, cur: psycopg.Cursor[Any], table: TableName, pk: str, map_table: str, *, fresh: bool = False
    ) -> list[list[Any]]:
        """Apply an old -> new id map of ``table`` to every preserved reference to it (foreign
        keys, one column of a multi-column one too, and generic relations); returns the pairs
        for the report.

        With ``fresh`` (a re-key: new ids nobody uses), a referencing table whose own primary
        key is the reference (Django's multi-table inheritance: ``invoice.document_ptr_id``)
        has had its ids moved by the same map: references to it, and generic relations naming
        its content type, follow in turn, down the whole inheritance chain."""
        assert self.plan is not None
        followed: set[tuple[TableName, str]] = set()
        # Columns this map reaches directly are never also carried down a multi-column key:
        # a map applied twice to one column would undo a swap (10 -> 20, 20 -> 10).
        carried = {
            (e.child, e.columns[e.ref_columns.index(pk)])
            for e in self.plan.edges
            if e.parent == table and pk in e.ref_columns
        }
        for edge in self.plan.edges:
            if edge.parent != table or pk not in edge.ref_columns:
                continue
            column = edge.columns[edge.ref_columns.index(pk)]
            if (edge.child, column) in followed:
                continue  # a single- and a multi-column key on one column: a map applies once
            followed.add((edge.child, column))
            child_pk = self.target_catalog.tables[edge.child].primary_key
            # a re-key moves an inheritance child's own key too: followed below, by the same map
            inherits = fresh and edge.child != table and child_pk == (column,)
            if not inherits:
                self._cascade(cur, edge.child, column, map_table, carried)
            cur.execute(
                query(
                    "update_rekeyed_column",
                    preserved=self.state.preserved[edge.child],
                    rekey=map_table,
                    column=column,
                )
            )
            moved = cur.rowcount
            if inherits and moved:
                if edge.child in self.state.rekey:
                    raise Refused(
                        f"preserved rows of {edge.child} get new ids twice: through their key "
                        f"{column}, a reference to re-keyed {table}, and on their own"
                    )
                self.state.rekey[edge.child] = map_table
                self.report.table(str(edge.child)).rows_rekeyed = moved
                self._follow_map(cur, edge.child, column, map_table, fresh=True)
                pairs = sql.SQL("SELECT k.old, k.new FROM {} AS k JOIN {} AS p ON p.{} = k.new ORDER BY 1")
                child_set = temp(self.state.preserved[edge.child])
                cur.execute(pairs.format(temp(map_table), child_set, sql.Identifier(column)))
                ids = [[_plain(o), _plain(n)] for o, n in cur.fetchall()]
                self.report.rekeys.append({"table": str(edge.child), "column": column, "ids": ids})
        self._follow_generic(cur, table, map_table)
        cur.execute(sql.SQL("SELECT old, new FROM {} ORDER BY old").format(temp(map_table)))
        return [[_plain(o), _plain(n)] for o, n in cur.fetchall()]

    def _cascade(
        self,
        cur: psycopg.Cursor[Any],
        table: TableName,
        column: str,
        map_table: str,
        seen: set[tuple[TableName, str]],
        path: tuple[Edge, ...] = (),
    ) -> None:
        """``table.column`` of preserved rows is about to move by ``map_table``: the preserved
        rows that reference those rows through a key containing ``column`` follow first (and
        whatever references *them* by that column, before them), so a reference never ends on
        another row that happens to carry the new values. ``path``: the edges from the rows
        the map moves directly down to ``table``; a row follows only if the row it references
        moves, which a deeper level checks through every level above it."""
        assert self.plan is not None
        for edge in self.plan.edges:
            if edge.parent != table or column not in edge.ref_columns:
                continue
            if edge.child not in self.state.preserved:
                continue
            child_column = edge.columns[edge.ref_columns.index(column)]
            if (edge.child, child_column) in seen:
                continue
            seen.add((edge.child, child_column))
            self._cascade(cur, edge.child, child_column, map_table, seen, (*path, edge))
            cur.execute(
                query(
                    "update_cascaded_column",
                    preserved=self.state.preserved[edge.child],
                    rekey=map_table,
                    column=child_column,
                    moving=self._moving((*path, edge)),
                )
            )
            if cur.rowcount:
                self.state.cascaded.setdefault((edge.child, child_column), []).append(map_table)

    def _moving(self, path: tuple[Edge, ...], level: int = 0) -> sql.Composable:
        """Over alias ``g<level>``, a preserved row of ``path[-1].child``: the row it references
        through ``path[-1]`` is preserved and moves (up to ``path[0].parent``, whose rows with
        the old value all move)."""
        edge = path[-1]
        here, up = f"g{level}", f"g{level + 1}"
        above = self._moving(path[:-1], level + 1) if len(path) > 1 else sql.SQL("true")
        return sql.SQL("EXISTS (SELECT 1 FROM {} AS {} WHERE {} AND {})").format(
            temp(self.state.preserved[edge.parent]),
            sql.Identifier(up),
            equal(up, edge.ref_columns, here, edge.columns),
            above,
        )

    def _take_preserved_digest(self, cur: psycopg.Cursor[Any], tp: TablePlan) -> None:
        """The digest the "preserved" proof compares with, taken before anything rewrites the set."""
        pset = self.state.preserved[tp.name]
        cur.execute(sql.SQL("ANALYZE {}").format(temp(pset)))
        self.state.preserved_digest[tp.name] = _digest(cur, temp(pset), columns(tp.table.writable_columns))

    # -- 8. remap ----------------------------------------------------------------------------

    def _fallback_user(self, cur: psycopg.Cursor[Any]) -> Any:
        assert self.plan is not None
        if self.plan.user_table is None:
            return None
        users = self.target_catalog.tables[self.plan.user_table]
        assert users.primary_key is not None
        return _scalar(
            cur,
            query(
                "select_fallback_user",
                pk=users.primary_key[0],
                relation=relation(users),
                username=self.config.users.fallback_username,
                key_column=self.config.users.natural_key[0],
                superuser_column=self.config.users.superuser_column,
            ),
        )

    def _build_maps(self) -> None:
        """The natural-key maps (production id -> target id) of the excluded tables that synced
        rows reference, built before the load: they only need production's keys (read in the
        snapshot) and the target's excluded tables, which the run never changes."""
        assert self.src is not None and self.tgt is not None and self.plan is not None
        plan = self.plan
        with self.tgt.cursor() as cur:
            self.state.fallback_user = self._fallback_user(cur)
            for j, m in enumerate(plan.maps):
                keys, mapping = f"dbsync_k_{j}", f"dbsync_m_{j}"
                defs = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                    for c, t in zip(m.key, m.key_types, strict=True)
                )
                cur.execute(
                    query("create_natural_keys", keys=keys, pk_type=sql.SQL(m.pk_type), key_columns=defs)
                )
                src_rel = relation(self.source_catalog.tables[m.table])
                statement = query("copy_out_rows", columns=columns((m.pk, *m.key)), relation=src_rel)
                with cur.copy(query("copy_in_rows", stage=keys, columns=columns(("src", *m.key)))) as into:
                    _relay(self.src, statement, into)
                for column, other in m.nested:
                    cur.execute(
                        query("update_nested_key", keys=keys, column=column, map=self.state.maps[other])
                    )
                cur.execute(
                    query(
                        "create_natural_key_map",
                        map=mapping,
                        keys=keys,
                        pk=m.pk,
                        relation=relation(self.target_catalog.tables[m.table]),
                        match=equal("t", m.key, "k", m.key),
                    )
                )
                if m.unmatched == "fallback":
                    if self.state.fallback_user is None:
                        raise Refused(
                            f"the target's {m.table} has no superuser to map unknown users to; "
                            "create one or set users.fallback_username"
                        )
                    cur.execute(
                        sql.SQL("UPDATE {} SET dst = {} WHERE dst IS NULL").format(
                            temp(mapping), sql.Literal(self.state.fallback_user)
                        )
                    )
                cur.execute(sql.SQL("ANALYZE {}").format(temp(mapping)))
                self.state.maps[m.table] = mapping

                changing = _scalar(
                    cur,
                    sql.SQL("SELECT count(*) FROM {} WHERE dst IS DISTINCT FROM src").format(temp(mapping)),
                )
                if changing:
                    self.state.changing_maps.add(m.table)
                if changing <= self.config.source_remap_limit:  # small enough for the SELECT
                    # An unmatched key that the remap step will refuse is sent as it is: written
                    # as NULL, a NOT NULL column would fail the load before that step says why.
                    keep = sql.SQL(" AND dst IS NOT NULL" if m.unmatched == "refuse" else "")
                    changes = sql.SQL("SELECT src, dst FROM {} WHERE dst IS DISTINCT FROM src{} ORDER BY src")
                    cur.execute(changes.format(temp(mapping), keep))
                    self.state.map_changes[m.table] = [(src, dst) for src, dst in cur.fetchall()]

    def _remap(self) -> None:
        assert self.src is not None and self.tgt is not None and self.plan is not None
        plan = self.plan
        with self.tgt.cursor() as cur:
            by_table = {m.table: m for m in plan.maps}
            for tp in plan.tables:
                stage = self.state.stage_rel[tp.name]
                for r in tp.remaps:
                    m = by_table[r.target]
                    mapping = self.state.maps[r.target]
                    at_source = tp.name in self.state.source_remapped
                    if at_source:  # rewritten on the way out of production already
                        counts = self.state.value_counts[(tp.name, r.column)]
                        cur.execute(query("select_remap_value_counts", counts=counts, map=mapping))
                    else:
                        cur.execute(query("select_remap_counts", stage=stage, map=mapping, column=r.column))
                    row = cur.fetchone()
                    assert row is not None
                    by_key, to_fallback, unmatched = (int(str(v)) for v in row[:3])
                    if unmatched and m.unmatched == "refuse":
                        column = tp.table.column(r.column)
                        fix = (
                            f"add the rows to the target ({r.column} is NOT NULL, so on_unmatched "
                            f'"null" cannot apply)'
                            if column is not None and column.not_null
                            else f'set on_unmatched.{r.target.name} = "null" or add the rows to the target'
                        )
                        raise Refused(
                            f"{unmatched} row(s) of {tp.name}.{r.column} reference {r.target} rows "
                            f"whose natural key ({', '.join(m.key)}) has no match in the target; {fix}"
                        )
                    if at_source:
                        rewritten = int(str(row[3]))
                    else:
                        rewritten = self._update_remapped(cur, tp, r.column, mapping)
                    self.state.fallback_used |= to_fallback > 0
                    self.report.remaps.append(
                        {
                            "column": f"{tp.name}.{r.column}",
                            "references": str(r.target),
                            "natural_key": list(m.key),
                            "by_natural_key": by_key,
                            "to_fallback": to_fallback,
                            "to_null": unmatched,
                            "rewritten": rewritten,
                        }
                    )
            self._remap_generic_into_excluded(cur)
        # Production is not read after this point: end its transaction (and its snapshot).
        self.src.rollback()

    def _update_remapped(self, cur: psycopg.Cursor[Any], tp: TablePlan, column: str, mapping: str) -> int:
        """Rewrite a staged column through its map, accounting for the change; returns how many
        rows changed."""
        parts = _returning(tp.copy_columns, {column: sql.SQL("m.src")})
        cur.execute(
            query(
                "update_remap_column",
                stage=self.state.stage_rel[tp.name],
                map=mapping,
                column=column,
                returned=parts["returned"],
                new_row=parts["new_row"],
                old_row=parts["old_row"],
            )
        )
        return self._account(tp.name, _fetch_digest(cur), sign=0)

    def _remap_generic_into_excluded(self, cur: psycopg.Cursor[Any]) -> None:
        """A generic relation can point at an excluded table (a note about a user): its object
        id is a production id of that table, to be remapped by natural key like any reference.
        The stage's content type ids are the target's by now (remapped just before)."""
        assert self.plan is not None
        by_table = {m.table: m for m in self.plan.maps}
        for relation_ in self.plan.generic:
            stage = self.state.stage_rel[relation_.table]
            copy_columns = next(tp.copy_columns for tp in self.plan.tables if tp.name == relation_.table)
            for content_type, excluded in self.state.content_types.get("target-excluded", {}).items():
                count = int(
                    _scalar(
                        cur,
                        sql.SQL("SELECT count(*) FROM {} WHERE {} = {}").format(
                            stage,
                            sql.Identifier(relation_.content_type_column),
                            sql.Literal(content_type),
                        ),
                    )
                )
                if not count:
                    continue
                where = f"{relation_.table}.{relation_.object_id_column} (generic, content type {excluded})"
                if excluded not in self.state.maps:
                    raise Refused(
                        f"{count} row(s) of {where} point at excluded table {excluded}, which no foreign "
                        f"key of a synced table references, so dbsync has no natural-key map for it; "
                        f"stop excluding {excluded} or drop those rows in production"
                    )
                mapping = self.state.maps[excluded]
                unmatched = int(
                    _scalar(
                        cur,
                        query(
                            "select_generic_unmatched",
                            stage=stage,
                            map=mapping,
                            ct_column=relation_.content_type_column,
                            id_column=relation_.object_id_column,
                            content_type=content_type,
                        ),
                    )
                )
                if unmatched:
                    raise Refused(
                        f"{unmatched} row(s) of {where} point at {excluded} rows whose natural key "
                        f"({', '.join(by_table[excluded].key)}) has no match in the target"
                    )
                parts = _returning(
                    copy_columns,
                    {
                        relation_.object_id_column: sql.SQL("CAST(m.src::text AS {})").format(
                            sql.SQL(relation_.object_id_type)
                        )
                    },
                )
                cur.execute(
                    query(
                        "update_generic_remap",
                        stage=stage,
                        map=mapping,
                        id_column=relation_.object_id_column,
                        ct_column=relation_.content_type_column,
                        content_type=content_type,
                        id_type=sql.SQL(relation_.object_id_type),
                        returned=parts["returned"],
                        new_row=parts["new_row"],
                        old_row=parts["old_row"],
                    )
                )
                rewritten = self._account(relation_.table, _fetch_digest(cur), sign=0)
                self.report.remaps.append(
                    {
                        "column": where,
                        "references": str(excluded),
                        "natural_key": list(by_table[excluded].key),
                        "by_natural_key": count,
                        "to_fallback": 0,
                        "to_null": 0,
                        "rewritten": rewritten,
                    }
                )

    def _resolve_conflicts(self, cur: psycopg.Cursor[Any]) -> None:
        assert self.plan is not None
        plan = self.plan
        drop_sets: dict[TableName, str] | None = None
        drop_seeds: dict[TableName, int] = {}
        stage_rel = dict(self.state.stage_rel)
        stage_cols = {tp.name: tp.copy_columns for tp in plan.tables}
        for tp in plan.tables:
            for key in tp.conflict_keys:
                stage = stage_rel[tp.name]
                items, predicate, present, names = key_items(key)
                cur.execute(
                    query(
                        "select_remap_conflicts",
                        keys=columns(names, "u"),
                        items=items,
                        predicate=predicate,
                        preserved=self.state.preserved[tp.name],
                        stage=stage,
                        not_null=present,
                    )
                )
                ctids = [row[0] for row in cur.fetchall()]
                if not ctids:
                    continue
                remapped = [r.column for r in tp.remaps if r.column in key.columns]
                record = {
                    "table": str(tp.name),
                    "constraint": key.name,
                    "columns": list(key.columns),
                    "rows": len(ctids),
                    "policy": tp.conflict_policy,
                }
                self.report.remap_conflicts.append(record)
                if tp.conflict_policy == "refuse":
                    raise Refused(
                        f"remapping {', '.join(remapped)} makes {len(ctids)} row(s) of {tp.name} "
                        f"collide on unique key {key.name} ({', '.join(key.columns)}); "
                        f"on_remap_conflict.{tp.name.name} is refuse"
                    )
                ctid_list = sql.SQL(", ").join(sql.Literal(str(c)) for c in ctids)
                if tp.conflict_policy == "set_null":
                    ctid_array = sql.SQL("ARRAY[{}]::tid[]").format(ctid_list)
                    after = _returning(tp.copy_columns)
                    cur.execute(
                        query(
                            "update_set_null",
                            stage=stage,
                            ctids=ctid_array,
                            row=columns(tp.copy_columns, "s"),
                            assignments=sql.SQL(", ").join(
                                sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in remapped
                            ),
                            returned=after["returned"],
                            after_row=after["new_row"],
                        )
                    )
                    self._account(tp.name, _fetch_digest(cur), sign=0)
                    continue
                if drop_sets is None:
                    drop_sets = self._new_sets(cur, "dbsync_d_", stage_rel, stage_cols)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} SELECT s.tableoid, s.ctid, {} FROM {} AS s "
                        "WHERE s.ctid = ANY (ARRAY[{}]::tid[])"
                    ).format(temp(drop_sets[tp.name]), columns(tp.copy_columns, "s"), stage, ctid_list)
                )
                drop_seeds[tp.name] = drop_seeds.get(tp.name, 0) + cur.rowcount
        if drop_sets is None:
            return
        # The stage holds target content type ids by now (the remap step rewrote them).
        sizes = self._closure(cur, drop_sets, stage_rel, stage_cols, drop_seeds, "target")
        for tp in plan.tables:
            if sizes.get(tp.name):
                dropped = self._delete_set(cur, tp, drop_sets[tp.name])
                self.report.table(str(tp.name)).rows_dropped_conflicts = dropped

    # -- 9. rekey ----------------------------------------------------------------------------

    def _rekey(self) -> None:
        assert self.tgt is not None and self.plan is not None
        with self.tgt.cursor() as cur:
            for i, tp in self._rekey_order():
                self._rekey_table(cur, i, tp)
                if tp.name in self.state.alias:
                    # After the table's own re-key, never before: an id production uses may be
                    # both a UAT row's, re-keyed away, and the id another UAT row's references
                    # are re-pointed to (UAT's 601 -> new, UAT's 700 -> production's 601).
                    # Re-pointed first, those references would be re-keyed too.
                    self._repoint(cur, tp)
            # Only now are preserved rows in their final id space: a remap collision is judged
            # between final keys, never between UAT's old ids and production's.
            self._resolve_conflicts(cur)
            self._refuse_unique_collisions(cur)
            for tp in self.plan.tables:  # what apply will copy; a dry run reports this as its plan
                entry = self.report.table(str(tp.name))
                if tp.name in self.state.unchanged:
                    entry.rows_left_in_place = self.state.expected[tp.name][0]
                else:
                    entry.rows_copied = self.state.expected[tp.name][0]
                for use in tp.table.sequences:  # the furthest incoming ids, before apply adds rows
                    if use.column in tp.copy_columns:
                        self.state.max_incoming[(tp.name, use.column)] = _scalar(
                            cur,
                            sql.SQL("SELECT {}({})::numeric FROM {}").format(
                                sql.SQL("min" if use.descending else "max"),
                                sql.Identifier(use.column),
                                self.state.stage_rel[tp.name],
                            ),
                        )

    def _rekey_table(self, cur: psycopg.Cursor[Any], i: int, tp: TablePlan) -> None:
        """Give ``tp``'s preserved rows whose primary key production uses (or names in a
        generic reference) fresh ids, and move every preserved reference with them."""
        assert self.plan is not None
        plan = self.plan
        headroom = self.config.sequence_headroom
        entry = self.report.table(str(tp.name))
        if not (entry.rows_preserved + entry.rows_kept_referenced) or tp.table.primary_key is None:
            return
        pk_cols = tp.table.primary_key
        stage, preserved = self.state.stage_rel[tp.name], self.state.preserved[tp.name]
        shared_key = sql.SQL("EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
            stage, equal("s", pk_cols, "p", pk_cols)
        )
        count = sql.SQL("SELECT count(*) FROM {} AS p WHERE {}")
        collisions = _scalar(cur, count.format(temp(preserved), shared_key))
        named = self._named_by_production(cur, tp, i)
        dangling = 0
        if named is not None:
            only_named = sql.SQL("NOT {} AND {}").format(shared_key, named)
            dangling = int(_scalar(cur, count.format(temp(preserved), only_named)))
        if not collisions and not dangling:
            return
        if not collisions and (
            tp.name in self.state.rekey
            or tp.rekey is None
            or pk_cols[0] in {r.column for r in tp.remaps}
            or self._key_parent(tp) is not None
            or any(fk.ref_table == tp.name for fk in plan.outside_fks)
        ):
            self.report.warnings.append(
                f"production's references without a constraint (generic ones, or columns "
                f"without a foreign key, to rows it no longer has) name the ids "
                f"of {dangling} preserved row(s) of {tp.name}, which are not re-keyed for them "
                "(their key cannot be, or tables dbsync does not write reference them): "
                "those references now lead to UAT's rows"
            )
            return
        # A global table's kept rows are the ones preserved rows reference.
        kept = (
            f"{collisions} row(s) of {tp.name} that preserved rows reference"
            if tp.role == "global"
            else f"{collisions} preserved row(s) of {tp.name}"
        )
        if tp.name in self.state.rekey:  # its key follows a re-keyed parent's already
            raise Refused(
                f"{kept} still have primary keys production uses after following their parent's new ids"
            )
        if pk_cols[0] in {r.column for r in tp.remaps}:
            # The key is a reference to an excluded table (Django's OneToOneField(User,
            # primary_key=True)): a collision is two rows for one user, a remap conflict
            # that the conflict step resolves, not an id to re-key.
            return
        parent = self._key_parent(tp)
        if parent is not None:
            raise Refused(
                f"{kept} have primary keys production also "
                f"uses, but their key {pk_cols[0]} is their reference to {parent}, whose rows "
                "kept their ids: new ids would detach them from their parent rows"
            )
        if tp.rekey is None:
            cur.execute(
                sql.SQL(
                    "SELECT ROW({})::text FROM {} AS p WHERE EXISTS (SELECT 1 FROM {} AS s WHERE {}) "
                    "ORDER BY 1 LIMIT 3"
                ).format(
                    sql.SQL(", ").join(sql.Identifier("p", c) for c in pk_cols),
                    temp(preserved),
                    stage,
                    equal("s", pk_cols, "p", pk_cols),
                )
            )
            shared = ", ".join(str(row[0]) for row in cur.fetchall())
            raise Refused(
                f"{kept} have primary keys production "
                f"also uses (first: {shared}), and its key ({', '.join(pk_cols)}) is not a "
                "single integer or uuid column that dbsync can re-key"
            )
        pk = pk_cols[0]
        pk_type = tp.table.column(pk).type  # type: ignore[union-attr]
        if tp.rekey == "integer":
            # past the alias rows' old ids too: references still hold them until _repoint
            aliased = (
                sql.SQL("(SELECT max(old) FROM {})").format(temp(self.state.alias[tp.name]))
                if tp.name in self.state.alias
                else sql.SQL("NULL")
            )
            # and past the ids production's rows name without a constraint: a fresh id must not
            # be one that production's history of a deleted row still names
            named_top = [
                sql.SQL("(SELECT max(g.{}) FROM {} AS g)").format(
                    sql.Identifier(e.columns[0]), self.state.stage_rel[e.child]
                )
                for e in self._unconstrained_referrers(tp)
            ]
            top = _scalar(
                cur,
                sql.SQL(
                    "SELECT greatest((SELECT max({pk}) FROM {s}), (SELECT max({pk}) FROM {p}), {a})"
                ).format(pk=sql.Identifier(pk), s=stage, p=temp(preserved), a=aliased),
            )
            named_max = (
                _scalar(cur, sql.SQL("SELECT greatest({})").format(sql.SQL(", ").join(named_top)))
                if named_top
                else None
            )
            incoming = _scalar(cur, sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(pk), stage)) or 0
            limit = INTEGER_RANGES[pk_type]
            moving = int(collisions) + dangling
            base = max(int(top), int(incoming) + headroom, int(named_max or 0))
            if base + moving > limit:
                base = int(top)
            if base + moving > limit:
                raise Refused(f"{tp.name}.{pk} ({pk_type}) has no room left for {moving} re-keyed ids")
            new_id = sql.SQL("({} + row_number() OVER (ORDER BY p.{}))::{}").format(
                sql.Literal(base), sql.Identifier(pk), sql.SQL(pk_type)
            )
        else:
            new_id = sql.Composed([sql.SQL("gen_random_uuid()")])
        rekey = f"dbsync_r_{i}"
        in_use = shared_key if named is None else sql.SQL("({} OR {})").format(shared_key, named)
        cur.execute(
            query(
                "create_rekey_map",
                rekey=rekey,
                pk=pk,
                new_id=new_id,
                preserved=preserved,
                in_use=in_use,
            )
        )
        cur.execute(sql.SQL("ANALYZE {}").format(temp(rekey)))
        self.state.rekey[tp.name] = rekey
        for fk in plan.outside_fks:
            if fk.ref_table == tp.name and fk.ref_columns == (pk,):
                referrers = _scalar(
                    cur,
                    query(
                        "select_rekey_referrers",
                        relation=relation(self.target_catalog.tables[fk.table]),
                        rekey=rekey,
                        column=fk.columns[0],
                    ),
                )
                if referrers:
                    raise Refused(
                        f"preserved rows of {tp.name} must be re-keyed, but {referrers} row(s) "
                        f"of {fk.table} (which dbsync does not change) reference them through "
                        f"{fk.name}"
                    )
        cur.execute(query("update_rekeyed_column", preserved=preserved, rekey=rekey, column=pk))
        entry.rows_rekeyed = cur.rowcount
        ids = self._follow_map(cur, tp.name, pk, rekey, fresh=True)
        self.report.rekeys.append({"table": str(tp.name), "column": pk, "ids": ids})
        self.progress.say(f"rekey {tp.name}: {len(ids)} preserved row(s) get fresh ids")

    def _key_parent(self, tp: TablePlan) -> TableName | None:
        """The synced table whose key ``tp``'s single-column primary key references (Django's
        multi-table inheritance: ``invoice.doc_ptr_id``), if any: its ids are the parent's."""
        assert self.plan is not None
        pk = tp.table.primary_key
        for edge in self.plan.edges:
            if edge.child == tp.name and edge.parent != tp.name and pk is not None and edge.columns == pk:
                return edge.parent
        return None

    def _unconstrained_referrers(self, tp: TablePlan) -> list[Edge]:
        """The edges without a constraint (a tenant key column without a foreign key, a
        declared reference, a history table's copy) that reference ``tp``'s primary key from a
        loaded table: production's rows may name ids through them that it no longer has."""
        assert self.plan is not None
        return [
            e
            for e in self.plan.edges
            if not e.constraint and e.parent == tp.name and e.ref_columns == tp.table.primary_key
            if e.child in self.state.stage_rel
        ]

    def _named_by_production(self, cur: psycopg.Cursor[Any], tp: TablePlan, i: int) -> sql.Composable | None:
        """The condition (over a preserved row ``p``) that a generic reference production's
        copied rows hold names the row's id under ``tp``'s content type: a version or a
        permission of an object production deleted (django-reversion keeps them on purpose).
        Left as it is, that reference would lead to UAT's row with the same id once both are
        in one table; the id counts as production's and the row is re-keyed. None without
        such relations. The same holds for references no constraint holds (a tenant key
        column without a foreign key, a declared reference, a history table's copy):
        production's rows may name a row it deleted.

        The ids are collected first, one semi-join per relation driven by the few preserved
        rows (a referrer table, a history table above all, may be large and its column
        unindexed), into a temporary table the condition looks up."""
        assert self.plan is not None
        pk = tp.table.primary_key
        if not pk:
            return None
        preserved = temp(self.state.preserved[tp.name])
        keys = sql.SQL(", ").join(sql.Identifier("p", c) for c in pk)
        matches = [
            (self.state.stage_rel[g.relation.table], g.match("g", "p"))
            for g in self._generic_edges("target")
            if g.parent == tp.name and g.relation.table in self.state.stage_rel
        ]
        matches += [
            (self.state.stage_rel[e.child], equal("g", e.columns, "p", e.ref_columns))
            for e in self._unconstrained_referrers(tp)
        ]
        if not matches:
            return None
        named = f"dbsync_n_{i}"
        branches = sql.SQL(" UNION ").join(
            sql.SQL("SELECT {} FROM {} AS p WHERE EXISTS (SELECT 1 FROM {} AS g WHERE {})").format(
                keys, preserved, stage, match
            )
            for stage, match in matches
        )
        cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}").format(temp(named), branches))
        return sql.SQL("({}) IN (SELECT {} FROM {})").format(
            keys, sql.SQL(", ").join(map(sql.Identifier, pk)), temp(named)
        )

    def _rekey_order(self) -> list[tuple[int, TablePlan]]:
        """The synced tables (with their plan index) in load order, except that a table whose
        key references another's comes after it, even where deferrable keys made the load
        order ignore that edge: a parent's re-key moves its children's ids with it
        (:meth:`_follow_map`), which must happen before they are judged on their own."""
        assert self.plan is not None
        indexed = list(enumerate(self.plan.tables))
        order: list[tuple[int, TablePlan]] = []
        placed: set[TableName] = set()
        while len(order) < len(indexed):
            progressed = False
            for i, tp in indexed:
                parent = self._key_parent(tp)
                if tp.name not in placed and (parent is None or parent in placed or parent == tp.name):
                    order.append((i, tp))
                    placed.add(tp.name)
                    progressed = True
            if not progressed:  # keys referencing each other in a ring: keep the load order
                order += [(i, tp) for i, tp in indexed if tp.name not in placed]
                break
        return order

    def _refuse_unique_collisions(self, cur: psycopg.Cursor[Any]) -> None:
        """A preserved row and an incoming row equal on a unique key cannot both exist: refuse
        before writing, naming the key and its value (ids were re-keyed already; other unique
        columns, like a slug, are the user's to resolve)."""
        assert self.plan is not None
        for tp in self.plan.tables:
            entry = self.report.table(str(tp.name))
            if not (entry.rows_preserved + entry.rows_kept_referenced):
                continue
            for key in tp.table.uniques:
                if not set(key.columns) <= set(tp.copy_columns):
                    continue
                items, predicate, present, names = key_items(key)
                cur.execute(
                    query(
                        "select_unique_collision",
                        items=items,
                        predicate=predicate,
                        not_null=present,
                        preserved=self.state.preserved[tp.name],
                        stage=self.state.stage_rel[tp.name],
                        match=equal("s", names, "p", names),
                    )
                )
                row = cur.fetchone()
                if row is not None:
                    labels = key.expressions or key.columns
                    shown = ", ".join(f"{c}={v!r}" for c, v in zip(labels, row, strict=True))
                    raise Refused(
                        f"a preserved row of {tp.name} and an incoming production row share the "
                        f"unique key {key.name} ({shown}); rename or remove the target's row and "
                        "run again"
                    )

    # -- 10. apply ----------------------------------------------------------------------------

    def _suspend_foreign_keys(self, cur: psycopg.Cursor[Any]) -> list[ForeignKey] | None:
        """Drop, inside the transaction, every foreign key that touches a synced table, to add
        them back after the load. PostgreSQL then checks each key over all rows in one pass
        instead of queueing one check per inserted row until COMMIT (measured: the checks were
        a third of a sync's time). Re-added from pg_get_constraintdef under the same names, the
        schema is exactly as before at COMMIT. A role that does not own the tables cannot do
        this: then nothing is dropped, the deferred checks run as before, and None says so."""
        assert self.plan is not None and self.tgt is not None
        synced = set(self.plan.synced)
        keys = [
            fk
            for fk in self.target_catalog.foreign_keys
            if (fk.table in synced or fk.ref_table in synced) and fk.definition
        ]
        if not keys:
            return []
        if not self._drop_constraints(cur, [(fk.on, fk.name) for fk in keys]):
            self.report.warnings.append(
                "foreign keys were checked row by row at COMMIT: the target role does not own the tables"
            )
            return None
        return keys

    def _suspend_unvalidated_checks(self, cur: psycopg.Cursor[Any]) -> list[tuple[TableName, str, str]]:
        """Drop the synced tables' NOT VALID checks for the load (``sql/select_unvalidated_checks.sql``
        says why); :meth:`_restore_checks` adds them back as they were. A role that may not
        drop them leaves them in place: rows that violate one then fail the load, rolled back."""
        assert self.plan is not None and self.tgt is not None
        synced = set(self.plan.synced)
        cur.execute(query("select_unvalidated_checks", schemas=self.config.schemas))
        checks = [
            (TableName(row[0], row[1]), row[2], row[3])
            for row in cur.fetchall()
            if TableName(row[4], row[5]) in synced  # the table, or the partitioned table it is part of
        ]
        return checks if self._drop_constraints(cur, [(table, name) for table, name, _ in checks]) else []

    def _drop_constraints(self, cur: psycopg.Cursor[Any], constraints: list[tuple[TableName, str]]) -> bool:
        """Drop them all in a savepoint, or none: False when the role may not (it does not own
        the tables)."""
        assert self.tgt is not None
        try:
            with self.tgt.transaction():
                for on, name in constraints:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(on.ident, sql.Identifier(name))
                    )
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _restore_checks(self, cur: psycopg.Cursor[Any]) -> None:
        for table, name, definition in self.state.unvalidated_checks:  # ends in NOT VALID
            _add_constraint(cur, table, name, definition)

    def _restore_foreign_keys(self, cur: psycopg.Cursor[Any], keys: list[ForeignKey]) -> None:
        """Add the suspended keys back, exactly as they were. Adding one makes PostgreSQL check
        every row against it: that check is the key's proof (named in the report, like the
        anti-join proofs of keys that were not suspended), so it is not run a second time."""
        assert self.tgt is not None
        failed = []
        for fk in keys:
            try:
                with self.tgt.transaction():
                    _add_constraint(cur, fk.on, fk.name, fk.definition)
            except psycopg.errors.ForeignKeyViolation as exc:
                failed.append(fk)
                self._proof("foreign_key", f"{fk.on}.{fk.name}", False, _db_message(exc))
            else:
                self.state.validated_keys.add((fk.on, fk.name))
                self._proof(
                    "foreign_key",
                    f"{fk.on}.{fk.name}",
                    True,
                    "every row checked by PostgreSQL when re-added",
                )
        if failed:
            raise ProofFailed(
                f"{len(failed)} foreign key(s) violated, first {failed[0].on}.{failed[0].name}; "
                "the target transaction was rolled back"
            )
        if keys:
            self.progress.say(f"apply: {len(keys)} foreign key(s) re-added and validated over all rows")

    def _empty_tables(self, cur: psycopg.Cursor[Any], tables: Sequence[TablePlan]) -> None:
        """Empty synced tables (in the plan's order): one TRUNCATE where it may run, DELETE
        (children first) where it is refused. Both are inside the transaction."""
        assert self.tgt is not None and self.plan is not None
        plan = self.plan
        truncate = [tp for tp in tables if tp.name in plan.truncatable]
        truncated: set[TableName] = set()
        if truncate:
            try:
                with self.tgt.transaction():  # a savepoint: a refused TRUNCATE falls back to DELETE
                    cur.execute(
                        sql.SQL("TRUNCATE {}").format(
                            sql.SQL(", ").join(relation(tp.table) for tp in truncate)
                        )
                    )
                truncated = {tp.name for tp in truncate}
            except psycopg.errors.InsufficientPrivilege:
                warning = "TRUNCATE not permitted on the target; used DELETE"
                if warning not in self.report.warnings:
                    self.report.warnings.append(warning)
        for tp in reversed(tables):
            entry = self.report.table(str(tp.name))
            if tp.name in truncated:
                entry.rows_deleted = entry.rows_target_before
                continue
            cur.execute(query("delete_all_rows", relation=relation(tp.table)))
            entry.rows_deleted += cur.rowcount

    def _apply(self) -> None:
        assert self.tgt is not None and self.plan is not None
        plan = self.plan
        with self.tgt.cursor() as cur:
            if not self.state.direct:
                self._empty_tables(cur, plan.tables)
            faults.checkpoint("apply.insert")
            for tp in plan.tables:
                entry = self.report.table(str(tp.name))
                started = time.monotonic()
                overriding = sql.SQL("OVERRIDING SYSTEM VALUE" if tp.table.has_identity_always else "")
                sources = [(self.state.preserved[tp.name], tp.table.writable_columns)]
                if tp.name not in self.state.into_table:
                    sources.append((self.state.stage[tp.name], tp.copy_columns))
                for source, cols in sources:
                    cur.execute(
                        query(
                            "insert_rows",
                            table=tp.name.ident,
                            columns=columns(cols),
                            overriding=overriding,
                            source=source,
                        )
                    )
                entry.seconds += time.monotonic() - started
            self._restore_foreign_keys(cur, self.state.suspended)
            self._restore_checks(cur)

    # -- 11. sequences -----------------------------------------------------------------------

    def _sequences(self) -> None:
        """Move every sequence a synced table draws from past the furthest id in its direction
        (the largest; the smallest for a descending one) of every table that draws from it,
        synced or not (one sequence can feed several tables), and past production's furthest
        incoming id by the headroom where the sequence and the columns have room."""
        assert self.tgt is not None and self.plan is not None
        headroom = self.config.sequence_headroom
        feeds: dict[TableName, list[tuple[TableName, SequenceUse]]] = {}
        for table in self.target_catalog.tables.values():
            for use in table.sequences:
                feeds.setdefault(use.sequence, []).append((table.name, use))
        synced = set(self.plan.synced)
        with self.tgt.cursor() as cur:
            for sequence, uses in sorted(feeds.items()):
                if not any(name in synced for name, _ in uses):
                    continue
                uses.sort(key=lambda u: (u[0], u[1].column))
                sign = -1 if uses[0][1].descending else 1  # compare ids as if ascending
                found: list[tuple[TableName, SequenceUse, Any, Any, Any]] = []
                for name, use in uses:
                    lowest, highest = cur.execute(
                        sql.SQL("SELECT min({c})::numeric, max({c})::numeric FROM {}").format(
                            name.ident, c=sql.Identifier(use.column)
                        )
                    ).fetchone() or (None, None)
                    found.append(
                        (name, use, lowest, highest, self.state.max_incoming.get((name, use.column)))
                    )
                present = [int(lo if sign < 0 else hi) * sign for _, _, lo, hi, _ in found if hi is not None]
                if not present:
                    continue
                furthest = max(present)
                incoming = [int(i) * sign for *_, i in found if i is not None]
                wanted = max(furthest + 1, (max(incoming) if incoming else 0) + headroom + 1)
                room = min(u.limit if sign > 0 else -u.lower_limit for _, u in uses)
                restart = wanted if wanted <= room else furthest + 1
                columns = ", ".join(f"{name}.{use.column} ({use.column_type})" for name, use in uses)
                if restart > room:
                    raise RolledBack(
                        f"sequence {sequence} cannot move past {furthest * sign}: {columns} is full"
                    )
                if restart != wanted:
                    self.report.warnings.append(
                        f"sequence {sequence}: {columns} has no room for the headroom of {headroom} "
                        f"past production's ids, so it continues right after {furthest * sign}"
                    )
                cur.execute(query("alter_sequence_restart", sequence=sequence.ident, value=restart * sign))
                for name, use, lowest, highest, mine in found:
                    self.report.sequences.append(
                        {
                            "sequence": str(sequence),
                            "column": f"{name}.{use.column}",
                            "descending": sign < 0,
                            "max_id": None if highest is None else int(highest),
                            "min_id": None if lowest is None else int(lowest),
                            "max_incoming_id": None if mine is None else int(mine),
                            "restart_with": restart * sign,
                            "headroom_applied": restart == wanted,
                        }
                    )

    # -- 12. prove ---------------------------------------------------------------------------

    def _proof(self, name: str, subject: str, ok: bool, detail: str = "", *, fatal: bool = False) -> None:
        self.report.proofs.append(Proof(name, subject, ok, detail))
        if not ok:
            self.progress.say(f"PROOF FAILED {name} {subject}: {detail}")
            if fatal:
                raise ProofFailed(f"proof {name} failed for {subject}: {detail}")

    def _prove(self) -> None:
        assert self.tgt is not None and self.plan is not None
        plan = self.plan
        with self.tgt.cursor() as cur:
            for tp in plan.tables:
                entry = self.report.table(str(tp.name))
                cols = columns(tp.copy_columns)
                final = _digest(cur, relation(tp.table), cols)
                kept = _digest(cur, temp(self.state.preserved[tp.name]), cols)
                staged = self.state.expected[tp.name]  # production's digest, accounted for changes
                entry.rows_after = final[0]
                expected_copied = entry.rows_source - entry.rows_excluded_test - entry.rows_dropped_conflicts
                self._proof(
                    "row_counts",
                    str(tp.name),
                    final[0] == kept[0] + staged[0]
                    and staged[0] == expected_copied == entry.rows_copied + entry.rows_left_in_place,
                    f"after {final[0]} = preserved {kept[0]} + production's {staged[0]} (copied "
                    f"{entry.rows_copied}, left in place {entry.rows_left_in_place}); production's = source "
                    f"{entry.rows_source} - test {entry.rows_excluded_test} - conflicts "
                    f"{entry.rows_dropped_conflicts} = {expected_copied}",
                )
                self._proof(
                    "content",
                    str(tp.name),
                    final[1] == kept[1] + staged[1],
                    "digest of the table = production's digest in the snapshot - rows left out "
                    "+ rewrites (remaps) + preserved rows",
                )
                self._prove_preserved(cur, tp)
            for name in (*plan.excluded, *plan.untouched):
                after = _digest(cur, relation(self.target_catalog.tables[name]), sql.SQL("t"))
                same = after == self.state.before[name]
                verdict = "unchanged" if same else "CHANGED"
                self._proof("untouched", str(name), same, f"{after[0]} rows; digest {verdict}")
            self._prove_foreign_keys(cur)
            fallback = self.state.fallback_user is not None or self.state.fallback_used
            if plan.user_table is not None and fallback:
                users = self.target_catalog.tables[plan.user_table]
                assert users.primary_key is not None
                exists = (
                    _scalar(
                        cur,
                        sql.SQL("SELECT count(*) FROM {} WHERE {} = {}").format(
                            relation(users),
                            sql.Identifier(users.primary_key[0]),
                            sql.Literal(self.state.fallback_user),
                        ),
                    )
                    if self.state.fallback_user is not None
                    else 0
                )
                self._proof(
                    "fallback_user",
                    str(plan.user_table),
                    bool(exists) or not self.state.fallback_used,
                    f"id {self.state.fallback_user}",
                )
            increments = {
                str(u.sequence): (u.sequence, u.increment)
                for t in self.target_catalog.tables.values()
                for u in t.sequences
            }
            for seq in self.report.sequences:
                seq_name, increment = increments[seq["sequence"]]
                last: Any
                called: Any
                last, called = cur.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}").format(seq_name.ident)
                ).fetchone() or (None, None)
                next_value = int(last) + increment if called else int(last)
                if seq["descending"]:
                    edge, past = seq["min_id"], seq["min_id"] is None or next_value < seq["min_id"]
                    what = "smallest"
                else:
                    edge, past = seq["max_id"], seq["max_id"] is None or next_value > seq["max_id"]
                    what = "largest"
                self._proof(
                    "sequence",
                    seq["sequence"],
                    past,
                    f"next value {next_value} {'is past' if past else 'is NOT past'} the {what} id "
                    f"{edge} of {seq['column']}",
                )
        failed = [p for p in self.report.proofs if not p.ok]
        if failed:
            first = failed[0]
            raise ProofFailed(
                f"{len(failed)} proof(s) failed, first: {first.name} {first.subject}: {first.detail}"
            )
        faults.checkpoint("prove.end")

    def _prove_preserved(self, cur: psycopg.Cursor[Any], tp: TablePlan) -> None:
        entry = self.report.table(str(tp.name))
        count = entry.rows_preserved + entry.rows_kept_referenced
        before = self.state.preserved_digest[tp.name]
        if not count or tp.table.primary_key is None:
            return
        pk = tp.table.primary_key
        joins: list[sql.Composable] = []
        restore: dict[str, list[sql.Composable]] = {}  # column -> expressions of its old value
        joined: set[tuple[str, str, str]] = set()

        Build = Callable[[sql.Identifier], sql.Composable]

        def join(map_table: str, column: str, key: str, on: Build, old: Build) -> None:
            if (map_table, column, key) in joined:
                return
            joined.add((map_table, column, key))
            alias = sql.Identifier(f"m{len(joins)}")
            joins.append(sql.SQL("LEFT JOIN {} AS {} ON {}").format(temp(map_table), alias, on(alias)))
            restore.setdefault(column, []).append(old(alias))

        def plain(map_table: str, column: str) -> None:
            join(
                map_table,
                column,
                "",
                lambda m: sql.SQL("{}.new = {}").format(m, sql.Identifier("t", column)),
                lambda m: sql.SQL("{}.old").format(m),
            )

        if tp.name in self.state.rekey:
            plain(self.state.rekey[tp.name], pk[0])
        for edge in self.plan.edges:  # type: ignore[union-attr]
            parent_pk = self.target_catalog.tables[edge.parent].primary_key
            if edge.child != tp.name or parent_pk is None or len(parent_pk) != 1:
                continue
            if parent_pk[0] not in edge.ref_columns:
                continue
            column = edge.columns[edge.ref_columns.index(parent_pk[0])]  # as _follow_map moved it
            if edge.parent == tp.name and column == pk[0]:
                continue
            for maps in (self.state.rekey, self.state.alias):
                if edge.parent in maps:
                    plain(maps[edge.parent], column)
        for (table, column), carried in self.state.cascaded.items():
            if table == tp.name:
                for map_table in carried:
                    plain(map_table, column)
        for g in self._generic_edges("target"):
            if g.relation.table != tp.name:
                continue
            for maps in (self.state.rekey, self.state.alias):
                if g.parent in maps:
                    on, old = _generic_restore(g)
                    join(maps[g.parent], g.relation.object_id_column, str(g.content_type), on, old)
        restored: list[sql.Composable] = []
        for c in tp.table.writable_columns:
            if c in restore:
                restored.append(
                    sql.SQL("coalesce({}, t.{})").format(sql.SQL(", ").join(restore[c]), sql.Identifier(c))
                )
            else:
                restored.append(sql.Identifier("t", c))
        cur.execute(
            query(
                "select_preserved_digest",
                restored=sql.SQL(", ").join(restored),
                relation=relation(tp.table),
                preserved=self.state.preserved[tp.name],
                on=equal("p", pk, "t", pk),
                joins=sql.SQL(" ").join(joins),
            )
        )
        row = cur.fetchone()
        assert row is not None
        after = (int(row[0]), int(row[1]))
        self._proof(
            "preserved",
            str(tp.name),
            after == before,
            f"{count} preserved row(s); {'unchanged apart from re-keying' if after == before else 'CHANGED'}",
        )

    def _prove_foreign_keys(self, cur: psycopg.Cursor[Any]) -> None:
        assert self.plan is not None
        synced = set(self.plan.synced)
        for fk in self.target_catalog.foreign_keys:
            if fk.table not in synced and fk.ref_table not in synced:
                continue
            if (fk.on, fk.name) in self.state.validated_keys:
                continue  # proven over every row when it was re-added (see _restore_foreign_keys)
            violations = _scalar(
                cur,
                query(
                    "select_fk_violations",
                    table=fk.on.ident,
                    ref_table=fk.ref_on.ident,
                    not_null=not_null("c", fk.columns),
                    match=equal("p", fk.ref_columns, "c", fk.columns),
                ),
            )
            self._proof(
                "foreign_key",
                f"{fk.on}.{fk.name}",
                violations == 0,
                f"{violations} row(s) reference a missing {fk.ref_on} row",
            )

    # -- 13. commit --------------------------------------------------------------------------

    def _commit(self) -> None:
        assert self.tgt is not None and self.target_identity is not None
        self._await_backup()
        [(xid, pid)] = self.tgt.execute(query("select_transaction_id")).fetchall()  # see _settle_commit
        pending = outcome.Pending(str(xid), int(str(pid)))
        try:
            self.tgt.commit()
        except KeyboardInterrupt:
            # psycopg cancels a COMMIT it sent and re-raises, whether or not the server had
            # committed already. One still unsent (the transaction open) is an interruption.
            if self.tgt.info.transaction_status != TransactionStatus.INTRANS:
                self._settle_commit(pending, None)
            raise
        except psycopg.OperationalError as exc:
            if not (self.tgt.closed or self.tgt.broken):
                raise
            self._settle_commit(pending, _db_message(exc))
            return
        self._in_transaction = False
        self.report.finish("committed")  # at once: a signal from here on finds it committed

    def _settle_commit(self, pending: outcome.Pending, lost: str | None) -> None:
        """After COMMIT was interrupted (``lost`` is None: a signal; else the lost connection's
        message): the server's commit log says what became of it (see outcome). Committed, the
        run is; aborted, it was rolled back; unknown, OutcomeUnknown says how to find out."""
        assert self.target_identity is not None
        xid = pending.xid
        with outcome.signals_held():  # until the answer is in the report
            verdict = outcome.resolve(self.target_ep, self.target_identity, pending)
            if verdict == "committed":
                self._in_transaction = False
                cause = "a signal" if lost is None else f"the connection was lost: {lost}"
                self.report.warnings.append(commit_settled(cause, xid))
                self.report.finish("committed")
        if verdict == "committed":
            return  # a signal goes on: the CLI says the run is committed
        if verdict == "aborted":
            if lost is None:
                return  # the signal goes on as any other: rolled back
            raise RolledBack(
                f"the connection to the target was lost during COMMIT ({lost}), and the server "
                f"rolled the transaction back (transaction {xid}): nothing changed"
            )
        if lost is None:
            raise OutcomeUnknown(
                "interrupted while COMMIT was in flight, and the target did not say how it ended: "
                "it holds either its old data or the new (the report's proofs were for the new); "
                f"before running again, {outcome.ask_later(xid)}"
            ) from None
        raise OutcomeUnknown(
            f"the connection to the target was lost during COMMIT ({lost}), and the target did "
            f"not say how it ended; {outcome.ask_later(xid)}"
        ) from None


def run_sync(
    source: Endpoint,
    target: Endpoint,
    config: SyncConfig,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    report: Report | None = None,
    backup: BackupSettings | None = None,
    jobs: int | None = None,
) -> Report:
    """Run one sync; returns the report, or raises a :class:`DbsyncError` (the report is filled)."""
    return SyncRun(
        source, target, config, dry_run=dry_run, progress=progress, report=report, backup=backup, jobs=jobs
    ).run()


__all__ = ["Catalog", "SyncRun", "Table", "run_sync"]
