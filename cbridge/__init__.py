"""The Redis Modules API as Python sees it: one cffi definition, the only place naming RM_* symbols.

The C shim fills `RedisModule_GetApi` when Redis loads it; every other API function is looked up
once here through that function (as Redis's own RedisModule_Init does) and kept as a cffi function
pointer on `rm`. The shim's own exports (its types, and the C callbacks Python hands to Redis) are
read from the loaded `redisai.so` itself. The calls made for every command are `calls`
(module/calls.c): CPython functions that keep the GIL, which cffi would release around each call.

A context (RedisModuleCtx *) is an int on the Python side, for `rm` and `calls` alike.
"""

from __future__ import annotations

import cffi

# The shim's own CPython modules (registered before Python code runs), owned here so that the rest of
# the package reaches C one way: `calls` (module/calls.c: the per-command API calls, GIL kept),
# `outcome` (module/outcome.c: replies prepared by workers), `alloc` (module/allocator.c: numpy memory
# in Redis's heap). None outside redis-server (client-side tools import the package too).
try:
    import _redisai_alloc as alloc
    import _redisai_calls as calls
    import _redisai_outcome as outcome
except ImportError:
    alloc = calls = outcome = None

ffi = cffi.FFI()
ffi.cdef(
    """
    typedef struct RedisModuleCtx RedisModuleCtx;
    typedef struct RedisModuleString RedisModuleString;
    typedef struct RedisModuleKey RedisModuleKey;
    typedef struct RedisModuleIO RedisModuleIO;
    typedef struct RedisModuleDigest RedisModuleDigest;
    typedef struct RedisModuleType RedisModuleType;
    typedef struct RedisModuleBlockedClient RedisModuleBlockedClient;
    typedef struct RedisModuleInfoCtx RedisModuleInfoCtx;
    typedef struct RedisModuleCallReply RedisModuleCallReply;
    typedef struct RedisModuleUser RedisModuleUser;
    typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *, RedisModuleString **, int);
    typedef void (*RedisModuleFreePrivdataFunc)(RedisModuleCtx *, void *);

    /* exported by module/redisai.c */
    extern int (*RedisModule_GetApi)(const char *, void *);
    extern RedisModuleType *RedisAI_TensorType;
    extern RedisModuleType *RedisAI_ModelType;
    extern RedisModuleType *RedisAI_ScriptType;
    int RedisAI_Command(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_TensorSetCommand(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_TensorGetCommand(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_ModelExecuteCommand(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_DagExecuteCommand(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_DagExecuteReadonlyCommand(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_Unblocked(RedisModuleCtx *, RedisModuleString **, int);
    int RedisAI_BlockTimeout(RedisModuleCtx *, RedisModuleString **, int);
    void RedisAI_FreePrivdata(RedisModuleCtx *, void *);
    void RedisAI_Info(RedisModuleInfoCtx *, int);


    /* module/handoff.c: waking device-queue workers */
    typedef struct RedisAI_Signal RedisAI_Signal;
    RedisAI_Signal *RedisAI_SignalCreate(void);
    int RedisAI_SignalWait(RedisAI_Signal *, unsigned long, long, long, uintptr_t, uintptr_t);
    """
)

