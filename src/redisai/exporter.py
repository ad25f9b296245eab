"""Prometheus metrics of one or more Redis servers with the RedisAI module loaded (``redisai exporter``).

Each scrape asks every server, in parallel, for ``INFO ai`` and for its model and script keys
(``AI._MODELSCAN``, ``AI._SCRIPTSCAN``, then ``AI.INFO <key> EXTENDED`` for each, pipelined), and builds
fresh metric families from the answers (a ``prometheus_client`` custom collector). Every sample carries a
``server`` label, its host:port (or a name given as ``NAME=ADDRESS``; never a password); a server that does
not answer gives ``redisai_up 0`` and nothing else, and the scrape still succeeds. Times are in seconds and
sizes in bytes (the server counts µs).

    handle = start(["127.0.0.1:6379", "cache=redis://:secret@10.0.0.5:6380/0"], port=0)
    handle.url      # http://127.0.0.1:<port>/metrics
    handle.stop()

``METRICS`` lists every family the exporter can emit (the README's table is the same list).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

log = logging.getLogger("redisai.exporter")

DEFAULT_LISTEN = "127.0.0.1:9597"
DEFAULT_MAX_KEYS = 500
DEFAULT_TIMEOUT = 2.0
US_PER_SECOND = 1e6

KEY_LABELS = ("key", "type", "backend", "device")

# name -> (type, labels after `server`, help). Counters are named with their `_total`; a summary's samples are
# `name{quantile=...}`, `name_sum` and `name_count` (SUMMARY_PARTS).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "redisai_up": ("gauge", (), "1 when the server answered INFO ai with the module's fields, else 0"),
    "redisai_scrape_duration_seconds": ("gauge", (), "time this scrape spent on the server"),
    "redisai_info": ("gauge", ("version",), "1, labelled with the RedisAI version the module speaks"),
    "redisai_backend_info": ("gauge", ("framework", "version"), "1 per framework imported, with its version"),
    "redisai_threads_per_queue": ("gauge", (), "THREADS_PER_QUEUE: worker threads per device queue"),
    # cpu
    "redisai_process_cpu_seconds_total": ("counter", ("mode",), "CPU time of the server process (mode sys, user)"),
    "redisai_children_cpu_seconds_total": ("counter", ("mode",), "CPU time of its children (BGSAVE, AOF rewrite)"),
    "redisai_main_thread_cpu_seconds_total": ("counter", ("mode",), "CPU time of Redis's main thread"),
    "redisai_queue_worker_cpu_seconds_total": ("counter", ("device", "worker"), "CPU time of each queue worker"),
    # queues
    "redisai_queue_length": ("gauge", ("device",), "runs waiting or running on the device queue"),
    "redisai_queue_waiting": ("gauge", ("device",), "runs waiting to start on the device queue"),
    "redisai_queue_running": ("gauge", ("device",), "runs running now on the device queue"),
    "redisai_queue_started_total": ("counter", ("device",), "jobs the device queue started"),
    "redisai_queue_started_newest_first_total": ("counter", ("device",),
                                                 "jobs started newest first (QUEUE_NEWEST_FIRST_AFTER_MS)"),
    "redisai_queue_packed_total": ("counter", ("device",),
                                   "runs sent to the executor in one request with other queued runs"),
    "redisai_queue_wait_seconds": ("summary", ("device",),
                                   "time from entering the queue to starting, over its last 1024 jobs (quantile "
                                   "0.5, 0.99; no _sum or _count: the server keeps no total)"),
    "redisai_queue_refused_total": ("counter", ("device",), "runs the device queue refused at QUEUE_MAX_LENGTH"),
    "redisai_runs_refused_queue_full_total": ("counter", (), "runs refused because their queue was full"),
    "redisai_runs_skipped_total": ("counter", ("reason",),
                                   "runs never started: client_gone (it disconnected), deadline (TIMEOUT passed)"),
    "redisai_runs_timed_out_total": ("counter", (), "runs and DAGs answered TIMEDOUT"),
    # backend memory
    "redisai_backend_memory_limit_bytes": ("gauge", ("source",),
                                           "BACKEND_MEMORY_LIMIT in force, 0 for none (source: "
                                           "BACKEND_MEMORY_LIMIT, derived, none)"),
    "redisai_backend_memory_used_bytes": ("gauge", ("backend",), "memory the framework holds now"),
    "redisai_backend_memory_peak_bytes": ("gauge", ("backend",), "most memory the framework held since start"),
    "redisai_backend_memory_refused_total": ("counter", ("backend",), "runs and loads refused by the memory limit"),
    "redisai_onnxruntime_memory_bytes": ("gauge", (), "onnxruntime memory as RedisAI counted it (INFO backends_info)"),
    # warm-up
    "redisai_warmup_pending": ("gauge", (), "models being built or warmed up now (0: the server is warm)"),
    "redisai_warmups_total": ("counter", ("result",), "warm-ups ended: done, failed (the model serves cold), "
                                                      "skipped (no input shapes known)"),
    # executors
    "redisai_executors_running": ("gauge", (), "executor processes running (one per worker thread that has run a job)"),
    "redisai_executors_spares": ("gauge", (), "spare executors ready to take over (EXECUTOR_SPARE ON)"),
    "redisai_executors_rss_bytes": ("gauge", (), "resident memory of the executors, summed (their latest figures)"),
    "redisai_executors_sandbox": ("gauge", ("layer",), "1 where the executors' sandbox layer holds (layer: seccomp, "
                                                       "landlock, no_new_privs, memory_bound), else 0"),
    "redisai_executor_restarts_total": ("counter", ("cause",), "executors replaced, by cause: crash, memory, "
                                                               "deadline, exit, protocol"),
    "redisai_executors_quarantined_total": ("counter", (), "models and scripts quarantined for bringing their "
                                                           "executor down QUARANTINE_AFTER times"),
    # keys
    "redisai_models": ("gauge", ("type",), "model and script keys on the server (type model, script)"),
    "redisai_models_truncated": ("gauge", (), "1 when there were more keys than --max-keys and the rest are left out"),
    "redisai_model_info": ("gauge", (*KEY_LABELS, "tag"), "1 per model or script key, with its tag"),
    "redisai_model_calls_total": ("counter", KEY_LABELS, "runs asked of the key (failed ones included)"),
    "redisai_model_runs_total": ("counter", KEY_LABELS,
                                 "backend invocations: fewer than calls when auto-batching joins them"),
    "redisai_model_errors_total": ("counter", KEY_LABELS, "calls that failed"),
    "redisai_model_samples_total": ("counter", KEY_LABELS, "samples (batch rows) of successful calls (models only)"),
    "redisai_model_duration_seconds": ("summary", KEY_LABELS,
                                       "run time of successful calls: quantile 0.5, 0.95, 0.99 over the last 1024 "
                                       "calls; _sum and _count since start or RESETSTAT"),
    "redisai_model_batch_size_mean": ("gauge", KEY_LABELS, "samples / runs since start or RESETSTAT (models only)"),
    "redisai_model_memory_bytes": ("gauge", KEY_LABELS, "bytes of the stored model or script source"),
}


SUMMARY_PARTS = ("_sum", "_count")
QUANTILES_ONLY = {"redisai_queue_wait_seconds"}  # summaries without _sum and _count: the server keeps no totals


def family_names() -> set[str]:
    """Every metric family the exporter can emit, as the README's table names them (a counter's with `_total`)."""
    return set(METRICS)


def sample_names() -> set[str]:
    """Every sample name the exporter can emit (a counter's with `_total`, a summary's `_sum` and `_count`)."""
    names = set(METRICS)
    for name, (kind, _, _) in METRICS.items():
        if kind == "summary" and name not in QUANTILES_ONLY:
            names.update(name + part for part in SUMMARY_PARTS)
    return names


def _family_of(sample_name: str) -> str:
    if sample_name in METRICS:
        return sample_name
    family, _, part = sample_name.rpartition("_")
    if METRICS.get(family, ("",))[0] == "summary" and f"_{part}" in SUMMARY_PARTS:
        return family
    raise KeyError(sample_name)


# --------------------------------------------------------------------------------------------
# INFO ai
# --------------------------------------------------------------------------------------------

QUEUE_FIELD = re.compile(r"ai_queue_(?P<device>.+)_(?P<field>length|waiting|running|started_newest_first|started|packed|"
                         r"wait_p50_us|wait_p99_us|refused)")
WORKER_CPU = re.compile(r"ai_queue_(?P<device>.+)_bthread_n(?P<worker>\d+)_used_cpu_total")
BACKEND_MEMORY = re.compile(r"ai_(?P<backend>tf|tflite|torch|onnx)_(?P<field>used|peak|refused)")
FRAMEWORK_VERSION = re.compile(r"ai_(?P<framework>TensorFlow|TensorFlowLite|Torch|onnxruntime)_version")
WARMUP_RESULTS = {"ai_warmup_done": "done", "ai_warmup_failed": "failed", "ai_warmup_skipped": "skipped"}
EXECUTOR_RESTARTS = re.compile(r"ai_executors_restarts_(?P<cause>\w+)")
SANDBOX_LAYERS = {"ai_executors_seccomp": "seccomp", "ai_executors_landlock_abi": "landlock",
                  "ai_executors_no_new_privs": "no_new_privs", "ai_executors_memory_bound": "memory_bound"}
CPU_FIELDS = {
    "ai_self_used_cpu_sys": ("redisai_process_cpu_seconds_total", "sys"),
    "ai_self_used_cpu_user": ("redisai_process_cpu_seconds_total", "user"),
    "ai_children_used_cpu_sys": ("redisai_children_cpu_seconds_total", "sys"),
    "ai_children_used_cpu_user": ("redisai_children_cpu_seconds_total", "user"),
    "ai_main_thread_used_cpu_sys": ("redisai_main_thread_cpu_seconds_total", "sys"),
    "ai_main_thread_used_cpu_user": ("redisai_main_thread_cpu_seconds_total", "user"),
}
QUEUE_METRICS = {
    "length": "redisai_queue_length", "waiting": "redisai_queue_waiting", "running": "redisai_queue_running",
    "started": "redisai_queue_started_total", "started_newest_first": "redisai_queue_started_newest_first_total",
    "refused": "redisai_queue_refused_total", "packed": "redisai_queue_packed_total",
}
TOTALS = {
    "ai_runs_refused_queue_full": ("redisai_runs_refused_queue_full_total", {}),
    "ai_runs_skipped_client_gone": ("redisai_runs_skipped_total", {"reason": "client_gone"}),
    "ai_runs_skipped_deadline": ("redisai_runs_skipped_total", {"reason": "deadline"}),
    "ai_runs_timed_out": ("redisai_runs_timed_out_total", {}),
}


def parse_info(text: str) -> dict[str, str]:
    """``INFO ai``'s raw text -> {field: value}. Device names hold ``:`` (``ai_queue_CPU:1_length:0``), so
    queue lines split at their last colon; redis-py's own parser splits at the first."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("ai_queue_"):
            key, sep, value = line.rpartition(":")
        else:
            key, sep, value = line.partition(":")
        if sep:
            fields[key] = value
    return fields


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class _Samples:
    """Samples of one server, by sample name; `server` is added to every one (and `quantile` last to a
    summary's quantiles)."""

    def __init__(self, server: str):
        self.server = server
        self.by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}

    def add(self, name: str, value, **labels: str) -> None:
        number = _number(value)
        if number is None:
            return
        family = _family_of(name)
        kind, names, _ = METRICS[family]
        if kind == "summary" and name == family:
            names = (*names, "quantile")
        self.by_name.setdefault(name, []).append(((self.server, *(str(labels[n]) for n in names)), number))


