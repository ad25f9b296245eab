/* Outcomes of runs and other blocked commands, and the one place where a run's outcome is applied.
 *
 * Every blocked client's private data is one of these. For a run (any AI.MODELEXECUTE, MODELRUN,
 * SCRIPTEXECUTE, SCRIPTRUN or DAG: commands/run.py, outcome_of) Python builds it on the worker while it
 * holds the GIL: the reply's text, or each output's key name, the value to store and the AI.TENSORSET
 * arguments that replicate it, all copied into Redis strings, then a reply (OK or a DAG's parts).
 * Redis's main thread applies it in C (RedisAI_ReplyOutcome): writes every key (all or nothing: an
 * output key of another type is answered WRONGTYPE and nothing is written), replicates each as
 * AI.TENSORSET ... BLOB, announces ai.tensorset, replies. Python applies one at once the same way
 * (_redisai_outcome.apply) when a DAG's reply is too large to copy or a run needs no worker. An outcome
 * of kind PYTHON (the id of a job that Python answers) is for the other blocked commands.
 *
 * Writing a key frees the value it held, and freeing a value is Python's (it owns the object). While
 * an outcome is stored, the free callback therefore parks the values here; Python takes them with
 * _redisai_outcome.take_parked() and releases them at its next chance (keyspace.release_parked). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "redismodule.h"
#include "shim.h"
#include "replies.h"

enum { OUTCOME_PYTHON = 0, OUTCOME_OUTPUTS = 1, OUTCOME_ERROR = 2, OUTCOME_STATUS = 3 };

typedef struct {
    RedisModuleString *name;
    uintptr_t value; /* a registered Python value (keyspace.register) */
    int nargs;
    RedisModuleString **args; /* AI.TENSORSET's arguments, the key name first */
} Output;

typedef struct {
    int kind;
    long long job_id; /* OUTCOME_PYTHON */
    char *text;       /* OUTCOME_ERROR, OUTCOME_STATUS */
    int noutputs;
    Output *outputs;
    int has_reply; /* OUTCOME_OUTPUTS: this reply (a copy) instead of OK */
    ReplyProgram reply;
} Outcome;

enum { KEY_HOLDS_TYPE = 1, KEY_OTHER_TYPE = -1 };
#define WRONGTYPE_ERROR "WRONGTYPE Operation against a key holding the wrong kind of value" /* Redis's text */ /* RedisAI_KeyWrite's states (keys.c) */

/* ---------------------------------------------------------------- deferred frees */

atomic_int RedisAI_DeferringFrees; /* set by the main thread while it stores an outcome */
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *parked;
static size_t parked_count, parked_size;
atomic_size_t RedisAI_ParkedCount; /* read without the lock: is there anything to take? */

/* Returns 0 when the value cannot be parked (no memory): the caller frees it at once instead. */
int RedisAI_ParkFree(void *value) {
    pthread_mutex_lock(&parked_lock);
    if (parked_count == parked_size) {
        size_t size = parked_size ? parked_size * 2 : 64;
        uintptr_t *grown = realloc(parked, size * sizeof(*grown));
        if (!grown) { pthread_mutex_unlock(&parked_lock); return 0; }
        parked = grown;
        parked_size = size;
    }
    parked[parked_count++] = (uintptr_t)value;
    atomic_store(&RedisAI_ParkedCount, parked_count);
    pthread_mutex_unlock(&parked_lock);
    return 1;
}

/* ---------------------------------------------------------------- main thread: the reply */

/* Frees the outcome and its strings; values not stored stay Python's to release. */
static void disposeOutcome(Outcome *o) {
    for (int i = 0; i < o->noutputs; i++) {
        Output *out = &o->outputs[i];
        if (out->name) RedisModule_FreeString(NULL, out->name);
        for (int a = 0; a < out->nargs; a++) RedisModule_FreeString(NULL, out->args[a]);
        free(out->args);
    }
    free(o->outputs);
    if (o->has_reply) RedisAI_ReplyFree(&o->reply); /* copies only: no Python needed */
    free(o->text);
    free(o);
}

