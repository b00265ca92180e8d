"""The ``dbsync`` command line: parse, run, print one clear sentence on failure, exit with a code.

Connection strings may carry passwords, and a process's arguments are visible to every user of
the machine, so each URL option can also come from an environment variable (and libpq's own
PGPASSWORD / PGPASSFILE work as usual).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click

from . import __version__
from .backup import DEFAULT_COMPRESSION, Owner, find_backup, list_backups, prune, verify_backup
from .compression import Compression
from .connect import endpoint
from .errors import EXIT_CODES, ConfigError, DbsyncError
from .progress import Progress, print_summary
from .redact import redact
from .report import COMMIT_SETTLED, PRUNE_INTERRUPTED, Report
from .store import BackupStore, open_store

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
    else:  # quiet drops the progress and the table, not what the run wants a person to know
        for text in report.warnings:
            click.echo(f"dbsync: warning: {text}", err=True)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbsync")
def main() -> None:
    """Refresh non-production PostgreSQL databases from production, atomically and provably."""


def default_store_url() -> str:
    """A folder in the user's data directory (XDG), so backups survive the run's temp files."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "file://" + os.path.join(os.path.abspath(base), "dbsync", "backups")


def store_options(func: Callable[..., None]) -> Callable[..., None]:
    """--backup-store, --s3-endpoint, --s3-region."""
    func = click.option(
        "--s3-region", envvar="DBSYNC_S3_REGION", metavar="REGION", help="S3 region (env: DBSYNC_S3_REGION)."
    )(func)
    func = click.option(
        "--s3-endpoint",
        envvar="DBSYNC_S3_ENDPOINT",
        metavar="URL",
        help="S3 endpoint, e.g. https://fra1.digitaloceanspaces.com (env: DBSYNC_S3_ENDPOINT).",
    )(func)
    return click.option(
        "--backup-store",
        "store_url",
        envvar="DBSYNC_BACKUP_STORE",
        default=default_store_url,
        show_default="a folder in the user's data directory",
        metavar="URL",
        help="file:///path or s3://bucket/prefix (env: DBSYNC_BACKUP_STORE).",
    )(func)


def compress_option(func: Callable[..., None]) -> Callable[..., None]:
    """--compress: how the backups this command takes are compressed (see dbsync.compression)."""
    return click.option(
        "--compress",
        "compression",
        callback=_compression,
        envvar="DBSYNC_COMPRESS",
        default=str(DEFAULT_COMPRESSION),
        show_default=True,
        metavar="zstd[:N]|0-9",
        help="How backups are compressed. zstd[:N] (level 1-9): pg_dump writes its archive "
        "uncompressed and dbsync stores it as dump.pgdump.zst; at level 1 that costs a third of "
        "the CPU of pg_dump's own zlib at level 1, for a smaller file. 0-9: pg_dump's own zlib "
        "level, a dump.pgdump that pg_restore reads directly (env: DBSYNC_COMPRESS).",
    )(func)


