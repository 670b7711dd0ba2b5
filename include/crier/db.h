/*
 * db.h - one PostgreSQL connection (libpq) and the few helpers every module uses on it.
 *
 * A connection belongs to one thread. Errors come back as negative codes with the server's
 * message kept in db->error, so the caller decides what the operator sees.
 */
#ifndef CRIER_DB_H
#define CRIER_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "crier/strbuf.h"

struct crier_db {
    PGconn *conn;
    char error[1024]; /* last error, one line */
    char sqlstate[6]; /* last error's SQLSTATE, "" if none */
    bool lost;        /* a statement failed with the connection: db_reset before the next */
    char application_name[64]; /* set again on every reconnect (db_reset) */
    /* the statements db_query_prepared made in this session (names copied), least
     * recently used first to go when all slots are taken; emptied by db_reset */
    char *prepared[16];
    uint64_t prepared_used[16];
    uint64_t prepared_clock;
};

/*
 * db_open - connect with conninfo (NULL or "" = libpq's PG* environment) and set the
 * session up (UTC, application_name). Returns -EHOSTUNREACH when the server cannot be
 * reached, with libpq's message in err.
 */
int db_open(const char *conninfo, const char *application_name, struct crier_db **ret_db, char *err,
            size_t err_size);
struct crier_db *db_close(struct crier_db *db);

/*
 * db_open_login - the same, as a person logging in (crier serve): user and password over
 * conninfo's. Never a password from ~/.pgpass or the environment, and refused (-EPERM)
 * when the server did not ask for the password (trust, peer). -EACCES: wrong user or
 * password; -EHOSTUNREACH: the server cannot be reached. The password is not kept.
 */
int db_open_login(const char *conninfo, const char *user, const char *password,
                  const char *application_name, struct crier_db **ret_db, char *err,
                  size_t err_size);

/* db_oral_lapse_set - the configuration's report.oral_lapse (true: everywhere), given to
 * every session opened or reset from now on as crier.oral_lapse_where, which decides with
 * the campaign's frameworks whether an oral hold lapses (engine/core/sql/009_oral_lapse.sql).
 * Set once at start-up, before any thread starts; unset, only HIPAA campaigns lapse. */
void db_oral_lapse_set(bool everywhere);

/* db_exec - a statement whose rows, if any, are not wanted. */
int db_exec(struct crier_db *db, const char *sql, int nparams, const char *const *params);
/* db_query - a statement returning rows; *ret_result is the caller's to PQclear. */
/* db_query_prepared - db_query of a statement prepared once per session under name (a
 * plain identifier; one name, one text): no parse and plan per call, for the statements
 * run many times a second. The server may plan it generically after five runs: use it
 * for statements whose plan does not depend on the values (keys from arrays, a partition
 * named by a constant). A session keeps 16; the least recently used is deallocated for
 * a 17th. */
int db_query_prepared(struct crier_db *db, const char *name, const char *sql, int nparams,
                      const char *const *params, PGresult **ret_result);
int db_query(struct crier_db *db, const char *sql, int nparams, const char *const *params,
             PGresult **ret_result);
/* db_query_long - a statement whose one row's first column is a count (or any integer),
 * stored in *ret_value. */
int db_query_long(struct crier_db *db, const char *sql, int nparams, const char *const *params,
                  long *ret_value);
/* db_exists - whether the statement returns a row: 1 if it does, 0 if not, < 0 when it
 * failed (db->error says why). */
int db_exists(struct crier_db *db, const char *sql, int nparams, const char *const *params);
/*
 * db_fetch_each - walk an open cursor: FETCH count rows at a time and hand each batch
 * that has rows to batch(data, result) (the result stays db_fetch_each's), until the
 * cursor is exhausted. A negative return from batch stops the walk and is returned; so is
 * a failed FETCH (db->error says why). *ret_rows, when given, counts the rows handed over.
 */
int db_fetch_each(struct crier_db *db, const char *cursor, long count,
                  int (*batch)(void *data, PGresult *result), void *data, long *ret_rows);
/* db_check_result - map a finished PGresult to 0 or an error code, filling db->error. */
int db_check_result(struct crier_db *db, const PGresult *result);

