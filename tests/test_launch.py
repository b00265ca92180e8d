"""``dbsync run`` end to end: real SSH, real PostgreSQL, real S3 protocol, a fake DigitalOcean.

Neither the Pulumi engine nor a droplet can exist here, so the provisioning step is the one
thing replaced: :class:`LoopbackProvisioner` implements the launcher's ``Provisioner`` interface
by "provisioning" a real OpenSSH server on loopback (``tests.fix_sshd``, with its own host key)
as the droplet: it authorizes the run's freshly generated client key, as DigitalOcean registers
it, and answers with the stack's outputs. Everything after that is the real launcher: pinned
host key, SFTP upload of a wheel built from this checkout and of the job spec, the runner's
install and a real ``dbsync sync`` between two real clusters with backups to moto's S3 server,
progress streamed back, the report fetched, teardown. The DigitalOcean API (preflight, reaper,
fallback teardown) is the stateful fake of ``tests.fake_do``, reached through real pydo requests.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dbsync.launch.digitalocean import DigitalOcean
from dbsync.launch.provision import ProvisionError, RunnerInfo, RunPlan
from dbsync.launch.run import Launch, LaunchSettings, build_wheel, markdown_summary
from tests.checksum import snapshot

ROOT = Path(__file__).resolve().parent.parent


class LoopbackProvisioner:
    """The Provisioner interface, with a real sshd on loopback as the droplet."""

    stack = "uat"

    def __init__(self, sshd: Any, prod: Any, uat: Any, s3: Any, bucket: str, clusters: tuple[str, str]) -> None:
        self.sshd, self.prod, self.uat, self.s3, self.bucket = sshd, prod, uat, s3, bucket
        self.source_cluster, self.target_cluster = clusters
        self.ups: list[RunPlan] = []
        self.downs = 0
        self.fail_down = 0
        self.host_key: str | None = None  # None: the sshd's own (the one "the stack generated")
        self._authorized_before = sshd.authorized_keys.read_text()

    def config(self) -> dict[str, Any]:
        return {
            "mode": "sync", "vpc": "vpc", "sourceCluster": self.source_cluster, "targetCluster": self.target_cluster,
            "sourceDatabase": "prod", "targetDatabase": "uat", "bucket": self.bucket,
        }

    def up(self, plan: RunPlan, on_output: Any) -> RunnerInfo:
        self.ups.append(plan)
        on_output(f"Updating (uat): + digitalocean:index/droplet:Droplet runner-{plan.run_id} created\n")
        # DigitalOcean registers the run's key on the droplet: the sshd authorizes it.
        self.sshd.authorized_keys.write_text(self._authorized_before + plan.client_public_key + "\n")
        return RunnerInfo(
            address=self.sshd.host, port=self.sshd.port, user=self.sshd.user,
            host_key=self.host_key or self.sshd.host_public_key, mode="sync",
            source_host=self.prod.cluster.host, source_port=self.prod.cluster.port,
            target_host=self.uat.cluster.host, target_port=self.uat.cluster.port,
            bucket=self.bucket, endpoint=self.s3.endpoint, region=self.s3.region, retain=7,
            spaces_access_key=self.s3.access_key, spaces_secret_key=self.s3.secret_key, droplet_id="4242",
        )

    def down(self, on_output: Any) -> None:
        self.downs += 1
        if self.fail_down:
            self.fail_down -= 1
            raise ProvisionError("pulumi up (teardown) of stack 'uat' failed: 500 from the API")
        self.sshd.authorized_keys.write_text(self._authorized_before)

    def preview(self, on_output: Any) -> None:
        raise NotImplementedError

    def recover(self, on_output: Any) -> None:
        raise NotImplementedError


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner wheel, built once from this checkout."""
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def settings(tmp_path: Path) -> LaunchSettings:
    """The runner is this machine: the wheel goes into a target folder and runs with this
    interpreter (whose site-packages hold the runner's dependencies), not into a fresh venv that
    would download them."""
    return LaunchSettings(
        job_dir=str(tmp_path / "droplet"),
        remote_python=sys.executable,
        install_command="{python} -m pip install -q --no-deps --disable-pip-version-check --target {dir}/site {wheel}",
        job_command="PYTHONPATH={dir}/site {python} -m dbsync.cli job {dir}/job.json",
        ready_command="true",
        connect_timeout=30,
        ready_timeout=300,
        job_timeout=600,
    )


@pytest.fixture
def world(make_db: Any, sshd: Any, s3_server: Any, fake_do: Any, tmp_path: Path, wheel: Path) -> dict[str, Any]:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    source_id = fake_do.add_cluster("db-postgresql-fra1-prod")
    target_id = fake_do.add_cluster("db-postgresql-fra1-uat")
    for cluster in (source_id, target_id):
        fake_do.set_rules(cluster, [{"type": "tag", "value": "app"}])
    bucket = s3_server.new_bucket()
    provisioner = LoopbackProvisioner(sshd, prod, uat, s3_server, bucket,
                                      ("db-postgresql-fra1-prod", "db-postgresql-fra1-uat"))
    lines: list[str] = []
    return {"prod": prod, "uat": uat, "fake": fake_do, "s3": s3_server, "bucket": bucket, "lines": lines,
            "provisioner": provisioner, "wheel": wheel, "tmp": tmp_path, "clusters": (source_id, target_id)}


