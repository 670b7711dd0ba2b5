/*
 * server.c - crier serve's HTTP side (libmicrohttpd, TLS through its GnuTLS support): reads
 * a request (query, form fields, at most one uploaded file), finds its session, enforces
 * what no page may forget, and sends the page's reply with the headers every response
 * carries.
 *
 * What is enforced here, once, rather than in each page:
 *   - a request body above WEB_BODY_MAX is refused (413) without being kept;
 *   - every route but the login form, its API twin, the stylesheet, the script and the
 *     status webhook needs a session (/metrics takes HTTP Basic credentials too, for
 *     Prometheus: scrape.c); the webhook (/hooks/..., hooks.c) is answered by its secret
 *     alone, with its own body limit (HOOK_BODY_MAX) and its JSON body kept as it came;
 *   - a POST whose Origin names another site is refused (the login form included);
 *   - every POST but the login carries the session's CSRF token (form field "csrf", or the
 *     X-CSRF-Token header for the API), compared in constant time; else 403;
 *   - every response: a Content-Security-Policy that allows nothing but this origin's
 *     stylesheet, script file (live updates: no inline script, no eval), forms and fetches
 *     of its own API (no inline style, no other host), nosniff,
 *     no framing, no referrer to other sites, no caching; HSTS under TLS;
 *   - the session cookie is HttpOnly and SameSite=Strict, and Secure when the client
 *     speaks HTTPS (crier's TLS, or a proxy on loopback that says X-Forwarded-Proto: https).
 * SECURITY: plain HTTP only on loopback (web_start refuses otherwise): a password must
 * never cross a network in clear.
 */
#include "crier/web.h"
#include "crier/httpd.h"
#include "crier/crier.h"
#include "crier/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FIELD_MAX (64 * 1024) /* one text field */

static const char csp[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
                          "script-src 'self'; connect-src 'self'; "
                          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct web_server {
    struct MHD_Daemon *daemon;
    const struct crier_config *config;
    bool tls;
    struct web_hooks *hooks; /* the status webhook, or NULL */
};

/* The state of one request between libmicrohttpd's calls. */
struct request_state {
    struct web_request request;
    struct MHD_PostProcessor *post;
    size_t body_bytes;
    bool too_big;
    bool unreadable; /* a POST body of a type crier does not read */
    FILE *upload;    /* open_memstream over request.upload */
    FILE *body;      /* a webhook's JSON body: open_memstream over request.body */
    char client[64];
};

bool web_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false; /* "" (every address) or a name: not loopback */
}

/* ---- reading the request ------------------------------------------------------------ */

static void form_append(json_t *form, const char *key, const char *data, size_t size)
{
    const char *old = json_string_value(json_object_get(form, key));
    size_t old_len = old ? strlen(old) : 0;
    if (old_len + size > FIELD_MAX)
        return;
    char *joined = xmalloc(old_len + size + 1);
    if (old)
        memcpy(joined, old, old_len);
    memcpy(joined + old_len, data, size);
    joined[old_len + size] = '\0';
    json_t *value = json_stringn_nocheck(joined, old_len + size);
    json_object_set_new(form, key, value);
    free(joined);
}

static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    struct request_state *state = cls;
    if (filename == NULL) {
        form_append(state->request.form, key, data, size);
        return MHD_YES;
    }
    if (str_empty(filename))
        return MHD_YES; /* a file input left empty */
    if (state->upload == NULL) {
        if (state->request.upload_name)
            return MHD_YES; /* one document per request: the first */
        const char *slash = strrchr(filename, '/');
        const char *base = slash ? slash + 1 : filename;
        slash = strrchr(base, '\\'); /* some browsers send a Windows path */
        state->request.upload_name = xstrdup(slash ? slash + 1 : base);
        state->upload = open_memstream(&state->request.upload, &state->request.upload_size);
        if (state->upload == NULL)
            return MHD_NO;
    }
    if (size > 0 && fwrite(data, 1, size, state->upload) != size)
        return MHD_NO;
    return MHD_YES;
}

/* hook_field - a webhook's form field; its file parts (the fax's PDF) are not kept. */
static enum MHD_Result hook_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    struct request_state *state = cls;
    if (filename == NULL)
        form_append(state->request.form, key, data, size);
    return MHD_YES;
}

