"""Tensors: an immutable numpy array plus RedisAI's dtype vocabulary.

A tensor's array is never written after creation, so one array may back several keys (COPY) and
in-flight runs without copies. STRING tensors hold a numpy object array of `bytes` elements.

One definition of a valid tensor (`Tensor.invalid_reason`): a dtype of RedisAI's; a numeric array of
exactly that numpy dtype, C-ordered; STRING elements all `bytes` without a NUL inside. Zero-sized
tensors (a model's empty output) are valid. Every constructor yields a valid tensor: `from_array`
converts what a framework returns or refuses it (`InvalidTensor`), so nothing else enters a key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import ml_dtypes
import numpy as np
from numpy._core.multiarray import get_handler_name

from ..errors import RedisAIError, err

# The name of the numpy memory handler over Redis's allocator (module/allocator.c): arrays allocated
# through it count in Redis's used_memory and maxmemory.
REDIS_MEMORY = "redisai"


_FLOAT_CODES = (2, 4)  # DLPack's float and bfloat


@dataclass(frozen=True)
class DType:
    name: str
    numpy: np.dtype
    code: int  # DLPack type code, as RedisAI persisted it
    bits: int
    low: int | None = None  # inclusive range of VALUES for integer types
    high: int | None = None
    raw: np.dtype | None = None  # the dtype of the data's buffer when numpy's buffer protocol lacks this one
    largest: float = math.inf  # float types: VALUES beyond it become infinities, as C's casts make them

    @property
    def is_float(self) -> bool:
        return self.code in _FLOAT_CODES

    @property
    def is_string(self) -> bool:
        return self.name == "STRING"


def _int(name, np_type, code, bits, low, high):
    return DType(name, np.dtype(np_type), code, bits, low, high)


def _float(name, np_dtype, code, bits, raw=None):
    return DType(name, np_dtype, code, bits, raw=raw, largest=float(ml_dtypes.finfo(np_dtype).max))


DTYPES = {
    "FLOAT": _float("FLOAT", np.dtype("<f4"), 2, 32),
    "DOUBLE": _float("DOUBLE", np.dtype("<f8"), 2, 64),
    # RedisAI's range check rejected every negative value; we accept the type's full range.
    "INT8": _int("INT8", "<i1", 0, 8, -(2**7), 2**7 - 1),
    "INT16": _int("INT16", "<i2", 0, 16, -(2**15), 2**15 - 1),
    "INT32": _int("INT32", "<i4", 0, 32, -(2**31), 2**31 - 1),
    "INT64": _int("INT64", "<i8", 0, 64, -(2**63), 2**63 - 1),
    "UINT8": _int("UINT8", "<u1", 1, 8, 0, 2**8 - 1),
    "UINT16": _int("UINT16", "<u2", 1, 16, 0, 2**16 - 1),
    "BOOL": _int("BOOL", "?", 6, 8, 0, 1),
    "STRING": DType("STRING", np.dtype(object), 7, 8),
    # Beyond RedisAI (which had neither): DLPack's float with 16 bits, and its bfloat type.
    "FLOAT16": _float("FLOAT16", np.dtype("<f2"), 2, 16),
    "BFLOAT16": _float("BFLOAT16", np.dtype(ml_dtypes.bfloat16), 4, 16, raw=np.dtype("<u2")),
}
BY_CODE = {(d.code, d.bits): d for d in DTYPES.values()}
DTYPE_NAMES = {name: name.encode() for name in DTYPES}  # as replies and replicated commands spell them
_VALID_NUMERIC = {name: d for name, d in DTYPES.items() if not d.is_string}
_BY_NUMPY = {d.numpy: d for d in DTYPES.values() if not d.is_string}
_BY_NUMPY_IDENTITY = {id(d.numpy): d for d in _BY_NUMPY.values()}  # numpy's builtin dtypes are singletons

# Redis's string2ll: optional minus, no plus, no leading zeros, no spaces.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
MAX_ELEMENTS = 2**63 - 1


_BY_NAME = {name.encode(): dtype for name, dtype in DTYPES.items()}


def dtype_named(name: bytes) -> DType:
    dtype = _BY_NAME.get(name) or _BY_NAME.get(name.upper())
    if dtype is None:
        raise err("invalid data type")
    return dtype


def parse_integer(token: bytes) -> int | None:
    """Redis's string2ll: a decimal int64, or None."""
    if len(token) < 19 and token.isdigit() and (token[0] != 48 or len(token) == 1):  # the common case: 0..10^18
        return int(token)
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


