"""Building replies: the one place that turns Python values into RESP through the Modules API."""

from __future__ import annotations

from cbridge import ffi, rm

from .domain.tensor import Tensor


def ok(ctx) -> None:
    rm.ReplyWithSimpleString(ctx, b"OK")


def simple(ctx, text: bytes) -> None:
    rm.ReplyWithSimpleString(ctx, text)


def error(ctx, message: bytes) -> None:
    # A reply error is one line: RedisAI replaced newlines with spaces too.
    rm.ReplyWithError(ctx, message.replace(b"\r", b" ").replace(b"\n", b" "))


def bulk(ctx, data) -> None:
    """Bytes or any contiguous buffer (numpy array, memoryview), sent without a Python copy."""
    if isinstance(data, bytes):
        rm.ReplyWithStringBuffer(ctx, data, len(data))
    else:
        buffer = ffi.from_buffer(data)
        rm.ReplyWithStringBuffer(ctx, buffer, len(buffer))


def value(ctx, item) -> None:
    """Nested lists, ints, bytes/str, floats and None."""
    if isinstance(item, (bytes, memoryview)):
        bulk(ctx, item)
    elif isinstance(item, str):
        bulk(ctx, item.encode())
    elif isinstance(item, bool) or isinstance(item, int):
        rm.ReplyWithLongLong(ctx, int(item))
    elif isinstance(item, float):
        rm.ReplyWithDouble(ctx, item)
    elif item is None:
        rm.ReplyWithNull(ctx)
    else:
        rm.ReplyWithArray(ctx, len(item))
        for element in item:
            value(ctx, element)


def tensor_values(ctx, tensor: Tensor) -> None:
    flat = tensor.array.reshape(-1)
    rm.ReplyWithArray(ctx, flat.size)
    if tensor.dtype.is_string:
        for element in flat:
            rm.ReplyWithStringBuffer(ctx, element, len(element))
    elif tensor.dtype.is_float:
        reply_double = rm.ReplyWithDouble
        for number in flat.tolist():
            reply_double(ctx, number)
    else:
        reply_integer = rm.ReplyWithLongLong
        for number in flat.tolist():
            reply_integer(ctx, number)


def tensor(ctx, tensor: Tensor, meta: bool, data: bytes | None) -> None:
    """AI.TENSORGET's reply: `data` is b"BLOB", b"VALUES" or None (META only)."""
    if not meta:
        if data == b"BLOB":
            bulk(ctx, tensor.blob())
        else:
            tensor_values(ctx, tensor)
        return
    rm.ReplyWithArray(ctx, 4 if data is None else 6)
    bulk(ctx, b"dtype")
    bulk(ctx, tensor.dtype.name.encode())
    bulk(ctx, b"shape")
    value(ctx, list(tensor.shape))
    if data == b"BLOB":
        bulk(ctx, b"blob")
        bulk(ctx, tensor.blob())
    elif data == b"VALUES":
        bulk(ctx, b"values")
        tensor_values(ctx, tensor)
