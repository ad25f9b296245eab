"""Tensors: an immutable numpy array plus RedisAI's dtype vocabulary.

A tensor's array is never written after creation, so one array may back several keys (COPY) and
in-flight runs without copies. STRING tensors hold a numpy object array of `bytes` elements.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from numpy._core.multiarray import get_handler_name

from ..errors import err

# The name of the numpy memory handler over Redis's allocator (module/allocator.c): arrays allocated
# through it count in Redis's used_memory and maxmemory.
REDIS_MEMORY = "redisai"


@dataclass(frozen=True)
class DType:
    name: str
    numpy: np.dtype
    code: int  # DLPack type code, as RedisAI persisted it
    bits: int
    low: int | None = None  # inclusive range of VALUES for integer types
    high: int | None = None

    @property
    def is_float(self) -> bool:
        return self.code == 2

    @property
    def is_string(self) -> bool:
        return self.name == "STRING"


def _int(name, np_type, code, bits, low, high):
    return DType(name, np.dtype(np_type), code, bits, low, high)


DTYPES = {
    "FLOAT": DType("FLOAT", np.dtype("<f4"), 2, 32),
    "DOUBLE": DType("DOUBLE", np.dtype("<f8"), 2, 64),
    # RedisAI's range check rejected every negative value; we accept the type's full range.
    "INT8": _int("INT8", "<i1", 0, 8, -(2**7), 2**7 - 1),
    "INT16": _int("INT16", "<i2", 0, 16, -(2**15), 2**15 - 1),
    "INT32": _int("INT32", "<i4", 0, 32, -(2**31), 2**31 - 1),
    "INT64": _int("INT64", "<i8", 0, 64, -(2**63), 2**63 - 1),
    "UINT8": _int("UINT8", "<u1", 1, 8, 0, 2**8 - 1),
    "UINT16": _int("UINT16", "<u2", 1, 16, 0, 2**16 - 1),
    "BOOL": _int("BOOL", "?", 6, 8, 0, 1),
    "STRING": DType("STRING", np.dtype(object), 7, 8),
}
BY_CODE = {(d.code, d.bits): d for d in DTYPES.values()}
_BY_NUMPY = {d.numpy: d for d in DTYPES.values() if not d.is_string}

# Redis's string2ll: optional minus, no plus, no leading zeros, no spaces.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
MAX_ELEMENTS = 2**63 - 1


_BY_NAME = {name.encode(): dtype for name, dtype in DTYPES.items()}


def dtype_named(name: bytes) -> DType:
    dtype = _BY_NAME.get(name.upper())
    if dtype is None:
        raise err("invalid data type")
    return dtype


def dtype_of(array: np.ndarray) -> DType:
    if array.dtype == object:
        return DTYPES["STRING"]
    try:
        return _BY_NUMPY[array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype]
    except KeyError:
        raise err(f"unsupported tensor type {array.dtype}") from None


def parse_integer(token: bytes) -> int | None:
    """Redis's string2ll: a decimal int64, or None."""
    if not _INTEGER.match(token) or len(token) > 20:
        return None
    value = int(token)
    return value if -(2**63) <= value < 2**63 else None


def parse_double(token: bytes) -> float | None:
    """Redis's string2d: strtod over the whole string; no spaces, no NaN, no overflow."""
    if not token or token[:1].isspace() or token[-1:].isspace() or b"_" in token:
        return None
    try:
        value = float(token)
    except ValueError:
        return None
    if math.isnan(value) or (math.isinf(value) and b"inf" not in token.lower()):
        return None
    return value


MAX_BYTES = 2**62  # beyond any machine's memory; keeps numpy's size arithmetic in range

# A tensor made from a shape alone (zeros) may not be larger than one bulk string Redis accepts: it
# could never be read back as a BLOB, and a few bytes of command must not allocate gigabytes.
limits = {"max_tensor_bytes": 512 * 1024 * 1024}


def element_count(shape: tuple[int, ...], itemsize: int = 8) -> int:
    count = math.prod(shape)
    if count > MAX_ELEMENTS or count * itemsize > MAX_BYTES:
        raise err("invalid or negative value found in tensor shape")
    return count


