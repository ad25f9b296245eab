/* shim.h -- the contract between the shim's C files: what each one offers the others.
 *
 * redisai.c is the module (RedisModule_OnLoad, the callbacks Redis calls, the GIL); the others are
 * mechanics Python calls through CPython modules they register, and a few functions and flags they
 * share. Python sees none of this directly: cbridge/ reads the exported RedisAI_* callbacks and owns the
 * registered modules (_redisai_calls, _redisai_outcome, _redisai_alloc, _redisai_varargs). */
#ifndef REDISAI_SHIM_H
#define REDISAI_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "redismodule.h"

/* redisai.c: the data types and the callbacks of blocked clients. */
extern RedisModuleType *RedisAI_TensorType, *RedisAI_ModelType, *RedisAI_ScriptType;
int RedisAI_Unblocked(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int RedisAI_BlockTimeout(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
void RedisAI_FreePrivdata(RedisModuleCtx *ctx, void *privdata);
void RedisAI_Disconnected(RedisModuleCtx *ctx, RedisModuleBlockedClient *client);

/* redisai.c: the main thread's entries into Python (the GIL, kept between two sleeps of the event
 * loop) and the command callback every AI.* command starts in. Arguments at least
 * REDISAI_VIEW_ARG_BYTES long reach Python as read-only memoryviews of Redis's own argument memory
 * instead of bytes copies, so that a BLOB is copied once, into the tensor. */
#define REDISAI_VIEW_ARG_BYTES (64 * 1024)
void RedisAI_EnterPython(void);
void RedisAI_LeavePython(void);
int RedisAI_Command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
void RedisAI_LogPythonError(RedisModuleCtx *ctx, const char *where); /* the pending Python error, to the log */
void RedisAI_ReleaseParked(void); /* Python releases the parked values (outcome.c); the main thread, in Python */

/* fastpath.c: the common forms of AI.TENSORSET, AI.TENSORGET and AI.MODELEXECUTE without Python's
 * per-argument work (their command callbacks); set up by _redisai_calls.fast_paths. */
int RedisAI_TensorSetCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int RedisAI_TensorGetCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int RedisAI_ModelExecuteCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
/* What the fast paths share: a type name's index among the fast types (-1 for another) and its element
 * size; an argument equal to a keyword (any case); a count or TIMEOUT, a positive integer as Redis's
 * string2ll reads it (the general parse's rule), else 0; a tensor's bytes times one more dim, 0 when
 * that overflows or exceeds `limit` (its BLOB's length: a larger shape is the general path's error). */
int RedisAI_TensorTypeIndex(const char *name, size_t len, long long *itemsize);
int RedisAI_IsKeyword(RedisModuleString *arg, const char *keyword);
long long RedisAI_PositiveArg(RedisModuleString *arg);
int RedisAI_TimesDimWithin(long long *bytes, long long dim, size_t limit);

/* dagpath.c: the common form of AI.DAGEXECUTE and AI.DAGEXECUTE_RO (their command callbacks); set up
 * by _redisai_calls.dag_fast_path. */
int RedisAI_DagExecuteCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int RedisAI_DagExecuteReadonlyCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
#ifdef Py_PYTHON_H
PyObject *RedisAI_FastPathsSetup(PyObject *self, PyObject *const *args, Py_ssize_t n);
PyObject *RedisAI_DagFastPathSetup(PyObject *self, PyObject *const *args, Py_ssize_t n);
#endif

/* keys.c: a key's value in one call (open, type check, get or set, close); RedisAI_KeyHolds is the
 * type check of an open key: 1 it holds `type`, 0 empty, -1 another type. */
int RedisAI_KeyHolds(RedisModuleKey *key, RedisModuleType *type);
int RedisAI_KeyRead(RedisModuleCtx *ctx, RedisModuleString *name, const char *bytes, size_t len,
                    RedisModuleType *type, uintptr_t *value);
int RedisAI_KeyWrite(RedisModuleCtx *ctx, RedisModuleString *name, const char *bytes, size_t len,
                     RedisModuleType *type, uintptr_t value);

/* outcome.c: the outcomes of runs (and replies prepared by workers), applied; values freed while an
 * outcome is stored are parked. RedisAI_TensorWritten is what follows every write of a tensor key:
 * its replication (as AI.TENSORSET `args`, or the command verbatim when args is NULL) and the
 * ai.tensorset event. */
int RedisAI_ReplyOutcome(RedisModuleCtx *ctx, void *privdata);
void RedisAI_TensorWritten(RedisModuleCtx *ctx, RedisModuleString *name, RedisModuleString **args, int nargs);
int RedisAI_ParkFree(void *value);
extern atomic_int RedisAI_DeferringFrees; /* set while the main thread stores an outcome */
extern atomic_size_t RedisAI_ParkedCount;  /* read without the lock: is there anything to take? */

/* handoff.c: waking a device queue's workers (spin, then futex). */
typedef struct RedisAI_Signal RedisAI_Signal;
RedisAI_Signal *RedisAI_SignalCreate(void);
void RedisAI_SignalPost(RedisAI_Signal *s);
unsigned long RedisAI_SignalGeneration(RedisAI_Signal *s);
extern atomic_int RedisAI_MainInPython; /* the main thread is in Python: a spinning worker yields */

/* The CPython modules, registered before Python starts. */
int RedisAI_RegisterAllocatorModule(void); /* allocator.c: _redisai_alloc */
int RedisAI_RegisterVarargsModule(void);   /* varargs.c:   _redisai_varargs */
int RedisAI_RegisterOutcomeModule(void);   /* outcome.c:   _redisai_outcome */
int RedisAI_RegisterCallsModule(void);     /* calls.c:     _redisai_calls */

#endif