# name -> C type of the API function; looked up through RedisModule_GetApi at bind().
_SIGNATURES = {
    "CreateCommand": "int(*)(uintptr_t, const char *, RedisModuleCmdFunc, const char *, int, int, int)",
    "WrongArity": "int(*)(uintptr_t)",
    "ReplyWithLongLong": "int(*)(uintptr_t, long long)",
    "ReplyWithError": "int(*)(uintptr_t, const char *)",
    "ReplyWithSimpleString": "int(*)(uintptr_t, const char *)",
    "ReplyWithArray": "int(*)(uintptr_t, long)",
    "ReplyWithStringBuffer": "int(*)(uintptr_t, const char *, size_t)",
    "ReplyWithString": "int(*)(uintptr_t, RedisModuleString *)",
    "ReplyWithNull": "int(*)(uintptr_t)",
    "ReplyWithDouble": "int(*)(uintptr_t, double)",
    "OpenKey": "RedisModuleKey *(*)(uintptr_t, RedisModuleString *, int)",
    "CloseKey": "void(*)(RedisModuleKey *)",
    "DeleteKey": "int(*)(RedisModuleKey *)",
    "ReplicateVerbatim": "int(*)(uintptr_t)",
    "NotifyKeyspaceEvent": "int(*)(uintptr_t, int, const char *, RedisModuleString *)",
    "KeyAtPos": "void(*)(uintptr_t, int)",
    "GetContextFlags": "int(*)(uintptr_t)",
    "Log": "void(*)(uintptr_t, const char *, const char *, ...)",
    "LogIOError": "void(*)(RedisModuleIO *, const char *, const char *, ...)",
    "SaveUnsigned": "void(*)(RedisModuleIO *, uint64_t)",
    "LoadUnsigned": "uint64_t(*)(RedisModuleIO *)",
    "SaveStringBuffer": "void(*)(RedisModuleIO *, const char *, size_t)",
    "LoadStringBuffer": "char *(*)(RedisModuleIO *, size_t *)",
    "SaveString": "void(*)(RedisModuleIO *, RedisModuleString *)",
    "LoadString": "RedisModuleString *(*)(RedisModuleIO *)",
    "IsIOError": "int(*)(RedisModuleIO *)",
    "GetKeyNameFromIO": "const RedisModuleString *(*)(RedisModuleIO *)",
    "DigestAddStringBuffer": "void(*)(RedisModuleDigest *, const char *, size_t)",
    "DigestAddLongLong": "void(*)(RedisModuleDigest *, long long)",
    "DigestEndSequence": "void(*)(RedisModuleDigest *)",
    "Free": "void(*)(void *)",
    "StringPtrLen": "const char *(*)(const RedisModuleString *, size_t *)",
    "BlockClient": "RedisModuleBlockedClient *(*)(uintptr_t, RedisModuleCmdFunc, RedisModuleCmdFunc,"
    " RedisModuleFreePrivdataFunc, long long)",
    "UnblockClient": "int(*)(RedisModuleBlockedClient *, void *)",
    "AbortBlock": "int(*)(RedisModuleBlockedClient *)",
    "BlockedClientMeasureTimeStart": "int(*)(RedisModuleBlockedClient *)",
    "BlockedClientMeasureTimeEnd": "int(*)(RedisModuleBlockedClient *)",
    "Milliseconds": "long long(*)(void)",
    "Call": "RedisModuleCallReply *(*)(uintptr_t, const char *, const char *, ...)",
    "CallReplyArrayElement": "RedisModuleCallReply *(*)(RedisModuleCallReply *, size_t)",
    "CallReplyLength": "size_t(*)(RedisModuleCallReply *)",
    "CallReplyStringPtr": "const char *(*)(RedisModuleCallReply *, size_t *)",
    "FreeCallReply": "void(*)(RedisModuleCallReply *)",
    "RegisterInfoFunc": "int(*)(uintptr_t, void (*)(RedisModuleInfoCtx *, int))",
    "InfoAddSection": "int(*)(RedisModuleInfoCtx *, const char *)",
    "InfoAddFieldCString": "int(*)(RedisModuleInfoCtx *, const char *, const char *)",
    "InfoAddFieldLongLong": "int(*)(RedisModuleInfoCtx *, const char *, long long)",
}

# Optional: scripts calling Redis (execution/script_host.py) from a worker's thread-safe context, as the
# calling client's ACL user in the client's database. RedisModule_SetContextUser came with Redis 7.0.6:
# on an older Redis these stay None and redis.execute in a script says so; the rest of the module works.
_OPTIONAL_SIGNATURES = {
    # ACL categories of module commands: Redis 7.2+ (SetCommandACLCategories), 7.4+ (AddACLCategory), Valkey
    "GetCommand": "void *(*)(uintptr_t, const char *)",
    "SetCommandACLCategories": "int(*)(void *, const char *)",
    "AddACLCategory": "int(*)(uintptr_t, const char *)",
    "CreateString": "RedisModuleString *(*)(uintptr_t, const char *, size_t)",
    "FreeString": "void(*)(uintptr_t, RedisModuleString *)",
    "GetSelectedDb": "int(*)(uintptr_t)",
    "SelectDb": "int(*)(uintptr_t, int)",
    "GetCurrentUserName": "RedisModuleString *(*)(uintptr_t)",
    "GetModuleUserFromUserName": "RedisModuleUser *(*)(RedisModuleString *)",
    "FreeModuleUser": "int(*)(RedisModuleUser *)",
    "SetContextUser": "void(*)(uintptr_t, const RedisModuleUser *)",
    "ACLCheckCommandPermissions": "int(*)(RedisModuleUser *, RedisModuleString **, int)",
    "GetThreadSafeContext": "uintptr_t(*)(RedisModuleBlockedClient *)",
    "FreeThreadSafeContext": "void(*)(uintptr_t)",
    "ThreadSafeContextLock": "void(*)(uintptr_t)",
    "ThreadSafeContextUnlock": "void(*)(uintptr_t)",
    "GetCommandKeys": "int *(*)(uintptr_t, RedisModuleString **, int, int *)",
    "CallReplyProto": "const char *(*)(RedisModuleCallReply *, size_t *)",
}

