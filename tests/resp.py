"""A raw RESP2 connection: the tests compare error replies byte for byte, prefix included
(redis-py strips the `ERR ` prefix of errors)."""

from __future__ import annotations

import socket


class Error(bytes):
    """An error reply's exact text, without the leading '-'."""


class RawConnection:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 120):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, *args) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, (int, float)):
                arg = str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), bytes(arg)))
        self.sock.sendall(b"".join(parts))

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            return Error(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise ValueError(f"unexpected reply line {line!r}")

    def call(self, *args):
        self.send(*args)
        return self.read()

    def keyspace(self) -> dict:
        """Every key and what it holds as a client reads it: a tensor's META and BLOB, else its type."""
        held = {}
        for name in sorted(self.call("KEYS", "*")):
            kind = self.call("TYPE", name)
            held[name] = self.call("AI.TENSORGET", name, "META", "BLOB") if kind == b"AI_TENSOR" else kind
        return held
