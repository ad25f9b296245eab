/* The part of the Redis Modules API (Redis >= 7.0, API version 1) that this module uses.
 *
 * Written for this project from the public Modules API reference, not copied: it declares only
 * what module/redisai.c and cbridge/ use, so it doubles as the list of Redis features we rely on.
 * Every function is a pointer that RedisModule_Init fills through Redis's GetApi lookup, which
 * is why the names and signatures here must match Redis exactly. */
#ifndef REDISMODULE_H
#define REDISMODULE_H

#include <stddef.h>
#include <stdint.h>

#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1

#define REDISMODULE_READ (1 << 0)
#define REDISMODULE_WRITE (1 << 1)

#define REDISMODULE_KEYTYPE_EMPTY 0
#define REDISMODULE_KEYTYPE_MODULE 6

#define REDISMODULE_OPTIONS_HANDLE_IO_ERRORS (1 << 0)
#define REDISMODULE_NOTIFY_MODULE (1 << 13)

/* Version 3 of the type methods: up to copy and defrag (Redis >= 6.2). */
#define REDISMODULE_TYPE_METHOD_VERSION 3

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleIO RedisModuleIO;
typedef struct RedisModuleDigest RedisModuleDigest;
typedef struct RedisModuleType RedisModuleType;
typedef struct RedisModuleDefragCtx RedisModuleDefragCtx;
typedef struct RedisModuleInfoCtx RedisModuleInfoCtx;
typedef struct RedisModuleKey RedisModuleKey;

typedef struct RedisModuleEvent {
    uint64_t id;      /* REDISMODULE_EVENT_... */
    uint64_t dataver; /* version of the data the callback receives */
} RedisModuleEvent;
#define REDISMODULE_EVENT_SHUTDOWN 5
static const RedisModuleEvent RedisModuleEvent_Shutdown = {REDISMODULE_EVENT_SHUTDOWN, 1};
#define REDISMODULE_EVENT_EVENTLOOP 15
#define REDISMODULE_SUBEVENT_EVENTLOOP_BEFORE_SLEEP 0
#define REDISMODULE_SUBEVENT_EVENTLOOP_AFTER_SLEEP 1
static const RedisModuleEvent RedisModuleEvent_EventLoop = {REDISMODULE_EVENT_EVENTLOOP, 1};
typedef void (*RedisModuleEventCallback)(RedisModuleCtx *ctx, RedisModuleEvent eid, uint64_t subevent, void *data);
typedef struct RedisModuleBlockedClient RedisModuleBlockedClient;

typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
typedef void *(*RedisModuleTypeLoadFunc)(RedisModuleIO *rdb, int encver);
typedef void (*RedisModuleTypeSaveFunc)(RedisModuleIO *rdb, void *value);
typedef void (*RedisModuleTypeRewriteFunc)(RedisModuleIO *aof, RedisModuleString *key, void *value);
typedef size_t (*RedisModuleTypeMemUsageFunc)(const void *value);
typedef void (*RedisModuleTypeDigestFunc)(RedisModuleDigest *digest, void *value);
typedef void (*RedisModuleTypeFreeFunc)(void *value);
typedef int (*RedisModuleTypeAuxLoadFunc)(RedisModuleIO *rdb, int encver, int when);
typedef void (*RedisModuleTypeAuxSaveFunc)(RedisModuleIO *rdb, int when);
typedef size_t (*RedisModuleTypeFreeEffortFunc)(RedisModuleString *key, const void *value);
typedef void (*RedisModuleTypeUnlinkFunc)(RedisModuleString *key, const void *value);
typedef void *(*RedisModuleTypeCopyFunc)(RedisModuleString *fromkey, RedisModuleString *tokey,
                                         const void *value);
typedef int (*RedisModuleTypeDefragFunc)(RedisModuleDefragCtx *ctx, RedisModuleString *key,
                                         void **value);

typedef struct RedisModuleTypeMethods {
    uint64_t version;
    RedisModuleTypeLoadFunc rdb_load;
    RedisModuleTypeSaveFunc rdb_save;
    RedisModuleTypeRewriteFunc aof_rewrite;
    RedisModuleTypeMemUsageFunc mem_usage;
    RedisModuleTypeDigestFunc digest;
    RedisModuleTypeFreeFunc free;
    RedisModuleTypeAuxLoadFunc aux_load;
    RedisModuleTypeAuxSaveFunc aux_save;
    int aux_save_triggers;
    RedisModuleTypeFreeEffortFunc free_effort;
    RedisModuleTypeUnlinkFunc unlink;
    RedisModuleTypeCopyFunc copy;
    RedisModuleTypeDefragFunc defrag;
} RedisModuleTypeMethods;

