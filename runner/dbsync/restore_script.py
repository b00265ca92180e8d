"""pg_restore's SQL script, made to run inside a transaction that dbsync commits itself.

Without ``--single-transaction``, pg_restore wraps the large objects' data in its own ``BEGIN;``
... ``COMMIT;``: fed into a transaction that is already open, that COMMIT commits everything
before it (the dropped old contents, the new tables and rows) and the rest runs outside any
transaction, so a failure after it could no longer be rolled back. With
``--single-transaction`` the script has exactly one ``BEGIN;``, before its first statement, and
one ``COMMIT;``, after its last; :class:`Unwrapped` removes both while the script streams
(no line parsing: the head is a few hundred bytes of comments, the tail a comment and psql's
``\\unrestrict``), so the statements join the caller's transaction and COMMIT stays the caller's.

A script of another shape is refused (:attr:`Unwrapped.complete` stays false) rather than
guessed at: its transaction control could end the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: pg_restore's option that makes its script's transaction control removable.
SINGLE_TRANSACTION = "--single-transaction"

_HEAD_LIMIT = 64 * 1024  # the BEGIN comes after pg_restore's header comments, well within this
_TAIL_KEEP = 64 * 1024  # held back so that the final COMMIT is still ours to drop at the end
_BEGIN = b"\nBEGIN;\n"
_COMMIT = b"\nCOMMIT;\n"


def _only_comments(text: bytes) -> bool:
    """What pg_restore writes before its BEGIN and after its final COMMIT: blank lines,
    comments, psql's ``\\restrict`` and ``\\unrestrict``."""
    return all(
        not line.strip() or line.startswith((b"--", b"\\restrict ", b"\\unrestrict "))
        for line in text.split(b"\n")
    )


class Unwrapped:
    """``--single-transaction`` script chunks without their ``BEGIN;`` and final ``COMMIT;``.

    Iterate it to get the chunks; once exhausted, :attr:`complete` says whether both were
    found where pg_restore writes them. A script that stopped half-way (pg_restore failed) has
    no final COMMIT: the caller reports pg_restore's own failure first."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.began = False
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        stream = iter(self._chunks)
        held = b""
        for chunk in stream:  # the head: up to and without the BEGIN line
            held += chunk
            at = held.find(_BEGIN)
            if at >= 0:
                if _only_comments(held[:at]):
                    held = held[: at + 1] + held[at + len(_BEGIN) :]
                    self.began = True
                break
            if len(held) > _HEAD_LIMIT:
                break
        for chunk in stream:  # the body, passed on as it comes, minus a held-back tail
            held += chunk
            if len(held) > 2 * _TAIL_KEEP:
                yield held[:-_TAIL_KEEP]
                held = held[-_TAIL_KEEP:]
        at = held.rfind(_COMMIT)
        if self.began and at >= 0 and _only_comments(held[at + len(_COMMIT) :]):
            held = held[: at + 1] + held[at + len(_COMMIT) :]
            self.complete = True
        if held:
            yield held
