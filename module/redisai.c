/* redisai.so: the thin C shim between redis-server and the Python package `redisai`.
 *
 * It makes libpython global, starts CPython on the project's virtual environment, creates the
 * three data types and hands every command and type callback to Python. Python registers the
 * commands itself (through cbridge/) so the command table lives in one place. Each function below
 * takes the GIL (kept between two sleeps of the event loop), forwards, and gives it back; no decision
 * is made here. The other C files are mechanics Python calls for speed: calls.c, keys.c, replies.c,
 * and outcome.c, which stores, replicates and replies from outcomes Python prepared. */
#define _GNU_SOURCE /* dladdr */
#define REDISMODULE_MAIN
#include "redismodule.h"
#include "shim.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#ifndef REDISAI_PYTHON_LIBRARY
#error "REDISAI_PYTHON_LIBRARY (path of libpython) must be set by the build"
#endif
#ifndef REDISAI_DEFAULT_PYTHON_ENV
#error "REDISAI_DEFAULT_PYTHON_ENV (the .venv built against) must be set by the build"
#endif

#define REDISAI_MODULE_VERSION 10207 /* speaks RedisAI 1.2.7 */
#define REDISAI_ENC_VER 4

/* Read by cbridge/ through cffi. */
RedisModuleType *RedisAI_TensorType;
RedisModuleType *RedisAI_ModelType;
RedisModuleType *RedisAI_ScriptType;

enum { ON_COMMAND, ON_UNBLOCKED, ON_BLOCK_TIMEOUT, ON_FREE_PRIVDATA, ON_RDB_LOAD, ON_RDB_SAVE,
       ON_AOF_REWRITE, ON_MEM_USAGE, ON_DIGEST, ON_FREE, ON_COPY, ON_INFO, ON_SHUTDOWN, ON_PARKED,
       ON_DISCONNECTED, ON_COUNT };
static const char *hook_names[ON_COUNT] = {
    "on_command", "on_unblocked", "on_block_timeout", "on_free_privdata", "on_rdb_load",
    "on_rdb_save", "on_aof_rewrite", "on_mem_usage", "on_digest", "on_free", "on_copy", "on_info",
    "on_shutdown", "on_parked", "on_disconnected"};
static PyObject *hooks[ON_COUNT];

/* stderr is lost when redis logs to a file, so Python errors go to the Redis log. */
void RedisAI_LogPythonError(RedisModuleCtx *ctx, const char *where) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *msg = text ? PyUnicode_AsUTF8(text) : NULL;
    RedisModule_Log(ctx, "warning", "redisai: %s: %s", where, msg ? msg : "unknown Python error");
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
}

/* Calls hooks[hook] with pointer-sized ints (and optionally a trailing object, stolen). */
static PyObject *callHook(int hook, int nptrs, const void **ptrs, PyObject *extra) {
    PyObject *args[5];
    int n = 0;
    for (; n < nptrs; n++) args[n] = PyLong_FromVoidPtr((void *)ptrs[n]);
    if (extra) args[n++] = extra;
    PyObject *res = PyObject_Vectorcall(hooks[hook], args, n, NULL);
    for (int i = 0; i < n; i++) Py_DECREF(args[i]);
    if (!res) RedisAI_LogPythonError(NULL, hook_names[hook]);
    return res;
}

/* ---------------------------------------------------------------- commands */

/* Main-thread entries into Python. Between two sleeps of the event loop the main thread keeps the
 * GIL from one command to the next: a busy worker would otherwise take it back after every command
 * and hand it over again for the next, two futex wake-ups and context switches per command. It is
 * given back before Redis sleeps (the BEFORE_SLEEP event); Python's switch interval still makes a
 * main thread that runs Python for long hand it to a waiting worker. Entries after BEFORE_SLEEP (replies
 * of blocked clients) give it back at once. The flag lets a spinning worker (handoff.c) wait until
 * the main thread has dropped the GIL instead of queueing for it. */
static int mainDepth;    /* nesting of main-thread entries (a command calling Redis calling us) */
static int mainHoldsGil; /* the main thread holds the GIL through mainGilState */
static int keepGil;      /* between AFTER_SLEEP and BEFORE_SLEEP */
static PyGILState_STATE mainGilState;

