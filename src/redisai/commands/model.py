"""AI.MODELSTORE / MODELSET / MODELGET / MODELDEL / MODELEXECUTE / MODELRUN."""

from __future__ import annotations

from .. import backends, keyspace, reply
from ..config import config
from ..domain.model import Model
from ..domain.tensor import dtype_named, element_count, parse_integer
from ..errors import RedisAIError, err
from ..execution import blocking, queues, warmup
from ..execution.dag import OneOpRun
from ..execution.jobs import Job, ModelLoadJob, ModelRunJob
from ..persistence.commands import modelstore_args
from . import runs, stored
from .request import Request, reply_failure

IN_TRANSACTION = "Cannot run RedisAI command within a transaction or a LUA script"


def parse_device(token: bytes) -> str:
    device = token.decode(errors="replace")
    if len(token) >= 10 or not backends.Device.valid(device):
        raise err("Invalid DEVICE")
    return device


def parse_backend(token: bytes) -> str:
    name = token.decode(errors="replace").upper()
    if name not in backends.NAMES:
        raise err("unsupported backend")
    return name


def _unsigned(token: bytes, what: str) -> int:
    value = parse_integer(token)
    if value is None or value < 0:
        raise err(f"Invalid argument for {what}")
    return value


def _option(args: list[bytes], i: int, name: bytes) -> bool:
    return i < len(args) and args[i].upper() == name


def _batching(args: list[bytes], i: int, deprecated: bool, backend: str) -> tuple[int, int, int, int]:
    """`[BATCHSIZE n] [MINBATCHSIZE m] [MINBATCHTIMEOUT t]`, each optional, in this order, checked as
    RedisAI did: MODELSTORE parses a value before checking what it needs, MODELSET the other way round."""
    def value(what: str) -> int:
        return _unsigned(args[i + 1] if i + 1 < len(args) else b"", what)

    batchsize = minbatchsize = minbatchtimeout = 0
    if _option(args, i, b"BATCHSIZE"):
        if deprecated and backend == "TFLITE":
            raise err("Auto-batching not supported by the TFLITE backend")
        batchsize, i = value("BATCHSIZE"), i + 2
    if _option(args, i, b"MINBATCHSIZE"):
        if deprecated and not batchsize:
            raise err("MINBATCHSIZE specified without BATCHSIZE")
        minbatchsize, i = value("MINBATCHSIZE"), i + 2
        if minbatchsize and not batchsize:
            raise err("MINBATCHSIZE specified without BATCHSIZE")
    if _option(args, i, b"MINBATCHTIMEOUT"):
        if deprecated and not batchsize:
            raise err("MINBATCHTIMEOUT specified without BATCHSIZE")
        if deprecated and not minbatchsize:
            raise err("MINBATCHTIMEOUT specified without MINBATCHSIZE")
        minbatchtimeout, i = value("MINBATCHTIMEOUT"), i + 2
        if minbatchtimeout and not minbatchsize:
            raise err("MINBATCHTIMEOUT specified without MINBATCHSIZE")
    return batchsize, minbatchsize, minbatchtimeout, i


def _tag(args: list[bytes], i: int) -> tuple[bytes, int]:
    if not _option(args, i, b"TAG"):
        return b"", i
    return (args[i + 1], i + 2) if i + 1 < len(args) else (b"", i + 1)


def _names(args: list[bytes], i: int, what: str) -> tuple[list[str], int]:
    """`<count> name...` of MODELSTORE's INPUTS/OUTPUTS."""
    count = parse_integer(args[i]) if i < len(args) else None
    if count is None or count <= 0:
        raise err(f"Invalid argument for {what}_count")
    names = args[i + 1:i + 1 + count]
    if len(names) < count:
        raise err(f"number of model {what}s does not match the number of given arguments")
    return [n.decode(errors="replace") for n in names], i + 1 + count