def info_samples(samples: _Samples, fields: dict[str, str]) -> None:
    """The families that come from ``INFO ai``."""
    version = fields.get("ai_RedisAI_version")
    if version is not None:
        samples.add("redisai_info", 1, version=version)
    samples.add("redisai_threads_per_queue", fields.get("ai_threads_per_queue"))
    if "ai_limit" in fields:
        samples.add("redisai_backend_memory_limit_bytes", fields["ai_limit"],
                    source=fields.get("ai_limit_source", ""))
    samples.add("redisai_onnxruntime_memory_bytes", fields.get("ai_onnxruntime_memory"))
    samples.add("redisai_warmup_pending", fields.get("ai_warmup_pending"))  # absent from older servers
    for key, value in fields.items():
        if key in CPU_FIELDS:
            name, mode = CPU_FIELDS[key]
            samples.add(name, value, mode=mode)
        elif key in TOTALS:
            name, labels = TOTALS[key]
            samples.add(name, value, **labels)
        elif m := WORKER_CPU.fullmatch(key):
            samples.add("redisai_queue_worker_cpu_seconds_total", value, device=m["device"], worker=m["worker"])
        elif m := QUEUE_FIELD.fullmatch(key):
            field_name, device = m["field"], m["device"]
            if field_name.startswith("wait_p"):
                number = _number(value)
                quantile = "0.5" if field_name == "wait_p50_us" else "0.99"
                if number is not None:
                    samples.add("redisai_queue_wait_seconds", number / US_PER_SECOND, device=device, quantile=quantile)
            else:
                samples.add(QUEUE_METRICS[field_name], value, device=device)
        elif m := BACKEND_MEMORY.fullmatch(key):
            name = {"used": "redisai_backend_memory_used_bytes", "peak": "redisai_backend_memory_peak_bytes",
                    "refused": "redisai_backend_memory_refused_total"}[m["field"]]
            samples.add(name, value, backend=m["backend"])
        elif m := FRAMEWORK_VERSION.fullmatch(key):
            samples.add("redisai_backend_info", 1, framework=m["framework"], version=value)
        elif key in WARMUP_RESULTS:
            samples.add("redisai_warmups_total", value, result=WARMUP_RESULTS[key])
        elif m := EXECUTOR_RESTARTS.fullmatch(key):
            samples.add("redisai_executor_restarts_total", value, cause=m["cause"])
        elif key in SANDBOX_LAYERS:  # the Landlock ABI's number and the bound's name say 0 or "none" when absent
            samples.add("redisai_executors_sandbox", int(value not in ("0", "none", 0)), layer=SANDBOX_LAYERS[key])
    samples.add("redisai_executors_running", fields.get("ai_executors_running"))
    samples.add("redisai_executors_spares", fields.get("ai_executors_spares"))
    samples.add("redisai_executors_rss_bytes", fields.get("ai_executors_rss"))
    samples.add("redisai_executors_quarantined_total", fields.get("ai_executors_quarantined"))