static void enterPython(void) {
    if (mainDepth++ == 0 && !mainHoldsGil) {
        atomic_store(&RedisAI_MainInPython, 1);
        mainGilState = PyGILState_Ensure();
        mainHoldsGil = 1;
    }
}
static void releaseMainGil(void) {
    if (!mainHoldsGil) return;
    mainHoldsGil = 0;
    PyGILState_Release(mainGilState);
    atomic_store(&RedisAI_MainInPython, 0);
}
static void leavePython(void) {
    if (--mainDepth == 0 && !keepGil) releaseMainGil();
}
void RedisAI_EnterPython(void) { enterPython(); }
void RedisAI_LeavePython(void) { leavePython(); }


void RedisAI_ReleaseParked(void) {
    PyObject *res = PyObject_CallNoArgs(hooks[ON_PARKED]);
    if (!res) RedisAI_LogPythonError(NULL, hook_names[ON_PARKED]);
    Py_XDECREF(res);
}

static void eventLoopEvent(RedisModuleCtx *ctx, RedisModuleEvent event, uint64_t subevent, void *data) {
    (void)ctx; (void)event; (void)data;
    keepGil = subevent == REDISMODULE_SUBEVENT_EVENTLOOP_AFTER_SLEEP;
    if (keepGil && atomic_load(&RedisAI_ParkedCount)) { /* values replaced by prepared outcomes */
        enterPython();
        RedisAI_ReleaseParked();
        leavePython();
    }
    if (!keepGil && mainDepth == 0) releaseMainGil();
}

/* The views die with the command: each is released, so a use after the command raises instead
 * of reading freed memory. Should one still be exported (a bug), its argument is retained for
 * good rather than freed under it. */
static void releaseViews(RedisModuleCtx *ctx, RedisModuleString **argv, PyObject *args, int argc) {
    for (int i = 0; i < argc; i++) {
        PyObject *item = PyList_GET_ITEM(args, i);
        if (!item || !PyMemoryView_Check(item)) continue;
        PyObject *released = PyObject_CallMethod(item, "release", NULL);
        int escaped = !released || ((PyMemoryViewObject *)item)->mbuf->exports > 0;
        if (!released) PyErr_Clear();
        Py_XDECREF(released);
        if (escaped) {
            RedisModule_RetainString(NULL, argv[i]);
            RedisModule_Log(ctx, "warning", "redisai: argument %d outlived its command; kept in memory", i);
        }
    }
}

int RedisAI_Command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    enterPython();
    PyObject *args = PyList_New(argc);
    int views = 0;
    for (int i = 0; args && i < argc; i++) {
        size_t len;
        const char *p = RedisModule_StringPtrLen(argv[i], &len);
        PyObject *item;
        if (len >= REDISAI_VIEW_ARG_BYTES) {
            item = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)len, PyBUF_READ);
            views++;
        } else {
            item = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
        }
        if (!item) { Py_CLEAR(args); break; }
        PyList_SET_ITEM(args, i, item);
    }
    PyObject *res = NULL;
    if (args) {
        /* Redis asks a getkeys command for its key positions by calling it with this flag. */
        PyObject *keys_request = PyBool_FromLong(RedisModule_IsKeysPositionRequest(ctx));
        PyObject *call[] = {PyLong_FromVoidPtr(ctx), PyLong_FromVoidPtr(argv), args, PyBool_FromLong(views),
                            keys_request};
        if (call[0] && call[1]) res = PyObject_Vectorcall(hooks[ON_COMMAND], call, 5, NULL);
        if (!res) RedisAI_LogPythonError(NULL, hook_names[ON_COMMAND]);
        if (views) releaseViews(ctx, argv, args, argc);
        Py_XDECREF(call[0]);
        Py_XDECREF(call[1]);
        Py_DECREF(call[3]);
        Py_DECREF(call[4]);
        Py_DECREF(args);
    } else {
        PyErr_Clear();
    }
    if (!res) RedisModule_ReplyWithError(ctx, "ERR internal error in redisai (see the server log)");
    Py_XDECREF(res);
    leavePython();
    return REDISMODULE_OK;
}