static enum MHD_Result query_argument(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    if (key && value)
        form_append(cls, key, value, strlen(value));
    return MHD_YES;
}

static void client_address(struct MHD_Connection *connection, char out[64])
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, 64, "unknown");
    if (info == NULL || info->client_addr == NULL)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, 64);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, 64);
}

/* same_address - are a and b the same IP address (however each is written)? */
static bool same_address(const char *a, const char *b)
{
    unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a, x) == 1)
        return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
    return inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1 &&
           memcmp(x, y, sizeof(x)) == 0;
}

/* forwarded_client - behind serve.trusted_proxy, the client is the last address of
 * X-Forwarded-For: the one that proxy saw and appended. Earlier entries are the client's
 * own claims and are never believed; a request from any other address keeps its own
 * (its X-Forwarded-For is ignored), so nobody can pick an address to dodge the rate limit. */
static void forwarded_client(struct MHD_Connection *connection, const char *trusted,
                             char client[64])
{
    if (str_empty(trusted) || !same_address(client, trusted))
        return;
    const char *header =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Forwarded-For");
    if (header == NULL)
        return;
    const char *last = strrchr(header, ',');
    last = last ? last + 1 : header;
    while (*last == ' ' || *last == '\t')
        last++;
    char candidate[64];
    size_t len = strcspn(last, " \t");
    if (len == 0 || len >= sizeof(candidate))
        return;
    memcpy(candidate, last, len);
    candidate[len] = '\0';
    unsigned char bytes[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, candidate, bytes) == 1 || inet_pton(AF_INET6, candidate, bytes) == 1)
        memcpy(client, candidate, len + 1);
}

static struct request_state *state_new(struct web_server *server, struct MHD_Connection *connection,
                                       const char *url, const char *method)
{
    struct request_state *state = xcalloc(1, sizeof(*state));
    client_address(connection, state->client);
    forwarded_client(connection, server->config->serve.trusted_proxy, state->client);
    state->request.method = xstrdup(method);
    state->request.path = xstrdup(url);
    state->request.config = server->config;
    state->request.client = state->client;
    state->request.form = json_object();
    state->request.api = strncmp(url, "/api/v1/", 8) == 0;
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, query_argument,
                              state->request.form);
    state->request.hook = hooks_route(url);
    if (strcmp(method, "POST") == 0) {
        const char *type =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (state->request.hook && type && strncasecmp(type, "application/json", 16) == 0) {
            state->body = open_memstream(&state->request.body, &state->request.body_len);
            return state;
        }
        state->post = MHD_create_post_processor(
            connection, 64 * 1024, state->request.hook ? hook_field : post_field, state);
        /* no body at all is a form without fields; any other body must be a form */
        state->unreadable = state->post == NULL && type != NULL;
    }
    return state;
}

static void state_free(struct request_state *state)
{
    if (state == NULL)
        return;
    if (state->post)
        MHD_destroy_post_processor(state->post);
    if (state->upload)
        fclose(state->upload);
    if (state->body)
        fclose(state->body);
    json_decref(state->request.form);
    FREE_MANY(state->request.body, (char *)state->request.method, (char *)state->request.path,
              state->request.upload_name, state->request.upload);
    free(state);
}

/* ---- replying ----------------------------------------------------------------------- */

static void reply_text(struct web_reply *reply, unsigned status, const char *text)
{
    reply->status = status;
    reply->content_type = "text/plain; charset=utf-8";
    reply->body = xstrdup(text);
    reply->length = strlen(text);
}

static void reply_error(struct web_request *request, struct web_reply *reply, unsigned status,
                        const char *message)
{
    if (request->api) {
        json_t *body = json_pack("{s:s}", "error", message);
        reply->body = json_dumps(body, JSON_COMPACT);
        reply->length = strlen(reply->body);
        reply->content_type = "application/json";
        reply->status = status;
        json_decref(body);
    } else {
        reply_text(reply, status, message);
    }
}

/* ---- streamed bodies ------------------------------------------------------------------ */

#define STREAM_BLOCK (64 * 1024)

/* One streamed body: the thread that writes it into a pipe, and the first block read. */
struct stream_state {
    struct web_stream *stream;
    pthread_t thread;
    int fd; /* the pipe's read end */
    int write_fd;
    int result; /* run's: read once the thread is joined */
    char err[1024];
    bool joined;
    atomic_int refs; /* the response and the thread: the last to let go frees it */
    char first[STREAM_BLOCK];
    size_t first_len, first_sent;
};

