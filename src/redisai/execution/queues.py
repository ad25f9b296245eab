"""One run queue per device, each served by THREADS_PER_QUEUE worker threads.

Workers run Python only around the framework calls (which release the GIL). Jobs wait here; a job
that allows it is run together with queued jobs of the same model (auto-batching). Idle workers
wait on a signal from module/handoff.c: the first one spins briefly (GIL released), so a job
submitted soon after the last one starts without a thread wake-up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

import cbridge
from cbridge import calls

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


class DeviceQueue:
    def __init__(self, name: str, threads: int, thread_init=None, spin_us: int = 0, max_length: int = 0):
        self.name = name
        self.max_length = max_length  # runs admitted at once (0: no bound); see admits()
        self.refused = 0
        self.thread_init = thread_init  # run first on each worker thread
        self.spin_us = spin_us
        self.jobs: deque = deque()
        self.lock = threading.Lock()
        shim = cbridge.shim
        self._signal = shim.RedisAI_SignalCreate()
        if self._signal == cbridge.NULL:
            raise MemoryError("cannot create a device queue")
        self._signal_id = int(cbridge.ffi.cast(cbridge.UINTPTR, self._signal))
        self._wait = shim.RedisAI_SignalWait  # cffi releases the GIL for the call
        self.running = 0
        self.workers = [threading.Thread(target=self._work, name=f"redisai-{name}-{i + 1}", daemon=True)
                        for i in range(threads)]
        for worker in self.workers:
            worker.start()

    def submit(self, job) -> None:
        # TIMEOUT counts from the job's creation (for a DAG's ops: from the DAG's start). No lock:
        # an append is atomic under the GIL, and workers take jobs under the lock.
        self.jobs.append(job)
        calls.signal_post(self._signal_id)

    def __len__(self) -> int:
        return len(self.jobs) + self.running

    def admits(self) -> bool:
        """False (counted) when the queue already holds its bound: the command is refused at once,
        before its client blocks, rather than waiting behind runs whose clients may have given up."""
        if self.max_length and len(self) >= self.max_length:
            self.refused += 1
            return False
        return True

    def _take(self):
        """The next job and its batch group, or (None, None) after waiting for a change. Replies
        finished meanwhile go to Redis first; the last one as the worker drops the GIL to wait."""
        seen = calls.signal_generation(self._signal_id)
        with self.lock:
            job = self.jobs.popleft() if self.jobs else None
            if job is not None:
                self.running += 1
        pending = _worker.pending
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
        _worker.pending = []
        while True:
            job, group = self._take()
            if job is None:
                continue
            batch = self._gather(job, group) if group is not None else [job]
            try:
                if len(batch) == 1:
                    job.run()
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

    def __init__(self, threads_per_queue: int = 1, thread_init=None, spin_us: int = 0, max_length: int = 0):
        self.threads_per_queue = threads_per_queue
        self.thread_init = thread_init
        self.spin_us = spin_us
        self.max_length = max_length
        self._queues: dict[str, DeviceQueue] = {}
        self._lock = threading.Lock()

    def get(self, device: str) -> DeviceQueue:
        name = device.upper()
        queue = self._queues.get(name)
        if queue is None:
            with self._lock:
                queue = self._queues.get(name) or self._queues.setdefault(
                    name, DeviceQueue(name, self.threads_per_queue, self.thread_init, self.spin_us, self.max_length))
        return queue

    def all(self) -> dict[str, DeviceQueue]:
        return dict(self._queues)


_queues: Queues | None = None


def configure(threads_per_queue: int, thread_init=None, spin_us: int = 0, max_length: int = 0) -> None:
    """Called once at module load, before any job; `thread_init` runs first on every worker."""
    global _queues
    _queues = Queues(threads_per_queue, thread_init, spin_us, max_length)
    _queues.get("CPU")


def get(device: str) -> DeviceQueue:
    return _queues.get(device)


def all_queues() -> dict[str, DeviceQueue]:
    return _queues.all() if _queues is not None else {}
