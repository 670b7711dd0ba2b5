/*
 * fax.c - the fax channel: each notice's letter as a PDF, posted to an HTTP fax gateway
 * (Sinch Fax API v3, or a gateway described in YAML), and its final status asked for later.
 *
 * One lane drives its whole claimed batch at once through libcurl's multi interface:
 * letters are rendered one after the other while the uploads of the earlier ones are in
 * flight, connections are kept and reused between batches (HTTP/2 multiplexing where the
 * gateway offers it over TLS), and no request waits for "100 Continue".
 *
 * The rule that matters most: a submission whose outcome is unknown (the connection was
 * lost, or timed out, after the request was sent; a 2xx reply without a fax id) is never
 * sent again by this channel. It is reported ACCEPTED with no transport id and a detail
 * beginning "unknown outcome"; the poller (engine/core/poll.c) then asks the gateway, through
 * the poll op below, whether a fax labelled with the notice's token and attempt exists,
 * and only a confirmed absence lets the notice be sent again. libcurl itself would resend
 * a POST whose connection was found closed before any reply (a reused keep-alive
 * connection): the PDF part's seek callback refuses that rewind, so that case is unknown
 * too, never a silent second fax.
 *
 * SECURITY: the API secret comes from a file or the environment, never from the YAML, is
 * handed only to libcurl, and is never logged or put in an outcome. Certificates are
 * verified (libcurl's default, never turned off here; ca_file may add a CA). Every value
 * in a reply is untrusted: replies are capped in size, parsed by jansson, and only short
 * excerpts, with control characters replaced, reach the dispatch log.
 */
#include "crier/fax.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/letter.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLY_MAX        (1024 * 1024) /* a reply bigger than this is cut (and unparseable) */
#define EXCERPT_MAX      160           /* of a reply body, in a detail */
#define LIST_PAGE_SIZE   "100"
#define LIST_PAGES_MAX   10  /* pages of one number's faxes read to reconcile */
#define HAND_OFF_CHECK_S 5.0 /* a notice held longer than this since the claim: ask holds */
#define LABEL_TOKEN      "crier_notice"
#define LABEL_ATTEMPT    "crier_attempt"

/* ---- pure helpers (fax.h) ------------------------------------------------------------ */

int fax_json_pointer(json_t *root, const char *pointer, json_t **ret_value)
{
    if (pointer == NULL)
        return -EINVAL;
    if (pointer[0] == '\0') {
        *ret_value = root;
        return 0;
    }
    if (pointer[0] != '/')
        return -EINVAL;
    json_t *node = root;
    const char *p = pointer;
    char token[256];
    while (*p == '/') {
        p++;
        size_t len = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~') {
                if (*p == '0')
                    c = '~';
                else if (*p == '1')
                    c = '/';
                else
                    return -EINVAL;
                p++;
            }
            if (len + 1 >= sizeof(token))
                return -ENOENT; /* no gateway names a member this long */
            token[len++] = c;
        }
        token[len] = '\0';
        if (json_is_object(node)) {
            node = json_object_get(node, token);
        } else if (json_is_array(node)) {
            /* an index: "0" or digits without a leading zero */
            if (len == 0 || strspn(token, "0123456789") != len || (len > 1 && token[0] == '0'))
                return -ENOENT;
            node = json_array_get(node, strtoul(token, NULL, 10));
        } else {
            node = NULL;
        }
        if (node == NULL)
            return -ENOENT;
    }
    *ret_value = node;
    return 0;
}