def _compression(_ctx: click.Context, _param: click.Parameter, value: str) -> Compression:
    try:
        return Compression.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def retain_option(text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--retain N (default 7: the newest N complete backups are kept), with the command's help."""
    return click.option("--retain", type=click.IntRange(min=1), default=7, show_default=True, help=text)


def lock_timeout_option(text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--lock-timeout SECONDS (default 30), with the command's own help text."""
    return click.option(
        "--lock-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help=text
    )


def report_option(text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--report FILE, with the command's own help text."""
    return click.option(
        "--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE", help=text
    )


def _store(store_url: str, s3_endpoint: str | None, s3_region: str | None) -> BackupStore:
    return open_store(store_url, endpoint=s3_endpoint, region=s3_region)


def _fail(exc: DbsyncError) -> NoReturn:
    click.echo(f"dbsync: {redact(str(exc))}", err=True)
    sys.exit(exc.exit_code)


def _interrupted(report: Report, report_path: Path | None, quiet: bool, undone: str) -> NoReturn:
    """Exit 130 on SIGINT/SIGTERM, saying what the target holds: rolled back, or, when the
    signal came after COMMIT (while old backups were pruned) or during a COMMIT the server then
    said it had completed, committed."""
    _finish(report, report_path, quiet)
    if report.status == "committed":
        during = _settled(report.warnings)
        _committed_but_interrupted(
            "the run is committed",
            unpruned=PRUNE_INTERRUPTED in report.warnings or (during and _backed_up(report)),
            during=during,
        )
    click.echo(f"dbsync: interrupted; {undone}", err=True)
    sys.exit(130)


def _committed_but_interrupted(committed: str, *, unpruned: bool = True, during: bool = False) -> NoReturn:
    """Exit 130 for a signal after COMMIT (while old backups were pruned), or during a COMMIT
    that the server completed (see outcome): never "rolled back"."""
    tail = "; old backups were not pruned" if unpruned else ""
    when = "during COMMIT, which the server completed" if during else "after COMMIT"
    click.echo(f"dbsync: interrupted {when}: {committed}{tail}", err=True)
    sys.exit(130)


def _backed_up(report: Report) -> bool:
    """The run took a backup, so a COMMIT it completed was to be followed by pruning: not with
    ``--no-backup``, nor in a dry run."""
    return report.backup is not None or bool(report.target.get("backup"))


def _settled(warnings: list[str]) -> bool:
    """A signal interrupted COMMIT, which the server then said it had completed."""
    return any(text.startswith(f"{COMMIT_SETTLED} (a signal)") for text in warnings)


def _internal_error(report: Report, report_path: Path | None, quiet: bool, exc: Exception) -> NoReturn:
    """Exit 1 for a bug, in one sentence; the report is still written (a committed run stays
    committed in it). DBSYNC_DEBUG=1 shows the traceback instead."""
    if os.environ.get("DBSYNC_DEBUG"):
        raise exc
    if report.status == "running":
        report.fail(None, "error", f"internal error ({type(exc).__name__}): {exc}")
        report.finish("failed")
    _finish(report, report_path, quiet)
    click.echo(f"dbsync: internal error ({type(exc).__name__}): {redact(str(exc))}", err=True)
    sys.exit(1)


def jobs_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        envvar="DBSYNC_JOBS",
        default=None,
        metavar="N",
        help=help_text + " Default: the machine's cores (env: DBSYNC_JOBS).",
    )


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
@report_option("Write the JSON report here (also on failure).")
@click.option("--dry-run", is_flag=True, help="Plan and count everything, change nothing.")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress lines and no summary table; warnings still go to stderr."
)
@store_options
@click.option("--no-backup", is_flag=True, help="Skip the backup of the target (explicitly unsafe).")
@click.option("--series", metavar="NAME", help="Backup series name (default: <dbname>-<host>-pre-sync).")
@retain_option("Complete backups to keep in the series.")
@compress_option
@jobs_option(
    "Connections reading production at once: the COPY's, and N-1 (at least one) that take the "
    "tables' digests in the same snapshot, ahead of the COPY."
)
def sync(
    source: str,
    target: str,
    config_path: Path | None,
    report_path: Path | None,
    dry_run: bool,
    quiet: bool,
    store_url: str,
    s3_endpoint: str | None,
    s3_region: str | None,
    no_backup: bool,
    series: str | None,
    retain: int,
    compression: Compression,
    jobs: int | None,
) -> None:
    """Copy production's business data into the target, keeping its test tenants and users.

    The target is backed up first (pg_dump, verified) unless --no-backup is given."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    report = Report(command="sync", dry_run=dry_run)
    progress = Progress(quiet=quiet)
    try:
        # Imported here: a restore or a backups command needs none of the sync's modules.
        from .config import load_config
        from .sync import BackupSettings, run_sync

        config = load_config(config_path)
        src = endpoint("source", source)
        tgt = endpoint("target", target)
        backup = None
        if not no_backup and not dry_run:
            backup = BackupSettings(_store(store_url, s3_endpoint, s3_region), series, retain, compression)
        run_sync(
            src, tgt, config, dry_run=dry_run, progress=progress, report=report, backup=backup, jobs=jobs
        )
    except DbsyncError as exc:
        if report.status == "running":
            report.fail(None, exc.kind, str(exc))
            report.finish("refused" if exc.exit_code == 3 else "failed")
        _finish(report, report_path, quiet)
        click.echo(f"dbsync: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted(report, report_path, quiet, "the target transaction was rolled back")
    except Exception as exc:  # a bug: say so in one sentence, keep the traceback out of CI logs
        _internal_error(report, report_path, quiet, exc)
    _finish(report, report_path, quiet)


@main.command(epilog=EPILOG)
@click.option(
    "--source",
    envvar="DBSYNC_SOURCE_URL",
    metavar="URL",
    help="Production (env: DBSYNC_SOURCE_URL); not needed with --from-backup.",
)
@click.option(
    "--target",
    envvar="DBSYNC_TARGET_URL",
    required=True,
    metavar="URL",
    help="Staging, replaced as a whole (env: DBSYNC_TARGET_URL).",
)
@click.option(
    "--from-backup",
    "from_backup",
    metavar="REF",
    help="Restore a stored production backup (run id, folder or 'latest') without production.",
)
@report_option("Write the JSON report here (also on failure).")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress lines and no summary table; warnings still go to stderr."
)
@store_options
@click.option(
    "--series", metavar="NAME", help="Production backup series (default: <dbname>-<host>-production)."
)
@retain_option("Complete backups to keep in each series.")
@click.option(
    "--no-target-backup", is_flag=True, help="Do not back staging up before replacing it (explicitly unsafe)."
)
@lock_timeout_option("Seconds to wait for staging's locks.")
@compress_option
@jobs_option(
    "Connections reading production at once: pg_dump's, and N-1 (at least one) that take its "
    "fingerprint in the same snapshot, alongside the dump."
)
def restore(
    source: str | None,
    target: str,
    from_backup: str | None,
    report_path: Path | None,
    quiet: bool,
    store_url: str,
    s3_endpoint: str | None,
    s3_region: str | None,
    series: str | None,
    retain: int,
    no_target_backup: bool,
    lock_timeout: float,
    compression: Compression,
    jobs: int | None,
) -> None:
    """Replace staging with a full copy of production, in one transaction, verified before COMMIT."""
    from .restore import RestoreSettings, run_restore

    signal.signal(signal.SIGTERM, _on_sigterm)
    report = Report(command="restore")
    progress = Progress(quiet=quiet)
    try:
        if (source is None) == (from_backup is None):
            raise ConfigError(
                "give either --source (production) or --from-backup (a stored backup), not both"
            )
        settings = RestoreSettings(
            store=_store(store_url, s3_endpoint, s3_region),
            series=series,
            retain=retain,
            backup_target=not no_target_backup,
            from_backup=from_backup,
            lock_timeout_seconds=lock_timeout,
            jobs=jobs,
            compression=compression,
        )
        run_restore(
            endpoint("source", source) if source else None,
            endpoint("target", target),
            settings,
            progress=progress,
            report=report,
        )
    except DbsyncError as exc:
        if report.status == "running":
            report.fail(None, exc.kind, str(exc))
            report.finish("refused" if exc.exit_code == 3 else "failed")
        _finish(report, report_path, quiet)
        _fail(exc)
    except KeyboardInterrupt:
        _interrupted(report, report_path, quiet, "staging was rolled back")
    except Exception as exc:  # a bug: say so in one sentence, keep the traceback out of CI logs
        _internal_error(report, report_path, quiet, exc)
    _finish(report, report_path, quiet)


@main.group(epilog=EPILOG)
def backups() -> None:
    """List, verify, prune and restore the backups in a store."""


@backups.command("list")
@store_options
@click.option("--series", metavar="NAME", help="Only this series.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def backups_list(
    store_url: str, s3_endpoint: str | None, s3_region: str | None, series: str | None, as_json: bool
) -> None:
    """Backups with their size, age and completeness, newest first."""
    from datetime import UTC, datetime

    try:
        store = _store(store_url, s3_endpoint, s3_region)
        found = list_backups(store, series)
    except DbsyncError as exc:
        _fail(exc)
    now = datetime.now(UTC)
    rows = []
    for b in sorted(found, key=lambda b: b.manifest.created_at if b.manifest else "", reverse=True):
        created = b.manifest.created if b.manifest else b.modified
        rows.append(
            {
                "series": b.series,
                "run_id": b.run_id,
                "folder": b.folder,
                "complete": b.manifest is not None,
                "created_at": created.isoformat(timespec="seconds"),
                "age_hours": round((now - created).total_seconds() / 3600, 1),
                # the dump's bytes, as the manifest, the report and `verify` count them; an
                # incomplete backup has no manifest, so what it left behind
                "size": b.manifest.size if b.manifest else b.size,
                "sha256": b.manifest.sha256 if b.manifest else None,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no backups in {store.url}")
    for r in rows:
        state = "complete" if r["complete"] else "INCOMPLETE"
        click.echo(
            f"{r['series']:40} {r['run_id']:14} {r['created_at']}  {r['age_hours']:8.1f}h "
            f"{r['size']:>14,} bytes  {state}"
        )


@backups.command("verify")
@store_options
@click.option("--series", metavar="NAME")
@click.argument("ref", default="latest")
def backups_verify(
    store_url: str, s3_endpoint: str | None, s3_region: str | None, series: str | None, ref: str
) -> None:
    """Re-hash a backup (REF: run id, folder or 'latest') against its manifest."""
    try:
        store = _store(store_url, s3_endpoint, s3_region)
        backup = find_backup(store, ref, series)
        manifest = verify_backup(store, backup)
    except DbsyncError as exc:
        _fail(exc)
    click.echo(f"{backup.folder}: ok, {manifest.size:,} bytes, sha256 {manifest.sha256}")


@backups.command("prune")
@store_options
@click.option("--series", metavar="NAME", required=True)
@retain_option("Complete backups to keep.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def backups_prune(
    store_url: str, s3_endpoint: str | None, s3_region: str | None, series: str, retain: int, dry_run: bool
) -> None:
    """Delete complete backups beyond the newest N and incomplete leftovers older than a day."""
    try:
        store = _store(store_url, s3_endpoint, s3_region)
        plan = prune(store, series, retain, dry_run=dry_run)
    except DbsyncError as exc:
        _fail(exc)
    verb = "would delete" if dry_run else "deleted"
    for b in plan.delete:
        click.echo(f"{verb} {b.folder} (beyond the newest {retain})")
    for b in plan.leftovers:
        click.echo(f"{verb} {b.folder} (incomplete, older than a day)")
    click.echo(f"kept {len(plan.keep)} complete backup(s)")


@backups.command("restore")
@store_options
@click.option("--series", metavar="NAME")
@click.option(
    "--target",
    envvar="DBSYNC_TARGET_URL",
    required=True,
    metavar="URL",
    help="Database to restore into (env: DBSYNC_TARGET_URL).",
)
@click.option("--keep-owners", is_flag=True, help="Restore ownership and privileges as dumped.")
@retain_option("Complete backups to keep in the target's pre-backups-restore series.")
@click.option(
    "--no-target-backup",
    is_flag=True,
    help="Do not back the target up before replacing it (explicitly unsafe).",
)
@lock_timeout_option("Seconds to wait for the locks on the target's tables.")
@compress_option
@click.argument("ref", default="latest")
def backups_restore(
    store_url: str,
    s3_endpoint: str | None,
    s3_region: str | None,
    series: str | None,
    target: str,
    keep_owners: bool,
    retain: int,
    no_target_backup: bool,
    lock_timeout: float,
    compression: Compression,
    ref: str,
) -> None:
    """Restore a backup (REF: run id, folder or 'latest') into TARGET in one transaction.

    Verifies the backup first and backs TARGET up (series <dbname>-<host>-pre-backups-restore) inside
    the same transaction; if anything fails the target is left exactly as it was."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    warnings: list[str] = []
    try:
        store = _store(store_url, s3_endpoint, s3_region)
        from .report import new_run_id
        from .restore_backup import TargetBackup, restore_backup

        backup = find_backup(store, ref, series)
        run_id = new_run_id()
        summary = restore_backup(
            store,
            backup,
            endpoint("target", target),
            keep_owners=keep_owners,
            lock_timeout_seconds=lock_timeout,
            target_backup=None if no_target_backup else TargetBackup(run_id, compression),
            warn=warnings.append,
        )
    except DbsyncError as exc:
        for text in warnings:
            click.echo(f"dbsync: warning: {text}", err=True)
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("dbsync: interrupted; the restore was rolled back", err=True)
        sys.exit(130)
    click.echo(
        f"restored {summary['backup']} ({summary['tables_checked']} tables checked against the manifest)"
    )
    for text in warnings:
        click.echo(f"dbsync: warning: {text}", err=True)
    if summary.get("interrupted_after_commit"):
        _committed_but_interrupted("the restore is committed", during=_settled(warnings))
    saved = summary.get("target_backup")
    if isinstance(saved, dict):
        click.echo(f"the target's previous contents: backup {saved['folder']} (verified)")
        try:
            owner = summary["target_owner"]
            assert isinstance(owner, Owner)
            plan = prune(store, saved["series"], retain, protect=[run_id, backup.run_id], owner=owner)
        except DbsyncError as exc:
            click.echo(f"dbsync: warning: old backups of {saved['series']} were not pruned: {exc}", err=True)
        except KeyboardInterrupt:
            _committed_but_interrupted("the restore is committed")
        else:
            for old in plan.delete:
                click.echo(f"deleted {old.folder} (beyond the newest {retain})")
            for old in plan.leftovers:
                click.echo(f"deleted {old.folder} (incomplete, older than a day)")


def _project_root(start: Path) -> Path:
    """The checkout: the nearest folder upwards holding Pulumi.yaml."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise ConfigError(f"no Pulumi.yaml in {start} or above: run from the dbsync checkout or pass --work-dir")


@main.command("run", epilog=EPILOG)
@click.option("--stack", required=True, metavar="NAME", help="The Pulumi stack: uat or staging.")
@report_option("Write the run's JSON report (with the job's) here.")
@click.option(
    "--notify",
    "notify_url",
    envvar="DBSYNC_NOTIFY_URL",
    metavar="URL",
    help="Slack-compatible webhook for a summary on success and failure (env: DBSYNC_NOTIFY_URL).",
)
@click.option("--recover", is_flag=True, help="Cancel a stale Pulumi lock left by a killed run, and refresh.")
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The checkout (default: found upwards).",
)
def run_command(
    stack: str, report_path: Path | None, notify_url: str | None, recover: bool, work_dir: Path | None
) -> None:
    """Provision the runner next to the databases, run the stack's job there, tear it down.

    The databases come from DBSYNC_SOURCE_URL and DBSYNC_TARGET_URL (their public connection
    strings are fine: the run points them at the clusters' private hosts), the DigitalOcean
    token from DIGITALOCEAN_TOKEN. Never on the command line."""
    from .launch.digitalocean import DigitalOcean
    from .launch.provision import AutomationProvisioner
    from .launch.run import Launch, write_outputs

    try:
        root = work_dir or _project_root(Path.cwd())
        source = os.environ.get("DBSYNC_SOURCE_URL")
        target = os.environ.get("DBSYNC_TARGET_URL")
        if not source or not target:
            raise ConfigError(
                "set DBSYNC_SOURCE_URL and DBSYNC_TARGET_URL (in CI: from the repository's secrets)"
            )
        token = os.environ.get("DIGITALOCEAN_TOKEN")
        cloud = DigitalOcean(token) if token else None
        launch = Launch(
            AutomationProvisioner(stack, root),
            source_url=source,
            target_url=target,
            root=root,
            cloud=cloud,
            recover=recover,
        )
    except DbsyncError as exc:
        _fail(exc)
    code = launch.run()
    write_outputs(launch.report, report_path, launch.log, notify_url)
    launch.log(f"dbsync run {launch.run_id}: exit {code}")
    sys.exit(code)


@main.command("preview", epilog=EPILOG)
@click.option("--stack", required=True, metavar="NAME")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False))
def preview_command(stack: str, work_dir: Path | None) -> None:
    """Show the infrastructure diff of a stack, for auditors (secrets are never shown)."""
    from .launch.provision import AutomationProvisioner

    try:
        root = work_dir or _project_root(Path.cwd())
        AutomationProvisioner(stack, root).preview(lambda line: click.echo(redact(line), nl=False))
    except DbsyncError as exc:
        _fail(exc)


@main.command("job", hidden=True)
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def job_command(spec: Path) -> None:
    """Runner side of `dbsync run`: execute the uploaded job spec (its secrets stay off argv)."""
    from .launch.job import execute

    try:
        execute(spec)
    except DbsyncError as exc:
        _fail(exc)


if __name__ == "__main__":
    main()
