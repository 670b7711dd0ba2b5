/*
 * web.h - crier serve: the web console and its JSON API (engine/web/, docs/console.md).
 *
 * server.c speaks HTTP (libmicrohttpd) and enforces what every response must carry;
 * session.c holds the logins, each with its own PostgreSQL connection made with the
 * user's password; pages.c answers the routes by calling the same core functions as the
 * CLI. engine/cmd/serve.c is the command.
 */
#ifndef CRIER_WEB_H
#define CRIER_WEB_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

/* The largest request body: a hold's document and its form (HOLD_DOCUMENT_MAX, hold.h). */
#define WEB_BODY_MAX (16 * 1024 * 1024 + 64 * 1024)

/* The largest status callback (hooks.c): the event, and the fax's PDF the gateway attaches. */
#define HOOK_BODY_MAX (8 * 1024 * 1024)

/* ---- the server (server.c) --------------------------------------------------------- */

struct web_server;
struct web_hooks;

struct web_options {
    const struct crier_config *config;
    const char *listen; /* HOST:PORT */
    char *tls_cert;     /* PEM text, or NULL for plain HTTP (loopback only) */
    char *tls_key;
    struct web_hooks *hooks; /* the status webhook (hooks_open), or NULL: its routes are 404 */
};

/* web_start - listen and answer on libmicrohttpd's threads. -EINVAL: a bad address, or
 * plain HTTP on an address other than loopback; -EADDRINUSE: cannot listen. */
int web_start(const struct web_options *options, struct web_server **ret_server, char *err,
              size_t err_size);
void web_stop(struct web_server *server);

/* web_loopback - is HOST (an IP address, "" = every address) loopback only? */
bool web_loopback(const char *host);

/* ---- sessions (session.c) ----------------------------------------------------------- */

struct web_session {
    char id[65];   /* the cookie: 256 random bits, hex */
    char csrf[65]; /* every state-changing request carries it */
    char *user;
    char client[64];
    struct crier_db *db; /* made with the user's credentials; every request runs on it */
    bool operator_role, legal_role, auditor_role;
    double created, last_used;
    pthread_mutex_t lock; /* held for the whole of a request: one statement at a time */
    int refs;             /* requests in hand; guarded by the table's lock */
    bool ended;           /* logged out: closed when the last request lets go */
    char *packet_dir;     /* the regulator packet built last (0700), removed at the end */
};

/* web_dir_remove - a temporary directory of plain files, and the files. */
void web_dir_remove(const char *path);

/* session_setup - the lifetimes (serve.session_idle, serve.session_max) and the
 * conninfo logins connect with. */
void session_setup(const struct crier_config *config);

/*
 * session_login - check the rate limit, log in to PostgreSQL as user, record the login
 * in crier.login_log, and return the new session, locked. -EAGAIN: too many failed
 * attempts from this client or for this user (*ret_retry_after seconds); -EACCES: wrong
 * user or password, or not a member of crier's roles; others: the database. The password
 * is neither kept nor logged.
 */
int session_login(const char *user, const char *password, const char *client,
                  struct web_session **ret_session, long *ret_retry_after, char *err,
                  size_t err_size);

/* session_acquire - the live session of a cookie value, locked; NULL when there is none
 * or it expired, or (*ret_busy) when its request before this one (a hold placement, a
 * streamed download) did not end within SESSION_WAIT_SECONDS (15). */
struct web_session *session_acquire(const char *id, bool *ret_busy);
void session_release(struct web_session *session);

/* session_logout - record the logout (the caller holds the session); it ends when
 * released. */
void session_logout(struct web_session *session);

/* session_csrf_ok - does token equal the session's CSRF token (constant time)? */
bool session_csrf_ok(const struct web_session *session, const char *token);

/* sessions_sweep - close the sessions that expired (crier serve calls it each minute, so an
 * expiry is recorded even when nobody comes back). */
void sessions_sweep(void);

/* sessions_end - at shutdown: record and close every session. */
void sessions_end(void);

/* ---- a request and its reply (server.c builds them, pages.c answers) ---------------- */

struct web_request {
    const char *method;
    const char *path;
    const struct crier_config *config;
    struct web_session *session; /* locked, or NULL */
    const char *client;
    json_t *form;      /* POST fields: name -> string; GET query arguments likewise */
    char *upload_name; /* a file field's base name, or NULL */
    char *upload;
    size_t upload_size;
    bool api; /* /api/v1/... */
    /* a status webhook's request (/hooks/...): no session, its own body limit */
    bool hook;
    char *body; /* an application/json body as it came; NULL for a form (fields in form) */
    size_t body_len;
    bool too_big;    /* the body was larger than the route allows (not kept) */
    bool unreadable; /* a body of a type the route does not read */
};

/*
 * A body written while it is sent (an export, the unreached list: any size, memory flat).
 * The server runs run(stream, out) on a thread of its own, which takes the session of
 * session_id again (so the session stays one request at a time), and sends what it writes
 * as it comes. When run fails before writing a byte, the reply is the error instead
 * (web_status(r), err); a failure later cuts the response short, so a client never takes
 * a truncated download for a whole one. free_data frees data (may be NULL).
 */
struct web_stream {
    int (*run)(struct web_stream *stream, struct web_session *session, FILE *out, char *err,
               size_t err_size);
    char session_id[65];
    const struct crier_config *config;
    bool api;
    void *data;
    void (*free_data)(void *data);
};

/* web_status - the HTTP status of a core function's negative errno (0: 200). */
unsigned web_status(int error);

struct web_reply {
    unsigned status;
    const char *content_type;
    char *body;
    size_t length;
    char *location;            /* a redirect (303) */
    char *cookie;              /* a Set-Cookie value */
    char *disposition;         /* Content-Disposition: attachment; filename=... */
    bool secure;               /* the client speaks HTTPS (cookies get Secure) */
    struct web_stream *stream; /* instead of body: the server runs and frees it */
};

/* ---- the status webhook (hooks.c) ---------------------------------------------------- */

/* hooks_open - the webhook of serve.fax_webhook: its secret read (secret_read), its own
 * database login made and checked to be a member of crier_fax_hook with no more rights.
 * err names the key to fix. */
int hooks_open(const struct crier_config *config, struct web_hooks **ret_hooks, char *err,
               size_t err_size);
struct web_hooks *hooks_free(struct web_hooks *hooks);

/* hooks_route - is path a webhook's (/hooks/...)? Such requests need no session. */
bool hooks_route(const char *path);

/* hooks_answer - the webhook's answer (hooks NULL: 404 for every path, as when the secret
 * is wrong). */
void hooks_answer(struct web_hooks *hooks, const struct web_request *request,
                  struct web_reply *reply);

/* pages_answer - the route's answer; every value in it HTML-escaped or JSON-encoded. */
void pages_answer(struct web_request *request, struct web_reply *reply);

/* scrape_basic - /metrics with HTTP Basic credentials (a PostgreSQL login, for
 * Prometheus): the session they opened before, or a new one (session_login), locked; NULL
 * when there are none or they are refused (*ret_busy: the session is busy). scrape.c. */
struct MHD_Connection;
struct web_session *scrape_basic(struct MHD_Connection *connection, const char *client,
                                 bool *ret_busy);
/* scrape_end - at shutdown: forget the kept exposition and scrapers' sessions. */
void scrape_end(void);

/* pages_css - the one stylesheet (/static/console.css), so that no page needs inline
 * style. */
const char *pages_css(void);
/* pages_live_js - the one script (/static/live.js, engine/web/live.js): live updates of
 * the campaign pages, which work without it. */
const char *pages_live_js(void);

#endif
