/*
 * session.c - the console's logins. A session is a PostgreSQL connection made with the
 * user's own name and password, a random cookie and a CSRF token; every request of the
 * session runs on that connection, so the database decides what the person may do, in
 * the console as in the CLI, and crier keeps no second list of who may do what.
 *
 * SECURITY: the password goes to libpq and nowhere else: not into the session, not into
 * a log line, not into a message. Sessions end after serve.session_idle without a request
 * and after serve.session_max in any case; logins, logouts and expiries are rows in
 * crier.login_log (engine/core/sql/012_console.sql), written on the session's own
 * connection as its own role. Failed logins are logged (user and client, never the
 * password) and slowed: after 10 failures in 15 minutes from one client or for one user
 * name, each further attempt must wait twice as long as the one before (at most 5
 * minutes), so guessing a password through the console is slower than through libpq.
 */
#include "crier/web.h"
#include "crier/crier.h"
#include "crier/log.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSIONS_MAX         512
#define SESSION_WAIT_SECONDS 15 /* a request waits this long for its session's previous one */
#define FAILURES_FREE        10 /* failed logins before any slowing */
#define FAILURE_WINDOW       (15 * 60) /* seconds a failure counts */
#define FAILURE_DELAY_MAX    (5 * 60)  /* the longest wait between attempts */
#define FAILURE_KEYS         1024

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct web_session *sessions[SESSIONS_MAX];
static const char *conninfo;
static double idle_seconds = 15 * 60, max_seconds = 8 * 3600;

/* One key's failed logins: "client:ADDR" or "user:NAME". */
struct failures {
    char key[160];
    int count;
    double last;
};
static struct failures failures[FAILURE_KEYS];

void session_setup(const struct crier_config *config)
{
    conninfo = config->conninfo;
    idle_seconds = (double)config->serve.session_idle_seconds;
    max_seconds = (double)config->serve.session_max_seconds;
}

static void random_hex(char out[65])
{
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        abort(); /* no randomness: no session may be made */
    hex_write(out, bytes, sizeof(bytes));
}

/* ---- the rate limit (under table_lock) ---------------------------------------------- */

static struct failures *failures_find(const char *key, bool create, double now)
{
    struct failures *oldest = &failures[0];
    for (size_t i = 0; i < FAILURE_KEYS; i++) {
        if (failures[i].count > 0 && strcmp(failures[i].key, key) == 0)
            return &failures[i];
        if (failures[i].last < oldest->last)
            oldest = &failures[i];
    }
    if (!create)
        return NULL;
    /* full: the oldest entry makes room (an attacker rotating keys gains only that) */
    snprintf(oldest->key, sizeof(oldest->key), "%s", key);
    oldest->count = 0;
    oldest->last = now;
    return oldest;
}

/* failures_wait - seconds until key may try again (0: now). */
static double failures_wait(const char *key, double now)
{
    struct failures *f = failures_find(key, false, now);
    if (f == NULL)
        return 0;
    if (now - f->last > FAILURE_WINDOW) {
        f->count = 0;
        return 0;
    }
    if (f->count < FAILURES_FREE)
        return 0;
    double delay = fmin(ldexp(1.0, f->count - FAILURES_FREE), FAILURE_DELAY_MAX);
    return fmax(0, f->last + delay - now);
}

static void failures_note(const char *key, bool failed, double now)
{
    struct failures *f = failures_find(key, failed, now);
    if (f == NULL)
        return;
    if (!failed) {
        f->count = 0;
        return;
    }
    if (now - f->last > FAILURE_WINDOW)
        f->count = 0;
    f->count++;
    f->last = now;
}

/* limit_keys - the two keys a login attempt counts against. */
static void limit_keys(const char *user, const char *client, char client_key[160],
                       char user_key[160])
{
    snprintf(client_key, 160, "client:%s", client);
    snprintf(user_key, 160, "user:%s", user);
}

/* ---- the table ---------------------------------------------------------------------- */

static bool expired(const struct web_session *s, double now)
{
    return s->ended || now - s->last_used > idle_seconds || now - s->created > max_seconds;
}

