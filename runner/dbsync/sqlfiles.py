"""Load the SQL files of ``sql/`` and bind their psql variables safely.

Each file is plain SQL that a DBA can run with ``psql -v name=value -f file.sql``. Its
variables use psql's own syntax, which we bind with :mod:`psycopg.sql` so that nothing is ever
spliced in as unquoted text by accident:

- ``:'name'`` a literal (``sql.Literal``),
- ``:"name"`` an identifier (``sql.Identifier``, or a ready ``Composable`` such as a
  schema-qualified name),
- ``:name``  a fragment of SQL that the caller composed (a column list, a condition).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from psycopg import sql

# A psql variable: not preceded by ':' or a word character (so '::text' casts are left alone).
_VARIABLE = re.compile(r"(?<![:\w]):(?:'(\w+)'|\"(\w+)\"|([A-Za-z_]\w*))")


def _sql_dir() -> Traversable:
    """``sql/`` as installed in the wheel (package ``dbsync.sql``), else the source tree's
    (an editable install maps only the top-level package)."""
    try:
        return resources.files("dbsync.sql")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "sql"


@cache
def text_of(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return (_sql_dir() / f"{name}.sql").read_text(encoding="utf-8")


def query(name: str, **variables: Any) -> sql.Composed:
    """Compose ``sql/<name>.sql`` with its psql variables bound to ``variables``."""
    text = text_of(name)
    parts: list[sql.Composable] = []
    pos = 0
    for match in _VARIABLE.finditer(text):
        literal, identifier, fragment = match.groups()
        parts.append(sql.SQL(text[pos : match.start()]))
        pos = match.end()
        key = literal or identifier or fragment
        if key not in variables:
            raise KeyError(f"sql/{name}.sql needs the variable {key!r}")
        value = variables[key]
        if literal:
            parts.append(sql.Literal(value))
        elif isinstance(value, sql.Composable):
            parts.append(value)
        elif identifier:
            parts.append(sql.Identifier(value))
        else:
            raise TypeError(f"sql/{name}.sql: fragment {key!r} must be a psycopg.sql.Composable")
    parts.append(sql.SQL(text[pos:]))
    return sql.Composed(parts)
