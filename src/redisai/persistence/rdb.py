"""RedisAI's RDB layouts (docs/rdb-format.md): write layout 4, read 0-4.

Values are read and written through a small stream interface (`RdbIO`), so this module knows the
byte layouts and nothing about Redis: the module adapts Redis's RedisModuleIO to it.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from ..backends import CODES
from ..domain.model import Model
from ..domain.script import Script
from ..domain.tensor import BY_CODE, Tensor

ENCODING_VERSION = 4


class RdbIO(Protocol):
    def save_unsigned(self, value: int) -> None: ...
    def save_buffer(self, data) -> None: ...
    def load_unsigned(self) -> int: ...
    def load_buffer(self) -> bytes: ...


class RdbFormatError(Exception):
    """The stored bytes do not describe a value we can rebuild."""


class Record:
    """An RdbIO that only records: a value is serialised in full, every field checked, before the
    first byte reaches Redis's stream (`replay`), so a failure can never leave half a value there."""

    __slots__ = ("fields",)

    def __init__(self):
        self.fields: list[tuple[bool, object]] = []  # (is_unsigned, int or contiguous byte view)

    def save_unsigned(self, value: int) -> None:
        if type(value) is not int or not 0 <= value < 2**64:
            raise RdbFormatError(f"cannot save {value!r} as an unsigned 64-bit field")
        self.fields.append((True, value))

    def save_buffer(self, data) -> None:
        view = memoryview(data)
        if not view.c_contiguous:
            raise RdbFormatError("cannot save a non-contiguous buffer")
        self.fields.append((False, view))

    def replay(self, io: RdbIO) -> None:
        for is_unsigned, value in self.fields:
            if is_unsigned:
                io.save_unsigned(value)
            else:
                io.save_buffer(value)


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


def load_tensor(io: RdbIO, encver: int, on_problem=None) -> Tensor:
    """Data that was read in full but does not describe a tensor is an RdbFormatError, or, given
    `on_problem(text)`, repaired (see _repaired) and reported there."""
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
        if on_problem is None:
            raise RdbFormatError(f"tensor data does not match its type and shape: {e}") from None
        tensor = _repaired(dtype, shape, data)
        on_problem(f"tensor data does not match its type and shape ({e}); loaded as {tensor.dtype.name} "
                   f"{list(tensor.shape)} {'truth values' if dtype.name == 'BOOL' else 'zeros'}")
        return tensor


def _repaired(dtype, shape: tuple[int, ...], data: bytes) -> Tensor:
    """A valid tensor for data that was read in full but does not describe one (a BOOL byte above 1,
    which RedisAI never checked in a blob's last byte; a length that does not match the shape): the
    dump still loads, with the key logged. BOOL keeps its truth values, anything else is zeros."""
    if dtype.name == "BOOL" and len(data) == math.prod(shape):
        return Tensor.from_array(np.frombuffer(data, dtype=np.uint8).reshape(shape) != 0)
    try:
        return Tensor.zeros(dtype, shape)
    except Exception:
        return Tensor.zeros(dtype, (0,))


def _cstr(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return data + b"\0"


def _from_cstr(data: bytes) -> str:
    return data.rstrip(b"\0").decode(errors="replace")


def save_model(io: RdbIO, model: Model, chunk_size: int) -> None:
    io.save_unsigned(CODES[model.backend])
    io.save_buffer(_cstr(model.device))
    io.save_buffer(model.tag)
    io.save_unsigned(model.batchsize)
    io.save_unsigned(model.minbatchsize)
    io.save_unsigned(model.minbatchtimeout)
    for names in (model.inputs, model.outputs):
        io.save_unsigned(len(names))
        for name in names:
            io.save_buffer(_cstr(name))
    blob = memoryview(model.blob)
    io.save_unsigned(len(blob))
    chunks = len(blob) // chunk_size + 1  # as RedisAI: the last chunk may be empty
    io.save_unsigned(chunks)
    for i in range(chunks):
        io.save_buffer(blob[i * chunk_size:(i + 1) * chunk_size])


_BACKEND_BY_CODE = {code: name for name, code in CODES.items()}


def load_model(io: RdbIO, encver: int) -> Model:
    if encver > ENCODING_VERSION:
        raise RdbFormatError(f"AI__MODEL encoding version {encver} is newer than this module reads (<= 4)")
    code = io.load_unsigned()
    backend = _BACKEND_BY_CODE.get(code)
    if backend is None:
        raise RdbFormatError(f"unknown backend code {code}")
    device = _from_cstr(io.load_buffer())
    tag = io.load_buffer()
    if encver == 0:
        tag = tag.rstrip(b"\0")
    batchsize, minbatchsize = io.load_unsigned(), io.load_unsigned()
    minbatchtimeout = io.load_unsigned() if encver >= 2 else 0
    inputs = [_from_cstr(io.load_buffer()) for _ in range(io.load_unsigned())]
    outputs = [_from_cstr(io.load_buffer()) for _ in range(io.load_unsigned())]
    if encver == 0:
        blob = io.load_buffer()
    else:
        size = io.load_unsigned()
        blob = b"".join(io.load_buffer() for _ in range(io.load_unsigned()))
        if len(blob) != size:
            raise RdbFormatError(f"model blob is {len(blob)} bytes, expected {size}")
    return Model(backend, device, tag, batchsize, minbatchsize, minbatchtimeout, inputs, outputs, blob)


def save_script(io: RdbIO, script: Script) -> None:
    io.save_buffer(_cstr(script.device))
    io.save_buffer(script.tag)
    io.save_buffer(_cstr(script.source))
    entry_points = script.entry_points or []
    io.save_unsigned(len(entry_points))
    for name in entry_points:
        io.save_buffer(_cstr(name))


def load_script(io: RdbIO, encver: int) -> Script:
    """Layouts 0-2 have no entry points: such scripts run as SCRIPTSET scripts."""
    if encver > ENCODING_VERSION:
        raise RdbFormatError(f"AI_SCRIPT encoding version {encver} is newer than this module reads (<= 4)")
    device = _from_cstr(io.load_buffer())
    tag = io.load_buffer()
    if encver == 0:
        tag = tag.rstrip(b"\0")
    source = io.load_buffer().rstrip(b"\0")
    entry_points = None
    if encver >= 3:
        entry_points = [_from_cstr(io.load_buffer()) for _ in range(io.load_unsigned())] or None
    return Script(device, tag, source, entry_points)
