"""AI.TENSORSET and AI.TENSORGET."""

from __future__ import annotations

import numpy as np

from .. import keyspace, reply
from ..domain.tensor import DTYPES, Tensor, dtype_named, parse_integer
from ..errors import RedisAIError, err
from .request import Request, raw_arg

_DATA_KEYWORDS = (b"BLOB", b"VALUES")


def _no_zero_dims() -> bool:
    return False


def _nothing() -> None:
    pass


def parse_tensorset(args: list[bytes], start: int = 2, command: str = "AI.TENSORSET",
                    zero_dims_allowed=_no_zero_dims, before_zeros=_nothing) -> Tensor:
    """`<type> <dim>... [BLOB data | VALUES v...]` from args[start:]; shared with DAG ops.
    `zero_dims_allowed()` is asked when a dim is 0 (clients may not send one, as in RedisAI);
    `before_zeros()` runs before a tensor is made from a shape alone (a few bytes of command could
    otherwise allocate up to proto-max-bulk-len)."""
    dtype = dtype_named(args[start])
    shape = []
    i = start + 1
    while i < len(args) and args[i].upper() not in _DATA_KEYWORDS:
        dim = parse_integer(args[i])
        if dim is None or dim < 0 or (dim == 0 and not zero_dims_allowed()):
            raise err("invalid or negative value found in tensor shape")
        shape.append(dim)
        i += 1
    shape = tuple(shape)
    if i == len(args):
        before_zeros()
        return Tensor.zeros(dtype, shape)
    if args[i].upper() == b"BLOB":
        if len(args) - i != 2:
            raise err(f"a single binary string should come after the BLOB argument in '{command}' command")
        return Tensor.from_blob(dtype, shape, raw_arg(args, i + 1))
    values = args[i + 1 :]
    if not values:
        raise err(f"wrong number of values was given in '{command}' command")
    return Tensor.from_values(dtype, shape, values)


def tensorset(req: Request) -> None:
    if len(req.args) < 4:
        return req.wrong_arity()
    name = req.args[1]

    def check_key() -> None:
        keyspace.read(req.ctx, name, "tensor")  # WRONGTYPE before any parse error, as RedisAI

    # The key is opened once on success (the write checks its type); its type is checked first only
    # where it decides the reply: before a parse error, and before allocating zeros from a shape.
    try:
        tensor = parse_tensorset(req.args, zero_dims_allowed=req.from_our_stream, before_zeros=check_key)
    except RedisAIError:
        check_key()
        raise
    keyspace.write(req.ctx, name, "tensor", tensor)
    reply.ok(req.ctx)
    keyspace.tensor_written(req.ctx, name)


def _fast_types() -> list:
    """The types AI.TENSORSET's fast forms take: those whose BLOB needs no check of its values (not BOOL,
    whose bytes must be 0 or 1, nor STRING). The shim knows them by their index in this list."""
    return [dtype for dtype in DTYPES.values() if not dtype.is_string and dtype.name != "BOOL"]


def local_maker():
    """The call that makes a tensor of a fast type (by index) and shape, and gives the shim its array to
    copy a BLOB into (the shim has checked the length: the same rule as Tensor.from_blob): the tensor
    and that buffer. No key holds it: a DAG's own tensors (module/dagpath.c)."""
    kinds = [(dtype, dtype.numpy, dtype.raw) for dtype in _fast_types()]  # looked up once: this runs per command

    def make_local(index: int, shape: tuple[int, ...]):
        dtype, numpy_type, raw = kinds[index]
        array = np.empty(shape, numpy_type)  # in Redis's heap (module/allocator.c)
        # The buffer as Tensor.buffer() gives it: BFLOAT16's as uint16, numpy exports no bfloat16.
        return Tensor(dtype, array), array if raw is None else array.view(raw)

    return make_local


def fast_path():
    """What the shim's fast paths (module/fastpath.c) may take, decided here.

    AI.TENSORSET's common form `key TYPE dim... BLOB data`, for the fast types (_fast_types): their
    names and element sizes; local_maker's call, the tensor registered for a key; the one that releases
    a tensor no key took. AI.TENSORGET `key BLOB`: the types whose array's bytes are the reply as they
    are (numeric ones numpy exports; not STRING, not BFLOAT16). Every other command, and any failure,
    takes the general path; with reply faults injected (tests) AI.TENSORGET always does."""
    make_local, register = local_maker(), keyspace.register

    def make(index: int, shape: tuple[int, ...]):
        tensor, buffer = make_local(index, shape)
        return register(tensor), buffer

    plain = () if reply.FAULTS else tuple(d for d in DTYPES.values() if not d.is_string and d.raw is None)
    return [(dtype.name.encode(), dtype.numpy.itemsize) for dtype in _fast_types()], make, keyspace.release, plain


def parse_tensorget_format(tokens: list[bytes]) -> tuple[bool, bytes | None]:
    """(meta, b"BLOB" | b"VALUES" | None); no option means META BLOB."""
    if not tokens:
        return True, b"BLOB"
    meta, data = False, None
    for token in tokens:
        token = token.upper()
        if token == b"META":
            meta = True
        elif token in _DATA_KEYWORDS:
            if data is not None and data != token:
                raise err("both BLOB and VALUES specified")
            data = token
        else:
            raise err("unsupported data format")
    return meta, data


_BLOB_ONLY = (b"BLOB", b"blob")


def tensorget(req: Request) -> None:
    args = req.args
    if not 2 <= len(args) <= 4:
        return req.wrong_arity()
    tensor = keyspace.read(req.ctx, args[1], "tensor")
    if tensor is None:
        raise err("tensor key is empty or in a different shard")
    if len(args) == 3 and args[2] in _BLOB_ONLY:  # the common form, without the general parse
        return reply.tensor(req.ctx, tensor, False, b"BLOB")
    meta, data = parse_tensorget_format(args[2:])
    reply.tensor(req.ctx, tensor, meta, data)
