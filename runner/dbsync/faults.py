"""Failure injection for the tests: make a named step raise, or kill the process outright.

``DBSYNC_FAULT=<checkpoint>`` raises :class:`InjectedFault` there; ``DBSYNC_FAULT=<checkpoint>:kill``
sends SIGKILL to the process, as an OOM killer or a cancelled CI job would. Unset (always, in
production) it costs one dictionary lookup per checkpoint.
"""

from __future__ import annotations

import os
import signal

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
    raise InjectedFault(f"fault injected at {name}")
