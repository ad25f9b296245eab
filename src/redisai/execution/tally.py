"""Named counters that worker threads, the deadline thread and the main thread add to (INFO ai)."""

from __future__ import annotations

import threading


class Tally:
    def __init__(self, *names: str):
        self._lock = threading.Lock()
        for name in names:
            setattr(self, name, 0)

    def add(self, name: str, by: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + by)
