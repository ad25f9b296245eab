/* Replies built in Python as a list of parts, sent by C in one call.
 *
 * A part is (opcode, argument): ARRAY n, STATUS text, ERROR text, BULK buffer, NULL, LONG n,
 * DOUBLE x, and LONGS / DOUBLES / BULKS with a list of those. Every part is checked and converted
 * before the first byte is sent, so a bad part costs the command an error reply, never the
 * connection's framing (see src/redisai/reply.py). A reply kept for later (a prepared outcome,
 * outcome.c) copies its text and data; one sent at once borrows them from Python. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "redismodule.h"
#include "replies.h"

enum { OP_ARRAY, OP_STATUS, OP_ERROR, OP_BULK, OP_NULL, OP_LONG, OP_DOUBLE, OP_LONGS, OP_DOUBLES, OP_BULKS };

typedef struct ReplyStep {
    int op;
    long long n;
    double d;
    const char *buf; /* STATUS, ERROR (NUL-terminated), BULK */
    size_t len;
} ReplyStep;

static int grow(ReplyProgram *p) {
    if (p->count < p->size) return 0;
    int size = p->size ? p->size * 2 : 16;
    ReplyStep *steps = realloc(p->steps, (size_t)size * sizeof(ReplyStep));
    if (!steps) { PyErr_NoMemory(); return -1; }
    p->steps = steps;
    p->size = size;
    return 0;
}

/* The bytes of a buffer, borrowed (its view kept until the program is freed) or copied. */
static int addBuffer(ReplyProgram *p, ReplyStep *step, PyObject *item, int text) {
    if (text && !PyBytes_Check(item)) { PyErr_SetString(PyExc_TypeError, "a status or error is bytes"); return -1; }
    Py_buffer view;
    if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) return -1;
    if (text && memchr(view.buf, 0, (size_t)view.len)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a status or error has a NUL");
        return -1;
    }
    step->len = (size_t)view.len;
    if (p->copy) {
        char *copy = malloc(step->len + 1);
        if (copy) { memcpy(copy, view.buf, step->len); copy[step->len] = 0; }
        PyBuffer_Release(&view);
        if (!copy) { PyErr_NoMemory(); return -1; }
        step->buf = copy;
        return 0;
    }
    if (text) { /* bytes objects end with a NUL: their buffer is a C string as it is */
        step->buf = PyBytes_AS_STRING(item);
        PyBuffer_Release(&view);
        return 0;
    }
    if (p->nviews == p->viewsize) {
        int size = p->viewsize ? p->viewsize * 2 : 8;
        Py_buffer *views = realloc(p->views, (size_t)size * sizeof(Py_buffer));
        if (!views) { PyBuffer_Release(&view); PyErr_NoMemory(); return -1; }
        p->views = views;
        p->viewsize = size;
    }
    p->views[p->nviews++] = view;
    step->buf = view.buf;
    return 0;
}

static int addStep(ReplyProgram *p, int op, PyObject *arg) {
    if (grow(p) < 0) return -1;
    ReplyStep *step = &p->steps[p->count];
    memset(step, 0, sizeof(*step));
    step->op = op;
    switch (op) {
    case OP_ARRAY:
    case OP_LONG:
        step->n = PyLong_AsLongLong(arg);
        if (step->n == -1 && PyErr_Occurred()) return -1;
        break;
    case OP_DOUBLE:
        step->d = PyFloat_AsDouble(arg);
        if (step->d == -1.0 && PyErr_Occurred()) return -1;
        break;
    case OP_STATUS:
    case OP_ERROR:
        if (addBuffer(p, step, arg, 1) < 0) return -1;
        break;
    case OP_BULK:
        if (addBuffer(p, step, arg, 0) < 0) return -1;
        break;
    case OP_NULL:
        break;
    default:
        PyErr_Format(PyExc_ValueError, "unknown reply opcode %d", op);
        return -1;
    }
    p->count++;
    return 0;
}

int RedisAI_ReplyBuild(PyObject *parts, ReplyProgram *p) {
    PyObject *seq = PySequence_Fast(parts, "reply parts must be a sequence");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *part = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) != 2) {
            PyErr_SetString(PyExc_TypeError, "a reply part is (opcode, argument)");
            rc = -1;
            break;
        }
        int op = (int)PyLong_AsLong(PyTuple_GET_ITEM(part, 0));
        PyObject *arg = PyTuple_GET_ITEM(part, 1);
        if (op == OP_LONGS || op == OP_DOUBLES || op == OP_BULKS) {
            PyObject *items = PySequence_Fast(arg, "a list part takes a sequence");
            if (!items) { rc = -1; break; }
            int each = op == OP_LONGS ? OP_LONG : op == OP_DOUBLES ? OP_DOUBLE : OP_BULK;
            for (Py_ssize_t k = 0; rc == 0 && k < PySequence_Fast_GET_SIZE(items); k++)
                rc = addStep(p, each, PySequence_Fast_GET_ITEM(items, k));
            Py_DECREF(items);
        } else if (op == -1 && PyErr_Occurred()) {
            rc = -1;
        } else {
            rc = addStep(p, op, arg);
        }
    }
    Py_DECREF(seq);
    if (rc < 0) RedisAI_ReplyFree(p);
    return rc;
}

void RedisAI_ReplySend(RedisModuleCtx *ctx, const ReplyProgram *p) {
    for (int i = 0; i < p->count; i++) {
        const ReplyStep *s = &p->steps[i];
        switch (s->op) {
        case OP_ARRAY: RedisModule_ReplyWithArray(ctx, (long)s->n); break;
        case OP_STATUS: RedisModule_ReplyWithSimpleString(ctx, s->buf); break;
        case OP_ERROR: RedisModule_ReplyWithError(ctx, s->buf); break;
        case OP_BULK: RedisModule_ReplyWithStringBuffer(ctx, s->buf, s->len); break;
        case OP_NULL: RedisModule_ReplyWithNull(ctx); break;
        case OP_LONG: RedisModule_ReplyWithLongLong(ctx, s->n); break;
        case OP_DOUBLE: RedisModule_ReplyWithDouble(ctx, s->d); break;
        }
    }
}

void RedisAI_ReplyFree(ReplyProgram *p) {
    if (p->copy) {
        for (int i = 0; i < p->count; i++) free((void *)p->steps[i].buf);
        /* a step that failed half-way was not counted; its copy was never made */
    }
    for (int i = 0; i < p->nviews; i++) PyBuffer_Release(&p->views[i]);
    free(p->views);
    free(p->steps);
    memset(p, 0, sizeof(*p));
}

int RedisAI_ReplyAddOpcodes(PyObject *module) {
    return PyModule_AddIntConstant(module, "ARRAY", OP_ARRAY) || PyModule_AddIntConstant(module, "STATUS", OP_STATUS) ||
           PyModule_AddIntConstant(module, "ERROR", OP_ERROR) || PyModule_AddIntConstant(module, "BULK", OP_BULK) ||
           PyModule_AddIntConstant(module, "NULL", OP_NULL) || PyModule_AddIntConstant(module, "LONG", OP_LONG) ||
           PyModule_AddIntConstant(module, "DOUBLE", OP_DOUBLE) || PyModule_AddIntConstant(module, "LONGS", OP_LONGS) ||
           PyModule_AddIntConstant(module, "DOUBLES", OP_DOUBLES) || PyModule_AddIntConstant(module, "BULKS", OP_BULKS)
               ? -1 : 0;
}
