"""What every attack test asserts around the attack: the server stays up, answers PING within 50 ms
throughout, the keys it held stay as they were, and no file of the hostile corpus's targets is touched.

    with attack_on(server) as watch:
        reply = raw.call("AI.MODELSTORE", ...)
    assert watch.worst < PING_BOUND_S   # attack_on checks it on leaving, with the bystanders and the files

PING is sent on its own connection every few milliseconds from a background thread; it never needs the
GIL on the server (only AI.* commands do), so what delays it is Redis's main thread being busy: a check,
a load or a run held there. The machine is shared (two pytest workers, servers, frameworks on two
cores), so a delay over the bound is measured again by `repeat_under_watch` before it fails a test.
"""

from __future__ import annotations

import contextlib
import threading
import time

import hostile_fixtures as hf
from resp import RawConnection

PING_BOUND_S = 0.050
PING_EVERY_S = 0.005
BYSTANDERS = {"bystander:string": b"intact", "bystander:tensor": None}  # set by plant_bystanders


class PingWatch:
    """A thread that PINGs `port` until stopped; `worst` is the longest wait, `count` the PINGs answered."""

    def __init__(self, port: int):
        self.port = port
        self.worst = 0.0
        self.count = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            with RawConnection(self.port, timeout=120) as connection:
                while not self._stop.is_set():
                    start = time.perf_counter()
                    reply = connection.call("PING")
                    if reply != b"PONG":
                        raise AssertionError(f"PING answered {reply!r}")
                    self.worst = max(self.worst, time.perf_counter() - start)
                    self.count += 1
                    time.sleep(PING_EVERY_S)
        except BaseException as e:  # the server died or stopped answering: the test reports it
            self.failure = e

    def __enter__(self) -> "PingWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=150)


def plant_bystanders(port: int) -> dict:
    """Keys of other users, written before an attack: a string and a tensor. Returns what they hold."""
    with RawConnection(port) as connection:
        connection.call("SET", "bystander:string", b"intact")
        connection.call("AI.TENSORSET", "bystander:tensor", "FLOAT", 2, "VALUES", 1, 2)
        return _bystanders(connection)


def _bystanders(connection: RawConnection) -> dict:
    return {"bystander:string": connection.call("GET", "bystander:string"),
            "bystander:tensor": connection.call("AI.TENSORGET", "bystander:tensor", "META", "BLOB")}


def assert_server_fine(server, planted: dict | None = None) -> None:
    """The server is alive and answers, the bystanders hold what they held, no target file was touched."""
    assert server.alive(), f"redis-server died:\n{server.log()[-3000:]}"
    with RawConnection(server.port) as connection:
        assert connection.call("PING") == b"PONG"
        if planted is not None:
            assert _bystanders(connection) == planted, "a key of another user changed"
    assert hf.untouched(), "a hostile model read, changed or created a target file"


@contextlib.contextmanager
def attack_on(server, planted: dict | None = None):
    """Watches PING while the body runs; on leaving, asserts the server is fine (see assert_server_fine).
    The PING bound itself is the caller's to assert (or repeat_under_watch's)."""
    hf.ensure_target_files()
    with PingWatch(server.port) as watch:
        yield watch
    if watch.failure is not None:
        raise AssertionError(f"PING failed during the attack: {watch.failure!r}\n{server.log()[-3000:]}")
    assert_server_fine(server, planted)


def repeat_under_watch(server, action, tries: int = 3, planted: dict | None = None):
    """Runs `action()` (an attack that may be repeated: a refused store, a run that fails) under a PING
    watch; when a PING waited more than the bound, runs it again, up to `tries` times, since a busy
    machine can delay one PING. Returns the last result; fails when every try went over the bound."""
    worst = []
    result = None
    for _ in range(tries):
        with attack_on(server, planted) as watch:
            result = action()
        worst.append(watch.worst)
        if watch.worst < PING_BOUND_S:
            return result
    raise AssertionError(f"PING waited {[round(w * 1000, 1) for w in worst]} ms during the attack "
                         f"(bound {PING_BOUND_S * 1000:.0f} ms)")
