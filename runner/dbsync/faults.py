"""Failure injection for the tests: make a named step raise, or kill the process outright.

``DBSYNC_FAULT=<checkpoint>`` raises :class:`InjectedFault` there; ``DBSYNC_FAULT=<checkpoint>:kill``
sends SIGKILL to the process, as an OOM killer would; ``DBSYNC_FAULT=<checkpoint>:term`` sends
it SIGTERM, as a cancelled CI job does (from whichever thread reached the checkpoint: the main
thread takes it wherever it is, as with a signal from outside);
``DBSYNC_FAULT=<checkpoint>:pause=<file>`` waits there until ``<file>`` exists, so a test can act
on the databases while a run is in flight. Unset (always, in production) it costs one
dictionary lookup per checkpoint.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "DBSYNC_FAULT"


class InjectedFault(RuntimeError):
    """The failure a test asked for."""


def checkpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    where, _, how = spec.partition(":")
    if where != name:
        return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "term":
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if how.startswith("pause="):
        release = Path(how.removeprefix("pause="))
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    raise InjectedFault(f"fault injected at {name}")
