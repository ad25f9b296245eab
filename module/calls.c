/* The Modules API calls made for every command, as CPython functions that keep the GIL.
 *
 * cffi releases the GIL around every C call. The main thread keeps the GIL from one command to the
 * next (redisai.c), but each release in between lets a waiting worker take it, and the main thread
 * then waits to get it back: two futex wake-ups and context switches per call. These calls are
 * short and never wait, so they run with the GIL held; the rest of the API stays in cbridge/ (cffi).
 * Pointers are passed as ints. Plumbing only: what a key must hold and what a reply says stay in
 * Python. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

#include "redismodule.h"
#include "shim.h"
#include "replies.h"


/* Argument parsing: every argument is an int (a pointer or a number) unless said otherwise. */
static int pointerArgs(PyObject *const *args, Py_ssize_t n, Py_ssize_t expected, void **out, const char *name) {
    if (n != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, expected);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsVoidPtr(args[i]);
        if (!out[i] && PyErr_Occurred()) return -1;
    }
    return 0;
}

/* NULL for a pointer argument that was 0 or not an int, with the exception Python expects. */
static PyObject *badPointer(void) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a pointer argument is 0");
    return NULL;
}

static RedisModuleType *typeOf(PyObject *kind) {
    long k = PyLong_AsLong(kind);
    if (k == 0) return RedisAI_TensorType;
    if (k == 1) return RedisAI_ModelType;
    if (k == 2) return RedisAI_ScriptType;
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "kind must be 0 (tensor), 1 (model) or 2 (script)");
    return NULL;
}

/* key_read(ctx, name: bytes, kind) -> the value's address, 0 for an empty key, -1 for another type */
static PyObject *keyRead(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 3 || !PyBytes_Check(args[1])) { PyErr_SetString(PyExc_TypeError, "key_read(ctx, name: bytes, kind)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    RedisModuleType *type = typeOf(args[2]);
    if (!ctx || !type) return badPointer();
    uintptr_t value;
    int state = RedisAI_KeyRead(ctx, NULL, PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]), type, &value);
    if (state == 1) return PyLong_FromVoidPtr((void *)value);
    return PyLong_FromLong(state == 0 ? 0 : -1);
}

/* key_write(ctx, name: bytes, kind, address) -> 1 stored, -1 the key holds another type, -2 failed */
static PyObject *keyWrite(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 4 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "key_write(ctx, name: bytes, kind, address)");
        return NULL;
    }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    RedisModuleType *type = typeOf(args[2]);
    void *value = PyLong_AsVoidPtr(args[3]);
    if (!ctx || !type || !value) return badPointer();
    /* The value this replaces is parked (outcome.c) and released by Python right after this call
     * (keyspace.write): freeing it here would call back into Python in the middle of the call. */
    RedisAI_DeferringFrees = 1;
    int state = RedisAI_KeyWrite(ctx, NULL, PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]), type,
                                 (uintptr_t)value);
    RedisAI_DeferringFrees = 0;
    return PyLong_FromLong(state);
}

/* notify(ctx, event: bytes, name: bytes): a module keyspace event */
static PyObject *notify(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 3 || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "notify(ctx, event: bytes, name: bytes)");
        return NULL;
    }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    if (!ctx) return badPointer();
    RedisModuleString *name = RedisModule_CreateString(ctx, PyBytes_AS_STRING(args[2]), (size_t)PyBytes_GET_SIZE(args[2]));
    RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_MODULE, PyBytes_AS_STRING(args[1]), name);
    RedisModule_FreeString(ctx, name);
    Py_RETURN_NONE;
}

