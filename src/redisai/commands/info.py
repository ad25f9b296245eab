"""AI.INFO, AI.CONFIG and the experimental AI._MODELSCAN / AI._SCRIPTSCAN."""

from __future__ import annotations

from .. import backends, keyspace, reply
from ..config import config
from ..domain.model import Model
from ..domain.script import Script
from ..domain.tensor import parse_integer
from ..errors import RedisAIError, err
from ..execution import blocking, queues
from ..execution.jobs import BackendLoadJob
from .request import Request
from .scan_order import redisai_order


def info(req: Request) -> None:
    """AI.INFO <key> [RESETSTAT | EXTENDED]: RedisAI's 18 elements; EXTENDED (ours) adds runs,
    memory and the latency percentiles. Another third argument is ignored, as RedisAI did."""
    if not 2 <= len(req.args) <= 3:
        return req.wrong_arity()
    value = None
    for kind in ("model", "script"):
        try:
            value = keyspace.read(req.ctx, req.args[1], kind)
        except RedisAIError:
            continue
        if value is not None:
            break
    if value is None:
        raise err("cannot find run info for key")
    stats = value.stats
    option = req.args[2].upper() if len(req.args) == 3 else b""
    if option == b"RESETSTAT":
        stats.reset()
        return reply.ok(req.ctx)
    is_model = isinstance(value, Model)
    fields = [
        b"key", req.args[1], b"type", b"MODEL" if is_model else b"SCRIPT",
        b"backend", value.backend if is_model else b"TORCH", b"device", value.device, b"tag", value.tag,
        b"duration", stats.duration_us, b"samples", stats.samples if is_model else -1,
        b"calls", stats.calls, b"errors", stats.errors,
    ]
    if option == b"EXTENDED":
        p50, p95, p99 = stats.percentiles(0.50, 0.95, 0.99)
        fields += [
            b"runs", stats.runs, b"memory", value.nbytes(),  # bytes of the stored model or source
            b"duration_p50", p50, b"duration_p95", p95, b"duration_p99", p99,  # us, over the last 1024 runs
        ]
    reply.value(req.ctx, fields)


def scan(cls):
    def command(req: Request) -> None:
        if len(req.args) != 1:
            return req.wrong_arity()
        stored = keyspace.values_of((Model, Script))  # one table in RedisAI: both kinds decide the order
        tags = {value.key_name: value.tag for value in stored if isinstance(value, cls)}
        order = redisai_order(list(dict.fromkeys(value.key_name for value in stored)))
        reply.value(req.ctx, [[name, tags[name]] for name in order if name in tags])
    return command


def _reply_backend_loaded(ctx, job: BackendLoadJob) -> None:
    if job.error is not None:
        return reply.error(ctx, b"ERR error loading backend")
    reply.ok(ctx)


def load_backend_at_start(name: str) -> None:
    """Backends named as module arguments are imported on a worker: the server answers meanwhile."""
    queues.get("CPU").submit(BackendLoadJob(name))


def configure(req: Request) -> None:
    args = req.args
    if len(args) < 2:
        return req.wrong_arity()
    sub = args[1].upper()
    if sub == b"BACKENDSPATH":
        if len(args) < 3:
            raise err("BACKENDSPATH: missing path argument")
        config.backends_path = args[2].decode(errors="replace")
        return reply.ok(req.ctx)
    if sub == b"LOADBACKEND":
        if len(args) < 4:
            return req.wrong_arity()
        name = args[2].decode(errors="replace").upper()
        if name not in backends.NAMES:
            raise err("unsupported backend")
        # The backend is a Python package here: a RedisAI backend library path (`.../redisai_torch.so`)
        # is accepted and otherwise unused; one that cannot name a library fails as RedisAI's dlopen did.
        if not args[3].endswith(b".so"):
            raise err("error loading backend")
        job = BackendLoadJob(name)
        if not blocking.can_block(req.ctx):
            job.run()
            return _reply_backend_loaded(req.ctx, job)
        blocking.block(req.ctx, job, _reply_backend_loaded)
        queues.get("CPU").submit(job)
        return
    if sub == b"MODEL_CHUNK_SIZE":
        if len(args) < 3:
            raise err("MODEL_CHUNK_SIZE: missing chunk size")
        size = parse_integer(args[2])
        if size is None or size <= 0:
            raise err("MODEL_CHUNK_SIZE: invalid chunk size")
        config.model_chunk_size = size
        return reply.ok(req.ctx)
    if sub == b"GET":
        if len(args) < 3:
            return req.wrong_arity()
        name = args[2].upper()
        if name == b"BACKENDSPATH":
            return reply.bulk(req.ctx, config.backends_path.encode())
        if name == b"MODEL_CHUNK_SIZE":
            return reply.value(req.ctx, config.model_chunk_size)
        return reply.value(req.ctx, None)
    raise err("unsupported subcommand")
