"""Parallel readers of production in one exported snapshot (``--jobs``).

dbsync reads production consistently: every query sees the run's exported snapshot. More than
one connection can import that snapshot (``SET TRANSACTION SNAPSHOT``), so independent reads,
the digest of each table while the COPY streams or the tables of a fingerprint, run ``jobs`` at
a time, each on a connection of its own, and all still read the same rows.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

import psycopg
from psycopg import IsolationLevel, sql

from .connect import Connection, Endpoint, connect

T = TypeVar("T")


def default_jobs() -> int:
    """The machine's cores (at least 1)."""
    return max(1, os.cpu_count() or 1)


def readers_beside(jobs: int | None) -> int:
    """How many readers go beside the one stream that copies or dumps production when
    ``jobs`` connections (default: the cores) may read it at once: the rest, at least one."""
    return max(1, (jobs or default_jobs()) - 1)


class SnapshotReaders:
    """``jobs`` read-only REPEATABLE READ connections to ``endpoint`` in ``snapshot``; work
    submitted runs on whichever is free. Use as a context manager: the connections close at
    the end, the work still queued is cancelled. ``parallel_workers=False`` asks the server
    for no parallel workers on them: for background reads that must not compete with the
    run's critical path, nor load production more than ``jobs`` connections do."""

    def __init__(
        self, endpoint: Endpoint, snapshot: str, jobs: int, *, parallel_workers: bool = True
    ) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._all: list[Connection] = []
        try:
            for _ in range(jobs):
                conn = connect(endpoint)
                self._all.append(conn)
                conn.autocommit = False
                conn.isolation_level = IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                    if not parallel_workers:
                        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                self._free.put(conn)
        except BaseException:
            self.close()
            raise
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dbsync-reader")

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        def run() -> T:
            conn = self._free.get()
            try:
                return work(conn)
            finally:
                self._free.put(conn)

        return self._pool.submit(run)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)  # queued work never starts
            for conn in self._all:  # a query still running ends now, not when it would finish
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=5.0)
            pool.shutdown(wait=True)
        for conn in self._all:
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                conn.close()

    def __enter__(self) -> SnapshotReaders:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