int db_begin(struct crier_db *db);
int db_commit(struct crier_db *db);
/* db_end - end the transaction as it went: COMMIT when r is 0 (returning the COMMIT's
 * result), else ROLLBACK (best effort) and return r. */
int db_end(struct crier_db *db, int r);
/* db_rollback - best effort; never fails the caller's error path. */
void db_rollback(struct crier_db *db);

/* db_lost - the connection is gone and must be reopened: libpq says so, or a statement
 * failed for want of it (libpq may still report CONNECTION_OK after a failed write). */
bool db_lost(const struct crier_db *db);
/* db_reset - reconnect after db_lost; -EHOSTUNREACH while the server is away. */
int db_reset(struct crier_db *db);

/*
 * A number as a text parameter. DB_NUM(v) is the decimal text of the integer v in a buffer
 * (a compound literal) that lives as long as the block it is written in, so that a call's
 * parameters are one line: const char *params[] = {DB_NUM(c->id), DB_NUM(limit)};
 * Never assign it to a variable of an outer block (tests/lint/db_num.py fails on that).
 */
#define DB_NUM_MAX 24
const char *db_num(char buf[DB_NUM_MAX], long long value);
#define DB_NUM(v) db_num((char[DB_NUM_MAX]){0}, (v))

/* db_array_parse - a one-dimensional text[] in PostgreSQL's output form ({a,"b c",NULL})
 * into a NULL-terminated strv (NULL elements are skipped); free with strv_free. */
char **db_array_parse(const char *text);

/*
 * A PostgreSQL array literal built for one text parameter ("{1,2}", cast in the SQL:
 * $1::bigint[]). Every element is quoted and escaped, so no value can end the literal,
 * and a text element spelled NULL stays a string; a C NULL is SQL NULL.
 * db_array_end closes it (once; later calls return the same text); "{}" when empty.
 */
struct db_array {
    struct strbuf text;
    bool closed;
};
void db_array_add(struct db_array *a, const char *value);
void db_array_add_long(struct db_array *a, long long value);
const char *db_array_end(struct db_array *a);
void db_array_free(struct db_array *a);
/* db_arrays_end, db_arrays_free - the same for n arrays side by side (one parameter
 * each: params[i] is arrays[i]'s text), as a batch's columns travel. */
void db_arrays_end(struct db_array *arrays, size_t n, const char **params);
void db_arrays_free(struct db_array *arrays, size_t n);
/* db_array_of - the literal of count strings, malloc'd: the caller frees it. */
char *db_array_of(const char *const *items, size_t count);

/*
 * Reading a result. Columns are named, never counted: an enum of positions kept beside
 * the SQL that produces them (notice.h's NOTICE_COL_*, and each query's own after it).
 */
/* db_value - the text of a cell; NULL for SQL NULL. */
static inline const char *db_value(const PGresult *result, int row, int column)
{
    return PQgetisnull(result, row, column) ? NULL : PQgetvalue(result, row, column);
}
/* db_flag - a boolean cell ("t"); SQL NULL is false. */
static inline bool db_flag(const PGresult *result, int row, int column)
{
    return PQgetvalue(result, row, column)[0] == 't';
}
/* db_int64 - an integer cell; SQL NULL is 0. */
int64_t db_int64(const PGresult *result, int row, int column);

/*
 * Timestamps as crier writes them: UTC, ISO 8601 with a Z, to the second or (the dispatch
 * log, and what the seal hashes) to the microsecond. The to_char() formats, the one
 * definition of them: to_char(ts AT TIME ZONE 'UTC', " DB_TIME_S ").
 */
#define DB_TIME_S   "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define DB_TIME_US  "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
#define DB_TIME_MAX 64
/* db_time_us - a timestamptz cell as the server wrote it (text), as to_char() with
 * DB_TIME_US would have written it, into out (*ret = out, or NULL for NULL). The ISO/UTC
 * shape of crier's sessions is rewritten here; any other (BC, past 9999, infinity) is
 * asked of the server with that to_char(), so the bytes are the definition's. */
int db_time_us(struct crier_db *db, const char *text, char out[DB_TIME_MAX], const char **ret);

/* db_error_code - the negative code crier uses for a SQLSTATE (see db.c). */
int db_error_code(const char *sqlstate);

#endif
