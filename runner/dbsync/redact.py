"""Keep secrets out of every message dbsync prints, logs or reports.

Passwords reach dbsync inside connection strings (URL or keyword form). Every error message
that might quote a connection string passes through :func:`redact`, which removes the
password in raw and percent-encoded form, and any ``password=...`` / ``user:pw@`` pattern.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<at>@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)
_known: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Add a secret (and its encodings) to those scrubbed from every later message. A multi-line
    secret (a private key) is also remembered line by line, should one line of it be echoed."""
    if not secret:
        return
    _known.update({secret, quote(secret, safe=""), quote(secret), unquote(secret)})
    if "\n" in secret:
        for line in secret.splitlines():
            line = line.strip()
            if len(line) >= 8 and not line.startswith("-----"):
                _known.add(line)


def secrets_of(conninfo: str) -> list[str]:
    """The password inside a connection string, if any (without raising on a bad string)."""
    found = [m.group("pw") for m in _URL_PASSWORD.finditer(conninfo)]
    found += [m.group("pw").strip("'") for m in _KEYWORD_PASSWORD.finditer(conninfo)]
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.Error:
        password = None
    if password:
        found.append(str(password))
    return found


@cache
def _any_encoding(secret: str) -> re.Pattern[str]:
    """The secret with each character either as itself or percent-encoded, in any mix."""
    parts = []
    for char in secret:
        encoded = "".join(f"%{b:02X}" for b in char.encode())
        parts.append(f"(?:{re.escape(char)}|{re.escape(encoded)}|{re.escape(encoded.lower())})")
    return re.compile("".join(parts))


def redact(text: str) -> str:
    """``text`` with every known secret (raw, percent-encoded or any mix of the two) and every
    password-looking field replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***{m.group('at')}", text)
    text = _KEYWORD_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)
    for secret in sorted(_known, key=len, reverse=True):
        if len(secret) >= 3:
            text = _any_encoding(unquote(secret)).sub("***", text)
    return text


def redact_output(chunks: list[bytes]) -> str:
    """What a child process wrote (its collected stderr), as text with the secrets removed."""
    return redact(b"".join(chunks).decode(errors="replace").strip())
