/*
 * recorder.c - record each outcome as soon as it is known, off the send path.
 *
 * A lane used to record its batch only when the whole batch had been sent, so a worker
 * killed in the middle of a 100-message SMTP session left every message it had already
 * delivered leased as 'sending', and they were all sent again (1,004 and 2,178 duplicate
 * emails in two crash runs). Now the channel reports each outcome as the server answers
 * (channel_outcome_ready) and the lane pushes its index here. This thread, with its own
 * database connection (the caller's record_fn holds it), stores everything pushed since
 * its last transaction in one transaction: while a commit is on its way the next replies
 * gather, so the number of commits adapts to the database's speed and the SMTP session
 * never waits for PostgreSQL. What a kill can resend is what was in flight: the message
 * on the wire and the outcomes not yet committed.
 *
 * It knows nothing of notices or SQL: record_fn does (worker.c).
 */
#include "crier/recorder.h"
#include "crier/crier.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct recorder {
    record_fn fn;
    void *data;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    size_t *pending; /* indexes pushed and not yet taken by the thread */
    size_t pending_count;
    bool *recorded; /* per index of the batch: stored by fn */
    bool *pushed;   /* per index of the batch: handed to the thread */
    size_t count;   /* the batch's size: capacity of pending and recorded */
    size_t busy;    /* how many the thread is recording now (in fn) */
    bool stop;
};

static void *recorder_main(void *arg)
{
    struct recorder *r = arg;
    size_t *taken = NULL, taken_cap = 0;
    bool *stored = NULL;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->pending_count == 0 && !r->stop)
            pthread_cond_wait(&r->changed, &r->lock);
        if (r->pending_count == 0)
            break; /* stopped, nothing left */
        size_t n = r->pending_count;
        if (n > taken_cap) {
            taken = xreallocarray(taken, n, sizeof(*taken));
            stored = xreallocarray(stored, n, sizeof(*stored));
            taken_cap = n;
        }
        memcpy(taken, r->pending, n * sizeof(*taken));
        r->pending_count = 0;
        r->busy = n;
        pthread_mutex_unlock(&r->lock);
        memset(stored, 0, n * sizeof(*stored));
        r->fn(r->data, taken, n, stored);
        pthread_mutex_lock(&r->lock);
        for (size_t k = 0; k < n; k++)
            if (stored[k] && taken[k] < r->count)
                r->recorded[taken[k]] = true;
        r->busy = 0;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
    free(taken);
    free(stored);
    return NULL;
}

int recorder_start(record_fn fn, void *data, struct recorder **ret_recorder)
{
    struct recorder *r = xcalloc(1, sizeof(*r));
    r->fn = fn;
    r->data = data;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    int e = pthread_create(&r->thread, NULL, recorder_main, r);
    if (e != 0) {
        pthread_cond_destroy(&r->changed);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return -e;
    }
    *ret_recorder = r;
    return 0;
}

void recorder_begin(struct recorder *r, size_t count)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    if (count > r->count) {
        r->pending = xreallocarray(r->pending, count, sizeof(*r->pending));
        r->recorded = xreallocarray(r->recorded, count, sizeof(*r->recorded));
        r->pushed = xreallocarray(r->pushed, count, sizeof(*r->pushed));
    }
    r->count = count;
    r->pending_count = 0;
    memset(r->recorded, 0, count * sizeof(*r->recorded));
    memset(r->pushed, 0, count * sizeof(*r->pushed));
    pthread_mutex_unlock(&r->lock);
}

void recorder_push(struct recorder *r, size_t index)
{
    pthread_mutex_lock(&r->lock);
    if (index < r->count && !r->pushed[index]) {
        r->pushed[index] = true;
        r->pending[r->pending_count++] = index;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
}

void recorder_drain(struct recorder *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++) {
        if (!r->pushed[i]) {
            r->pushed[i] = true;
            r->pending[r->pending_count++] = i;
        }
    }
    pthread_cond_broadcast(&r->changed);
    while (r->pending_count > 0 || r->busy)
        pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

void recorder_wait(struct recorder *r, size_t most)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    while (r->pending_count + r->busy > most)
        pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

bool recorder_recorded(const struct recorder *r, size_t index)
{
    return r && index < r->count && r->recorded[index]; /* after recorder_drain: no race */
}

struct recorder *recorder_free(struct recorder *r)
{
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(r->pending);
    free(r->recorded);
    free(r->pushed);
    free(r);
    return NULL;
}
