"""The ``dbsync`` command line: parse, run, print one clear sentence on failure, exit with a code.

Connection strings may carry passwords, and a process's arguments are visible to every user of
the machine, so each URL option can also come from an environment variable (and libpq's own
PGPASSWORD / PGPASSFILE work as usual).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click

from . import __version__
from .config import load_config
from .connect import endpoint
from .errors import EXIT_CODES, DbsyncError
from .progress import Progress, print_summary
from .redact import redact
from .report import Report
from .sync import run_sync

EPILOG = "Exit codes:\n\n" + "\n\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    # CI cancellation sends SIGTERM: unwind like Ctrl-C so the transaction is rolled back.
    raise KeyboardInterrupt


def _finish(report: Report, report_path: Path | None, quiet: bool) -> None:
    if report_path is not None:
        try:
            report.write(report_path)
        except OSError as exc:
            click.echo(f"dbsync: warning: cannot write the report to {report_path}: {exc.strerror}", err=True)
    if not quiet:
        print_summary(report)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbsync")
def main() -> None:
    """Refresh non-production PostgreSQL databases from production, atomically and provably."""


@main.command(epilog=EPILOG)
@click.option(
    "--source",
    envvar="DBSYNC_SOURCE_URL",
    required=True,
    metavar="URL",
    help="Production: a libpq URL or keyword string (env: DBSYNC_SOURCE_URL).",
)
@click.option(
    "--target",
    envvar="DBSYNC_TARGET_URL",
    required=True,
    metavar="URL",
    help="The database to refresh (env: DBSYNC_TARGET_URL).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="TOML or YAML config; without it, the seed's Django conventions.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the JSON report here (also on failure).",
)
@click.option("--dry-run", is_flag=True, help="Plan and count everything, change nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines and no summary table.")
def sync(
    source: str, target: str, config_path: Path | None, report_path: Path | None, dry_run: bool, quiet: bool
) -> None:
    """Copy production's business data into the target, keeping its test tenants and users."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    report = Report(command="sync", dry_run=dry_run)
    progress = Progress(quiet=quiet)
    try:
        config = load_config(config_path)
        src = endpoint("source", source)
        tgt = endpoint("target", target)
        run_sync(src, tgt, config, dry_run=dry_run, progress=progress, report=report)
    except DbsyncError as exc:
        if report.status == "running":
            report.fail(None, exc.kind, str(exc))
            report.finish("refused" if exc.exit_code == 3 else "failed")
        _finish(report, report_path, quiet)
        click.echo(f"dbsync: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _finish(report, report_path, quiet)
        click.echo("dbsync: interrupted; the target transaction was rolled back", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one sentence, keep the traceback out of CI logs
        if os.environ.get("DBSYNC_DEBUG"):
            raise
        click.echo(f"dbsync: internal error ({type(exc).__name__}): {redact(str(exc))}", err=True)
        sys.exit(1)
    _finish(report, report_path, quiet)


if __name__ == "__main__":
    main()
