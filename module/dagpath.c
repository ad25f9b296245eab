/* The common form of AI.DAGEXECUTE and AI.DAGEXECUTE_RO without Python's per-argument work:
 *
 *   AI.DAGEXECUTE[_RO] [LOAD n key...] [PERSIST n key...] [ROUTING key] [TIMEOUT t]
 *       |> op |> op ...
 *   op: AI.TENSORSET name TYPE dim... BLOB data     (AI.TENSORSET's fast form, fastpath.c)
 *     | AI.TENSORGET name [META] [BLOB | VALUES]
 *     | AI.MODELEXECUTE key INPUTS n name... OUTPUTS m name...
 *
 * C parses the grammar in a first pass that touches no Python: it resolves every DAG-local name to a
 * slot (a name stands for its latest definition, the LOAD keys first), reads the LOAD keys (each must
 * hold a tensor) and the models' keys, and checks everything the general parse checks whose failure
 * is an error reply. Then, holding the GIL, it makes the TENSORSET ops' tensors (Python's make_local,
 * the BLOB copied here) and hands Python one call: submit(ctx, slots, ops, persist, timeout), where
 * `slots` is a list of tensors (None for what a model op makes), `ops` a tuple of (OP_SET, slot),
 * (OP_GET, slot, format) and (OP_MODEL, model, input slots, output slots), `persist` a tuple of
 * (name, slot). Python checks what only it knows (the models' counts, the client blockable, the
 * queues' bounds) and runs the DAG as the general parse does (commands/runs.start), or declines having changed
 * nothing. Any other form, any error and any declined DAG go to the general path in Python, which
 * gives its own replies: what this path does for a command is what the general path does. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "redismodule.h"
#include "shim.h"

#define MAX_OPS 64
#define MAX_SLOTS 256
#define MAX_SLOT_REFS 512 /* the model ops' input and output slots, all together */
#define MAX_DIMS_ALL 256  /* the TENSORSET ops' dims, all together */
#define MAX_PERSIST 64

enum { OP_SET = 0, OP_GET = 1, OP_MODEL = 2 };
enum { DATA_NONE = 0, DATA_BLOB = 1, DATA_VALUES = 2 };

static PyObject *makeLocal; /* (type index, shape tuple) -> (tensor, its writable buffer); no key holds it */
static PyObject *submitDag; /* (ctx, slots, ops, persist, timeout) -> True answered, False declined */
static PyObject *formats;   /* TENSORGET formats by code: meta * 3 + DATA_* -> (meta, data) */

typedef struct {
    int kind;
    int slot;                    /* SET: the slot it makes; GET: the slot it reads */
    int type, ndims, dims;       /* SET: type index, dims at dims[dims .. dims + ndims) */
    RedisModuleString *blob;     /* SET */
    int format;                  /* GET */
    uintptr_t model;             /* MODEL */
    int inputs, outputs, refs;   /* MODEL: slot refs at refs[refs .. + inputs + outputs) */
} Op;

typedef struct {
    RedisModuleString *names[MAX_SLOTS]; /* slot -> the name that defined it */
    uintptr_t loaded[MAX_SLOTS];         /* slot -> a LOAD key's tensor, or 0 */
    int slots;
    Op ops[MAX_OPS];
    int opCount;
    int refs[MAX_SLOT_REFS];
    int refCount;
    long long dims[MAX_DIMS_ALL];
    int dimCount;
    RedisModuleString **persist;
    int persistSlots[MAX_PERSIST]; /* each PERSIST name's slot once every op is parsed */
    int persistCount;
    long long timeout;
} Dag;

static int sameName(RedisModuleString *a, RedisModuleString *b) {
    size_t alen, blen;
    const char *ap = RedisModule_StringPtrLen(a, &alen), *bp = RedisModule_StringPtrLen(b, &blen);
    return alen == blen && memcmp(ap, bp, alen) == 0;
}