static int holdsOtherType(RedisModuleCtx *ctx, RedisModuleString *name) {
    RedisModuleKey *key = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    int type = RedisModule_KeyType(key);
    int other = type != REDISMODULE_KEYTYPE_EMPTY &&
                (type != REDISMODULE_KEYTYPE_MODULE || RedisModule_ModuleTypeGetType(key) != RedisAI_TensorType);
    RedisModule_CloseKey(key);
    return other;
}

void RedisAI_TensorWritten(RedisModuleCtx *ctx, RedisModuleString *name, RedisModuleString **args, int nargs) {
    if (args)
        RedisModule_Replicate(ctx, "AI.TENSORSET", "v", args, (size_t)nargs);
    else
        RedisModule_ReplicateVerbatim(ctx);
    RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_MODULE, "ai.tensorset", name);
}

/* An output key holds another type: nothing was written, the values go back to Python (parked) and
 * the client gets WRONGTYPE. 0 when a value cannot be parked (no memory): Python answers then. */
static int refuseOutputs(RedisModuleCtx *ctx, Outcome *o) {
    for (int i = 0; i < o->noutputs; i++) {
        if (o->outputs[i].value && !RedisAI_ParkFree((void *)o->outputs[i].value)) return 0;
        o->outputs[i].value = 0;
    }
    RedisModule_ReplyWithError(ctx, WRONGTYPE_ERROR);
    return 1;
}

/* Applies an outcome (replies, and for a run's outputs writes, replicates and announces them) and frees
 * it; 0 when Python must reply (then nothing was done). */
int RedisAI_ReplyOutcome(RedisModuleCtx *ctx, void *privdata) {
    Outcome *o = privdata;
    switch (o->kind) {
    case OUTCOME_ERROR:
        RedisModule_ReplyWithError(ctx, o->text);
        break;
    case OUTCOME_STATUS:
        RedisModule_ReplyWithSimpleString(ctx, o->text);
        break;
    case OUTCOME_OUTPUTS:
        /* All or nothing. A single output's write checks its own key. */
        if (o->noutputs > 1)
            for (int i = 0; i < o->noutputs; i++)
                if (holdsOtherType(ctx, o->outputs[i].name)) {
                    if (!refuseOutputs(ctx, o)) return 0;
                    goto done;
                }
        RedisAI_DeferringFrees = 1;
        for (int i = 0; i < o->noutputs; i++) {
            Output *out = &o->outputs[i];
            int state = RedisAI_KeyWrite(ctx, out->name, NULL, 0, RedisAI_TensorType, out->value);
            if (state == KEY_OTHER_TYPE && o->noutputs == 1) { /* nothing was written */
                RedisAI_DeferringFrees = 0;
                if (!refuseOutputs(ctx, o)) return 0;
                goto done;
            }
            /* Cannot fail after the type check; if it ever did, Python still gets the value back. */
            if (state != KEY_HOLDS_TYPE && !RedisAI_ParkFree((void *)out->value))
                RedisModule_Log(ctx, "warning", "redisai: an output could not be stored nor released");
            out->value = 0; /* the key owns it now */
            RedisAI_TensorWritten(ctx, out->name, out->args, out->nargs);
        }
        RedisAI_DeferringFrees = 0;
        if (o->has_reply)
            RedisAI_ReplySend(ctx, &o->reply);
        else
            RedisModule_ReplyWithSimpleString(ctx, "OK");
        break;
    default:
        return 0;
    }
done:
    disposeOutcome(o);
    return 1;
}

/* ---------------------------------------------------------------- Python: _redisai_outcome */

static PyObject *newOutcome(Outcome *o) {
    PyObject *address = PyLong_FromVoidPtr(o);
    if (!address) disposeOutcome(o);
    return address;
}

