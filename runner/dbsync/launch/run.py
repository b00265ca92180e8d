"""``dbsync run --stack uat``: provision, run the job next to the databases, tear down. Always.

The steps (the log, the report and the fault hooks use these names):

1. ``preflight``  the stack's config is valid; the DigitalOcean token works; both clusters exist,
                  are online and are not the same cluster; leftovers of earlier runs (runner
                  droplets past their expiry, and their trusted-source rules) are reaped.
2. ``up``         the stack with ``runner = true``, a fresh run id and fresh keys.
3. ``connect``    SSH to the droplet, its host key pinned to the one this run generated;
                  wait for sshd and for cloud-init to finish.
4. ``upload``     a private directory (0700, tmpfs), the runner wheel built from this checkout,
                  and the job spec with its secrets (0600).
5. ``install``    the wheel, in a virtualenv of its own.
6. ``job``        ``dbsync sync`` or ``dbsync restore``; its progress streams into this log.
7. ``fetch``      its JSON report.
8. ``teardown``   in a ``finally``, also after SIGTERM/SIGINT: ``up`` with ``runner = false``,
                  retried once; if that fails, the run's droplet and rules are destroyed by tag
                  through the API, and anything still left is named in the log and the exit code.

The exit code is the job's (0 success, 2-6, 11-15 and 130 as documented by ``dbsync
sync``/``restore``); a
failure of the launcher itself has its own (7 SSH, 8 DigitalOcean API, 9 Pulumi); 10 means the
teardown left something behind, whatever the job did.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from .. import faults
from ..errors import ConfigError, DbsyncError, HostUnreachable, Refused
from ..redact import redact, remember_secret
from . import keys
from .job import build_spec
from .provision import Provisioner, RunnerInfo, RunPlan

LEFT_BEHIND_EXIT = 10
STEPS = ("preflight", "up", "connect", "upload", "install", "job", "fetch", "teardown")


#: The job's exit code when no database server took its connection (HostUnreachable): nothing
#: was changed, and a later attempt may pass.
UNREACHABLE_EXIT = HostUnreachable.exit_code


class Cancelled(BaseException):
    """CI cancelled the run (SIGTERM/SIGINT): unwind into the teardown."""


@dataclass
class LaunchSettings:
    """How a run reaches and drives its runner. The defaults are a DigitalOcean droplet's."""

    job_dir: str = "/run/dbsync"  # tmpfs on Ubuntu (cloud_init.JOB_DIR)
    remote_python: str = "python3"
    install_command: str = (
        "{python} -m venv --system-site-packages {dir}/venv && "
        "{dir}/venv/bin/python -m pip install -q --disable-pip-version-check {wheel}"
    )
    job_command: str = "{dir}/venv/bin/dbsync job {dir}/job.json"
    # cloud-init >= 23.4 exits 2 for "done, with recoverable errors" (deprecation warnings):
    # the droplet is ready then too; only 1 means cloud-init failed.
    ready_command: str | None = "cloud-init status --wait; test $? -ne 1"
    connect_timeout: float = 300.0
    ready_timeout: float = 900.0
    job_timeout: float = 6 * 3600.0
    ttl_minutes: int = 180
    # A job that exits 12 (no database server took its connection; nothing was changed) runs
    # again after a pause, up to this many more times: the droplet's trusted-source rules may
    # not be in force the moment pulumi up returns (DigitalOcean documents no delay), and a
    # managed cluster's failover refuses connections for a while. Other failures never rerun.
    job_retries: int = 3
    retry_delay_seconds: float = 30.0


@dataclass
class LaunchReport:
    stack: str
    run_id: str
    status: str = "running"
    exit_code: int | None = None
    mode: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    preflight: dict[str, Any] = field(default_factory=dict)
    reaped: list[Any] = field(default_factory=list)  # droplet ids
    job_exit_code: int | None = None
    job_attempts: int = 0
    job_report: dict[str, Any] | None = None
    left_behind: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_json(self) -> str:
        return redact(json.dumps(asdict(self), indent=2, default=str))