static int isSeparator(RedisModuleString *arg) {
    size_t len;
    const char *p = RedisModule_StringPtrLen(arg, &len);
    return len == 2 && p[0] == '|' && p[1] == '>';
}

/* The slot a name stands for now (its latest definition), or -1. */
static int slotOf(Dag *dag, RedisModuleString *name) {
    for (int i = dag->slots - 1; i >= 0; i--)
        if (sameName(dag->names[i], name)) return i;
    return -1;
}

static int newSlot(Dag *dag, RedisModuleString *name) {
    if (dag->slots == MAX_SLOTS) return -1;
    dag->names[dag->slots] = name;
    dag->loaded[dag->slots] = 0;
    return dag->slots++;
}

/* `KEYWORD n name...` at argv[i] of the head: the names, or NULL; *next is past them. */
static RedisModuleString **counted(RedisModuleString **argv, int argc, int i, int *count, int *next) {
    if (i + 2 >= argc) return NULL;
    long long n = RedisAI_PositiveArg(argv[i + 1]);
    if (!n || n > argc - (i + 2)) return NULL;
    for (int k = 0; k < n; k++)
        if (isSeparator(argv[i + 2 + k])) return NULL;
    *count = (int)n;
    *next = i + 2 + (int)n;
    return argv + i + 2;
}

/* The head, up to the first separator: 0 when it is the fast form, else -1. */
static int parseHead(RedisModuleCtx *ctx, Dag *dag, RedisModuleString **argv, int argc, int readonly, int *at) {
    int i = 1, seen_load = 0, seen_persist = 0, seen_routing = 0, seen_timeout = 0;
    while (i < argc && !isSeparator(argv[i])) {
        if (RedisAI_IsKeyword(argv[i], "LOAD") && !seen_load++) {
            int count;
            RedisModuleString **keys = counted(argv, argc, i, &count, &i);
            if (!keys) return -1;
            for (int k = 0; k < count; k++) {
                int slot = newSlot(dag, keys[k]);
                if (slot < 0 || RedisAI_KeyRead(ctx, keys[k], NULL, 0, RedisAI_TensorType, &dag->loaded[slot]) != 1)
                    return -1;
            }
        } else if (RedisAI_IsKeyword(argv[i], "PERSIST") && !seen_persist++) {
            if (readonly) return -1;
            dag->persist = counted(argv, argc, i, &dag->persistCount, &i);
            if (!dag->persist || dag->persistCount > MAX_PERSIST) return -1;
            for (int a = 0; a < dag->persistCount; a++)
                for (int b = a + 1; b < dag->persistCount; b++)
                    if (sameName(dag->persist[a], dag->persist[b])) return -1;
        } else if (RedisAI_IsKeyword(argv[i], "ROUTING") && !seen_routing++) {
            if (i + 1 >= argc || isSeparator(argv[i + 1])) return -1;
            i += 2;
        } else if (RedisAI_IsKeyword(argv[i], "TIMEOUT") && !seen_timeout++) {
            if (i + 1 >= argc || !(dag->timeout = RedisAI_PositiveArg(argv[i + 1]))) return -1;
            i += 2;
        } else {
            return -1; /* another keyword, or one given twice */
        }
    }
    if (!seen_load && !seen_persist && !seen_routing) return -1;
    *at = i;
    return 0;
}