#ifdef REDISMODULE_MAIN
#define REDISMODULE_API
#else
#define REDISMODULE_API extern
#endif

/* Only what the C shim itself calls; Python reaches the rest through cbridge/ by name. */
REDISMODULE_API int (*RedisModule_GetApi)(const char *name, void *funcptr);
REDISMODULE_API void (*RedisModule_SetModuleAttribs)(RedisModuleCtx *ctx, const char *name, int ver,
                                                     int apiver);
REDISMODULE_API int (*RedisModule_IsModuleNameBusy)(const char *name);
REDISMODULE_API void (*RedisModule_Log)(RedisModuleCtx *ctx, const char *level, const char *fmt, ...);
REDISMODULE_API const char *(*RedisModule_StringPtrLen)(const RedisModuleString *str, size_t *len);
REDISMODULE_API int (*RedisModule_StringToLongLong)(const RedisModuleString *str, long long *ll);
REDISMODULE_API RedisModuleType *(*RedisModule_CreateDataType)(RedisModuleCtx *ctx, const char *name,
                                                              int encver, RedisModuleTypeMethods *tm);
REDISMODULE_API void (*RedisModule_SetModuleOptions)(RedisModuleCtx *ctx, int options);
REDISMODULE_API int (*RedisModule_ReplyWithError)(RedisModuleCtx *ctx, const char *err);
REDISMODULE_API void *(*RedisModule_TryAlloc)(size_t bytes);
REDISMODULE_API void (*RedisModule_Free)(void *ptr);
REDISMODULE_API size_t (*RedisModule_MallocSize)(void *ptr);
REDISMODULE_API RedisModuleString *(*RedisModule_CreateString)(RedisModuleCtx *ctx, const char *ptr, size_t len);
REDISMODULE_API void (*RedisModule_FreeString)(RedisModuleCtx *ctx, RedisModuleString *str);
REDISMODULE_API RedisModuleKey *(*RedisModule_OpenKey)(RedisModuleCtx *ctx, RedisModuleString *keyname, int mode);
REDISMODULE_API void (*RedisModule_CloseKey)(RedisModuleKey *kp);
REDISMODULE_API int (*RedisModule_KeyType)(RedisModuleKey *kp);
REDISMODULE_API RedisModuleType *(*RedisModule_ModuleTypeGetType)(RedisModuleKey *key);
REDISMODULE_API void *(*RedisModule_ModuleTypeGetValue)(RedisModuleKey *key);
REDISMODULE_API int (*RedisModule_ModuleTypeSetValue)(RedisModuleKey *key, RedisModuleType *mt, void *value);
REDISMODULE_API int (*RedisModule_IsKeysPositionRequest)(RedisModuleCtx *ctx);
REDISMODULE_API int (*RedisModule_UnblockClient)(RedisModuleBlockedClient *bc, void *privdata);
REDISMODULE_API int (*RedisModule_SubscribeToServerEvent)(RedisModuleCtx *ctx, RedisModuleEvent event,
                                                         RedisModuleEventCallback callback);
REDISMODULE_API int (*RedisModule_NotifyKeyspaceEvent)(RedisModuleCtx *ctx, int type, const char *event,
                                                      RedisModuleString *key);
REDISMODULE_API void (*RedisModule_RetainString)(RedisModuleCtx *ctx, RedisModuleString *str);
REDISMODULE_API int (*RedisModule_Replicate)(RedisModuleCtx *ctx, const char *cmdname, const char *fmt, ...);
REDISMODULE_API void *(*RedisModule_GetBlockedClientPrivateData)(RedisModuleCtx *ctx);
REDISMODULE_API int (*RedisModule_ReplyWithSimpleString)(RedisModuleCtx *ctx, const char *msg);
REDISMODULE_API int (*RedisModule_ReplyWithStringBuffer)(RedisModuleCtx *ctx, const char *buf, size_t len);
REDISMODULE_API int (*RedisModule_ReplyWithArray)(RedisModuleCtx *ctx, long len);
REDISMODULE_API int (*RedisModule_ReplicateVerbatim)(RedisModuleCtx *ctx);
REDISMODULE_API int (*RedisModule_ReplyWithNull)(RedisModuleCtx *ctx);
REDISMODULE_API int (*RedisModule_ReplyWithLongLong)(RedisModuleCtx *ctx, long long ll);
REDISMODULE_API int (*RedisModule_ReplyWithDouble)(RedisModuleCtx *ctx, double d);
REDISMODULE_API int (*RedisModule_GetContextFlags)(RedisModuleCtx *ctx);
REDISMODULE_API RedisModuleBlockedClient *(*RedisModule_BlockClient)(
    RedisModuleCtx *ctx, RedisModuleCmdFunc reply_callback, RedisModuleCmdFunc timeout_callback,
    void (*free_privdata)(RedisModuleCtx *, void *), long long timeout_ms);
