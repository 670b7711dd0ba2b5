/*
 * recorder.c - record each outcome as soon as it is known, off the send path.
 *
 * A lane used to record its batch only when the whole batch had been sent, so a worker
 * killed in the middle of a 100-message SMTP session left every message it had already
 * delivered leased as 'sending', and they were all sent again (1,004 and 2,178 duplicate
 * emails in two crash runs). Now the channel reports each outcome as the server answers
 * (channel_outcome_ready) and the lane pushes its index here. What a kill can resend is
 * what was in flight: the message on the wire and the outcomes not yet committed.
 *
 * One thread per process records for every lane (a group), on one database connection
 * (the caller's record_group_fn holds it): it takes everything every lane pushed since its
 * last transaction and stores it in one transaction. While a commit is on its way the next
 * replies gather, so the number of commits adapts to the database's speed. A thread per
 * lane committed nearly every outcome on its own (9,954 commits for 10,000 messages with 8
 * lanes, each lane waiting for its own): one thread makes one commit carry what all lanes
 * have pending, and PostgreSQL sees one backend instead of one per lane.
 *
 * A lane may let its outcomes linger (recorder_linger): the thread then waits up to that
 * long for more before its transaction, unless a lane is waiting for its own. Fax replies
 * come one by one, 20 ms after each upload, so without it nearly every fax was a
 * transaction of one row. A lingering outcome is one a kill -9 can lose, which is only
 * safe where a lost record cannot send twice: a fax channel's reaped notices are asked of
 * the gateway before anything is sent again (queue.c, queue_reap). worker.c lets only
 * such lanes linger; an email lane's outcome is committed at once.
 *
 * It knows nothing of notices or SQL: record_group_fn does (worker.c).
 */
#include "crier/recorder.h"
#include "crier/crier.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One lane's part: the batch it is sending. Guarded by the group's lock. */
struct recorder {
    struct recorder_group *group;
    void *data;
    size_t *pending; /* indexes pushed and not yet taken by the thread */
    size_t pending_count;
    size_t *taken;  /* what the thread is recording now (busy of them) */
    bool *stored;   /* per taken: stored by fn */
    bool *recorded; /* per index of the batch: stored by fn */
    bool *pushed;   /* per index of the batch: handed to the thread */
    size_t count;   /* the batch's size: capacity of the arrays above */
    size_t busy;    /* how many the thread is recording now (in fn) */
    long linger_ms; /* how long its outcomes may wait for company (0: not at all) */
};

struct recorder_group {
    record_group_fn fn;
    void *data;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* something pushed, recorded, or the group stopping */
    struct recorder **members;
    size_t member_count;
    size_t waiting; /* lanes in recorder_wait or recorder_drain, waiting for their records */
    bool lingering; /* the thread is in group_linger */
    bool stop;
};

static bool group_pending(const struct recorder_group *g)
{
    for (size_t i = 0; i < g->member_count; i++)
        if (g->members[i]->pending_count > 0)
            return true;
    return false;
}

/* group_linger_ms - how long what is pending may wait for more: the shortest linger of the
 * members with something pending, 0 when one of them may not wait or a lane is waiting. */
static long group_linger_ms(const struct recorder_group *g)
{
    long linger = -1;
    for (size_t i = 0; i < g->member_count; i++) {
        const struct recorder *r = g->members[i];
        if (r->pending_count > 0 && (linger < 0 || r->linger_ms < linger))
            linger = r->linger_ms;
    }
    return g->waiting > 0 || g->stop || linger < 0 ? 0 : linger;
}

/* group_linger - wait (the lock held) until the pending outcomes' linger is over, a lane
 * waits for its own, or the group stops. */
static void group_linger(struct recorder_group *g)
{
    long linger = group_linger_ms(g);
    if (linger <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_cond_timedwait's clock */
    until.tv_sec += linger / 1000;
    until.tv_nsec += (linger % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    g->lingering = true;
    while (group_linger_ms(g) > 0 && pthread_cond_timedwait(&g->changed, &g->lock, &until) == 0)
        ;
    g->lingering = false;
}

/* group_take - move every member's pending indexes to its taken list; how many members. */
static size_t group_take(struct recorder_group *g, struct recorder_take *takes)
{
    size_t k = 0;
    for (size_t i = 0; i < g->member_count; i++) {
        struct recorder *r = g->members[i];
        if (r->pending_count == 0)
            continue;
        memcpy(r->taken, r->pending, r->pending_count * sizeof(*r->taken));
        memset(r->stored, 0, r->pending_count * sizeof(*r->stored));
        r->busy = r->pending_count;
        r->pending_count = 0;
        takes[k++] = (struct recorder_take){r->data, r->taken, r->busy, r->stored, r};
    }
    return k;
}

static void *recorder_main(void *arg)
{
    struct recorder_group *g = arg;
    struct recorder_take *takes = NULL;
    size_t takes_cap = 0;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!group_pending(g) && !g->stop)
            pthread_cond_wait(&g->changed, &g->lock);
        if (!group_pending(g))
            break; /* stopped, nothing left */
        group_linger(g);
        if (g->member_count > takes_cap) {
            takes_cap = g->member_count;
            takes = xreallocarray(takes, takes_cap, sizeof(*takes));
        }
        size_t n = group_take(g, takes);
        pthread_mutex_unlock(&g->lock);
        g->fn(g->data, takes, n);
        pthread_mutex_lock(&g->lock);
        for (size_t k = 0; k < n; k++) {
            struct recorder *r = takes[k].recorder;
            for (size_t j = 0; j < r->busy; j++)
                if (r->stored[j] && r->taken[j] < r->count)
                    r->recorded[r->taken[j]] = true;
            r->busy = 0;
        }
        pthread_cond_broadcast(&g->changed);
    }
    pthread_mutex_unlock(&g->lock);
    free(takes);
    return NULL;
}

