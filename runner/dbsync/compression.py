"""How a backup's dump is compressed: by dbsync with zstd (the default), or by pg_dump itself.

pg_dump compresses a custom-format dump with zlib inside its own single loop: it reads a row
from the server, compresses it, writes it, and only then reads the next. ``pg_restore``
inflates it again, on the machine that also runs the load. Measured on the benchmark's
production at scale 1600 (a 282 MB uncompressed archive): zlib level 1 took 2.0 s of CPU for
74 MB, zstd level 1 0.6 s for 51 MB (0.34 s to decompress), lz4 0.5 s for 105 MB.

What that buys, measured there: a backup 27% smaller, which is what crosses the network to
Spaces (a restore's load waits for the upload of the bytes it is fed, see restore._Tee), and
about 0.5-1 s less of the runner's CPU per restore (4.4-4.7 s against 4.9-5.4 s; the raw
archive's extra pipe traffic takes back part of the compression's saving). Not wall time on
the two-core benchmark machine: in five alternating rounds the restore took a median 22.3 s
against 22.1 s at zlib level 1, because staging's one backend is the critical path and the
dump's CPU ran on the other core.

So by default pg_dump writes an uncompressed archive (``--compress=0``), the restore feeds
those bytes straight to ``pg_restore`` (nothing to inflate), and dbsync compresses the copy
it stores with zstd on the dump's thread (in series with the upload, outside pg_dump's own
loop, which the pipe between them decouples). The
stored object is a single zstd frame with a content checksum, named ``dump.pgdump.zst``; by
hand it restores with ``zstd -dc dump.pgdump.zst | pg_restore ...``. An integer level
instead (``--compress 6``) keeps the former layout: pg_dump's own zlib, a ``dump.pgdump``
that pg_restore reads directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, cast

import zstandard

from .errors import BackupInvalid
from .store import CHUNK

ZSTD = "zstd"


@dataclass(frozen=True)
class Compression:
    """``method`` is ``"zstd"`` (dbsync wraps an uncompressed pg_dump archive) or ``"pg_dump"``
    (pg_dump's own zlib at ``level``, 0 meaning none)."""

    method: str
    level: int

    @classmethod
    def parse(cls, text: str | int) -> Compression:
        """``zstd``, ``zstd:N`` (1-9) or a pg_dump level ``0``-``9``; ValueError with a sentence
        otherwise. zstd's levels above 9 are refused: they compress a few percent smaller at a
        small fraction of the speed (level 19 ran at 0.6 MB/s on a pg_dump archive and needs
        about 80 MB of state), and the dump's thread, so the restore's load and the locks a
        target backup holds, would wait at that pace."""
        value = str(text).strip().lower()
        if re.fullmatch(r"[0-9]", value):
            return cls("pg_dump", int(value))
        match = re.fullmatch(r"zstd(?::([0-9]{1,2}))?", value)
        if match:
            level = int(match.group(1) or DEFAULT_ZSTD_LEVEL)
            if 1 <= level <= MAX_ZSTD_LEVEL:
                return cls(ZSTD, level)
        raise ValueError(
            f"{text!r} is not a compression: use zstd, zstd:LEVEL (1-{MAX_ZSTD_LEVEL}), or a "
            "pg_dump level 0-9"
        )

    @property
    def wrapped(self) -> bool:
        return self.method == ZSTD

    @property
    def pg_dump_level(self) -> int:
        """pg_dump's own ``--compress``: none when dbsync compresses."""
        return 0 if self.wrapped else self.level

    @property
    def suffix(self) -> str:
        """The stored dump's name after ``dump.pgdump``."""
        return ".zst" if self.wrapped else ""

    def __str__(self) -> str:
        return f"zstd:{self.level}" if self.wrapped else str(self.level)


#: zstd's level 1: the fastest of its standard levels, and on pg_dump archives both smaller and
#: three times cheaper than zlib's level 1 (figures in the module docstring). Level 3, zstd's
#: own default, cost 1.05 s for a slightly larger result on the same dump.
DEFAULT_ZSTD_LEVEL = 1
MAX_ZSTD_LEVEL = 9
DEFAULT = Compression(ZSTD, DEFAULT_ZSTD_LEVEL)
#: The largest window a stored frame may ask for: levels up to 9 use at most 8 MiB. A frame
#: asking for more was not written by dbsync and is refused before it can claim the memory.
MAX_WINDOW = 1 << 23


def compress(chunks: Iterable[bytes], level: int) -> Iterator[bytes]:
    """One zstd frame with a content checksum, streamed: memory holds one input chunk and
    zstd's window, whatever the dump's size. zstd releases the GIL while it works, so pg_dump's
    reads, the upload and the restore's feed go on beside it."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def decompress(chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
    """The archive inside a stored zstd frame, in pieces of at most :data:`CHUNK` bytes (a
    frame of zeros may expand a thousandfold: memory stays bounded all the same).

    A damaged frame fails zstd's content checksum or its decoding and raises
    :class:`BackupInvalid` naming ``what``. zstd's streaming reader does not notice a frame cut
    short; the callers compare the archive's sha256 with the manifest's ``content_sha256``,
    which does. Bytes after the frame are not read (the archive is whole without them); the
    stored object's own sha256 covers them."""
    source = cast(IO[bytes], _Reader(iter(chunks)))  # read() is all zstd calls
    try:
        reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
        yield from reader.read_to_iter(source, read_size=CHUNK, write_size=CHUNK)
    except zstandard.ZstdError as exc:
        raise BackupInvalid(f"{what} is not a valid zstd frame ({exc}): the backup is damaged") from None


class _Reader:
    """A chunk iterator as the file-like object zstd's streaming reader wants."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while not self._pending:  # an empty chunk is not the end
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = chunk
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out