/* The private data of the last blocked client that got its reply: Python's reply callback has
 * already dropped it, so freeing it needs no second trip into Python. */
static void *repliedPrivdata;


/* Reply and timeout callbacks of blocked clients: a prepared outcome is replied in C (outcome.c). */
int RedisAI_Unblocked(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv; (void)argc;
    void *privdata = RedisModule_GetBlockedClientPrivateData(ctx);
    if (RedisAI_ReplyOutcome(ctx, privdata)) {
        repliedPrivdata = privdata;
        return REDISMODULE_OK;
    }
    enterPython();
    const void *ptrs[] = {ctx, privdata};
    PyObject *res = callHook(ON_UNBLOCKED, 2, ptrs, NULL);
    repliedPrivdata = privdata;
    if (!res) RedisModule_ReplyWithError(ctx, "ERR internal error in redisai (see the server log)");
    Py_XDECREF(res);
    leavePython();
    return REDISMODULE_OK;
}

int RedisAI_BlockTimeout(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv; (void)argc;
    enterPython();
    const void *ptrs[] = {ctx};
    PyObject *res = callHook(ON_BLOCK_TIMEOUT, 1, ptrs, NULL);
    if (!res) RedisModule_ReplyWithError(ctx, "ERR internal error in redisai (see the server log)");
    Py_XDECREF(res);
    leavePython();
    return REDISMODULE_OK;
}

void RedisAI_FreePrivdata(RedisModuleCtx *ctx, void *privdata) {
    if (privdata == repliedPrivdata) { /* Redis frees right after the reply callback */
        repliedPrivdata = NULL;
        return;
    }
    enterPython();
    const void *ptrs[] = {ctx, privdata};
    Py_XDECREF(callHook(ON_FREE_PRIVDATA, 2, ptrs, NULL));
    leavePython();
}

/* A blocked client disconnected before its reply: Python drops the work it still waits for. */
void RedisAI_Disconnected(RedisModuleCtx *ctx, RedisModuleBlockedClient *client) {
    enterPython();
    const void *ptrs[] = {ctx, client};
    Py_XDECREF(callHook(ON_DISCONNECTED, 2, ptrs, NULL));
    leavePython();
}

/* INFO's module section. A crash report is written from a signal handler: no Python there. */
void RedisAI_Info(RedisModuleInfoCtx *ctx, int for_crash_report) {
    if (for_crash_report) return;
    enterPython();
    const void *ptrs[] = {ctx};
    Py_XDECREF(callHook(ON_INFO, 1, ptrs, NULL));
    leavePython();
}

/* Redis is about to exit(): a worker still inside a framework import would run its static
 * initializers while exit() runs the static destructors, and crash the exit. */
static void shutdownEvent(RedisModuleCtx *ctx, RedisModuleEvent event, uint64_t subevent, void *data) {
    (void)ctx; (void)event; (void)subevent; (void)data;
    enterPython();
    Py_XDECREF(callHook(ON_SHUTDOWN, 0, NULL, NULL));
    leavePython();
}

/* ---------------------------------------------------------------- data types */

static void *rdbLoad(int kind, RedisModuleIO *rdb, int encver) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {rdb};
    PyObject *res = callHook(ON_RDB_LOAD, 1, ptrs, Py_BuildValue("(ii)", kind, encver));
    void *value = res ? PyLong_AsVoidPtr(res) : NULL;
    if (PyErr_Occurred()) { RedisAI_LogPythonError(NULL, "on_rdb_load"); value = NULL; }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return value;
}
static void *tensorRdbLoad(RedisModuleIO *rdb, int encver) { return rdbLoad(0, rdb, encver); }
static void *modelRdbLoad(RedisModuleIO *rdb, int encver) { return rdbLoad(1, rdb, encver); }
static void *scriptRdbLoad(RedisModuleIO *rdb, int encver) { return rdbLoad(2, rdb, encver); }

static void rdbSave(RedisModuleIO *rdb, void *value) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {rdb, value};
    Py_XDECREF(callHook(ON_RDB_SAVE, 2, ptrs, NULL));
    PyGILState_Release(gil);
}