def _warmup(args: list[bytes], i: int) -> tuple[list, int]:
    """`WARMUP <n> (<TYPE> <d1,d2,...>) × n` (ours, before BLOB, where RedisAI's parser refused any word):
    the inputs to warm the model on, zeros of these types and shapes; WARMUP 0: no warm-up."""
    count = parse_integer(args[i]) if i < len(args) else None
    if count is None or count < 0:
        raise err("Invalid argument for WARMUP count")
    tokens = args[i + 1:i + 1 + 2 * count]
    if len(tokens) < 2 * count:
        raise err("number of WARMUP inputs does not match the number of given arguments")
    spec, total = [], 0
    for type_name, dims in zip(tokens[::2], tokens[1::2]):
        dtype = dtype_named(type_name)
        if dtype.is_string:
            raise err("WARMUP inputs cannot be STRING tensors")
        shape = tuple(parse_integer(dim) or 0 for dim in dims.split(b","))
        if any(dim <= 0 for dim in shape):
            raise err(f"Invalid WARMUP shape {dims.decode(errors='replace')}: positive dimensions separated by "
                      "commas, e.g. 1,64")
        total += element_count(shape, dtype.numpy.itemsize) * dtype.numpy.itemsize
        if total > warmup.MAX_INPUT_BYTES:
            raise err(f"WARMUP inputs larger than {warmup.MAX_INPUT_BYTES} bytes")
        spec.append((dtype.name, shape))
    return spec, i + 1 + 2 * count


def parse_modelstore(args: list[bytes]) -> Model:
    backend = parse_backend(args[2])
    device = parse_device(args[3])
    tag, i = _tag(args, 4)
    batchsize, minbatchsize, minbatchtimeout, i = _batching(args, i, False, backend)
    if i >= len(args):
        raise err("Insufficient arguments, missing model BLOB")
    inputs: list[str] = []
    outputs: list[str] = []
    if backend == "TF":
        if args[i].upper() != b"INPUTS":
            raise err("INPUTS not specified for TF")
        inputs, i = _names(args, i + 1, "input")
        if i >= len(args) or args[i].upper() != b"OUTPUTS":
            raise err("OUTPUTS not specified for TF")
        outputs, i = _names(args, i + 1, "output")
    elif args[i].upper() == b"INPUTS":
        raise err("INPUTS argument should not be specified for this backend")
    warmup_spec = None
    if _option(args, i, b"WARMUP"):
        warmup_spec, i = _warmup(args, i + 1)
    # After TF's names, the command ending is "not BLOB" too (RedisAI compared the last word read).
    if i >= len(args) or args[i].upper() != b"BLOB":
        raise err("Invalid argument, expected BLOB")
    chunks = args[i + 1:]
    if not chunks:
        raise err("Insufficient arguments, missing model BLOB")
    blob = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return Model(backend, device, tag, batchsize, minbatchsize, minbatchtimeout, inputs, outputs, blob,
                 warmup=warmup_spec)


_MODELSET_NOT_DEVICES = (b"INPUTS", b"OUTPUTS", b"TAG", b"BATCHSIZE", b"MINBATCHSIZE", b"MINBATCHTIMEOUT", b"BLOB")


def parse_modelset(args: list[bytes]) -> Model:
    backend = parse_backend(args[2])
    device = args[3]
    if len(device) > 10 or device.upper() in _MODELSET_NOT_DEVICES:
        raise err("Invalid DEVICE")
    tag, i = _tag(args, 4)
    batchsize, minbatchsize, minbatchtimeout, i = _batching(args, i, True, backend)
    if i >= len(args):
        raise err("Insufficient arguments, missing model BLOB")
    upper = [token.upper() for token in args[i:]]
    blob_at = upper.index(b"BLOB") if b"BLOB" in upper else len(upper)
    options, options_upper = args[i:i + blob_at], upper[:blob_at]
    inputs: list[str] = []
    outputs: list[str] = []
    if backend == "TF":
        if not options:
            raise err("Insufficient arguments, INPUTS and OUTPUTS not specified")
        if options_upper[0] != b"INPUTS":
            raise err("INPUTS not specified")
        if b"OUTPUTS" not in options_upper:
            raise err("OUTPUTS not specified")
        split = options_upper.index(b"OUTPUTS")
        inputs = [n.decode(errors="replace") for n in options[1:split]]
        outputs = [n.decode(errors="replace") for n in options[split + 1:]]
    chunks = args[i + blob_at + 1:]
    if not chunks:
        raise err("Insufficient arguments, missing model BLOB")
    blob = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return Model(backend, device.decode(errors="replace"), tag, batchsize, minbatchsize, minbatchtimeout,
                 inputs, outputs, blob)


def backend_options() -> backends.Options:
    return backends.Options(config.intra_op_parallelism, config.inter_op_parallelism, config.model_execution_timeout)


MODEL = stored.Kind(
    "model",
    load_job=lambda model: ModelLoadJob(model, backend_options()),
    store_command=lambda model: (b"AI.MODELSTORE", modelstore_args(model.key_name, model, config.model_chunk_size)),
)


