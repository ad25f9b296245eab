"""Building replies: the one place that turns Python values into RESP through the Modules API.

A reply of more than one element is built in full first, as a list of parts (every conversion done,
every element's type checked), and only then sent by `send`, which does nothing but call the Modules
API. An exception while building (a bad value, a bug) therefore costs the command an error reply in
place of its reply, never the connection's framing: no array header goes out before its elements
are ready.
"""

from __future__ import annotations

import os

from cbridge import calls, ffi, outcome, rm

from .domain.tensor import DTYPE_NAMES, Tensor

# Tests make building raise for a reply shape (REDISAI_REPLY_FAULTS=tensor_values,dag ...) to show
# that the connection survives; read once, never from a client.
FAULTS = frozenset(filter(None, os.environ.get("REDISAI_REPLY_FAULTS", "").split(",")))


# The one-call replies keep the GIL (module/calls.c); None outside redis-server.
_reply_status, _reply_error, _reply_bulk = (calls.reply_status, calls.reply_error, calls.reply_bulk) if calls else (None,) * 3


def fault_point(shape: str) -> None:
    """Call as `if FAULTS: fault_point(...)` on hot paths."""
    if shape in FAULTS:
        raise RuntimeError(f"injected fault while building a {shape} reply")


def ok(ctx) -> None:
    _reply_status(ctx, b"OK")


def simple(ctx, text: bytes) -> None:
    _reply_status(ctx, text)


def one_line(message: bytes) -> bytes:
    # A reply error is one line: RedisAI replaced newlines with spaces too.
    return message.replace(b"\r", b" ").replace(b"\n", b" ")


def error(ctx, message: bytes) -> None:
    _reply_error(ctx, one_line(message))


def bulk(ctx, data) -> None:
    """Bytes or any contiguous buffer (numpy array, memoryview), sent without a Python copy."""
    _reply_bulk(ctx, data)


# ------------------------------------------------------------------ parts: (opcode, argument)
# module/replies.c checks and converts every part before it sends the first one.

if calls is not None:
    ARRAY, STATUS, ERROR, BULK, NULL = calls.ARRAY, calls.STATUS, calls.ERROR, calls.BULK, calls.NULL
    LONG, DOUBLE, LONGS, DOUBLES, BULKS = calls.LONG, calls.DOUBLE, calls.LONGS, calls.DOUBLES, calls.BULKS
    _send = calls.send
else:  # outside redis-server: parts can still be built (nothing sends them)
    ARRAY, STATUS, ERROR, BULK, NULL, LONG, DOUBLE, LONGS, DOUBLES, BULKS = range(10)
    _send = None


def send(ctx, parts: list) -> None:
    """Sends a built reply in one call (module/replies.c); a bad part raises before anything is sent."""
    _send(ctx, parts)


def array_part(length: int) -> tuple:
    return ARRAY, length


def status_part(text: bytes) -> tuple:
    return STATUS, bytes(text)


def error_part(message: bytes) -> tuple:
    return ERROR, one_line(bytes(message))


def bulk_part(data) -> tuple:
    return BULK, data


def value_parts(item, parts: list) -> list:
    """Appends the parts of nested lists, ints, bytes/str, floats and None; TypeError for others."""
    if isinstance(item, (bytes, memoryview)):
        parts.append(bulk_part(item))
    elif isinstance(item, str):
        parts.append(bulk_part(item.encode()))
    elif isinstance(item, int):  # bool included
        if not -(2**63) <= item < 2**63:
            raise OverflowError(f"cannot reply with the integer {item}")
        parts.append((LONG, int(item)))
    elif isinstance(item, float):
        parts.append((DOUBLE, item))
    elif item is None:
        parts.append((NULL, None))
    elif isinstance(item, (list, tuple)):
        parts.append(array_part(len(item)))
        for element in item:
            value_parts(element, parts)
    else:
        raise TypeError(f"cannot reply with a {type(item).__name__}")
    return parts


def value(ctx, item) -> None:
    if FAULTS:
        fault_point("value")
    send(ctx, value_parts(item, []))


def _values_parts(tensor: Tensor, parts: list) -> None:
    if FAULTS:
        fault_point("tensor_values")
    elements = tensor.array.reshape(-1).tolist()  # Python floats (BFLOAT16's too), ints (bools) or bytes
    if tensor.dtype.is_string:
        if any(type(element) is not bytes for element in elements):
            raise TypeError("STRING tensor element that is not bytes")
        opcode = BULKS
    else:
        opcode = DOUBLES if tensor.dtype.is_float else LONGS
    parts += (array_part(len(elements)), (opcode, elements))


def tensor_parts(tensor: Tensor, meta: bool, data: bytes | None, parts: list) -> list:
    """AI.TENSORGET's reply: `data` is b"BLOB", b"VALUES" or None (META only)."""
    if meta:
        if FAULTS:
            fault_point("tensor_meta")
        shape = tensor.shape
        parts += ((ARRAY, 4 if data is None else 6), (BULK, b"dtype"), (BULK, DTYPE_NAMES[tensor.dtype.name]),
                  (BULK, b"shape"), (ARRAY, len(shape)), (LONGS, [int(d) for d in shape]))
        if data is not None:
            parts.append((BULK, b"blob" if data == b"BLOB" else b"values"))
    if data == b"BLOB":
        if FAULTS:
            fault_point("tensor_blob")
        parts.append(bulk_part(tensor.blob()))
    elif data == b"VALUES":
        _values_parts(tensor, parts)
    return parts


def tensor(ctx, tensor: Tensor, meta: bool, data: bytes | None) -> None:
    if not meta and data == b"BLOB":  # the hot path: one bulk, nothing to build
        if FAULTS:
            fault_point("tensor_blob")
        return bulk(ctx, tensor.blob())
    send(ctx, tensor_parts(tensor, meta, data, []))


# Replies a worker prepares for the main thread to send without Python (module/outcome.c).

def prepared_status(text: bytes) -> int:
    return outcome.status(text)


def prepared_error(text: bytes) -> int:
    return outcome.error(text)


def prepared_outputs(items, parts, borrow: bool = False) -> int:
    """Outputs to store (and replicate) then a reply of `parts`; see outcome.c for the items' form. With
    `borrow`, the reply refers to the parts' buffers instead of a copy: for an outcome applied at once."""
    return outcome.outputs(items, parts, borrow)


def apply_prepared(ctx, prepared: int) -> list:
    """A prepared outcome applied now, on the main thread, as the reply callback applies one; returns the
    registered values it did not store (the caller releases them)."""
    return outcome.apply(ctx, prepared)


def info_sections(info_ctx, sections) -> None:
    """The module's INFO: (section, [(field, int or text)]) pairs."""
    for section, fields in sections:
        rm.InfoAddSection(info_ctx, section.encode())
        for name, value in fields:
            if isinstance(value, int):
                rm.InfoAddFieldLongLong(info_ctx, name.encode(), value)
            else:
                rm.InfoAddFieldCString(info_ctx, name.encode(), ffi.new("char[]", str(value).encode()))
