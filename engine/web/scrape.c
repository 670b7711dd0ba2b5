/*
 * scrape.c - crier serve's GET /metrics: each running campaign's notices by state and
 * channel (crier_campaign_notices, printed by metrics.c as `crier run --metrics` prints
 * it), in Prometheus text format.
 *
 * Who may scrape: whoever has a session, as for every page; the counts are read on that
 * session's connection with the statement of `crier status` (status_running: the tallies,
 * so a scrape costs what `crier status` costs, whatever the campaigns' size). The text is
 * kept SCRAPE_SECONDS for every scraper: every role of crier may read every campaign's
 * status, so a copy made for one session shows another nothing it could not read itself.
 *
 * Prometheus cannot log in through a form: it may send HTTP Basic credentials instead (a
 * PostgreSQL login, as the login form takes), which open a session like the form does.
 * That session is kept for the next scrape, found by an HMAC of the name and password
 * under a key drawn at start-up, so a scraper every 15 s is one login (one login_log row)
 * per serve.session_max, not one per scrape; the rate limit of failed logins applies.
 * SECURITY: Basic credentials cross the wire as they are: crier serve speaks plain HTTP on
 * loopback only (server.c), and TLS elsewhere.
 */
#include "crier/metrics.h"
#include "crier/crier.h"
#include "crier/log.h"
#include "crier/status.h"
#include "crier/web.h"
#include "pages.h"

#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPE_SECONDS 5.0 /* as crier run's gauges: read every 5 s at most */
#define SCRAPERS       8   /* Basic logins kept (scrapers, not people) */

static pthread_mutex_t scrape_lock = PTHREAD_MUTEX_INITIALIZER;
static char *scrape_text; /* the last exposition, and when it was read */
static double scrape_read_at;

static struct scraper {
    unsigned char key[32]; /* HMAC-SHA-256(basic_key, user NUL password) */
    char session_id[65];
    double used;
} scrapers[SCRAPERS];
static unsigned char basic_key[32];
static pthread_once_t basic_key_once = PTHREAD_ONCE_INIT;

static void basic_key_draw(void)
{
    if (RAND_bytes(basic_key, sizeof(basic_key)) != 1)
        abort(); /* no randomness: no session may be made */
}

/* credentials_mac - the cache key of a name and password (never the password itself). */
static void credentials_mac(const char *user, const char *password, unsigned char out[32])
{
    pthread_once(&basic_key_once, basic_key_draw);
    size_t user_len = strlen(user), password_len = strlen(password);
    unsigned char *text = xmalloc(user_len + 1 + password_len);
    memcpy(text, user, user_len + 1);
    memcpy(text + user_len + 1, password, password_len);
    unsigned int length = 32;
    if (HMAC(EVP_sha256(), basic_key, sizeof(basic_key), text, user_len + 1 + password_len, out,
             &length) == NULL)
        abort();
    OPENSSL_cleanse(text, user_len + 1 + password_len);
    free(text);
}

/* scraper_find - the id of the session a scraper with these credentials opened before
 * (under scrape_lock), or false. */
static bool scraper_find(const unsigned char key[32], char id[65])
{
    for (size_t i = 0; i < SCRAPERS; i++)
        if (scrapers[i].session_id[0] && CRYPTO_memcmp(scrapers[i].key, key, 32) == 0) {
            memcpy(id, scrapers[i].session_id, 65);
            scrapers[i].used = monotonic_seconds();
            return true;
        }
    return false;
}

static void scraper_keep(const unsigned char key[32], const char *session_id)
{
    struct scraper *slot = &scrapers[0];
    for (size_t i = 0; i < SCRAPERS; i++) {
        if (CRYPTO_memcmp(scrapers[i].key, key, 32) == 0) {
            slot = &scrapers[i];
            break;
        }
        if (scrapers[i].used < slot->used)
            slot = &scrapers[i];
    }
    memcpy(slot->key, key, 32);
    snprintf(slot->session_id, sizeof(slot->session_id), "%s", session_id);
    slot->used = monotonic_seconds();
}

struct web_session *scrape_basic(struct MHD_Connection *connection, const char *client,
                                 bool *ret_busy)
{
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(connection, &password);
    struct web_session *session = NULL;
    if (user && password && user[0]) {
        unsigned char key[32];
        credentials_mac(user, password, key);
        char id[65];
        pthread_mutex_lock(&scrape_lock);
        bool known = scraper_find(key, id);
        pthread_mutex_unlock(&scrape_lock);
        /* outside the lock: a session busy with a long request may keep us waiting */
        if (known)
            session = session_acquire(id, ret_busy);
        if (session == NULL && !*ret_busy) {
            char err[1024];
            long retry_after = 0;
            if (session_login(user, password, client, &session, &retry_after, err, sizeof(err)) ==
                0) {
                pthread_mutex_lock(&scrape_lock);
                scraper_keep(key, session->id);
                pthread_mutex_unlock(&scrape_lock);
            }
        }
        OPENSSL_cleanse(key, sizeof(key));
    }
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        MHD_free(password);
    }
    if (user)
        MHD_free(user);
    return session;
}

/* scrape_read - the exposition, read again when the copy is older than SCRAPE_SECONDS. */
static int scrape_read(struct web_session *session, char **ret_text)
{
    pthread_mutex_lock(&scrape_lock);
    double now = monotonic_seconds();
    if (scrape_text && now - scrape_read_at < SCRAPE_SECONDS) {
        *ret_text = xstrdup(scrape_text);
        pthread_mutex_unlock(&scrape_lock);
        return 0;
    }
    pthread_mutex_unlock(&scrape_lock);
    json_t *statuses = NULL;
    int r = status_running(session->db, &statuses);
    if (r < 0)
        return r;
    struct capture c;
    metrics_campaigns_print(capture_start(&c), statuses);
    char *text = capture_text(&c);
    json_decref(statuses);
    pthread_mutex_lock(&scrape_lock);
    free(scrape_text);
    scrape_text = xstrdup(text);
    scrape_read_at = now;
    pthread_mutex_unlock(&scrape_lock);
    *ret_text = text;
    return 0;
}

void scrape_answer(struct web_request *request, struct web_reply *reply)
{
    char *text = NULL;
    int r = scrape_read(request->session, &text);
    if (r < 0) {
        log_warning("console: %s: /metrics: %s", request->session->user,
                    request->session->db->error);
        text = xasprintf("reading the campaigns' counts failed: %s\n", request->session->db->error);
        reply->status = web_status(r);
        reply->content_type = "text/plain; charset=utf-8";
    } else {
        reply->status = MHD_HTTP_OK;
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
    }
    reply->body = text;
    reply->length = strlen(text);
}

void scrape_end(void)
{
    pthread_mutex_lock(&scrape_lock);
    free(scrape_text);
    scrape_text = NULL;
    memset(scrapers, 0, sizeof(scrapers));
    pthread_mutex_unlock(&scrape_lock);
}