def _store(req: Request, parse, min_args: int) -> None:
    if len(req.args) < min_args:
        return req.wrong_arity()
    stored.check_writable(req, MODEL)
    stored.store(req, MODEL, parse(req.args))


def modelstore(req: Request) -> None:
    _store(req, parse_modelstore, 6)


def modelset(req: Request) -> None:
    _store(req, parse_modelset, 4)


def get_model(req: Request) -> Model:
    return stored.lookup(req, MODEL)


def modelget(req: Request) -> None:
    if not 2 <= len(req.args) <= 4:
        return req.wrong_arity()
    model = get_model(req)
    options = {token.upper() for token in req.args[2:]}
    meta = b"META" in options or b"BLOB" not in options
    blob = b"BLOB" in options or b"META" not in options
    if meta and model.backend != "TF" and not model.runtime.ready.is_set() and blocking.can_block(req.ctx):
        # Its input and output names come from the built model: the client waits for the build of a
        # model restored from an RDB, the AOF or the master (RedisAI built it before replying).
        wait = Job()
        blocking.block(req.ctx, wait, lambda ctx, _: _reply_modelget(ctx, model, meta, blob))
        model.runtime.when_ready(wait.finish)
        return
    _reply_modelget(req.ctx, model, meta, blob)


def _reply_modelget(ctx, model: Model, meta: bool, blob: bool) -> None:
    fields = []
    if meta:
        fields = [b"backend", model.backend, b"device", model.device, b"tag", model.tag,
                  b"batchsize", model.batchsize, b"minbatchsize", model.minbatchsize,
                  b"inputs", model.inputs, b"outputs", model.outputs, b"minbatchtimeout", model.minbatchtimeout]
    if blob:
        chunk = config.model_chunk_size
        if len(model.blob) < chunk:
            data = model.blob
        else:  # RedisAI's chunking: len/chunk + 1 pieces, the last one possibly empty
            view = memoryview(model.blob)
            data = [view[i:i + chunk] for i in range(0, len(view) + 1, chunk)]
        if not meta:
            return reply.value(ctx, data)
        fields += [b"blob", data]
    reply.value(ctx, fields)


def modeldel(req: Request) -> None:
    stored.delete(req, MODEL)


# ------------------------------------------------------------------ execution

def _count(args: list[bytes], i: int, what: str, expected: int | None) -> tuple[list[bytes], int]:
    count = parse_integer(args[i]) if i < len(args) else None
    if count is None:
        raise err(f"Invalid argument for {what}_count")
    if count <= 0:
        raise err(f"{what.capitalize()} count must be a positive integer")
    if expected is not None and count != expected:
        raise RedisAIError(f"Number of keys given as {what.upper()}S here does not match model definition")
    names = args[i + 1:i + 1 + count]
    if len(names) < count:
        raise err(f"number of {what} keys to AI.MODELEXECUTE command does not match the number of given arguments")
    return names, i + 1 + count


def parse_timeout(args: list[bytes], i: int, suffix: str = "") -> int:
    if i + 1 >= len(args):
        raise err("No value provided for TIMEOUT" + suffix)
    value = parse_integer(args[i + 1])
    if value is None or value <= 0:
        raise err("Invalid value for TIMEOUT")
    return value


def _known(model: Model, names: list[str]) -> int | None:
    """The model's input/output count, once known (a model rebuilt from an RDB may still be loading)."""
    return len(names) if model.backend == "TF" or model.runtime.ready.is_set() else None


def check_loadable(model: Model) -> None:
    if model.runtime.error is not None:
        raise err(f"model could not be loaded: {model.runtime.error}")


def parse_modelexecute(args: list[bytes], model: Model) -> tuple[list[bytes], list[bytes], int]:
    check_loadable(model)
    if args[2].upper() != b"INPUTS":
        raise err("INPUTS not specified")
    inputs, i = _count(args, 3, "input", _known(model, model.inputs))
    if i >= len(args) or args[i].upper() != b"OUTPUTS":
        raise err("OUTPUTS not specified")
    outputs, i = _count(args, i + 1, "output", _known(model, model.outputs))
    timeout = 0
    if i < len(args) and args[i].upper() == b"TIMEOUT":
        timeout = parse_timeout(args, i)
        i += 2
    if i < len(args):
        raise RedisAIError(b"Invalid argument: " + args[i])
    return inputs, outputs, timeout


