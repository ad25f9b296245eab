"""Real redis-server processes with the module loaded, for the tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "build" / "redisai.so"
# REDISAI_TEST_SERVER: another server binary (Redis 8, Valkey) for the whole suite (make test-servers).
REDIS_SERVER = os.environ.get("REDISAI_TEST_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """One redis-server on a free port, with its own data directory and log."""

    def __init__(self, directory: Path, module_args: tuple[str, ...] = (), config: tuple[str, ...] = (),
                 port: int | None = None, load_module: bool = True, env: dict[str, str] | None = None,
                 wrapper: tuple[str, ...] = (), binary: str | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.module_args = module_args
        self.config = config
        self.port = port or free_port()
        self.load_module = load_module
        self.env = env  # extra environment variables of the server process
        self.wrapper = wrapper  # a command that execs the server's command line given after it
        self.binary = binary or REDIS_SERVER
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def command_line(self) -> list[str]:
        line = [*self.wrapper, self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--logfile", str(self.log_path), "--save", "", "--enable-debug-command", "yes",
                "--appendfilename", "appendonly.aof"]
        if self.load_module:
            line += ["--loadmodule", str(MODULE), *self.module_args]
        return line + list(self.config)

    def start(self, timeout: float = 60) -> "RedisServer":
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.client().ping():
                    return self
            except (redis.ConnectionError, redis.BusyLoadingError, redis.ResponseError):
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer:\n{self.log()[-3000:]}")

    def client(self, **kwargs) -> redis.Redis:
        # RESP2 unless asked: RedisAI's replies (floats as bulk strings) are specified in RESP2.
        kwargs.setdefault("protocol", 2)
        return redis.Redis(port=self.port, socket_timeout=kwargs.pop("socket_timeout", 120), **kwargs)

    def stop(self, save: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # A raw socket: redis-py would retry SHUTDOWN (with back-off) when the server closes on it.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=60) as connection:
                    word = b"SAVE" if save else b"NOSAVE"
                    connection.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$%d\r\n%s\r\n" % (len(word), word))
                    connection.recv(1024)
            except OSError:
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self, save: bool = True) -> "RedisServer":
        self.stop(save=save)
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {message}")


def start_replica(new_server, master, name: str = "replica"):
    """A replica of `master` (a `new_server` factory's server), returned once its link is up."""
    replica = new_server(name, config=("--replicaof", "127.0.0.1", str(master.port)))
    client = replica.client()
    wait_for(lambda: client.info("replication")["master_link_status"] == "up", message=f"{name} link")
    return replica


def wait_for_persistence(client: redis.Redis) -> None:
    def idle():
        info = client.info("persistence")
        return not info["rdb_bgsave_in_progress"] and not info["aof_rewrite_in_progress"] \
            and not info.get("aof_rewrite_scheduled", 0)
    wait_for(idle, timeout=120, message="background save / rewrite")


__all__ = ["RedisServer", "free_port", "wait_for", "wait_for_persistence", "MODULE", "ROOT", "os"]