# VALUES as most clients send them, checked in one regular-expression match over the joined tokens:
# plain decimals, which Python's float() and int() read exactly as Redis's strtod / string2ll do.
_NUMBER = rb"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?"
_PLAIN_FLOATS = re.compile(rb"(?:%s )*%s\Z" % (_NUMBER, _NUMBER))
_INT = rb"-?(?:0|[1-9][0-9]{0,17})"  # at most 18 digits: always within int64
_PLAIN_INTS = re.compile(rb"(?:%s )*%s\Z" % (_INT, _INT))


def _plain_numbers(dtype: "DType", values: list[bytes]) -> list | None:
    """The values as Python numbers when every one is a plain decimal in range; None sends the caller
    to the general parse (which also gives the error)."""
    joined = b" ".join(values)
    if not values or joined.count(b" ") != len(values) - 1:  # a token with a space in it: the general parse
        return None
    if dtype.is_float:
        if not _PLAIN_FLOATS.match(joined):
            return None
        parsed = [float(v) for v in values]
        return parsed if max(parsed) < math.inf and min(parsed) > -math.inf else None
    if not _PLAIN_INTS.match(joined):
        return None
    parsed = [int(v) for v in values]
    if dtype.low is not None and not (dtype.low <= min(parsed) and max(parsed) <= dtype.high):
        return None
    return parsed


MAX_BYTES = 2**62  # beyond any machine's memory; keeps numpy's size arithmetic in range

# A tensor made from a shape alone (zeros) may not be larger than one bulk string Redis accepts: it
# could never be read back as a BLOB, and a few bytes of command must not allocate gigabytes.
limits = {"max_tensor_bytes": 512 * 1024 * 1024}


def element_count(shape: tuple[int, ...], itemsize: int = 8) -> int:
    count = math.prod(shape)
    if count > MAX_ELEMENTS or count * itemsize > MAX_BYTES:
        raise err("invalid or negative value found in tensor shape")
    return count


class InvalidTensor(RedisAIError):
    """A value that cannot be made a valid tensor (a run's output, a stored value)."""

    def __init__(self, message: str):
        super().__init__("ERR " + message)