static PyObject *contextFlags(PyObject *self, PyObject *arg) {
    (void)self;
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(arg); /* NULL is allowed: the server's flags only */
    if (!ctx && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(RedisModule_GetContextFlags(ctx));
}

/* block(ctx) -> the blocked client, with the shim's reply, timeout, free and disconnect callbacks, its
 * time measured */
static PyObject *block(PyObject *self, PyObject *arg) {
    (void)self;
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(arg);
    if (!ctx) return badPointer();
    RedisModuleBlockedClient *client =
        RedisModule_BlockClient(ctx, RedisAI_Unblocked, RedisAI_BlockTimeout, RedisAI_FreePrivdata, 0);
    if (!client) return PyErr_NoMemory();
    RedisModule_BlockedClientMeasureTimeStart(client);
    if (RedisModule_SetDisconnectCallback) RedisModule_SetDisconnectCallback(client, RedisAI_Disconnected);
    return PyLong_FromVoidPtr(client);
}

/* unblock(client, outcome): ends the time measure and hands the client its outcome (any thread) */
static PyObject *unblock(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    void *p[2];
    if (pointerArgs(args, n, 2, p, "unblock") < 0) return NULL;
    RedisModule_BlockedClientMeasureTimeEnd(p[0]);
    RedisModule_UnblockClient(p[0], p[1]);
    Py_RETURN_NONE;
}

static PyObject *signalPost(PyObject *self, PyObject *arg) {
    (void)self;
    void *signal = PyLong_AsVoidPtr(arg);
    if (!signal) return badPointer();
    RedisAI_SignalPost(signal);
    Py_RETURN_NONE;
}

static PyObject *signalGeneration(PyObject *self, PyObject *arg) {
    (void)self;
    void *signal = PyLong_AsVoidPtr(arg);
    if (!signal) return badPointer();
    return PyLong_FromUnsignedLong(RedisAI_SignalGeneration(signal));
}

/* reply_status(ctx, text), reply_error(ctx, message): one line; reply_bulk(ctx, buffer) */
static PyObject *replyLine(PyObject *const *args, Py_ssize_t n, int (*send)(RedisModuleCtx *, const char *)) {
    if (n != 2 || !PyBytes_Check(args[1])) { PyErr_SetString(PyExc_TypeError, "(ctx, text: bytes)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    if (!ctx) return badPointer();
    send(ctx, PyBytes_AS_STRING(args[1]));
    Py_RETURN_NONE;
}
static PyObject *replyStatus(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    return replyLine(args, n, RedisModule_ReplyWithSimpleString);
}
static PyObject *replyError(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    return replyLine(args, n, RedisModule_ReplyWithError);
}
static PyObject *replyBulk(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "reply_bulk(ctx, buffer)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    if (!ctx) return badPointer();
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    RedisModule_ReplyWithStringBuffer(ctx, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *replicateVerbatim(PyObject *self, PyObject *arg) {
    (void)self;
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(arg);
    if (!ctx) return badPointer();
    RedisModule_ReplicateVerbatim(ctx);
    Py_RETURN_NONE;
}

/* send(ctx, parts): a whole reply (replies.c), every part checked before anything is sent */
static PyObject *send(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "send(ctx, parts)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(args[0]);
    if (!ctx) return badPointer();
    ReplyProgram program = {0};
    if (RedisAI_ReplyBuild(args[1], &program) < 0) return NULL;
    RedisAI_ReplySend(ctx, &program);
    RedisAI_ReplyFree(&program);
    Py_RETURN_NONE;
}

#define FAST(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc}
static PyMethodDef methods[] = {
    FAST("key_read", keyRead, "key_read(ctx, name, kind) -> address, 0 empty, -1 another type"),
    FAST("key_write", keyWrite, "key_write(ctx, name, kind, address) -> 1 stored, -1 another type, -2 failed"),
    FAST("notify", notify, "notify(ctx, event, name): a module keyspace event"),
    {"context_flags", contextFlags, METH_O, "context_flags(ctx) -> RM_GetContextFlags"},
    {"block", block, METH_O, "block(ctx) -> blocked client"},
    FAST("unblock", unblock, "unblock(client, outcome)"),
    {"signal_post", signalPost, METH_O, "signal_post(signal): wakes a device queue (handoff.c)"},
    {"signal_generation", signalGeneration, METH_O, "signal_generation(signal) -> its generation"},
    FAST("reply_status", replyStatus, "reply_status(ctx, text)"),
    FAST("reply_error", replyError, "reply_error(ctx, message)"),
    FAST("reply_bulk", replyBulk, "reply_bulk(ctx, buffer)"),
    {"replicate_verbatim", replicateVerbatim, METH_O, "replicate_verbatim(ctx)"},
    FAST("send", send, "send(ctx, [(opcode, argument), ...]): a reply of any shape"),
    FAST("fast_paths", RedisAI_FastPathsSetup,
         "fast_paths(types, make, release, plain_dtypes, submit_run): AI.TENSORSET's, AI.TENSORGET's and "
         "AI.MODELEXECUTE's (fastpath.c)"),
    FAST("dag_fast_path", RedisAI_DagFastPathSetup,
         "dag_fast_path(make_local, submit, formats): AI.DAGEXECUTE's common form (dagpath.c)"),
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduleDef = {PyModuleDef_HEAD_INIT, "_redisai_calls", NULL, -1, methods,
                                       NULL, NULL, NULL, NULL};

int RedisAI_RegisterCallsModule(void) {
    PyObject *module = PyModule_Create(&moduleDef);
    if (!module) return -1;
    if (RedisAI_ReplyAddOpcodes(module) < 0) { Py_DECREF(module); return -1; }
    int rc = PyDict_SetItemString(PyImport_GetModuleDict(), "_redisai_calls", module);
    Py_DECREF(module);
    return rc;
}