def launch(world: dict[str, Any], settings_override: LaunchSettings | None = None, **kwargs: Any) -> Launch:
    return Launch(
        world["provisioner"], source_url=str(world["prod"]), target_url=str(world["uat"]), root=ROOT,
        settings=settings_override or settings(world["tmp"]),
        cloud=DigitalOcean(world["fake"].token, world["fake"].url),
        log=world["lines"].append, wheel=world["wheel"], **kwargs,
    )


def secrets_in(world: dict[str, Any], text: str) -> list[str]:
    found = []
    for secret in ("postgres-pw", world["s3"].secret_key, world["fake"].token):
        if secret and secret in text:
            found.append(secret)
    for plan in world["provisioner"].ups:
        if plan.host_private_key.splitlines()[1] in text:
            found.append("host private key")
    return found


def test_a_run_syncs_through_ssh_and_tears_down(world: dict[str, Any]) -> None:
    prod_before = snapshot(world["prod"])
    run = launch(world)
    code = run.run()
    log = "\n".join(world["lines"])
    assert code == 0, log[-3000:]
    report = run.report
    assert [s["name"] for s in report.steps] == ["preflight", "up", "connect", "upload", "install", "job", "fetch",
                                                 "teardown"]
    assert all(s["status"] == "ok" for s in report.steps)
    assert report.job_exit_code == 0
    assert report.job_report is not None and report.job_report["status"] == "committed"
    assert report.job_report["backup"]["store"].startswith(f"s3://{world['bucket']}/dbsync")
    assert world["provisioner"].downs == 1
    # the runner's progress was streamed into the launcher's log as it happened
    assert any("stage apps_orders_order" in line for line in world["lines"])
    # UAT now holds production's tenants and its own test tenants; production never changed
    assert snapshot(world["prod"]).checksum == prod_before.checksum
    summary = markdown_summary(report)
    assert "apps_orders_order" in summary and "succeeded" in summary
    # the backup landed in the bucket (moto's S3 server)
    keys = [o["Key"] for o in world["s3"].client().list_objects_v2(Bucket=world["bucket"]).get("Contents", [])]
    assert any(k.endswith("manifest.json") for k in keys)
    # nothing secret anywhere
    assert secrets_in(world, log + report.to_json() + summary) == []
    # the secrets travelled in a 0600 file inside a 0700 directory, never on a command line
    job_dir = Path(settings(world["tmp"]).job_dir) / run.run_id
    assert oct(job_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((job_dir / "job.json").stat().st_mode & 0o777) == "0o600"


def test_a_job_that_reaches_no_database_runs_again(world: dict[str, Any]) -> None:
    """UAT's server does not take connections when the job first runs (as when the droplet's
    trusted-source rule is not yet in force): the job exits 12, having changed nothing, and the
    launcher runs it again after the pause. The server is started when the launcher says it
    will retry, so the second attempt syncs."""
    uat_cluster = world["uat"].cluster
    uat_cluster.stop()

    def log(line: str) -> None:
        world["lines"].append(line)
        if "running it again" in line:
            uat_cluster.start()

    custom = settings(world["tmp"])
    custom.retry_delay_seconds = 0.5
    run = Launch(
        world["provisioner"], source_url=str(world["prod"]), target_url=str(world["uat"]), root=ROOT,
        settings=custom, cloud=DigitalOcean(world["fake"].token, world["fake"].url), log=log,
        wheel=world["wheel"],
    )
    try:
        code = run.run()
    finally:
        uat_cluster.start()  # no-op when it runs
    text = "\n".join(world["lines"])
    assert code == 0, text[-3000:]
    assert run.report.job_attempts == 2 and run.report.job_exit_code == 0
    assert "the job exited 12: no database server took its connection" in text
    assert "(attempt 2 of 4)" in text
    assert run.report.job_report is not None and run.report.job_report["status"] == "committed"


def test_a_job_refused_its_login_is_not_run_again(world: dict[str, Any]) -> None:
    """Only "unreachable" reruns: a refused login (exit 11) will not pass by waiting."""
    wrong = str(world["uat"]).replace("postgres-pw", "not-the-password")
    assert wrong != str(world["uat"])
    custom = settings(world["tmp"])
    custom.retry_delay_seconds = 0.5
    run = Launch(
        world["provisioner"], source_url=str(world["prod"]), target_url=wrong, root=ROOT, settings=custom,
        cloud=DigitalOcean(world["fake"].token, world["fake"].url), log=world["lines"].append,
        wheel=world["wheel"],
    )
    code = run.run()
    assert code == 11, "\n".join(world["lines"])[-3000:]
    assert run.report.job_attempts == 1
    assert not any("running it again" in line for line in world["lines"])


def test_a_host_key_that_does_not_match_is_refused(world: dict[str, Any], sshd: Any) -> None:
    world["provisioner"].host_key = sshd.other_host_public_key
    run = launch(world)
    assert run.run() == 7
    assert run.report.error["kind"] == "host_key_mismatch"
    assert world["provisioner"].downs == 1
    job_dir = Path(settings(world["tmp"]).job_dir)
    assert not job_dir.exists()  # nothing was sent


@pytest.mark.parametrize("where", ["preflight", "up", "connect", "upload", "install", "job", "fetch"])
def test_teardown_runs_after_a_failure_at_each_step(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                    where: str) -> None:
    uat_before = snapshot(world["uat"])
    monkeypatch.setenv("DBSYNC_FAULT", f"launch.{where}")
    run = launch(world)
    code = run.run()
    assert code != 0
    assert run.report.error["step"] == where
    # preflight fails before anything is provisioned: nothing to tear down
    assert world["provisioner"].downs == (0 if where == "preflight" else 1)
    if where in ("preflight", "up", "connect", "upload", "install"):
        assert snapshot(world["uat"]).checksum == uat_before.checksum
    assert secrets_in(world, "\n".join(world["lines"]) + run.report.to_json()) == []


def test_a_failed_teardown_falls_back_to_the_api_and_names_what_is_left(world: dict[str, Any],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake = world["fake"]
    source_id, target_id = world["clusters"]
    monkeypatch.setenv("DBSYNC_FAULT", "launch.connect")
    provisioner = world["provisioner"]
    provisioner.fail_down = 2
    run = launch(world)
    # the droplet the stack would have made, with its tags and rules, as DigitalOcean holds it
    droplet = fake.add_droplet("dbsync-uat-run", tags=["dbsync-runner", "stack-uat", f"run-{run.run_id}",
                                                        f"expires-{int(time.time()) + 3600}"])
    for cluster in (source_id, target_id):
        fake.set_rules(cluster, [{"type": "tag", "value": "app"}, {"type": "droplet", "value": str(droplet)}])
    code = run.run()
    assert code == 10  # something is left behind: the stack's runner flag
    assert provisioner.downs == 2
    assert droplet in run.report.reaped
    assert fake.droplet_ids("dbsync-runner") == []
    for cluster in (source_id, target_id):
        assert [(r["type"], r["value"]) for r in fake.rules(cluster)] == [("tag", "app")]
    assert any("dbsync:runner=true" in s for s in run.report.left_behind)
    assert any("LEFT BEHIND" in line for line in world["lines"])


def test_preflight_reaps_expired_runners_and_refuses_one_cluster(world: dict[str, Any]) -> None:
    fake = world["fake"]
    source_id, _ = world["clusters"]
    old = fake.add_droplet("dbsync-old", tags=["dbsync-runner", "stack-uat", "run-old", "expires-1000"])
    fake.set_rules(source_id, [{"type": "tag", "value": "app"}, {"type": "droplet", "value": str(old)}])
    other = fake.add_droplet("dbsync-staging-old", tags=["dbsync-runner", "stack-staging", "run-x", "expires-1000"])
    run = launch(world)
    assert run.run() == 0
    assert old in run.report.reaped and fake.droplet_ids("dbsync-runner") == [other]
    # another stack's expired runner is left to that stack, whose clusters hold its rules
    # the same cluster twice: refused before anything is provisioned
    world["provisioner"].target_cluster = world["provisioner"].source_cluster
    refused = launch(world)
    assert refused.run() == 3
    assert world["provisioner"].downs == 1  # only the first run's


def test_sigterm_tears_down(world: dict[str, Any], tmp_path: Path) -> None:
    """CI cancellation: SIGTERM arrives while the job runs on the runner; the launcher unwinds
    into its teardown and exits 130. (The runner's job is paused by the fault hook, passed in its
    own command line since the sshd session does not inherit this process's environment.)"""
    release = tmp_path / "go"
    custom = settings(world["tmp"])
    custom.job_command = f"DBSYNC_FAULT=stage:pause={release} " + custom.job_command
    run = launch(world, settings_override=custom)

    def cancel_when_the_job_runs() -> None:
        deadline = time.time() + 120
        while not any("stage ..." in line for line in world["lines"]) and time.time() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=cancel_when_the_job_runs)
    killer.start()
    try:
        code = run.run()  # in the main thread, where signal handlers run
    finally:
        killer.join()
        release.touch()  # let the paused remote job go (its connection is gone; it rolls back)
    assert code == 130
    assert run.report.error["kind"] == "cancelled" and run.report.error["step"] == "job"
    assert world["provisioner"].downs == 1
    assert run.report.steps[-1] == {**run.report.steps[-1], "name": "teardown", "status": "ok"}