const char *fax_json_pointer_text(json_t *root, const char *pointer, char *buffer,
                                  size_t buffer_size)
{
    json_t *value = NULL;
    if (root == NULL || fax_json_pointer(root, pointer, &value) < 0)
        return NULL;
    if (json_is_string(value))
        return json_string_value(value);
    if (json_is_integer(value)) {
        snprintf(buffer, buffer_size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return buffer;
    }
    return NULL;
}

char **fax_status_words(const char *text)
{
    size_t count = 0, capacity = 4;
    char **words = xcalloc(capacity + 1, sizeof(char *));
    const char *p = text;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            if (count == capacity) {
                capacity *= 2;
                words = xreallocarray(words, capacity + 1, sizeof(char *));
            }
            words[count++] = xstrndup(start, (size_t)(end - start));
            words[count] = NULL;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return words;
}

static bool word_in(char *const *words, const char *word)
{
    for (size_t i = 0; words && words[i]; i++)
        if (strcmp(words[i], word) == 0)
            return true;
    return false;
}

enum fax_status_class fax_status_classify(const struct fax_status_map *map, const char *word)
{
    if (word == NULL)
        return FAX_STATUS_UNKNOWN;
    if (word_in(map->delivered, word))
        return FAX_STATUS_DELIVERED;
    if (word_in(map->failed_permanent, word))
        return FAX_STATUS_FAILED_PERMANENT;
    if (word_in(map->failed_temporary, word))
        return FAX_STATUS_FAILED_TEMPORARY;
    if (word_in(map->pending, word))
        return FAX_STATUS_PENDING;
    return FAX_STATUS_UNKNOWN;
}

enum fax_verdict fax_send_verdict(int curl_result, long http, bool request_complete)
{
    if (curl_result != CURLE_OK)
        /* the gateway cannot act on a request it did not receive whole */
        return request_complete ? FAX_VERDICT_UNKNOWN : FAX_VERDICT_RETRY;
    if (http >= 200 && http < 300)
        return FAX_VERDICT_ACCEPTED;
    switch (http) {
    case 401: /* our key, project or URL, not the person's number: retry, never fall back */
    case 403:
    case 404:
    case 405:
    case 407:
    case 408: /* the server gave up reading the request */
    case 429: /* rate limited; Retry-After */
        return FAX_VERDICT_RETRY;
    case 502: /* a proxy's words: the gateway behind it may have taken the fax */
    case 504:
        return FAX_VERDICT_UNKNOWN;
    default:
        break;
    }
    if (http >= 400 && http < 500)
        return FAX_VERDICT_REFUSED;
    if (http >= 300 && http < 400)
        return FAX_VERDICT_RETRY; /* not followed: a misconfigured URL, nothing processed */
    if (http >= 500 && http < 600)
        return FAX_VERDICT_RETRY;
    return FAX_VERDICT_UNKNOWN; /* a reply that is not HTTP as we know it */
}

/* ---- the gateway, as data --------------------------------------------------------------- */

enum fax_auth {
    FAX_AUTH_BASIC,
    FAX_AUTH_BEARER,
    FAX_AUTH_NONE,
};

/* A provider described by data: sinch fills it in code, generic from the YAML. */
struct fax_gateway {
    char *send_url;   /* {base} and {project} expanded */
    char *status_url; /* ... {id} left to expand */
    char *list_url;   /* ... {to} left to expand; NULL: no reconciliation possible */
    const char *file_field, *to_field, *from_field, *header_field, *labels_field, *callback_field;
    bool labels_brackets; /* labels[key] fields instead of one JSON field */
    const char *id_pointer, *status_pointer;
    char **error_pointers; /* joined with ": " in a detail */
    const char *list_items, *list_id, *list_token, *list_attempt, *list_next, *list_page_param;
    struct fax_status_map statuses;
};

struct fax_session {
    const struct crier_config *config;
    struct fax_gateway gateway;
    enum fax_auth auth;
    char *secret;
    char *secret_basic; /* base64 of "key_id:secret", as the Authorization header sends it */
    CURLM *multi;       /* kept for the session: its connection cache is reused across batches */
    struct curl_slist *headers;
    size_t max_in_flight;
    long timeout_ms;
    struct letter_layout layout;
    struct letter_cache *letters; /* shaping shared by this lane's faxes; NULL: none */
    char **letterhead;            /* return address lines; NULL: the campaign's organisation */
};

enum transfer_kind {
    TRANSFER_SEND,
    TRANSFER_STATUS,
    TRANSFER_LIST,
};

/* One HTTP request in flight. */
struct transfer {
    enum transfer_kind kind;
    size_t index; /* of the notice or poll item */
    CURL *easy;
    curl_mime *mime;
    char *url;
    unsigned char *pdf;
    size_t pdf_len, pdf_read;
    bool rewind_refused; /* libcurl wanted to send the request again: refused */
    char *reply;
    size_t reply_len;
    bool reply_cut;
    int page;           /* TRANSFER_LIST: pages read so far */
    int64_t content_at; /* TRANSFER_SEND: when the PDF was rendered (its printed date) */
    char error[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* expand - a URL template with {name} placeholders; values are URL-escaped unless raw. */
static char *expand(const char *template, const char *const *names, const char *const *values,
                    const bool *raw, size_t count)
{
    size_t cap = strlen(template) + 64, len = 0;
    char *out = xmalloc(cap);
    for (const char *p = template; *p;) {
        const char *value = NULL;
        size_t skip = 0;
        bool escape = false;
        if (*p == '{') {
            for (size_t i = 0; i < count && value == NULL; i++) {
                size_t n = strlen(names[i]);
                if (strncmp(p + 1, names[i], n) == 0 && p[1 + n] == '}') {
                    value = values[i] ? values[i] : "";
                    skip = n + 2;
                    escape = !raw[i];
                }
            }
        }
        char *escaped = NULL;
        if (value && escape) {
            escaped = curl_easy_escape(NULL, value, 0);
            value = escaped ? escaped : "";
        }
        size_t add = value ? strlen(value) : 1;
        if (len + add + 1 > cap) {
            while (len + add + 1 > cap)
                cap *= 2;
            out = xrealloc(out, cap);
        }
        if (value) {
            memcpy(out + len, value, add);
            p += skip;
        } else {
            out[len] = *p++;
        }
        len += add;
        curl_free(escaped);
    }
    out[len] = '\0';
    return out;
}

/* excerpt - a reply body cut short, controls replaced, for a detail. */
static void excerpt(const char *body, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < size && n < EXCERPT_MAX; i++) {
        unsigned char c = (unsigned char)body[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (n < len && n + 4 < size) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* clean - a short value from a reply, fit for a detail: controls replaced, cut. */
static void clean(const char *value, char *out, size_t size)
{
    excerpt(value ? value : "", value ? strlen(value) : 0, out, size);
}

static int read_secret(const struct crier_config *config, char **ret)
{
    return secret_read(config->fax.key_secret_env, config->fax.key_secret_file, ret);
}

static const char *or_default(const char *value, const char *fallback)
{
    return str_empty(value) ? fallback : value;
}

/* gateway_setup - the provider's URLs, field names, pointers and status words. */
static int gateway_setup(struct fax_gateway *g, const struct crier_config *config)
{
    const char *provider = or_default(config->fax.provider, "sinch");
    char base[2048];
    snprintf(base, sizeof(base), "%s", config->fax.base_url ? config->fax.base_url : "");
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base[--base_len] = '\0';
    const char *names[] = {"base", "project"};
    const char *values[] = {base, config->fax.project_id};
    const bool raw[] = {true, false};
    const struct crier_config *c = config;
    if (strcmp(provider, "sinch") == 0) {
        if (str_empty(c->fax.base_url) || str_empty(c->fax.project_id))
            return -EINVAL;
        g->send_url = expand("{base}/v3/projects/{project}/faxes", names, values, raw, 2);
        g->status_url = expand("{base}/v3/projects/{project}/faxes/{id}", names, values, raw, 2);
        g->list_url = expand("{base}/v3/projects/{project}/faxes?to={to}&pageSize=" LIST_PAGE_SIZE,
                             names, values, raw, 2);
        g->file_field = "file";
        g->to_field = "to";
        g->from_field = "from";
        g->header_field = "headerText";
        g->labels_field = "labels";
        g->callback_field = "callbackUrl";
        g->labels_brackets = false;
        g->id_pointer = "/id";
        g->status_pointer = "/status";
        g->error_pointers = fax_status_words("/errorType, /errorMessage");
        g->list_items = "/faxes";
        g->list_id = "/id";
        g->list_token = "/labels/" LABEL_TOKEN;
        g->list_attempt = "/labels/" LABEL_ATTEMPT;
        g->list_next = "/nextPageToken";
        g->list_page_param = "pageToken";
        g->statuses.delivered = fax_status_words("COMPLETED");
        g->statuses.failed_permanent = fax_status_words("FAILURE");
        g->statuses.failed_temporary = fax_status_words(NULL);
        g->statuses.pending = fax_status_words("QUEUED, IN_PROGRESS");
        return 0;
    }
    const typeof(c->fax.generic) *y = &c->fax.generic;
    if (str_empty(y->send_url) || str_empty(y->status_url) || str_empty(y->id_pointer) ||
        str_empty(y->status_pointer))
        return -EINVAL;
    g->send_url = expand(y->send_url, names, values, raw, 2);
    g->status_url = expand(y->status_url, names, values, raw, 2);
    g->list_url = str_empty(y->list_url) ? NULL : expand(y->list_url, names, values, raw, 2);
    g->file_field = or_default(y->file_field, "file");
    g->to_field = or_default(y->to_field, "to");
    g->from_field = or_default(y->from_field, "from");
    g->header_field = y->header_field;
    g->labels_field = or_default(y->labels_field, "labels");
    g->callback_field = y->callback_field;
    g->labels_brackets = y->label_style && strcmp(y->label_style, "brackets") == 0;
    g->id_pointer = y->id_pointer;
    g->status_pointer = y->status_pointer;
    g->error_pointers = fax_status_words(y->error_pointer);
    g->list_items = y->list_items_pointer;
    g->list_id = y->list_id_pointer;
    g->list_token = y->list_token_pointer;
    g->list_attempt = y->list_attempt_pointer;
    g->list_next = y->list_next_pointer;
    g->list_page_param = y->list_page_param;
    if (g->list_url &&
        (str_empty(g->list_items) || str_empty(g->list_id) || str_empty(g->list_token)))
        return -EINVAL;
    g->statuses.delivered = fax_status_words(y->delivered);
    g->statuses.failed_permanent = fax_status_words(y->failed_permanent);
    g->statuses.failed_temporary = fax_status_words(y->failed_temporary);
    g->statuses.pending = fax_status_words(y->pending);
    return 0;
}

static void gateway_clear(struct fax_gateway *g)
{
    FREE_MANY(g->send_url, g->status_url, g->list_url);
    strv_free(g->error_pointers);
    strv_free(g->statuses.delivered);
    strv_free(g->statuses.failed_permanent);
    strv_free(g->statuses.failed_temporary);
    strv_free(g->statuses.pending);
    memset(g, 0, sizeof(*g));
}

static void fax_close(struct crier_channel *channel)
{
    struct fax_session *s = channel->state;
    if (s == NULL)
        return;
    if (s->multi)
        curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->headers);
    gateway_clear(&s->gateway);
    if (s->secret) {
        explicit_bzero(s->secret, strlen(s->secret));
        free(s->secret);
    }
    if (s->secret_basic) {
        explicit_bzero(s->secret_basic, strlen(s->secret_basic));
        free(s->secret_basic);
    }
    letter_cache_free(s->letters);
    strv_free(s->letterhead);
    free(s);
    channel->state = NULL;
}

/* fax_layout_init - how a fax page is laid out: a letter without windows, fold marks or
 * duplex, headed by channels.fax.letterhead (one line per line) when it is set. */
static void fax_layout_init(struct fax_session *s, const struct crier_config *config)
{
    letter_layout_default(&s->layout);
    s->layout.windows = false;
    s->layout.grid = false; /* letter.h: a fax's digest is of its bytes */
    s->layout.fold_marks = false;
    s->layout.duplex = false;
    if (str_empty(config->fax.letterhead))
        return;
    size_t count = 0;
    s->letterhead = xcalloc(1, sizeof(char *));
    for (const char *p = config->fax.letterhead; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0) {
            s->letterhead = xreallocarray(s->letterhead, count + 2, sizeof(char *));
            s->letterhead[count++] = xstrndup(p, len);
            s->letterhead[count] = NULL;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
}

static int fax_open(struct crier_channel *channel, const struct crier_config *config)
{
    pthread_once(&curl_once, curl_init_once);
    struct fax_session *s = xcalloc(1, sizeof(*s));
    channel->state = s;
    s->config = config;
    const char *auth = or_default(config->fax.auth, "basic");
    s->auth = strcmp(auth, "bearer") == 0 ? FAX_AUTH_BEARER
              : strcmp(auth, "none") == 0 ? FAX_AUTH_NONE
                                          : FAX_AUTH_BASIC;
    int r = gateway_setup(&s->gateway, config);
    if (r == 0 && s->auth != FAX_AUTH_NONE)
        r = read_secret(config, &s->secret);
    if (r < 0) {
        fax_close(channel);
        return r;
    }
    if (s->secret) {
        /* a gateway that repeats what it was sent is redacted (channel.c) */
        char *pair = xasprintf("%s:%s", or_default(config->fax.key_id, ""), s->secret);
        s->secret_basic = secret_base64(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        free(pair);
        channel->secrets[0] = s->secret;
        channel->secrets[1] = s->secret_basic;
    }
    int batch = config->channel[CHANNEL_FAX].batch_size;
    s->max_in_flight = (size_t)(config->fax.max_in_flight > 0 ? config->fax.max_in_flight
                                                              : (batch > 0 ? batch : 1));
    s->timeout_ms = config->fax.timeout_seconds * 1000;
    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        fax_close(channel);
        return -ENOMEM;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->max_in_flight);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->max_in_flight);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* an empty Expect: no "100-continue" round trip before each upload */
    s->headers = curl_slist_append(NULL, "Expect:");
    s->headers = curl_slist_append(s->headers, "Accept: application/json");
    fax_layout_init(s, config);
    /* without forms: a fax is the same bytes as audit show's uncached re-render */
    s->letters = letter_cache_new(&s->layout, false);
    return 0;
}

/* ---- transfers ------------------------------------------------------------------------ */

static size_t reply_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * nmemb;
    if (t->reply_len + len > REPLY_MAX) {
        t->reply_cut = true;
        len = t->reply_len < REPLY_MAX ? REPLY_MAX - t->reply_len : 0;
    }
    if (len > 0) {
        t->reply = xrealloc(t->reply, t->reply_len + len + 1);
        memcpy(t->reply + t->reply_len, data, len);
        t->reply_len += len;
        t->reply[t->reply_len] = '\0';
    }
    return size * nmemb; /* keep reading: the status line and headers still count */
}

static size_t pdf_read(char *buffer, size_t size, size_t nitems, void *arg)
{
    struct transfer *t = arg;
    size_t want = size * nitems, left = t->pdf_len - t->pdf_read;
    size_t n = want < left ? want : left;
    memcpy(buffer, t->pdf + t->pdf_read, n);
    t->pdf_read += n;
    return n;
}

/* pdf_seek - libcurl rewinds an upload only to send it again (a reused connection found
 * closed after the request went out, a redirect, an auth round): refuse once any byte of
 * the PDF was read, so that the request fails instead of becoming a second fax. */
static int pdf_seek(void *arg, curl_off_t offset, int origin)
{
    struct transfer *t = arg;
    if (origin == SEEK_SET && offset == 0 && t->pdf_read == 0)
        return CURL_SEEKFUNC_OK;
    t->rewind_refused = true;
    return CURL_SEEKFUNC_FAIL;
}

static void transfer_free(struct transfer *t)
{
    if (t == NULL)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_mime_free(t->mime);
    FREE_MANY(t->url, t->pdf, t->reply);
    free(t);
}

/* transfer_new - an easy handle with the session's common options for url. */
static struct transfer *transfer_new(struct fax_session *s, enum transfer_kind kind, size_t index,
                                     char *url)
{
    struct transfer *t = xcalloc(1, sizeof(*t));
    t->kind = kind;
    t->index = index;
    t->url = url;
    t->easy = curl_easy_init();
    if (t->easy == NULL)
        abort(); /* out of memory, as xmalloc would */
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, reply_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms < 10000 ? s->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "crier/" CRIER_VERSION);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->config->fax.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->config->fax.ca_file);
    if (s->auth == FAX_AUTH_BASIC) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, s->config->fax.key_id ? s->config->fax.key_id : "");
        curl_easy_setopt(e, CURLOPT_PASSWORD, s->secret);
    } else if (s->auth == FAX_AUTH_BEARER) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, s->secret);
    }
    return t;
}

