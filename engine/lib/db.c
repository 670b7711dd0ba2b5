/*
 * db.c - libpq connection handling and error mapping.
 *
 * Never logs above debug; never builds SQL from values (every value is a parameter).
 * SECURITY: the conninfo may hold a password; it is never copied into messages.
 */
#include "crier/db.h"
#include "crier/crier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* set_error - keep the first line of a message, without the trailing newline. */
static void set_error(struct crier_db *db, const char *message, const char *sqlstate)
{
    snprintf(db->error, sizeof(db->error), "%s", message ? message : "unknown error");
    size_t len = strcspn(db->error, "\n");
    db->error[len] = '\0';
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", sqlstate ? sqlstate : "");
}

int db_error_code(const char *sqlstate)
{
    if (str_empty(sqlstate))
        return -ECONNRESET; /* no SQLSTATE: the connection failed */
    if (strcmp(sqlstate, "23505") == 0)
        return -EEXIST; /* unique_violation */
    if (strncmp(sqlstate, "23", 2) == 0 || strncmp(sqlstate, "22", 2) == 0)
        return -EINVAL; /* integrity constraint or data exception */
    if (strcmp(sqlstate, "42501") == 0)
        return -EACCES; /* insufficient_privilege */
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
        strcmp(sqlstate, "55P03") == 0)
        return -EAGAIN; /* serialization failure, deadlock, lock not available */
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0)
        return -ECONNRESET; /* connection exception, admin shutdown */
    if (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "3F000") == 0)
        return -ENOENT; /* undefined table / schema */
    return -EIO;
}

/* quiet_notices - NOTICEs ("already exists, skipping") are not for the operator. */
static void quiet_notices(void *data, const char *message)
{
}

/* Where an unconfirmed oral hold lapses after 30 days: "hipaa" (campaigns whose meta
 * declares HIPAA) or "everywhere" (report.oral_lapse). Every session carries it as
 * crier.oral_lapse_where, which crier.hold_state() reads (engine/core/sql/009_oral_lapse.sql). */
static const char *oral_lapse_where = "hipaa";

void db_oral_lapse_set(bool everywhere)
{
    oral_lapse_where = everywhere ? "everywhere" : "hipaa";
}

/*
 * session_setup - what every crier session runs with.
 *
 * jit off: crier's statements touch a few hundred rows each, by index, but the planner
 * prices the claim's CTEs (an UPDATE ... RETURNING it cannot estimate) in the millions,
 * past jit_above_cost. PostgreSQL then compiled each claim with LLVM, 1.3-2.2 s of CPU per
 * 500-notice claim, and a campaign fell from ~10,000 notices/s to ~1,000 the moment
 * autoanalyze moved the estimates across the line (docs/benchmarks.md, "The cliff").
 * Nothing crier runs is long enough to repay a compilation.
 *
 * DateStyle ISO, MDY (PostgreSQL's own default): timestamps read as they are come in the
 * one shape db_time_us rewrites, and a date crier is given reads the same whatever a
 * server's default or PGDATESTYLE says.
 */
static int session_setup(struct crier_db *db, const char *application_name)
{
    const char *params[] = {application_name, oral_lapse_where};
    return db_exec(db,
                   "SELECT set_config('TimeZone', 'UTC', false),"
                   " set_config('DateStyle', 'ISO, MDY', false),"
                   " set_config('application_name', $1, false),"
                   " set_config('jit', 'off', false),"
                   " set_config('crier.oral_lapse_where', $2, false)",
                   2, params);
}

/* connect_error - libpq's message, on one line, after what. */
static void connect_error(PGconn *conn, const char *what, char *err, size_t err_size)
{
    snprintf(err, err_size, "%s: %s", what, PQerrorMessage(conn));
    /* libpq's message may span lines; keep them on one */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t len = strlen(err);
    while (len > 0 && err[len - 1] == ' ')
        err[--len] = '\0';
}

/* db_adopt - a connection just made: UTF-8, quiet notices, crier's session settings. */
static int db_adopt(PGconn *conn, const char *application_name, struct crier_db **ret_db, char *err,
                    size_t err_size)
{
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        snprintf(err, err_size, "cannot set the client encoding to UTF8: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -EIO;
    }
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    struct crier_db *db = xcalloc(1, sizeof(*db));
    db->conn = conn;
    snprintf(db->application_name, sizeof(db->application_name), "%s",
             application_name ? application_name : "crier");
    int r = session_setup(db, db->application_name);
    if (r < 0) {
        snprintf(err, err_size, "cannot set up the database session: %s", db->error);
        db_close(db);
        return r;
    }
    *ret_db = db;
    return 0;
}

