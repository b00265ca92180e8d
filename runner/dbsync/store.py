"""Where backups live: one small interface, two backends chosen by URL.

- ``file:///path/prefix``: a folder (the default, in the user's data directory). Objects are
  written to a temporary name, fsynced, then renamed, so a reader never sees half an object.
- ``s3://bucket/prefix``: DigitalOcean Spaces or any S3-compatible endpoint, multipart upload.

Keys are relative to the store's prefix and use ``/``. A store never interprets what it holds:
backups, manifests and retention live in :mod:`dbsync.backup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from .errors import ConfigError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class Written:
    """What :meth:`BackupStore.put_stream` wrote, measured while streaming."""

    key: str
    size: int
    sha256: str


class BackupStore(Protocol):
    """The five operations backups need. Every method raises :class:`dbsync.errors.StoreError`
    (with a sentence fit for an operator) and nothing else."""

    url: str  # where it is, without secrets

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> Written:
        """Store ``chunks`` as ``key``, all or nothing: if the stream or the upload fails, no
        object named ``key`` exists afterwards (an old one is left as it was)."""
        ...

    def read_stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes, in chunks."""
        ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix``, complete: a partial listing raises instead."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and time, or None when it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing one that does not exist is not an error."""
        ...


def open_store(url: str, *, endpoint: str | None = None, region: str | None = None) -> BackupStore:
    """The store a URL names. ``s3://`` takes its endpoint and region from the arguments, the
    URL's query (``?endpoint=...&region=...``) or the environment (see :mod:`dbsync.store_s3`)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"backup store {url!r}: a file URL has no host (file:///absolute/path)")
        if not parts.path.startswith("/"):
            raise ConfigError(f"backup store {url!r}: the path must be absolute (file:///absolute/path)")
        from .store_file import FileStore

        return FileStore(parts.path)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"backup store {url!r}: name the bucket (s3://bucket/prefix)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        from .store_s3 import S3Store

        return S3Store(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint or query.get("endpoint"),
            region=region or query.get("region"),
        )
    raise ConfigError(f"backup store {url!r}: use file:///path or s3://bucket/prefix")
