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

import contextlib
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from .connect import tool_could_not_connect
from .errors import OutcomeUnknown, RolledBack
from .outcome import Pending, ask_later, signals_held
from .pgtools import Tool, split_secret
from .redact import redact_output
from .report import commit_settled
from .sqlfiles import text_of

# A message's first line: one psql prints with its input location ("psql:<stdin>:48:
# NOTICE:  ...", or psql's own "psql:<stdin>:48: server closed the connection unexpectedly"),
# a server message with its severity, or a tool's own ("pg_restore: error: ..."). DETAIL, HINT,
# CONTEXT and wrapped lines continue the message before them.
_LOCATED = re.compile(r"^\S+:\d+: ")
_SEVERITY = re.compile(r"^(?:\S+:\d+: )?(ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|DEBUG\d?):")
_TOOL = re.compile(r"^(?:psql|pg_restore|pg_dump): ")
_NOT_A_REASON = ("WARNING", "NOTICE", "INFO", "LOG", "DEBUG")


def without_notices(text: str) -> str:
    """``text`` without its NOTICE, WARNING, INFO and LOG messages: the restore's DROP ...
    CASCADE prints notices on stderr, and those are not why anything stopped. Every other
    message is kept, psql's own (a lost connection) included."""
    kept, keep = [], True
    for line in text.splitlines():
        if match := _SEVERITY.match(line):
            keep = not match.group(1).startswith(_NOT_A_REASON)
        elif _LOCATED.match(line) or _TOOL.match(line):
            keep = True
        if keep:
            kept.append(line)
    return "\n".join(kept).strip()