/* AI.TENSORSET name TYPE dim... BLOB data, in tokens t[0 .. n). */
static int parseSet(Dag *dag, Op *op, RedisModuleString **t, int n) {
    int ndims = n - 5;
    if (ndims < 1 || dag->dimCount + ndims > MAX_DIMS_ALL || !RedisAI_IsKeyword(t[n - 2], "BLOB")) return -1;
    size_t len;
    const char *type_name = RedisModule_StringPtrLen(t[2], &len);
    long long bytes;
    if ((op->type = RedisAI_TensorTypeIndex(type_name, len, &bytes)) < 0) return -1;
    op->dims = dag->dimCount;
    op->ndims = ndims;
    size_t blob_len;
    RedisModule_StringPtrLen(t[n - 1], &blob_len);
    for (int d = 0; d < ndims; d++) {
        long long dim = RedisAI_PositiveArg(t[3 + d]);
        if (!dim || !RedisAI_TimesDimWithin(&bytes, dim, blob_len)) return -1;
        dag->dims[dag->dimCount++] = dim;
    }
    if ((long long)blob_len != bytes) return -1;
    op->blob = t[n - 1];
    op->kind = OP_SET;
    return (op->slot = newSlot(dag, t[1])) < 0 ? -1 : 0;
}

/* AI.TENSORGET name [META] [BLOB | VALUES]: as commands/tensor.py's parse_tensorget_format. */
static int parseGet(Dag *dag, Op *op, RedisModuleString **t, int n) {
    if (n < 2 || n > 4 || (op->slot = slotOf(dag, t[1])) < 0) return -1;
    int meta = n == 2, data = n == 2 ? DATA_BLOB : DATA_NONE;
    for (int k = 2; k < n; k++) {
        int token = RedisAI_IsKeyword(t[k], "BLOB") ? DATA_BLOB : RedisAI_IsKeyword(t[k], "VALUES") ? DATA_VALUES : 0;
        if (RedisAI_IsKeyword(t[k], "META")) meta = 1;
        else if (!token || (data && data != token)) return -1;
        else data = token;
    }
    op->kind = OP_GET;
    op->format = meta * 3 + data;
    return 0;
}

/* AI.MODELEXECUTE key INPUTS n name... OUTPUTS m name... (no TIMEOUT: the general path refuses it). */
static int parseModel(RedisModuleCtx *ctx, Dag *dag, Op *op, RedisModuleString **t, int n) {
    if (n < 7 || !RedisAI_IsKeyword(t[2], "INPUTS")) return -1;
    for (int k = 1; k < n; k++)
        if (RedisAI_IsKeyword(t[k], "TIMEOUT")) return -1;
    long long inputs = RedisAI_PositiveArg(t[3]);
    if (!inputs || 4 + inputs + 2 > n || !RedisAI_IsKeyword(t[4 + inputs], "OUTPUTS")) return -1;
    long long outputs = RedisAI_PositiveArg(t[5 + inputs]);
    if (!outputs || 6 + inputs + outputs != n || dag->refCount + inputs + outputs > MAX_SLOT_REFS) return -1;
    if (RedisAI_KeyRead(ctx, t[1], NULL, 0, RedisAI_ModelType, &op->model) != 1) return -1;
    op->kind = OP_MODEL;
    op->inputs = (int)inputs;
    op->outputs = (int)outputs;
    op->refs = dag->refCount;
    for (int k = 0; k < inputs; k++)
        if ((dag->refs[dag->refCount++] = slotOf(dag, t[4 + k])) < 0) return -1;
    for (int k = 0; k < outputs; k++)
        if ((dag->refs[dag->refCount++] = newSlot(dag, t[6 + inputs + k])) < 0) return -1;
    return 0;
}

/* The ops after the head (argv[at] is a separator): 0 when every one is of the fast form, else -1. */
static int parseOps(RedisModuleCtx *ctx, Dag *dag, RedisModuleString **argv, int argc, int at) {
    for (int i = at; i < argc;) {
        int end = i + 1;
        while (end < argc && !isSeparator(argv[end])) end++;
        RedisModuleString **t = argv + i + 1;
        int n = end - i - 1;
        i = end;
        if (!n) continue; /* `|> |>`: the general parse skips empty ops */
        if (dag->opCount == MAX_OPS) return -1;
        Op *op = &dag->ops[dag->opCount++];
        int parsed = RedisAI_IsKeyword(t[0], "AI.TENSORSET")      ? parseSet(dag, op, t, n)
                     : RedisAI_IsKeyword(t[0], "AI.TENSORGET")    ? parseGet(dag, op, t, n)
                     : RedisAI_IsKeyword(t[0], "AI.MODELEXECUTE") ? parseModel(ctx, dag, op, t, n)
                                                                  : -1;
        if (parsed < 0) return -1;
    }
    if (!dag->opCount) return -1;
    for (int k = 0; k < dag->persistCount; k++)
        if ((dag->persistSlots[k] = slotOf(dag, dag->persist[k])) < 0) return -1;
    return 0;
}

