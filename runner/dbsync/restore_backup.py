"""Restoring a stored backup into a database, all or nothing, with the target backed up first.

The seed's rollback was ``pg_restore --clean --if-exists`` straight into UAT: a failure half-way
left UAT half-restored, and the UAT it overwrote was gone. Here one psql session holds one
transaction on the target: writers are locked out and the target's current contents are dumped
into the store from the snapshot exported after the locks (so choosing the wrong backup loses
nothing), then the chosen dump is streamed from the store through ``pg_restore`` (which turns
it into SQL) into the same session, and a final statement compares every table's row count with
the manifest. COMMIT is sent only once that check passed and the target's backup has been read
back and re-hashed. If anything fails, psql is killed before it reads COMMIT, and the server
rolls everything back.

Objects the target has and the backup does not are left in place (``--clean`` drops only what
the dump creates).
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import psycopg
from psycopg import sql

from . import faults, outcome
from .backup import (
    DEFAULT_COMPRESSION,
    PRE_BACKUPS_RESTORE,
    Backup,
    BackupFailed,
    Manifest,
    Owner,
    Sealing,
    read_archive,
    verify_backup,
)
from .compression import Compression
from .connect import Connection, Endpoint, connect, timeouts_off
from .errors import BackupInvalid, RolledBack
from .faults import InjectedFault
from .identity import Identity, identify
from .pgtools import Tool, find_tool, server_major
from .psql_session import PsqlSession, stopped_reason
from .redact import redact, redact_output
from .restore_script import SINGLE_TRANSACTION, Unwrapped
from .session_backup import back_up_in_session
from .sqlfiles import query
from .store import CHUNK, BackupStore


def _check_statement(conn: object, tables: dict[str, int]) -> bytes:
    """One DO block that raises unless every table holds the manifest's row count."""
    lines = ["DO $dbsync_check$", "DECLARE n bigint;", "BEGIN"]
    for qualified, expected in sorted(tables.items()):
        schema, _, name = qualified.partition(".")
        ident = sql.Identifier(schema, name).as_string(conn)  # type: ignore[arg-type]
        shown = qualified.replace("'", "''").replace("%", "%%")
        lines.append(
            f"  SELECT count(*) INTO n FROM ONLY {ident};\n"
            f"  IF n <> {int(expected)} THEN RAISE EXCEPTION "
            f"'restore check: {shown} has % rows, the backup manifest says {int(expected)}', n; END IF;"
        )
    lines += ["END", "$dbsync_check$;", ""]
    return "\n".join(lines).encode()


def _lock_statement(conn: Connection, tables: dict[str, int], timeout_seconds: float) -> bytes:
    """LOCK, within ``timeout_seconds``, the target's tables the backup holds, before the
    restore's script drops them: pg_restore's script sets ``lock_timeout = 0``, and a DROP
    waiting behind an application's open transaction would wait for ever while every later
    query on that table queued behind it. A lock not granted in time stops psql: nothing
    changed, and the error names the lock timeout."""
    quoted = [sql.Identifier(*q.split(".", 1)).as_string(conn) for q in sorted(tables)]
    with conn.cursor() as cur:
        cur.execute("SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NOT NULL", (quoted,))
        present = [str(row[0]) for row in cur.fetchall()]
    statement = f"SET LOCAL lock_timeout = '{int(timeout_seconds * 1000)}ms';\n"
    if present:
        statement += f"LOCK TABLE {', '.join(present)} IN ACCESS EXCLUSIVE MODE;\n"
    return statement.encode()


def _inherited_constraint_drops(conn: Connection) -> set[bytes]:
    with conn.cursor() as cur:
        cur.execute("SET quote_all_identifiers = off")  # format('%I') must quote as pg_dump does
        cur.execute(query("select_inherited_constraint_drops"))
        return {str(row[0]).encode() for row in cur.fetchall()}


def _without_lines(chunks: Iterable[bytes], skip: set[bytes]) -> Iterator[bytes]:
    """pg_restore's script without the lines in ``skip``, looked for in its leading part only:
    the --clean DROPs come first, without the "-- Name: ...; Type: ..." header every created
    object has (they are interleaved with CREATE OR REPLACE VIEW placeholders, so a CREATE
    does not end them). From the first header on (function bodies, COPY data) everything
    passes through untouched, chunk by chunk."""
    stream = iter(chunks)
    if not skip:
        yield from stream
        return
    pending = b""
    for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept: list[bytes] = []
        for index, line in enumerate(lines):
            if line.startswith((b"-- Name: ", b"-- Data for Name: ")):
                rest = b"\n".join([*lines[index:], pending])
                yield b"".join(kept) + rest
                yield from stream
                return
            if line not in skip:
                kept.append(line + b"\n")
        yield b"".join(kept)
    yield pending