static void mime_text(curl_mime *mime, const char *name, const char *value, const char *type)
{
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, name);
    curl_mime_data(part, value, CURL_ZERO_TERMINATED);
    if (type)
        curl_mime_type(part, type);
}

/* letter_pdf - the notice's letter, laid out for fax. -EINVAL/-ENOSPC: the person's data
 * cannot be printed (permanent); other errors are temporary. */
static int letter_pdf(struct fax_session *s, const struct crier_notice *rendered,
                      unsigned char **ret_pdf, size_t *ret_len, int64_t *ret_content_at, char *err,
                      size_t err_size)
{
    /* one instant for the printed date and notice_date, recorded with the hash */
    struct crier_notice copy = *rendered;
    if (copy.content_time == 0)
        copy.content_time = (int64_t)time(NULL);
    *ret_content_at = copy.content_time;
    const struct crier_notice *notice = &copy;
    char *body = NULL;
    size_t body_len = 0;
    int r = channel_render(notice, "letter.md", false, &body, &body_len, err, err_size);
    if (r < 0)
        return -EAGAIN; /* the campaign's templates, not the person: retry, never skip */
    const char *organisation = channel_meta(notice, "organisation");
    const char *fallback[] = {organisation, NULL};
    char date[11];
    time_t at = (time_t)notice->content_time;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    struct letter_input in = {
        .return_address = s->letterhead  ? (const char *const *)s->letterhead
                          : organisation ? fallback
                                         : NULL,
        .name = notice->name,
        .country = notice->country,
        .date = date,
        .body = body,
    };
    memcpy(in.address, notice->address, sizeof(in.address));
    int pages = 0;
    if (s->letters != NULL)
        r = letter_render_pdf_cached(s->letters, &in, ret_pdf, ret_len, &pages, err, err_size);
    else
        r = letter_render_pdf(&s->layout, &in, ret_pdf, ret_len, &pages, err, err_size);
    free(body);
    return r;
}