class Tensor:
    """An immutable n-dimensional array of one RedisAI dtype."""

    __slots__ = ("dtype", "array")

    def __init__(self, dtype: DType, array: np.ndarray):
        self.dtype = dtype
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Tensor":
        """Takes a framework's output: copied unless already a C-ordered array in Redis's memory."""
        dtype = dtype_of(array)
        if not dtype.is_string:
            array = np.asarray(array, dtype=dtype.numpy)
            if not array.flags.c_contiguous or get_handler_name(array) != REDIS_MEMORY:
                array = np.array(array, order="C", copy=True)
        return cls(dtype, array)

    @classmethod
    def zeros(cls, dtype: DType, shape: tuple[int, ...]) -> "Tensor":
        size = element_count(shape, dtype.numpy.itemsize) * dtype.numpy.itemsize
        if size > limits["max_tensor_bytes"]:
            raise err(f"tensor of {size} bytes is larger than proto-max-bulk-len ({limits['max_tensor_bytes']} bytes)")
        if dtype.is_string:
            array = np.empty(shape, dtype=object)
            array.fill(b"")
            return cls(dtype, array)
        return cls(dtype, np.zeros(shape, dtype=dtype.numpy))

    @classmethod
    def from_blob(cls, dtype: DType, shape: tuple[int, ...], blob) -> "Tensor":
        """`blob` is any bytes-like object, copied once into Redis's memory."""
        count = element_count(shape, dtype.numpy.itemsize)
        if dtype.is_string:
            return cls(dtype, _strings_from_blob(bytes(blob), shape, count))
        if len(blob) != count * dtype.numpy.itemsize:
            raise err("data length does not match tensor shape and type")
        if dtype.name == "BOOL":
            raw = np.frombuffer(blob, dtype=np.uint8)
            if raw.size and raw.max() > 1:
                raise err("BOOL tensor elements must be 0 or 1")
        array = np.empty(shape, dtype=dtype.numpy)
        memoryview(array).cast("B")[:] = blob
        return cls(dtype, array)

    @classmethod
    def from_values(cls, dtype: DType, shape: tuple[int, ...], values: list[bytes]) -> "Tensor":
        count = element_count(shape)
        if len(values) != count:
            raise err("wrong number of values was given in 'AI.TENSORSET' command")
        if dtype.is_string:
            array = np.empty(count, dtype=object)
            for i, value in enumerate(values):
                if value.endswith(b"\0"):
                    value = value[:-1]
                if b"\0" in value:
                    raise err("C-string value contains null character")
                array[i] = value
            return cls(dtype, array.reshape(shape))
        parse = parse_double if dtype.is_float else parse_integer
        parsed = []
        for token in values:
            value = parse(token)
            if value is None or (dtype.low is not None and not dtype.low <= value <= dtype.high):
                raise err("invalid value")
            parsed.append(value)
        with np.errstate(over="ignore"):  # a double beyond float32's range becomes inf, as in C
            array = np.array(parsed, dtype=np.float64 if dtype.is_float else np.int64).astype(dtype.numpy)
        return cls(dtype, array.reshape(shape))

    def copy(self) -> "Tensor":
        """Another key's tensor: arrays are never written, so the data is shared."""
        return Tensor(self.dtype, self.array)

    def blob(self):
        """The raw data: a zero-copy buffer for numeric tensors, NUL-terminated elements for STRING."""
        if self.dtype.is_string:
            return b"".join(element + b"\0" for element in self.array.flat)
        return memoryview(self.array).cast("B")

    def nbytes(self) -> int:
        if self.dtype.is_string:
            return sum(len(element) + 1 for element in self.array.flat)
        return self.array.nbytes

    def string_offsets(self) -> list[int]:
        """Start offset of each element in blob(): RedisAI's layout 4 stores them for STRING."""
        offsets, position = [], 0
        for element in self.array.flat:
            offsets.append(position)
            position += len(element) + 1
        return offsets


def _strings_from_blob(blob: bytes, shape: tuple[int, ...], count: int) -> np.ndarray:
    if not blob.endswith(b"\0") or blob.count(b"\0") != count:
        raise err("Number of string elements in data blob does not match tensor length")
    array = np.empty(count, dtype=object)
    array[:] = blob[:-1].split(b"\0")
    return array.reshape(shape)
