"""The job a run hands to its runner: one JSON file with every secret, and how it is executed.

Secrets (database URLs, Spaces keys) must reach the droplet without appearing in a command line
(every user of a machine can read argument lists) or in user data (anything on the droplet can
read that from the metadata service). So the launcher uploads them in ``job.json`` (mode 0600,
in a 0700 directory on tmpfs) and runs ``dbsync job <path>``, which moves them into its own
environment and ``exec``s ``dbsync sync`` or ``dbsync restore`` with an argument list that holds
no secret at all.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ConfigError
from ..redact import remember_secret
from .provision import RunnerInfo


@dataclass
class JobSpec:
    command: str  # "sync" | "restore"
    source_url: str = field(repr=False)
    target_url: str = field(repr=False)
    store_url: str
    store_env: dict[str, str] = field(repr=False)
    report_path: str
    config: dict[str, Any] = field(default_factory=dict)
    retain: int = 7

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JobSpec:
        return cls(**json.loads(data))


def private_url(public_url: str, host: str, port: int, role: str) -> str:
    """The user's connection string (DigitalOcean's public one, say) pointed at the cluster's
    private host and port: credentials, database and TLS settings are kept."""
    try:
        params = conninfo_to_dict(public_url)
    except Exception as exc:
        raise ConfigError(f"the {role} URL is not a valid PostgreSQL connection string") from exc
    remember_secret(str(params.get("password") or ""))
    params.update(host=host, port=str(port))
    params.pop("hostaddr", None)  # TLS settings stay as given (DigitalOcean's say sslmode=require)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def build_spec(info: RunnerInfo, *, source_url: str, target_url: str, job_dir: str) -> JobSpec:
    query = f"endpoint={quote(info.endpoint, safe=':/')}&region={quote(info.region)}"
    return JobSpec(
        command="sync" if info.mode == "sync" else "restore",
        source_url=private_url(source_url, info.source_host, info.source_port, "source"),
        target_url=private_url(target_url, info.target_host, info.target_port, "target"),
        store_url=f"s3://{info.bucket}/dbsync?{query}",
        store_env={
            "SPACES_ACCESS_KEY_ID": info.spaces_access_key,
            "SPACES_SECRET_ACCESS_KEY": info.spaces_secret_key,
        },
        report_path=f"{job_dir}/report.json",
        config=info.sync_settings,
        retain=info.retain,
    )


def execute(spec_path: Path) -> NoReturn:
    """Runner side: load the spec, put its secrets in the environment, exec the job."""
    try:
        spec = JobSpec.from_bytes(spec_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the job spec {spec_path}: {exc}") from None
    env = dict(os.environ)
    env.update(spec.store_env)
    env["DBSYNC_SOURCE_URL"] = spec.source_url
    env["DBSYNC_TARGET_URL"] = spec.target_url
    env["DBSYNC_BACKUP_STORE"] = spec.store_url
    argv = [
        sys.executable,
        "-m",
        "dbsync.cli",
        spec.command,
        "--report",
        spec.report_path,
        "--retain",
        str(spec.retain),
    ]
    if spec.command == "sync" and spec.config:
        fd, config_path = tempfile.mkstemp(suffix=".json", dir=str(spec_path.parent))
        with os.fdopen(fd, "w") as handle:
            json.dump(spec.config, handle)
        yaml_path = config_path[: -len(".json")] + ".yaml"  # JSON is YAML: the runner reads it
        os.replace(config_path, yaml_path)
        argv += ["--config", yaml_path]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
