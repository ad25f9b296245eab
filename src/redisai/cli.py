"""``redisai``: a command-line tool for a Redis server with the RedisAI module loaded.

Talks to the server with redis-py directly (RESP2, as RedisAI's replies are specified in RESP2).

    redisai server [--port P] [-h BIND] [--dir D] [--module PATH] [--module-arg K V] [-- redis-server args]
    redisai model store KEY FILE [--backend B] [--device D] [--tag T] [--batch N] [--warmup TYPE:DIMS ...] ...
    redisai model get KEY [-o FILE] [--meta]
    redisai model del KEY
    redisai script store KEY FILE [--device D] [--tag T] [--entry-points f g ...]
    redisai script get KEY [-o FILE]
    redisai script del KEY
    redisai tensor set KEY FILE.npy
    redisai tensor get KEY [-o FILE.npy]      (without -o: prints dtype, shape and values)
    redisai info [KEY]
    redisai ls [--type tensor|model|script] [--match PATTERN]
    redisai exporter [--listen HOST:PORT] [--max-keys N] [--timeout S] [[NAME=]SERVER ...]   (Prometheus /metrics)

The connection options are redis-cli's and go before the subcommand or after it:
-h/--host, -p/--port, -a/--password, --user, --tls, -u/--url, -n/--db (`redisai -p 7000 ls`,
`redisai ls -p 7000`), and --socket-timeout (none by default); one given after the subcommand wins.
--help shows help. `redisai server` listens on 127.0.0.1 unless -h names another address.

Exit status: 0 on success, 1 when the server (or a local file) reports an error, 2 for usage
errors, when the server cannot be reached and when --socket-timeout cut a wait; 141 when stdout
was closed (`redisai ls | head`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

# numpy, redis and the client's tables are imported where they are used: `redisai --help` and usage
# errors should answer at once, and those imports take a large part of a second.

DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
_READ_PIECE = 1024 * 1024  # bytes read (and sent) per step, what the progress bar advances by

BACKENDS = ("TF", "TFLITE", "TORCH", "ONNX")  # redisai.client.tables.BACKENDS, without importing numpy
BACKEND_BY_EXTENSION = {
    ".onnx": "ONNX",
    ".pt": "TORCH",
    ".pt2": "TORCH",  # a torch.export program (torch.export.save)
    ".pth": "TORCH",
    ".torchscript": "TORCH",
    ".pb": "TF",
    ".tflite": "TFLITE",
}

# `ls --type` names -> the module's registered data type names (SCAN ... TYPE <name>).
KEY_TYPES = {"tensor": "AI_TENSOR", "model": "AI__MODEL", "script": "AI_SCRIPT"}

# Exit status of a command whose output pipe was closed (`redisai ls | head -2`): a shell's 128 + SIGPIPE.
BROKEN_PIPE_STATUS = 141


def ai_to_dtype(ai_type: str):
    """RedisAI type name -> numpy dtype (None for STRING and unknown names): the client's table."""
    from .client.tables import numpy_dtype

    return numpy_dtype(ai_type)


def dtype_to_ai(dtype) -> str | None:
    """numpy dtype -> the RedisAI type a BLOB of it is (None if none is)."""
    from .client.tables import RAI_TO_NUMPY, numpy_dtype

    native = dtype.newbyteorder("=")
    if native.name == "bfloat16":
        numpy_dtype("BFLOAT16")  # the array's owner imported ml_dtypes: add it to the table
    return next((name for name, known in RAI_TO_NUMPY.items() if known.newbyteorder("=") == native), None)


class CliError(Exception):
    """An error to report as ``error: <text>`` with the given exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _print_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    """Prints ``key: value`` lines with the values aligned."""
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        print(f"{key + ':':<{width}} {value}".rstrip())


def _flat_pairs(reply) -> list[tuple[str, str]]:
    return [(_text(reply[i]), _text(reply[i + 1])) for i in range(0, len(reply) - 1, 2)]


def _size(text: str) -> int:
    """``65536``, ``64K``, ``64M``, ``1G`` (binary units) -> bytes."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if text and text[-1] in units:
        factor = units[text[-1]]
        text = text[:-1]
    try:
        value = int(text) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("seconds must be positive")
    return value


