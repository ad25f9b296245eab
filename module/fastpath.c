/* The common forms of AI.TENSORSET (`key TYPE dim... BLOB data`), AI.TENSORGET (`key BLOB`) and
 * AI.MODELEXECUTE (`key INPUTS n in... OUTPUTS m out... [TIMEOUT t]`) without Python's per-argument work.
 *
 * Python decides once, at load (commands/tensor.py and commands/model.py, fast_path): which type names
 * AI.TENSORSET's path takes and their element sizes, the function that makes and registers the tensor
 * and the one that releases it, the tensor types whose data AI.TENSORGET's path may send as it is
 * (numeric types whose array numpy exports as a buffer), and the function that queues a run whose keys
 * C has read. AI.TENSORGET's path reads the key, checks that it holds a
 * tensor of one of those types and replies its array's bytes, as reply.tensor does; anything else goes
 * to Python. For AI.TENSORSET C only recognizes the form:
 * every dim a positive integer as Redis's string2ll reads it, the BLOB last and exactly the shape's
 * bytes, smaller than the arguments that reach Python as views, and a key that is empty or holds a
 * tensor. AI.MODELEXECUTE's path parses the grammar (counts and TIMEOUT positive integers), reads the
 * model key and every input key (each must hold its type) and hands Python the values; Python checks
 * what only it knows (the model loaded, the counts against its definition, the client blockable, the
 * queue's bound) and starts the run as the general parse does (commands/runs.start: a DAG of one op,
 * whose outcome module/outcome.c applies), or declines before changing anything. Anything else (another
 * form, an empty key or one of another type, a declined run, any failure before a change) goes to the
 * general path in Python, which decides it with its own replies; what these paths store, replicate,
 * notify and reply is what the general path does for the same command. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <strings.h>

#include "redismodule.h"
#include "shim.h"

#define MAX_TYPES 32
#define PARKED_BATCH 32
#define PARKED_MAX_BYTES (64 * 1024) /* a replaced tensor from this size is freed at once */
#define MAX_DIMS 64

static struct {
    char name[16];
    size_t len;
    long long itemsize;
} types[MAX_TYPES];
static int typeCount;
static PyObject *makeTensor;    /* (type index, shape tuple) -> (the registered tensor's address, its array) */
static PyObject *releaseTensor; /* (address) -> None: a registered tensor no key took */
static PyObject *plainDtypes;   /* tuple of the DType objects AI.TENSORGET's path sends as they are */
static PyObject *dtypeName, *arrayName; /* interned "dtype", "array" */
/* (ctx, model, inputs tuple, output names tuple, timeout ms) -> True queued (the client is blocked),
 * False declined (nothing changed) */
static PyObject *submitRun;

int RedisAI_TensorTypeIndex(const char *name, size_t len, long long *itemsize) {
    for (int i = 0; i < typeCount; i++)
        if (types[i].len == len && strncasecmp(types[i].name, name, len) == 0) {
            *itemsize = types[i].itemsize;
            return i;
        }
    return -1;
}

int RedisAI_IsKeyword(RedisModuleString *arg, const char *keyword) {
    size_t len;
    const char *p = RedisModule_StringPtrLen(arg, &len);
    return len == strlen(keyword) && strncasecmp(p, keyword, len) == 0;
}

static int isBlobKeyword(RedisModuleString *arg) { return RedisAI_IsKeyword(arg, "BLOB"); }

