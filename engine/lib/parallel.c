/*
 * parallel.c - a list of statements run side by side on several connections (see
 * parallel.h).
 *
 * import.c's staged index builds and find_index.c's each wrote this once: a list taken row
 * by row under a mutex by threads on their own connections, the first failure stopping the
 * rest. It is written here once, and the callers say only what a row is.
 */
#include "crier/parallel.h"

#include <pthread.h>
#include <stdbool.h>

#define PARALLEL_MAX 16 /* connections at once; more are left idle */

/* The rows, shared by the connections that work on them. */
struct queue {
    pthread_mutex_t lock;
    PGresult *rows;
    parallel_row_fn *each;
    void *data;
    int next; /* the next row to take */
    long counted;
    int result; /* the first failure, or 0 */
    struct crier_db *failed;
};

/* queue_take - the next row, or -1 when none is left or a row failed. */
static int queue_take(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    int row = q->result == 0 && q->next < PQntuples(q->rows) ? q->next++ : -1;
    pthread_mutex_unlock(&q->lock);
    return row;
}

static void queue_done(struct queue *q, struct crier_db *db, int r)
{
    pthread_mutex_lock(&q->lock);
    if (r < 0 && q->result == 0) {
        q->result = r;
        q->failed = db;
    }
    if (r > 0)
        q->counted += r;
    pthread_mutex_unlock(&q->lock);
}

/* work - rows from the queue on db until none is left. */
static void work(struct queue *q, struct crier_db *db)
{
    int row;
    while ((row = queue_take(q)) >= 0)
        queue_done(q, db, q->each(db, q->rows, row, q->data));
}

struct worker {
    pthread_t thread;
    bool running;
    struct queue *queue;
    struct crier_db *db;
};

static void *worker_main(void *data)
{
    struct worker *w = data;
    work(w->queue, w->db);
    return NULL;
}

int parallel_rows(struct crier_db *const *dbs, int count, PGresult *rows, parallel_row_fn *each,
                  void *data, long *ret_counted, struct crier_db **ret_failed)
{
    struct queue q = {.rows = rows, .each = each, .data = data};
    struct worker workers[PARALLEL_MAX] = {{0}};
    if (count > PARALLEL_MAX)
        count = PARALLEL_MAX;
    pthread_mutex_init(&q.lock, NULL);
    for (int i = 1; i < count; i++) {
        workers[i] = (struct worker){.queue = &q, .db = dbs[i]};
        workers[i].running =
            pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0;
    }
    work(&q, dbs[0]);
    for (int i = 1; i < count; i++) {
        if (workers[i].running)
            pthread_join(workers[i].thread, NULL);
        else
            work(&q, dbs[i]);
    }
    pthread_mutex_destroy(&q.lock);
    *ret_counted = q.counted;
    *ret_failed = q.failed;
    return q.result;
}