def parse_modelrun(args: list[bytes], model: Model) -> tuple[list[bytes], list[bytes], int]:
    check_loadable(model)
    i, timeout = 2, 0
    if args[i].upper() == b"TIMEOUT":
        timeout = parse_timeout(args, i)
        i += 2
    if i >= len(args) or args[i].upper() != b"INPUTS":
        raise err("INPUTS not specified")
    rest = args[i + 1:]
    upper = [token.upper() for token in rest]
    if b"OUTPUTS" not in upper:
        raise err("OUTPUTS not specified")
    split = upper.index(b"OUTPUTS")
    inputs, outputs = rest[:split], rest[split + 1:]
    expected_in, expected_out = _known(model, model.inputs), _known(model, model.outputs)
    if expected_in is not None and len(inputs) != expected_in:
        raise RedisAIError("Number of keys given as INPUTS here does not match model definition")
    if expected_out is not None and len(outputs) != expected_out:
        raise RedisAIError("Number of keys given as OUTPUTS here does not match model definition")
    return inputs, outputs, timeout


def read_tensors(ctx, names: list[bytes]):
    tensors = []
    for name in names:
        tensor = keyspace.read(ctx, name, "tensor")
        if tensor is None:
            raise err("tensor key is empty or in a different shard")
        tensors.append(tensor)
    return tensors


def can_run(req: Request, min_args: int, command: str) -> bool:
    """What every model and script run checks first: arity (with the command named as RedisAI did),
    then that the client can be blocked (not in MULTI or Lua). False once the arity error is sent."""
    if len(req.args) < min_args:
        reply.error(req.ctx, f"ERR wrong number of arguments for '{command}' command".encode())
        return False
    if not blocking.can_block(req.ctx):
        raise err(IN_TRANSACTION)
    return True


def _execute(req: Request, parse, min_args: int, command: str) -> None:
    if not can_run(req, min_args, command):
        return
    model = get_model(req)
    input_names, output_names, timeout = parse(req.args, model)
    inputs = read_tensors(req.ctx, input_names)
    queue = admitting_queue(model.device)
    runs.start(req.ctx, OneOpRun(ModelRunJob(model, inputs, len(output_names), timeout), queue, output_names, command))


def submit_resolved_run(ctx: int, model: Model, inputs: tuple, output_names: tuple, timeout_ms: int) -> bool:
    """AI.MODELEXECUTE's fast path (module/fastpath.c): C has parsed the grammar and read the model and
    input keys. Runs it as `_execute` would, or returns False, having changed
    nothing, for anything the general path answers otherwise (a model that failed to load, counts that
    do not match its definition, a client that cannot block, a full queue), so that it gives its own
    reply. What it raises is answered as on_command answers it (request.reply_failure)."""
    try:
        if not runs_as_given(model, len(inputs), len(output_names)) or not blocking.can_block(ctx):
            return False
        queue = queues.get(model.device)
        if queue.full():  # refused (and counted) by the general path
            return False
        runs.start(ctx, OneOpRun(ModelRunJob(model, list(inputs), len(output_names), timeout_ms), queue,
                                 output_names, "AI.MODELEXECUTE"))
    except Exception as e:
        reply_failure(ctx, "AI.MODELEXECUTE", e)
    return True


def runs_as_given(model: Model, inputs: int, outputs: int) -> bool:
    """Whether parse_modelexecute would take these counts of input and output keys for `model` (a fast
    path's check: False where the general path replies an error)."""
    runtime = model.runtime
    if runtime.error is not None:
        return False
    # _known's rule, the model's readiness read once: its counts once known, any count before
    return (model.backend != "TF" and not runtime.ready.is_set()) or (
        len(model.inputs) == inputs and len(model.outputs) == outputs)


def admitting_queue(device: str):
    """The device's queue, or the queue-full error when it holds QUEUE_MAX_LENGTH runs."""
    queue = queues.get(device)
    if not queue.admits():
        raise err(f"queue full: the {queue.name} queue holds QUEUE_MAX_LENGTH ({queue.max_length}) runs, "
                  "retry later")
    return queue


def modelexecute(req: Request) -> None:
    _execute(req, parse_modelexecute, 8, "AI.MODELEXECUTE")


def modelrun(req: Request) -> None:
    _execute(req, parse_modelrun, 6, "AI.MODELRUN")
