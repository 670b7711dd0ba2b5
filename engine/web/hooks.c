/*
 * hooks.c - crier serve's status webhook: POST /hooks/<channel>/<secret>, where a fax gateway
 * pushes a fax's final status (the Sinch callback shape: a JSON body, or the same fields as
 * multipart/form-data with the fax object as a JSON field and the PDF as a file part). The
 * channel reads the event (its callback op) and the core records it exactly as the poller
 * would (poll.c, poll_callback_record); polling stays as the fallback.
 *
 * Answers: a path that is not the configured channel and secret, or any /hooks/ path when
 * serve.fax_webhook is not configured, is 404, as an unknown route, and changes nothing. A
 * malformed body is 400 naming what is wrong. Everything else that was read is 200, also
 * when nothing changed (a replay, an unknown fax id, a notice already final, a status not
 * final), so that a gateway does not retry for ever; only a database failure is 503, for
 * the gateway to retry, since then nothing was recorded.
 *
 * Must never: change a notice other than the one whose fax id and token both match, or
 * run on a connection with more rights than crier_fax_hook's (hooks_open refuses a
 * superuser login and one that may update campaigns).
 *
 * SECURITY: the secret is in the URL, which the gateway was given in callbackUrl; it is
 * compared in constant time (the SHA-256 of both, so that not even its length leaks),
 * never logged (nothing here logs the path), and wiped at exit. The body is untrusted:
 * its size is capped (HOOK_BODY_MAX) by server.c, it is parsed by jansson and
 * libmicrohttpd's form parser, and only the channel's cleaned words reach the log.
 */
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/log.h"
#include "crier/poll.h"
#include "crier/web.h"

#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOOKS_PREFIX "/hooks/"

struct web_hooks {
    const struct crier_config *config;
    const struct crier_channel_ops *ops;
    char secret_sha256[65]; /* of the URL's secret: what a request's is compared with */
    pthread_mutex_t lock;   /* one statement at a time on db */
    struct crier_db *db;    /* the webhook role's own login */
    char owner[160];        /* host:pid:channel:webhook, the log rows' actor */
};

bool hooks_route(const char *path)
{
    return strncmp(path, HOOKS_PREFIX, strlen(HOOKS_PREFIX)) == 0;
}

/* hooks_role_check - the login is a member of crier_fax_hook and has no more rights than a
 * webhook needs: not a superuser, and no right to change a campaign (an operator's). */
static int hooks_role_check(struct crier_db *db, char *err, size_t err_size)
{
    PGresult *result = NULL;
    int r = db_query(db,
                     "SELECT current_user, pg_has_role(current_user, 'crier_fax_hook', 'MEMBER'),"
                     " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
                     " has_any_column_privilege('crier.campaign', 'UPDATE')",
                     0, NULL, &result);
    if (r < 0) {
        snprintf(err, err_size, "serve.fax_webhook.conninfo: %s (is the schema migrated?)",
                 db->error);
        return r;
    }
    const char *user = PQgetvalue(result, 0, 0);
    if (strcmp(PQgetvalue(result, 0, 1), "t") != 0)
        snprintf(err, err_size,
                 "serve.fax_webhook.conninfo: role %s is not a member of crier_fax_hook", user);
    else if (strcmp(PQgetvalue(result, 0, 2), "t") == 0 ||
             strcmp(PQgetvalue(result, 0, 3), "t") == 0)
        snprintf(err, err_size,
                 "serve.fax_webhook.conninfo: role %s has more rights than the webhook needs "
                 "(a superuser, or it may update campaigns): log in as a member of "
                 "crier_fax_hook alone",
                 user);
    else
        err[0] = '\0';
    PQclear(result);
    return err[0] ? -EPERM : 0;
}

/* hooks_secret_digest - the SHA-256 of the configured secret (secret_read: a file others can
 * read is refused); the secret itself is wiped at once. */