def _string_elements(array: np.ndarray, what: str) -> np.ndarray:
    """An object array of bytes without NUL from strings of any kind (bytes, str, numpy's), or
    InvalidTensor: frameworks return str (onnxruntime), bytes (TensorFlow) or fixed-width arrays."""
    flat = array.reshape(-1)
    out = np.empty(flat.size, dtype=object)
    for i, element in enumerate(flat):
        kind = type(element)
        if kind is not bytes:
            if isinstance(element, str):
                element = element.encode()
            elif isinstance(element, (bytes, bytearray, memoryview)):
                element = bytes(element)
            else:
                raise InvalidTensor(f"{what} holds {kind.__name__} values, which no tensor type can hold")
        if b"\0" in element:
            raise InvalidTensor(f"{what} holds a string with a NUL character, which a STRING tensor cannot hold")
        out[i] = element
    return out.reshape(array.shape)


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
    def from_array(cls, array, what: str = "the value") -> "Tensor":
        """A valid tensor from a framework's output, or InvalidTensor naming `what`. Numeric data is
        copied unless already a C-ordered array of the exact type in Redis's memory."""
        if type(array) is np.ndarray:  # the common case first: an array of a tensor type
            dtype = _BY_NUMPY_IDENTITY.get(id(array.dtype))
            if dtype is not None:
                if not (array.flags.c_contiguous and get_handler_name(array) == REDIS_MEMORY):
                    array = np.array(array, order="C", copy=True)  # made in Redis's memory
                return cls(dtype, array)
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        kind = array.dtype.kind
        if kind in "OUS":
            return cls(DTYPES["STRING"], _string_elements(array, what))
        dtype = _BY_NUMPY.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype)
        if dtype is None:
            raise InvalidTensor(f"{what} has type {array.dtype}, which no tensor type holds")
        if array.dtype != dtype.numpy or not array.flags.c_contiguous or get_handler_name(array) != REDIS_MEMORY:
            array = np.array(array, dtype=dtype.numpy, order="C", copy=True)
        return cls(dtype, array)

    def _known_dtype(self) -> DType | None:
        return self.dtype if DTYPES.get(getattr(self.dtype, "name", None)) is self.dtype else None

    def invalid_reason(self) -> str | None:
        """None for a valid tensor (the module docstring's definition), else what is wrong."""
        dtype, array = self.dtype, self.array
        if self._known_dtype() is None:
            return f"unknown tensor type {dtype!r}"
        if not isinstance(array, np.ndarray):
            return f"data is a {type(array).__name__}, not an array"
        if dtype.is_string:
            if array.dtype != object:
                return f"STRING data has type {array.dtype}"
            for element in array.flat:
                if type(element) is not bytes:
                    return f"STRING element of type {type(element).__name__}"
                if b"\0" in element:
                    return "STRING element with a NUL character"
            return None
        if array.dtype != dtype.numpy:
            return f"{dtype.name} data has type {array.dtype}"
        if not array.flags.c_contiguous:
            return "data is not C-ordered"
        return None

    def storable(self) -> tuple["Tensor", str | None]:
        """(this tensor, None) when valid; else the closest valid tensor (converted, or zero-filled of
        the same type and shape) and what was wrong. RDB save and AOF rewrite write what this returns:
        Redis has already written the key when they run, so they must write something that loads."""
        reason = self.invalid_reason()
        if reason is None:
            return self, None
        dtype = self._known_dtype()
        try:
            if dtype is None or dtype.is_string:
                return Tensor.from_array(self.array), reason
            return Tensor(dtype, np.array(self.array, dtype=dtype.numpy, order="C", copy=True)).validate(), reason
        except Exception:
            pass
        dtype = dtype or DTYPES["FLOAT"]
        shape = tuple(self.array.shape) if isinstance(self.array, np.ndarray) else (0,)
        try:
            return Tensor.zeros(dtype, shape), reason
        except Exception:
            return Tensor.zeros(dtype, (0,)), reason

    def validate(self) -> "Tensor":
        array, dtype = self.array, self.dtype
        if type(array) is np.ndarray and array.dtype is dtype.numpy and array.flags.c_contiguous \
                and _VALID_NUMERIC.get(dtype.name) is dtype:
            return self  # the common case, decided without a call (numpy's builtin dtypes are singletons)
        reason = self.invalid_reason()
        if reason is not None:
            raise InvalidTensor(f"invalid tensor: {reason}")
        return self

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
        if count:  # a memoryview cannot be cast with a zero in its shape
            memoryview(array if dtype.raw is None else array.view(dtype.raw)).cast("B")[:] = blob
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
        parsed = _plain_numbers(dtype, values)
        if parsed is None:  # the general parse, value by value, with Redis's rules and errors
            parse = parse_double if dtype.is_float else parse_integer
            parsed = []
            for token in values:
                value = parse(token)
                if value is None or (dtype.low is not None and not dtype.low <= value <= dtype.high):
                    raise err("invalid value")
                parsed.append(value)
        if dtype.is_float and parsed and (max(parsed) > dtype.largest or min(parsed) < -dtype.largest):
            with np.errstate(over="ignore"):  # a double beyond the type's range becomes inf, as in C
                array = np.array(parsed, dtype=np.float64).astype(dtype.numpy)
        else:
            array = np.array(parsed, dtype=dtype.numpy)
        return cls(dtype, array.reshape(shape))

    def copy(self) -> "Tensor":
        """Another key's tensor: arrays are never written, so the data is shared."""
        return Tensor(self.dtype, self.array)

    def blob(self):
        """The raw data: a zero-copy buffer for numeric tensors, NUL-terminated elements for STRING."""
        if self.dtype.is_string:
            return b"".join(element + b"\0" for element in self.array.flat)
        if not self.array.size:
            return b""
        return memoryview(self.buffer()).cast("B")

    def buffer(self) -> np.ndarray:
        """The numeric data as an array the buffer protocol takes (BFLOAT16's as uint16)."""
        return self.array if self.dtype.raw is None else self.array.view(self.dtype.raw)

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
    array = np.empty(count, dtype=object)
    if not count and not blob:
        return array.reshape(shape)
    if not blob.endswith(b"\0") or blob.count(b"\0") != count:
        raise err("Number of string elements in data blob does not match tensor length")
    array[:] = blob[:-1].split(b"\0")
    return array.reshape(shape)