@dataclass(frozen=True)
class TargetBackup:
    """Where and how ``backups restore`` backs its target up before replacing it."""

    run_id: str
    compression: Compression = DEFAULT_COMPRESSION


def restore_backup(
    store: BackupStore,
    backup: Backup,
    target: Endpoint,
    *,
    keep_owners: bool = False,
    lock_timeout_seconds: float = 30,
    target_backup: TargetBackup | None = None,
    warn: Callable[[str], None] = lambda _text: None,
) -> dict[str, object]:
    """Restore ``backup`` into ``target`` in one transaction; returns a summary for the report.

    With ``target_backup``, the target's current contents are backed up first, inside that
    same transaction: writers are locked out, pg_dump reads the snapshot exported after the
    locks, and COMMIT waits until that backup has been read back and re-hashed. Choosing the
    wrong backup to restore then loses nothing: the previous contents are in the store (series
    ``<dbname>-<host>-pre-backups-restore``). A restore that fails still completes that backup."""
    manifest = verify_backup(store, backup)
    conn = connect(target)
    session: PsqlSession | None = None
    sealing: Sealing | None = None
    summary: dict[str, object] = {}
    try:
        ident = identify(conn)
        check = _check_statement(conn, manifest.tables)
        lock = _lock_statement(conn, manifest.tables, lock_timeout_seconds)
        skip = _inherited_constraint_drops(conn)
        major = server_major(ident.server_version_num)
        pg_restore = find_tool("pg_restore", major)
        psql = find_tool("psql", major)
        pg_dump = find_tool("pg_dump", major) if target_backup is not None else None
        session = PsqlSession(psql, target.conninfo)
        # No timeout meant for applications may end the transaction while the backups are
        # taken and read (pg_restore's script switches them off too, but only once it starts).
        timeouts = "".join(f"{stmt};\n" for stmt in timeouts_off(ident.server_version_num, local=True))
        session.begin(f"{timeouts}SET LOCAL lock_timeout = '{int(lock_timeout_seconds * 1000)}ms';\n")
        if target_backup is not None:
            assert pg_dump is not None
            sealing, owner = _back_up_target(
                store, session, conn, target, ident, pg_dump, target_backup, lock_timeout_seconds, warn
            )
            summary["target_backup"] = sealing.entry
            summary["target_owner"] = owner  # whose backups the series' retention may prune
        conn.close()
        faults.checkpoint("backups-restore.replace")
        session.send(lock)
        _load(store, manifest, backup, session, pg_restore, keep_owners, skip)
        session.ask(check.decode())  # every statement of the restore has run, the check too
        if sealing is not None:
            waiting, sealing = sealing, None  # its failure is the run's own, not a warning
            waiting.wait("the target")
        faults.checkpoint("backups-restore.commit")
        # a signal while COMMIT is in flight: settled by the server's word, else OutcomeUnknown
        session.commit(settle=lambda pending: outcome.resolve(target, ident, pending))
    except KeyboardInterrupt:
        if session is None or not session.committed:
            _abandon(session, sealing, interrupted=True, warn=warn)
            raise
        # psql confirmed COMMIT, or the server did after the signal: the target is restored
        session.abandon()
        summary["interrupted_after_commit"] = True
    except BaseException as exc:
        _abandon(session, sealing, interrupted=False, warn=warn)
        if isinstance(exc, InjectedFault | psycopg.Error):
            text = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
            raise RolledBack(f"{redact(text or str(exc))}; the target was not changed") from None
        raise
    finally:
        conn.close()
    if session.settled:  # COMMIT interrupted, then confirmed by the server (see outcome)
        warn(session.settled)
    summary.update(
        backup=backup.folder,
        run_id=manifest.run_id,
        size=manifest.size,
        sha256=manifest.sha256,
        tables_checked=len(manifest.tables),
        pg_restore=pg_restore.path,
    )
    return summary


def _abandon(
    session: PsqlSession | None, sealing: Sealing | None, *, interrupted: bool, warn: Callable[[str], None]
) -> None:
    """A failed or interrupted restore: psql dies before COMMIT, so the server rolls back; a
    failure (not a signal) still completes the target's backup."""
    if session is not None:
        session.abandon()
    if sealing is not None and not interrupted:
        error = sealing.settle()  # a failed restore still leaves the target's backup
        if error is not None:
            warn(f"the target's backup did not complete: {redact(str(error))}")


