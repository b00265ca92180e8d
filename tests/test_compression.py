"""dbsync.compression on its own: the --compress values, and zstd streaming both ways. Pure:
no database; the backups it makes are tested end to end in test_backup and test_restore."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import zstandard

from dbsync.compression import DEFAULT, MAX_WINDOW, Compression, compress, decompress
from dbsync.errors import BackupInvalid
from dbsync.store import CHUNK


@pytest.mark.parametrize(
    ("text", "method", "level", "pg_dump_level", "suffix"),
    [
        ("zstd", "zstd", 1, 0, ".zst"),
        ("ZSTD:9", "zstd", 9, 0, ".zst"),
        (" zstd:3 ", "zstd", 3, 0, ".zst"),
        ("0", "pg_dump", 0, 0, ""),
        ("6", "pg_dump", 6, 6, ""),
    ],
)
def test_parse(text: str, method: str, level: int, pg_dump_level: int, suffix: str) -> None:
    parsed = Compression.parse(text)
    assert (parsed.method, parsed.level, parsed.pg_dump_level, parsed.suffix) == (
        method, level, pg_dump_level, suffix
    )
    assert Compression.parse(str(parsed)) == parsed  # what --help shows as the default parses


@pytest.mark.parametrize(
    "text", ["10", "-1", "zstd:0", "zstd:10", "zstd:19", "zstd:", "gzip", "lz4", "", "1.5"]
)
def test_parse_refuses_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError, match="is not a compression: use zstd"):
        Compression.parse(text)


def test_default_is_zstd_level_1_with_pg_dump_s_own_compression_off() -> None:
    assert (DEFAULT.method, DEFAULT.level, DEFAULT.pg_dump_level) == ("zstd", 1, 0)


def test_round_trip_in_bounded_pieces_whatever_the_input_chunks() -> None:
    """Irregular input chunks (empty ones too) come back byte for byte; a frame of 64 MiB of
    zeros, a few kilobytes stored, comes out in pieces of at most CHUNK bytes, not at once."""
    data = os.urandom(3 * CHUNK + 17) + bytes(64 * CHUNK)
    pieces = [data[i : i + n] for i, n in _cuts(len(data))]
    stored = list(compress([b"", *pieces, b""], level=1))
    frame = b"".join(stored)
    assert len(frame) < 4 * CHUNK
    out = list(decompress([frame[i : i + 999] for i in range(0, len(frame), 999)] + [b""], "x"))
    assert b"".join(out) == data
    assert max(len(p) for p in out) <= CHUNK


def test_the_frame_is_what_zstd_s_command_line_reads() -> None:
    """The README's restore by hand: ``zstd -dc dump.pgdump.zst | pg_restore``."""
    data = b"PGDMP" + os.urandom(10_000)
    frame = b"".join(compress([data], level=1))
    proc = subprocess.run(["zstd", "-dc"], input=frame, capture_output=True, check=True)
    assert proc.stdout == data


def test_damage_raises_backup_invalid_naming_the_object() -> None:
    frame = bytearray(b"".join(compress([os.urandom(200_000)], level=1)))
    frame[len(frame) // 2] ^= 0xFF
    with pytest.raises(BackupInvalid, match=re.escape("s/run/dump.pgdump.zst is not a valid zstd frame")):
        b"".join(decompress([bytes(frame)], "s/run/dump.pgdump.zst"))
    with pytest.raises(BackupInvalid, match="not a valid zstd frame"):
        b"".join(decompress([b"PGDMP not zstd at all"], "x"))


def test_a_frame_asking_for_a_larger_window_than_dbsync_writes_is_refused() -> None:
    """Levels 1-9 use windows of at most 4 MiB; a frame that asks for 128 MiB was not written
    by dbsync, and is refused before the decompressor takes that memory."""
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=27)
    streaming = zstandard.ZstdCompressor(compression_params=params).compressobj()  # no size known
    frame = streaming.compress(os.urandom(1000)) + streaming.flush()
    assert zstandard.get_frame_parameters(frame).window_size == 1 << 27
    with pytest.raises(BackupInvalid, match="not a valid zstd frame"):
        b"".join(decompress([frame], "x"))
    for level in range(1, 10):
        window = zstandard.ZstdCompressionParameters.from_level(level, source_size=0).window_log
        assert 1 << window <= MAX_WINDOW


def _cuts(total: int) -> list[tuple[int, int]]:
    cuts, i, n = [], 0, 1
    while i < total:
        cuts.append((i, n))
        i += n
        n = (n * 7 + 13) % (2 * CHUNK) + 1
    return cuts
