"""The executor's wire (redisai.executor.protocol) on its own: arrays cross an arena and come back as they
were, and the reading side trusts nothing a frame says. The worker reads what an executor wrote, and the
executor may run anything a client stored: every count, type, dimension, offset and size of a hostile frame
is a ProtocolError, never an exception of another kind, a view outside the arena or a huge allocation."""

import struct

import ml_dtypes
import numpy as np
import pytest

from redisai.executor import protocol
from redisai.executor.protocol import Arena, ProtocolError, Reader, StringArray, UnsupportedArray, Writer


@pytest.fixture
def arena():
    made = Arena.create(1 << 20, "test-arena")
    yield made
    made.close()


def crossed(arena, arrays):
    writer = Writer()
    protocol.write_arrays(writer, arena, arrays)
    reader = Reader(writer.body())
    read = protocol.read_arrays(reader, arena)
    reader.end()
    return read


NUMERIC = [np.arange(6, dtype=dtype).reshape(2, 3) for dtype in
           (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float16,
            ml_dtypes.bfloat16)] + [np.array([True, False, True])]


@pytest.mark.parametrize("array", NUMERIC, ids=lambda a: str(a.dtype))
def test_every_tensor_type_crosses_unchanged(arena, array):
    (read,) = crossed(arena, [array])
    assert read.dtype == array.dtype and read.shape == array.shape
    assert read.tobytes() == array.tobytes()


@pytest.mark.parametrize("array", [
    np.float32(2.5) * np.ones(()),  # no dimension
    np.zeros((0, 4), np.int64),  # no element
    np.arange(24, dtype=np.int32).reshape(2, 3, 4)[:, ::2, 1:],  # not contiguous
    np.arange(5, dtype=">i4"),  # big-endian: crosses as little-endian
    np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    np.ones((1,) * 64, np.int16),  # numpy's most dimensions
], ids=["0-d", "empty", "strided", "big-endian", "fortran", "64-dims"])
def test_arrays_of_any_layout_cross_as_their_values(arena, array):
    (read,) = crossed(arena, [array])
    assert read.shape == array.shape and read.dtype.byteorder != ">"
    np.testing.assert_array_equal(read, array)


def test_strings_and_what_no_tensor_holds(arena):
    text = np.array([b"a", b"", "\u00e9".encode()], dtype=object)
    read = crossed(arena, [text, np.arange(3, dtype=np.uint32), np.array([{}], dtype=object)])
    assert read[0] == StringArray([b"a", b"", "\u00e9".encode()], (3,))
    assert read[1] == UnsupportedArray("uint32", (3,), False)
    assert read[2] == UnsupportedArray("dict", (1,), True)


def test_several_arrays_land_apart_in_one_arena(arena):
    arrays = [np.full((3,), i, np.float32) for i in range(5)]
    read = crossed(arena, arrays)
    for i, array in enumerate(read):
        assert (array == i).all()


def test_what_does_not_fit_is_refused_before_anything_is_written(arena):
    writer = Writer()
    with pytest.raises(protocol.DoesNotFit):
        protocol.write_arrays(writer, arena, [np.zeros(arena.size, np.uint8)])
    assert writer.parts == [] and arena.used == protocol.ARENA_HEADER


# -- hostile frames: what an executor could write for the worker to read


def numeric_frame(code=0, dims=(2,), offset=protocol.ARENA_HEADER, size=8, count=1, kind=0) -> bytes:
    return (struct.pack("<IBBB", count, kind, code, len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<QQ", offset, size))


@pytest.mark.parametrize("frame, words", [
    (numeric_frame(code=200), "unknown type code"),
    (numeric_frame(dims=(1,) * 65, size=4), "dimensions"),
    (numeric_frame(dims=(1 << 62,), size=4), "out of range"),
    (numeric_frame(dims=(1 << 40, 1 << 40), size=4), "too many elements"),
    (numeric_frame(dims=(3,), size=8), "does not match its shape"),
    (numeric_frame(offset=(1 << 20) - 4, size=8), "outside an arena"),
    (numeric_frame(offset=1 << 63, size=8), "outside an arena"),
    (numeric_frame()[:-3], "shorter than its fields"),
    (numeric_frame()[:6], "shorter than its fields"),
    (numeric_frame(count=1 << 20), "a count of"),
    (numeric_frame(kind=9), "unknown array kind"),
], ids=["type", "dims", "dimension", "elements", "size", "offset", "offset-huge", "cut-size", "cut-head",
        "count", "kind"])
def test_a_hostile_frame_is_a_protocol_error(arena, frame, words):
    with pytest.raises(ProtocolError, match=words):
        protocol.read_arrays(Reader(frame), arena)


def test_a_string_table_that_lies_is_a_protocol_error(arena):
    offset = arena.allocate(32)
    arena.memory[offset:offset + 16].view(np.uint64)[:] = [0, 1 << 40]  # one element, longer than its data
    frame = struct.pack("<IBBQQQ", 1, 1, 1, 1, offset, 16)
    with pytest.raises(ProtocolError, match="table does not match"):
        protocol.read_arrays(Reader(frame), arena)


def test_a_frame_longer_than_its_fields_is_a_protocol_error(arena):
    reader = Reader(numeric_frame() + b"\0")
    protocol.read_arrays(reader, arena)
    with pytest.raises(ProtocolError, match="longer than its fields"):
        reader.end()


def test_progress_is_read_as_written(arena):
    protocol.Progress.clear(arena)
    assert protocol.Progress.read(arena)[0] == -1
    protocol.Progress.started(arena, 3)
    index, started = protocol.Progress.read(arena)
    assert index == 3 and started > 0