/* 1 when the command was answered here, 0 when the general path must take it (nothing changed). */
static int tensorsetFast(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int ndims = argc - 5; /* AI.TENSORSET key TYPE dim... BLOB data */
    if (!makeTensor || ndims < 1 || ndims > MAX_DIMS || !isBlobKeyword(argv[argc - 2])) return 0;
    size_t len;
    const char *name = RedisModule_StringPtrLen(argv[2], &len);
    long long bytes;
    int type = RedisAI_TensorTypeIndex(name, len, &bytes);
    if (type < 0) return 0;
    size_t blob_len;
    const char *blob = RedisModule_StringPtrLen(argv[argc - 1], &blob_len);
    long long dims[MAX_DIMS];
    for (int i = 0; i < ndims; i++) {
        if (!(dims[i] = RedisAI_PositiveArg(argv[3 + i])) || !RedisAI_TimesDimWithin(&bytes, dims[i], blob_len))
            return 0;
    }
    if ((long long)blob_len != bytes) return 0;

    /* Opened once for the check and the write: the key stays open across the one Python call. */
    RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ | REDISMODULE_WRITE);
    if (RedisAI_KeyHolds(key, RedisAI_TensorType) < 0) {
        RedisModule_CloseKey(key);
        return 0;
    }
    RedisAI_EnterPython();
    int answered = 0;
    PyObject *shape = PyTuple_New(ndims);
    for (int i = 0; shape && i < ndims; i++) {
        PyObject *dim = PyLong_FromLongLong(dims[i]);
        if (!dim) { Py_CLEAR(shape); break; }
        PyTuple_SET_ITEM(shape, i, dim);
    }
    PyObject *args[] = {PyLong_FromLong(type), shape};
    PyObject *made = args[0] && args[1] ? PyObject_Vectorcall(makeTensor, args, 2, NULL) : NULL;
    void *value = NULL;
    if (made && PyTuple_Check(made) && PyTuple_GET_SIZE(made) == 2) {
        value = PyLong_AsVoidPtr(PyTuple_GET_ITEM(made, 0));
        Py_buffer view;
        int filled = 0;
        if (value && PyObject_GetBuffer(PyTuple_GET_ITEM(made, 1), &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) == 0) {
            if (view.len == (Py_ssize_t)blob_len) {
                memcpy(view.buf, blob, blob_len); /* before any key holds it: tensors are immutable after */
                filled = 1;
            }
            PyBuffer_Release(&view);
        }
        /* The value a small tensor replaces is parked (outcome.c) instead of freed through Python's free
         * hook, one call per command: Python releases the parked ones together, at the next turn of the
         * event loop or below once PARKED_BATCH wait (a pipeline of overwrites holds at most that many).
         * A large one's is freed at once: parked, PARKED_BATCH of them could hold gigabytes, and its block
         * is the next large write's. */
        RedisAI_DeferringFrees = blob_len < PARKED_MAX_BYTES;
        int stored = filled && RedisModule_ModuleTypeSetValue(key, RedisAI_TensorType, value) == REDISMODULE_OK;
        RedisAI_DeferringFrees = 0;
        if (stored) {
            answered = 1;
        } else if (value) {
            Py_XDECREF(PyObject_CallOneArg(releaseTensor, PyTuple_GET_ITEM(made, 0)));
        }
    }
    PyErr_Clear(); /* a failure is the general path's to report */
    if (atomic_load(&RedisAI_ParkedCount) >= PARKED_BATCH) RedisAI_ReleaseParked();
    Py_XDECREF(made);
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    RedisAI_LeavePython();
    RedisModule_CloseKey(key);
    if (!answered) return 0;
    RedisModule_ReplyWithSimpleString(ctx, "OK");
    RedisAI_TensorWritten(ctx, argv[1], NULL, 0);
    return 1;
}

/* AI.TENSORGET key BLOB: 1 when answered here, 0 for the general path (nothing sent). */
static int tensorgetFast(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 3 || !plainDtypes || !isBlobKeyword(argv[2])) return 0;
    uintptr_t address;
    if (RedisAI_KeyRead(ctx, argv[1], NULL, 0, RedisAI_TensorType, &address) != 1) return 0;
    RedisAI_EnterPython();
    int answered = 0;
    PyObject *tensor = (PyObject *)address; /* held by keyspace._values while the key holds it */
    PyObject *dtype = PyObject_GetAttr(tensor, dtypeName);
    int plain = 0;
    for (Py_ssize_t i = 0; dtype && i < PyTuple_GET_SIZE(plainDtypes); i++)
        if (PyTuple_GET_ITEM(plainDtypes, i) == dtype) plain = 1;
    PyObject *array = plain ? PyObject_GetAttr(tensor, arrayName) : NULL;
    Py_buffer view;
    if (array && PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS) == 0) {
        RedisModule_ReplyWithStringBuffer(ctx, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
        answered = 1;
    }
    PyErr_Clear(); /* the general path replies instead */
    Py_XDECREF(array);
    Py_XDECREF(dtype);
    RedisAI_LeavePython();
    return answered;
}

int RedisAI_TensorGetCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (tensorgetFast(ctx, argv, argc)) return REDISMODULE_OK;
    return RedisAI_Command(ctx, argv, argc);
}

int RedisAI_TensorSetCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (tensorsetFast(ctx, argv, argc)) return REDISMODULE_OK;
    return RedisAI_Command(ctx, argv, argc);
}

#define MAX_RUN_KEYS 64

long long RedisAI_PositiveArg(RedisModuleString *arg) {
    long long value;
    return RedisModule_StringToLongLong(arg, &value) == REDISMODULE_OK && value > 0 ? value : 0;
}

int RedisAI_TimesDimWithin(long long *bytes, long long dim, size_t limit) {
    long long product;
    if (__builtin_mul_overflow(*bytes, dim, &product) || (unsigned long long)product > limit) return 0;
    *bytes = product;
    return 1;
}

/* AI.MODELEXECUTE key INPUTS n in... OUTPUTS m out... [TIMEOUT t]: 1 when Python queued the run (or
 * failed, answered here), 0 for the general path (nothing changed). */