static PyObject *slotTuple(const int *refs, int count) {
    PyObject *tuple = PyTuple_New(count);
    for (int k = 0; tuple && k < count; k++) {
        PyObject *slot = PyLong_FromLong(refs[k]);
        if (!slot) { Py_CLEAR(tuple); break; }
        PyTuple_SET_ITEM(tuple, k, slot);
    }
    return tuple;
}

/* The TENSORSET op's tensor, into slots[op->slot]; -1 with a Python error. */
static int makeSetTensor(Dag *dag, const Op *op, PyObject *slots) {
    PyObject *shape = PyTuple_New(op->ndims);
    for (int d = 0; shape && d < op->ndims; d++) {
        PyObject *dim = PyLong_FromLongLong(dag->dims[op->dims + d]);
        if (!dim) { Py_CLEAR(shape); break; }
        PyTuple_SET_ITEM(shape, d, dim);
    }
    PyObject *type = PyLong_FromLong(op->type);
    PyObject *args[] = {type, shape};
    PyObject *made = type && shape ? PyObject_Vectorcall(makeLocal, args, 2, NULL) : NULL;
    Py_XDECREF(type);
    Py_XDECREF(shape);
    int rc = -1;
    Py_buffer view;
    if (made && PyTuple_Check(made) && PyTuple_GET_SIZE(made) == 2 &&
        PyObject_GetBuffer(PyTuple_GET_ITEM(made, 1), &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) == 0) {
        size_t len;
        const char *blob = RedisModule_StringPtrLen(op->blob, &len);
        if (view.len == (Py_ssize_t)len) {
            memcpy(view.buf, blob, len); /* before the DAG reads it: tensors are immutable after */
            rc = PyList_SetItem(slots, op->slot, Py_NewRef(PyTuple_GET_ITEM(made, 0))); /* over its None */
        }
        PyBuffer_Release(&view);
    }
    if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "make_local: no buffer of the BLOB's size");
    Py_XDECREF(made);
    return rc;
}

static PyObject *opTuple(Dag *dag, const Op *op) {
    if (op->kind == OP_SET) return Py_BuildValue("(ii)", OP_SET, op->slot);
    if (op->kind == OP_GET) return Py_BuildValue("(iiO)", OP_GET, op->slot, PyTuple_GET_ITEM(formats, op->format));
    PyObject *in = slotTuple(dag->refs + op->refs, op->inputs);
    PyObject *out = slotTuple(dag->refs + op->refs + op->inputs, op->outputs);
    /* The model is held by keyspace._values while its key holds it, and no key changes here. */
    PyObject *tuple = in && out ? Py_BuildValue("(iOOO)", OP_MODEL, (PyObject *)op->model, in, out) : NULL;
    Py_XDECREF(in);
    Py_XDECREF(out);
    return tuple;
}

/* Python's submit, with the GIL held: 1 answered (Python ran or queued the DAG, or C answered a
 * failure), 0 declined. */