def build_wheel(root: Path, out_dir: Path) -> Path:
    """The runner wheel, built from this checkout (never a published version)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir), str(root)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out_dir.glob("dbsync-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ConfigError(f"cannot build the runner wheel from {root}: {redact(proc.stderr.strip()[-800:])}")
    return wheels[-1]


class Launch:
    def __init__(
        self,
        provisioner: Provisioner,
        *,
        source_url: str,
        target_url: str,
        root: Path,
        settings: LaunchSettings | None = None,
        cloud: Any = None,
        log: Callable[[str], None] | None = None,
        recover: bool = False,
        wheel: Path | None = None,
    ) -> None:
        self.provisioner = provisioner
        self.source_url = source_url
        self.target_url = target_url
        remember_secret(_password_of(source_url))
        remember_secret(_password_of(target_url))
        self.root = root
        self.settings = settings or LaunchSettings()
        self.cloud = cloud
        self._log = log or (lambda line: print(line, flush=True))
        self.recover = recover
        self.wheel = wheel
        self.run_id = f"{datetime.now(UTC):%m%d%H%M}-{secrets.token_hex(3)}"
        self.report = LaunchReport(stack=provisioner.stack, run_id=self.run_id)
        self._cluster_ids: list[str] = []
        self._provisioned = False

    def log(self, line: str) -> None:
        self._log(redact(line))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        entry: dict[str, Any] = {"name": name, "status": "running", "seconds": 0.0}
        self.report.steps.append(entry)
        started = time.monotonic()
        self.log(f"==> {name}")
        try:
            faults.checkpoint(f"launch.{name}")
            yield
        except BaseException:
            entry["status"] = "failed"
            raise
        else:
            entry["status"] = "ok"
        finally:
            entry["seconds"] = round(time.monotonic() - started, 2)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
        code: int
        try:
            code = self._run_steps()
        except Cancelled:
            self.report.error = {
                "step": self._current(),
                "kind": "cancelled",
                "message": "cancelled by a signal",
            }
            self.log("run cancelled; tearing down")
            code = 130
        except DbsyncError as exc:
            self.report.error = {"step": self._current(), "kind": exc.kind, "message": redact(str(exc))}
            self.log(f"error at {self._current()}: {exc}")
            code = exc.exit_code
        except Exception as exc:  # a bug: still tear down, still say what happened
            self.report.error = {
                "step": self._current(),
                "kind": "internal",
                "message": redact(f"{type(exc).__name__}: {exc}"),
            }
            self.log(f"internal error at {self._current()}: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            # Another signal must not interrupt the teardown: it is what keeps the bill down and
            # the clusters closed.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self._teardown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.report.left_behind:
            code = LEFT_BEHIND_EXIT
        self.report.exit_code = code
        self.report.status = "succeeded" if code == 0 else "failed"
        self.report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        return code

    def _cancel(self, signum: int, frame: FrameType | None) -> None:
        raise Cancelled

    def _current(self) -> str | None:
        running = [s["name"] for s in self.report.steps if s["status"] in ("running", "failed")]
        return running[-1] if running else None

    def _run_steps(self) -> int:
        with self.step("preflight"):
            self._preflight()
        # From here on something may exist in the cloud (pulumi up may be cut off half-way), so
        # the teardown runs: with the runner off, an up on a stack without one is a no-op.
        self._provisioned = True
        with self.step("up"):
            host = keys.generate(f"dbsync-host-{self.run_id}")
            client = keys.generate(f"dbsync-client-{self.run_id}")
            plan = RunPlan(
                run_id=self.run_id,
                expires_at=int(time.time()) + self.settings.ttl_minutes * 60,
                client_public_key=client.public_line,
                host_public_key=host.public_line,
                host_private_key=host.private_pem,
            )
            info = self.provisioner.up(plan, self.log)
            self.report.mode = info.mode
        from .remote import Remote, RemoteError, Target

        with self.step("connect"):
            remote = Remote.connect(
                Target(info.address, info.port, info.user, info.host_key),
                client.private_pem,
                timeout=self.settings.connect_timeout,
                ready_command=self.settings.ready_command,
                ready_timeout=self.settings.ready_timeout,
            )
        with remote:
            job_dir = f"{self.settings.job_dir}/{self.run_id}"
            with self.step("upload"):
                wheel = self.wheel or build_wheel(self.root, Path(tempfile.mkdtemp(prefix="dbsync-wheel-")))
                remote.make_private_dir(job_dir)
                remote.upload(str(wheel), f"{job_dir}/{wheel.name}", mode=0o600)
                spec = build_spec(
                    info, source_url=self.source_url, target_url=self.target_url, job_dir=job_dir
                )
                remote.upload(spec.to_bytes(), f"{job_dir}/job.json", mode=0o600)
            values = {
                "python": self.settings.remote_python,
                "dir": job_dir,
                "wheel": f"{job_dir}/{wheel.name}",
            }
            with self.step("install"):
                code = remote.run(
                    self.settings.install_command.format(**values),
                    on_line=self.log,
                    timeout=self.settings.ready_timeout,
                )
                if code != 0:
                    raise RemoteError(f"installing the runner on the droplet failed (exit {code})")
            with self.step("job"):
                job_code = self._run_job(remote, self.settings.job_command.format(**values))
            with self.step("fetch"):
                try:
                    self.report.job_report = json.loads(remote.download(f"{job_dir}/report.json"))
                except Exception as exc:  # the job may have died before writing it
                    self.log(f"no report from the runner: {exc}")
        return job_code

    def _run_job(self, remote: Any, command: str) -> int:
        """The job, run again while it exits 12 and retries are left (see LaunchSettings)."""
        total, attempt = 1 + max(0, self.settings.job_retries), 1
        while True:
            code: int = remote.run(command, on_line=self.log, timeout=self.settings.job_timeout)
            self.report.job_exit_code, self.report.job_attempts = code, attempt
            if code != UNREACHABLE_EXIT or attempt == total:
                return code
            delay = self.settings.retry_delay_seconds
            self.log(
                f"the job exited {code}: no database server took its connection, and nothing was "
                f"changed; running it again in {delay:g} s (attempt {attempt + 1} of {total})"
            )
            time.sleep(delay)
            attempt += 1

    def _preflight(self) -> None:
        from infra.config import parse_stack_config

        cfg = parse_stack_config(self.provisioner.config())
        self.report.mode = cfg.mode
        if self.cloud is None:
            raise ConfigError("set DIGITALOCEAN_TOKEN: the run checks the clusters and reaps leftovers first")
        from .digitalocean import preflight, reap

        checked = preflight(self.cloud, cfg.source_cluster, cfg.target_cluster)
        self.report.preflight = {
            side: {k: v for k, v in info.items() if k in ("id", "name", "version")}
            for side, info in checked.items()
        }
        self._cluster_ids = [checked["source"]["id"], checked["target"]["id"]]
        if self.recover:
            self.log("recovering the stack: cancel any stale update, then refresh")
            self.provisioner.recover(self.log)
        # This stack's runners only: another stack's runner holds rules on clusters this run does
        # not know, and its own next preflight reaps it with them.
        reaped = reap(
            self.cloud, now=time.time(), cluster_ids=self._cluster_ids, stack=self.provisioner.stack
        )
        self.report.reaped = list(reaped.reaped)
        for sentence in reaped.left_behind:
            self.log(f"preflight: {sentence}")

    def _teardown(self) -> None:
        entry: dict[str, Any] = {"name": "teardown", "status": "running", "seconds": 0.0}
        self.report.steps.append(entry)
        started = time.monotonic()
        self.log("==> teardown")
        if not self._provisioned:
            entry.update(status="skipped", seconds=0.0)
            return
        problems = []
        for attempt in (1, 2):
            try:
                faults.checkpoint("launch.teardown")
                self.provisioner.down(self.log)
                entry.update(status="ok", seconds=round(time.monotonic() - started, 2))
                return
            except Exception as exc:
                problems.append(redact(str(exc)))
                self.log(f"teardown attempt {attempt} failed: {exc}")
        # Pulumi could not take the runner down: remove it by its tags through the API.
        if self.cloud is not None:
            try:
                from .digitalocean import reap

                reaped = reap(self.cloud, now=time.time(), cluster_ids=self._cluster_ids, run_id=self.run_id)
                self.report.reaped += list(reaped.reaped)
                self.report.left_behind += list(reaped.left_behind)
            except Exception as exc:
                self.report.left_behind.append(
                    f"the run's droplet (tag run-{self.run_id}): {redact(str(exc))}"
                )
        else:
            self.report.left_behind.append(
                f"the run's droplet (tag run-{self.run_id}): no API token to remove it"
            )
        self.report.left_behind.append(
            f"the stack {self.provisioner.stack!r} still has dbsync:runner=true in its state "
            f"({problems[-1]}); run `dbsync run --recover` or `pulumi up` with runner false"
        )
        for sentence in self.report.left_behind:
            self.log(f"LEFT BEHIND: {sentence}")
        entry.update(status="failed", seconds=round(time.monotonic() - started, 2))


def _password_of(url: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        value = conninfo_to_dict(url).get("password")
    except Exception:
        return None
    return str(value) if value else None


# -- what a run leaves for people ---------------------------------------------------------------


def markdown_summary(report: LaunchReport) -> str:
    icon = "✅" if report.exit_code == 0 else "❌"
    lines = [
        f"## {icon} dbsync {report.mode or ''} on stack `{report.stack}`: {report.status}",
        "",
        f"Run `{report.run_id}`, exit code {report.exit_code}, job exit code {report.job_exit_code}.",
        "",
        "| step | status | seconds |",
        "|---|---|---:|",
    ]
    lines += [f"| {s['name']} | {s['status']} | {s['seconds']} |" for s in report.steps]
    job = report.job_report or {}
    if job.get("tables"):
        lines += ["", "| table | copied | preserved | re-keyed | after |", "|---|---:|---:|---:|---:|"]
        lines += [
            "| {table} | {rows_copied} | {rows_preserved} | {rows_rekeyed} | {rows_after} |".format(**t)
            for t in job["tables"]
        ]
    if job.get("restore"):
        tables = job["restore"]["tables"]
        equal = sum(1 for t in tables if t["digest_equal"])
        lines += ["", f"Restore verified {equal} of {len(tables)} tables equal to production."]
    if job.get("proofs"):
        failed = [p for p in job["proofs"] if not p["ok"]]
        lines += ["", f"Proofs: {len(job['proofs']) - len(failed)} passed, {len(failed)} failed."]
    if job.get("backup"):
        lines += ["", f"Backup: `{job['backup'].get('key')}` ({job['backup'].get('size')} bytes, verified)."]
    if report.error:
        lines += ["", f"**Error** at `{report.error.get('step')}`: {report.error.get('message')}"]
    if report.left_behind:
        lines += ["", "**Left behind:**"] + [f"- {s}" for s in report.left_behind]
    return redact("\n".join(lines) + "\n")


def notify(url: str, report: LaunchReport, log: Callable[[str], None]) -> None:
    """Post a one-paragraph summary to a Slack-compatible incoming webhook. A failure to notify
    is logged, never fatal: the run's outcome is already decided."""
    remember_secret(url)
    text = markdown_summary(report).splitlines()[0].removeprefix("## ")
    if report.error:
        text += f"\nError at {report.error.get('step')}: {report.error.get('message')}"
    if report.left_behind:
        text += "\nLeft behind: " + "; ".join(report.left_behind)
    body = json.dumps({"text": redact(text)}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            answer.read()
    except Exception as exc:
        log(f"warning: the notification could not be posted: {redact(str(exc))}")


def write_outputs(
    report: LaunchReport, report_path: Path | None, log: Callable[[str], None], notify_url: str | None
) -> None:
    if report_path is not None:
        tmp = report_path.with_name(report_path.name + ".tmp")
        tmp.write_text(report.to_json() + "\n")
        tmp.replace(report_path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown_summary(report))
    if notify_url:
        notify(notify_url, report, log)


__all__ = ["Launch", "LaunchReport", "LaunchSettings", "Refused", "RunnerInfo", "markdown_summary", "notify"]
