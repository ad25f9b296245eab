"""The wire between a device queue's worker (in redis-server) and its executor process.

Control goes as frames over a SOCK_SEQPACKET socket pair (one message per frame, file descriptors beside
it with SCM_RIGHTS); data (tensors, model bytes, script source, large strings) goes through shared memory:
memfd arenas that the *worker* creates, sized, and seals against shrinking and growing before the executor
ever sees them. So the worker never maps memory whose size the executor could change under it (a truncated
mapping would fault redis-server with SIGBUS), and never trusts what the executor writes: every count,
offset, size, type and shape of a frame is checked against its bounds (`Reader`, `read_arrays`), and a
frame that breaks one is a `ProtocolError`, which the worker answers by replacing the executor.

Nothing here is pickled: frames are fixed layouts of integers and length-prefixed byte strings.

Arenas: the worker writes inputs into the *input* arena and the executor writes outputs into the *output*
arena, each a bump allocator reset at the start of every request (`Arena.reset`), so that what a request
placed stays valid while it lasts (a script's tensors, then the replies of its redis.execute calls). When
data does not fit, the writer's side asks for a larger arena: the worker makes it and sends it
(`ARENA_IN` / `ARENA_OUT`); the executor answers `NEED` with the size it wants for outputs.

Packs: `RUNS` carries several queued runs in one frame and `DONE` answers them together, so that a busy
queue pays the frames, the wake-ups and the context switches once per pack, not once per run. The executor
writes which run it is in, and since when, into the input arena's header (`Progress`): the worker reads it
to hold each run to its own deadline, and to name the run that was running when the executor died. A run
that the executor reaches after its client's TIMEOUT is answered NOT_STARTED, as a queued run whose TIMEOUT
passed is never started.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------- frames

# worker -> executor
LOAD, RUN, UNLOAD, SCRIPT, SCRIPT_RUN, ARENA_IN, ARENA_OUT, CALL_REPLY, MODEL_READY, STATS, RUNS = range(1, 12)
# executor -> worker
READY, DONE, ERROR, NEED, CALL, MODEL_CALL, MODEL_RAN = range(100, 107)
# a pack's run, as DONE answers it: its outputs, its error, or not started (reached after its start_by time)
RAN, FAILED, NOT_STARTED = 0, 1, 2

KIND_NAMES = {value: name for name, value in globals().items()
              if name.isupper() and isinstance(value, int) and not name.startswith("MAX")}

MAX_FRAME = 64 * 1024  # fits the socket buffer of any Linux default (wmem_max 208 KiB)
SOCKET_BUFFER = 256 * 1024
MAX_ITEMS = 1 << 16  # arrays, names, dimensions, list items in one frame
MAX_DIMS = 64
MAX_FDS = 4
MAX_PACK = 64  # runs in one RUNS frame

_HEADER = struct.Struct("<HH")  # magic, kind
_MAGIC = 0x4941  # "AI"
_U8, _U32, _U64, _I64, _F64 = (struct.Struct(f) for f in ("<B", "<I", "<Q", "<q", "<d"))


class ProtocolError(Exception):
    """A frame that breaks the protocol: the peer is broken or hostile."""


class PeerGone(Exception):
    """The other side closed the socket (the executor exited or was killed)."""


class Writer:
    """A frame's body, built field by field."""

    __slots__ = ("parts",)

    def __init__(self):
        self.parts: list[bytes] = []

    def u8(self, value: int) -> "Writer":
        self.parts.append(_U8.pack(value))
        return self

    def u32(self, value: int) -> "Writer":
        self.parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> "Writer":
        self.parts.append(_U64.pack(value))
        return self

    def i64(self, value: int) -> "Writer":
        self.parts.append(_I64.pack(value))
        return self

    def f64(self, value: float) -> "Writer":
        self.parts.append(_F64.pack(value))
        return self

    def bytes(self, value: bytes) -> "Writer":
        self.parts.append(_U32.pack(len(value)))
        self.parts.append(bytes(value))
        return self

    def str(self, value: str) -> "Writer":
        return self.bytes(value.encode("utf-8", "surrogateescape"))

    def strs(self, values) -> "Writer":
        self.u32(len(values))
        for value in values:
            self.str(value)
        return self

    def body(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    """A received frame's body, read field by field; reading past its end is a ProtocolError."""

    __slots__ = ("data", "at")

    def __init__(self, data: bytes):
        self.data = data
        self.at = 0

    def _take(self, size: int) -> bytes:
        end = self.at + size
        if size < 0 or end > len(self.data):
            raise ProtocolError("frame shorter than its fields")
        chunk = self.data[self.at:end]
        self.at = end
        return chunk

    def fields(self, layout: struct.Struct) -> tuple:
        """The values of `layout` (several fields in one unpack), checked against the frame's end."""
        at = self.at
        end = at + layout.size
        if end > len(self.data):
            raise ProtocolError("frame shorter than its fields")
        self.at = end
        return layout.unpack_from(self.data, at)

    def u8(self) -> int:
        return _U8.unpack(self._take(1))[0]

    def u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def f64(self) -> float:
        return _F64.unpack(self._take(8))[0]

    def count(self, limit: int = MAX_ITEMS) -> int:
        value = self.u32()
        if value > limit:
            raise ProtocolError(f"a count of {value} (at most {limit})")
        return value

    def bytes(self) -> bytes:
        return self._take(self.u32())

    def str(self) -> str:
        return self.bytes().decode("utf-8", "surrogateescape")

    def strs(self) -> list[str]:
        return [self.str() for _ in range(self.count())]

    def end(self) -> None:
        if self.at != len(self.data):
            raise ProtocolError("frame longer than its fields")


def make_pair() -> tuple[socket.socket, socket.socket]:
    """(worker's end, executor's end), close-on-exec; the executor's is passed to it with pass_fds."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (ours, theirs):
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            end.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    return ours, theirs


def send(sock: socket.socket, kind: int, body: bytes = b"", fds=()) -> None:
    frame = _HEADER.pack(_MAGIC, kind) + body
    if len(frame) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(frame)} bytes (at most {MAX_FRAME}): data goes through an arena")
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, np.array(fds, np.int32).tobytes())] if fds else []
    try:
        sock.sendmsg([frame], ancillary)
    except (BrokenPipeError, ConnectionResetError) as e:
        raise PeerGone(str(e)) from None


def receive(sock: socket.socket, timeout_s: float | None = None) -> tuple[int, Reader, list[int]]:
    """The next frame: (kind, its body, the descriptors that came with it). Waits at most `timeout_s`
    (None: no limit), raising TimeoutError; PeerGone when the peer closed its end."""
    if timeout_s is not None:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                ready, _, _ = select.select([sock], [], [], left)
            except InterruptedError:
                continue
            if ready:
                break
    try:
        data, ancillary, flags, _ = sock.recvmsg(MAX_FRAME + 1, socket.CMSG_SPACE(MAX_FDS * 4))
    except ConnectionResetError as e:
        raise PeerGone(str(e)) from None
    fds = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += np.frombuffer(payload[:len(payload) - len(payload) % 4], np.int32).tolist()
    if not data and not fds:
        raise PeerGone("the peer closed its end")
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(data) > MAX_FRAME:
        _close_all(fds)
        raise ProtocolError("a frame or its descriptors were cut")
    if len(data) < _HEADER.size:
        _close_all(fds)
        raise ProtocolError("a frame without its header")
    magic, kind = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        _close_all(fds)
        raise ProtocolError("a frame with a wrong magic number")
    return kind, Reader(data[_HEADER.size:]), fds


def _close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------- arenas

_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
MIN_ARENA = 1 << 20
ARENA_HEADER = 64  # bytes before the first allocation: the input arena's Progress


class Arena:
    """A memfd mapped shared, as a bump allocator. Made by the worker (`create`: sealed at its size),
    adopted by the executor (`adopt`)."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size
        self.map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) if size else None
        self.memory = np.frombuffer(self.map, np.uint8) if size else np.empty(0, np.uint8)
        # The header's Progress words, as a view made once (each run of a pack reads or writes them).
        self.progress = self.memory[:16].view(np.uint64) if size >= ARENA_HEADER else None
        self.used = ARENA_HEADER

    @classmethod
    def create(cls, size: int, name: str = "redisai-arena") -> "Arena":
        size = max(MIN_ARENA, _round_up(size, mmap.PAGESIZE))
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            return cls(fd, size)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def adopt(cls, fd: int) -> "Arena":
        """An arena the other side made (the executor's view of the worker's)."""
        return cls(fd, os.fstat(fd).st_size)

    def reset(self) -> None:
        self.used = ARENA_HEADER

    def allocate(self, size: int) -> int | None:
        """The offset of `size` free bytes (8-aligned), or None when they do not fit."""
        start = _round_up(self.used, 8)
        if start + size > self.size:
            return None
        self.used = start + size
        return start

    def view(self, offset: int, size: int) -> np.ndarray:
        """The bytes [offset, offset + size), checked against the arena's size."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ProtocolError(f"a region [{offset}, {offset + size}) outside an arena of {self.size} bytes")
        return self.memory[offset:offset + size]

    def close(self) -> None:
        self.memory = np.empty(0, np.uint8)
        self.progress = None
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:  # a view still lives (an output being copied): the mapping goes with it
                pass
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Progress:
    """Where the executor is in a pack, in the input arena's header: the run it started last (1-based; 0:
    none yet) and when (CLOCK_MONOTONIC ns, one clock for both processes). Written by the executor only; the
    worker reads it as a claim, bounded: a deadline it moves is never later than the whole pack's."""

    @staticmethod
    def clear(arena: Arena) -> None:
        arena.progress[:] = 0

    @staticmethod
    def started(arena: Arena, index: int) -> None:
        words = arena.progress
        words[1] = time.monotonic_ns()
        words[0] = index + 1

    @staticmethod
    def read(arena: Arena) -> tuple[int, float]:
        """(index of the run in progress, -1 before the first; its start in time.monotonic() seconds)."""
        number, started_ns = arena.progress.tolist()
        return int(number) - 1, started_ns / 1e9


