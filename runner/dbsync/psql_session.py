"""A psql process driven over pipes: dbsync writes its input and reads its output.

Why psql: ``pg_restore`` writes SQL with ``COPY ... FROM stdin`` data blocks that only psql
executes, and a restore that must be checked *before* COMMIT cannot use ``pg_restore
--single-transaction`` (it commits by itself). So dbsync opens the transaction, streams the
restore script through psql, runs its own checks in the same session and reads their output,
and only then writes ``COMMIT``. Until that word is written nothing is committed: if dbsync
dies, psql reads end-of-input and exits, and the server rolls the transaction back.

Output lines are collected by a thread (so a full pipe never blocks psql); markers written with
``\\echo`` delimit the answers dbsync waits for.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable

from .errors import RolledBack
from .pgtools import Tool, split_secret
from .redact import redact


class PsqlSession:
    def __init__(self, tool: Tool, conninfo: str) -> None:
        dsn, env = split_secret(conninfo)
        self.proc = subprocess.Popen(
            [tool.path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", f"--dbname={dsn}", "--file=-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.errors.append(raw)

    def error_text(self) -> str:
        return redact(b"".join(self.errors).decode(errors="replace").strip())

    def send(self, data: bytes | str) -> None:
        """Write to psql; a psql that has stopped (an error with ON_ERROR_STOP) raises RolledBack."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data.encode() if isinstance(data, str) else data)
        except (BrokenPipeError, ValueError):
            self.proc.wait()
            raise RolledBack(
                f"the restore stopped on an error and was rolled back: {self.error_text()}"
            ) from None

    def input_fd(self) -> int:
        """psql's stdin, for a child process to write into directly (after :meth:`ask`, which
        flushes what was sent; nothing else may write until that child has exited)."""
        assert self.proc.stdin is not None
        self.proc.stdin.flush()
        return self.proc.stdin.fileno()

    def send_stream(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.send(chunk)

    def ask(self, statements: str, timeout: float = 3600.0) -> list[str]:
        """Run ``statements`` and return the lines they print (between fresh markers)."""
        begin, end = f"__dbsync_{uuid.uuid4().hex}__", f"__dbsync_{uuid.uuid4().hex}__"
        self.send(f"\\echo {begin}\n{statements}\n\\echo {end}\n")
        assert self.proc.stdin is not None
        self.proc.stdin.flush()
        answer: list[str] | None = None
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise RolledBack("psql did not answer in time; the restore was rolled back") from None
                continue
            if line is None:
                self.proc.wait()
                raise RolledBack(f"the restore stopped on an error and was rolled back: {self.error_text()}")
            if line == begin:
                answer = []
            elif line == end and answer is not None:
                return answer
            elif answer is not None:
                answer.append(line)

    def commit(self) -> None:
        """Write COMMIT and wait for psql to confirm it."""
        confirmation = self.ask("COMMIT;")
        del confirmation
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait()
        if code != 0:
            raise RolledBack(f"COMMIT failed: {self.error_text()}")

    def abandon(self) -> None:
        """Kill psql before it reads COMMIT: the server rolls the transaction back."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
