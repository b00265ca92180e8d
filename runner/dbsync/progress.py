"""Progress shown while a run goes on: one line per step and per table, on stderr.

CI logs are not terminals, so this prints plain timestamped lines (which also stream well over
SSH); the summary table at the end uses rich.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from .redact import redact
from .report import Report


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._t0 = time.monotonic()

    def say(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self._t0
            print(f"[{elapsed:7.1f}s] {redact(message)}", file=self.stream, flush=True)

    @contextmanager
    def step(self, report: Report, name: str) -> Iterator[None]:
        from .report import StepEntry

        entry = StepEntry(name)
        report.steps.append(entry)
        started = time.monotonic()
        self.say(f"{name} ...")
        try:
            yield
        except BaseException:
            entry.status = "failed"
            raise
        else:
            entry.status = "ok"
        finally:
            entry.seconds = round(time.monotonic() - started, 3)
        self.say(f"{name} done in {entry.seconds:.2f}s")


def print_summary(report: Report, stream: TextIO | None = None) -> None:
    """The end-of-run summary: one row per table, then the proofs and the verdict."""
    from rich.console import Console  # only here: a --quiet run never loads rich
    from rich.table import Table as RichTable

    console = Console(file=stream or sys.stdout, width=140, highlight=False)
    if report.restore:
        restored = RichTable(title=f"dbsync restore {report.run_id}: {report.status}")
        for header in ("table", "rows", "restored", "content"):
            restored.add_column(header, justify="left" if header in ("table", "content") else "right")
        for t in report.restore["tables"]:
            restored.add_row(
                t["table"],
                f"{t['rows']:,}",
                f"{t['rows_restored'] or 0:,}",
                "equal" if t["digest_equal"] else "DIFFERS",
            )
        console.print(restored)
        console.print(
            f"schema objects: {report.restore['schema_objects']}, sequences: {report.restore['sequences']}, "
            f"large objects: {report.restore['large_objects']}"
        )
    table = RichTable(title=f"dbsync {report.command} {report.run_id}: {report.status}")

    for header in (
        "table",
        "role",
        "source",
        "test-excl",
        "conflicts",
        "copied",
        "in place",
        "deleted",
        "preserved",
        "kept",
        "rekeyed",
        "after",
        "s",
    ):
        table.add_column(header, justify="left" if header in ("table", "role") else "right")
    for t in report.tables:
        table.add_row(
            t.table,
            t.role,
            f"{t.rows_source:,}",
            f"{t.rows_excluded_test:,}",
            f"{t.rows_dropped_conflicts:,}",
            f"{t.rows_copied:,}",
            f"{t.rows_left_in_place:,}",
            f"{t.rows_deleted:,}",
            f"{t.rows_preserved:,}",
            f"{t.rows_kept_referenced:,}",
            f"{t.rows_rekeyed:,}",
            f"{t.rows_after:,}",
            f"{t.seconds:.2f}",
        )
    if report.tables or not report.restore:
        console.print(table)
    unchanged = [name for name, how in report.load.items() if how == "unchanged"]
    if unchanged:
        console.print(f"left in place, their rows already production's: {', '.join(unchanged)}")
    if report.remaps:
        remaps = RichTable(title="references remapped by natural key")
        for header in ("column", "references", "by key", "to fallback", "to NULL"):
            remaps.add_column(header, justify="left" if header in ("column", "references") else "right")
        for r in report.remaps:
            remaps.add_row(
                r["column"],
                r["references"],
                f"{r['by_natural_key']:,}",
                f"{r['to_fallback']:,}",
                f"{r['to_null']:,}",
            )
        console.print(remaps)
    for c in report.remap_conflicts:
        console.print(
            f"remap conflict: {c['rows']} row(s) of {c['table']} on {c['constraint']} -> {c['policy']}"
        )
    for r in report.rekeys:
        console.print(f"re-keyed: {len(r['ids'])} row(s) of {r['table']} (old -> new ids in the report)")
    for r in report.repointed:
        console.print(f"re-pointed: {len(r['ids'])} referenced row(s) of {r['table']} to production's ids")
    failed = [p for p in report.proofs if not p.ok]
    console.print(
        f"proofs: {len(report.proofs) - len(failed)} passed, {len(failed)} failed; "
        f"remapped columns: {len(report.remaps)}; re-keyed rows: "
        f"{sum(len(r['ids']) for r in report.rekeys)}; sequences set: {len(report.sequences)}"
    )
    for p in failed:
        console.print(f"  FAILED {p.name} {p.subject}: {p.detail}")
    for w in report.warnings:
        console.print(f"  warning: {w}")
    if report.error:
        console.print(f"error at step {report.error['step']}: {report.error['message']}")
    console.print(f"{report.status} in {report.seconds:.1f}s")
