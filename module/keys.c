/* Reading and writing a key's module value in one call.
 *
 * Open, type check, get or set, close: calls that Python would otherwise make one by one, for
 * every key a command touches (module/calls.c and module/outcome.c call these). This is plumbing only: which type a key must hold and what a wrong type means stay in
 * Python. */
#include <stddef.h>

#include <stdint.h>

#include "redismodule.h"
#include "shim.h"

enum { KEY_EMPTY = 0, KEY_HOLDS_TYPE = 1, KEY_OTHER_TYPE = -1, KEY_WRITE_FAILED = -2 };

/* The key is `name`, or when that is NULL the one named by bytes/len. */
static RedisModuleKey *openKey(RedisModuleCtx *ctx, RedisModuleString *name, const char *bytes, size_t len,
                               int mode, RedisModuleString **created) {
    *created = NULL;
    if (!name) name = *created = RedisModule_CreateString(ctx, bytes, len);
    return RedisModule_OpenKey(ctx, name, mode);
}

static void closeKey(RedisModuleCtx *ctx, RedisModuleKey *key, RedisModuleString *created) {
    RedisModule_CloseKey(key);
    if (created) RedisModule_FreeString(ctx, created);
}

int RedisAI_KeyHolds(RedisModuleKey *key, RedisModuleType *type) {
    int key_type = RedisModule_KeyType(key);
    if (key_type == REDISMODULE_KEYTYPE_EMPTY) return KEY_EMPTY;
    if (key_type == REDISMODULE_KEYTYPE_MODULE && RedisModule_ModuleTypeGetType(key) == type) return KEY_HOLDS_TYPE;
    return KEY_OTHER_TYPE;
}

/* KEY_HOLDS_TYPE with *value set, KEY_EMPTY or KEY_OTHER_TYPE. Values are addresses as integers:
 * Python reads and passes them without a pointer cast (about 0.3 us a call through cffi). */
int RedisAI_KeyRead(RedisModuleCtx *ctx, RedisModuleString *name, const char *bytes, size_t len,
                    RedisModuleType *type, uintptr_t *value) {
    RedisModuleString *created;
    RedisModuleKey *key = openKey(ctx, name, bytes, len, REDISMODULE_READ, &created);
    int state = RedisAI_KeyHolds(key, type);
    *value = state == KEY_HOLDS_TYPE ? (uintptr_t)RedisModule_ModuleTypeGetValue(key) : 0;
    closeKey(ctx, key, created);
    return state;
}

/* Sets the key to `value` unless it holds another type (KEY_OTHER_TYPE; nothing changes). */
int RedisAI_KeyWrite(RedisModuleCtx *ctx, RedisModuleString *name, const char *bytes, size_t len,
                     RedisModuleType *type, uintptr_t value) {
    RedisModuleString *created;
    RedisModuleKey *key = openKey(ctx, name, bytes, len, REDISMODULE_READ | REDISMODULE_WRITE, &created);
    int state = RedisAI_KeyHolds(key, type);
    if (state != KEY_OTHER_TYPE)
        state = RedisModule_ModuleTypeSetValue(key, type, (void *)value) == REDISMODULE_OK ? KEY_HOLDS_TYPE : KEY_WRITE_FAILED;
    closeKey(ctx, key, created);
    return state;
}
