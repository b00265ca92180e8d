"""Finding and running pg_dump, pg_restore and psql.

A client older than the server refuses to dump it (the staging seed's "server version
mismatch"), so each tool is chosen by version: the newest installed one whose major version is
at least the server's, from Debian's ``/usr/lib/postgresql/N/bin`` and from PATH.

Passwords never go on a command line, where every user of the machine can read them: the
connection string handed to the tool has no password, and the password travels in the child's
environment (PGPASSWORD), which only the same user can read.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import ToolMissing

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Tool:
    path: str
    major: int
    version: str


@cache
def _version_of(path: str) -> Tool | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    return Tool(path, int(match.group(1)), out.strip().split(")", 1)[-1].strip())


def candidates(name: str) -> list[Tool]:
    paths = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) + sorted(
        glob.glob(f"/usr/pgsql-*/bin/{name}")
    )
    on_path = shutil.which(name)
    if on_path:
        paths.append(os.path.realpath(on_path))
    tools = [t for t in (_version_of(p) for p in dict.fromkeys(paths)) if t is not None]
    return sorted(tools, key=lambda t: t.major, reverse=True)


def find_tool(name: str, server_major: int) -> Tool:
    """The newest ``name`` of at least ``server_major``, or a ToolMissing naming what to install."""
    found = candidates(name)
    for tool in found:
        if tool.major >= server_major:
            return tool
    seen = ", ".join(f"{t.major} ({t.path})" for t in found) or "none"
    raise ToolMissing(
        f"{name} of PostgreSQL {server_major} or newer is needed for a server of version "
        f"{server_major}; installed: {seen}. Install postgresql-client-{server_major}."
    )


def server_major(version_num: int) -> int:
    return version_num // 10000


def split_secret(conninfo: str) -> tuple[str, dict[str, str]]:
    """A connection string without its password, and the environment that carries it."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env
