"""What a script's `redis.execute` and `redisAI.model_execute` do in Redis.

`backends/torch_redis.py` (which knows nothing of Redis) calls a `ScriptHost` on the worker thread
that runs the script. RedisAI ran these commands as an unrestricted user; here:

- **The caller's ACL user.** The name of the user of the client that sent AI.SCRIPTEXECUTE (or the
  DAG) and its selected database are captured at command time (`capture`). At each call the user is
  looked up again under Redis's lock (RM_GetModuleUserFromUserName: a user deleted or changed since
  counts as it is now) and set on the worker's thread-safe context (RM_SetContextUser).
- **RM_Call flags `!CSME`**: `C` ACL checks as that user (a refused command does nothing and fails the
  script with NOPERM); `S` script mode (no `noscript` commands, no writes on a read-only replica or
  when the disk fails, as Lua); `M` no deny-oom command over maxmemory; `!` the command goes to
  replicas and the AOF; `E` errors come back as replies, with Redis's text.
- **Declared keys.** Every key of the command (RM_GetCommandKeys) must be one of the run's KEYS, which
  are the keys Cluster routed the command on; the module argument SCRIPT_UNDECLARED_KEYS ALLOW relaxes
  it. redisAI.model_execute checks its model key the same way, and that the user could have run
  AI.MODELEXECUTE on it.
- **Locking.** Each call takes Redis's lock for one command (RM_ThreadSafeContextLock) and releases
  it, so the main thread waits at most one command for a script. cffi releases the GIL around every C
  call, so a worker never holds the GIL while it waits for Redis's lock (else: a deadlock with a main
  thread that holds Redis's lock and waits for the GIL). The reply is read as its RESP bytes (RM_CallReplyProto, one call
  whatever its size) and parsed after the lock is released.
"""

from __future__ import annotations

import errno as errno_codes
import os
import threading
import time

import cbridge
from cbridge import NULL, ffi, rm

from .. import keyspace
from ..config import config
from ..errors import RedisAIError

_CALL_FLAGS = b"!CSMEv"
_REDIS_ERROR = "Redis command returned an error: "  # RedisAI's words, before each redis.execute error
_MODEL_ERROR = "redisAI.model_execute: "  # ours, before RedisAI's text of a model_execute error
_NAMES_CACHED = 64  # command-name strings kept per run
# Fairness: Redis's lock is a plain mutex, and a worker that calls Redis in a loop releases it for a few
# microseconds between calls, less than the main thread takes to wake up and take it: the main thread
# could lose the race many times in a row. A script that has called Redis for SLICE seconds pauses
# PAUSE seconds without the lock, so the main thread waits at most about one slice.
_SLICE = 0.002
_PAUSE = 0.0001
_thread = threading.local()  # .ctx: this worker's thread-safe context, made once
SIZE_T = ffi.typeof("size_t")


class Caller:
    """Who sent the command: ACL user name and selected database."""

    __slots__ = ("user", "db")

    def __init__(self, user: bytes, db: int):
        self.user = user
        self.db = db


def available() -> bool:
    return rm.SetContextUser is not None


def capture(ctx) -> Caller | None:
    """The calling client's user and database (main thread, at command time); None on a Redis
    without RM_SetContextUser (before 7.0.6), where redis.execute then fails with that reason."""
    if not available():
        return None
    name = rm.GetCurrentUserName(ctx)
    try:
        user = cbridge.string_bytes(name)
    finally:
        rm.FreeString(ctx, name)
    return Caller(user, rm.GetSelectedDb(ctx))


class ScriptCallError(Exception):
    """A failed redis.execute / model_execute: `script_message` is the script's error as it reads."""

    def __init__(self, message: str):
        super().__init__(message)
        self.script_message = message


# ------------------------------------------------------------------ RESP (RM_CallReplyProto)

class _ErrorReply:
    __slots__ = ("text",)

    def __init__(self, text: bytes):
        self.text = text