/* send_transfer - the multipart POST of one notice's PDF (which it takes over). */
static struct transfer *send_transfer(struct fax_session *s, const struct crier_notice *notice,
                                      size_t index, unsigned char *pdf, size_t pdf_len)
{
    const struct fax_gateway *g = &s->gateway;
    struct transfer *t = transfer_new(s, TRANSFER_SEND, index, xstrdup(g->send_url));
    t->pdf = pdf;
    t->pdf_len = pdf_len;
    t->mime = curl_mime_init(t->easy);
    mime_text(t->mime, g->to_field, notice->fax, NULL);
    if (!str_empty(s->config->fax.from))
        mime_text(t->mime, g->from_field, s->config->fax.from, NULL);
    if (g->header_field && !str_empty(s->config->fax.header_text))
        mime_text(t->mime, g->header_field, s->config->fax.header_text, NULL);
    if (g->callback_field && !str_empty(s->config->fax.callback_url))
        mime_text(t->mime, g->callback_field, s->config->fax.callback_url, NULL);
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%d", notice->attempt);
    if (g->labels_brackets) {
        char name[256];
        snprintf(name, sizeof(name), "%s[" LABEL_TOKEN "]", g->labels_field);
        mime_text(t->mime, name, notice->token, NULL);
        snprintf(name, sizeof(name), "%s[" LABEL_ATTEMPT "]", g->labels_field);
        mime_text(t->mime, name, attempt, NULL);
    } else {
        json_t *labels =
            json_pack("{s:s, s:s}", LABEL_TOKEN, notice->token, LABEL_ATTEMPT, attempt);
        char *text = json_dumps(labels, JSON_COMPACT);
        mime_text(t->mime, g->labels_field, text, "application/json");
        free(text);
        json_decref(labels);
    }
    /* the PDF last: a request whose PDF was never read cannot have been acted on */
    curl_mimepart *file = curl_mime_addpart(t->mime);
    curl_mime_name(file, g->file_field);
    char filename[64];
    snprintf(filename, sizeof(filename), "notice-%lld.pdf", (long long)notice->id);
    curl_mime_filename(file, filename);
    curl_mime_type(file, "application/pdf");
    curl_mime_data_cb(file, (curl_off_t)pdf_len, pdf_read, pdf_seek, NULL, t);
    curl_easy_setopt(t->easy, CURLOPT_MIMEPOST, t->mime);
    return t;
}

/* request_complete - was every byte of the request written, or a resend refused? */
static bool request_complete(const struct transfer *t)
{
    if (t->rewind_refused)
        return true;
    curl_off_t sent = 0, total = -1;
    curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &total);
    if (t->kind != TRANSFER_SEND)
        return true; /* a GET: harmless either way */
    if (t->pdf_read == 0)
        return false; /* the PDF is the last part: the request cannot have been whole */
    return total <= 0 || sent >= total;
}

/* response_code - the HTTP status of a finished transfer, 0 when there was none. */
static long response_code(const struct transfer *t)
{
    long http = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
    return http;
}

/* reply_json - the reply parsed, or NULL. */
static json_t *reply_json(const struct transfer *t)
{
    if (t->reply == NULL || t->reply_cut)
        return NULL;
    return json_loadb(t->reply, t->reply_len, 0, NULL);
}

/* error_words - the gateway's own words for a failure (errorType: errorMessage). */
static void error_words(const struct fax_gateway *g, json_t *fax, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; g->error_pointers && g->error_pointers[i]; i++) {
        char number[32], value[EXCERPT_MAX + 8];
        const char *text = fax_json_pointer_text(fax, g->error_pointers[i], number, sizeof(number));
        if (str_empty(text))
            continue;
        clean(text, value, sizeof(value));
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? ": " : "", value);
    }
}

/* send_finish - the outcome of one POST. */
static void send_finish(struct fax_session *s, struct transfer *t, CURLcode result, long http,
                        struct crier_outcome *outcome)
{
    char sha[65];
    sha256_hex(t->pdf, t->pdf_len, sha);
    bool complete = request_complete(t);
    enum fax_verdict verdict = fax_send_verdict(result, result == CURLE_OK ? http : 0, complete);
    char body[EXCERPT_MAX + 8];
    excerpt(t->reply ? t->reply : "", t->reply_len, body, sizeof(body));
    const char *why = t->error[0] ? t->error : curl_easy_strerror(result);
    switch (verdict) {
    case FAX_VERDICT_ACCEPTED: {
        json_t *fax = reply_json(t);
        char number[32], status_number[32];
        const char *id = fax_json_pointer_text(fax, s->gateway.id_pointer, number, sizeof(number));
        const char *status = fax_json_pointer_text(fax, s->gateway.status_pointer, status_number,
                                                   sizeof(status_number));
        char id_text[sizeof(outcome->transport_id)], status_text[64];
        if (str_empty(id) || strlen(id) >= sizeof(id_text)) {
            outcome_set(outcome, OUTCOME_ACCEPTED,
                        "unknown outcome: HTTP %ld without a fax id (%s); the gateway will be "
                        "asked before anything is sent again",
                        http, body);
        } else {
            clean(id, id_text, sizeof(id_text));
            clean(status, status_text, sizeof(status_text));
            outcome_set(outcome, OUTCOME_ACCEPTED, "fax %s %s (HTTP %ld)", id_text,
                        status_text[0] ? status_text : "submitted", http);
            snprintf(outcome->transport_id, sizeof(outcome->transport_id), "%s", id_text);
        }
        json_decref(fax);
        break;
    }
    case FAX_VERDICT_REFUSED: {
        json_t *fax = reply_json(t);
        char words[OUTCOME_DETAIL_MAX / 2];
        error_words(&s->gateway, fax, words, sizeof(words));
        json_decref(fax);
        outcome_set(outcome, OUTCOME_PERMANENT, "HTTP %ld: %s", http, words[0] ? words : body);
        return; /* nothing was sent: no content hash */
    }
    case FAX_VERDICT_RETRY:
        if (result != CURLE_OK) {
            outcome_set(outcome, OUTCOME_TEMPORARY, "not sent: %s", why);
        } else {
            outcome_set(outcome, OUTCOME_TEMPORARY, "HTTP %ld: %s%s", http, body,
                        http == 401 || http == 403 || http == 404
                            ? " (check channels.fax: key, secret, project, URL)"
                            : "");
            curl_off_t retry_after = 0;
            if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
                retry_after > 0)
                outcome->retry_after_seconds = (long)retry_after;
        }
        return;
    case FAX_VERDICT_UNKNOWN:
        if (result != CURLE_OK)
            outcome_set(outcome, OUTCOME_ACCEPTED,
                        "unknown outcome: %s after the request was sent; the gateway will be "
                        "asked before anything is sent again",
                        t->rewind_refused ? "connection closed without a reply" : why);
        else
            outcome_set(outcome, OUTCOME_ACCEPTED,
                        "unknown outcome: HTTP %ld (%s); the gateway will be asked before "
                        "anything is sent again",
                        http, body);
        break;
    }
    memcpy(outcome->content_sha256, sha, sizeof(sha));
    outcome->content_at = t->content_at;
}

