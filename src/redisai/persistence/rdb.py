"""RedisAI's RDB layouts (see shared docs/redisai-rdb-format.md): write layout 4, read 0-4.

Values are read and written through a small stream interface (`RdbIO`), so this module knows the
byte layouts and nothing about Redis: the module adapts Redis's RedisModuleIO to it.
"""

from __future__ import annotations

from typing import Protocol

from ..domain.tensor import BY_CODE, Tensor

ENCODING_VERSION = 4


class RdbIO(Protocol):
    def save_unsigned(self, value: int) -> None: ...
    def save_buffer(self, data) -> None: ...
    def load_unsigned(self) -> int: ...
    def load_buffer(self) -> bytes: ...


class RdbFormatError(Exception):
    """The stored bytes do not describe a value we can rebuild."""


def save_tensor(io: RdbIO, tensor: Tensor) -> None:
    io.save_unsigned(tensor.dtype.code)
    io.save_unsigned(tensor.dtype.bits)
    io.save_unsigned(len(tensor.shape))
    for dim in tensor.shape:
        io.save_unsigned(dim)
    io.save_buffer(tensor.blob())
    if tensor.dtype.is_string:
        for offset in tensor.string_offsets():
            io.save_unsigned(offset)


def load_tensor(io: RdbIO, encver: int) -> Tensor:
    if encver > ENCODING_VERSION:
        raise RdbFormatError(f"AI_TENSOR encoding version {encver} is newer than this module reads (<= 4)")
    if encver == ENCODING_VERSION:
        code, bits = io.load_unsigned(), io.load_unsigned()
        shape = tuple(io.load_unsigned() for _ in range(io.load_unsigned()))
    else:
        io.load_unsigned()  # device type
        io.load_unsigned()  # device id
        bits, code = io.load_unsigned(), io.load_unsigned()
        io.load_unsigned()  # lanes
        ndim = io.load_unsigned()
        shape = tuple(io.load_unsigned() for _ in range(ndim))
        for _ in range(ndim + 1):  # strides, then byte offset
            io.load_unsigned()
    dtype = BY_CODE.get((code, bits))
    if dtype is None:
        raise RdbFormatError(f"unknown tensor type code {code} bits {bits}")
    data = io.load_buffer()
    if dtype.is_string and encver == ENCODING_VERSION:
        count = 1
        for dim in shape:
            count *= dim
        for _ in range(count):
            io.load_unsigned()  # offsets: implied by the NUL terminators
    try:
        return Tensor.from_blob(dtype, shape, data)
    except Exception as e:
        raise RdbFormatError(f"tensor data does not match its shape: {e}") from None
