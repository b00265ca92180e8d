"""Work that runs beside a run's main thread and hands its outcome to whoever waits for it.

A run overlaps slow, independent work with its own steps (a backup's read-back, production's
fingerprint, production's dump): the main thread decides when it needs the result, and the
failure, if any, is raised there, in the step that waited, not lost on a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """A function run on a daemon thread; :meth:`result` waits and returns or raises."""

    def __init__(
        self, fn: Callable[[], T], name: str, on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        self._value: T | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # handed to whoever waits
                self.error = exc
                if on_error is not None:
                    on_error(exc)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> T:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self._value is not None
        return self._value
