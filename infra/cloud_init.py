"""The runner droplet's cloud-init user data (pure: config in, YAML text out).

- The SSH host key is preset (``ssh_deletekeys`` + ``ssh_keys``) so the launcher can pin it
  before its first connection: no trust on first use. cloud-init then generates none of its own.
- The power-off at the time-to-live is scheduled first, so it holds even if the rest fails.
- PostgreSQL's client of the server's major version comes from the PGDG repository (Ubuntu's
  own archive lags behind DigitalOcean's managed versions); Python's venv for the runner wheel.
- No database password goes in here: anything on the droplet can read user data from the
  metadata service. The job's secrets arrive later over SSH into a tmpfs directory.
"""

from __future__ import annotations

import yaml

JOB_DIR = "/run/dbsync"  # tmpfs on Ubuntu: secrets never touch the disk


def render(*, host_private_key: str, host_public_key: str, pg_major: str | None, ttl_minutes: int) -> str:
    major = str(pg_major or "").split(".")[0]
    if not major.isdigit():
        raise ValueError(f"PostgreSQL major version {pg_major!r} is not a number")
    document = {
        "ssh_deletekeys": True,
        "ssh_keys": {
            "ed25519_private": host_private_key.strip() + "\n",
            "ed25519_public": host_public_key.strip(),
        },
        "package_update": True,
        "packages": ["ca-certificates", "curl", "python3-venv", "python3-pip"],
        "runcmd": [
            ["sh", "-c", f"shutdown -P +{int(ttl_minutes)} 'dbsync runner: time-to-live reached'"],
            ["install", "-d", "-m", "0700", JOB_DIR],
            ["install", "-d", "-m", "0755", "/usr/share/postgresql-common/pgdg"],
            [
                "curl",
                "-fsSL",
                "-o",
                "/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc",
                "https://www.postgresql.org/media/keys/ACCC4CF8.asc",
            ],
            [
                "sh",
                "-c",
                'echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] '
                "https://apt.postgresql.org/pub/repos/apt "
                '$(. /etc/os-release; echo $VERSION_CODENAME)-pgdg main" '
                "> /etc/apt/sources.list.d/pgdg.list",
            ],
            ["sh", "-c", f"apt-get update -q && apt-get install -y -q postgresql-client-{major}"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
