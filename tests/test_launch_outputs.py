"""What a run leaves for people: the JSON report, the GitHub step summary, the webhook post, and
the CLI's refusals before anything starts. The webhook is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from dbsync.launch.run import LaunchReport, markdown_summary, write_outputs
from dbsync.redact import remember_secret
from tests.test_provision import RecordingStack, provisioner
from tests.test_sync import dbsync


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                {
                    "path": self.path,
                    "type": self.headers["Content-Type"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/hook-secret-Zq9", received
    server.shutdown()
    server.server_close()


def failed_report() -> LaunchReport:
    remember_secret("db-pass-77")
    report = LaunchReport(
        stack="uat", run_id="r-1", status="failed", exit_code=4, mode="sync", job_exit_code=4
    )
    report.steps = [
        {"name": "preflight", "status": "ok", "seconds": 1.0},
        {"name": "job", "status": "failed", "seconds": 3},
    ]
    report.error = {
        "step": "job",
        "kind": "rolled_back",
        "message": "proof failed for postgresql://u:db-pass-77@h/db",
    }
    report.left_behind = ["the run's droplet (tag run-r-1): API down"]
    return report


def test_summary_notification_and_report(
    webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    summary_file = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    logs: list[str] = []
    report = failed_report()
    write_outputs(report, tmp_path / "run.json", logs.append, url)
    [post] = received
    assert post["path"] == "/services/T000/B000/hook-secret-Zq9" and post["type"] == "application/json"
    text = post["body"]["text"]
    assert "stack `uat`" in text and "failed" in text and "Error at job" in text and "Left behind" in text
    markdown = summary_file.read_text()
    assert "| job | failed | 3 |" in markdown and "**Left behind:**" in markdown
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["exit_code"] == 4 and saved["error"]["step"] == "job"
    for blob in (text, markdown, json.dumps(saved), "\n".join(logs)):
        assert "db-pass-77" not in blob


def test_a_failing_webhook_is_a_warning_without_its_url(tmp_path: Path) -> None:
    logs: list[str] = []
    write_outputs(failed_report(), None, logs.append, "http://127.0.0.1:1/hooks/secret-token-ABC")
    assert len(logs) == 1 and "could not be posted" in logs[0]
    assert "secret-token-ABC" not in logs[0]


def test_a_job_summary_lists_tables_and_proofs() -> None:
    report = LaunchReport(stack="staging", run_id="r", status="succeeded", exit_code=0, mode="restore")
    report.job_report = {
        "restore": {"tables": [{"digest_equal": True}, {"digest_equal": True}]},
        "proofs": [{"ok": True}, {"ok": True}],
        "backup": {"key": "k", "size": 10},
    }
    markdown = markdown_summary(report)
    assert "Restore verified 2 of 2 tables" in markdown and "Proofs: 2 passed, 0 failed" in markdown


def test_preview_streams_the_diff_and_shows_no_secrets() -> None:
    stack = RecordingStack()
    prov, _ = provisioner(stack)
    lines: list[str] = []
    prov.preview(lines.append)
    [(name, kwargs)] = stack.calls
    assert name == "preview" and kwargs["diff"] is True
    assert lines and all("hunter22" not in line for line in lines)


def test_run_needs_the_database_urls_from_the_environment(tmp_path: Path) -> None:
    proc = dbsync(
        "run",
        "--stack",
        "uat",
        "--work-dir",
        str(Path(__file__).resolve().parent.parent),
        env={"DBSYNC_SOURCE_URL": "", "DBSYNC_TARGET_URL": ""},
    )
    assert proc.returncode == 2 and "set DBSYNC_SOURCE_URL and DBSYNC_TARGET_URL" in proc.stderr
    assert "Traceback" not in proc.stderr