static Outcome *allocOutcome(int kind) {
    Outcome *o = calloc(1, sizeof(*o));
    if (o) o->kind = kind;
    return o;
}

/* python(job_id): Python replies, with the job kept under that id. */
static PyObject *pyPython(PyObject *self, PyObject *arg) {
    (void)self;
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    Outcome *o = allocOutcome(OUTCOME_PYTHON);
    if (!o) return PyErr_NoMemory();
    o->job_id = id;
    return newOutcome(o);
}

static PyObject *textOutcome(PyObject *arg, int kind) {
    if (!PyBytes_Check(arg)) { PyErr_SetString(PyExc_TypeError, "reply text is bytes"); return NULL; }
    const char *text = PyBytes_AS_STRING(arg); /* up to a NUL, as a reply sent at once (calls.c) */
    Outcome *o = allocOutcome(kind);
    if (!o || !(o->text = strdup(text))) { free(o); return PyErr_NoMemory(); }
    return newOutcome(o);
}

/* error(message) and status(text): a reply of one line. */
static PyObject *pyError(PyObject *self, PyObject *arg) { (void)self; return textOutcome(arg, OUTCOME_ERROR); }
static PyObject *pyStatus(PyObject *self, PyObject *arg) { (void)self; return textOutcome(arg, OUTCOME_STATUS); }

static RedisModuleString *stringOf(PyObject *item) {
    Py_buffer view;
    if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) return NULL;
    /* NULL context: a plain allocation, safe on a worker thread; freed by disposeOutcome. */
    RedisModuleString *s = RedisModule_CreateString(NULL, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return s;
}

/* AI.TENSORSET name dtype dim... BLOB data, for one output: 4 + ndim strings. */
static int tensorsetArgs(Output *out, PyObject *name, PyObject *dtype, PyObject *shape, PyObject *data) {
    PyObject *dims = PySequence_Fast(shape, "shape must be a sequence");
    if (!dims) return -1;
    Py_ssize_t ndim = PySequence_Fast_GET_SIZE(dims);
    out->args = calloc((size_t)ndim + 4, sizeof(RedisModuleString *));
    int ok = out->args != NULL;
    if (ok) ok = (out->args[out->nargs] = stringOf(name)) != NULL && ++out->nargs;
    if (ok) ok = (out->args[out->nargs] = stringOf(dtype)) != NULL && ++out->nargs;
    for (Py_ssize_t i = 0; ok && i < ndim; i++) {
        long long dim = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(dims, i));
        if (dim == -1 && PyErr_Occurred()) { ok = 0; break; }
        char text[24];
        int len = snprintf(text, sizeof(text), "%lld", dim);
        ok = (out->args[out->nargs] = RedisModule_CreateString(NULL, text, (size_t)len)) != NULL && ++out->nargs;
    }
    if (ok) ok = (out->args[out->nargs] = RedisModule_CreateString(NULL, "BLOB", 4)) != NULL && ++out->nargs;
    if (ok) ok = (out->args[out->nargs] = stringOf(data)) != NULL && ++out->nargs;
    Py_DECREF(dims);
    if (!ok && !PyErr_Occurred()) PyErr_NoMemory();
    return ok ? 0 : -1;
}

/* outputs([(name, address, dtype, shape, data), ...], parts=None, borrow=False): store each value in
 * its key, replicate it as AI.TENSORSET name dtype shape... BLOB data, then reply OK, or the reply
 * `parts` (replies.c: copied, or with `borrow` referring to Python's buffers, for an outcome applied at
 * once). `data` is any buffer (a numeric array as is, a STRING tensor's blob). The values must already
 * be registered; on error none is kept here. */