int db_open(const char *conninfo, const char *application_name, struct crier_db **ret_db, char *err,
            size_t err_size)
{
    PGconn *conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(conn) != CONNECTION_OK) {
        connect_error(conn, "cannot connect to PostgreSQL", err, err_size);
        PQfinish(conn);
        return -EHOSTUNREACH;
    }
    return db_adopt(conn, application_name, ret_db, err, err_size);
}

int db_open_login(const char *conninfo, const char *user, const char *password,
                  const char *application_name, struct crier_db **ret_db, char *err,
                  size_t err_size)
{
    if (str_empty(user) || str_empty(password)) {
        snprintf(err, err_size, "a login needs a user name and a password");
        return -EACCES;
    }
    /* later keywords override the conninfo's (expand_dbname); passfile /dev/null: never a
     * password of the server's own, whatever ~/.pgpass holds */
    const char *const keys[] = {"dbname", "user", "password", "passfile", NULL};
    const char *const values[] = {conninfo ? conninfo : "", user, password, "/dev/null", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        bool refused = PQconnectionNeedsPassword(conn) ||
                       strstr(PQerrorMessage(conn), "authentication failed") != NULL;
        connect_error(conn, "cannot log in to PostgreSQL", err, err_size);
        PQfinish(conn);
        return refused ? -EACCES : -EHOSTUNREACH;
    }
    if (!PQconnectionUsedPassword(conn)) {
        /* trust or peer: the password proved nothing, so the login would be anyone's */
        snprintf(err, err_size,
                 "the database server did not ask for the password (trust or peer "
                 "authentication): the console refuses such logins");
        PQfinish(conn);
        return -EPERM;
    }
    return db_adopt(conn, application_name, ret_db, err, err_size);
}

/* prepared_forget - every name this session had (a new session, or the end). */
static void prepared_forget(struct crier_db *db)
{
    for (size_t i = 0; i < ARRAY_SIZE(db->prepared); i++) {
        free(db->prepared[i]);
        db->prepared[i] = NULL;
    }
}

struct crier_db *db_close(struct crier_db *db)
{
    if (db == NULL)
        return NULL;
    PQfinish(db->conn);
    prepared_forget(db);
    free(db);
    return NULL;
}

int db_check_result(struct crier_db *db, const PGresult *result)
{
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN ||
        status == PGRES_COPY_OUT)
        return 0;
    const char *message = result ? PQresultErrorMessage(result) : PQerrorMessage(db->conn);
    const char *sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    if (str_empty(message))
        message = PQerrorMessage(db->conn);
    set_error(db, message, sqlstate);
    int r = PQstatus(db->conn) == CONNECTION_BAD ? -ECONNRESET : db_error_code(sqlstate);
    if (r == -ECONNRESET)
        db->lost = true;
    return r;
}

int db_query(struct crier_db *db, const char *sql, int nparams, const char *const *params,
             PGresult **ret_result)
{
    PGresult *result = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int r = db_check_result(db, result);
    if (r < 0) {
        PQclear(result);
        return r;
    }
    *ret_result = result;
    return 0;
}

/* prepared_evict - free a slot for one more statement: the least recently used one goes,
 * so that a long run across many campaigns (one claim statement each) stays bounded. */
static int prepared_evict(struct crier_db *db, size_t *ret_slot)
{
    size_t oldest = 0;
    for (size_t i = 1; i < ARRAY_SIZE(db->prepared); i++)
        if (db->prepared_used[i] < db->prepared_used[oldest])
            oldest = i;
    char sql[160];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", db->prepared[oldest]);
    PGresult *result = PQexec(db->conn, sql);
    int r = db_check_result(db, result);
    PQclear(result);
    if (r < 0)
        return r;
    free(db->prepared[oldest]);
    db->prepared[oldest] = NULL;
    *ret_slot = oldest;
    return 0;
}