static int submit(RedisModuleCtx *ctx, Dag *dag) {
    PyObject *slots = PyList_New(dag->slots), *ops = PyTuple_New(dag->opCount), *persist = PyTuple_New(dag->persistCount);
    int ok = slots && ops && persist;
    for (int s = 0; ok && s < dag->slots; s++)
        PyList_SET_ITEM(slots, s, Py_NewRef(dag->loaded[s] ? (PyObject *)dag->loaded[s] : Py_None));
    for (int k = 0; ok && k < dag->opCount; k++) {
        if (dag->ops[k].kind == OP_SET && makeSetTensor(dag, &dag->ops[k], slots) < 0) { ok = 0; break; }
        PyObject *tuple = opTuple(dag, &dag->ops[k]);
        if (!tuple) { ok = 0; break; }
        PyTuple_SET_ITEM(ops, k, tuple);
    }
    for (int k = 0; ok && k < dag->persistCount; k++) {
        size_t len;
        const char *name = RedisModule_StringPtrLen(dag->persist[k], &len);
        PyObject *pair = Py_BuildValue("(y#i)", name, (Py_ssize_t)len, dag->persistSlots[k]);
        if (!pair) { ok = 0; break; }
        PyTuple_SET_ITEM(persist, k, pair);
    }
    int answered = 0;
    PyObject *ctx_arg = ok ? PyLong_FromVoidPtr(ctx) : NULL, *timeout = ok ? PyLong_FromLongLong(dag->timeout) : NULL;
    if (ctx_arg && timeout) {
        PyObject *args[] = {ctx_arg, slots, ops, persist, timeout};
        PyObject *res = PyObject_Vectorcall(submitDag, args, 5, NULL);
        answered = res ? PyObject_IsTrue(res) == 1 : 1;
        if (!res) { /* past Python's own handler (commands/request.reply_failure), which may have blocked the client */
            RedisAI_LogPythonError(NULL, "AI.DAGEXECUTE");
            RedisModule_ReplyWithError(ctx, "ERR internal error in redisai (see the server log)");
        }
        Py_XDECREF(res);
    }
    PyErr_Clear(); /* a failure before Python's call is the general path's to report */
    Py_XDECREF(ctx_arg);
    Py_XDECREF(timeout);
    Py_XDECREF(slots);
    Py_XDECREF(ops);
    Py_XDECREF(persist);
    return answered;
}

static int dagexecuteFast(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int readonly) {
    if (!submitDag || argc < 6 || RedisModule_IsKeysPositionRequest(ctx)) return 0;
    /* One parse at a time (commands run under Redis's lock); a DAG sent from inside another's Python
     * call, were there one, takes the general path. */
    static Dag dag;
    static int inUse;
    if (inUse) return 0;
    dag.slots = dag.opCount = dag.refCount = dag.dimCount = dag.persistCount = 0;
    dag.persist = NULL;
    dag.timeout = 0;
    int at, answered = 0;
    inUse = 1;
    if (parseHead(ctx, &dag, argv, argc, readonly, &at) == 0 && parseOps(ctx, &dag, argv, argc, at) == 0) {
        RedisAI_EnterPython();
        answered = submit(ctx, &dag);
        RedisAI_LeavePython();
    }
    inUse = 0;
    return answered;
}

int RedisAI_DagExecuteCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (dagexecuteFast(ctx, argv, argc, 0)) return REDISMODULE_OK;
    return RedisAI_Command(ctx, argv, argc);
}

int RedisAI_DagExecuteReadonlyCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (dagexecuteFast(ctx, argv, argc, 1)) return REDISMODULE_OK;
    return RedisAI_Command(ctx, argv, argc);
}

/* dag_fast_path(make_local, submit, formats: tuple of 6), once at load */
PyObject *RedisAI_DagFastPathSetup(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    if (n != 3 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]) || !PyTuple_Check(args[2]) ||
        PyTuple_GET_SIZE(args[2]) != 6) {
        PyErr_SetString(PyExc_TypeError, "dag_fast_path(make_local, submit, formats: tuple of 6)");
        return NULL;
    }
    Py_XSETREF(makeLocal, Py_NewRef(args[0]));
    Py_XSETREF(submitDag, Py_NewRef(args[1]));
    Py_XSETREF(formats, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}