static void stream_unref(struct stream_state *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->stream->free_data)
        s->stream->free_data(s->stream->data);
    free(s->stream);
    free(s);
}

static void *stream_thread(void *cls)
{
    struct stream_state *s = cls;
    FILE *out = fdopen(s->write_fd, "w");
    bool busy = false;
    struct web_session *session = out ? session_acquire(s->stream->session_id, &busy) : NULL;
    if (out == NULL) {
        close(s->write_fd);
        s->result = -EIO;
        snprintf(s->err, sizeof(s->err), "cannot open the stream");
    } else if (session == NULL) {
        s->result = busy ? -EBUSY : -EACCES;
        snprintf(s->err, sizeof(s->err), "%s",
                 busy ? "the session is busy with another request: try again"
                      : "the session ended");
    } else {
        s->result = s->stream->run(s->stream, session, out, s->err, sizeof(s->err));
    }
    session_release(session);
    if (out && fclose(out) != 0 && s->result == 0)
        s->result = -EIO; /* the client went away: what it got was cut short */
    stream_unref(s);
    return NULL;
}

static int stream_join(struct stream_state *s)
{
    if (!s->joined)
        pthread_join(s->thread, NULL);
    s->joined = true;
    return s->result;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_state *s = cls;
    if (s->first_sent < s->first_len) {
        size_t n = s->first_len - s->first_sent < max ? s->first_len - s->first_sent : max;
        memcpy(buf, s->first + s->first_sent, n);
        s->first_sent += n;
        return (ssize_t)n;
    }
    ssize_t n;
    do
        n = read(s->fd, buf, max);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    /* the end: whole only when run succeeded */
    return n == 0 && stream_join(s) == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                                         : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* stream_free - the response is done (sent, or the client went away). A writer still
 * running is left to finish on its own (its writes now fail; a core function that does
 * not stop on them reads to its end): libmicrohttpd's thread does not wait for it. */
static void stream_free(void *cls)
{
    struct stream_state *s = cls;
    if (s->fd >= 0)
        close(s->fd);
    if (!s->joined)
        pthread_detach(s->thread);
    s->joined = true;
    stream_unref(s);
}

/* stream_start - run the reply's stream and read its first block; NULL with the reply
 * turned into the error when it failed before writing anything. */
static struct stream_state *stream_start(struct web_request *request, struct web_reply *reply)
{
    struct stream_state *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->stream = reply->stream;
    reply->stream = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        s->result = -errno;
        snprintf(s->err, sizeof(s->err), "cannot stream: %s", strerror(errno));
        s->joined = true;
        s->fd = -1;
    } else {
        s->fd = fds[0];
        s->write_fd = fds[1];
        atomic_fetch_add(&s->refs, 1);
        if (pthread_create(&s->thread, NULL, stream_thread, s) != 0)
            abort();
        ssize_t n;
        while (s->first_len < sizeof(s->first) &&
               ((n = read(s->fd, s->first + s->first_len, sizeof(s->first) - s->first_len)) > 0 ||
                (n < 0 && errno == EINTR)))
            s->first_len += n > 0 ? (size_t)n : 0;
        if (s->first_len > 0 || stream_join(s) == 0)
            return s;
    }
    reply_error(request, reply, web_status(s->result), s->err);
    free(reply->disposition); /* an error page, not the download */
    reply->disposition = NULL;
    stream_free(s);
    return NULL;
}

static enum MHD_Result send_reply(struct web_server *server, struct MHD_Connection *connection,
                                  struct web_request *request, struct web_reply *reply)
{
    struct stream_state *stream = reply->stream ? stream_start(request, reply) : NULL;
    struct MHD_Response *response =
        stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read,
                                                   stream, stream_free)
               : MHD_create_response_from_buffer(reply->length, reply->body, MHD_RESPMEM_MUST_FREE);
    reply->body = NULL;
    MHD_add_response_header(response, "Content-Security-Policy", csp);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    /* same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own
     * forms, which origin_ok() must refuse */
    MHD_add_response_header(response, "Referrer-Policy", "same-origin");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(response, "Cross-Origin-Resource-Policy", "same-origin");
    if (server->tls)
        MHD_add_response_header(response, "Strict-Transport-Security", "max-age=31536000");
    if (reply->content_type)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    if (reply->location)
        MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, reply->location);
    if (reply->disposition)
        MHD_add_response_header(response, "Content-Disposition", reply->disposition);
    if (reply->cookie) {
        char *cookie = xasprintf("%s; Path=/; HttpOnly; SameSite=Strict%s", reply->cookie,
                                 reply->secure ? "; Secure" : "");
        MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        free(cookie);
    }
    enum MHD_Result r = MHD_queue_response(connection, reply->status, response);
    MHD_destroy_response(response);
    FREE_MANY(reply->location, reply->cookie, reply->disposition);
    return r;
}

