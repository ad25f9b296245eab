"""RdbIO over Redis's RedisModuleIO (the stream of rdb_load / rdb_save callbacks)."""

from __future__ import annotations

from cbridge import ffi, rm, string_bytes


class RedisIO:
    __slots__ = ("io",)

    def __init__(self, io: int):
        self.io = ffi.cast("RedisModuleIO *", io)

    def save_unsigned(self, value: int) -> None:
        rm.SaveUnsigned(self.io, value)

    def save_buffer(self, data) -> None:
        buffer = ffi.from_buffer(data)
        rm.SaveStringBuffer(self.io, buffer, len(buffer))

    def load_unsigned(self) -> int:
        value = rm.LoadUnsigned(self.io)
        self._check()
        return value

    def load_buffer(self) -> bytes:
        size = ffi.new("size_t *")
        pointer = rm.LoadStringBuffer(self.io, size)
        self._check()
        try:
            return ffi.unpack(pointer, size[0])
        finally:
            rm.Free(pointer)

    def _check(self) -> None:
        if rm.IsIOError(self.io):
            raise EOFError("short read")

    def key_name(self) -> str:
        name = rm.GetKeyNameFromIO(self.io)
        return string_bytes(name).decode(errors="replace") if name != ffi.NULL else "?"

    def log_error(self, message: str) -> None:
        rm.LogIOError(self.io, b"warning", b"%s", ffi.new("char[]", ("redisai: " + message).encode(errors="replace")))