def sealed_memfd(data: bytes, name: str) -> int:
    """A memfd of exactly `data`, sealed against any change (model bytes, a script's source), to pass beside
    a frame; the receiver reads its whole size and closes it."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS | fcntl.F_SEAL_WRITE)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _round_up(value: int, unit: int) -> int:
    return (value + unit - 1) // unit * unit


# ---------------------------------------------------------------------------------------------- arrays

# Numeric types by code: what a tensor may hold (domain/tensor.py's types but STRING), little-endian.
_NUMERIC = ["<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "|b1", "<f2", "bfloat16"]
NUMERIC_DTYPES: list[np.dtype] = []
for _name in _NUMERIC:
    if _name == "bfloat16":
        import ml_dtypes

        NUMERIC_DTYPES.append(np.dtype(ml_dtypes.bfloat16))
    else:
        NUMERIC_DTYPES.append(np.dtype(_name))
_CODE_BY_DTYPE = {dtype: code for code, dtype in enumerate(NUMERIC_DTYPES)}
# numpy's native dtypes are singletons: an array of one has this very object (byte-swapped ones never do).
_CODE_BY_DTYPE_ID = {id(dtype): code for code, dtype in enumerate(NUMERIC_DTYPES) if dtype.byteorder != ">"}
_NUMERIC_KIND, _STRING_KIND, _OTHER_KIND = 0, 1, 2
# A numeric array's fields by its dimensions (numpy has at most MAX_DIMS): kind, type code, dimensions, each
# dimension, offset, size, packed at once (write_arrays writes the other kinds field by field).
_ARRAY_HEADS = [struct.Struct(f"<BBB{dims + 2}Q") for dims in range(MAX_DIMS + 1)]


@dataclass
class UnsupportedArray:
    """An output no tensor can hold: numbers of another type (complex, uint32, ...: `type_name` is numpy's
    name) or, `values` True, an object array of something else than strings (`type_name` is their type's)."""

    type_name: str
    shape: tuple
    values: bool = False


@dataclass
class StringArray:
    """A STRING array as it crossed: its elements as bytes, and its shape."""

    elements: list
    shape: tuple


class DoesNotFit(Exception):
    """The arena is too small for what is to be written: `needed` bytes more than it has free."""

    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


def array_bytes(arrays) -> int:
    """An upper bound of what write_arrays takes in an arena for `arrays`."""
    total = 0
    for array in arrays:
        if array.dtype.kind in "OUS":
            total += 8 * (array.size + 1) + sum(len(_element_bytes(e)) for e in array.reshape(-1)) + 8
        else:
            total += array.nbytes + 8
    return total


def write_arrays(writer: Writer, arena: Arena, arrays) -> None:
    """Each array's type, shape and place into the frame, its data into the arena; DoesNotFit (nothing
    written) when the arena lacks room."""
    needed = array_bytes(arrays)
    if arena.used + needed > arena.size:
        raise DoesNotFit(needed)
    writer.u32(len(arrays))
    for array in arrays:
        kind = array.dtype.kind
        if kind in "OUS":
            _write_strings(writer, arena, array)
            continue
        code = _CODE_BY_DTYPE_ID.get(id(array.dtype))  # the common case: a native type, no hashing
        if code is not None and array.flags.c_contiguous:
            shape = array.shape
            offset = arena.allocate(array.nbytes)
            arena.memory[offset:offset + array.nbytes] = array.reshape(-1).view(np.uint8)
            writer.parts.append(_ARRAY_HEADS[len(shape)].pack(_NUMERIC_KIND, code, len(shape), *shape, offset,
                                                             array.nbytes))
            continue
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        code = _CODE_BY_DTYPE.get(dtype)
        if code is None:
            writer.u8(_OTHER_KIND).u8(0).bytes(str(array.dtype).encode()[:64])
            _write_shape(writer, array.shape)
            continue
        writer.u8(_NUMERIC_KIND).u8(code)
        _write_shape(writer, array.shape)
        offset = arena.allocate(array.nbytes)
        target = arena.memory[offset:offset + array.nbytes].view(dtype).reshape(array.shape)
        np.copyto(target, array, casting="unsafe" if dtype != array.dtype else "no")
        writer.u64(offset).u64(array.nbytes)


def _write_shape(writer: Writer, shape) -> None:
    writer.u8(len(shape))
    for dim in shape:
        writer.u64(dim)


def _element_bytes(element) -> bytes:
    if type(element) is bytes:
        return element
    if isinstance(element, str):
        return element.encode("utf-8", "surrogateescape")
    if isinstance(element, (bytes, bytearray, memoryview, np.bytes_)):
        return bytes(element)
    return b""  # not a string: the reader's side names its type (below)


def _write_strings(writer: Writer, arena: Arena, array: np.ndarray) -> None:
    flat = array.reshape(-1)
    for element in flat:
        if not isinstance(element, (str, bytes, bytearray, memoryview, np.bytes_, np.str_)):
            writer.u8(_OTHER_KIND).u8(1).bytes(type(element).__name__.encode()[:64])
            _write_shape(writer, array.shape)
            return
    elements = [_element_bytes(element) for element in flat]
    writer.u8(_STRING_KIND)
    _write_shape(writer, array.shape)
    table = np.zeros(len(elements) + 1, np.uint64)
    np.cumsum([len(e) for e in elements], out=table[1:]) if elements else None
    size = table.nbytes + int(table[-1])
    offset = arena.allocate(size)
    arena.memory[offset:offset + table.nbytes] = table.view(np.uint8)
    arena.memory[offset + table.nbytes:offset + size] = np.frombuffer(b"".join(elements), np.uint8)
    writer.u64(offset).u64(size)


def read_arrays(reader: Reader, arena: Arena, limit: int = MAX_ITEMS) -> list:
    """What write_arrays wrote, every field checked: numeric arrays as views of the arena (the caller copies
    what it keeps before the arena is reused), StringArray, UnsupportedArray."""
    arrays = []
    for _ in range(reader.count(limit)):
        kind = reader.u8()
        if kind == _NUMERIC_KIND:
            code, ndim = reader.fields(_TWO_U8)
            if code >= len(NUMERIC_DTYPES):
                raise ProtocolError(f"an unknown type code {code}")
            if ndim > MAX_DIMS:
                raise ProtocolError(f"{ndim} dimensions (at most {MAX_DIMS})")
            dtype = NUMERIC_DTYPES[code]
            *shape, offset, size = reader.fields(_U64S[ndim + 2])
            shape = tuple(shape)
            if shape and max(shape) >= 1 << 62:
                raise ProtocolError("a dimension out of range")
            if size != _elements(shape) * dtype.itemsize:
                raise ProtocolError("an array whose size does not match its shape")
            arrays.append(arena.view(offset, size).view(dtype).reshape(shape))
        elif kind == _STRING_KIND:
            shape = _read_shape(reader)
            offset, size = reader.u64(), reader.u64()
            region = arena.view(offset, size)
            count = _elements(shape)
            table_bytes = 8 * (count + 1)
            if size < table_bytes:
                raise ProtocolError("a string array smaller than its table")
            table = region[:table_bytes].view(np.uint64).tolist()  # copied: the peer may change the arena
            data_size = size - table_bytes
            if table[0] != 0 or table[-1] != data_size or any(b < a for a, b in zip(table, table[1:])):
                raise ProtocolError("a string array whose table does not match its data")
            data = region[table_bytes:].tobytes()
            arrays.append(StringArray([data[table[i]:table[i + 1]] for i in range(count)], shape))
        elif kind == _OTHER_KIND:
            values = reader.u8() == 1
            name = reader.bytes().decode("ascii", "replace")
            arrays.append(UnsupportedArray("".join(c for c in name if c.isalnum() or c in "_[]")[:64],
                                           _read_shape(reader), values))
        else:
            raise ProtocolError(f"an unknown array kind {kind}")
    return arrays


_TWO_U8 = struct.Struct("<BB")
_U64S = [struct.Struct(f"<{count}Q") for count in range(MAX_DIMS + 3)]  # a numeric array's dims, offset, size


def _read_shape(reader: Reader) -> tuple:
    ndim = reader.u8()
    if ndim > MAX_DIMS:
        raise ProtocolError(f"{ndim} dimensions (at most {MAX_DIMS})")
    shape = tuple(reader.u64() for _ in range(ndim))
    if any(dim >= 1 << 62 for dim in shape):
        raise ProtocolError("a dimension out of range")
    return shape


def _elements(shape) -> int:
    count = 1
    for dim in shape:
        count *= dim
        if count >= 1 << 62:
            raise ProtocolError("a shape of too many elements")
    return count


def close_fds(fds) -> None:
    _close_all(fds)


__all__ = ["Arena", "Reader", "Writer", "ProtocolError", "PeerGone", "DoesNotFit", "StringArray",
           "UnsupportedArray", "make_pair", "sealed_memfd", "send", "receive", "write_arrays", "read_arrays", "array_bytes",
           "close_fds"]


# ---------------------------------------------------------------------------------------------- a channel

_BIG = 0x8000  # the frame's body is in the sender's arena: (offset, size) here


class Channel:
    """One end of the wire: the socket, the arena this side writes (`ours`) and the one it reads (`theirs`).
    Bodies larger than a frame travel in `ours` (the frame says where); `retired` keeps arenas replaced
    during a request mapped until it ends (the other side may still hold views of them)."""

    def __init__(self, sock: socket.socket, ours: Arena | None = None, theirs: Arena | None = None):
        self.sock = sock
        self.ours = ours
        self.theirs = theirs
        self.retired: list[Arena] = []

    def send(self, kind: int, body: bytes | Writer = b"", fds=()) -> None:
        if isinstance(body, Writer):
            body = body.body()
        if len(body) + _HEADER.size <= MAX_FRAME:
            return send(self.sock, kind, body, fds)
        offset = self.ours.allocate(len(body)) if self.ours is not None else None
        if offset is None:
            raise DoesNotFit(len(body))
        self.ours.memory[offset:offset + len(body)] = np.frombuffer(body, np.uint8)
        send(self.sock, kind | _BIG, Writer().u64(offset).u64(len(body)).body(), fds)

    def receive(self, timeout_s: float | None = None) -> tuple[int, Reader, list[int]]:
        kind, reader, fds = receive(self.sock, timeout_s)
        if kind & _BIG:
            if self.theirs is None:
                close_fds(fds)
                raise ProtocolError("a large frame before any arena")
            offset, size = reader.u64(), reader.u64()
            reader.end()
            reader = Reader(self.theirs.view(offset, size).tobytes())
            kind &= ~_BIG
        return kind, reader, fds

    def replace(self, which: str, arena: Arena) -> None:
        """A new arena for `which` ("ours" or "theirs"); the old one stays mapped until `end_request`."""
        old = getattr(self, which)
        if old is not None:
            self.retired.append(old)
        setattr(self, which, arena)

    def start_request(self) -> None:
        for arena in self.retired:
            arena.close()
        self.retired.clear()
        if self.ours is not None:
            self.ours.reset()

    def close(self) -> None:
        for arena in [*self.retired, self.ours, self.theirs]:
            if arena is not None:
                arena.close()
        self.retired.clear()
        self.ours = self.theirs = None
        self.sock.close()


# ---------------------------------------------------------------------------------------------- values

# What a script's redis.execute returns, as the worker read it from Redis: None, bytes, int, float, or a
# list of those; an error reply is a frame of its own.
_NONE, _BYTES, _INT, _FLOAT, _LIST, _BIGINT = range(6)
MAX_DEPTH = 64


def write_value(writer: Writer, value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("a reply nested too deep")
    if value is None:
        writer.u8(_NONE)
    elif isinstance(value, (bytes, bytearray)):
        writer.u8(_BYTES).bytes(bytes(value))
    elif isinstance(value, bool) or isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            writer.u8(_INT).i64(int(value))
        else:
            writer.u8(_BIGINT).bytes(str(int(value)).encode())
    elif isinstance(value, float):
        writer.u8(_FLOAT).f64(value)
    elif isinstance(value, (list, tuple)):
        writer.u8(_LIST).u32(len(value))
        for item in value:
            write_value(writer, item, depth + 1)
    else:
        raise ValueError(f"a reply of type {type(value).__name__}")


def read_value(reader: Reader, depth: int = 0):
    if depth > MAX_DEPTH:
        raise ProtocolError("a value nested too deep")
    tag = reader.u8()
    if tag == _NONE:
        return None
    if tag == _BYTES:
        return reader.bytes()
    if tag == _INT:
        return reader.i64()
    if tag == _BIGINT:
        text = reader.bytes()
        if len(text) > 64 or not text.lstrip(b"-").isdigit():
            raise ProtocolError("a malformed big integer")
        return int(text)
    if tag == _FLOAT:
        return reader.f64()
    if tag == _LIST:
        return [read_value(reader, depth + 1) for _ in range(reader.count())]
    raise ProtocolError(f"an unknown value tag {tag}")