/* ---- the multi loop ------------------------------------------------------------------- */

/* reply_redact - a gateway that repeats the key it was sent (say, in a 401's message) has it
 * blotted out of the whole reply, before any excerpt of it is cut: an excerpt cut in the
 * middle of the key would no longer match it (channel.c redacts the details too). */
static void reply_redact(const struct fax_session *s, struct transfer *t)
{
    if (t->reply == NULL || s->secret == NULL)
        return;
    const char *forms[] = {s->secret, s->secret_basic};
    bool found = false;
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++)
        if (forms[i] && memmem(t->reply, t->reply_len, forms[i], strlen(forms[i])))
            found = true;
    if (!found)
        return;
    /* each form is at least 4 bytes, "[redacted]" 10: at most 2.5 times as long */
    size_t size = t->reply_len * 3 + 16;
    char *copy = xmalloc(size);
    memcpy(copy, t->reply, t->reply_len + 1);
    secret_redact(copy, size, forms, ARRAY_SIZE(forms));
    free(t->reply);
    t->reply = copy;
    t->reply_len = strlen(copy);
}

/* A source of transfers for run_transfers: next() starts the next one (NULL when there is
 * none left), finish() takes a finished one and may start a follow-up (a list's next page). */
struct transfer_source {
    struct transfer *(*next)(struct transfer_source *source);
    struct transfer *(*finish)(struct transfer_source *source, struct transfer *t, CURLcode result);
    struct fax_session *session;
    struct crier_channel *channel;
};

/* run_transfers - keep up to max_in_flight transfers going until the source is dry. */
static void run_transfers(struct fax_session *s, struct transfer_source *source)
{
    size_t in_flight = 0;
    bool dry = false;
    for (;;) {
        /* start one at a time, driving the others in between (rendering a letter takes
         * a while; the uploads already started go on meanwhile) */
        if (!dry && in_flight < s->max_in_flight) {
            struct transfer *t = source->next(source);
            if (t == NULL) {
                dry = true;
            } else if (curl_multi_add_handle(s->multi, t->easy) != CURLM_OK) {
                struct transfer *follow = source->finish(source, t, CURLE_FAILED_INIT);
                transfer_free(follow); /* no follow-up of a transfer that never started */
            } else {
                in_flight++;
            }
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            struct transfer *t = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
            curl_multi_remove_handle(s->multi, easy);
            in_flight--;
            reply_redact(s, t);
            struct transfer *follow = source->finish(source, t, result);
            if (follow && curl_multi_add_handle(s->multi, follow->easy) == CURLM_OK)
                in_flight++;
            else if (follow)
                transfer_free(source->finish(source, follow, CURLE_FAILED_INIT));
        }
        if (source->channel && source->channel->lease_keepalive)
            source->channel->lease_keepalive(source->channel->keepalive_data);
        if (dry && in_flight == 0)
            break;
        if (dry || in_flight >= s->max_in_flight)
            curl_multi_poll(s->multi, NULL, 0, 200, NULL);
    }
}

struct send_source {
    struct transfer_source base;
    const struct crier_notice *notices;
    size_t n, next;
    struct crier_outcome *outcomes;
    double started;
};

static struct transfer *send_next(struct transfer_source *source)
{
    struct send_source *ss = (struct send_source *)source;
    struct fax_session *s = source->session;
    struct crier_channel *channel = source->channel;
    while (ss->next < ss->n) {
        size_t i = ss->next++;
        const struct crier_notice *notice = &ss->notices[i];
        struct crier_outcome *outcome = &ss->outcomes[i];
        if (str_empty(notice->fax)) {
            outcome_set(outcome, OUTCOME_NO_ADDRESS, "no fax number");
            continue;
        }
        /* a batch slow to hand off (a slow gateway): a hold placed meanwhile keeps it */
        if (channel->may_hand_off && monotonic_seconds() - ss->started > HAND_OFF_CHECK_S &&
            !channel->may_hand_off(channel->keepalive_data, notice)) {
            outcome_set(outcome, OUTCOME_TEMPORARY,
                        "taken back before sending: a law-enforcement hold covers it");
            continue;
        }
        char err[OUTCOME_DETAIL_MAX - 64];
        unsigned char *pdf = NULL;
        size_t pdf_len = 0;
        int64_t content_at = 0;
        int r = letter_pdf(s, notice, &pdf, &pdf_len, &content_at, err, sizeof(err));
        if (r == -EINVAL || r == -ENOSPC) {
            outcome_set(outcome, OUTCOME_PERMANENT, "cannot lay out the letter: %s", err);
            continue;
        }
        if (r < 0) {
            outcome_set(outcome, OUTCOME_TEMPORARY, "cannot render: %s", err);
            continue;
        }
        struct transfer *t = send_transfer(s, notice, i, pdf, pdf_len);
        t->content_at = content_at;
        return t;
    }
    return NULL;
}

static struct transfer *send_done(struct transfer_source *source, struct transfer *t,
                                  CURLcode result)
{
    struct send_source *ss = (struct send_source *)source;
    send_finish(source->session, t, result, response_code(t), &ss->outcomes[t->index]);
    /* final for this attempt (a fax id, an unknown outcome, a refusal or a retry): the
     * engine's recorder commits it while this lane goes on rendering and uploading, rather
     * than the whole batch after its last reply, and a kill -9 later in the batch leaves
     * it recorded instead of to the lease reaper's "unknown outcome" */
    channel_outcome_ready(source->channel, ss->outcomes, t->index);
    transfer_free(t);
    return NULL;
}

static int fax_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                    struct crier_outcome *outcomes)
{
    struct send_source ss = {
        .base = {.next = send_next,
                 .finish = send_done,
                 .session = channel->state,
                 .channel = channel},
        .notices = notices,
        .n = n,
        .outcomes = outcomes,
        .started = monotonic_seconds(),
    };
    run_transfers(channel->state, &ss.base);
    return 0;
}