int recorder_group_start(record_group_fn fn, void *data, struct recorder_group **ret_group)
{
    struct recorder_group *g = xcalloc(1, sizeof(*g));
    g->fn = fn;
    g->data = data;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->changed, NULL);
    int e = pthread_create(&g->thread, NULL, recorder_main, g);
    if (e != 0) {
        pthread_cond_destroy(&g->changed);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return -e;
    }
    *ret_group = g;
    return 0;
}

struct recorder *recorder_join(struct recorder_group *g, void *data)
{
    if (g == NULL)
        return NULL;
    struct recorder *r = xcalloc(1, sizeof(*r));
    r->group = g;
    r->data = data;
    pthread_mutex_lock(&g->lock);
    g->members = xreallocarray(g->members, g->member_count + 1, sizeof(*g->members));
    g->members[g->member_count++] = r;
    pthread_mutex_unlock(&g->lock);
    return r;
}

void recorder_begin(struct recorder *r, size_t count)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->group->lock);
    if (count > r->count) { /* nothing of the last batch is busy: it was drained */
        r->pending = xreallocarray(r->pending, count, sizeof(*r->pending));
        r->taken = xreallocarray(r->taken, count, sizeof(*r->taken));
        r->stored = xreallocarray(r->stored, count, sizeof(*r->stored));
        r->recorded = xreallocarray(r->recorded, count, sizeof(*r->recorded));
        r->pushed = xreallocarray(r->pushed, count, sizeof(*r->pushed));
    }
    r->count = count;
    r->pending_count = 0;
    memset(r->recorded, 0, count * sizeof(*r->recorded));
    memset(r->pushed, 0, count * sizeof(*r->pushed));
    pthread_mutex_unlock(&r->group->lock);
}

void recorder_linger(struct recorder *r, long ms)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->group->lock);
    r->linger_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&r->group->lock);
}

void recorder_push(struct recorder *r, size_t index)
{
    pthread_mutex_lock(&r->group->lock);
    if (index < r->count && !r->pushed[index]) {
        r->pushed[index] = true;
        r->pending[r->pending_count++] = index;
        pthread_cond_broadcast(&r->group->changed);
    }
    pthread_mutex_unlock(&r->group->lock);
}

void recorder_drain(struct recorder *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->group->lock);
    for (size_t i = 0; i < r->count; i++) {
        if (!r->pushed[i]) {
            r->pushed[i] = true;
            r->pending[r->pending_count++] = i;
        }
    }
    r->group->waiting++; /* ends a linger: this lane's records are wanted now */
    pthread_cond_broadcast(&r->group->changed);
    while (r->pending_count > 0 || r->busy)
        pthread_cond_wait(&r->group->changed, &r->group->lock);
    r->group->waiting--;
    pthread_mutex_unlock(&r->group->lock);
}

void recorder_wait(struct recorder *r, size_t most)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->group->lock);
    if (r->pending_count + r->busy > most) {
        r->group->waiting++;     /* as in recorder_drain */
        if (r->group->lingering) /* else no one need hear it: an email lane's every dot */
            pthread_cond_broadcast(&r->group->changed);
        while (r->pending_count + r->busy > most)
            pthread_cond_wait(&r->group->changed, &r->group->lock);
        r->group->waiting--;
    }
    pthread_mutex_unlock(&r->group->lock);
}

bool recorder_recorded(const struct recorder *r, size_t index)
{
    return r && index < r->count && r->recorded[index]; /* after recorder_drain: no race */
}

static void member_free(struct recorder *r)
{
    FREE_MANY(r->pending, r->taken, r->stored, r->recorded, r->pushed);
    free(r);
}

struct recorder_group *recorder_group_free(struct recorder_group *g)
{
    if (g == NULL)
        return NULL;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    for (size_t i = 0; i < g->member_count; i++)
        member_free(g->members[i]);
    free(g->members);
    pthread_cond_destroy(&g->changed);
    pthread_mutex_destroy(&g->lock);
    free(g);
    return NULL;
}