def _encode(arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    return str(arg).encode("utf-8")


def _resp_header(args: Sequence, extra_count: int) -> bytes:
    """RESP array header for ``len(args) + extra_count`` arguments, followed by ``args``."""
    parts = [b"*%d\r\n" % (len(args) + extra_count)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# connection
# --------------------------------------------------------------------------------------------


# Connection options go before the subcommand (as with redis-cli) or after it. Their parsers
# leave unset options out of the namespace (SUPPRESS), so an option after the subcommand wins over
# the same one before it and neither is overwritten by a default; CONNECTION_DEFAULTS fill in the
# rest.
CONNECTION_DEFAULTS = {"host": "127.0.0.1", "port": 6379, "password": None, "user": None, "tls": False,
                       "url": None, "db": None, "socket_timeout": None}


def _option(args, name: str):
    return getattr(args, name, CONNECTION_DEFAULTS[name])


def _connection_kwargs(args) -> dict:
    import redis
    from redis.connection import parse_url

    kwargs: dict = {
        "host": _option(args, "host"),
        "port": _option(args, "port"),
        "password": _option(args, "password"),
        "username": _option(args, "user"),
        "db": 0,
    }
    ssl = _option(args, "tls")
    url = _option(args, "url")
    if url:
        parsed = parse_url(url)
        connection_class = parsed.pop("connection_class", None)
        if connection_class is redis.SSLConnection:
            ssl = True
        elif connection_class is redis.UnixDomainSocketConnection:
            kwargs.pop("host")
            kwargs.pop("port")
            kwargs["unix_socket_path"] = parsed.pop("path")
        # Only what the URL names overrides the flags (a URL without a password keeps --password).
        kwargs.update({k: v for k, v in parsed.items() if v is not None})
    if _option(args, "db") is not None:
        kwargs["db"] = _option(args, "db")
    if ssl:
        kwargs["ssl"] = True
    return kwargs


def _where(kwargs: dict) -> str:
    if "unix_socket_path" in kwargs:
        return kwargs["unix_socket_path"]
    return f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"


def _client(args):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs = _connection_kwargs(args)
    args.where = _where(kwargs)
    # No socket timeout unless --socket-timeout: storing a big model, or one whose queue is busy, and running
    # a slow one take as long as they take (redis-py's default of 5 s would cut them off).
    # No retries: a refused connection should be reported at once, not after redis-py's backoff.
    return redis.Redis(protocol=2, socket_connect_timeout=10, socket_timeout=_option(args, "socket_timeout"),
                       retry=Retry(NoBackoff(), 0), **kwargs)


def _add_help(parser: argparse.ArgumentParser) -> None:
    """--help only: -h is the host, as in redis-cli."""
    parser.add_argument("--help", action="help", default=argparse.SUPPRESS, help="show this help and exit")


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (before or after the subcommand)")
    hide = argparse.SUPPRESS
    group.add_argument("-h", "--host", default=hide, help="server host (default: 127.0.0.1)")
    group.add_argument("-p", "--port", type=int, default=hide, help="server port (default: 6379)")
    group.add_argument("-a", "--password", default=hide, help="password (AUTH)")
    group.add_argument("--user", default=hide, help="ACL user name (AUTH user password)")
    group.add_argument("--tls", action="store_true", default=hide, help="connect with TLS")
    group.add_argument("-u", "--url", default=hide,
                       help="redis://[user:password@]host:port[/db] (rediss:// for TLS, unix:///path); "
                            "overrides --host/--port/--password")
    group.add_argument("-n", "--db", type=int, default=hide, help="database number (default: 0)")
    group.add_argument("--socket-timeout", type=_seconds, default=hide, metavar="SECONDS",
                       help="give up on a reply after this long (default: wait as long as the server takes)")


# --------------------------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------------------------


def default_module_path() -> Path:
    """``build/redisai.so`` at the root of the repository this package lives in."""
    from_env = os.environ.get("REDISAI_MODULE")
    if from_env:
        return Path(from_env)
    import redisai

    return Path(redisai.__file__).resolve().parent.parent.parent / "build" / "redisai.so"


def server_command_line(args) -> list[str]:
    module = Path(args.module) if args.module else default_module_path()
    if not module.is_file():
        raise CliError(f"module not found: {module} (build it, or pass --module PATH)")
    binary = args.redis_server or shutil.which("redis-server")
    if not binary:
        raise CliError("redis-server not found on PATH (pass --redis-server PATH)")
    given = [f"--{name.replace('_', '-')}" for name in ("user", "tls", "url", "db", "socket_timeout")
             if hasattr(args, name)]
    if given:
        raise CliError(f"server: {', '.join(given)} apply to client commands only", status=2)
    # 127.0.0.1 unless told (as `make run`): a server reachable from the network is a choice to make.
    line = [binary, "--port", str(_option(args, "port")), "--bind", getattr(args, "host", None) or "127.0.0.1"]
    if getattr(args, "password", None):
        line += ["--requirepass", args.password]
    if args.dir:
        line += ["--dir", str(args.dir)]
    line += ["--loadmodule", str(module.resolve())]
    for name, value in args.module_arg:
        line += [name, value]
    return line + list(args.extra)


def cmd_server(args) -> int:
    line = server_command_line(args)
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(line[0], line)
    return 0  # not reached


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def guess_backend(path: str) -> str | None:
    return BACKEND_BY_EXTENSION.get(Path(path).suffix.lower())


class ServerWait:
    """A status line while the server builds and warms a model: how long so far, and what INFO ai says
    (models being built or warmed up, the device queue's runs waiting and running), asked over a
    connection of its own every POLL_SECONDS."""

    POLL_SECONDS = 0.5

    def __init__(self, args, desc: str, device: str):
        import threading

        from tqdm import tqdm

        self.args, self.device = args, device.upper()
        self.done = threading.Event()
        self.line = tqdm(total=None, desc=f"{desc}: building and warming up on the server", file=sys.stderr,
                         bar_format="{desc} {elapsed}{postfix}", leave=False)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        import redis

        client = None
        try:
            client = redis.Redis(protocol=2, socket_connect_timeout=5, socket_timeout=5, **_connection_kwargs(self.args))
            client.set_response_callback("INFO", lambda response, **options: response)
            # On a terminal the line is redrawn at every poll (the time goes on); into a file or a pipe, only when
            # the figures change, so that a log gets a line per change rather than two a second.
            redraw_always, shown = sys.stderr.isatty(), None
            while not self.done.is_set():
                try:
                    fields = _info_fields(_text(client.execute_command("INFO", "ai")))
                except redis.RedisError:  # e.g. an ACL user without INFO: the elapsed time alone
                    fields = {}
                figures = self._figures(fields)
                if redraw_always or figures != shown:
                    self.line.set_postfix_str(figures, refresh=False)
                    self.line.refresh()
                    shown = figures
                self.done.wait(self.POLL_SECONDS)
        finally:
            if client is not None:
                client.close()

    def _figures(self, fields: dict[str, str]) -> str:
        figures = []
        if "ai_warmup_pending" in fields:
            figures.append(f"models pending: {fields['ai_warmup_pending']}")
        queue = f"ai_queue_{self.device}"
        if f"{queue}_waiting" in fields:
            figures.append(f"{self.device} queue: {fields[f'{queue}_waiting']} waiting, "
                           f"{fields.get(f'{queue}_running', '?')} running")
        return (" (" + "; ".join(figures) + ")") if figures else ""

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)
        self.line.close()


def _info_fields(text: str) -> dict[str, str]:
    from .exporter import parse_info  # device names hold ':', which it knows

    return parse_info(text)


def _store_streaming(client, head: list, path: Path, chunk_size: int, quiet: bool, desc: str, wait=None):
    """Sends ``head... <chunk> <chunk> ...`` with the file split into ``chunk_size`` pieces.

    The command is written to the socket while the file is read, so a model of any size is
    never held in memory in full, and the progress bar shows bytes read from the file (and sent).
    ``wait()``, called once the last byte is sent, returns what shows the server's part (closed after the
    reply).
    """
    import redis
    from tqdm import tqdm

    size = path.stat().st_size
    if size == 0:
        raise CliError(f"{path}: file is empty")
    chunks = [min(chunk_size, size - offset) for offset in range(0, size, chunk_size)]
    pool = client.connection_pool
    connection = pool.get_connection()
    bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=quiet,
               file=sys.stderr, leave=True)
    waiting = None
    try:
        connection.send_packed_command([_resp_header(head, len(chunks))], check_health=True)
        with path.open("rb") as f:
            for length in chunks:
                connection.send_packed_command([b"$%d\r\n" % length], check_health=False)
                left = length
                while left:
                    piece = f.read(min(_READ_PIECE, left))
                    if not piece:
                        raise CliError(f"{path}: file shrank while it was being read")
                    connection.send_packed_command([piece], check_health=False)
                    left -= len(piece)
                    bar.update(len(piece))
                connection.send_packed_command([b"\r\n"], check_health=False)
        bar.close()
        if wait is not None and not quiet:
            waiting = wait()
        return connection.read_response()
    except redis.ResponseError:
        raise
    except BaseException:
        # Half a command may be on the wire: this connection cannot be reused.
        connection.disconnect()
        raise
    finally:
        if waiting is not None:
            waiting.close()
        bar.close()
        pool.release(connection)