def stopped_reason(tool: str, code: int | None, text: str) -> str:
    """What a client tool wrote to stderr that says why it stopped, or, when it wrote nothing
    of the kind (killed by the OOM killer or an operator), how it ended: a report saying only
    "rolled back:" leaves its reader guessing."""
    if text := without_notices(text):
        return text
    if code is None:
        return f"{tool} stopped answering"
    if code < 0:
        try:
            how = signal.Signals(-code).name
        except ValueError:
            how = f"signal {-code}"
        return f"{tool} was killed by {how} and wrote no error"
    return f"{tool} exited with code {code} and wrote no error"


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
        self._pending: Pending | None = None  # the transaction begin opened
        self.committed = False  # psql confirmed COMMIT, or the server said so (see commit)
        self.settled: str | None = None  # ... the server, after an interrupted COMMIT: the warning
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
        return redact_output(self.errors)

    def _final_errors(self) -> str:
        """What psql wrote to stderr, read to its end once psql has exited."""
        if self.proc.poll() is not None:
            self._threads[1].join(timeout=2.0)
        return self.error_text()

    def reason(self) -> str:
        """Why psql stopped: what it wrote to stderr (the server's own words), or how it ended."""
        return stopped_reason("psql", self.proc.poll(), self._final_errors())

    def send(self, data: bytes | str, *, flush: bool = False) -> None:
        """Write to psql; a psql that has stopped (an error with ON_ERROR_STOP, or killed)
        raises RolledBack with its reason, whether the write or the flush finds the pipe closed."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data.encode() if isinstance(data, str) else data)
            if flush:
                self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.proc.wait()
            raise RolledBack(
                f"the restore stopped on an error and was rolled back: {self.reason()}"
            ) from None

    def input_fd(self) -> int:
        """psql's stdin, for a child process to write into directly (after :meth:`ask`, which
        flushes what was sent; nothing else may write until that child has exited)."""
        self.send(b"", flush=True)
        assert self.proc.stdin is not None
        return self.proc.stdin.fileno()

    def send_stream(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.send(chunk)

    def ask(self, statements: str, timeout: float = 3600.0) -> list[str]:
        """Run ``statements`` and return the lines they print (between fresh markers)."""
        begin, end = f"__dbsync_{uuid.uuid4().hex}__", f"__dbsync_{uuid.uuid4().hex}__"
        self.send(f"\\echo {begin}\n{statements}\n\\echo {end}\n", flush=True)
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
                raise RolledBack(f"the restore stopped on an error and was rolled back: {self.reason()}")
            if line == begin:
                answer = []
            elif line == end and answer is not None:
                return answer
            elif answer is not None:
                answer.append(line)

    def begin(self, prelude: str = "") -> None:
        """Open the session's one transaction (then run ``prelude`` in it) and note its id, which
        :meth:`commit` checks: a COMMIT in the SQL streamed through the session would end the
        transaction early, and what ran after it would no longer be rolled back."""
        try:
            [line] = self.ask(f"BEGIN;\n{prelude}{text_of('select_transaction_id')}")
        except RolledBack:
            # psql exited before its first answer: a failed login is said as a connection's
            unreached = None
            if self.proc.poll() is not None:
                unreached = tool_could_not_connect("psql", self._final_errors(), "nothing was changed")
            if unreached is not None:
                raise unreached from None
            raise
        xid, pid = line.split("|")
        self._pending = Pending(xid, int(pid))

    def commit(self, settle: Callable[[Pending], str | None] | None = None) -> None:
        """Write COMMIT and wait for psql to confirm it, once the transaction is still the one
        :meth:`begin` opened.

        COMMIT interrupted (a signal while it is in flight, or psql stopping before confirming
        it): psql is told to cancel it (a COMMIT waiting for a synchronous standby then
        completes, one still running deferred checks fails), and once psql is gone ``settle``
        (see outcome) says from the server's commit log what became of the transaction.
        "committed" sets :attr:`committed` and :attr:`settled` (the warning for the report);
        then a signal goes on, psql's stop does not. "aborted" leaves it rolled back: the signal
        or psql's error goes on. Without an answer, OutcomeUnknown."""
        if self._pending is not None:
            [now] = self.ask(text_of("select_transaction_id"))
            if now.split("|")[0] != self._pending.xid:
                raise OutcomeUnknown(
                    "the transaction was ended before dbsync's COMMIT by a COMMIT in the SQL it ran: "
                    "what ran after that is committed, the rest may be too; restore the target "
                    "from its backup"
                )
        try:
            confirmation = self.ask("COMMIT;")
        except KeyboardInterrupt:
            self._settle(settle, None)
            raise
        except RolledBack:
            if self._settle(settle, f"psql stopped: {self.reason()}") != "committed":
                raise
            return
        del confirmation
        # psql printed the marker after COMMIT: with ON_ERROR_STOP a failed COMMIT stops it
        # before that, so the transaction is committed whatever psql does from here on.
        self.committed = True
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()

    def _settle(self, settle: Callable[[Pending], str | None] | None, stopped: str | None) -> str:
        """What became of an interrupted COMMIT (``stopped``: psql's end, else a signal), or
        OutcomeUnknown. Signals are ignored until the answer is noted."""
        with signals_held():
            self._cancel()
            pending = self._pending
            verdict = settle(pending) if settle is not None and pending is not None else None
            if verdict == "committed":
                self.committed = True
                assert pending is not None
                self.settled = commit_settled("a signal" if stopped is None else stopped, pending.xid)
        if verdict is not None:
            return verdict
        how = "interrupted while COMMIT was in flight" if stopped is None else f"{stopped} during COMMIT"
        later = f"; before running again, {ask_later(pending.xid)}" if pending is not None else ""
        raise OutcomeUnknown(
            f"{how}, and the target did not say how it ended: it holds either its old contents or "
            f"the new ones (backups list has its previous contents){later}"
        ) from None

    def _cancel(self, wait_seconds: float = 2.0) -> None:
        """Have psql cancel its statement (SIGINT: psql sends the server a cancel request, then
        a script-reading psql exits) and wait for it to go, killing it past ``wait_seconds``: the
        server ends the session's transaction once psql has gone, and outcome cancels a COMMIT
        that is still waiting then."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout=wait_seconds)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def abandon(self) -> None:
        """Kill psql before it reads COMMIT: the server rolls the transaction back."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for thread in self._threads:  # they read to the end of psql's output, now near
            thread.join(timeout=2.0)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError, ValueError):  # unsent input is dropped with psql
                if pipe is not None and not any(t.is_alive() for t in self._threads):
                    pipe.close()