static int hooks_secret_digest(const struct crier_config *config, char digest[65], char *err,
                               size_t err_size)
{
    const typeof(config->serve.webhook) *w = &config->serve.webhook;
    char *secret = NULL;
    int r = secret_read(w->secret_env, w->secret_file, &secret);
    if (r == 0 && strlen(secret) < 16)
        r = -EINVAL;
    if (r < 0)
        snprintf(err, err_size, "serve.fax_webhook: %s",
                 r == -EINVAL ? "the secret is shorter than 16 characters" : strerror(-r));
    else
        sha256_hex(secret, strlen(secret), digest);
    if (secret)
        explicit_bzero(secret, strlen(secret));
    free(secret);
    return r;
}

int hooks_open(const struct crier_config *config, struct web_hooks **ret_hooks, char *err,
               size_t err_size)
{
    const typeof(config->serve.webhook) *w = &config->serve.webhook;
    const struct crier_channel_ops *ops = channel_ops_find(w->channel);
    if (ops == NULL || ops->callback == NULL) {
        snprintf(err, err_size, "serve.fax_webhook: this crier cannot read %s status callbacks",
                 w->channel);
        return -ENOTSUP;
    }
    if (str_empty(w->secret_file) == str_empty(w->secret_env) || str_empty(w->conninfo)) {
        snprintf(err, err_size,
                 "serve.fax_webhook needs 'conninfo', and 'secret_file' or "
                 "'secret_env' (one of them)");
        return -EINVAL;
    }
    struct crier_callback probe;
    if (ops->callback(config, "{}", 2, &probe, err, err_size) == -ENOTSUP)
        return -EINVAL; /* the channel's section cannot read a callback: err says why */
    struct web_hooks *hooks = xcalloc(1, sizeof(*hooks));
    hooks->config = config;
    hooks->ops = ops;
    pthread_mutex_init(&hooks->lock, NULL);
    char host[64] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(hooks->owner, sizeof(hooks->owner), "%s:%d:%s:webhook", host, (int)getpid(),
             ops->name);
    int r = hooks_secret_digest(config, hooks->secret_sha256, err, err_size);
    if (r == 0)
        r = db_open(w->conninfo, "crier serve webhook", &hooks->db, err, err_size);
    if (r == 0)
        r = hooks_role_check(hooks->db, err, err_size);
    if (r < 0) {
        hooks_free(hooks);
        return r;
    }
    *ret_hooks = hooks;
    return 0;
}

struct web_hooks *hooks_free(struct web_hooks *hooks)
{
    if (hooks == NULL)
        return NULL;
    db_close(hooks->db);
    pthread_mutex_destroy(&hooks->lock);
    explicit_bzero(hooks, sizeof(*hooks));
    free(hooks);
    return NULL;
}

/* ---- one request ---------------------------------------------------------------------- */

static void hook_reply(struct web_reply *reply, unsigned status, json_t *body)
{
    reply->status = status;
    reply->content_type = "application/json";
    reply->body = json_dumps(body, JSON_COMPACT);
    reply->length = strlen(reply->body);
    json_decref(body);
}

static void hook_error(struct web_reply *reply, unsigned status, const char *message)
{
    hook_reply(reply, status, json_pack("{s:s}", "error", message));
}

/* hook_path_ok - is path /hooks/<our channel>/<our secret>? Constant time in the secret. */
static bool hook_path_ok(const struct web_hooks *hooks, const char *path)
{
    if (hooks == NULL)
        return false;
    const char *channel = path + strlen(HOOKS_PREFIX);
    size_t channel_len = strlen(hooks->ops->name);
    bool channel_ok =
        strncmp(channel, hooks->ops->name, channel_len) == 0 && channel[channel_len] == '/';
    const char *secret = channel_ok ? channel + channel_len + 1 : "";
    char given[65];
    sha256_hex(secret, strlen(secret), given);
    /* both compared whatever the channel said, so a wrong channel takes as long */
    return (CRYPTO_memcmp(given, hooks->secret_sha256, 64) == 0) & channel_ok;
}

