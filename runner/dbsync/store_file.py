"""The folder backend of :mod:`dbsync.store`: temp file, fsync, rename.

Greenmask's directory store writes straight onto the final path, so a crash leaves a
half-written object that looks complete; here an object appears under its name only once it is
whole and on disk. Temporary files are hidden (``.name.tmp-*``) and never listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import StoreError
from .store import CHUNK, ObjectInfo, Written

_TMP_MARK = ".tmp-"


class FileStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.url = f"file://{root}"

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StoreError(f"backup store {self.url}: invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _error(self, action: str, key: str, exc: OSError) -> StoreError:
        return StoreError(f"backup store {self.url}: cannot {action} {key!r}: {exc.strerror or exc}")

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> Written:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}{_TMP_MARK}{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        size = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            _discard(tmp)
            raise self._error("write", key, exc) from None
        except BaseException:
            _discard(tmp)
            raise
        return Written(key, size, digest.hexdigest())

    def read_stream(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except FileNotFoundError:
            raise StoreError(f"backup store {self.url}: no object {key!r}") from None
        except OSError as exc:
            raise self._error("read", key, exc) from None
        return _chunks(handle, self, key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"backup store {self.url}: {self.root} is not a folder")
        found: list[ObjectInfo] = []
        try:
            for dirpath, _dirs, files in os.walk(self.root, onerror=_raise):
                for name in files:
                    if name.startswith(".") and _TMP_MARK in name:
                        continue
                    full = Path(dirpath) / name
                    key = full.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        stat = full.stat()
                        found.append(
                            ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
                        )
        except OSError as exc:
            raise self._error("list", prefix or "/", exc) from None
        return sorted(found, key=lambda o: o.key)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error("inspect", key, exc) from None
        if not path.is_file():
            return None  # a folder is a key prefix, not an object
        return ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        except OSError as exc:
            raise self._error("delete", key, exc) from None


def _discard(tmp: Path) -> None:
    """Remove a temporary file if there is one (its folder may not even exist)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def _raise(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _chunks(handle: object, store: FileStore, key: str) -> Iterator[bytes]:
    import io

    assert isinstance(handle, io.BufferedReader)
    with handle:
        try:
            while chunk := handle.read(CHUNK):
                yield chunk
        except OSError as exc:
            raise store._error("read", key, exc) from None
