"""Blocked clients: a command blocks its client, a worker finishes the job, and the reply (with any
key writes) happens back on Redis's main thread in `reply`.

Redis carries an outcome (module/outcome.c) as the blocked client's private data: either one the
worker prepared, which the main thread replies from without Python, or the id of a job waiting in
`_pending`, which `reply` answers in Python.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
import time

import cbridge
from cbridge import calls, outcome, rm

from . import queues, script_host
from .tally import Tally

_pending: dict[int, object] = {}
_blocked: dict[int, object] = {}  # blocked client -> its job (or DAG), until it is unblocked
# Tests lose every outcome answered in Python (REDISAI_REPLY_FAULTS=lost_outcome) to reach reply()'s guard.
_LOSE_OUTCOMES = "lost_outcome" in os.environ.get("REDISAI_REPLY_FAULTS", "").split(",")
_ids = itertools.count(1)


answers = Tally("timed_out")  # TIMEDOUT answers: a run or DAG past its TIMEOUT (INFO ai, runs_timed_out)


def block(ctx, job, on_reply, timeout_ms: int = 0, prepare=None) -> None:
    """Blocks the calling client until `job` is finished; then `on_reply(ctx, job)` runs on the main thread.

    `prepare(job)`, if given, runs on the worker first and may return a prepared outcome (an address
    from `outcome`) that the main thread replies from in C; when it returns None or raises, `on_reply`
    answers as usual.

    With a timeout, the client gets TIMEDOUT at the deadline even if the run never ends (a model stuck
    in a loop keeps its worker, but not its client); the job's outcome is then dropped. The deadline is
    ours, not Redis's: Redis 7.0 drops the reply of a client whose RM_UnblockClient lands between its
    deadline and the event loop's next timeout check (the timeout callback skips an unblocked client,
    then the client is detached and the reply callback never runs). Here whichever comes first, the
    outcome or the deadline, claims the one RM_UnblockClient.
    """
    client = calls.block(ctx)
    _blocked[client] = job
    job.reply = on_reply
    if getattr(job, "wants_caller", False):  # a script run: its redis.execute calls run as this client
        job.caller = script_host.capture(ctx)

    def unblock(finished) -> None:
        _blocked.pop(client, None)
        if getattr(finished, "timed_out", False):
            answers.add("timed_out")
        queues.hand_off(client, _outcome_of(finished, prepare))

    if not timeout_ms:
        job.on_finish = unblock
        return
    claim = threading.Lock()  # acquired once, by the outcome or by the deadline

    def claimed_unblock(finished) -> None:
        if claim.acquire(blocking=False):  # else the deadline answered already
            _deadlines.cancel(entry)
            unblock(finished)

    def deadline() -> None:
        if not claim.acquire(blocking=False):
            return
        _blocked.pop(client, None)
        answers.add("timed_out")
        calls.unblock(client, outcome.status(b"TIMEDOUT"))

    job.on_finish = claimed_unblock
    entry = _deadlines.add(time.monotonic() + timeout_ms / 1000, deadline)


class _Deadlines:
    """One thread that calls each callback at its time (TIMEOUT of runs and DAGs).

    It wakes as rarely as it can, since under load every wake takes the GIL and a core from the runs: a new
    deadline wakes it only when it is the earliest, deadlines are rounded up to TICK_S so that those close
    together are met in one wake (a TIMEDOUT answer may come up to TICK_S late, never early), and one whose
    run answered first is dropped when reached without a call."""

    TICK_S = 0.005

    def __init__(self):
        self._heap: list = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, at: float, callback) -> list:
        """Schedules callback() at `at`; returns the entry, which cancel() drops."""
        at = math.ceil(at / self.TICK_S) * self.TICK_S
        entry = [at, next(self._order), callback]
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="redisai-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._wake.notify()
        return entry

    @staticmethod
    def cancel(entry: list) -> None:
        entry[2] = None  # one store, atomic under the GIL: the loop skips the entry

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                now, due = time.monotonic(), []
                while self._heap and self._heap[0][0] <= now:
                    callback = heapq.heappop(self._heap)[2]
                    if callback is not None:
                        due.append(callback)
            for callback in due:
                try:
                    callback()
                except Exception:  # a deadline must never stop the others
                    cbridge.log("warning", "a TIMEOUT deadline failed")


_deadlines = _Deadlines()


def _outcome_of(job, prepare) -> int:
    if prepare is not None:
        try:
            prepared = prepare(job)
        except Exception:  # the reply callback meets the same problem and answers it
            prepared = None
        if prepared is not None:
            return prepared
    job_id = next(_ids)
    if not _LOSE_OUTCOMES:
        _pending[job_id] = job
    return outcome.python(job_id)


def reply(ctx, job_id: int) -> None:
    """RedisAI_Unblocked, for an outcome that Python answers: the client gets its reply."""
    job = _pending.pop(job_id, None)
    if job is None:  # never leave a client without a reply
        cbridge.log("warning", f"no outcome for blocked client job {job_id}")
        return rm.ReplyWithError(ctx, b"ERR internal error: the run's outcome was lost (see the server log)")
    job.reply(ctx, job)


def client_left(client: int) -> None:
    """RedisAI_Disconnected: the client went while blocked; a run of its not yet started never starts
    (a DAG starts no further op). Redis drops the outcome when the client is unblocked."""
    job = _blocked.pop(client, None)
    if job is not None:
        job.client_left = True


def free(job_id: int) -> None:
    """RedisAI_FreePrivdata: for a client that disconnected before its reply (the shim skips the call
    after a reply, which already dropped the job)."""
    _pending.pop(job_id, None)


def can_block(ctx) -> bool:
    flags = calls.context_flags(ctx)
    return not flags & (cbridge.CTX_FLAGS_MULTI | cbridge.CTX_FLAGS_LUA | cbridge.CTX_FLAGS_DENY_BLOCKING
                        | cbridge.CTX_FLAGS_REPLICATED | cbridge.CTX_FLAGS_LOADING)
