"""DUMP/RESTORE payloads built byte by byte from RedisAI's documented layouts
(shared docs/redisai-rdb-format.md), to prove we read what RedisAI wrote."""

from __future__ import annotations

import struct

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _crc64_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc64_table()


def crc64(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def module_type_id(name: str, encver: int) -> int:
    value = 0
    for char in name:
        value = (value << 6) | _ALPHABET.index(char)
    return (value << 10) | encver


def rdb_length(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return bytes([0x40 | (value >> 8), value & 0xFF])
    if value < 2**32:
        return b"\x80" + struct.pack(">I", value)
    return b"\x81" + struct.pack(">Q", value)


def unsigned(value: int) -> bytes:
    return b"\x02" + rdb_length(value)


def buffer(data: bytes) -> bytes:
    return b"\x05" + rdb_length(len(data)) + data


def payload(type_name: str, encver: int, fields: bytes, rdb_version: int = 9) -> bytes:
    body = b"\x07" + b"\x81" + struct.pack(">Q", module_type_id(type_name, encver)) + fields + b"\x00"
    body += struct.pack("<H", rdb_version)
    return body + struct.pack("<Q", crc64(body))


def tensor_v4(code: int, bits: int, shape, data: bytes, offsets=None) -> bytes:
    return payload("AI_TENSOR", 4, tensor_v4_fields(code, bits, shape, data, offsets))


def tensor_v0(code: int, bits: int, shape, data: bytes, encver: int = 0) -> bytes:
    fields = unsigned(1) + unsigned(0) + unsigned(bits) + unsigned(code) + unsigned(1) + unsigned(len(shape))
    fields += b"".join(unsigned(d) for d in shape)
    strides, stride = [], 1
    for dim in reversed(shape):
        strides.insert(0, stride)
        stride *= dim
    fields += b"".join(unsigned(s) for s in strides) + unsigned(0) + buffer(data)
    return payload("AI_TENSOR", encver, fields)


def rdb_file(entries: list[tuple[bytes, str, int, bytes]]) -> bytes:
    """A whole dump.rdb holding module values in db 0: (key, type name, encver, fields) each."""
    body = b"REDIS0009" + b"\xfe\x00"
    for key, type_name, encver, fields in entries:
        body += b"\x07" + rdb_length(len(key)) + key
        body += b"\x81" + struct.pack(">Q", module_type_id(type_name, encver)) + fields + b"\x00"
    body += b"\xff"
    return body + struct.pack("<Q", crc64(body))


def tensor_v4_fields(code: int, bits: int, shape, data: bytes, offsets=None) -> bytes:
    fields = unsigned(code) + unsigned(bits) + unsigned(len(shape)) + b"".join(unsigned(d) for d in shape)
    fields += buffer(data)
    for offset in offsets or ():
        fields += unsigned(offset)
    return fields


def model_v4(backend_code: int, blob: bytes, inputs=(), outputs=(), device: bytes = b"CPU") -> bytes:
    """An AI__MODEL value in layout 4, its bytes in one chunk."""
    fields = unsigned(backend_code) + buffer(device + b"\0") + buffer(b"") + unsigned(0) * 3
    fields += unsigned(len(inputs)) + b"".join(buffer(name.encode() + b"\0") for name in inputs)
    fields += unsigned(len(outputs)) + b"".join(buffer(name.encode() + b"\0") for name in outputs)
    fields += unsigned(len(blob)) + unsigned(1) + buffer(blob)
    return payload("AI__MODEL", 4, fields)


def script_v4(source: str, entry_points=(), device: bytes = b"CPU") -> bytes:
    """An AI_SCRIPT value in layout 4."""
    fields = buffer(device + b"\0") + buffer(b"") + buffer(source.encode() + b"\0") + unsigned(len(entry_points))
    fields += b"".join(buffer(name.encode() + b"\0") for name in entry_points)
    return payload("AI_SCRIPT", 4, fields)