REDISMODULE_API int (*RedisModule_BlockedClientMeasureTimeStart)(RedisModuleBlockedClient *bc);
REDISMODULE_API void (*RedisModule_SetDisconnectCallback)(
    RedisModuleBlockedClient *bc, void (*callback)(RedisModuleCtx *ctx, RedisModuleBlockedClient *bc));
REDISMODULE_API int (*RedisModule_BlockedClientMeasureTimeEnd)(RedisModuleBlockedClient *bc);
REDISMODULE_API void (*RedisModule_EmitAOF)(RedisModuleIO *io, const char *cmdname, const char *fmt, ...);

#define REDISMODULE_GET_API(name) RedisModule_GetApi("RedisModule_" #name, ((void **)&RedisModule_##name))

/* Redis passes its GetApi function as the first word of the load context. */
static inline int RedisModule_Init(RedisModuleCtx *ctx, const char *name, int ver, int apiver) {
    void *getapifuncptr = ((void **)ctx)[0];
    RedisModule_GetApi = (int (*)(const char *, void *))(unsigned long)getapifuncptr;
    REDISMODULE_GET_API(SetModuleAttribs);
    REDISMODULE_GET_API(IsModuleNameBusy);
    REDISMODULE_GET_API(Log);
    REDISMODULE_GET_API(StringPtrLen);
    REDISMODULE_GET_API(StringToLongLong);
    REDISMODULE_GET_API(CreateDataType);
    REDISMODULE_GET_API(SetModuleOptions);
    REDISMODULE_GET_API(ReplyWithError);
    REDISMODULE_GET_API(TryAlloc);
    REDISMODULE_GET_API(Free);
    REDISMODULE_GET_API(MallocSize);
    REDISMODULE_GET_API(CreateString);
    REDISMODULE_GET_API(FreeString);
    REDISMODULE_GET_API(RetainString);
    REDISMODULE_GET_API(NotifyKeyspaceEvent);
    REDISMODULE_GET_API(SubscribeToServerEvent);
    REDISMODULE_GET_API(UnblockClient);
    REDISMODULE_GET_API(IsKeysPositionRequest);
    REDISMODULE_GET_API(OpenKey);
    REDISMODULE_GET_API(CloseKey);
    REDISMODULE_GET_API(KeyType);
    REDISMODULE_GET_API(ModuleTypeGetType);
    REDISMODULE_GET_API(ModuleTypeGetValue);
    REDISMODULE_GET_API(ModuleTypeSetValue);
    REDISMODULE_GET_API(Replicate);
    REDISMODULE_GET_API(EmitAOF);
    REDISMODULE_GET_API(GetBlockedClientPrivateData);
    REDISMODULE_GET_API(ReplyWithSimpleString);
    REDISMODULE_GET_API(ReplyWithStringBuffer);
    REDISMODULE_GET_API(ReplyWithArray);
    REDISMODULE_GET_API(ReplicateVerbatim);
    REDISMODULE_GET_API(ReplyWithNull);
    REDISMODULE_GET_API(ReplyWithLongLong);
    REDISMODULE_GET_API(ReplyWithDouble);
    REDISMODULE_GET_API(GetContextFlags);
    REDISMODULE_GET_API(BlockClient);
    REDISMODULE_GET_API(BlockedClientMeasureTimeStart);
    REDISMODULE_GET_API(SetDisconnectCallback);
    REDISMODULE_GET_API(BlockedClientMeasureTimeEnd);
    if (RedisModule_IsModuleNameBusy && RedisModule_IsModuleNameBusy(name)) return REDISMODULE_ERR;
    RedisModule_SetModuleAttribs(ctx, name, ver, apiver);
    return REDISMODULE_OK;
}

#endif /* REDISMODULE_H */