static void session_free(struct web_session *s, const char *event)
{
    if (event && s->db && !db_lost(s->db)) {
        const char *params[] = {event, s->client};
        if (db_exec(s->db, "SELECT crier.login_record($1, $2)", 2, params) < 0)
            log_warning("console: cannot record the %s of %s: %s", event, s->user, s->db->error);
    }
    if (event)
        log_info("console: %s %s (%s)", s->user, event, s->client);
    db_close(s->db);
    pthread_mutex_destroy(&s->lock);
    if (s->packet_dir)
        web_dir_remove(s->packet_dir);
    free(s->packet_dir);
    free(s->user);
    free(s);
}

void web_dir_remove(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *file = xasprintf("%s/%s", path, e->d_name);
            unlink(file);
            free(file);
        }
        closedir(d);
    }
    rmdir(path);
}

/* sweep - take the expired sessions no request holds out of the table (under table_lock)
 * into done[], to be closed outside the lock. */
static size_t sweep(double now, struct web_session *done[SESSIONS_MAX])
{
    size_t n = 0;
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        struct web_session *s = sessions[i];
        if (s && s->refs == 0 && expired(s, now)) {
            done[n++] = s;
            sessions[i] = NULL;
        }
    }
    return n;
}

static void close_swept(struct web_session *done[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        session_free(done[i], done[i]->ended ? NULL : "expired");
}

void sessions_sweep(void)
{
    struct web_session *done[SESSIONS_MAX];
    pthread_mutex_lock(&table_lock);
    size_t n = sweep(now_seconds(), done);
    pthread_mutex_unlock(&table_lock);
    close_swept(done, n);
}

/* ---- logging in --------------------------------------------------------------------- */

static int roles_read(struct web_session *s, char *err, size_t err_size)
{
    PGresult *result = NULL;
    int r =
        db_query(s->db,
                 "SELECT pg_has_role('crier_operator', 'MEMBER'),"
                 " pg_has_role('crier_legal', 'MEMBER'), pg_has_role('crier_auditor', 'MEMBER')",
                 0, NULL, &result);
    if (r < 0) {
        snprintf(err, err_size, "%s", s->db->error);
        return r;
    }
    s->operator_role = PQgetvalue(result, 0, 0)[0] == 't';
    s->legal_role = PQgetvalue(result, 0, 1)[0] == 't';
    s->auditor_role = PQgetvalue(result, 0, 2)[0] == 't';
    PQclear(result);
    if (!s->operator_role && !s->legal_role && !s->auditor_role) {
        snprintf(err, err_size,
                 "%s is not a member of crier_operator, crier_legal or "
                 "crier_auditor",
                 s->user);
        return -EACCES;
    }
    const char *params[] = {"login", s->client};
    r = db_exec(s->db, "SELECT crier.login_record($1, $2)", 2, params);
    if (r < 0)
        snprintf(err, err_size, "cannot record the login: %s", s->db->error);
    return r;
}

static int table_insert(struct web_session *s)
{
    pthread_mutex_lock(&table_lock);
    int r = -EBUSY;
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        if (sessions[i] == NULL) {
            sessions[i] = s;
            s->refs = 1;
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return r;
}

/* limit_check - 0, or -EAGAIN with the wait; the swept sessions closed either way. */
static int limit_check(const char *user, const char *client, long *ret_retry_after)
{
    char client_key[160], user_key[160];
    limit_keys(user, client, client_key, user_key);
    struct web_session *done[SESSIONS_MAX];
    double now = now_seconds();
    pthread_mutex_lock(&table_lock);
    size_t n = sweep(now, done);
    double wait = fmax(failures_wait(client_key, now), failures_wait(user_key, now));
    pthread_mutex_unlock(&table_lock);
    close_swept(done, n);
    if (wait > 0) {
        *ret_retry_after = (long)ceil(wait);
        return -EAGAIN;
    }
    return 0;
}

static void limit_note(const char *user, const char *client, bool failed)
{
    char client_key[160], user_key[160];
    limit_keys(user, client, client_key, user_key);
    double now = now_seconds();
    pthread_mutex_lock(&table_lock);
    failures_note(client_key, failed, now);
    failures_note(user_key, failed, now);
    pthread_mutex_unlock(&table_lock);
}

int session_login(const char *user, const char *password, const char *client,
                  struct web_session **ret_session, long *ret_retry_after, char *err,
                  size_t err_size)
{
    int r = limit_check(user, client, ret_retry_after);
    if (r < 0) {
        log_warning("console: login of %s from %s refused: too many failures, wait %ld s", user,
                    client, *ret_retry_after);
        snprintf(err, err_size, "too many failed logins: try again in %ld seconds",
                 *ret_retry_after);
        return r;
    }
    struct web_session *s = xcalloc(1, sizeof(*s));
    s->user = xstrdup(user);
    snprintf(s->client, sizeof(s->client), "%s", client);
    r = db_open_login(conninfo, user, password, "crier serve", &s->db, err, err_size);
    if (r == 0)
        r = roles_read(s, err, err_size);
    limit_note(user, client, r == -EACCES || r == -EPERM);
    if (r < 0) {
        log_warning("console: login of %s from %s failed: %s", user, client, err);
        db_close(s->db);
        free(s->user);
        free(s);
        /* one message for a wrong name and a wrong password: the form tells nothing */
        if (r == -EACCES && strstr(err, "not a member") == NULL)
            snprintf(err, err_size, "wrong user name or password");
        return r;
    }
    random_hex(s->id);
    random_hex(s->csrf);
    s->created = s->last_used = now_seconds();
    pthread_mutex_init(&s->lock, NULL);
    if (table_insert(s) < 0) {
        snprintf(err, err_size, "too many console sessions: try again later");
        session_free(s, "logout");
        return -EBUSY;
    }
    pthread_mutex_lock(&s->lock);
    log_info("console: %s logged in (%s)", s->user, s->client);
    *ret_session = s;
    return 0;
}

struct web_session *session_acquire(const char *id, bool *ret_busy)
{
    *ret_busy = false;
    if (str_empty(id) || strlen(id) != 64)
        return NULL;
    struct web_session *done[SESSIONS_MAX], *found = NULL;
    double now = now_seconds();
    pthread_mutex_lock(&table_lock);
    size_t n = sweep(now, done);
    for (size_t i = 0; i < SESSIONS_MAX && found == NULL; i++)
        if (sessions[i] && CRYPTO_memcmp(sessions[i]->id, id, 64) == 0 &&
            !expired(sessions[i], now))
            found = sessions[i];
    if (found) {
        found->refs++;
        found->last_used = now;
    }
    pthread_mutex_unlock(&table_lock);
    close_swept(done, n);
    if (found) {
        /* bounded: a libmicrohttpd thread waiting here may be the one that must drain the
         * session's streamed download, whose writer holds the lock (a deadlock if it waited
         * for ever) */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SESSION_WAIT_SECONDS;
        if (pthread_mutex_timedlock(&found->lock, &until) != 0) {
            pthread_mutex_lock(&table_lock);
            found->refs--;
            pthread_mutex_unlock(&table_lock);
            *ret_busy = true;
            return NULL;
        }
        /* a connection lost between requests comes back before this one runs */
        if (db_lost(found->db))
            db_reset(found->db);
    }
    return found;
}

void session_release(struct web_session *session)
{
    if (session == NULL)
        return;
    pthread_mutex_unlock(&session->lock);
    pthread_mutex_lock(&table_lock);
    session->refs--;
    bool ended = session->ended; /* once unlocked, another thread may close it */
    pthread_mutex_unlock(&table_lock);
    if (ended)
        sessions_sweep(); /* a logout closes its connection at once */
}

void session_logout(struct web_session *session)
{
    const char *params[] = {"logout", session->client};
    if (db_exec(session->db, "SELECT crier.login_record($1, $2)", 2, params) < 0)
        log_warning("console: cannot record the logout of %s: %s", session->user,
                    session->db->error);
    log_info("console: %s logged out (%s)", session->user, session->client);
    pthread_mutex_lock(&table_lock);
    session->ended = true;
    pthread_mutex_unlock(&table_lock);
}

bool session_csrf_ok(const struct web_session *session, const char *token)
{
    return token && strlen(token) == 64 && CRYPTO_memcmp(session->csrf, token, 64) == 0;
}

void sessions_end(void)
{
    pthread_mutex_lock(&table_lock);
    struct web_session *done[SESSIONS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        if (sessions[i]) {
            done[n++] = sessions[i];
            sessions[i] = NULL;
        }
    }
    pthread_mutex_unlock(&table_lock);
    for (size_t i = 0; i < n; i++)
        session_free(done[i], "logout");
}
