"""The run report: data first (written as JSON), printed as a summary table second.

One entry per step (name, seconds, status), one per table (rows copied, deleted, preserved,
re-keyed, ...), the remaps, the re-keyed ids, the sequences, every proof with its verdict, and
on failure the step and the error. It never holds a secret: endpoints are described without
passwords and every message passes through :func:`dbsync.redact.redact` first.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .redact import redact


@dataclass
class StepEntry:
    name: str
    status: str = "running"  # running | ok | failed | skipped
    seconds: float = 0.0


@dataclass
class TableEntry:
    table: str
    role: str
    rows_source: int = 0
    rows_excluded_test: int = 0
    rows_dropped_conflicts: int = 0
    rows_copied: int = 0
    rows_left_in_place: int = 0  # production's rows that were there already (skip_unchanged)
    rows_target_before: int = 0
    rows_deleted: int = 0
    rows_preserved: int = 0
    rows_kept_referenced: int = 0
    rows_rekeyed: int = 0
    rows_after: int = 0
    seconds: float = 0.0


@dataclass
class Proof:
    name: str
    subject: str
    ok: bool
    detail: str = ""


def new_run_id() -> str:
    """A run's id: names its backups' folders and ties them to its report."""
    return uuid.uuid4().hex[:12]


# The warning a run that committed adds when a signal stops the pruning of old backups.
PRUNE_INTERRUPTED = "interrupted after COMMIT: old backups were not pruned"


# How the warning starts that a run adds when its COMMIT was interrupted and the server's commit
# log then said it had committed (see outcome): the CLI says so instead of "after COMMIT".
COMMIT_SETTLED = "COMMIT was interrupted"


def commit_settled(how: str, xid: str) -> str:
    """That warning: what interrupted COMMIT and the transaction the server committed."""
    return f"{COMMIT_SETTLED} ({how}), and the server had committed it (transaction {xid})"


@contextlib.contextmanager
def pruning_after_commit(report: Report, what: str = "old backups") -> Iterator[None]:
    """Around the pruning a run does after its COMMIT: the run is committed whatever happens
    here, so a failure (a bug too) becomes a warning, and a signal is noted once and goes on
    (the CLI then says the run is committed, not rolled back)."""
    try:
        yield
    except KeyboardInterrupt:
        if PRUNE_INTERRUPTED not in report.warnings:
            report.warnings.append(PRUNE_INTERRUPTED)
        raise
    except Exception as exc:
        report.warnings.append(f"{what} were not pruned: {redact(str(exc))}")


@dataclass
class Report:
    command: str
    dry_run: bool = False
    run_id: str = field(default_factory=lambda: new_run_id())
    status: str = "running"
    dbsync_version: str = __version__
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    seconds: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    snapshot: str | None = None
    load: dict[str, str] = field(default_factory=dict)  # sync: table -> "direct" or "staged"
    steps: list[StepEntry] = field(default_factory=list)
    tables: list[TableEntry] = field(default_factory=list)
    excluded_tables: list[str] = field(default_factory=list)
    untouched_tables: list[str] = field(default_factory=list)
    remaps: list[dict[str, Any]] = field(default_factory=list)
    remap_conflicts: list[dict[str, Any]] = field(default_factory=list)
    rekeys: list[dict[str, Any]] = field(default_factory=list)
    repointed: list[dict[str, Any]] = field(default_factory=list)
    generic_relations: list[dict[str, Any]] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)
    backup: dict[str, Any] | None = None
    restore: dict[str, Any] | None = None  # dbsync restore: per-table verification, differences
    proofs: list[Proof] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def table(self, name: str) -> TableEntry:
        return next(t for t in self.tables if t.table == name)

    def fail(self, step: str | None, kind: str, message: str) -> None:
        self.error = {"step": step, "kind": kind, "message": redact(message)}

    def finish(self, status: str) -> None:
        self.status = status
        self.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.seconds = round(time.monotonic() - self._t0, 3)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("_t0", None)
        return redact(json.dumps(data, indent=2, default=str))

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
