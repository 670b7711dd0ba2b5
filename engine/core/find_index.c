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
#include "crier/db.h"
#include "crier/parallel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* missing_query - sql over crier.find_index_missing($1): the campaign's missing indexes, or
 * every campaign's for a campaign_id of 0: the one place that says so to the database. */
static int missing_query(struct crier_db *db, int64_t campaign_id, const char *sql,
                         PGresult **ret_result)
{
    const char *params[] = {campaign_id > 0 ? DB_NUM(campaign_id) : NULL};
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

/* build_one - one missing index (a row of campaign_id, index_name) on db; counts 1 when
 * this session built it, 0 when another had (crier.find_index_build's answer). */
static int build_one(struct crier_db *db, PGresult *missing, int row, void *data)
{
    const char *params[] = {PQgetvalue(missing, row, 0), PQgetvalue(missing, row, 1)};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT crier.find_index_build($1, $2)", 2, params, &result);
    bool built = r == 0 && strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    return r < 0 ? r : built;
}

#define BUILDERS_MAX 9 /* db and up to eight more */

/* builders_open - db, then up to count - 1 connections of their own; where one cannot be
 * had, the work is left to the others (db's always builds). Returns how many there are. */
static int builders_open(struct crier_db **dbs, int count, struct crier_db *db,
                         const char *conninfo)
{
    int opened = 0;
    dbs[opened++] = db;
    for (int i = 1; i < count; i++) {
        char err[256];
        if (db_open(conninfo, "crier find index", &dbs[opened], err, sizeof(err)) == 0)
            opened++;
    }
    return opened;
}

int find_index_build(struct crier_db *db, const char *conninfo, int connections,
                     int64_t campaign_id, long *ret_built, char *err, size_t err_size)
{
    PGresult *missing = NULL;
    *ret_built = 0;
    int r =
        missing_query(db, campaign_id,
                      "SELECT campaign_id, index_name FROM crier.find_index_missing($1)", &missing);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    int rows = PQntuples(missing);
    int count = connections < rows ? connections : rows;
    if (count > BUILDERS_MAX)
        count = BUILDERS_MAX;
    struct crier_db *dbs[BUILDERS_MAX] = {db};
    count = count > 1 ? builders_open(dbs, count, db, conninfo) : 1;
    struct crier_db *failed = NULL;
    r = parallel_rows(dbs, count, missing, build_one, NULL, ret_built, &failed);
    if (r < 0)
        snprintf(err, err_size, "%s", failed->error);
    for (int i = 1; i < count; i++)
        db_close(dbs[i]);
    PQclear(missing);
    return r;
}