def _back_up_target(
    store: BackupStore,
    session: PsqlSession,
    conn: Connection,
    target: Endpoint,
    ident: Identity,
    pg_dump: Tool,
    settings: TargetBackup,
    lock_timeout_seconds: float,
    warn: Callable[[str], None],
) -> tuple[Sealing, Owner]:
    """The target's backup inside the restore's transaction (see session_backup), being
    sealed on a thread."""

    def in_use() -> RolledBack:
        return RolledBack(
            f"the target's tables are in use: they could not be locked within "
            f"{lock_timeout_seconds:g}s (--lock-timeout); the target was not changed"
        )

    try:
        series, owner, unsealed = back_up_in_session(
            session,
            conn,
            store,
            target=target,
            ident=ident,
            pg_dump=pg_dump,
            kind=PRE_BACKUPS_RESTORE,
            run_id=settings.run_id,
            compression=settings.compression,
            lock_timeout_seconds=lock_timeout_seconds,
            in_use=in_use,
            unchanged="the target was not changed",
            warn=warn,
        )
    except BackupFailed as exc:
        raise BackupFailed(f"{exc} (--no-target-backup restores without this backup)") from None
    return Sealing(unsealed, {"series": series, "folder": unsealed.folder}), owner


def _load(
    store: BackupStore,
    manifest: Manifest,
    backup: Backup,
    session: PsqlSession,
    pg_restore: Tool,
    keep_owners: bool,
    skip: set[bytes],
) -> None:
    """Stream the backup through pg_restore into the session, re-hashing the bytes on the way;
    raises (the caller abandons the session) unless every byte arrived and matched."""
    options = ["--clean", "--if-exists", SINGLE_TRANSACTION]  # see restore_script
    if not keep_owners:
        options += ["--no-owner", "--no-privileges"]
    archive = read_archive(store, manifest)  # before pg_restore starts: it may raise
    restorer = subprocess.Popen(
        [pg_restore.path, *options, "--file=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert restorer.stdin and restorer.stdout and restorer.stderr
    restore_errors: list[bytes] = []
    collector = _collect(restorer.stderr, restore_errors)
    feed_problem: list[BaseException] = []
    digest = hashlib.sha256()

    def feed(chunks: Iterator[bytes], sink: IO[bytes]) -> None:
        try:
            for chunk in chunks:
                digest.update(chunk)
                sink.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped reading: its exit code (or psql's) says why
        except BaseException as exc:  # reported by the main thread
            feed_problem.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sink.close()

    feeder = threading.Thread(
        target=feed, args=(archive, restorer.stdin), daemon=True
    )
    feeder.start()
    try:
        faults.checkpoint("backups-restore.load")
        script = Unwrapped(iter(lambda: restorer.stdout.read(CHUNK), b""))  # type: ignore[union-attr]
        for chunk in _without_lines(script, skip):
            session.send(chunk)
    except BaseException:
        # psql stopped on an error (its message says why), or we did. psql goes first: the
        # server rolls back and releases the target's locks now, not when the feeder's read
        # of the store returns (a stalled Spaces read holds it until its timeout). Then
        # pg_restore, which would never read the rest of the backup; the feeder, a daemon
        # thread, stops at its next write, and is not waited for beyond a moment.
        session.abandon()
        restorer.kill()
        restorer.wait()
        feeder.join(timeout=1.0)
        collector.join(timeout=1.0)  # pg_restore's stderr is at its end now
        with contextlib.suppress(OSError):
            restorer.stdout.close()
            if not collector.is_alive():  # closing a pipe another thread reads would wait for it
                restorer.stderr.close()
        raise
    feeder.join()
    restore_code = restorer.wait()
    if feed_problem and isinstance(feed_problem[0], BackupInvalid):
        raise BackupInvalid(f"{feed_problem[0]}; the target was not changed")
    if feed_problem:
        raise RolledBack(
            f"reading the backup failed: {redact(str(feed_problem[0]))}; the target was not changed"
        )
    if restore_code != 0:  # before the digest: a pg_restore that stopped was not fed it all
        collector.join()
        message = stopped_reason("pg_restore", restore_code, redact_output(restore_errors))
        raise RolledBack(f"pg_restore failed (exit {restore_code}): {message}; the target was not changed")
    if not script.complete:
        raise RolledBack(
            "pg_restore's script did not open and close its transaction where expected, so it "
            "could not run inside the restore's own; the target was not changed"
        )
    if digest.hexdigest() != manifest.archive_sha256:
        raise BackupInvalid(
            f"{backup.folder} changed while it was being restored; the target was not changed"
        )


def _collect(stream: IO[bytes], into: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(stream.read()), daemon=True)
    thread.start()
    return thread