/* prepare_once - name prepared in this session, once. */
static int prepare_once(struct crier_db *db, const char *name, const char *sql, int nparams)
{
    size_t free_slot = ARRAY_SIZE(db->prepared);
    db->prepared_clock++;
    for (size_t i = 0; i < ARRAY_SIZE(db->prepared); i++) {
        if (db->prepared[i] == NULL && free_slot == ARRAY_SIZE(db->prepared))
            free_slot = i;
        if (db->prepared[i] && strcmp(db->prepared[i], name) == 0) {
            db->prepared_used[i] = db->prepared_clock;
            return 0;
        }
    }
    if (free_slot == ARRAY_SIZE(db->prepared)) {
        int r = prepared_evict(db, &free_slot);
        if (r < 0)
            return r;
    }
    PGresult *result = PQprepare(db->conn, name, sql, nparams, NULL);
    int r = db_check_result(db, result);
    PQclear(result);
    if (r < 0)
        return r;
    db->prepared[free_slot] = xstrdup(name);
    db->prepared_used[free_slot] = db->prepared_clock;
    return 0;
}

int db_query_prepared(struct crier_db *db, const char *name, const char *sql, int nparams,
                      const char *const *params, PGresult **ret_result)
{
    int r = prepare_once(db, name, sql, nparams);
    if (r < 0)
        return r;
    PGresult *result = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    r = db_check_result(db, result);
    if (r < 0) {
        PQclear(result);
        return r;
    }
    *ret_result = result;
    return 0;
}

int db_exec(struct crier_db *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *result = NULL;
    int r = db_query(db, sql, nparams, params, &result);
    PQclear(result);
    return r;
}

int db_begin(struct crier_db *db)
{
    return db_exec(db, "BEGIN", 0, NULL);
}

int db_commit(struct crier_db *db)
{
    return db_exec(db, "COMMIT", 0, NULL);
}

int db_fetch_each(struct crier_db *db, const char *cursor, long count,
                  int (*batch)(void *data, PGresult *result), void *data, long *ret_rows)
{
    char fetch[160];
    snprintf(fetch, sizeof(fetch), "FETCH %ld FROM %s", count, cursor);
    long rows = 0;
    int r = 0;
    for (;;) {
        PGresult *result = NULL;
        r = db_query(db, fetch, 0, NULL, &result);
        if (r < 0)
            break;
        int n = PQntuples(result);
        if (n > 0)
            r = batch(data, result);
        PQclear(result);
        rows += n;
        if (n == 0 || r < 0)
            break;
    }
    if (ret_rows)
        *ret_rows = rows;
    return r;
}

int db_end(struct crier_db *db, int r)
{
    if (r == 0)
        return db_commit(db);
    db_rollback(db);
    return r;
}

void db_rollback(struct crier_db *db)
{
    if (PQstatus(db->conn) != CONNECTION_OK)
        return;
    PGresult *result = PQexec(db->conn, "ROLLBACK");
    PQclear(result);
}

bool db_lost(const struct crier_db *db)
{
    return db->lost || PQstatus(db->conn) == CONNECTION_BAD;
}

int db_reset(struct crier_db *db)
{
    PQreset(db->conn);
    prepared_forget(db); /* a new session has none */
    db->lost = PQstatus(db->conn) != CONNECTION_OK;
    if (db->lost) {
        set_error(db, PQerrorMessage(db->conn), NULL);
        return -EHOSTUNREACH;
    }
    if (PQsetClientEncoding(db->conn, "UTF8") != 0) {
        set_error(db, PQerrorMessage(db->conn), NULL);
        return -EIO;
    }
    /* the whole setup again: a new server session has none of it, and one without
     * jit = off is the session that falls off the cliff (session_setup) */
    return session_setup(db, db->application_name);
}

char **db_array_parse(const char *text)
{
    size_t capacity = 8, count = 0;
    char **items = xcalloc(capacity + 1, sizeof(char *));
    const char *p = text;
    if (*p == '{')
        p++;
    while (*p && *p != '}') {
        size_t len = strlen(p);
        char *item = xmalloc(len + 1);
        size_t n = 0;
        bool quoted = *p == '"';
        if (quoted) {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                item[n++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '}')
                item[n++] = *p++;
        }
        item[n] = '\0';
        if (!quoted && strcmp(item, "NULL") == 0) {
            free(item);
        } else {
            if (count == capacity) {
                capacity *= 2;
                items = xreallocarray(items, capacity + 1, sizeof(char *));
            }
            items[count++] = item;
            items[count] = NULL;
        }
        if (*p == ',')
            p++;
    }
    return items;
}

void db_array_add(struct db_array *a, const char *value)
{
    strbuf_addc(&a->text, a->text.len == 0 ? '{' : ',');
    if (value == NULL) {
        strbuf_adds(&a->text, "NULL");
        return;
    }
    strbuf_addc(&a->text, '"');
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_addc(&a->text, '\\');
        strbuf_addc(&a->text, *p);
    }
    strbuf_addc(&a->text, '"');
}