def _parse(data: bytes, i: int):
    """(value, next index) of the RESP2/RESP3 element at data[i]."""
    kind = data[i]
    end = data.index(b"\r\n", i)
    line = data[i + 1:end]
    i = end + 2
    if kind == 36:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, i
        return data[i:i + size], i + size + 2
    if kind == 58:  # : integer
        return int(line), i
    if kind in (42, 126, 37, 62):  # * array, ~ set, % map (flattened), > push
        count = int(line)
        if count < 0:
            return None, i
        if kind == 37:
            count *= 2
        items = []
        for _ in range(count):
            item, i = _parse(data, i)
            items.append(item)
        return items, i
    if kind == 43:  # + status
        return line, i
    if kind == 45:  # - error
        return _ErrorReply(line), i
    if kind == 95:  # _ null
        return None, i
    if kind == 44:  # , double
        return float(line), i
    if kind == 35:  # # boolean
        return int(line == b"t"), i
    if kind == 40:  # ( big number
        return int(line), i
    if kind in (61, 33):  # = verbatim string, ! blob error
        size = int(line)
        body = data[i:i + size]
        return (body[4:] if kind == 61 else _ErrorReply(body)), i + size + 2
    if kind == 124:  # | attribute: skipped, the value follows
        for _ in range(2 * int(line)):
            _, i = _parse(data, i)
        return _parse(data, i)
    raise ValueError(f"unexpected RESP type {chr(kind)!r}")


def _first_error(value):
    if type(value) is _ErrorReply:
        return value
    if type(value) is list:
        for item in value:
            found = _first_error(item)
            if found is not None:
                return found
    return None


def parse_reply(data: bytes):
    """A reply's value: bytes, int, None, lists; an error reply (even nested) raises ScriptCallError."""
    value, _ = _parse(data, 0)
    error = _first_error(value)
    if error is not None:
        raise ScriptCallError(_REDIS_ERROR + error.text.decode("utf-8", errors="replace"))
    return value


# ------------------------------------------------------------------ the host


def _fail(message: str):
    raise ScriptCallError(message)