/* ---- polling --------------------------------------------------------------------------- */

struct poll_source {
    struct transfer_source base;
    const struct crier_poll_item *items;
    size_t n, next;
    struct crier_outcome *outcomes;
};

static struct transfer *list_transfer(struct fax_session *s, const struct crier_poll_item *item,
                                      size_t index, int page, const char *page_token)
{
    const char *names[] = {"to"};
    const char *values[] = {item->notice->fax};
    const bool raw[] = {false};
    char *url = expand(s->gateway.list_url, names, values, raw, 1);
    if (page_token && s->gateway.list_page_param) {
        char *escaped = curl_easy_escape(NULL, page_token, 0);
        char *with = xasprintf("%s%c%s=%s", url, strchr(url, '?') ? '&' : '?',
                               s->gateway.list_page_param, escaped ? escaped : "");
        curl_free(escaped);
        free(url);
        url = with;
    }
    struct transfer *t = transfer_new(s, TRANSFER_LIST, index, url);
    t->page = page;
    return t;
}

static struct transfer *poll_next(struct transfer_source *source)
{
    struct poll_source *ps = (struct poll_source *)source;
    struct fax_session *s = source->session;
    while (ps->next < ps->n) {
        size_t i = ps->next++;
        const struct crier_poll_item *item = &ps->items[i];
        if (!str_empty(item->transport_id)) {
            const char *names[] = {"id"};
            const char *values[] = {item->transport_id};
            const bool raw[] = {false};
            return transfer_new(s, TRANSFER_STATUS, i,
                                expand(s->gateway.status_url, names, values, raw, 1));
        }
        if (s->gateway.list_url == NULL || str_empty(item->notice->fax)) {
            outcome_set(&ps->outcomes[i], OUTCOME_PENDING,
                        "unknown outcome, and channels.fax.generic has no list_url to ask the "
                        "gateway whether the fax exists: a person must check the gateway");
            ps->outcomes[i].retry_after_seconds = -1;
            continue;
        }
        return list_transfer(s, item, i, 1, NULL);
    }
    return NULL;
}

/* status_outcome - what a fax object's status says (a status reply, a webhook's event). */
static void status_outcome(const struct fax_gateway *g, json_t *fax, const char *id,
                           struct crier_outcome *outcome)
{
    char number[32], words[OUTCOME_DETAIL_MAX / 2], status_text[64];
    const char *status = fax_json_pointer_text(fax, g->status_pointer, number, sizeof(number));
    clean(status, status_text, sizeof(status_text));
    error_words(g, fax, words, sizeof(words));
    switch (fax_status_classify(&g->statuses, status)) {
    case FAX_STATUS_DELIVERED:
        outcome_set(outcome, OUTCOME_DELIVERED, "fax %s %s", id, status_text);
        break;
    case FAX_STATUS_FAILED_PERMANENT:
        outcome_set(outcome, OUTCOME_PERMANENT, "fax %s %s%s%s", id, status_text,
                    words[0] ? ": " : "", words);
        break;
    case FAX_STATUS_FAILED_TEMPORARY:
        outcome_set(outcome, OUTCOME_TEMPORARY, "fax %s %s%s%s", id, status_text,
                    words[0] ? ": " : "", words);
        break;
    case FAX_STATUS_PENDING:
        outcome_set(outcome, OUTCOME_PENDING, "%s", "");
        break;
    case FAX_STATUS_UNKNOWN:
        outcome_set(outcome, OUTCOME_PENDING,
                    "fax %s: status '%s' is not one of the configured status words", id,
                    status ? status_text : "(none)");
        break;
    }
    snprintf(outcome->transport_id, sizeof(outcome->transport_id), "%s", id);
}

/* status_done - a fax's status: final, or still pending. */
static void status_done(struct fax_session *s, struct transfer *t, CURLcode result, long http,
                        const struct crier_poll_item *item, struct crier_outcome *outcome)
{
    char id[sizeof(outcome->transport_id)];
    clean(item->transport_id, id, sizeof(id));
    if (result != CURLE_OK || http < 200 || http >= 300) {
        char body[EXCERPT_MAX + 8];
        excerpt(t->reply ? t->reply : "", t->reply_len, body, sizeof(body));
        if (result != CURLE_OK)
            outcome_set(outcome, OUTCOME_PENDING, "status of fax %s: %s", id,
                        t->error[0] ? t->error : curl_easy_strerror(result));
        else
            outcome_set(outcome, OUTCOME_PENDING, "status of fax %s: HTTP %ld %s", id, http, body);
        return;
    }
    json_t *fax = reply_json(t);
    status_outcome(&s->gateway, fax, id, outcome);
    json_decref(fax);
}

/* list_done - one page of the faxes to the number: is this attempt's fax there? Returns
 * the next page's transfer when it must be read too. */
static struct transfer *list_done(struct fax_session *s, struct transfer *t, CURLcode result,
                                  long http, const struct crier_poll_item *item,
                                  struct crier_outcome *outcome)
{
    const struct fax_gateway *g = &s->gateway;
    if (result != CURLE_OK || http < 200 || http >= 300) {
        char body[EXCERPT_MAX + 8];
        excerpt(t->reply ? t->reply : "", t->reply_len, body, sizeof(body));
        if (result != CURLE_OK)
            outcome_set(outcome, OUTCOME_PENDING, "cannot reconcile yet: listing faxes: %s",
                        t->error[0] ? t->error : curl_easy_strerror(result));
        else
            outcome_set(outcome, OUTCOME_PENDING,
                        "cannot reconcile yet: listing faxes: HTTP %ld %s", http, body);
        return NULL;
    }
    json_t *page = reply_json(t);
    json_t *items = NULL;
    if (page == NULL || fax_json_pointer(page, g->list_items, &items) < 0 ||
        !json_is_array(items)) {
        json_decref(page);
        outcome_set(outcome, OUTCOME_PENDING,
                    "cannot reconcile yet: the list of faxes is not what was expected");
        return NULL;
    }
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%d", item->notice->attempt);
    size_t i;
    json_t *fax;
    json_array_foreach(items, i, fax)
    {
        char number[32], attempt_number[32];
        const char *token = fax_json_pointer_text(fax, g->list_token, number, sizeof(number));
        if (token == NULL || strcmp(token, item->notice->token) != 0)
            continue;
        if (!str_empty(g->list_attempt)) {
            const char *was =
                fax_json_pointer_text(fax, g->list_attempt, attempt_number, sizeof(attempt_number));
            if (was == NULL || strcmp(was, attempt) != 0)
                continue;
        }
        char id_number[32], id_text[sizeof(outcome->transport_id)];
        const char *id = fax_json_pointer_text(fax, g->list_id, id_number, sizeof(id_number));
        if (str_empty(id) || strlen(id) >= sizeof(id_text))
            continue;
        clean(id, id_text, sizeof(id_text));
        outcome_set(outcome, OUTCOME_ACCEPTED,
                    "reconciled: fax %s found at the gateway (labelled with this notice's "
                    "token, attempt %s); not sent again",
                    id_text, attempt);
        snprintf(outcome->transport_id, sizeof(outcome->transport_id), "%s", id_text);
        outcome->retry_after_seconds = 1; /* its status: at the next poll, not in a while */
        json_decref(page);
        return NULL;
    }
    char next_number[32];
    const char *next =
        str_empty(g->list_next)
            ? NULL
            : fax_json_pointer_text(page, g->list_next, next_number, sizeof(next_number));
    struct transfer *follow = NULL;
    if (!str_empty(next)) {
        if (t->page >= LIST_PAGES_MAX || str_empty(g->list_page_param))
            outcome_set(outcome, OUTCOME_PENDING,
                        "cannot reconcile: more than %d pages of faxes to this number",
                        LIST_PAGES_MAX);
        else
            follow = list_transfer(s, item, t->index, t->page + 1, next);
    } else {
        char to[64];
        clean(item->notice->fax, to, sizeof(to));
        outcome_set(outcome, OUTCOME_TEMPORARY,
                    "confirmed absent at the gateway: no fax to %s labelled with this notice's "
                    "token and attempt %s (unknown outcome of that attempt); sending again",
                    to, attempt);
    }
    json_decref(page);
    return follow;
}