# --------------------------------------------------------------------------------------------
# per key
# --------------------------------------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def key_samples(samples: _Samples, reply) -> None:
    """The families of one ``AI.INFO <key> EXTENDED`` reply (a flat field/value list)."""
    info = {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    kind = _text(info.get("type", "")).lower()
    labels = {"key": _text(info.get("key", "")), "type": kind, "backend": _text(info.get("backend", "")),
              "device": _text(info.get("device", ""))}
    samples.add("redisai_model_info", 1, **labels, tag=_text(info.get("tag", "")))
    for field_name, name in (("calls", "redisai_model_calls_total"), ("runs", "redisai_model_runs_total"),
                             ("errors", "redisai_model_errors_total"), ("memory", "redisai_model_memory_bytes")):
        samples.add(name, info.get(field_name), **labels)
    for field_name, quantile in (("duration_p50", "0.5"), ("duration_p95", "0.95"), ("duration_p99", "0.99")):
        value = _number(info.get(field_name))
        if value is not None:
            samples.add("redisai_model_duration_seconds", value / US_PER_SECOND, **labels, quantile=quantile)
    # `duration` sums the successful calls' run times: calls less errors is how many it sums.
    duration, calls, errors = (_number(info.get(name)) for name in ("duration", "calls", "errors"))
    if duration is not None and calls is not None:
        samples.add("redisai_model_duration_seconds_sum", duration / US_PER_SECOND, **labels)
        samples.add("redisai_model_duration_seconds_count", calls - (errors or 0), **labels)
    sample_count, runs = _number(info.get("samples")), _number(info.get("runs"))
    if kind == "model" and sample_count is not None and sample_count >= 0:
        samples.add("redisai_model_samples_total", sample_count, **labels)
        if runs:
            samples.add("redisai_model_batch_size_mean", sample_count / runs, **labels)


# --------------------------------------------------------------------------------------------
# one server
# --------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One server: `name` is its `server` label, `kwargs` redis.Redis's keyword arguments. `target()` makes one
    from an address string, as `start()` and the command line do."""

    name: str
    kwargs: dict = field(default_factory=dict)


NAMED_ADDRESS = re.compile(r"(?P<name>[\w.-]+)=(?P<address>.+)")
USERINFO = re.compile(r"(?<=://)[^/@]*@")


def target(address: str | Target, defaults: dict | None = None) -> Target:
    """A server address -> a Target: ``redis://[user:password@]host:port[/db]``, ``rediss://...`` (TLS),
    ``unix:///path``, ``host:port``, ``[v6]:port`` or ``host``; ``NAME=ADDRESS`` labels it NAME.

    `defaults` (redis.Redis keyword arguments: ``password``, ``username``, ``ssl``, ``port``, ``db``) fill in what
    the address does not name. The `server` label is NAME, else ``host:port`` (a socket's path): never the
    address's user or password, which would reach Prometheus and the logs. A Target is returned as it is, but
    for a password in a URL-like name, which is cut out. ValueError for an address that is none of these."""
    if isinstance(address, Target):
        return Target(USERINFO.sub("", address.name), address.kwargs)
    named = NAMED_ADDRESS.fullmatch(address)
    label, address = (named["name"], named["address"]) if named else (None, address)
    kwargs = {"port": 6379, **(defaults or {})}
    if "://" in address:
        parsed = parse_url(address)  # ValueError for another scheme
        connection_class = parsed.pop("connection_class", None)
        if connection_class is redis.SSLConnection:
            kwargs["ssl"] = True
        elif connection_class is redis.UnixDomainSocketConnection:
            kwargs.pop("port")
            kwargs["unix_socket_path"] = parsed.pop("path")
        kwargs.update({k: v for k, v in parsed.items() if v is not None})  # a URL without a password keeps it
    else:
        host, sep, port = address.rpartition(":")
        if not sep or host.startswith("[") != host.endswith("]") or address.endswith("]"):  # no port
            host, port = address, str(kwargs["port"])
        if not port.isdigit() or not host.strip("[]"):
            raise ValueError(f"invalid server address {address!r} (redis://host:port or host:port)")
        kwargs.update(host=host.strip("[]"), port=int(port))
    if label is None:
        label = kwargs.get("unix_socket_path") or _host_port(kwargs.get("host", "127.0.0.1"), kwargs["port"])
    return Target(label, kwargs)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Server:
    """One redis-py connection to one server (reopened on the next scrape after a failure)."""

    def __init__(self, target: Target, timeout: float, max_keys: int):
        self.name = target.name
        self.max_keys = max_keys
        kwargs = {k: v for k, v in target.kwargs.items() if k not in ("socket_timeout", "socket_connect_timeout")}
        kwargs.setdefault("protocol", 2)
        pool = redis.ConnectionPool(max_connections=1, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    retry=Retry(NoBackoff(), 0), **_pool_kwargs(kwargs))
        self.client = redis.Redis(connection_pool=pool)
        self.client.set_response_callback("INFO", lambda response, **options: response)  # the raw text
        self.lock = threading.Lock()  # one scrape at a time on the one connection
        self.was_up: bool | None = None

    def collect(self) -> _Samples:
        with self.lock:
            samples = _Samples(self.name)
            started = time.monotonic()
            try:
                fields = parse_info(_text(self.client.execute_command("INFO", "ai")))
                if "ai_RedisAI_version" not in fields:
                    raise redis.ResponseError("INFO ai has no RedisAI fields (is the module loaded?)")
                info_samples(samples, fields)
                self._keys(samples)
                up, error = 1, None
            except (redis.RedisError, OSError) as e:
                self.client.connection_pool.disconnect()
                samples = _Samples(self.name)
                up, error = 0, e
            if up != self.was_up:
                if up:
                    log.info("%s: up", self.name)
                else:
                    log.warning("%s: down: %s", self.name, error)
                self.was_up = bool(up)
            samples.add("redisai_up", up)
            samples.add("redisai_scrape_duration_seconds", time.monotonic() - started)
            return samples

    def _keys(self, samples: _Samples) -> None:
        keys = []
        for kind, command in (("model", "AI._MODELSCAN"), ("script", "AI._SCRIPTSCAN")):
            found = sorted(bytes(pair[0]) for pair in self.client.execute_command(command))
            samples.add("redisai_models", len(found), type=kind)
            keys += found
        chosen = keys[:self.max_keys]
        samples.add("redisai_models_truncated", int(len(keys) > len(chosen)))
        if not chosen:
            return
        pipe = self.client.pipeline(transaction=False)
        for key in chosen:
            pipe.execute_command("AI.INFO", key, "EXTENDED")
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, list):  # else deleted since the scan
                key_samples(samples, reply)

    def close(self) -> None:
        self.client.connection_pool.disconnect()


def _pool_kwargs(kwargs: dict) -> dict:
    """redis.Redis keyword arguments -> ConnectionPool's (ssl=True picks the TLS connection class)."""
    kwargs = dict(kwargs)
    if kwargs.pop("ssl", False):
        kwargs["connection_class"] = redis.SSLConnection
    elif "unix_socket_path" in kwargs:
        kwargs["connection_class"] = redis.UnixDomainSocketConnection
        kwargs["path"] = kwargs.pop("unix_socket_path")
        kwargs.pop("host", None)
        kwargs.pop("port", None)
    return kwargs


# --------------------------------------------------------------------------------------------
# collector and HTTP server
# --------------------------------------------------------------------------------------------


class RedisAICollector:
    """A prometheus_client collector: every collect() scrapes all servers (in parallel) afresh."""

    def __init__(self, targets: Sequence[Target], timeout: float = DEFAULT_TIMEOUT, max_keys: int = DEFAULT_MAX_KEYS):
        if not targets:
            raise ValueError("no server to export")
        names = [t.name for t in targets]
        if len(set(names)) < len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"two servers labelled {', '.join(twice)}: label them with NAME=ADDRESS")
        self.servers = [_Server(target, timeout, max_keys) for target in targets]
        self.pool = ThreadPoolExecutor(max_workers=min(16, len(self.servers)), thread_name_prefix="redisai-scrape")

    def collect(self) -> Iterable[Metric]:
        results = list(self.pool.map(lambda server: server.collect(), self.servers))
        for name, (kind, labels, doc) in METRICS.items():
            if kind == "summary":
                family = _summary(name, doc, ("server", *labels), results)
            else:
                family_class = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                family = family_class(name, doc, labels=("server", *labels))
                for samples in results:
                    for label_values, value in samples.by_name.get(name, ()):
                        family.add_metric(label_values, value)
            if family.samples:
                yield family

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for server in self.servers:
            server.close()


def _summary(name: str, doc: str, label_names: tuple[str, ...], results: Sequence[_Samples]) -> Metric:
    """A summary family: for each label set, its quantiles, then `_sum` and `_count` (a label set's samples
    together, as OpenMetrics asks)."""
    by_labels: dict[tuple[str, ...], list[tuple[str, dict[str, str], float]]] = {}
    for samples in results:
        for label_values, value in samples.by_name.get(name, ()):
            labels = dict(zip((*label_names, "quantile"), label_values))
            by_labels.setdefault(label_values[:-1], []).append((name, labels, value))
        for part in SUMMARY_PARTS:
            for label_values, value in samples.by_name.get(name + part, ()):
                by_labels.setdefault(label_values, []).append((name + part, dict(zip(label_names, label_values)),
                                                               value))
    family = Metric(name, doc, "summary")
    for parts in by_labels.values():
        for sample_name, labels, value in parts:
            family.add_sample(sample_name, labels, value)
    return family


class Exporter:
    """A running exporter: `url` is its /metrics address; stop() closes the listener and the connections."""

    def __init__(self, httpd, thread: threading.Thread, collector: RedisAICollector):
        self.httpd, self.thread, self.collector = httpd, thread, collector
        host, port = httpd.server_address[:2]
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/metrics"

    def wait(self) -> None:
        """Blocks until stop() (or Ctrl-C)."""
        while self.thread.is_alive():
            self.thread.join(0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
        self.collector.close()


def start(targets: Sequence[str | Target], host: str = "127.0.0.1", port: int = 0, timeout: float = DEFAULT_TIMEOUT,
          max_keys: int = DEFAULT_MAX_KEYS) -> Exporter:
    """Serves /metrics of `targets` (addresses as `target()` takes them, or Targets) on host:port (0: a free
    port) in a background thread."""
    collector = RedisAICollector([target(t) for t in targets], timeout=timeout, max_keys=max_keys)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except BaseException:
        collector.close()
        raise
    return Exporter(httpd, thread, collector)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (all addresses) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid listen address {text!r} (HOST:PORT)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)