static PyObject *pyOutputs(PyObject *self, PyObject *const *argv, Py_ssize_t argc) {
    (void)self;
    if (argc < 1 || argc > 3) { PyErr_SetString(PyExc_TypeError, "outputs(items, parts=None, borrow=False)"); return NULL; }
    int borrow = argc == 3 ? PyObject_IsTrue(argv[2]) : 0;
    if (borrow < 0) return NULL;
    PyObject *arg = argv[0];
    PyObject *seq = PySequence_Fast(arg, "outputs must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Outcome *o = allocOutcome(OUTCOME_OUTPUTS);
    if (o && n) o->outputs = calloc((size_t)n, sizeof(Output));
    if (!o || (n && !o->outputs)) { free(o); Py_DECREF(seq); return PyErr_NoMemory(); }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) {
            PyErr_SetString(PyExc_TypeError, "an output is (name, address, dtype, shape, data)");
            goto fail;
        }
        Output *out = &o->outputs[o->noutputs++];
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        if (tensorsetArgs(out, name, PyTuple_GET_ITEM(item, 2), PyTuple_GET_ITEM(item, 3), PyTuple_GET_ITEM(item, 4)) < 0)
            goto fail;
        if (!(out->name = stringOf(name))) goto fail;
        out->value = (uintptr_t)PyLong_AsVoidPtr(PyTuple_GET_ITEM(item, 1));
        if (!out->value) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no value"); goto fail; }
    }
    Py_DECREF(seq);
    if (argc >= 2 && argv[1] != Py_None) {
        o->reply.copy = !borrow;
        if (RedisAI_ReplyBuild(argv[1], &o->reply) < 0) {
            disposeOutcome(o);
            return NULL;
        }
        o->has_reply = 1;
    }
    return newOutcome(o);
fail:
    disposeOutcome(o);
    Py_DECREF(seq);
    return NULL;
}