static struct transfer *poll_done(struct transfer_source *source, struct transfer *t,
                                  CURLcode result)
{
    struct poll_source *ps = (struct poll_source *)source;
    const struct crier_poll_item *item = &ps->items[t->index];
    struct crier_outcome *outcome = &ps->outcomes[t->index];
    struct transfer *follow = NULL;
    if (t->kind == TRANSFER_STATUS)
        status_done(source->session, t, result, response_code(t), item, outcome);
    else
        follow = list_done(source->session, t, result, response_code(t), item, outcome);
    transfer_free(t);
    return follow;
}

static int fax_poll(struct crier_channel *channel, const struct crier_poll_item *items, size_t n,
                    struct crier_outcome *outcomes)
{
    struct poll_source ps = {
        .base = {.next = poll_next,
                 .finish = poll_done,
                 .session = channel->state,
                 .channel = NULL},
        .items = items,
        .n = n,
        .outcomes = outcomes,
    };
    run_transfers(channel->state, &ps.base);
    return 0;
}

/* ---- the status webhook (crier serve's /hooks/<channel>/<secret>, engine/web/hooks.c) ---- */

#define CALLBACK_EVENT_FINAL "FAX_COMPLETED" /* Sinch's event for an outgoing fax's end */

/* token_notice_id - the notice id of a public token "<id>.<hex>", or 0 when it is not one. */
static int64_t token_notice_id(const char *token)
{
    size_t digits = strspn(token, "0123456789");
    if (digits == 0 || digits > 18 || token[digits] != '.')
        return 0;
    const char *hex = token + digits + 1;
    size_t hex_len = strspn(hex, "0123456789abcdef");
    if (hex_len == 0 || hex[hex_len] != '\0')
        return 0;
    return strtoll(token, NULL, 10);
}

/* callback_text - a member that must be a short printable string; NULL with err set. */
static const char *callback_text(json_t *object, const char *pointer, const char *name, size_t max,
                                 char *err, size_t err_size)
{
    char number[32];
    const char *text = fax_json_pointer_text(object, pointer, number, sizeof(number));
    if (str_empty(text)) {
        snprintf(err, err_size, "'%s' is missing or not a string", name);
        return NULL;
    }
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(err, err_size, "'%s' has a control character", name);
            return NULL;
        }
    if (strlen(text) >= max) {
        snprintf(err, err_size, "'%s' is longer than %zu bytes", name, max - 1);
        return NULL;
    }
    return text;
}

/* callback_read - the event in root, in the Sinch callback shape: {"event", "eventTime",
 * "fax": {the Fax object, as a status reply has it}}. */
static int callback_read(const struct fax_gateway *g, json_t *root, struct crier_callback *ret,
                         char *err, size_t err_size)
{
    if (!json_is_object(root)) {
        snprintf(err, err_size, "the body is not a JSON object");
        return -EINVAL;
    }
    const char *event =
        json_is_string(json_object_get(root, "event"))
            ? callback_text(root, "/event", "event", sizeof(ret->event), err, err_size)
            : NULL;
    if (event == NULL) {
        if (!json_is_string(json_object_get(root, "event")))
            snprintf(err, err_size, "'event' is missing or not a string");
        return -EINVAL;
    }
    snprintf(ret->event, sizeof(ret->event), "%s", event);
    json_t *fax = json_object_get(root, "fax");
    if (!json_is_object(fax)) {
        snprintf(err, err_size, "'fax' is missing or not an object");
        return -EINVAL;
    }
    const char *id =
        callback_text(fax, g->id_pointer, "fax.id", sizeof(ret->transport_id), err, err_size);
    if (id == NULL)
        return -EINVAL;
    snprintf(ret->transport_id, sizeof(ret->transport_id), "%s", id);
    if (strcmp(event, CALLBACK_EVENT_FINAL) != 0)
        return 0; /* an incoming fax, say: not crier's business, and not malformed */
    char number[32];
    if (fax_json_pointer_text(fax, g->status_pointer, number, sizeof(number)) == NULL) {
        snprintf(err, err_size, "'fax.status' is missing or not a string");
        return -EINVAL;
    }
    ret->final_status = true;
    status_outcome(g, fax, ret->transport_id, &ret->outcome);
    json_t *token = NULL;
    if (g->list_token == NULL || fax_json_pointer(fax, g->list_token, &token) < 0)
        return 0; /* no label: a fax crier did not send */
    if (!json_is_string(token) || json_string_length(token) >= sizeof(ret->token) ||
        token_notice_id(json_string_value(token)) == 0) {
        snprintf(err, err_size, "'fax.labels.%s' is not a notice token", LABEL_TOKEN);
        return -EINVAL;
    }
    snprintf(ret->token, sizeof(ret->token), "%s", json_string_value(token));
    ret->notice_id = token_notice_id(ret->token);
    return 0;
}

/* fax_callback - the callback op. */
static int fax_callback(const struct crier_config *config, const char *body, size_t len,
                        struct crier_callback *ret, char *err, size_t err_size)
{
    memset(ret, 0, sizeof(*ret));
    pthread_once(&curl_once, curl_init_once); /* gateway_setup escapes with libcurl */
    struct fax_gateway g = {0};
    if (gateway_setup(&g, config) < 0) {
        gateway_clear(&g);
        snprintf(err, err_size, "channels.fax does not describe a gateway (see docs/fax.md)");
        return -ENOTSUP;
    }
    json_error_t json_error;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &json_error);
    int r;
    if (root == NULL) {
        /* jansson's words without the text "near" the error: the body could hold the
         * secret (the fax object's callbackUrl), and err reaches crier's log */
        char *near = strstr(json_error.text, " near ");
        if (near)
            *near = '\0';
        snprintf(err, err_size, "not JSON: %s (line %d, column %d)", json_error.text,
                 json_error.line, json_error.column);
        r = -EINVAL;
    } else {
        r = callback_read(&g, root, ret, err, err_size);
    }
    json_decref(root);
    gateway_clear(&g);
    if (r < 0)
        memset(ret, 0, sizeof(*ret));
    return r;
}

