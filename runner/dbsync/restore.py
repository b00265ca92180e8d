"""``dbsync restore``: production's full backup into staging, atomically, verified before COMMIT.

The steps (the report and the progress lines use these names):

1. ``connect``        staging, and production unless restoring ``--from-backup``; refuse when
                      they are one database.
2. ``inspect``        production in a REPEATABLE READ, READ ONLY transaction with an exported
                      snapshot: its fingerprint (schema, per-table counts and digests, sequences,
                      large objects) and extensions. From a stored backup: its manifest, re-hashed.
                      Every extension production uses must be available on staging, and
                      pg_dump/pg_restore/psql at least as new as the servers must be installed,
                      or the run stops here.
3. ``backup``         ``pg_dump -Fc --no-owner --no-privileges`` of production in that snapshot,
                      streamed into the store as the series' new backup, read back, re-hashed,
                      manifest (with the fingerprint) written last. Production is dumped once,
                      and the same bytes feed pg_restore in ``replace`` as they are uploaded
                      (the step does not wait for the dump: staging's backup runs while pg_dump
                      reads production's catalog, and ``replace`` waits for the stream before
                      it touches staging; the fingerprint is taken on other connections in the
                      snapshot once pg_restore has been handed the whole dump, so that it does
                      not compete with the load). A restore that fails later, pg_restore
                      stopping half-way included, still completes the backup; an interrupted one
                      aborts its upload.
4. ``target-backup``  staging's current contents into the store (its own series), in the
                      replace's own transaction: writers are locked out of every user table,
                      then pg_dump reads the snapshot exported after those locks, so the
                      backup is exactly what the restore replaces. Its read-back runs beside
                      the next steps; ``commit`` waits for it.
5. ``replace``        one psql session, one transaction on staging: drop every user schema and
                      large object, recreate ``public``, stream the dump through pg_restore into
                      it (re-hashing the bytes on the way), then wait for the production backup
                      to be stored and verified: the two sha256 digests must agree.
6. ``verify``         staging's fingerprint, taken inside that uncommitted transaction, must
                      equal production's; every difference is named in the report.
7. ``commit``         then keep the newest N backups of each series.

Why one transaction in the same database, not a new database swapped in by rename: a rename
needs the database to have no connections at all, and an application behind a connection pool
holds connections open and reconnects at once; the managed cluster's ``doadmin`` may not even
be able to terminate them. Inside one transaction, the application's queries wait on the locks
and then see either all of the old staging or all of the new one, never a missing or half-
restored database. The limits: staging's tables are locked against writers from its backup
on, and against readers too for the duration of the replace,
the transaction needs room for both copies until COMMIT, and the previous contents are kept as
a verified backup in the store rather than as a second database.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import IsolationLevel, sql

from . import faults, fingerprint, outcome
from .background import Background
from .backup import (
    DEFAULT_COMPRESSION,
    Backup,
    Manifest,
    Owner,
    Sealing,
    dump_backup,
    find_backup,
    prune,
    read_archive,
    series_for,
    verify_backup,
)
from .compression import Compression
from .connect import Connection, Endpoint, close_all, connect, timeouts_off
from .errors import (
    BackupInvalid,
    ConnectionFailed,
    DbsyncError,
    OutcomeUnknown,
    ProofFailed,
    Refused,
    RolledBack,
)
from .identity import Identity, identify, refuse_same_database
from .pgtools import find_tool, server_major
from .progress import Progress
from .psql_session import PsqlSession, stopped_reason
from .readers import SnapshotReaders, readers_beside
from .redact import redact, redact_output
from .report import Proof, Report, pruning_after_commit
from .restore_script import SINGLE_TRANSACTION, Unwrapped
from .session_backup import back_up_in_session
from .sqlfiles import query
from .store import CHUNK, BackupStore


@dataclass(frozen=True)
class RestoreSettings:
    store: BackupStore
    series: str | None = None  # production backups; default <dbname>-<host>-production
    retain: int = 7
    backup_target: bool = True  # staging's previous contents into the store first
    from_backup: str | None = None  # a run id, folder or "latest": no production access
    lock_timeout_seconds: float = 30
    jobs: int | None = None  # connections reading production at once (default: the cores)
    compression: Compression = DEFAULT_COMPRESSION  # both backups


class RestoreRun:
    def __init__(
        self,
        source: Endpoint | None,
        target: Endpoint,
        settings: RestoreSettings,
        *,
        progress: Progress | None = None,
        report: Report | None = None,
    ) -> None:
        self.source_ep = source
        self.target_ep = target
        self.settings = settings
        self.progress = progress or Progress(quiet=True)
        self.report = report or Report(command="restore")
        self.report.target = {"database": target.description}
        if source is not None:
            self.report.source = {"database": source.description}
        self.src: Connection | None = None
        self.tgt: Connection | None = None
        self.src_id: Identity | None = None
        self.tgt_id: Identity | None = None
        self.expected: fingerprint.Fingerprint | None = None
        self.manifest: Manifest | None = None
        self.backup: Backup | None = None
        self.snapshot: str | None = None
        self.session: PsqlSession | None = None
        self.expected_schema: list[str] = []
        self._fingerprinting: Background[tuple[fingerprint.Fingerprint, dict[str, int]]] | None = None
        self._fingerprint_readers: SnapshotReaders | None = None
        self._dumping: Background[Manifest] | None = None
        self._sealing: Sealing | None = None  # staging's backup, read back beside the replace
        self._tee: _Tee | None = None
        self._step: str | None = None
        self._series: list[tuple[str, Owner]] = []
        self._large_objects = False  # production's dump holds large objects (see _replace)

    def run(self) -> Report:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("connect", self._connect),
            ("inspect", self._inspect),
        ]
        if self.source_ep is not None:
            steps.append(("backup", self._backup))
        if self.settings.backup_target:
            steps.append(("target-backup", self._target_backup))
        steps += [("replace", self._replace), ("verify", self._verify), ("commit", self._commit)]
        try:
            for name, action in steps:
                self._step = name
                with self.progress.step(self.report, name):
                    faults.checkpoint(name)
                    action()
        except BaseException as exc:
            if self.report.status == "committed":  # a signal after COMMIT: nothing to undo
                raise
            error = self._translate(exc)
            self._abandon(interrupted=not isinstance(error, DbsyncError))
            if isinstance(error, DbsyncError):
                self.report.fail(self._step, error.kind, str(error))
                self.report.finish(
                    "outcome_unknown"
                    if isinstance(error, OutcomeUnknown)
                    else "refused"
                    if isinstance(error, Refused)
                    else "rolled_back"
                    if self._step in ("replace", "verify", "commit")
                    or self.session is not None  # staging's backup failed its check at commit
                    or isinstance(error, RolledBack)
                    else "failed"
                )
            else:
                self.report.fail(self._step, "interrupted", "interrupted by a signal")
                self.report.finish("interrupted")
            raise error from None
        finally:
            close_all(self.src, self.tgt)
        # Committed: an interruption while old backups are pruned leaves the status as it is
        # (the CLI says staging was restored), never "rolled back".
        self._retain()
        return self.report

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, DbsyncError | KeyboardInterrupt):
            return exc
        if isinstance(exc, psycopg.Error):
            message = exc.diag.message_primary or str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
        return RolledBack(f"step {self._step} failed: {redact(message)}; staging was not changed")

    def _abandon(self, interrupted: bool) -> None:
        """Roll staging back; let a production backup in flight finish on its own (or, when
        interrupted, abort its upload): a failed restore still leaves the week's backup."""
        if self.session is not None:
            self.session.abandon()
        if not interrupted:
            self._settle_target_backup()
        if self._tee is not None and self._dumping is None:
            self._tee.drained.set()  # no dump will start: the fingerprint's readers stop waiting
        if self._tee is None or self._dumping is None:
            return
        if interrupted:
            self._tee.abort()
            self._stop_fingerprint()  # no manifest will need it: production is left alone
            self._dumping.wait(60)  # the upload is aborted, not left half-written
            return
        self._tee.detach()
        if self.report.backup is None:
            try:
                self._finish_backup()
            except Exception as exc:  # the run's own error already says what failed
                if self._dumping.error is None or self._step != "backup":
                    self.report.warnings.append(f"the production backup did not complete: {redact(str(exc))}")

    # -- 1. connect --------------------------------------------------------------------------

    def _connect(self) -> None:
        self.tgt = connect(self.target_ep)
        self.tgt_id = identify(self.tgt)
        self.report.target.update(server_version=self.tgt_id.server_version, dbname=self.tgt_id.dbname)
        if self.source_ep is None:
            return
        self.src = connect(self.source_ep)
        self.src_id = identify(self.src)
        self.report.source.update(
            server_version=self.src_id.server_version,
            dbname=self.src_id.dbname,
            system_identifier=self.src_id.system_identifier,
        )
        refuse_same_database(self.src, self.tgt, self.src_id, self.tgt_id, self.target_ep.description)

    # -- 2. inspect --------------------------------------------------------------------------

    def _inspect(self) -> None:
        assert self.tgt is not None and self.tgt_id is not None
        target_major = server_major(self.tgt_id.server_version_num)
        self.pg_restore = find_tool("pg_restore", target_major)
        self.psql = find_tool("psql", target_major)
        self.pg_dump_target = find_tool("pg_dump", target_major)
        if self.src is not None:
            assert self.src_id is not None
            source_major = server_major(self.src_id.server_version_num)
            self.pg_dump = find_tool("pg_dump", max(source_major, target_major))
            self.src.autocommit = False
            self.src.isolation_level = IsolationLevel.REPEATABLE_READ
            self.src.read_only = True
            with self.src.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                row = cur.fetchone()
                assert row is not None
                self.snapshot = str(row[0])
            self.report.snapshot = self.snapshot
            # The schema now (extensions are checked below); the table digests, sequences and
            # large objects on other connections in the same snapshot, once the load has the
            # whole dump (see _take_fingerprint).
            self.expected_schema = fingerprint.take_schema(self.src)
            with self.src.cursor() as cur:
                cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_largeobject_metadata)")
                row = cur.fetchone()
                self._large_objects = bool(row and row[0])
            self._tee = _Tee()
            self._fingerprinting = Background(self._take_fingerprint, "dbsync-fingerprint")
        else:
            ref = self.settings.from_backup or "latest"
            self.backup = find_backup(self.settings.store, ref, self.settings.series, fingerprinted=True)
            self.manifest = verify_backup(self.settings.store, self.backup)
            if not self.manifest.fingerprint:
                raise BackupInvalid(
                    f"{self.backup.folder} is a {self.manifest.kind} backup without a fingerprint, "
                    "so a restore from it cannot be verified; use a backup that dbsync restore took"
                )
            try:
                self.expected = fingerprint.Fingerprint.from_json(self.manifest.fingerprint)
            except (ValueError, KeyError, TypeError) as exc:
                raise BackupInvalid(
                    f"the fingerprint in {self.backup.folder}'s manifest cannot be used ({exc}): "
                    "it was written by another version of dbsync"
                ) from None
            self.expected_schema = self.expected.schema
            self._large_objects = int(self.expected.large_objects[0]) > 0
            self.report.source = {"backup": self.backup.folder, "database": self.manifest.database}
        with self.tgt.cursor() as cur:
            cur.execute("SELECT name FROM pg_available_extensions")
            available = {r[0] for r in cur.fetchall()}
        extensions = fingerprint.Fingerprint(schema=self.expected_schema).extensions
        missing = sorted(set(extensions) - available)
        if missing:
            raise Refused(
                f"production uses the extension(s) {', '.join(missing)}, which staging's server "
                "does not offer; nothing was changed. Enable them on the staging cluster first."
            )
        self.progress.say(f"inspect: {len(self.expected_schema)} schema objects")

    def _take_fingerprint(self) -> tuple[fingerprint.Fingerprint, dict[str, int]]:
        """Production's fingerprint and row counts, on connections of their own in the run's
        snapshot: the same rows the dump holds.

        The connections join the snapshot at once, but the digests wait until pg_restore has
        been handed the dump's last byte: until then, production's COPY and staging's load are
        the run's critical path, and scanning every table a second time at the same moment
        only slows them (on the benchmark's machine staging's backend got half a core instead
        of a whole one). The fingerprint is first needed after pg_restore has built staging's
        indexes and constraints, which takes longer than the fingerprint. For the same reason
        its queries use no parallel workers: production serves its users meanwhile, and the
        fingerprint is not what the run waits for."""
        assert self.source_ep is not None and self.snapshot is not None and self._tee is not None
        # --jobs connections read production at once: pg_dump's, and the fingerprint's others.
        with SnapshotReaders(
            self.source_ep, self.snapshot, readers_beside(self.settings.jobs), parallel_workers=False
        ) as readers:
            self._fingerprint_readers = readers  # before the wait: an interrupt can close them
            self._tee.drained.wait()
            if self._dumping is None or self._dumping.error is not None or self._tee.aborted:
                raise RolledBack("the restore stopped before production was dumped")
            tables = readers.submit(_dumped_tables)
            taken = fingerprint.take_parallel(readers.submit)
            return taken, fingerprint.counts_from(taken, tables.result())

    def _stop_fingerprint(self) -> None:
        """Cancel the fingerprint's queries on production (an interrupted run): its readers'
        running statements are cancelled and their queued ones dropped, so the process exits
        at once and no production connection outlives the run."""
        readers = self._fingerprint_readers
        if readers is not None:
            with contextlib.suppress(Exception):
                readers.close()

    def _expected(self) -> fingerprint.Fingerprint:
        """Production's fingerprint, waiting for it when it is still being taken."""
        if self.expected is None:
            assert self._fingerprinting is not None
            self.expected, _counts = self._fingerprinting.result()
            self.progress.say(
                f"fingerprint: {len(self.expected.tables)} tables, {len(self.expected.sequences)} "
                f"sequences, {self.expected.large_objects[0]} large objects"
            )
        return self.expected

    # -- 3. backup ---------------------------------------------------------------------------

    def _backup(self) -> None:
        """Start the production dump into the store on a thread of its own; the replace step
        feeds the same bytes to pg_restore as they are uploaded (a bounded queue between them),
        and waits for the backup to be read back, re-hashed and its manifest written before it
        finishes. This step does not wait for the dump: pg_dump's catalog reads overlap with
        staging's own backup, and :meth:`_await_dump` fails the run (as this step's failure)
        before anything is changed when the dump could not start."""
        assert self.src is not None and self.src_id is not None and self.source_ep is not None
        owner = Owner(self.src_id.system_identifier, self.src_id.dbname, self.source_ep.description)
        series = self.settings.series
        if series is None:
            port = str(self.src.info.port)
            series, moved = series_for(self.settings.store, self.source_ep, "production", owner, port)
            if moved:
                self._warn(moved)
        self._series.append((series, owner))
        assert self._tee is not None
        tee = self._tee
        src_id, source_ep = self.src_id, self.source_ep

        def dump() -> Manifest:
            return dump_backup(
                self.settings.store,
                conninfo=source_ep.conninfo,
                tool=self.pg_dump,
                series=series,
                run_id=self.report.run_id,
                kind="production",
                database={
                    "description": source_ep.description,
                    "dbname": src_id.dbname,
                    "system_identifier": src_id.system_identifier,
                },
                server_version=src_id.server_version,
                tables=lambda: self._counts(),
                snapshot=self.snapshot,
                dump_options=["--no-owner", "--no-privileges"],
                fingerprint=lambda: self._expected().to_json(),
                tap=tee.tap,
                compression=self.settings.compression,
            ).seal()

        self._dumping = Background(dump, "dbsync-dump", on_error=tee.fail)

    def _await_dump(self) -> None:
        """Wait until production's dump streams. Its failure is the backup step's, whichever
        later step was waiting for it: the report names the work that failed."""
        assert self._tee is not None and self._dumping is not None
        try:
            self._tee.wait_streaming(self._dumping)
        except BaseException:
            self._step = "backup"
            raise

    def _counts(self) -> dict[str, int]:
        assert self._fingerprinting is not None
        return self._fingerprinting.result()[1]

    def _finish_backup(self) -> None:
        """Wait for the production backup (stored, re-hashed, manifest written)."""
        assert self._dumping is not None
        self.manifest = self._dumping.result()
        # Production has been read: end its transaction and its snapshot.
        if self.src is not None:
            self.src.rollback()
        self.report.backup = {
            "store": self.settings.store.url,
            "series": self._series[0][0],
            "key": self.manifest.dump_key,
            "size": self.manifest.size,
            "sha256": self.manifest.sha256,
            "verified": True,
        }
        self.progress.say(f"backup: production, {self.manifest.size:,} bytes, verified")

    # -- 4. target-backup --------------------------------------------------------------------

    def _target_backup(self) -> None:
        """Staging's backup, in the replace's own transaction (see session_backup): exactly
        what the restore replaces."""
        assert self.tgt is not None and self.tgt_id is not None
        series, owner, unsealed = back_up_in_session(
            self._open_session(),
            self.tgt,
            self.settings.store,
            target=self.target_ep,
            ident=self.tgt_id,
            pg_dump=self.pg_dump_target,
            kind="pre-restore",
            run_id=self.report.run_id,
            compression=self.settings.compression,
            lock_timeout_seconds=self.settings.lock_timeout_seconds,
            in_use=self._in_use,
            unchanged="staging was not changed",
            warn=self._warn,
        )
        # pg_dump has exited: replace can take its locks. The read-back runs beside it, and
        # commit waits for it (see _await_target_backup).
        self._series.append((series, owner))
        self.report.target["backup"] = {"series": series}
        self._sealing = Sealing(unsealed, self.report.target["backup"])

    def _await_target_backup(self) -> None:
        """Wait for staging's backup to be read back, re-hashed and given its manifest. Its
        failure is the target-backup step's, and rolls the replace back."""
        if self._sealing is None:
            return
        try:
            self._sealing.wait("staging")
        except Exception:
            self._step = "target-backup"
            raise

    def _warn(self, message: str) -> None:
        self.report.warnings.append(message)

    def _settle_target_backup(self) -> None:
        """A restore that failed for another reason still completes staging's backup."""
        error = self._sealing.settle() if self._sealing is not None else None
        if error is not None and self._step != "target-backup":  # else the run's own error
            self.report.warnings.append(f"staging's backup did not complete: {redact(str(error))}")

    def _open_session(self) -> PsqlSession:
        """The one transaction on staging that the restore commits or abandons: opened by
        target-backup (which locks writers out before its snapshot), or else by replace."""
        if self.session is None:
            assert self.tgt_id is not None
            self.session = session = PsqlSession(self.psql, self.target_ep.conninfo)
            lock_timeout = int(self.settings.lock_timeout_seconds * 1000)
            # as dbsync's own connections, and as pg_restore's script does after the prelude
            off = timeouts_off(self.tgt_id.server_version_num, local=True)
            timeouts = "".join(f"{stmt};\n" for stmt in off)
            try:
                session.begin(f"SET LOCAL lock_timeout = '{lock_timeout}ms';\n{timeouts}")
            except ConnectionFailed:  # psql never connected: no transaction was opened
                session.abandon()
                self.session = None
                raise
        return self.session

    def _ask_locking(self, session: PsqlSession, statements: str) -> list[str]:
        """:meth:`PsqlSession.ask` after statements that take staging's locks: a lock not
        granted within --lock-timeout is said as such, not as psql's raw cancellation."""
        try:
            return session.ask(statements)
        except RolledBack as exc:
            if "lock timeout" not in str(exc):
                raise
            raise self._in_use() from None

    def _in_use(self) -> RolledBack:
        return RolledBack(
            f"staging's tables are in use: they could not be locked within "
            f"{self.settings.lock_timeout_seconds:g}s (--lock-timeout); nothing changed, "
            "run again when staging is quieter"
        )

    # -- 5. replace --------------------------------------------------------------------------

    def _replace(self) -> None:
        store = self.settings.store
        assert self.tgt_id is not None
        if self._tee is not None:
            self._await_dump()  # before staging is touched
        session = self._open_session()
        prelude = query("drop_user_objects", create_public="schema|public" in self.expected_schema)
        session.send(_render(prelude) + "\n")
        self._ask_locking(session, "SELECT 1;")  # the old contents are gone inside the transaction
        # pg_restore writes its SQL straight into psql's stdin: no copy through this process.
        # Large objects are the exception: their data comes wrapped in a COMMIT of pg_restore's
        # own, which this process takes out on the way (see restore_script).
        options = ["--no-owner", "--no-privileges", "--exit-on-error", "--file=-"]
        if self._large_objects:
            options.append(SINGLE_TRANSACTION)
        if self._tee is not None:
            chunks = self._tee.chunks()  # production's dump as it is uploaded
        else:
            assert self.manifest is not None
            chunks = read_archive(store, self.manifest)  # before pg_restore: it may raise
        restorer = subprocess.Popen(
            [self.pg_restore.path, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if self._large_objects else session.input_fd(),
            stderr=subprocess.PIPE,
        )
        assert restorer.stdin and restorer.stderr
        relay = self._relay(restorer, session) if self._large_objects else None
        digest = hashlib.sha256()
        problems: list[BaseException] = []
        errors: list[bytes] = []
        fed = threading.Event()
        threading.Thread(target=lambda: errors.append(restorer.stderr.read()), daemon=True).start()  # type: ignore[union-attr]

        def feed(chunks: Iterator[bytes]) -> None:
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    restorer.stdin.write(chunk)  # type: ignore[union-attr]
                    fed.set()
            except BaseException as exc:
                # pg_restore stopped reading (psql stopped on an error): its exit code and
                # psql's message say why, below. Anything else is the backup's own failure.
                if not isinstance(exc, BrokenPipeError):
                    problems.append(exc)
                if self._tee is not None:
                    # Either way pg_restore reads no more: the dump goes on into the store
                    # alone instead of waiting for room in the queue for ever.
                    self._tee.detach()
            finally:
                fed.set()
                with contextlib.suppress(OSError):
                    restorer.stdin.close()  # type: ignore[union-attr]

        feeder = threading.Thread(target=feed, args=(chunks,), daemon=True)
        feeder.start()
        try:
            fed.wait()
            faults.checkpoint("replace.stream")  # the dump is flowing into staging
            feeder.join()
            code = restorer.wait()
            if relay is not None:
                relay.wait(None)
        finally:
            if restorer.poll() is None:
                restorer.kill()
                restorer.wait()
        if self._tee is not None:
            try:
                self._finish_backup()  # the backup's own failure first, if it failed
            except Exception:
                self._step = "backup"  # production's read-back failed: the work that failed
                raise
        assert self.manifest is not None
        if problems and isinstance(problems[0], BackupInvalid):
            raise BackupInvalid(f"{problems[0]}; staging was not changed")
        if problems:
            raise RolledBack(
                f"streaming the backup into pg_restore failed: {redact(str(problems[0]))}; "
                "staging was not changed"
            )
        if code != 0:  # before the digests: pg_restore that stopped early was not fed it all
            # pg_restore's broken pipe when psql was killed: psql's end is the reason, once reaped
            with contextlib.suppress(subprocess.TimeoutExpired):
                session.proc.wait(timeout=2.0)
            message = stopped_reason("pg_restore", code, redact_output(errors))
            if session.proc.poll() is not None:
                message = f"psql stopped: {session.reason()}"  # the server's own reason, or the kill
            raise RolledBack(f"pg_restore failed (exit {code}): {message}; staging was not changed")
        if relay is not None and not relay.result():
            raise RolledBack(
                "pg_restore's script did not open and close its transaction where expected, so "
                "it could not run inside the restore's own; staging was not changed"
            )
        if digest.hexdigest() != self.manifest.archive_sha256:
            raise BackupInvalid(
                f"{self.manifest.dump_key} changed while it was restored; staging was not changed"
            )
        session.ask("SELECT 1;")  # every statement of the restore has run

    def _relay(self, restorer: subprocess.Popen[bytes], session: PsqlSession) -> Background[bool]:
        """pg_restore's script into the session without its own BEGIN and COMMIT, on a thread;
        its result says whether both were found. When psql stops, pg_restore's output is
        closed so that it stops too (its exit code is then reported with psql's reason)."""
        assert restorer.stdout is not None
        output = restorer.stdout

        def relay() -> bool:
            script = Unwrapped(iter(lambda: output.read(CHUNK), b""))
            try:
                for chunk in script:
                    session.send(chunk)
            finally:
                output.close()
            return script.complete

        return Background(relay, "dbsync-restore-relay")

    # -- 6. verify ---------------------------------------------------------------------------

    def _verify(self) -> None:
        assert self.session is not None
        self.expected = self._expected()
        session = self.session
        session.ask(";\n".join(fingerprint.COMPARABLE_SETTINGS) + ";")

        def rows(q: sql.Composable) -> list[list[str]]:
            return [line.split("|") for line in session.ask(_render(q) + ";") if line]

        tables_q, sequences_q = fingerprint.listing_queries()
        tables, sequences = fingerprint.parse_listing(rows(tables_q), rows(sequences_q))
        digest = self.expected.digest  # as production's was taken, by this dbsync or an older one
        results = [(kind, rows(q)) for kind, q in fingerprint.fingerprint_queries(tables, sequences, digest)]
        actual = fingerprint.collect(results, digest)
        diff = fingerprint.differences(self.expected, actual)
        self.report.restore = {
            "schema_objects": len(self.expected.schema),
            "tables": [
                {
                    "table": name,
                    "rows": expected[0],
                    "rows_restored": (actual.tables.get(name) or [None])[0],
                    "digest_equal": actual.tables.get(name) == expected,
                }
                for name, expected in sorted(self.expected.tables.items())
            ],
            "sequences": len(self.expected.sequences),
            "large_objects": self.expected.large_objects[0],
            "differences": diff,
        }
        self.report.proofs.append(
            Proof(
                "schema",
                "staging",
                not diff["schema"],
                f"{len(self.expected.schema)} objects; "
                + ("equal" if not diff["schema"] else "; ".join(diff["schema"][:5])),
            )
        )
        for entry in self.report.restore["tables"]:
            self.report.proofs.append(
                Proof(
                    "table",
                    entry["table"],
                    entry["digest_equal"],
                    f"{entry['rows']} rows expected, {entry['rows_restored']} restored",
                )
            )
        self.report.proofs.append(
            Proof("sequences", "staging", not diff["sequences"], "; ".join(diff["sequences"][:5]) or "equal")
        )
        self.report.proofs.append(
            Proof(
                "large_objects",
                "staging",
                not diff["large_objects"],
                "; ".join(diff["large_objects"]) or "equal",
            )
        )
        failed = [p for p in self.report.proofs if not p.ok]
        if failed:
            first = failed[0]
            raise ProofFailed(
                f"{len(failed)} proof(s) failed, first: {first.name} {first.subject}: {first.detail}; "
                "staging was rolled back"
            )
        faults.checkpoint("verify.end")

    # -- 7. commit ---------------------------------------------------------------------------

    def _commit(self) -> None:
        assert self.session is not None
        self._await_target_backup()
        assert self.tgt_id is not None
        tgt_id, target = self.tgt_id, self.target_ep
        try:
            self.session.commit(settle=lambda pending: outcome.resolve(target, tgt_id, pending))
        finally:
            if self.session.settled:
                self.report.warnings.append(self.session.settled)
            if self.session.committed:  # a signal from here on finds it committed
                self.report.finish("committed")
        self.session = None

    def _retain(self) -> None:
        """Keep the newest N backups of each series written; staging is committed already, so
        any failure here is a warning, and a signal leaves the status committed."""
        with pruning_after_commit(self.report):
            faults.checkpoint("retain")
            for series, owner in self._series:
                with pruning_after_commit(self.report, f"old backups of {series}"):
                    retain = self.settings.retain
                    prune(self.settings.store, series, retain, protect=[self.report.run_id], owner=owner)


_END = object()


class _Tee:
    """Production's dump on its way to the store, passed on to pg_restore at the same time
    through a bounded queue (at most ``depth`` chunks of 1 MiB are held: memory stays flat).
    The store receives a chunk only after the queue took it, so whatever the store holds,
    pg_restore was given too, and the replace step compares the two sha256 digests."""

    def __init__(self, depth: int = 16) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._streaming = threading.Event()
        self._aborted = threading.Event()
        self._detached = threading.Event()
        # pg_restore was handed the last byte, or will read no more (the dump failed, the
        # restore stopped): what the production fingerprint waits for.
        self.drained = threading.Event()

    def tap(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        """Runs on the dump's thread, around the stream the store reads."""
        for i, chunk in enumerate(stream):
            if i == 1:
                self._streaming.set()  # the dump is past its first chunk (and the fault point)
            self._put(chunk)
            yield chunk
        self._streaming.set()
        self._put(_END)

    def _put(self, item: object) -> None:
        while not self._detached.is_set():
            if self._aborted.is_set():
                raise RolledBack("the restore stopped; the production backup was abandoned")
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def fail(self, _exc: BaseException) -> None:
        """The dump failed: wake both the backup step and pg_restore's feeder."""
        self._streaming.set()
        self.drained.set()
        with contextlib.suppress(RolledBack):
            self._put(_END)

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def abort(self) -> None:
        """Stop the dump: its upload is aborted (an interrupted run)."""
        self._aborted.set()
        self.drained.set()

    def detach(self) -> None:
        """pg_restore reads no more (the restore failed): the dump goes on into the store alone,
        so that the week's production backup is still complete."""
        self._detached.set()
        self.drained.set()

    def wait_streaming(self, dumping: Background[Manifest]) -> None:
        self._streaming.wait()
        if dumping.error is not None:
            raise dumping.error

    def chunks(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not _END:
            assert isinstance(item, bytes)
            yield item
        self.drained.set()


def _dumped_tables(conn: Connection) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        return fingerprint.dumped_tables(cur)


def _render(composed: sql.Composable) -> str:
    """Composed SQL as text for psql (identifiers and literals quoted without a connection)."""
    return composed.as_string()


def run_restore(
    source: Endpoint | None,
    target: Endpoint,
    settings: RestoreSettings,
    *,
    progress: Progress | None = None,
    report: Report | None = None,
) -> Report:
    return RestoreRun(source, target, settings, progress=progress, report=report).run()


__all__ = ["RestoreRun", "RestoreSettings", "run_restore"]