static void aofRewrite(RedisModuleIO *aof, RedisModuleString *key, void *value) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {aof, key, value};
    Py_XDECREF(callHook(ON_AOF_REWRITE, 3, ptrs, NULL));
    PyGILState_Release(gil);
}

static size_t memUsage(const void *value) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {value};
    PyObject *res = callHook(ON_MEM_USAGE, 1, ptrs, NULL);
    size_t bytes = res ? PyLong_AsSize_t(res) : 0;
    if (PyErr_Occurred()) { PyErr_Clear(); bytes = 0; }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return bytes;
}

static void digest(RedisModuleDigest *md, void *value) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {md, value};
    Py_XDECREF(callHook(ON_DIGEST, 2, ptrs, NULL));
    PyGILState_Release(gil);
}

static void freeValue(void *value) {
    /* A key written from a prepared outcome: Python releases the old value later (outcome.c). */
    if (RedisAI_DeferringFrees && RedisAI_ParkFree(value)) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {value};
    Py_XDECREF(callHook(ON_FREE, 1, ptrs, NULL));
    PyGILState_Release(gil);
}

static void *copyValue(RedisModuleString *fromkey, RedisModuleString *tokey, const void *value) {
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *ptrs[] = {fromkey, tokey, value};
    PyObject *res = callHook(ON_COPY, 3, ptrs, NULL);
    void *copy = res ? PyLong_AsVoidPtr(res) : NULL;
    if (PyErr_Occurred()) { RedisAI_LogPythonError(NULL, "on_copy"); copy = NULL; }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return copy;
}

static RedisModuleType *createType(RedisModuleCtx *ctx, const char *name, RedisModuleTypeLoadFunc load) {
    RedisModuleTypeMethods tm = {
        .version = REDISMODULE_TYPE_METHOD_VERSION,
        .rdb_load = load,
        .rdb_save = rdbSave,
        .aof_rewrite = aofRewrite,
        .mem_usage = memUsage,
        .digest = digest,
        .free = freeValue,
        .copy = copyValue,
    };
    return RedisModule_CreateDataType(ctx, name, REDISAI_ENC_VER, &tm);
}

/* ---------------------------------------------------------------- fork safety */

/* A forked child (BGSAVE, BGREWRITEAOF, full sync) runs rdb_save in Python. If another thread held
 * the GIL at fork time the child would wait for it forever, so the parent takes it before forking. */
static PyGILState_STATE fork_gil;
static void beforeFork(void) { fork_gil = PyGILState_Ensure(); PyOS_BeforeFork(); }
static void afterForkParent(void) { PyOS_AfterFork_Parent(); PyGILState_Release(fork_gil); }
static void afterForkChild(void) { PyOS_AfterFork_Child(); PyGILState_Release(fork_gil); }

/* ---------------------------------------------------------------- load */

static int startPython(RedisModuleCtx *ctx, const char *env) {
    /* Redis loads modules RTLD_LOCAL; C extensions (numpy, cffi) need libpython's symbols global. */
    if (!dlopen(REDISAI_PYTHON_LIBRARY, RTLD_NOW | RTLD_GLOBAL)) {
        RedisModule_Log(ctx, "warning", "redisai: cannot load %s: %s", REDISAI_PYTHON_LIBRARY, dlerror());
        return REDISMODULE_ERR;
    }
    char executable[4096];
    snprintf(executable, sizeof(executable), "%s/bin/python", env);
    if (access(executable, X_OK) != 0) {
        RedisModule_Log(ctx, "warning", "redisai: no Python environment at PYTHON_ENV %s (%s is missing); "
                        "run 'make' in the project or pass PYTHON_ENV <venv>", env, executable);
        return REDISMODULE_ERR;
    }
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0; /* Redis owns signals */
    PyStatus status = PyConfig_SetBytesString(&config, &config.executable, executable);
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        RedisModule_Log(ctx, "warning", "redisai: cannot start Python from %s: %s", executable,
                        status.err_msg ? status.err_msg : "unknown error");
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}


