"""The module's INFO sections (`INFO ai`, `INFO MODULES`), with RedisAI's section and field names."""

from __future__ import annotations

import resource
import time

from .. import __version__, backends, reply
from ..backends import memory, onnx_figures
from ..config import config
from ..execution import blocking, executors, jobs, queues, warmup



def _seconds(value: float) -> str:
    return f"{value:.6f}"


def _thread_cpu(thread) -> float:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, TypeError, AttributeError):
        return 0.0


def sections() -> list[tuple[str, list[tuple[str, object]]]]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    main = resource.getrusage(resource.RUSAGE_THREAD)  # INFO runs on Redis's main thread
    cpu = [
        ("self_used_cpu_sys", _seconds(own.ru_stime)), ("self_used_cpu_user", _seconds(own.ru_utime)),
        ("children_used_cpu_sys", _seconds(children.ru_stime)), ("children_used_cpu_user", _seconds(children.ru_utime)),
        ("main_thread_used_cpu_sys", _seconds(main.ru_stime)), ("main_thread_used_cpu_user", _seconds(main.ru_utime)),
    ]
    queue_fields = []
    for name, queue in sorted(queues.all_queues().items()):
        for i, worker in enumerate(queue.workers, start=1):
            cpu.append((f"queue_{name}_bthread_n{i}_used_cpu_total", _seconds(_thread_cpu(worker))))
        queue_fields += _queue_fields(name, queue)
    queue_fields += [("runs_refused_queue_full", sum(q.refused for q in queues.all_queues().values())),
                     ("runs_skipped_client_gone", jobs.skipped.client_gone),
                     ("runs_skipped_deadline", jobs.skipped.deadline),
                     ("runs_timed_out", blocking.answers.timed_out)]
    loaded = sorted(executors.versions)  # what the executors imported, as they reported it
    stats = executors.memory_stats()
    run_sessions = sum(len(queue.workers) for queue in queues.all_queues().values())
    backends_info = []
    for name in loaded:
        backends_info.append((backends.REGISTRY[name].version_field, executors.versions[name]))
        if name == "ONNX":
            backends_info += [("onnxruntime_memory", onnx_figures.allocations.memory),
                              ("onnxruntime_memory_access_num", onnx_figures.allocations.accesses),
                              ("onnxruntime_maximum_run_sessions_number", run_sessions)]
    return [
        *_versions_and_configs(backends_info),
        ("cpu", cpu),
        # Beyond RedisAI: what waits or runs on each device queue, for monitoring.
        ("queues", queue_fields),
        ("backend_memory", _backend_memory(loaded, stats)),
        # Beyond RedisAI: the processes models and scripts run in, and the sandbox around them.
        ("executors", _executors(stats)),
        # Beyond RedisAI: models being built and warmed now (a server is warm when it is 0), and warm-ups
        # done, failed (the model serves cold) and skipped (no shapes known: TorchScript without WARMUP).
        ("warmup", [("warmup_pending", warmup.counts.pending), ("warmup_done", warmup.counts.done),
                    ("warmup_failed", warmup.counts.failed), ("warmup_skipped", warmup.counts.skipped)]),
    ]


def _queue_fields(name: str, queue) -> list[tuple[str, object]]:
    """One device queue: runs waiting or running (`length`, RedisAI's only figure), how many started and how
    long they waited in the queue (us, over the last WAIT_WINDOW), how many went to the executor packed with
    others, and how many it refused."""
    p50, p99 = queue.wait_percentiles_us(0.50, 0.99)
    prefix = f"queue_{name}"
    return [(f"{prefix}_length", len(queue)), (f"{prefix}_waiting", queue.waiting()),
            (f"{prefix}_running", queue.running), (f"{prefix}_started", queue.started),
            (f"{prefix}_started_newest_first", queue.started_newest_first), (f"{prefix}_packed", queue.packed),
            (f"{prefix}_wait_p50_us", p50), (f"{prefix}_wait_p99_us", p99), (f"{prefix}_refused", queue.refused)]


def _backend_memory(loaded: list[str], stats: dict[str, int]) -> list[tuple[str, object]]:
    """Beyond RedisAI: BACKEND_MEMORY_LIMIT as enforced (bytes; backends/memory.py), and per backend
    loaded, the memory its framework reports in use and at peak in the executors (summed; their latest
    figures) and the runs and loads refused for memory (in the executors, and here for outputs)."""
    budget = memory.budget
    fields: list[tuple[str, object]] = [("limit", budget.limit_bytes), ("limit_source", budget.source)]
    for name in loaded:
        prefix = name.lower()
        if f"{prefix}_used" in stats:
            fields += [(f"{prefix}_used", stats[f"{prefix}_used"]), (f"{prefix}_peak", stats[f"{prefix}_peak"])]
        fields.append((f"{prefix}_refused", budget.refused[name]))
    return fields


def _executors(stats: dict[str, int]) -> list[tuple[str, object]]:
    """What holds around the executors (the last one to start said), how many run, and their replacements."""
    layers = executors.layers
    running = executors.processes()
    fields: list[tuple[str, object]] = [
        ("executors_sandbox", "on" if executors.settings.sandbox else "off"),
        ("executors_seccomp", int(bool(layers and layers["seccomp"]))),
        ("executors_landlock_abi", layers["landlock"] if layers else 0),
        ("executors_no_new_privs", int(bool(layers and layers["no_new_privs"]))),
        ("executors_memory_bound", layers["memory"] if layers else "none"),
        ("executors_memory_limit", layers["memory_limit"] if layers else 0),
        ("executors_running", len(running)), ("executors_spares", executors.spares()),
        ("executors_started", executors.counts.started),
        ("executors_rss", stats.get("vmrss", 0)),
    ]
    fields += [(f"executors_restarts_{cause}", getattr(executors.restarts, cause)) for cause in executors.CAUSES]
    fields.append(("executors_quarantined", executors.counts.quarantined))
    fields.append(("executors_reloaded", executors.counts.reloaded))
    return fields


def _versions_and_configs(backends_info) -> list[tuple[str, list[tuple[str, object]]]]:
    return [
        ("versions", [("RedisAI_version", __version__), ("low_level_API_version", "1"), ("rdb_version", 4)]),
        ("git", [("git_sha", "unknown")]),
        ("load_time_configs", [
            ("threads_per_queue", config.threads_per_queue), ("inter_op_parallelism", config.inter_op_parallelism),
            ("intra_op_parallelism", config.intra_op_parallelism),
            ("model_execution_timeout", config.model_execution_timeout),
            ("backend_memory_limit", memory.budget.limit_bytes // memory.MB)]),
        ("backends_info", backends_info),
    ]


def reply_info(info_ctx) -> None:
    reply.info_sections(info_ctx, sections())
