/* The Modules API's variadic calls (RM_Replicate, RM_EmitAOF) with a Python list of arguments.
 *
 * cffi builds a new C function type for every variadic call it makes; for a replicated
 * AI.TENSORSET that cost ~14 us per output on a VM, more than the rest of the reply. Here each
 * argument (any bytes-like object) becomes a RedisModuleString and the call uses the "v" format,
 * which takes them as one array. Python reaches these through cbridge, like the rest of the API. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "redismodule.h"
#include "shim.h"

/* Fills strings[0..n) from the sequence; returns how many were created (n on success). */
static Py_ssize_t createStrings(RedisModuleCtx *ctx, PyObject *seq, RedisModuleString **strings) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) return i;
        strings[i] = RedisModule_CreateString(ctx, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
    }
    return n;
}

typedef void (*Emit)(void *target, const char *command, RedisModuleString **strings, size_t n);

static void emitReplicate(void *ctx, const char *command, RedisModuleString **strings, size_t n) {
    RedisModule_Replicate((RedisModuleCtx *)ctx, command, "v", strings, n);
}

static void emitAof(void *io, const char *command, RedisModuleString **strings, size_t n) {
    RedisModule_EmitAOF((RedisModuleIO *)io, command, "v", strings, n);
}

/* (target address, command bytes, sequence of bytes-like) */
static PyObject *callVariadic(PyObject *args, Emit emit, int strings_need_ctx) {
    unsigned long long target;
    const char *command;
    PyObject *arguments;
    if (!PyArg_ParseTuple(args, "KyO", &target, &command, &arguments)) return NULL;
    PyObject *seq = PySequence_Fast(arguments, "arguments must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    RedisModuleString *small[16];
    RedisModuleString **strings = n <= 16 ? small : PyMem_Malloc(sizeof(*strings) * (size_t)n);
    if (!strings) { Py_DECREF(seq); return PyErr_NoMemory(); }
    /* Strings made with a NULL context are freed by us; EmitAOF has no context to give them. */
    RedisModuleCtx *ctx = strings_need_ctx ? (RedisModuleCtx *)(uintptr_t)target : NULL;
    Py_ssize_t made = createStrings(ctx, seq, strings);
    if (made == n) emit((void *)(uintptr_t)target, command, strings, (size_t)n);
    for (Py_ssize_t i = 0; i < made; i++) RedisModule_FreeString(ctx, strings[i]);
    if (strings != small) PyMem_Free(strings);
    Py_DECREF(seq);
    if (made != n) return NULL;
    Py_RETURN_NONE;
}

static PyObject *replicate(PyObject *self, PyObject *args) {
    (void)self;
    return callVariadic(args, emitReplicate, 1);
}

static PyObject *emitAofCommand(PyObject *self, PyObject *args) {
    (void)self;
    return callVariadic(args, emitAof, 0);
}

static PyMethodDef methods[] = {
    {"replicate", replicate, METH_VARARGS, "replicate(ctx, command, args): RM_Replicate with binary args"},
    {"emit_aof", emitAofCommand, METH_VARARGS, "emit_aof(io, command, args): RM_EmitAOF with binary args"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduleDef = {PyModuleDef_HEAD_INIT, "_redisai_varargs", NULL, -1, methods,
                                       NULL, NULL, NULL, NULL};

/* Registers the built-in module `_redisai_varargs`; called with the GIL held, after Py_Initialize. */
int RedisAI_RegisterVarargsModule(void) {
    PyObject *module = PyModule_Create(&moduleDef);
    if (!module) return -1;
    int rc = PyDict_SetItemString(PyImport_GetModuleDict(), "_redisai_varargs", module);
    Py_DECREF(module);
    return rc;
}