def _warmup_arguments(items: list[str]) -> list:
    """``--warmup INT64:1,64 FLOAT:1,3,224,224`` -> ``WARMUP 2 INT64 1,64 FLOAT 1,3,224,224``; ``--warmup off``
    -> ``WARMUP 0`` (no warm-up). The server checks the types and shapes."""
    if [item.lower() for item in items] in (["off"], ["0"]):
        return ["WARMUP", 0]
    arguments: list = ["WARMUP", len(items)]
    for item in items:
        ai_type, sep, dims = item.partition(":")
        if not sep or not ai_type or not dims:
            raise CliError(f"--warmup {item!r}: expected TYPE:DIMS, e.g. INT64:1,64 (or 'off')", status=2)
        arguments += [ai_type.upper(), dims]
    return arguments


def cmd_model_store(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    backend = args.backend or guess_backend(args.file)
    if backend is None:
        raise CliError(f"cannot guess the backend from {path.name!r}; pass --backend "
                       f"({', '.join(BACKENDS)})", status=2)
    if backend == "TF" and (not args.inputs or not args.outputs):
        raise CliError("a TF model needs --inputs and --outputs (graph node names)", status=2)
    if args.minbatch is not None and args.batch is None:
        raise CliError("--minbatch needs --batch", status=2)
    if args.minbatchtimeout is not None and args.minbatch is None:
        raise CliError("--minbatchtimeout needs --minbatch", status=2)

    head: list = ["AI.MODELSTORE", args.key, backend, args.device]
    if args.tag is not None:
        head += ["TAG", args.tag]
    if args.batch is not None:
        head += ["BATCHSIZE", args.batch]
        if args.minbatch is not None:
            head += ["MINBATCHSIZE", args.minbatch]
            if args.minbatchtimeout is not None:
                head += ["MINBATCHTIMEOUT", args.minbatchtimeout]
    if args.inputs:
        head += ["INPUTS", len(args.inputs), *args.inputs]
    if args.outputs:
        head += ["OUTPUTS", len(args.outputs), *args.outputs]
    if args.warmup:
        head += _warmup_arguments(args.warmup)
    head.append("BLOB")

    client = _client(args)
    reply = _store_streaming(client, head, path, args.chunk_size, args.quiet, desc=args.key,
                             wait=lambda: ServerWait(args, args.key, args.device))
    print(_text(reply))
    return 0


def cmd_model_get(args) -> int:
    client = _client(args)
    if args.output:
        blob = client.execute_command("AI.MODELGET", args.key, "BLOB")
        if isinstance(blob, list):  # longer than MODEL_CHUNK_SIZE: a list of chunks
            blob = b"".join(blob)
        _write_output(args.output, blob)
    if args.meta or not args.output:
        meta = client.execute_command("AI.MODELGET", args.key, "META")
        _print_pairs(_flat_pairs(meta))
    return 0


def _write_output(output: str, data: bytes) -> None:
    if output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(output).write_bytes(data)
    except OSError as e:
        raise CliError(f"{output}: {e.strerror or e}") from None


def cmd_model_del(args) -> int:
    print(_text(_client(args).execute_command("AI.MODELDEL", args.key)))
    return 0


# --------------------------------------------------------------------------------------------
# scripts
# --------------------------------------------------------------------------------------------


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None


def cmd_script_store(args) -> int:
    source = _read_text(args.file)
    client = _client(args)
    if args.entry_points:
        command = ["AI.SCRIPTSTORE", args.key, args.device]
    else:
        command = ["AI.SCRIPTSET", args.key, args.device]
    if args.tag is not None:
        command += ["TAG", args.tag]
    if args.entry_points:
        command += ["ENTRY_POINTS", len(args.entry_points), *args.entry_points]
    command += ["SOURCE", source]
    print(_text(client.execute_command(*command)))
    return 0


def cmd_script_get(args) -> int:
    client = _client(args)
    if args.output:
        _write_output(args.output, client.execute_command("AI.SCRIPTGET", args.key, "SOURCE"))
        return 0
    reply = client.execute_command("AI.SCRIPTGET", args.key, "META", "SOURCE")
    pairs = _flat_pairs(reply)
    _print_pairs([(k, v) for k, v in pairs if k != "source"])
    source = dict(pairs).get("source", "")
    print()
    print(source.rstrip("\n"))
    return 0


def cmd_script_del(args) -> int:
    print(_text(_client(args).execute_command("AI.SCRIPTDEL", args.key)))
    return 0


# --------------------------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------------------------


def cmd_tensor_set(args) -> int:
    import numpy as np

    try:
        array = np.load(args.file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CliError(f"{args.file}: cannot read a .npy array ({e})") from None
    if not isinstance(array, np.ndarray):
        raise CliError(f"{args.file}: expected a single array (.npy), not an archive (.npz)")
    native = array.dtype.newbyteorder("=")
    ai_type = dtype_to_ai(native)
    if ai_type is None:
        from .client.tables import RAI_TO_NUMPY, numpy_dtype

        numpy_dtype("BFLOAT16")
        supported = ", ".join(str(d.newbyteorder("=")) for d in RAI_TO_NUMPY.values())
        raise CliError(f"unsupported dtype {array.dtype} (RedisAI tensors hold {supported})")
    if array.ndim == 0:
        raise CliError("a 0-d array cannot be stored as a RedisAI tensor (reshape it to [1])")
    # RedisAI blobs are C-order and in native byte order.
    blob = np.ascontiguousarray(array, dtype=native).tobytes()
    reply = _client(args).execute_command("AI.TENSORSET", args.key, ai_type, *array.shape, "BLOB", blob)
    print(_text(reply))
    return 0


def _tensor_from_reply(reply):
    import numpy as np

    fields = {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    ai_type = _text(fields["dtype"])
    shape = tuple(int(d) for d in fields["shape"])
    blob = fields["blob"]
    if ai_type == "STRING":
        items = blob.split(b"\0")[:-1]
        return np.array([s.decode("utf-8", errors="replace") for s in items]).reshape(shape)
    dtype = ai_to_dtype(ai_type)
    if dtype is None:
        raise CliError(f"unknown tensor type {ai_type!r} in the reply")
    return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


def cmd_tensor_get(args) -> int:
    import numpy as np

    reply = _client(args).execute_command("AI.TENSORGET", args.key, "META", "BLOB")
    array = _tensor_from_reply(reply)
    if args.output:
        try:
            with open(args.output, "wb") as f:
                np.save(f, array, allow_pickle=False)
        except OSError as e:
            raise CliError(f"{args.output}: {e.strerror or e}") from None
        return 0
    ai_type = _text(reply[1])
    _print_pairs([("dtype", ai_type), ("shape", "[" + ", ".join(str(d) for d in array.shape) + "]")])
    print("values:")
    print(np.array2string(array, separator=", "))
    if array.size > np.get_printoptions()["threshold"]:
        print(f"({array.size} values, summarized; -o FILE.npy writes them all)")
    return 0


def cmd_tensor_del(args) -> int:
    client = _client(args)
    key_type = _text(client.type(args.key))
    if key_type != "AI_TENSOR":
        raise CliError(f"{args.key}: not a tensor" if key_type != "none" else f"{args.key}: no such key")
    client.delete(args.key)
    print("OK")
    return 0


# --------------------------------------------------------------------------------------------
# info / ls
# --------------------------------------------------------------------------------------------


# Units of the figures `redisai info` prints: AI.INFO's fields, and INFO ai's by name (by suffix where a
# field has a device or backend in its name).
KEY_INFO_UNITS = {"duration": "µs", "duration_p50": "µs", "duration_p95": "µs", "duration_p99": "µs",
                  "memory": "B"}
SERVER_INFO_UNITS = {"ai_model_execution_timeout": "ms", "ai_model_load_timeout": "ms",
                     "ai_backend_memory_limit": "MB", "ai_onnxruntime_memory": "B", "ai_limit": "B",
                     "ai_executors_memory_limit": "B", "ai_executors_rss": "B"}
SERVER_INFO_SUFFIX_UNITS = (("_us", "µs"), ("_used_cpu_sys", "s"), ("_used_cpu_user", "s"),
                            ("_used_cpu_total", "s"), ("_used", "B"), ("_peak", "B"))
_READABLE = {"µs": ((1e6, "s"), (1e3, "ms")), "ms": ((1e3, "s"),),
             "B": ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))}


def with_unit(value: str, unit: str | None) -> str:
    """``765`` µs -> ``765 µs``; ``2500000`` µs -> ``2500000 µs (2.5 s)``: the figure as the server gives it,
    and a readable one where it is large."""
    if unit is None:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    for factor, larger in _READABLE.get(unit, ()):
        if abs(number) >= factor:
            return f"{value} {unit} ({number / factor:.3g} {larger})"
    return f"{value} {unit}"


def _server_field_unit(name: str) -> str | None:
    if name in SERVER_INFO_UNITS:
        return SERVER_INFO_UNITS[name]
    return next((unit for suffix, unit in SERVER_INFO_SUFFIX_UNITS if name.endswith(suffix)), None)


def cmd_demo_models(args) -> int:
    from redisai.demo_models import BuildError, build  # the frameworks load only as each file is built

    try:
        outcome = build(Path(args.directory), args.names)
    except ValueError as e:  # an unknown file name
        raise CliError(str(e), status=2) from None
    except BuildError as e:
        raise CliError(str(e)) from None
    built = sum(1 for what in outcome.values() if what == "built")
    print(f"{built} of {len(outcome)} files in {args.directory}")
    return 0


def cmd_info(args) -> int:
    client = _client(args)
    if args.key is not None:
        # EXTENDED: this module's extra statistics too (RedisAI ignores the word and sends its 18 elements).
        pairs = _flat_pairs(client.execute_command("AI.INFO", args.key, "EXTENDED"))
        _print_pairs([(k, with_unit(v, KEY_INFO_UNITS.get(k))) for k, v in pairs])
        return 0
    client.set_response_callback("INFO", lambda response, **options: response)  # keep the raw text
    text = _text(client.execute_command("INFO", "ai"))
    for line in text.replace("\r\n", "\n").strip().split("\n"):
        if line.startswith("ai_queue_"):  # device names hold ':'
            name, sep, value = line.rpartition(":")
        else:
            name, sep, value = line.partition(":")
        print(f"{name}:{with_unit(value, _server_field_unit(name))}" if sep else line)
    return 0


def cmd_ls(args) -> int:
    client = _client(args)
    kinds = [args.type] if args.type else list(KEY_TYPES)
    rows = set()
    for kind in kinds:
        for key in client.scan_iter(match=args.match, count=1000, _type=KEY_TYPES[kind]):
            rows.add((kind, _text(key)))
    for kind, key in sorted(rows):
        print(f"{kind}\t{key}")
    return 0


# --------------------------------------------------------------------------------------------
# exporter
# --------------------------------------------------------------------------------------------


def _exporter_target(args, address: str):
    """A SERVER argument (``[NAME=]ADDRESS``, see exporter.target) -> an exporter Target; the connection flags
    (--password, --user, --tls, --port, --db) fill in what it does not name."""
    from .exporter import target

    defaults = {"password": _option(args, "password"), "username": _option(args, "user"),
                "port": _option(args, "port")}
    if _option(args, "tls"):
        defaults["ssl"] = True
    if _option(args, "db") is not None:
        defaults["db"] = _option(args, "db")
    try:
        return target(address, defaults)
    except ValueError as e:
        raise CliError(str(e) if str(e).startswith("invalid server address") else
                       f"invalid server address {address!r}: {e}", status=2) from None


def cmd_exporter(args) -> int:
    import logging

    from . import exporter

    try:
        host, port = exporter.parse_listen(args.listen)
    except ValueError as e:
        raise CliError(str(e), status=2) from None
    if args.max_keys < 0 or args.timeout <= 0:
        raise CliError("--max-keys must be >= 0 and --timeout > 0", status=2)
    addresses = args.servers or [_option(args, "url") or f"{_option(args, 'host')}:{_option(args, 'port')}"]
    targets = [_exporter_target(args, address) for address in addresses]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        handle = exporter.start(targets, host, port, timeout=args.timeout, max_keys=args.max_keys)
    except OSError as e:
        raise CliError(f"cannot listen on {args.listen}: {e.strerror or e}", status=2) from None
    except ValueError as e:  # two servers with one label
        raise CliError(str(e), status=2) from None
    # The targets' labels, not the addresses as given: those may hold a password.
    print(f"serving {handle.url} for {', '.join(t.name for t in targets)}", file=sys.stderr, flush=True)
    try:
        handle.wait()
    finally:
        handle.stop()
    return 0


# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redisai", description="Command-line tool for RedisAI.", add_help=False,
                                     usage="redisai [connection options] COMMAND ...")
    _add_help(parser)
    _add_connection_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def group(name: str, help_text: str) -> argparse._SubParsersAction:
        sub = commands.add_parser(name, help=help_text, description=help_text, add_help=False)
        _add_help(sub)
        _add_connection_flags(sub)
        return sub.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)

    def leaf(subparsers, name: str, help_text: str, func, connection: bool = True) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help_text, description=help_text, add_help=False)
        _add_help(sub)
        if connection:
            _add_connection_flags(sub)
        sub.set_defaults(func=func)
        return sub

    # server
    p = leaf(commands, "server", "run redis-server with the RedisAI module loaded (foreground)", cmd_server,
             connection=False)
    hide = argparse.SUPPRESS
    p.add_argument("-h", "--host", default=hide, metavar="ADDRESSES",
                   help="address to listen on, as redis-server --bind (default: 127.0.0.1, this machine "
                        "only; 0.0.0.0 for every interface: then set a password with -a)")
    p.add_argument("-p", "--port", type=int, default=hide, help="port to listen on (default: 6379)")
    p.add_argument("-a", "--password", default=hide, help="require this password (redis-server --requirepass)")
    p.add_argument("--dir", default=None, help="working directory for RDB/AOF files (created if missing)")
    p.add_argument("--module", default=None, help=f"module to load (default: {default_module_path()})")
    p.add_argument("--module-arg", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="module load-time option, e.g. --module-arg THREADS_PER_QUEUE 4 (repeatable)")
    p.add_argument("--redis-server", default=None, help="redis-server binary (default: from PATH)")
    p.add_argument("extra", nargs="*", metavar="-- ARGS", help="more redis-server arguments, after --")

    # model
    model = group("model", "store, get and delete models")
    p = leaf(model, "store", "store a model file (AI.MODELSTORE), streamed in chunks", cmd_model_store)
    p.add_argument("key")
    p.add_argument("file")
    p.add_argument("--backend", type=str.upper, choices=BACKENDS, default=None,
                   help="default: from the file extension (.onnx ONNX, .pt/.pth/.torchscript TORCH, "
                        ".pb TF, .tflite TFLITE)")
    p.add_argument("--device", default="CPU", help="CPU, GPU, CPU:<n>, GPU:<n> (default: %(default)s)")
    p.add_argument("--tag", default=None)
    p.add_argument("--batch", type=int, default=None, metavar="N", help="BATCHSIZE")
    p.add_argument("--minbatch", type=int, default=None, metavar="N", help="MINBATCHSIZE (needs --batch)")
    p.add_argument("--minbatchtimeout", type=int, default=None, metavar="MS",
                   help="MINBATCHTIMEOUT (needs --minbatch)")
    p.add_argument("--inputs", nargs="+", default=None, metavar="NAME", help="input node names (TF only)")
    p.add_argument("--outputs", nargs="+", default=None, metavar="NAME", help="output node names (TF only)")
    p.add_argument("--chunk-size", type=_size, default=DEFAULT_CHUNK_SIZE, metavar="BYTES",
                   help="bytes per BLOB argument, K/M/G suffixes allowed (default: 64M)")
    p.add_argument("--warmup", nargs="+", default=None, metavar="TYPE:DIMS",
                   help="WARMUP: the shape of each input to warm the model on, e.g. --warmup INT64:1,64 INT64:1,64 "
                        "(TorchScript declares none: without it a TorchScript model is not warmed); "
                        "'--warmup off' turns warm-up off for this model")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no status line")

    p = leaf(model, "get", "write a model's blob to a file, or print its metadata", cmd_model_get)
    p.add_argument("key")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the blob here ('-' = stdout)")
    p.add_argument("--meta", action="store_true", help="print the metadata (the default without -o)")

    p = leaf(model, "del", "delete a model (AI.MODELDEL)", cmd_model_del)
    p.add_argument("key")

    # script
    script = group("script", "store, get and delete TorchScript scripts")
    p = leaf(script, "store", "store a TorchScript source file (AI.SCRIPTSTORE, or AI.SCRIPTSET without "
                              "--entry-points)", cmd_script_store)
    p.add_argument("key")
    p.add_argument("file")
    p.add_argument("--device", default="CPU", help="default: %(default)s")
    p.add_argument("--tag", default=None)
    p.add_argument("--entry-points", nargs="+", default=None, metavar="FN",
                   help="functions callable with AI.SCRIPTEXECUTE")

    p = leaf(script, "get", "print a script's metadata and source, or write the source to a file", cmd_script_get)
    p.add_argument("key")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the source here ('-' = stdout)")

    p = leaf(script, "del", "delete a script (AI.SCRIPTDEL)", cmd_script_del)
    p.add_argument("key")

    # tensor
    tensor = group("tensor", "set and get tensors as .npy files")
    p = leaf(tensor, "set", "store a .npy array as a tensor (AI.TENSORSET ... BLOB)", cmd_tensor_set)
    p.add_argument("key")
    p.add_argument("file", metavar="FILE.npy")

    p = leaf(tensor, "get", "write a tensor to a .npy file, or print it", cmd_tensor_get)
    p.add_argument("key")
    p.add_argument("-o", "--output", default=None, metavar="FILE.npy")

    p = leaf(tensor, "del", "delete a tensor key", cmd_tensor_del)
    p.add_argument("key")

    # info / ls
    p = leaf(commands, "info", "AI.INFO of a model or script, or the server's INFO ai section", cmd_info)
    p.add_argument("key", nargs="?", default=None)

    p = leaf(commands, "ls", "list RedisAI keys as type<TAB>key lines", cmd_ls)
    p.add_argument("--type", choices=tuple(KEY_TYPES), default=None, help="only this kind of key")
    p.add_argument("--match", default=None, metavar="PATTERN", help="glob pattern (SCAN MATCH)")

    # demo-models
    p = leaf(commands, "demo-models", "write the models and files the README's and docs' examples use, each built "
                                      "with its framework's export path (python -m redisai.demo_models)",
             cmd_demo_models, connection=False)
    p.add_argument("directory", metavar="DIR")
    p.add_argument("names", nargs="*", metavar="FILE", help="only these (default: all)")

    # exporter
    p = leaf(commands, "exporter", "serve Prometheus metrics (/metrics) of one or more servers: INFO ai and "
                                   "AI.INFO of each model and script", cmd_exporter)
    p.add_argument("servers", nargs="*", metavar="SERVER",
                   help="redis://[user:password@]host:port, rediss://..., unix:///path or host:port, labelled "
                        "host:port (the path) in the metrics, or NAME=ADDRESS to label it NAME; never with its "
                        "password (default: the connection options' server, 127.0.0.1:6379)")
    p.add_argument("--listen", default="127.0.0.1:9597", metavar="HOST:PORT",
                   help="address to serve on (default: %(default)s; :9597 for all addresses, port 0 for any)")
    p.add_argument("--max-keys", type=int, default=500, metavar="N",
                   help="models and scripts reported per server and scrape (default: %(default)s; "
                        "redisai_models_truncated says when more were left out)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                   help="socket timeout per server (default: %(default)s)")
    return parser


def _where_of(args) -> str:
    return getattr(args, "where", None) or f"{getattr(args, 'host', '?')}:{getattr(args, 'port', '?')}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`redisai ls | head -2`): end quietly, as a tool killed by SIGPIPE would. Python
        # would report the pipe again when it flushes stdout at exit: point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_STATUS


def _run(args) -> int:
    import redis

    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe is found here, not at exit
        return status
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except redis.ResponseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except redis.AuthenticationError as e:
        print(f"error: authentication failed at {_where_of(args)}: {e}", file=sys.stderr)
        return 2
    except redis.TimeoutError as e:
        timeout = _option(args, "socket_timeout")
        if timeout is None or "connecting" in str(e).lower():
            print(f"error: could not connect to Redis at {_where_of(args)}: {e}", file=sys.stderr)
            return 2
        print(f"error: no reply from Redis at {_where_of(args)} within {timeout:g} s (--socket-timeout); the server "
              "may still finish the command. Wait longer with a larger --socket-timeout, or leave it out to wait "
              "as long as the server takes", file=sys.stderr)
        return 2
    except redis.ConnectionError as e:
        where = _where_of(args)
        if "refused" in str(e).lower():
            print(f"error: could not connect to Redis at {where}: connection refused (is the server running?)",
                  file=sys.stderr)
        else:
            print(f"error: lost or failed connection to Redis at {where}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
