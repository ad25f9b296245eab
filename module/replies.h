/* Replies as programs of parts (replies.c): built from Python parts, sent in C. */
#ifndef REDISAI_REPLIES_H
#define REDISAI_REPLIES_H

#include <Python.h>

#include "redismodule.h"

typedef struct ReplyStep ReplyStep;

typedef struct ReplyProgram {
    int copy; /* set before building: copy text and data (a reply sent later, without the GIL) */
    int count, size;
    ReplyStep *steps;
    int nviews, viewsize;
    Py_buffer *views; /* borrowed data, released by RedisAI_ReplyFree (with the GIL) */
} ReplyProgram;

/* Converts and checks every part; -1 with a Python exception (and nothing kept) on a bad part. */
int RedisAI_ReplyBuild(PyObject *parts, ReplyProgram *program);
void RedisAI_ReplySend(RedisModuleCtx *ctx, const ReplyProgram *program);
void RedisAI_ReplyFree(ReplyProgram *program);
/* The opcodes as constants of a Python module. */
int RedisAI_ReplyAddOpcodes(PyObject *module);

#endif