static bool fax_reachable(const struct crier_notice *notice)
{
    return !str_empty(notice->fax);
}

static int fax_compose(const struct crier_config *config, const struct crier_notice *notice,
                       struct channel_content *ret, char *err, size_t err_size);
static int fax_compose_earlier(const struct crier_config *config, const struct crier_notice *notice,
                               int renderer, struct channel_content *ret, char *err,
                               size_t err_size);
static int fax_probe(const struct crier_config *config, char *report, size_t report_size);

/* fax_proof_print - the proof_print op: the PDF compose makes, as the gateway gets it. */
static int fax_proof_print(const struct crier_config *config, const struct crier_notice *notice,
                           unsigned char **ret_pdf, size_t *ret_len, char *err, size_t err_size)
{
    struct channel_content content = {0};
    int r = fax_compose(config, notice, &content, err, err_size);
    if (r < 0)
        return r;
    *ret_pdf = content.bytes;
    *ret_len = content.len;
    return 0;
}

const struct crier_channel_ops fax_channel_ops = {
    .name = "fax",
    .accepted_state = STATE_SUBMITTED,
    .early_outcomes = true, /* send_done reports each upload's outcome as it arrives */
    .templates = channel_letter_templates,
    .reachable = fax_reachable,
    .contact = CONTACT_FAX,
    .unreachable_why = "no valid fax number",
    .probe = fax_probe,
    .probe_label = "fax gateway",
    .compose = fax_compose,
    .compose_earlier = fax_compose_earlier,
    .proof = channel_proof_letter,
    .proof_file = "letter.md",
    .proof_print = fax_proof_print,
    .proof_print_file = "fax.pdf",
    .open = fax_open,
    .send = fax_send,
    .poll = fax_poll,
    .callback = fax_callback,
    .close = fax_close,
};

/* compose_in - the exact PDF the channel would post for a notice, drawn in the fonts of
 * letter_font_families[renderer]. */
static int compose_in(const struct crier_config *config, const struct crier_notice *notice,
                      int renderer, struct channel_content *ret, char *err, size_t err_size)
{
    struct fax_session s = {0};
    fax_layout_init(&s, config);
    s.layout.font_family = letter_font_families[renderer];
    int64_t content_at;
    unsigned char *pdf = NULL;
    size_t len = 0;
    int r = letter_pdf(&s, notice, &pdf, &len, &content_at, err, err_size);
    strv_free(s.letterhead);
    if (r < 0)
        return r;
    ret->bytes = pdf;
    ret->len = len;
    sha256_hex(pdf, len, ret->sha256);
    ret->extension = "pdf";
    ret->renderer = letter_font_families[renderer];
    return 0;
}

/* fax_compose - the compose op: the exact PDF the channel would post for a notice (for
 * `crier audit show`, which sets notice->content_time); nothing is sent. */
static int fax_compose(const struct crier_config *config, const struct crier_notice *notice,
                       struct channel_content *ret, char *err, size_t err_size)
{
    return compose_in(config, notice, 0, ret, err, err_size);
}

/* fax_compose_earlier - the compose_earlier op: the PDF in the fonts an earlier crier drew
 * faxes in (letter_font_families), since a fax's digest is of its bytes. */
static int fax_compose_earlier(const struct crier_config *config, const struct crier_notice *notice,
                               int renderer, struct channel_content *ret, char *err,
                               size_t err_size)
{
    for (int i = 1; i <= renderer; i++)
        if (letter_font_families[i] == NULL)
            return -ENOENT;
    return compose_in(config, notice, renderer, ret, err, err_size);
}

/* ---- replies without a network, for tests and fuzzing ------------------------------------ */

void fax_reply_outcomes(const struct crier_config *config, const char *reply, size_t len, long http,
                        const struct crier_notice *notice, struct crier_outcome *outcomes)
{
    pthread_once(&curl_once, curl_init_once);
    struct fax_session s = {.config = config, .timeout_ms = 1000};
    memset(outcomes, 0, 3 * sizeof(outcomes[0]));
    if (gateway_setup(&s.gateway, config) < 0) {
        gateway_clear(&s.gateway);
        return;
    }
    const struct crier_poll_item item = {.notice = notice, .transport_id = "fax-reply"};
    for (int kind = TRANSFER_SEND; kind <= TRANSFER_LIST; kind++) {
        if (kind == TRANSFER_LIST && s.gateway.list_url == NULL)
            continue;
        struct transfer *t =
            transfer_new(&s, (enum transfer_kind)kind, 0, xstrdup("http://reply.invalid/"));
        t->page = 1;
        t->reply = xmalloc(len + 1);
        memcpy(t->reply, reply, len);
        t->reply[len] = '\0';
        t->reply_len = len;
        if (kind == TRANSFER_SEND)
            send_finish(&s, t, CURLE_OK, http, &outcomes[0]);
        else if (kind == TRANSFER_STATUS)
            status_done(&s, t, CURLE_OK, http, &item, &outcomes[1]);
        else
            transfer_free(list_done(&s, t, CURLE_OK, http, &item, &outcomes[2]));
        transfer_free(t);
    }
    gateway_clear(&s.gateway);
}

/* ---- config check --connect ------------------------------------------------------------ */

static int fax_probe(const struct crier_config *config, char *report, size_t report_size)
{
    struct crier_channel channel = {.ops = &fax_channel_ops, .config = config};
    int r = fax_open(&channel, config);
    if (r < 0) {
        snprintf(report, report_size, "the fax channel cannot open: %s", strerror(-r));
        return r;
    }
    struct fax_session *s = channel.state;
    /* an authenticated GET of a fax that cannot exist: any answer but 401/403 proves the
     * gateway is reachable and takes the credentials */
    const char *names[] = {"id"};
    const char *values[] = {"crier-connect-check"};
    const bool raw[] = {false};
    struct transfer *t =
        transfer_new(s, TRANSFER_STATUS, 0, expand(s->gateway.status_url, names, values, raw, 1));
    CURLcode result = curl_easy_perform(t->easy);
    long http = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
    if (result != CURLE_OK) {
        snprintf(report, report_size, "GET %s: %s", t->url,
                 t->error[0] ? t->error : curl_easy_strerror(result));
        r = -EHOSTUNREACH;
    } else if (http == 401 || http == 403) {
        snprintf(report, report_size, "GET %s: HTTP %ld: the gateway refuses the credentials",
                 t->url, http);
        r = -EACCES;
    } else if (http >= 500) {
        snprintf(report, report_size, "GET %s: HTTP %ld: the gateway fails", t->url, http);
        r = -EIO;
    } else {
        snprintf(report, report_size, "GET %s: HTTP %ld (reachable, credentials accepted)", t->url,
                 http);
        r = 0;
    }
    transfer_free(t);
    fax_close(&channel);
    return r;
}
