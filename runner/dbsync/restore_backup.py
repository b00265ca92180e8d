"""Restoring a stored backup into a database, all or nothing.

The seed's rollback was ``pg_restore --clean --if-exists`` straight into UAT: a failure half-way
left UAT half-restored. Here the dump is streamed from the store through ``pg_restore`` (which
turns it into SQL) into ``psql --single-transaction``, and a final statement compares every
table's row count with the manifest before psql's COMMIT. If the stream, pg_restore, the
re-hash of the bytes or the check fails, psql is killed before its input ends: it never sends
COMMIT, and the server rolls everything back.

Objects the target has and the backup does not are left in place (``--clean`` drops only what
the dump creates).
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
from collections.abc import Iterable, Iterator
from typing import IO

from psycopg import sql

from .backup import Backup, verify_backup
from .connect import Connection, Endpoint, connect, timeouts_off
from .errors import BackupInvalid, RolledBack
from .identity import identify
from .pgtools import find_tool, server_major, split_secret
from .psql_session import stopped_reason
from .redact import redact, redact_output
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


def _collect(stream: IO[bytes], into: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(stream.read()), daemon=True)
    thread.start()
    return thread


def restore_backup(
    store: BackupStore,
    backup: Backup,
    target: Endpoint,
    *,
    keep_owners: bool = False,
    lock_timeout_seconds: float = 30,
) -> dict[str, object]:
    """Restore ``backup`` into ``target`` in one transaction; returns a summary for the report."""
    manifest = verify_backup(store, backup)
    conn = connect(target)
    try:
        ident = identify(conn)
        check = _check_statement(conn, manifest.tables)
        lock = _lock_statement(conn, manifest.tables, lock_timeout_seconds)
        skip = _inherited_constraint_drops(conn)
    finally:
        conn.close()
    major = server_major(ident.server_version_num)
    pg_restore = find_tool("pg_restore", major)
    psql = find_tool("psql", major)
    dsn, env = split_secret(target.conninfo)
    options = ["--clean", "--if-exists"]
    if not keep_owners:
        options += ["--no-owner", "--no-privileges"]
    restorer = subprocess.Popen(
        [pg_restore.path, *options, "--file=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    loader = subprocess.Popen(
        [
            psql.path,
            "-X",
            "-q",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
            f"--dbname={dsn}",
            "--file=-",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert restorer.stdin and restorer.stdout and restorer.stderr and loader.stdin and loader.stderr
    # psql has opened the transaction: no timeout meant for applications may end it while the
    # backup is fetched and pg_restore reads its table of contents (pg_restore's script switches
    # them off too, but only once it starts).
    timeouts = "".join(f"{stmt};\n" for stmt in timeouts_off(ident.server_version_num, local=True))
    with contextlib.suppress(BrokenPipeError):  # psql stopped at once: its exit code says why
        loader.stdin.write(timeouts.encode() + lock)
    restore_errors: list[bytes] = []
    load_errors: list[bytes] = []
    threads = [_collect(restorer.stderr, restore_errors), _collect(loader.stderr, load_errors)]
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
        target=feed, args=(store.read_stream(manifest.dump_key), restorer.stdin), daemon=True
    )
    feeder.start()
    committed = False
    try:
        try:
            script = iter(lambda: restorer.stdout.read(CHUNK), b"")  # type: ignore[union-attr]
            for chunk in _without_lines(script, skip):
                loader.stdin.write(chunk)
        except BrokenPipeError:
            # psql stopped on an error: its exit code and message say why. pg_restore, blocked
            # writing to us, would never read the rest of the backup: stop it, or the feeder
            # waits for it for ever.
            restorer.kill()
            feeder.join()
            restorer.wait()
            raise
        feeder.join()
        restore_code = restorer.wait()
        if feed_problem:
            raise RolledBack(
                f"reading the backup failed: {redact(str(feed_problem[0]))}; the target was not changed"
            )
        if restore_code != 0:  # before the digest: a pg_restore that stopped was not fed it all
            threads[0].join()
            message = stopped_reason("pg_restore", restore_code, redact_output(restore_errors))
            raise RolledBack(
                f"pg_restore failed (exit {restore_code}): {message}; the target was not changed"
            )
        if digest.hexdigest() != manifest.sha256:
            raise BackupInvalid(
                f"{backup.folder} changed while it was being restored; the target was not changed"
            )
        if loader.poll() is None:
            loader.stdin.write(check)
            loader.stdin.close()
        load_code = loader.wait()
        threads[1].join()
        if load_code != 0:
            message = stopped_reason("psql", load_code, redact_output(load_errors))
            raise RolledBack(f"the restore failed and was rolled back: {message}")
        committed = True
    except BrokenPipeError:
        load_code = loader.wait()
        threads[1].join()
        message = stopped_reason("psql", load_code, redact_output(load_errors))
        raise RolledBack(f"the restore failed and was rolled back: {message}") from None
    finally:
        if not committed:
            for proc in (loader, restorer):  # psql dies before COMMIT: the server rolls back
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return {
        "backup": backup.folder,
        "run_id": manifest.run_id,
        "size": manifest.size,
        "sha256": manifest.sha256,
        "tables_checked": len(manifest.tables),
        "pg_restore": pg_restore.path,
    }