class ScriptHost:
    """Serves one script run's extension calls, on the worker thread that runs it."""

    def __init__(self, caller: Caller | None, keys: list[str]):
        self.caller = caller
        self.declared = {key.encode("utf-8", errors="surrogatepass") for key in keys}
        self.strict = config.script_undeclared_keys != "ALLOW"
        self._ctx = None
        self._user_name = None  # RedisModuleString of the caller's user name
        self._names: dict[bytes, object] = {}  # command name -> RedisModuleString, for RM_GetCommandKeys
        self.calls = 0
        self._models: dict[int, object] = {}  # models resolved for redisAI.model_execute, by executor id
        self._slice_start = None  # when this run's current slice of Redis calls began

    # -- per run, on first use
    def _context(self):
        if self._ctx is not None:
            return self._ctx
        if not available():
            _fail("scripts can call Redis only on Redis 7.0.6 or later (RedisModule_SetContextUser)")
        if self.caller is None:
            _fail("the user that sent the command is unknown")
        if threading.current_thread() is threading.main_thread():
            _fail("Redis cannot be called from its main thread")  # it would wait for its own lock
        ctx = getattr(_thread, "ctx", None)
        if ctx is None:
            ctx = _thread.ctx = rm.GetThreadSafeContext(NULL)
        rm.SelectDb(ctx, self.caller.db)
        user = self.caller.user
        self._user_name = rm.CreateString(0, user, len(user))
        # out-parameters of RM_GetCommandKeys / RM_CallReplyProto; most runs never call Redis
        self._count, self._size = ffi.new("int *"), ffi.new("size_t *")
        self._ctx = ctx
        return ctx

    def _maybe_pause(self) -> None:
        now = time.perf_counter()
        if self._slice_start is None:
            self._slice_start = now
        elif now - self._slice_start >= _SLICE:
            time.sleep(_PAUSE)  # without the GIL either
            self._slice_start = None  # the next call starts a new slice

    def close(self) -> None:
        if self._user_name is not None:
            rm.FreeString(0, self._user_name)
            self._user_name = None
        for string in self._names.values():
            rm.FreeString(0, string)
        self._names.clear()

    def _argv(self, parts: list[bytes]):
        """(RedisModuleString *[] of the command, its name string if the caller must free it). The
        name comes from a small per-run cache (RM_Call never sees it: only RM_GetCommandKeys does);
        the arguments are new, and freed under the lock (see execute)."""
        argv = ffi.new("RedisModuleString *[]", len(parts))
        name = self._names.get(parts[0])
        owned = None
        if name is None:
            name = rm.CreateString(0, parts[0], len(parts[0]))
            if len(self._names) < _NAMES_CACHED:
                self._names[parts[0]] = name
            else:
                owned = name
        argv[0] = name
        for i in range(1, len(parts)):
            argv[i] = rm.CreateString(0, parts[i], len(parts[i]))
        return argv, owned

    def _user_text(self) -> str:
        return self.caller.user.decode("utf-8", errors="replace")

    def _no_user(self, prefix: str):
        _fail(f"{prefix}NOPERM the user '{self._user_text()}' that sent the command no longer exists")

    @staticmethod
    def _strings(parts: list[bytes]):
        argv = ffi.new("RedisModuleString *[]", len(parts))
        for i, part in enumerate(parts):
            argv[i] = rm.CreateString(0, part, len(part))
        return argv

    @staticmethod
    def _free_strings(argv) -> None:
        for string in argv:
            rm.FreeString(0, string)

    @staticmethod
    def _free_arguments(argv) -> None:
        for i in range(1, len(argv)):
            rm.FreeString(0, argv[i])

    def _undeclared_key(self, positions, parts: list[bytes]) -> bytes | None:
        """The first key of the command (positions from RM_GetCommandKeys) not in KEYS, if any."""
        if positions == NULL:  # no keys, or no such command / wrong arity: RM_Call will say which
            return None
        for i in range(self._count[0]):
            key = parts[positions[i]]
            if key not in self.declared:
                return key
        return None

    # -- redis.execute
    def execute(self, command: str, args: list[str]):
        ctx = self._context()
        parts = [command.encode("utf-8", errors="surrogatepass")]
        parts += [arg.encode("utf-8", errors="surrogatepass") for arg in args]
        argv, owned = self._argv(parts)
        user = reply = undeclared = None
        positions = NULL
        call_errno = 0
        held = False
        try:
            rm.ThreadSafeContextLock(ctx)  # cffi drops the GIL while this waits
            held = True
            # Under the lock: a few calls, and one Redis command.
            user = rm.GetModuleUserFromUserName(self._user_name)
            if user != NULL:
                rm.SetContextUser(ctx, user)
                if self.strict:
                    positions = rm.GetCommandKeys(ctx, argv, len(parts), self._count)
                    undeclared = self._undeclared_key(positions, parts)
                if undeclared is None:
                    ffi.errno = 0
                    reply = rm.Call(ctx, parts[0], _CALL_FLAGS, argv + 1, ffi.cast(SIZE_T, len(parts) - 1))
                    call_errno = ffi.errno
            # Still under the lock: the command may have kept an argument (SET stores its value), and
            # Redis's reference counts are not atomic.
            self._free_arguments(argv)
        finally:
            if held:
                rm.ThreadSafeContextUnlock(ctx)
            else:
                self._free_arguments(argv)
            self._maybe_pause()
            if owned is not None:
                rm.FreeString(0, owned)
            if positions != NULL:
                rm.Free(positions)
            if user is not None and user != NULL:
                rm.FreeModuleUser(user)  # the handle only: the user belongs to Redis's ACL
        self.calls += 1
        if user == NULL:
            self._no_user(_REDIS_ERROR)
        if undeclared is not None:
            _fail(f"Key '{undeclared.decode('utf-8', errors='replace')}' used by "
                  f"{command.upper()} is not declared in the KEYS of the script's command")
        if reply == NULL:
            _fail(_REDIS_ERROR + _strerror(call_errno))
        try:
            data = ffi.unpack(rm.CallReplyProto(reply, self._size), self._size[0])
        finally:
            rm.FreeCallReply(reply)  # the reply is the module's own copy: no lock needed
        if data[:1] == b"-":
            _fail(self._error_text(command, data, call_errno))
        return parse_reply(data)

    def _error_text(self, command: str, data: bytes, call_errno: int) -> str:
        text = data[1:data.index(b"\r\n")].decode("utf-8", errors="replace")
        prefix = _REDIS_ERROR
        if call_errno == errno_codes.EACCES and text.startswith("ERR acl verification failed"):
            reason = text.split(", ", 1)[-1].rstrip(".")
            return f"{prefix}NOPERM user '{self._user_text()}' cannot run {command.upper()}: {reason}"
        if call_errno == errno_codes.EINVAL and "wrong number of arguments" in text:
            return f"{prefix}Invalid argument ({text})"  # RedisAI's text (strerror(EINVAL)), then Redis's
        return prefix + text

    # -- redisAI.model_execute: the model runs in the script's executor, beside the script
    def resolve_model(self, key: str):
        """The model at `key` as its executor knows it (runtime.loaded), once built, after RedisAI's checks;
        its runs' statistics come back through model_ran."""
        name = key.encode("utf-8", errors="surrogatepass")
        if self.strict and name not in self.declared:
            _fail(f"Key '{key}' used by redisAI.model_execute is not declared in the KEYS of the script's command")
        try:
            model = self._read_model(key, name)
            runtime = model.runtime
            runtime.ready.wait()  # a restored model's build was queued before this run: it cannot wait for us
            if runtime.error is not None:
                _fail(f"model could not be loaded: {runtime.error}")
        except ScriptCallError as e:
            raise ScriptCallError(_MODEL_ERROR + e.script_message) from None
        self._models[runtime.loaded.id] = model
        return runtime.loaded

    def model_ran(self, identifier: int, duration_us: int, samples: int, failed: bool) -> None:
        model = self._models.get(identifier)
        if model is not None:
            model.stats.record(duration_us, samples, failed)

    def _read_model(self, key: str, name: bytes):
        """The model at `name`, read under Redis's lock as the caller (who must be allowed to run
        AI.MODELEXECUTE on it), with RedisAI's errors."""
        ctx = self._context()
        check = [b"AI.MODELEXECUTE", name, b"INPUTS", b"0", b"OUTPUTS", b"0"]
        argv = self._strings(check)
        user = model = None
        denied = False
        failure = None
        try:
            rm.ThreadSafeContextLock(ctx)
            try:
                user = rm.GetModuleUserFromUserName(self._user_name)
                if user != NULL:
                    denied = rm.ACLCheckCommandPermissions(user, argv, len(check)) != cbridge.OK
                    if not denied:
                        try:
                            model = keyspace.read(ctx, name, "model")  # the main thread waits: the key is ours
                        except RedisAIError as e:
                            failure = e.message.decode(errors="replace")
            finally:
                rm.ThreadSafeContextUnlock(ctx)
                if user is not None and user != NULL:
                    rm.FreeModuleUser(user)
        finally:
            self._free_strings(argv)
        if user == NULL:
            self._no_user("")
        if denied:
            _fail(f"NOPERM user '{self._user_text()}' cannot run AI.MODELEXECUTE on key '{key}'")
        if failure is not None:
            _fail(failure)
        if model is None:
            _fail("ERR model key is empty")
        return model


def _strerror(code: int) -> str:
    return os.strerror(code) if code else "no reply"