/* The outcome an address (an int from Python) points to; NULL with an exception for 0 or a non-int. */
static Outcome *outcomeArg(PyObject *arg) {
    Outcome *o = PyLong_AsVoidPtr(arg);
    if (!o && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no outcome");
    return o;
}

/* read(address) -> (kind, job_id, [values not stored]): what Python needs when it replies or frees. */
static PyObject *pyRead(PyObject *self, PyObject *arg) {
    (void)self;
    Outcome *o = outcomeArg(arg);
    if (!o) return NULL;
    PyObject *values = PyList_New(0);
    for (int i = 0; values && i < o->noutputs; i++) {
        if (!o->outputs[i].value) continue;
        PyObject *v = PyLong_FromVoidPtr((void *)o->outputs[i].value);
        if (!v || PyList_Append(values, v) < 0) Py_CLEAR(values);
        Py_XDECREF(v);
    }
    if (!values) return NULL;
    return Py_BuildValue("iLN", o->kind, o->job_id, values);
}

/* apply(ctx, address) -> [values not stored]: the outcome applied now, on the main thread with the GIL
 * (RedisAI_ReplyOutcome) and freed. Where it could not be (no memory to park the values of outputs
 * refused WRONGTYPE), WRONGTYPE is replied here and those values are Python's to release. */
static PyObject *pyApply(PyObject *self, PyObject *const *argv, Py_ssize_t argc) {
    (void)self;
    if (argc != 2) { PyErr_SetString(PyExc_TypeError, "apply(ctx, outcome)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(argv[0]);
    if (!ctx) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no context"); return NULL; }
    Outcome *o = outcomeArg(argv[1]);
    if (!o) return NULL;
    if (o->kind == OUTCOME_PYTHON) { PyErr_SetString(PyExc_ValueError, "an outcome Python answers"); return NULL; }
    if (RedisAI_ReplyOutcome(ctx, o)) return PyList_New(0);
    PyObject *values = pyRead(NULL, argv[1]);
    PyObject *unstored = values ? Py_NewRef(PyTuple_GET_ITEM(values, 2)) : NULL;
    Py_XDECREF(values);
    if (unstored) RedisModule_ReplyWithError(ctx, WRONGTYPE_ERROR);
    disposeOutcome(o);
    return unstored;
}

/* tensor_written(ctx, name): what follows AI.TENSORSET's write of key `name` (RedisAI_TensorWritten, the
 * command replicated verbatim); the reply is the caller's. */
static PyObject *pyTensorWritten(PyObject *self, PyObject *const *argv, Py_ssize_t argc) {
    (void)self;
    if (argc != 2) { PyErr_SetString(PyExc_TypeError, "tensor_written(ctx, name)"); return NULL; }
    RedisModuleCtx *ctx = PyLong_AsVoidPtr(argv[0]);
    if (!ctx) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no context"); return NULL; }
    Py_buffer view;
    if (PyObject_GetBuffer(argv[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    RedisModuleString *name = RedisModule_CreateString(ctx, view.buf, (size_t)view.len); /* freed with ctx */
    PyBuffer_Release(&view);
    RedisAI_TensorWritten(ctx, name, NULL, 0);
    Py_RETURN_NONE;
}

static PyObject *pyDispose(PyObject *self, PyObject *arg) {
    (void)self;
    Outcome *o = outcomeArg(arg);
    if (!o) return NULL;
    disposeOutcome(o);
    Py_RETURN_NONE;
}

/* take_parked() -> the values freed while outcomes were stored, for Python to release (None: none). */
static PyObject *pyTakeParked(PyObject *self, PyObject *unused) {
    (void)self; (void)unused;
    if (!atomic_load(&RedisAI_ParkedCount)) Py_RETURN_NONE;
    pthread_mutex_lock(&parked_lock);
    PyObject *values = PyList_New((Py_ssize_t)parked_count);
    for (size_t i = 0; values && i < parked_count; i++) {
        PyObject *v = PyLong_FromVoidPtr((void *)parked[i]);
        if (!v) { Py_CLEAR(values); break; }
        PyList_SET_ITEM(values, (Py_ssize_t)i, v);
    }
    if (values) {
        parked_count = 0;
        atomic_store(&RedisAI_ParkedCount, 0);
    }
    pthread_mutex_unlock(&parked_lock);
    return values;
}

static PyMethodDef methods[] = {
    {"python", pyPython, METH_O, "python(job_id): Python replies"},
    {"error", pyError, METH_O, "error(message): an error reply"},
    {"status", pyStatus, METH_O, "status(text): a status reply"},
    {"outputs", (PyCFunction)(void (*)(void))pyOutputs, METH_FASTCALL,
     "outputs([(name, address, dtype, shape, data), ...], parts=None, borrow=False): store, replicate, reply OK "
     "or the parts"},
    {"apply", (PyCFunction)(void (*)(void))pyApply, METH_FASTCALL,
     "apply(ctx, outcome) -> values not stored: applied now, on the main thread"},
    {"tensor_written", (PyCFunction)(void (*)(void))pyTensorWritten, METH_FASTCALL,
     "tensor_written(ctx, name): AI.TENSORSET's write of key `name` replicated verbatim and announced"},
    {"read", pyRead, METH_O, "read(outcome) -> (kind, job_id, values not stored)"},
    {"dispose", pyDispose, METH_O, "dispose(outcome): frees it (its values are Python's to release)"},
    {"take_parked", pyTakeParked, METH_NOARGS, "take_parked() -> values to release, or None"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduleDef = {PyModuleDef_HEAD_INIT, "_redisai_outcome", NULL, -1, methods,
                                       NULL, NULL, NULL, NULL};

int RedisAI_RegisterOutcomeModule(void) {
    PyObject *module = PyModule_Create(&moduleDef);
    if (!module) return -1;
    if (PyModule_AddIntConstant(module, "PYTHON", OUTCOME_PYTHON) < 0 ||
        PyModule_AddIntConstant(module, "OUTPUTS", OUTCOME_OUTPUTS) < 0) { Py_DECREF(module); return -1; }
    int rc = PyDict_SetItemString(PyImport_GetModuleDict(), "_redisai_outcome", module);
    Py_DECREF(module);
    return rc;
}
