/* Waking a device queue's workers from Redis's main thread without paying a futex wake-up per job.
 *
 * On a VM a condition-variable hand-off costs ~20 us per direction. An idle worker therefore first
 * spins for a short while (with the GIL released: Python calls these through cffi, which drops
 * the GIL around C calls), and only then sleeps on a condition variable. While a worker spins, a
 * post is a plain atomic increment. A spinning worker also waits for the main thread to leave
 * Python before returning, so that it takes a free GIL instead of queueing behind the main thread
 * (which would cost another wake-up when the main thread drops it). At most one worker per queue
 * spins; the others sleep, so the main thread never competes with more than one spinner.
 *
 * The other direction: a worker going idle hands its last reply to Redis (RM_UnblockClient) from
 * here, after it has dropped the GIL, so that the woken main thread never waits for the GIL.
 *
 * The signal only says "the queue changed": Python keeps the jobs, and a worker passes the
 * generation it saw before finding the queue empty, so no post is ever lost. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "redismodule.h"
#include "shim.h"

typedef struct RedisAI_Signal {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    atomic_ulong generation;
    atomic_int sleepers;
    atomic_int spinning;
} RedisAI_Signal;

/* Set by the shim while Redis's main thread runs Python (redisai.c). */
atomic_int RedisAI_MainInPython;

RedisAI_Signal *RedisAI_SignalCreate(void) {
    RedisAI_Signal *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    return s;
}

unsigned long RedisAI_SignalGeneration(RedisAI_Signal *s) { return atomic_load(&s->generation); }

void RedisAI_SignalPost(RedisAI_Signal *s) {
    atomic_fetch_add(&s->generation, 1);
    /* seq_cst on both sides: either the sleeper sees the new generation, or we see the sleeper. */
    if (atomic_load(&s->sleepers) > 0) {
        pthread_mutex_lock(&s->mutex);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mutex);
    }
}

static long long nowNs(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void cpuRelax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Unblocks `client` (if not NULL), then waits until the generation differs from `seen`, or
 * `timeout_us` passes (0: no limit). Spins up to `spin_us` first. Returns 1 if the generation
 * changed, 0 on timeout. */
int RedisAI_SignalWait(RedisAI_Signal *s, unsigned long seen, long spin_us, long timeout_us,
                       RedisModuleBlockedClient *client, void *privdata) {
    if (client) {
        RedisModule_BlockedClientMeasureTimeEnd(client);
        RedisModule_UnblockClient(client, privdata);
    }
    long long start = nowNs();
    long long deadline = timeout_us > 0 ? start + timeout_us * 1000LL : 0;
    int expected = 0;
    if (spin_us > 0 && atomic_compare_exchange_strong(&s->spinning, &expected, 1)) {
        long long spin_end = start + spin_us * 1000LL;
        if (deadline && deadline < spin_end) spin_end = deadline;
        int changed = 0;
        for (unsigned i = 0;; i++) {
            if (!changed) changed = atomic_load(&s->generation) != seen;
            if (changed && !atomic_load(&RedisAI_MainInPython)) break;
            if ((i & 63) == 0) {
                if (nowNs() >= spin_end) break;
                /* Only idle CPU: a runnable thread here (the main thread, a client) goes first. */
                sched_yield();
            }
            cpuRelax();
        }
        atomic_store(&s->spinning, 0);
        if (changed || atomic_load(&s->generation) != seen) return 1;
    }
    pthread_mutex_lock(&s->mutex);
    atomic_fetch_add(&s->sleepers, 1);
    int rc = 0;
    while (atomic_load(&s->generation) == seen && rc != ETIMEDOUT) {
        if (deadline) {
            struct timespec at = {deadline / 1000000000LL, deadline % 1000000000LL};
            rc = pthread_cond_timedwait(&s->cond, &s->mutex, &at);
        } else {
            pthread_cond_wait(&s->cond, &s->mutex);
        }
    }
    atomic_fetch_sub(&s->sleepers, 1);
    int changed = atomic_load(&s->generation) != seen;
    pthread_mutex_unlock(&s->mutex);
    return changed;
}