/* hook_event_text - the event as one JSON document: the body itself, or the form's fields,
 * each a string but one that holds a JSON object or array, which is put in as JSON (the
 * Sinch form's "fax" field holds the fax object as JSON text). The channel then reads it. */
static char *hook_event_text(const struct web_request *request, size_t *ret_len)
{
    if (request->body) {
        char *copy = xmalloc(request->body_len + 1);
        memcpy(copy, request->body, request->body_len);
        copy[request->body_len] = '\0';
        *ret_len = request->body_len;
        return copy;
    }
    json_t *event = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(request->form, key, value)
    {
        json_t *parsed = json_loads(json_string_value(value), JSON_REJECT_DUPLICATES, NULL);
        json_object_set_new(event, key, parsed ? parsed : json_incref(value));
    }
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    *ret_len = strlen(text);
    return text;
}

/* hook_record - record a read callback on the webhook's connection; 0 or a database error. */
static int hook_record(struct web_hooks *hooks, const struct crier_callback *callback,
                       enum poll_callback_result *ret_result)
{
    pthread_mutex_lock(&hooks->lock);
    int r = 0;
    if (db_lost(hooks->db))
        r = db_reset(hooks->db);
    if (r == 0)
        r = poll_callback_record(hooks->db, hooks->config, hooks->ops, callback, hooks->owner,
                                 ret_result);
    if (r < 0)
        log_error("webhook: recording %s %s failed: %s", callback->event, callback->transport_id,
                  hooks->db->error);
    pthread_mutex_unlock(&hooks->lock);
    return r;
}

static const char *hook_result_name(enum poll_callback_result result)
{
    switch (result) {
    case CALLBACK_RECORDED:
        return "recorded";
    case CALLBACK_NO_NOTICE:
        return "no submitted notice has this fax id and token: nothing changed";
    case CALLBACK_NOT_FINAL:
        break;
    }
    return "not a final status: nothing changed";
}

/* hook_read_and_record - the body read by the channel, and recorded. */
static void hook_read_and_record(struct web_hooks *hooks, const struct web_request *request,
                                 struct web_reply *reply)
{
    char err[512];
    size_t len = 0;
    char *text = hook_event_text(request, &len);
    struct crier_callback callback;
    int r = hooks->ops->callback(hooks->config, text, len, &callback, err, sizeof(err));
    free(text);
    if (r < 0) {
        log_info("webhook: a %s callback from %s refused: %s", hooks->ops->name, request->client,
                 err);
        hook_error(reply, r == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, err);
        return;
    }
    enum poll_callback_result result = CALLBACK_NOT_FINAL;
    if (hook_record(hooks, &callback, &result) < 0) {
        hook_error(reply, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "the database is unavailable: nothing was recorded, send it again later");
        return;
    }
    log_info("webhook: %s %s from %s: %s", callback.event, callback.transport_id, request->client,
             hook_result_name(result));
    hook_reply(reply, MHD_HTTP_OK,
               json_pack("{s:s, s:s, s:b}", "id", callback.transport_id, "result",
                         hook_result_name(result), "recorded", result == CALLBACK_RECORDED));
}

void hooks_answer(struct web_hooks *hooks, const struct web_request *request,
                  struct web_reply *reply)
{
    if (!hook_path_ok(hooks, request->path)) {
        hook_error(reply, MHD_HTTP_NOT_FOUND, "no such page");
        return;
    }
    if (strcmp(request->method, "POST") != 0) {
        hook_error(reply, MHD_HTTP_METHOD_NOT_ALLOWED, "a status callback is a POST");
        return;
    }
    if (request->too_big) {
        hook_error(reply, MHD_HTTP_CONTENT_TOO_LARGE,
                   "the body is larger than a status callback may be (8 MiB)");
        return;
    }
    if (request->unreadable) {
        hook_error(reply, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "expected application/json or multipart/form-data");
        return;
    }
    hook_read_and_record(hooks, request, reply);
}