# Constants of the Modules API used from Python.
OK, ERR = 0, 1
READ, WRITE = 1 << 0, 1 << 1
NOTIFY_MODULE = 1 << 13
CTX_FLAGS_LUA, CTX_FLAGS_MULTI = 1 << 0, 1 << 1
CTX_FLAGS_REPLICATED = 1 << 12
CTX_FLAGS_LOADING = 1 << 13
CTX_FLAGS_DENY_BLOCKING = 1 << 21
WRONGTYPE = b"WRONGTYPE Operation against a key holding the wrong kind of value"


class _Api:
    """Attribute per API function (`rm.ReplyWithArray(ctx, n)`), filled by bind()."""


rm = _Api()
shim = None  # the loaded redisai.so (its exported symbols)
_varargs = None  # the shim's variadic calls (module/varargs.c)
NULL = ffi.NULL


def bind(shim_path: str) -> None:
    """Resolves every API function once; called by the module at load, before any command."""
    global shim, _varargs
    import _redisai_varargs  # registered by the shim before Python code runs

    _varargs = _redisai_varargs
    # dlopen of the already-loaded path returns that same copy, whose pointers Redis filled.
    shim = ffi.dlopen(shim_path)
    for name, ctype in _SIGNATURES.items():
        slot = ffi.new("void **")
        if shim.RedisModule_GetApi(("RedisModule_" + name).encode(), slot) != OK:
            raise RuntimeError(f"this Redis has no RedisModule_{name}")
        setattr(rm, name, ffi.cast(ctype, slot[0]))
    for name, ctype in _OPTIONAL_SIGNATURES.items():
        slot = ffi.new("void **")
        found = shim.RedisModule_GetApi(("RedisModule_" + name).encode(), slot) == OK
        setattr(rm, name, ffi.cast(ctype, slot[0]) if found else None)


# Resolved once: casting with a type object skips cffi's parse of the type string (hot path).
ARGV = ffi.typeof("RedisModuleString **")
STRING = ffi.typeof("RedisModuleString *")
IO = ffi.typeof("RedisModuleIO *")
DIGEST = ffi.typeof("RedisModuleDigest *")
VOIDP = ffi.typeof("void *")
INFO = ffi.typeof("RedisModuleInfoCtx *")
UINTPTR = ffi.typeof("uintptr_t")


def string_bytes(s) -> bytes:
    """Bytes of a RedisModuleString (copied)."""
    size = ffi.new("size_t *")
    p = rm.StringPtrLen(s, size)
    return ffi.unpack(p, size[0])


def log(level: str, message: str) -> None:
    rm.Log(0, level.encode(), b"%s", ffi.new("char[]", ("redisai: " + message).encode(errors="replace")))




def replicate(ctx, command: bytes, args: list) -> None:
    """Propagates `command args...` to replicas and the AOF (RM_Replicate; args are bytes-like).

    Variadic calls go through the shim (module/varargs.c): cffi would build a C function type per call."""
    _varargs.replicate(ctx, command, args)


def emit_aof(io, command: bytes, args: list) -> None:
    """One command of an AOF rewrite (RM_EmitAOF; args are bytes-like)."""
    _varargs.emit_aof(int(ffi.cast(UINTPTR, io)), command, args)


def config_get(ctx, name: bytes) -> bytes | None:
    """A Redis setting's value (CONFIG GET), or None."""
    reply = rm.Call(ctx, b"CONFIG", b"cc", ffi.new("char[]", b"GET"), ffi.new("char[]", name))
    if reply == NULL:
        return None
    try:
        if rm.CallReplyLength(reply) < 2:
            return None
        size = ffi.new("size_t *")
        pointer = rm.CallReplyStringPtr(rm.CallReplyArrayElement(reply, 1), size)
        return ffi.unpack(pointer, size[0]) if pointer != NULL else None
    finally:
        rm.FreeCallReply(reply)