/* public_route - what may be asked without a session. */
static bool public_route(const char *path)
{
    return strcmp(path, "/login") == 0 || strcmp(path, "/api/v1/login") == 0 ||
           strcmp(path, "/static/console.css") == 0 || strcmp(path, "/static/live.js") == 0;
}

/* origin_ok - a POST's Origin, when the browser sends one, names this server (the Host it
 * asked for): a form on another site cannot post here, the login form included, which
 * has no session and so no CSRF token yet (login CSRF). */
static bool origin_ok(struct MHD_Connection *connection)
{
    const char *origin = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Origin");
    if (origin == NULL)
        return true; /* not a browser's cross-site form: curl, the API */
    const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
    const char *rest = strstr(origin, "://");
    return host && rest && strcmp(rest + 3, host) == 0;
}

/* guard - the checks of every request before its page; false with the reply set. */
static bool guard(struct MHD_Connection *connection, struct request_state *state,
                  struct web_reply *reply)
{
    struct web_request *request = &state->request;
    bool post = strcmp(request->method, "POST") == 0;
    if (!post && strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0) {
        reply_error(request, reply, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST");
        return false;
    }
    if (post && !origin_ok(connection)) {
        const char *origin = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Origin");
        const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
        log_warning("console: POST %s from %s with Origin %s for Host %s: refused", request->path,
                    request->client, origin, host ? host : "(none)");
        reply_error(request, reply, MHD_HTTP_FORBIDDEN, "refused: a form from another site");
        return false;
    }
    if (state->too_big) {
        reply_error(request, reply, MHD_HTTP_CONTENT_TOO_LARGE,
                    "the request is too large (a document may have at most 16 MiB)");
        return false;
    }
    if (state->unreadable) {
        reply_error(request, reply, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                    "expected application/x-www-form-urlencoded or multipart/form-data");
        return false;
    }
    const char *cookie = MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, "crier_session");
    bool busy = false;
    request->session = session_acquire(cookie, &busy);
    bool metrics = strcmp(request->path, "/metrics") == 0;
    if (request->session == NULL && !busy && metrics)
        request->session = scrape_basic(connection, request->client, &busy);
    if (busy) {
        reply_error(request, reply, MHD_HTTP_SERVICE_UNAVAILABLE,
                    "this session is busy with another request (a hold placement waiting for "
                    "notices in flight, or a download): try again when it is done");
        return false;
    }
    if (request->session == NULL && !public_route(request->path)) {
        if (metrics) {
            reply_text(reply, MHD_HTTP_UNAUTHORIZED,
                       "log in first: HTTP Basic with a PostgreSQL login of crier's roles\n");
        } else if (request->api) {
            reply_error(request, reply, MHD_HTTP_UNAUTHORIZED, "log in first: POST /api/v1/login");
        } else {
            reply->status = MHD_HTTP_SEE_OTHER;
            reply->location = xstrdup("/login");
            reply->body = xstrdup("");
        }
        return false;
    }
    if (post && request->session && !public_route(request->path)) {
        const char *token = json_string_value(json_object_get(request->form, "csrf"));
        if (token == NULL)
            token = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!session_csrf_ok(request->session, token)) {
            log_warning("console: %s from %s: POST %s without its CSRF token: refused",
                        request->session->user, request->client, request->path);
            reply_error(request, reply, MHD_HTTP_FORBIDDEN,
                        "refused: the form's CSRF token is missing or wrong (reload the page)");
            return false;
        }
    }
    return true;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **request_state)
{
    struct web_server *server = cls;
    struct request_state *state = *request_state;
    if (state == NULL) {
        *request_state = state_new(server, connection, url, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        state->body_bytes += *upload_data_size;
        if (state->body_bytes > (state->request.hook ? HOOK_BODY_MAX : WEB_BODY_MAX))
            state->too_big = true;
        if (!state->too_big && state->body &&
            fwrite(upload_data, 1, *upload_data_size, state->body) != *upload_data_size)
            state->unreadable = true;
        if (!state->too_big && state->post &&
            MHD_post_process(state->post, upload_data, *upload_data_size) != MHD_YES)
            state->unreadable = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (state->upload) {
        fclose(state->upload); /* sets request.upload and upload_size */
        state->upload = NULL;
    }
    if (state->body) {
        fclose(state->body); /* sets request.body and body_len */
        state->body = NULL;
    }
    const char *proto =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Forwarded-Proto");
    struct web_reply reply = {.status = MHD_HTTP_OK,
                              .secure = server->tls || (proto && strcmp(proto, "https") == 0)};
    if (strcmp(state->request.path, "/favicon.ico") == 0) {
        reply_text(&reply, MHD_HTTP_NO_CONTENT, ""); /* none, and no 404 in the browser's log */
    } else if (strcmp(state->request.path, "/static/console.css") == 0) {
        reply_text(&reply, MHD_HTTP_OK, pages_css());
        reply.content_type = "text/css; charset=utf-8";
    } else if (strcmp(state->request.path, "/static/live.js") == 0) {
        reply_text(&reply, MHD_HTTP_OK, pages_live_js());
        reply.content_type = "text/javascript; charset=utf-8";
    } else if (state->request.hook) {
        state->request.too_big = state->too_big;
        state->request.unreadable = state->unreadable;
        hooks_answer(server->hooks, &state->request, &reply);
    } else if (guard(connection, state, &reply)) {
        pages_answer(&state->request, &reply);
    }
    session_release(state->request.session);
    state->request.session = NULL;
    if (reply.body == NULL && reply.stream == NULL)
        reply_text(&reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "no reply");
    return send_reply(server, connection, &state->request, &reply);
}

static void completed(void *cls, struct MHD_Connection *connection, void **request_state,
                      enum MHD_RequestTerminationCode code)
{
    state_free(*request_state);
    *request_state = NULL;
}

/* ---- the daemon --------------------------------------------------------------------- */

int web_start(const struct web_options *options, struct web_server **ret_server, char *err,
              size_t err_size)
{
    struct httpd_address listen;
    int r =
        httpd_address(options->listen, "serve.listen", "127.0.0.1:8470", &listen, err, err_size);
    if (r < 0)
        return r;
    const char *proxy = options->config->serve.trusted_proxy;
    unsigned char proxy_bytes[sizeof(struct in6_addr)];
    if (!str_empty(proxy) && inet_pton(AF_INET, proxy, proxy_bytes) != 1 &&
        inet_pton(AF_INET6, proxy, proxy_bytes) != 1) {
        snprintf(err, err_size, "serve.trusted_proxy %s: not an IP address", proxy);
        return -EINVAL;
    }
    bool tls = options->tls_cert != NULL;
    if (!tls && !web_loopback(listen.host)) {
        snprintf(err, err_size,
                 "serve.listen %s: plain HTTP is allowed on loopback only (127.0.0.1, ::1), "
                 "behind a reverse proxy that speaks TLS; set serve.tls.cert and "
                 "serve.tls.key to listen there",
                 options->listen);
        return -EINVAL;
    }
    if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        snprintf(err, err_size, "this libmicrohttpd was built without TLS");
        return -EINVAL;
    }
    struct web_server *server = xcalloc(1, sizeof(*server));
    server->config = options->config;
    server->tls = tls;
    server->hooks = options->hooks;
    const struct MHD_OptionItem daemon_options[] = {
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, 8, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 256, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, options->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, options->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    server->daemon = httpd_start(&listen, tls ? MHD_USE_TLS : 0, answer, server, daemon_options);
    if (server->daemon == NULL) {
        snprintf(err, err_size, "serve.listen %s: cannot listen (in use, not an address here%s)",
                 options->listen, tls ? ", or the certificate and key do not match" : "");
        free(server);
        return -EADDRINUSE;
    }
    *ret_server = server;
    return 0;
}

void web_stop(struct web_server *server)
{
    if (server == NULL)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