static int modelexecuteFast(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (!submitRun || argc < 8 || RedisModule_IsKeysPositionRequest(ctx) || !RedisAI_IsKeyword(argv[2], "INPUTS"))
        return 0;
    long long inputs = RedisAI_PositiveArg(argv[3]);
    if (!inputs || inputs > MAX_RUN_KEYS || 4 + inputs + 2 > argc || !RedisAI_IsKeyword(argv[4 + inputs], "OUTPUTS"))
        return 0;
    long long outputs = RedisAI_PositiveArg(argv[5 + inputs]);
    int end = (int)(6 + inputs + outputs);
    if (!outputs || outputs > MAX_RUN_KEYS || end > argc) return 0;
    long long timeout = 0;
    if (end != argc) {
        if (end + 2 != argc || !RedisAI_IsKeyword(argv[end], "TIMEOUT") || !(timeout = RedisAI_PositiveArg(argv[end + 1]))) return 0;
    }
    uintptr_t model, tensors[MAX_RUN_KEYS];
    if (RedisAI_KeyRead(ctx, argv[1], NULL, 0, RedisAI_ModelType, &model) != 1) return 0;
    for (int i = 0; i < inputs; i++)
        if (RedisAI_KeyRead(ctx, argv[4 + i], NULL, 0, RedisAI_TensorType, &tensors[i]) != 1) return 0;

    RedisAI_EnterPython();
    /* The values are held by keyspace._values while their keys hold them, and no key changes here. */
    PyObject *in = PyTuple_New(inputs), *out = PyTuple_New(outputs);
    for (int i = 0; in && i < inputs; i++) PyTuple_SET_ITEM(in, i, Py_NewRef((PyObject *)tensors[i]));
    for (int i = 0; out && i < outputs; i++) {
        size_t len;
        const char *name = RedisModule_StringPtrLen(argv[6 + inputs + i], &len);
        PyObject *bytes = PyBytes_FromStringAndSize(name, (Py_ssize_t)len);
        if (!bytes) { Py_CLEAR(out); break; }
        PyTuple_SET_ITEM(out, i, bytes);
    }
    PyObject *args[] = {PyLong_FromVoidPtr(ctx), (PyObject *)model, in, out, PyLong_FromLongLong(timeout)};
    PyObject *res = args[0] && in && out && args[4] ? PyObject_Vectorcall(submitRun, args, 5, NULL) : NULL;
    int answered = res ? PyObject_IsTrue(res) == 1 : 1;
    if (!res) { /* past Python's own handler (commands/request.reply_failure), which may have blocked the client */
        RedisAI_LogPythonError(NULL, "AI.MODELEXECUTE");
        RedisModule_ReplyWithError(ctx, "ERR internal error in redisai (see the server log)");
    }
    PyErr_Clear();
    Py_XDECREF(res);
    Py_XDECREF(args[0]);
    Py_XDECREF(in);
    Py_XDECREF(out);
    Py_XDECREF(args[4]);
    RedisAI_LeavePython();
    return answered;
}

int RedisAI_ModelExecuteCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (modelexecuteFast(ctx, argv, argc)) return REDISMODULE_OK;
    return RedisAI_Command(ctx, argv, argc);
}

/* fast_paths(types: [(name: bytes, itemsize: int)], make, release, plain_dtypes: tuple, submit_run),
 * once at load */
PyObject *RedisAI_FastPathsSetup(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 5 || !PyList_Check(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2]) ||
        !PyTuple_Check(args[3]) || !PyCallable_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "fast_paths(types: list, make, release, plain_dtypes: tuple, submit_run)");
        return NULL;
    }
    if (!dtypeName && !(dtypeName = PyUnicode_InternFromString("dtype"))) return NULL;
    if (!arrayName && !(arrayName = PyUnicode_InternFromString("array"))) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(args[0]);
    if (count > MAX_TYPES) { PyErr_SetString(PyExc_ValueError, "too many types"); return NULL; }
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *name;
        Py_ssize_t len;
        long long itemsize;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(args[0], i), "y#L", &name, &len, &itemsize)) return NULL;
        if (len <= 0 || len >= (Py_ssize_t)sizeof(types[i].name) || itemsize <= 0) {
            PyErr_SetString(PyExc_ValueError, "a type name of 1-15 bytes and a positive item size");
            return NULL;
        }
        memcpy(types[i].name, name, (size_t)len);
        types[i].len = (size_t)len;
        types[i].itemsize = itemsize;
    }
    typeCount = (int)count;
    Py_XSETREF(makeTensor, Py_NewRef(args[1]));
    Py_XSETREF(releaseTensor, Py_NewRef(args[2]));
    Py_XSETREF(plainDtypes, Py_NewRef(args[3]));
    Py_XSETREF(submitRun, Py_NewRef(args[4]));
    Py_RETURN_NONE;
}