void db_array_add_long(struct db_array *a, long long value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", value);
    db_array_add(a, text);
}

const char *db_array_end(struct db_array *a)
{
    if (!a->closed) {
        if (a->text.len == 0)
            strbuf_addc(&a->text, '{');
        strbuf_addc(&a->text, '}');
        a->closed = true;
    }
    return a->text.data;
}

void db_array_free(struct db_array *a)
{
    strbuf_free(&a->text);
    a->closed = false;
}

void db_arrays_end(struct db_array *arrays, size_t n, const char **params)
{
    for (size_t i = 0; i < n; i++)
        params[i] = db_array_end(&arrays[i]);
}

void db_arrays_free(struct db_array *arrays, size_t n)
{
    for (size_t i = 0; i < n; i++)
        db_array_free(&arrays[i]);
}

char *db_array_of(const char *const *items, size_t count)
{
    struct db_array a = {0};
    for (size_t i = 0; i < count; i++)
        db_array_add(&a, items[i]);
    db_array_end(&a);
    return a.text.data; /* the caller's now */
}

const char *db_num(char buf[DB_NUM_MAX], long long value)
{
    snprintf(buf, DB_NUM_MAX, "%lld", value);
    return buf;
}

int64_t db_int64(const PGresult *result, int row, int column)
{
    return strtoll(PQgetvalue(result, row, column), NULL, 10);
}

/* ---- timestamps ------------------------------------------------------------------------ */

/*
 * Reading many timestamps (a seal, verify or export reads two per log row), asking the
 * server for to_char() was a third of its work per row (docs/benchmarks.md, "Reading the
 * rows"). The rows are read with the column's own text instead, and what crier's
 * sessions get (UTC and ISO, session_setup: "2026-12-04 17:40:00.1+00") is rewritten here.
 */

static bool digits_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* time_rewrite - in, of the shape "YYYY-MM-DD HH:MM:SS[.f]+00", into out as DB_TIME_US
 * formats it; false for any other shape. */
static bool time_rewrite(const char *in, char out[DB_TIME_MAX])
{
    if (!(digits_at(in, 4) && in[4] == '-' && digits_at(in + 5, 2) && in[7] == '-' &&
          digits_at(in + 8, 2) && in[10] == ' ' && digits_at(in + 11, 2) && in[13] == ':' &&
          digits_at(in + 14, 2) && in[16] == ':' && digits_at(in + 17, 2)))
        return false;
    const char *p = in + 19;
    char fraction[6] = {'0', '0', '0', '0', '0', '0'};
    if (*p == '.') {
        size_t n = 0;
        while (n < 7 && p[1 + n] >= '0' && p[1 + n] <= '9')
            n++;
        if (n == 0 || n > 6)
            return false;
        memcpy(fraction, p + 1, n);
        p += 1 + n;
    }
    if (strcmp(p, "+00") != 0)
        return false;
    memcpy(out, in, 19);
    out[10] = 'T';
    out[19] = '.';
    memcpy(out + 20, fraction, 6);
    out[26] = 'Z';
    out[27] = '\0';
    return true;
}

int db_time_us(struct crier_db *db, const char *text, char out[DB_TIME_MAX], const char **ret)
{
    *ret = NULL;
    if (text == NULL)
        return 0;
    if (time_rewrite(text, out)) {
        *ret = out;
        return 0;
    }
    /* the text of this session's output reads back as the same instant */
    const char *params[] = {text};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', " DB_TIME_US ")", 1,
                     params, &result);
    if (r < 0)
        return r;
    const char *value = db_value(result, 0, 0);
    if (value && strlen(value) >= DB_TIME_MAX) {
        PQclear(result);
        snprintf(db->error, sizeof(db->error), "a timestamp too long to write: %s", text);
        return -EINVAL;
    }
    if (value) {
        snprintf(out, DB_TIME_MAX, "%s", value);
        *ret = out;
    }
    PQclear(result);
    return 0;
}

int db_query_long(struct crier_db *db, const char *sql, int nparams, const char *const *params,
                  long *ret_value)
{
    PGresult *result = NULL;
    int r = db_query(db, sql, nparams, params, &result);
    if (r < 0)
        return r;
    *ret_value = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}

int db_exists(struct crier_db *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *result = NULL;
    int r = db_query(db, sql, nparams, params, &result);
    if (r < 0)
        return r;
    r = PQntuples(result) > 0;
    PQclear(result);
    return r;
}
