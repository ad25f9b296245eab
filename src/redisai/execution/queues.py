"""One run queue per device, each served by THREADS_PER_QUEUE worker threads.

Each worker hands its jobs to its own executor process (execution/executors.py) and waits for the
answer without the GIL. Jobs wait here; a job that allows it is run together with queued jobs of the
same model (auto-batching), and other model runs waiting behind a run go to the executor with it in one
request (a pack, `_pack`). Idle workers wait on a signal from module/handoff.c: the first one spins
briefly (GIL released), so a job submitted soon after the last one starts without a thread wake-up.

Jobs start oldest first, except while the oldest has waited more than QUEUE_NEWEST_FIRST_AFTER_MS: then
the newest starts first (adaptive LIFO). Under overload the oldest are the likeliest to be abandoned by
clients that time out and retry; serving the newest answers clients that still wait, and the abandoned
ones, reached later, are skipped at no cost (jobs.Job.not_wanted).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import cbridge
from cbridge import calls

from ..domain.model import at_quantiles
from . import executors

_worker = threading.local()  # per worker thread: replies it has yet to hand to Redis


def hand_off(client, privdata) -> None:
    """RM_UnblockClient: `client` gets its reply on Redis's main thread. A worker delays this until it
    goes idle (see _take) or starts its next job, so that the main thread does not wake up only to
    wait for the GIL the worker still holds."""
    pending = getattr(_worker, "pending", None)
    if pending is None:
        calls.unblock(client, privdata)
    else:
        pending.append((client, privdata))


class Job(Protocol):
    enqueued_at: float

    def batch_group(self):
        """An object identifying jobs that may be batched together, or None."""

    def run(self) -> None: ...

    def run_batch(self, jobs: list) -> None: ...

    def finish(self) -> None:
        """Called on the worker once the job has an outcome (e.g. unblocks its client)."""


WAIT_WINDOW = 1024  # queue waits kept for the percentiles in INFO
PACK_MAX = 16  # runs taken at once for one request to the executor (DeviceQueue._pack)


@dataclass(frozen=True)
class Settings:
    """What every device queue is made with (module arguments)."""

    threads: int = 1  # THREADS_PER_QUEUE
    thread_init: Callable | None = None  # run first on each worker thread
    spin_us: int = 0  # WORKER_SPIN_US
    max_length: int = 0  # QUEUE_MAX_LENGTH: runs admitted at once (0: no bound); see admits()
    newest_first_after_ms: int = 0  # QUEUE_NEWEST_FIRST_AFTER_MS (0: always oldest first)


class DeviceQueue:
    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.max_length = settings.max_length
        self.newest_first_after_s = settings.newest_first_after_ms / 1000
        self.thread_init = settings.thread_init
        self.spin_us = settings.spin_us
        self.refused = 0
        self.started = 0  # jobs taken by a worker
        self.started_newest_first = 0
        self.packed = 0  # runs that went to the executor in one request with others (_pack)
        self.waits_us: deque = deque(maxlen=WAIT_WINDOW)  # from submit to start, appended under the lock
        # Queued jobs that must start in arrival order (model builds: a run taken before the build of its
        # model would wait for it on the worker that build needs). While any is queued, all go in order.
        self.in_order = 0
        self.jobs: deque = deque()
        # The frameworks this queue's executors import (execution/executors.py): what its models needed so far.
        self.backends: set[str] = set()
        self.lock = threading.Lock()
        shim = cbridge.shim
        self._signal = shim.RedisAI_SignalCreate()
        if self._signal == cbridge.NULL:
            raise MemoryError("cannot create a device queue")
        self._signal_id = int(cbridge.ffi.cast(cbridge.UINTPTR, self._signal))
        self._wait = shim.RedisAI_SignalWait  # cffi releases the GIL for the call
        self.running = 0
        self.workers = [threading.Thread(target=self._work, name=f"redisai-{name}-{i + 1}", daemon=True)
                        for i in range(settings.threads)]
        for worker in self.workers:
            worker.start()

    def submit(self, job) -> None:
        # TIMEOUT counts from the job's creation (for a DAG's ops: from the DAG's start); its queue wait from
        # here. No lock: an append is atomic under the GIL, and workers take jobs under the lock.
        job.queued_at = time.monotonic()
        if not job.reorderable:
            with self.lock:
                self.in_order += 1
        self.jobs.append(job)
        calls.signal_post(self._signal_id)

    def __len__(self) -> int:
        return len(self.jobs) + self.running

    def full(self) -> bool:
        return bool(self.max_length) and len(self) >= self.max_length

    def admits(self) -> bool:
        """False (counted) when the queue already holds its bound: the command is refused at once,
        before its client blocks, rather than waiting behind runs whose clients may have given up."""
        if self.full():
            self.refused += 1
            return False
        return True

    def _take(self):
        """The next job and its batch group, or (None, None) after waiting for a change. Replies
        finished meanwhile go to Redis first; the last one as the worker drops the GIL to wait."""
        seen = calls.signal_generation(self._signal_id)
        with self.lock:
            job = self._next_job() if self.jobs else None
        pending = _worker.pending
        if job is None and executors.reload_pending():
            for client, privdata in pending:
                calls.unblock(client, privdata)
            pending.clear()
            executors.reload_one()  # a replaced executor's models, between jobs
            return None, None
        last = pending.pop() if pending and job is None else (0, 0)
        for client, privdata in pending:
            calls.unblock(client, privdata)
        pending.clear()
        if job is not None:
            return job, job.batch_group()
        self._wait(self._signal, seen, self.spin_us, 0, *last)
        return None, None

    def _work(self) -> None:
        if self.thread_init is not None:
            self.thread_init()
        executors.bind(self)
        _worker.pending = []
        while True:
            job, group = self._take()
            if job is None:
                continue
            if group is not None:
                batch = self._gather(job, group)
            else:
                batch = self._pack(job) if getattr(job, "packable", None) and job.packable() else [job]
            try:
                if len(batch) == 1:
                    job.run()
                elif group is None:
                    job.run_pack(batch)
                else:
                    job.run_batch(batch)
            except BaseException:  # a job records its own errors; never lose a worker
                pass
            finally:
                with self.lock:
                    self.running -= len(batch)
                for each in batch:
                    try:
                        each.finish()
                    except BaseException:
                        pass
                # An idle worker must not keep the last job's tensors alive.
                del job, batch, each

    def _newest_first(self, now: float) -> bool:
        """Called with the lock held and a job queued: whether the next job is the newest (adaptive LIFO)."""
        oldest = self.jobs[0]
        return bool(self.newest_first_after_s and len(self.jobs) > 1 and not self.in_order
                    and now - oldest.queued_at > self.newest_first_after_s and not oldest.abandoned())

    def _next_job(self, newest_first: bool | None = None):
        """Called with the lock held and a job queued: the oldest, or the newest while the oldest has waited
        past the bound, unless the oldest is abandoned (its run is a skip: taking it keeps the queue short).
        `newest_first`: the end already chosen (by _pack, which looked at that job)."""
        now = time.monotonic()
        if self._newest_first(now) if newest_first is None else newest_first:
            job = self.jobs.pop()
            self.started_newest_first += 1
        else:
            job = self.jobs.popleft()
            if not job.reorderable:
                self.in_order -= 1
        self.running += 1
        self.started += 1
        self.waits_us.append(int((now - job.queued_at) * 1e6))
        return job

    def _pack(self, first) -> list:
        """`first` and the jobs that would start next, while they too may go in one request to the executor
        (ModelRunJob.packable), up to PACK_MAX: under load, a pack pays the executor's round trip once."""
        pack = [first]
        with self.lock:
            while self.jobs and len(pack) < PACK_MAX:
                newest_first = self._newest_first(time.monotonic())
                candidate = self.jobs[-1] if newest_first else self.jobs[0]
                packable = getattr(candidate, "packable", None)
                if packable is None or not packable():
                    break
                pack.append(self._next_job(newest_first))  # the job looked at, even if the clock moved on
            if len(pack) > 1:
                self.packed += len(pack)
        return pack

    def waiting(self) -> int:
        return len(self.jobs)

    def wait_percentiles_us(self, *quantiles: float) -> list[int]:
        """Queue waits (us, submit to start) at `quantiles` over the last WAIT_WINDOW jobs; 0 before any."""
        with self.lock:
            ordered = sorted(self.waits_us)
        return at_quantiles(ordered, quantiles)

    def _gather(self, first, group) -> list:
        """Queued jobs of the same model and shape up to BATCHSIZE, waiting for MINBATCHSIZE."""
        batch, size = [first], first.batch_size()
        while size < group.batchsize:
            seen = calls.signal_generation(self._signal_id)
            with self.lock:
                for job in list(self.jobs):
                    if size >= group.batchsize:
                        break
                    if job.batch_group() is group and first.compatible(job):
                        self.jobs.remove(job)
                        batch.append(job)
                        self.running += 1
                        self.started += 1
                        self.waits_us.append(int((time.monotonic() - job.queued_at) * 1e6))
                        size += job.batch_size()
            if size >= group.minbatchsize or size >= group.batchsize:
                break
            waited_ms = (time.monotonic() - first.enqueued_at) * 1000
            if group.minbatchtimeout and waited_ms >= group.minbatchtimeout:
                break
            timeout_us = int((group.minbatchtimeout - waited_ms) * 1000) + 1 if group.minbatchtimeout else 0
            self._wait(self._signal, seen, 0, timeout_us, 0, 0)
        return batch


class Queues:
    """The device queues, created on first use (the CPU queue at load)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._queues: dict[str, DeviceQueue] = {}
        self._lock = threading.Lock()

    def get(self, device: str) -> DeviceQueue:
        name = device.upper()
        queue = self._queues.get(name)
        if queue is None:
            with self._lock:
                queue = self._queues.get(name) or self._queues.setdefault(name, DeviceQueue(name, self.settings))
        return queue

    def all(self) -> dict[str, DeviceQueue]:
        return dict(self._queues)


_queues: Queues | None = None


def configure(settings: Settings) -> None:
    """Called once at module load, before any job."""
    global _queues
    _queues = Queues(settings)
    _queues.get("CPU")


def get(device: str) -> DeviceQueue:
    return _queues.get(device)


def all_queues() -> dict[str, DeviceQueue]:
    return _queues.all() if _queues is not None else {}
