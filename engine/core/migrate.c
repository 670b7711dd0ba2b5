/*
 * migrate.c - applies engine/core/sql/NNN_name.sql in order, each once, recorded in
 * crier.schema_migration.
 *
 * All pending migrations go in one transaction: a failure leaves the schema as it was.
 */
#include "crier/migrate.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "migrations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any constant will do: it only has to be the same for every crier. */
#define MIGRATE_LOCK_KEY "7401190401"

unsigned migrate_latest(void)
{
    unsigned latest = 0;
    for (unsigned i = 0; i < migration_count; i++)
        if (migrations[i].version > latest)
            latest = migrations[i].version;
    return latest;
}

/* current_version - 0 when crier's schema does not exist yet. */
static int current_version(struct crier_db *db, unsigned *ret_version)
{
    PGresult *result = NULL;
    int r = db_query(db, "SELECT to_regclass('crier.schema_migration') IS NULL", 0, NULL, &result);
    if (r < 0)
        return r;
    bool missing = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    if (missing) {
        *ret_version = 0;
        return 0;
    }
    r = db_query(db, "SELECT coalesce(max(version), 0) FROM crier.schema_migration", 0, NULL,
                 &result);
    if (r < 0)
        return r;
    *ret_version = (unsigned)strtoul(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}

int migrate_check(struct crier_db *db, unsigned *ret_version)
{
    unsigned version = 0;
    int r = current_version(db, &version);
    if (r < 0)
        return r;
    *ret_version = version;
    if (version == 0)
        return -ENOENT;
    if (version < migrate_latest())
        return -ESTALE;
    if (version > migrate_latest())
        return -EPROTO;
    return 0;
}

int migrate_apply(struct crier_db *db, unsigned *ret_from, unsigned *ret_to)
{
    int r = db_begin(db);
    if (r < 0)
        return r;
    r = db_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", 0, NULL);
    if (r < 0)
        goto fail;
    r = db_exec(db, "CREATE SCHEMA IF NOT EXISTS crier", 0, NULL);
    if (r < 0)
        goto fail;
    r = db_exec(db,
                "CREATE TABLE IF NOT EXISTS crier.schema_migration ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(),"
                " applied_by text NOT NULL DEFAULT current_user)",
                0, NULL);
    if (r < 0)
        goto fail;
    unsigned from = 0;
    r = current_version(db, &from);
    if (r < 0)
        goto fail;
    if (from > migrate_latest()) {
        snprintf(db->error, sizeof(db->error),
                 "the schema is at version %u, newer than this crier (%u): upgrade crier", from,
                 migrate_latest());
        r = -EPROTO;
        goto fail;
    }
    unsigned to = from;
    for (unsigned i = 0; i < migration_count; i++) {
        const struct migration *m = &migrations[i];
        if (m->version <= from)
            continue;
        /* simple query protocol: a migration file may hold many statements */
        PGresult *result = PQexec(db->conn, m->sql);
        r = db_check_result(db, result);
        PQclear(result);
        if (r < 0) {
            char message[sizeof(db->error)];
            snprintf(message, sizeof(message), "migration %03u_%s: %s", m->version, m->name,
                     db->error);
            snprintf(db->error, sizeof(db->error), "%s", message);
            goto fail;
        }
        const char *params[] = {DB_NUM(m->version), m->name};
        r = db_exec(db, "INSERT INTO crier.schema_migration (version, name) VALUES ($1, $2)", 2,
                    params);
        if (r < 0)
            goto fail;
        to = m->version;
    }
    r = db_commit(db);
    if (r < 0)
        return r;
    *ret_from = from;
    *ret_to = to;
    return 0;
fail:
    db_rollback(db);
    return r;
}
