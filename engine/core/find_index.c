/*
 * find_index.c - building the `audit find` indexes of recipient partitions after a load.
 *
 * 019_find_local.sql moved the five find indexes from crier.recipient to each campaign's
 * partition, so that a load no longer builds them inside its transaction: its rows are
 * committed first, and this builds what is missing. The builds are independent sorts of
 * the same partition, so they run on more than one connection: one backend sorting while
 * another writes its index (docs/benchmarks.md, "Fourth round"). The database says what is
 * missing (crier.find_index_missing) and builds each (crier.find_index_build, which takes
 * an advisory lock per index, so two sessions asking at once build it once).
 */
#include "crier/find_index.h"
#include "crier/crier.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* missing_query - sql over crier.find_index_missing($1): the campaign's missing indexes, or
 * every campaign's for a campaign_id of 0: the one place that says so to the database. */
static int missing_query(struct crier_db *db, int64_t campaign_id, const char *sql,
                         PGresult **ret_result)
{
    char id[32];
    snprintf(id, sizeof(id), "%" PRId64, campaign_id);
    const char *params[] = {campaign_id > 0 ? id : NULL};
    return db_query(db, sql, 1, params, ret_result);
}

int find_index_missing(struct crier_db *db, int64_t campaign_id, long *ret_missing,
                       long *ret_building)
{
    PGresult *result = NULL;
    int r = missing_query(db, campaign_id,
                          "SELECT count(*), count(*) FILTER (WHERE building)"
                          " FROM crier.find_index_missing($1)",
                          &result);
    if (r < 0)
        return r;
    *ret_missing = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    if (ret_building)
        *ret_building = strtol(PQgetvalue(result, 0, 1), NULL, 10);
    PQclear(result);
    return 0;
}

/* The missing indexes, shared by the connections that build them. */
struct build_queue {
    pthread_mutex_t lock;
    PGresult *missing; /* (campaign_id, index_name) rows */
    int next;          /* the next row to build */
    long built;
    int result; /* the first error, or 0 */
    char error[1024];
};

/* queue_take - the next row to build, or -1 when none is left or a build failed. */
static int queue_take(struct build_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int row = q->result == 0 && q->next < PQntuples(q->missing) ? q->next++ : -1;
    pthread_mutex_unlock(&q->lock);
    return row;
}

static void queue_done(struct build_queue *q, struct crier_db *db, int r, bool built)
{
    pthread_mutex_lock(&q->lock);
    if (r < 0 && q->result == 0) {
        q->result = r;
        snprintf(q->error, sizeof(q->error), "%s", db->error);
    }
    q->built += r == 0 && built;
    pthread_mutex_unlock(&q->lock);
}

/* build_each - build rows from the queue on db until none is left. */
static void build_each(struct build_queue *q, struct crier_db *db)
{
    int row;
    while ((row = queue_take(q)) >= 0) {
        const char *params[] = {PQgetvalue(q->missing, row, 0), PQgetvalue(q->missing, row, 1)};
        PGresult *result = NULL;
        int r = db_query(db, "SELECT crier.find_index_build($1, $2)", 2, params, &result);
        bool built = r == 0 && strcmp(PQgetvalue(result, 0, 0), "t") == 0;
        PQclear(result);
        queue_done(q, db, r, built);
    }
}

struct builder {
    pthread_t thread;
    bool running;
    struct build_queue *queue;
    struct crier_db *db;
};

static void *builder_main(void *data)
{
    struct builder *b = data;
    build_each(b->queue, b->db);
    return NULL;
}

/* builders_start - up to count threads, each on a connection of its own; where a connection
 * or a thread cannot be had, the work is left to the others (db's always builds). */
static void builders_start(struct builder *builders, int count, struct build_queue *q,
                           const char *conninfo)
{
    for (int i = 0; i < count; i++) {
        char err[256];
        struct builder *b = &builders[i];
        b->queue = q;
        if (db_open(conninfo, "crier find index", &b->db, err, sizeof(err)) < 0)
            continue;
        b->running = pthread_create(&b->thread, NULL, builder_main, b) == 0;
        if (!b->running)
            b->db = db_close(b->db);
    }
}

static void builders_join(struct builder *builders, int count)
{
    for (int i = 0; i < count; i++) {
        if (builders[i].running)
            pthread_join(builders[i].thread, NULL);
        db_close(builders[i].db);
    }
}

int find_index_build(struct crier_db *db, const char *conninfo, int connections,
                     int64_t campaign_id, long *ret_built, char *err, size_t err_size)
{
    struct build_queue q = {.result = 0};
    *ret_built = 0;
    int r = missing_query(db, campaign_id,
                          "SELECT campaign_id, index_name FROM crier.find_index_missing($1)",
                          &q.missing);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    int rows = PQntuples(q.missing);
    int extra = connections - 1 < rows - 1 ? connections - 1 : rows - 1;
    struct builder builders[8] = {{0}};
    if (extra > 8)
        extra = 8;
    pthread_mutex_init(&q.lock, NULL);
    if (extra > 0)
        builders_start(builders, extra, &q, conninfo);
    build_each(&q, db);
    if (extra > 0)
        builders_join(builders, extra);
    pthread_mutex_destroy(&q.lock);
    PQclear(q.missing);
    *ret_built = q.built;
    if (q.result < 0)
        snprintf(err, err_size, "%s", q.error);
    return q.result;
}
