/* Tensor memory is Redis's memory: a numpy data-memory handler over Redis's allocator, so that
 * INFO memory, MEMORY USAGE and maxmemory see tensor data.
 *
 * numpy keeps the handler in a context variable: each thread that creates arrays (Redis's main
 * thread, every worker) calls `_redisai_alloc.use_redis_allocator()` once. Allocations use
 * RedisModule_TryAlloc so that a huge request is a MemoryError, never Redis's out-of-memory abort. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>
#include <string.h>

#include "redismodule.h"
#include "shim.h"

static void *tryAlloc(size_t size) { return RedisModule_TryAlloc(size ? size : 1); }

static void *handlerMalloc(void *ctx, size_t size) { (void)ctx; return tryAlloc(size); }

static void *handlerCalloc(void *ctx, size_t count, size_t size) {
    (void)ctx;
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return NULL;
    void *p = tryAlloc(total);
    if (p) memset(p, 0, total);
    return p;
}

static void *handlerRealloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (!ptr) return tryAlloc(size);
    size_t old = RedisModule_MallocSize(ptr);
    if (size <= old) return ptr; /* shrinking: keep the block */
    void *p = tryAlloc(size);
    if (!p) return NULL;
    memcpy(p, ptr, old);
    RedisModule_Free(ptr);
    return p;
}

static void handlerFree(void *ctx, void *ptr, size_t size) {
    (void)ctx; (void)size;
    if (ptr) RedisModule_Free(ptr);
}

static PyDataMem_Handler redisHandler = {
    "redisai", 1, {NULL, handlerMalloc, handlerCalloc, handlerRealloc, handlerFree}};
static PyObject *handlerCapsule;

static PyObject *useRedisAllocator(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    PyObject *old = PyDataMem_SetHandler(handlerCapsule);
    if (!old) return NULL;
    Py_DECREF(old);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"use_redis_allocator", useRedisAllocator, METH_NOARGS,
     "Arrays this thread creates from now on live in Redis's memory."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduleDef = {PyModuleDef_HEAD_INIT, "_redisai_alloc", NULL, -1, methods,
                                       NULL, NULL, NULL, NULL};

/* Registers the built-in module `_redisai_alloc`; called with the GIL held, after Py_Initialize. */
int RedisAI_RegisterAllocatorModule(void) {
    if (!RedisModule_TryAlloc || !RedisModule_MallocSize || !RedisModule_Free) return -1;
    if (PyArray_ImportNumPyAPI() < 0) return -1;
    handlerCapsule = PyCapsule_New(&redisHandler, "mem_handler", NULL);
    if (!handlerCapsule) return -1;
    PyObject *module = PyModule_Create(&moduleDef);
    if (!module) return -1;
    PyObject *modules = PyImport_GetModuleDict();
    int rc = PyDict_SetItemString(modules, "_redisai_alloc", module);
    Py_DECREF(module);
    return rc;
}