static int importHooks(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, const char *env) {
    /* The shim's built-in Python modules, registered before any Python code of ours runs. */
    static const struct { int (*reg)(void); const char *failure; } builtins[] = {
        {RedisAI_RegisterAllocatorModule,
         "cannot set up tensor memory in Redis's allocator (numpy missing from the environment?)"},
        {RedisAI_RegisterVarargsModule, "cannot register _redisai_varargs"},
        {RedisAI_RegisterCallsModule, "cannot register _redisai_calls"},
        {RedisAI_RegisterOutcomeModule, "cannot register _redisai_outcome"},
    };
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (builtins[i].reg() != 0) {
            RedisAI_LogPythonError(ctx, builtins[i].failure);
            return REDISMODULE_ERR;
        }
    }
    PyObject *module = PyImport_ImportModule("redisai.module");
    if (!module) {
        RedisAI_LogPythonError(ctx, "cannot import redisai.module (is the package installed in the environment?)");
        return REDISMODULE_ERR;
    }
    for (int i = 0; i < ON_COUNT; i++) {
        hooks[i] = PyObject_GetAttrString(module, hook_names[i]);
        if (!hooks[i]) { RedisAI_LogPythonError(ctx, hook_names[i]); Py_DECREF(module); return REDISMODULE_ERR; }
    }
    Dl_info info;
    dladdr((void *)RedisAI_Command, &info);
    PyObject *args = PyList_New(0);
    for (int i = 0; i < argc; i++) {
        size_t len;
        const char *p = RedisModule_StringPtrLen(argv[i], &len);
        PyObject *arg = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
        PyList_Append(args, arg);
        Py_DECREF(arg);
    }
    PyObject *res = PyObject_CallMethod(module, "on_load", "KsOs", (unsigned long long)(uintptr_t)ctx,
                                        info.dli_fname, args, env);
    Py_DECREF(args);
    Py_DECREF(module);
    if (!res) { RedisAI_LogPythonError(ctx, "on_load"); return REDISMODULE_ERR; }
    int ok = PyObject_IsTrue(res);
    Py_DECREF(res);
    return ok ? REDISMODULE_OK : REDISMODULE_ERR;
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (RedisModule_Init(ctx, "ai", REDISAI_MODULE_VERSION, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    if (Py_IsInitialized()) {
        RedisModule_Log(ctx, "warning", "redisai: Python is already running in this process; "
                                         "the module cannot be loaded twice");
        return REDISMODULE_ERR;
    }
    /* PYTHON_ENV must be known before Python starts; every other argument is Python's to check. */
    const char *env = REDISAI_DEFAULT_PYTHON_ENV;
    for (int i = 0; i + 1 < argc; i += 2) {
        size_t len;
        const char *name = RedisModule_StringPtrLen(argv[i], &len);
        if (strcasecmp(name, "PYTHON_ENV") == 0) env = RedisModule_StringPtrLen(argv[i + 1], &len);
    }
    RedisModule_SetModuleOptions(ctx, REDISMODULE_OPTIONS_HANDLE_IO_ERRORS);
    RedisAI_TensorType = createType(ctx, "AI_TENSOR", tensorRdbLoad);
    RedisAI_ModelType = createType(ctx, "AI__MODEL", modelRdbLoad);
    RedisAI_ScriptType = createType(ctx, "AI_SCRIPT", scriptRdbLoad);
    if (!RedisAI_TensorType || !RedisAI_ModelType || !RedisAI_ScriptType) {
        RedisModule_Log(ctx, "warning", "redisai: cannot register the AI_TENSOR/AI__MODEL/AI_SCRIPT types");
        return REDISMODULE_ERR;
    }
    if (startPython(ctx, env) != REDISMODULE_OK) return REDISMODULE_ERR;
    if (importHooks(ctx, argv, argc, env) != REDISMODULE_OK) return REDISMODULE_ERR;
    pthread_atfork(beforeFork, afterForkParent, afterForkChild);
    RedisModule_SubscribeToServerEvent(ctx, RedisModuleEvent_Shutdown, shutdownEvent);
    RedisModule_SubscribeToServerEvent(ctx, RedisModuleEvent_EventLoop, eventLoopEvent);
    /* From here on the main thread holds the GIL only while it runs Python. */
    PyEval_SaveThread();
    return REDISMODULE_OK;
}
