/*
 * email.c - the email channel: notices as MIME messages (GMime) over SMTP (libesmtp).
 *
 * One claimed batch is one SMTP session carrying one message per notice, so a relay sees
 * a few long sessions rather than many short ones. Each message's own status decides its
 * outcome: 2xx accepted (sent), 4xx or no answer temporary, 5xx on RCPT or DATA
 * permanent (the notice falls back to the next channel). A session that drops after
 * message 37 of 100 leaves 36 sent and the rest temporary.
 *
 * libesmtp's timeouts bound each wait for the socket, not a reply: a server that sends a
 * reply one line at a time, each within the timeout, would hold a lane for ever. So each
 * session is watched (struct session_watch): a reply still arriving smtp.timeout after
 * the last bytes crier wrote is cut off by shutting the connection down, and an early
 * end is told apart as a timeout or a connection closed by the server.
 *
 * SECURITY: every value in a message comes from the untrusted list. Names and addresses
 * were validated at load (no CR/LF); the subject, rendered from a template that may use
 * any list column, has control characters folded to spaces here, and GMime encodes
 * every header, so no value can start a header of its own. The SMTP password is read
 * from a file or the environment, never from the YAML text, and is never logged.
 * Certificates are verified; starttls defaults to required for any relay not on loopback.
 */
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/mime.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <auth-client.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <gmime/gmime.h>
#include <libesmtp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * libesmtp gives no access to its socket, and crier needs it twice: for TCP_NODELAY
 * (libesmtp writes a message in 2 KiB pieces; with Nagle's algorithm the last piece of each
 * message waited for the relay's delayed ACK, ~40 ms, which capped a lane at ~23 messages/s)
 * and for the session watch's shutdown(). It used to replace libc's connect() for the
 * whole process, so libpq's and libcurl's connections went through crier's code too. Now
 * the socket is found where libesmtp says it has connected (SMTP_EV_CONNECT, in the lane's
 * thread, just after connect()): among this process's open descriptors, the TCP socket
 * connected to the relay's port that no other session has claimed. Lanes connect one at a
 * time (connect_lock, held from smtp_start_session() to SMTP_EV_CONNECT), so exactly one
 * such socket is new. Sessions claim their socket by inode (an fd number is reused at once
 * after close(); an inode is not) and release it at SMTP_EV_DISCONNECT.
 */
#define CONNECT_WAIT_SECONDS 2 /* a lane stuck connecting makes the others wait no longer */
#define CLAIMS_MAX           256

static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static ino_t claims[CLAIMS_MAX]; /* inodes of the sockets sessions hold; 0 = free slot */

struct email_session {
    const struct crier_config *config;
    SSL_CTX *tls; /* certificate verification on; NULL when TLS is off */
    enum starttls_option starttls;
    char *secret;                /* SMTP AUTH password, NULL without AUTH */
    char *secret_forms[2];       /* as AUTH PLAIN and AUTH LOGIN send it (base64): redacted */
    char *from_address;          /* the addr-spec of channels.email.from */
    char *domain;                /* for Message-ID and VERP when bounce_domain is unset */
    struct mime_qp_cache *lines; /* the lane's encoded recurring lines; NULL: encode all */
    char server[300];            /* host:port */
};

/* What one SMTP session is doing, as seen from libesmtp's callbacks (all in the lane's
 * thread, so the socket is always still open when the watch acts on it). */
struct session_watch {
    struct crier_channel *channel;
    double timeout_seconds; /* smtp.timeout */
    int fd;                 /* the connection while libesmtp holds it open, else -1 */
    double last_written;    /* monotonic: the connect, or the last bytes crier wrote */
    double last_activity;   /* monotonic: the last bytes either way */
    bool cut;               /* the watch shut the connection: a reply took too long */
    char last_line[120];    /* the last line the server sent (its words, for a detail) */
    bool tls_ok;            /* STARTTLS succeeded and the certificate was accepted */
    bool tls_not_offered;   /* the server's EHLO did not offer STARTTLS */
    char tls_problem[200];  /* why a certificate was refused, "" when none was */
    int port;               /* the relay's, to find libesmtp's socket by */
    bool connect_locked;    /* this session holds connect_lock (until SMTP_EV_CONNECT) */
    ino_t claimed;          /* the inode of the socket it claimed, 0 when none */
    const struct email_session *session;
    struct crier_outcome *outcomes; /* the batch's, reported one by one as replies come */
};

/* One message of a batch, alive until the session ends. */
struct email_message {
    char *bytes; /* exactly what is handed to SMTP */
    smtp_message_t message;
    smtp_recipient_t recipient;
    char *envelope_from;
    size_t index;  /* its notice's place in the batch */
    size_t length; /* of bytes */
    bool given;    /* message_read has handed libesmtp the bytes */
    struct crier_channel *channel;
    char content_sha256[65]; /* of bytes: recorded when the relay takes it */
    int64_t content_at;      /* the instant it was rendered at */
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init(void)
{
    mime_ready();
    auth_client_init();
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* read_secret - the SMTP password from a file (first line) or an environment variable. */
static int read_secret(const struct crier_config *config, char **ret)
{
    return secret_read(config->email.auth_secret_env, config->email.auth_secret_file, ret);
}

/* email_identity - From: must parse; its address and domain serve Message-ID and VERP. */
static int email_identity(struct email_session *s, const struct crier_config *config)
{
    s->config = config;
    const char *from = config->email.from ? config->email.from : "crier@localhost";
    InternetAddressList *list = internet_address_list_parse(NULL, from);
    InternetAddress *first = list ? internet_address_list_get_address(list, 0) : NULL;
    if (first == NULL || !INTERNET_ADDRESS_IS_MAILBOX(first)) {
        if (list)
            g_object_unref(list);
        return -EINVAL;
    }
    s->from_address = xstrdup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(first)));
    g_object_unref(list);
    const char *at = strrchr(s->from_address, '@');
    s->domain = xstrdup(config->email.bounce_domain ? config->email.bounce_domain
                        : at                        ? at + 1
                                                    : "localhost");
    return 0;
}

static int email_open(struct crier_channel *channel, const struct crier_config *config)
{
    pthread_once(&library_once, library_init);
    struct email_session *s = xcalloc(1, sizeof(*s));
    s->config = config;
    const char *host = config->email.host;
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(s->server, sizeof(s->server), "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             config->email.port);

    switch (config->email.starttls) {
    case STARTTLS_REQUIRED:
        s->starttls = Starttls_REQUIRED;
        break;
    case STARTTLS_OPTIONAL:
        s->starttls = Starttls_ENABLED;
        break;
    case STARTTLS_OFF:
        s->starttls = Starttls_DISABLED;
        break;
    default:
        s->starttls = is_loopback(host) ? Starttls_ENABLED : Starttls_REQUIRED;
        break;
    }
    if (s->starttls != Starttls_DISABLED) {
        s->tls = SSL_CTX_new(TLS_client_method());
        if (s->tls == NULL) {
            free(s);
            return -ENOMEM;
        }
        SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION);
        SSL_CTX_set_verify(s->tls, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_default_verify_paths(s->tls);
        if (config->email.ca_file &&
            SSL_CTX_load_verify_locations(s->tls, config->email.ca_file, NULL) != 1) {
            SSL_CTX_free(s->tls);
            free(s);
            return -EINVAL;
        }
    }
    if (config->email.auth_user) {
        int r = read_secret(config, &s->secret);
        if (r < 0) {
            SSL_CTX_free(s->tls);
            free(s);
            return r;
        }
    }

    int r = email_identity(s, config);
    if (r < 0) {
        SSL_CTX_free(s->tls);
        free(s->secret);
        free(s);
        return r;
    }
    s->lines = mime_qp_cache_new();
    channel->state = s;
    if (s->secret) {
        /* what a relay receives: base64 of "\0user\0password" (PLAIN), of the password
         * alone (LOGIN); a relay that repeats either is redacted (channel.c) */
        size_t user_len = strlen(config->email.auth_user), secret_len = strlen(s->secret);
        char *plain = xmalloc(user_len + secret_len + 2);
        plain[0] = '\0';
        memcpy(plain + 1, config->email.auth_user, user_len);
        plain[1 + user_len] = '\0';
        memcpy(plain + 2 + user_len, s->secret, secret_len);
        s->secret_forms[0] = secret_base64(plain, user_len + secret_len + 2);
        explicit_bzero(plain, user_len + secret_len + 2);
        free(plain);
        s->secret_forms[1] = secret_base64(s->secret, secret_len);
        channel->secrets[0] = s->secret;
        channel->secrets[1] = s->secret_forms[0];
        channel->secrets[2] = s->secret_forms[1];
    }
    return 0;
}

static void email_close(struct crier_channel *channel)
{
    struct email_session *s = channel->state;
    if (s == NULL)
        return;
    SSL_CTX_free(s->tls);
    if (s->secret) {
        explicit_bzero(s->secret, strlen(s->secret));
        free(s->secret);
    }
    for (size_t i = 0; i < ARRAY_SIZE(s->secret_forms); i++) {
        if (s->secret_forms[i]) {
            explicit_bzero(s->secret_forms[i], strlen(s->secret_forms[i]));
            free(s->secret_forms[i]);
        }
    }
    free(s->from_address);
    free(s->domain);
    mime_qp_cache_free(s->lines);
    free(s);
}

/* fold_controls - a subject is one line: CR, LF, tabs and other controls become spaces. */
static void fold_controls(char *text)
{
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ' ')
        text[--len] = '\0';
}

/* server_text - a server's words made fit for the log: SMTP replies are ASCII (RFC 5321),
 * so a control becomes a space and any other byte outside ASCII a '?'. (A reply with a
 * byte that is not UTF-8 once made every recording of its batch fail in PostgreSQL, and
 * the batch was retried for ever.) */
static void server_text(char *text)
{
    for (unsigned char *p = (unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
        else if (*p >= 0x80)
            *p = '?';
}

/* A notice's rendered texts: the subject (controls folded), the plain text and, where the
 * campaign has an email.html template, the HTML. */
struct texts {
    char *subject, *text, *html;
};

static void texts_free(struct texts *t)
{
    FREE_MANY(t->subject, t->text, t->html);
}

static int texts_render(const struct crier_notice *n, struct texts *t, char *err, size_t err_size)
{
    size_t len;
    if (channel_render(n, "email.subject", false, &t->subject, &len, err, err_size) < 0 ||
        channel_render(n, "email.txt", false, &t->text, &len, err, err_size) < 0)
        return -1;
    if (channel_render_has(n, "email.html") &&
        channel_render(n, "email.html", true, &t->html, &len, err, err_size) < 0)
        return -1;
    fold_controls(t->subject);
    return 0;
}

/* addresses_add - the addresses a header lists, parsed from text (nothing when it does not
 * parse). */
static void addresses_add(GMimeMessage *message, GMimeAddressType type, const char *text)
{
    InternetAddressList *parsed = internet_address_list_parse(NULL, text);
    if (parsed) {
        internet_address_list_append(g_mime_message_get_addresses(message, type), parsed);
        g_object_unref(parsed);
    }
}

/* message_headers - a message with the notice's headers: From, Reply-To, To, Subject, the
 * Date of its content time, a Message-ID of its id and attempt, X-Crier-Notice. */
static GMimeMessage *message_headers(const struct email_session *s, const struct crier_notice *n,
                                     const char *subject)
{
    GMimeMessage *message = g_mime_message_new(TRUE);
    addresses_add(message, GMIME_ADDRESS_TYPE_FROM,
                  s->config->email.from ? s->config->email.from : s->from_address);
    if (s->config->email.reply_to)
        addresses_add(message, GMIME_ADDRESS_TYPE_REPLY_TO, s->config->email.reply_to);
    g_mime_message_add_mailbox(message, GMIME_ADDRESS_TYPE_TO, n->name, n->email);
    g_mime_message_set_subject(message, subject, "utf-8");
    GDateTime *date = g_date_time_new_from_unix_utc(n->content_time);
    g_mime_message_set_date(message, date);
    g_date_time_unref(date);
    char *message_id = xasprintf("crier.%lld.%d@%s", (long long)n->id, n->attempt, s->domain);
    g_mime_message_set_message_id(message, message_id);
    free(message_id);
    g_mime_object_set_header(GMIME_OBJECT(message), "X-Crier-Notice", n->token, NULL);
    return message;
}

/* message_body - the plain text part, or it and the HTML as multipart/alternative; the
 * message holds it. */
static void message_body(struct email_session *s, const struct crier_notice *n,
                         GMimeMessage *message, const struct texts *t)
{
    GMimeObject *plain = mime_text_part_cached(s->lines, "plain", t->text);
    if (t->html == NULL) {
        g_mime_message_set_mime_part(message, plain);
        g_object_unref(plain);
        return;
    }
    /* not GMime's random boundary: the same notice must give the same bytes, so that
     * `crier audit show` can render it again and compare hashes. "=-" cannot occur in
     * a quoted-printable body (GMime's own convention). The multipart is made from a
     * content type that already has it: g_mime_multipart_new_with_subtype() would read
     * /dev/urandom for a boundary of its own, once a message. */
    char *boundary = xasprintf("=-crier.%lld.%d", (long long)n->id, n->attempt);
    GMimeContentType *type = g_mime_content_type_new("multipart", "alternative");
    g_mime_content_type_set_parameter(type, "boundary", boundary);
    GMimeMultipart *alternative = GMIME_MULTIPART(g_mime_object_new(NULL, type));
    g_object_unref(type);
    free(boundary);
    g_mime_multipart_add(alternative, plain);
    GMimeObject *rich = mime_text_part_cached(s->lines, "html", t->html);
    g_mime_multipart_add(alternative, rich);
    g_object_unref(plain);
    g_object_unref(rich);
    g_mime_message_set_mime_part(message, GMIME_OBJECT(alternative));
    g_object_unref(alternative);
}

/* message_bytes - the message as it goes on the wire (CRLF line endings), in crier's heap;
 * the message is released. */
static char *message_bytes(GMimeMessage *message)
{
    GMimeFormatOptions *options = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
    char *bytes = g_mime_object_to_string(GMIME_OBJECT(message), options);
    g_mime_format_options_free(options);
    g_object_unref(message);
    char *copy = xstrdup(bytes);
    g_free(bytes);
    return copy;
}

/*
 * build_message - render and assemble one notice. Returns the bytes (CRLF line endings)
 * or NULL with the reason in err. The lane's cache (s->lines) spares it the
 * quoted-printable encoding of the lines every message shares; `crier audit show` and
 * `campaign proof` build without it (email_compose), so each audited message is also a
 * check that the cache changed no byte (mime.c).
 */
static char *build_message(struct email_session *s, const struct crier_notice *notice,
                           int64_t *ret_content_at, char *err, size_t err_size)
{
    /* one instant for the Date header and notice_date, recorded with the hash */
    struct crier_notice rendered = *notice;
    if (rendered.content_time == 0)
        rendered.content_time = (int64_t)time(NULL);
    *ret_content_at = rendered.content_time;
    struct texts t = {NULL, NULL, NULL};
    char *bytes = NULL;
    if (texts_render(&rendered, &t, err, err_size) == 0) {
        GMimeMessage *message = message_headers(s, &rendered, t.subject);
        message_body(s, &rendered, message, &t);
        bytes = message_bytes(message);
    }
    texts_free(&t);
    return bytes;
}

static int auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
    struct email_session *s = arg;
    for (int i = 0; i < fields; i++) {
        if (request[i].flags & AUTH_PASS)
            result[i] = s->secret;
        else if (request[i].flags & AUTH_USER)
            result[i] = s->config->email.auth_user;
        else
            result[i] = NULL;
        if (result[i] == NULL)
            return 0;
    }
    return 1;
}

static bool message_outcome(const struct email_session *s, const struct email_message *m,
                            const char *session_error, struct crier_outcome *outcome);

/* relay_socket - is fd a TCP socket connected to port (and which inode is it)? */
static bool relay_socket(int fd, int port, ino_t *ret_inode)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    struct sockaddr_storage peer;
    socklen_t length = sizeof(peer);
    int type = 0;
    socklen_t type_length = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) < 0 || type != SOCK_STREAM ||
        getpeername(fd, (struct sockaddr *)&peer, &length) < 0)
        return false;
    int peer_port = peer.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&peer)->sin_port)
                    : peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&peer)->sin6_port)
                                                 : -1;
    *ret_inode = st.st_ino;
    return peer_port == port;
}

static bool claimed_by_other(ino_t inode)
{
    for (size_t i = 0; i < CLAIMS_MAX; i++)
        if (claims[i] == inode)
            return true;
    return false;
}

/* watch_claim - find libesmtp's new socket (see connect_lock), claim it, set TCP_NODELAY.
 * /proc/self/fd lists the open descriptors; without /proc (a chroot) the first 1,024 are
 * tried. Two unclaimed candidates (a lane that could not wait its turn) both get
 * TCP_NODELAY, and the watch does without a socket (it then cannot cut a slow reply). */
static void watch_claim(struct session_watch *watch)
{
    int found = -1, candidates = 0;
    ino_t found_inode = 0;
    DIR *dir = opendir("/proc/self/fd");
    pthread_mutex_lock(&claims_lock);
    for (int fd = 0;; fd++) {
        if (dir) {
            struct dirent *entry = readdir(dir);
            if (entry == NULL)
                break;
            if (entry->d_name[0] == '.')
                continue;
            fd = atoi(entry->d_name);
        } else if (fd >= 1024) {
            break;
        }
        ino_t inode;
        if (!relay_socket(fd, watch->port, &inode) || claimed_by_other(inode))
            continue;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        candidates++;
        found = fd;
        found_inode = inode;
    }
    if (candidates == 1) {
        for (size_t i = 0; i < CLAIMS_MAX; i++) {
            if (claims[i] == 0) {
                claims[i] = found_inode;
                watch->fd = found;
                watch->claimed = found_inode;
                break;
            }
        }
    }
    pthread_mutex_unlock(&claims_lock);
    if (dir)
        closedir(dir);
}

/* watch_release - the session's socket is closed: its claim goes. */
static void watch_release(struct session_watch *watch)
{
    pthread_mutex_lock(&claims_lock);
    for (size_t i = 0; watch->claimed && i < CLAIMS_MAX; i++)
        if (claims[i] == watch->claimed)
            claims[i] = 0;
    pthread_mutex_unlock(&claims_lock);
    watch->claimed = 0;
    watch->fd = -1;
}

/* watch_connect_unlock - let the next lane connect (see connect_lock). */
static void watch_connect_unlock(struct session_watch *watch)
{
    if (watch->connect_locked)
        pthread_mutex_unlock(&connect_lock);
    watch->connect_locked = false;
}

/*
 * session_event - libesmtp's progress and TLS events. The watch learns of the connection
 * and of message bytes written. After each message the lease of
 * the batch is extended (a long batch to a slow relay must not look abandoned). Every
 * certificate problem is refused explicitly: *ok = 0 whatever libesmtp's default.
 */
static void session_event(smtp_session_t session, int event, void *arg, ...)
{
    struct session_watch *watch = arg;
    struct crier_channel *channel = watch->channel;
    va_list ap;
    va_start(ap, arg);
    switch (event) {
    case SMTP_EV_CONNECT:
        watch_claim(watch);
        watch_connect_unlock(watch);
        watch->last_written = watch->last_activity = monotonic_seconds();
        break;
    case SMTP_EV_DISCONNECT:
        watch_release(watch);
        break;
    case SMTP_EV_MESSAGEDATA: /* message bytes written (the body bypasses the monitor) */
        watch->last_written = watch->last_activity = monotonic_seconds();
        break;
    case SMTP_EV_MESSAGESENT: {
        /* the server has answered this message's DATA (or refused its DATA command): its
         * outcome is final, and is recorded now rather than when the session ends */
        smtp_message_t message = va_arg(ap, smtp_message_t);
        struct email_message *m = smtp_message_get_application_data(message);
        if (m && message_outcome(watch->session, m, NULL, &watch->outcomes[m->index]))
            channel_outcome_ready(channel, watch->outcomes, m->index);
        if (channel->lease_keepalive)
            channel->lease_keepalive(channel->keepalive_data);
        break;
    }
    case SMTP_EV_WEAK_CIPHER: {
        int bits = va_arg(ap, int);
        int *ok = va_arg(ap, int *);
        *ok = 0;
        snprintf(watch->tls_problem, sizeof(watch->tls_problem), "a weak cipher (%d bits)", bits);
        break;
    }
    case SMTP_EV_INVALID_PEER_CERTIFICATE: {
        long result = va_arg(ap, long);
        int *ok = va_arg(ap, int *);
        *ok = 0;
        snprintf(watch->tls_problem, sizeof(watch->tls_problem), "certificate refused: %s",
                 X509_verify_cert_error_string(result));
        break;
    }
    case SMTP_EV_NO_PEER_CERTIFICATE: {
        int *ok = va_arg(ap, int *);
        *ok = 0;
        snprintf(watch->tls_problem, sizeof(watch->tls_problem), "the server sent no certificate");
        break;
    }
    case SMTP_EV_WRONG_PEER_CERTIFICATE: {
        int *ok = va_arg(ap, int *);
        const char *name = va_arg(ap, const char *); /* a name the certificate holds */
        *ok = 0;
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", name ? name : "");
        server_text(shown);
        snprintf(watch->tls_problem, sizeof(watch->tls_problem),
                 "certificate refused: it is not for this host%s%s%s",
                 shown[0] ? " (it names " : "", shown, shown[0] ? ")" : "");
        break;
    }
    case SMTP_EV_STARTTLS_OK:
        watch->tls_ok = true;
        break;
    case SMTP_EV_EXTNA_STARTTLS:
        watch->tls_not_offered = true;
        break;
    default:
        break;
    }
    va_end(ap);
}

/*
 * session_monitor - libesmtp's protocol monitor, used for its timing and for the server's
 * last line (for a detail); what crier writes (AUTH included) is never looked at. A reply
 * still arriving more than
 * smtp.timeout after crier last wrote is cut off: shutdown() makes libesmtp's next read
 * see the end of the connection, so the session ends as a drop, which it reports.
 */
static void session_monitor(const char *buffer, int length, int writing, void *arg)
{
    struct session_watch *watch = arg;
    double now = monotonic_seconds();
    watch->last_activity = now;
    if (writing != SMTP_CB_READING) {
        watch->last_written = now; /* what crier wrote is never looked at */
        return;
    }
    /* the last whole line the server sent, controls folded, cut short */
    int end = length;
    while (end > 0 && (buffer[end - 1] == '\n' || buffer[end - 1] == '\r'))
        end--;
    int start = end;
    while (start > 0 && buffer[start - 1] != '\n')
        start--;
    if (end > start) {
        size_t n = (size_t)(end - start) < sizeof(watch->last_line) - 1
                       ? (size_t)(end - start)
                       : sizeof(watch->last_line) - 1;
        memcpy(watch->last_line, buffer + start, n);
        watch->last_line[n] = '\0';
        server_text(watch->last_line);
    }
    if (!watch->cut && watch->fd >= 0 && now - watch->last_written > watch->timeout_seconds) {
        (void)shutdown(watch->fd, SHUT_RDWR);
        watch->cut = true;
    }
}

/* tls_failure - why TLS was not set up: a refused certificate, OpenSSL's reason for a
 * failed handshake, or a server that does not offer the STARTTLS required. "" otherwise
 * (a handshake that timed out leaves no reason: the timeout and the server's last reply,
 * its 220 to STARTTLS, tell it). */
static void tls_failure(const struct email_session *s, const struct session_watch *watch, char *out,
                        size_t size)
{
    out[0] = '\0';
    unsigned long error = ERR_peek_last_error();
    const char *reason = error ? ERR_reason_error_string(error) : NULL;
    if (watch->tls_problem[0])
        snprintf(out, size, "STARTTLS: %s", watch->tls_problem);
    else if (s->starttls != Starttls_DISABLED && !watch->tls_ok && reason)
        snprintf(out, size, "STARTTLS: the TLS handshake failed: %s", reason);
    else if (s->starttls == Starttls_REQUIRED && watch->tls_not_offered)
        snprintf(out, size, "STARTTLS is required and the server does not offer it");
    ERR_clear_error(); /* this thread's queue: the next session starts clean */
}

/* ended_early - why a session ended before every message had its reply. */
static void ended_early(const struct session_watch *watch, char *out, size_t size)
{
    double quiet = monotonic_seconds() - watch->last_activity;
    if (watch->cut)
        snprintf(out, size,
                 "timed out: the server's reply was still unfinished %.0f s after "
                 "crier last wrote (smtp.timeout)",
                 watch->timeout_seconds);
    else if (quiet >= watch->timeout_seconds - 0.05)
        snprintf(out, size, "timed out: nothing from the server for %.0f s (smtp.timeout)",
                 watch->timeout_seconds);
    else
        snprintf(out, size, "the server closed the connection");
}

/* classify - an SMTP reply code as an outcome kind (0 = no reply: temporary). */
static enum crier_outcome_kind classify(int code)
{
    if (code >= 200 && code < 300)
        return OUTCOME_ACCEPTED;
    if (code >= 500 && code < 600)
        return OUTCOME_PERMANENT;
    return OUTCOME_TEMPORARY;
}

/* reply_text - the server's text without its line ending, after its enhanced status code
 * (RFC 3463) when it sent one (libesmtp takes "4.3.0" out of the text of a server that
 * offers ENHANCEDSTATUSCODES, and the log should show what the server said either way),
 * and without the password if the server repeated it (redacted before it is cut, so that
 * no part of it is left). */
static void reply_text(const struct email_session *s, const smtp_status_t *status, char *out,
                       size_t size)
{
    const char *text = status && status->text ? status->text : "";
    char code[48] = "";
    if (status && status->enh_class > 0)
        snprintf(code, sizeof(code), "%d.%d.%d ", status->enh_class, status->enh_subject,
                 status->enh_detail);
    size_t len = strlen(code) + strlen(text), big = len * 3 + 16; /* "[redacted]" for 4+ bytes */
    char *copy = xmalloc(big);
    snprintf(copy, big, "%s%s", code, text);
    const char *forms[] = {s->secret, s->secret_forms[0], s->secret_forms[1]};
    secret_redact(copy, big, forms, ARRAY_SIZE(forms));
    snprintf(out, size, "%s", copy);
    free(copy);
    out[strcspn(out, "\r\n")] = '\0';
    server_text(out);
}

/*
 * message_read - libesmtp's message callback: the bytes in one piece, then the end. Asked
 * for more after the bytes, libesmtp is about to send the final dot, after which the relay
 * has the message: the engine may first wait for earlier outcomes to be recorded
 * (before_no_return), so that a crash cannot leave many accepted messages unrecorded.
 */
static const char *message_read(void **context, int *length, void *arg)
{
    struct email_message *m = arg;
    (void)context;
    if (length == NULL) { /* rewind */
        m->given = false;
        return NULL;
    }
    if (!m->given) {
        m->given = true;
        *length = (int)m->length;
        return m->bytes;
    }
    if (m->channel->before_no_return)
        m->channel->before_no_return(m->channel->keepalive_data);
    *length = 0;
    return NULL;
}

/*
 * message_outcome - one message's outcome from the replies libesmtp kept for it. With
 * session_error NULL (the session is still going) only a reply that decides the message
 * counts, and false says there is none yet; at the end of the session, what has no reply
 * is temporary, for session_error's reason.
 */
static bool message_outcome(const struct email_session *s, const struct email_message *m,
                            const char *session_error, struct crier_outcome *outcome)
{
    const smtp_status_t *rcpt = smtp_recipient_status(m->recipient);
    const smtp_status_t *data = smtp_message_transfer_status(m->message);
    const smtp_status_t *mail = smtp_reverse_path_status(m->message);
    char text[OUTCOME_DETAIL_MAX / 2];
    if (mail && mail->code >= 400) {
        /* the relay refused our envelope sender: our configuration, not the person */
        reply_text(s, mail, text, sizeof(text));
        outcome_set(outcome, OUTCOME_TEMPORARY, "MAIL FROM: %d %s", mail->code, text);
    } else if (rcpt == NULL || rcpt->code == 0) {
        if (session_error == NULL)
            return false;
        outcome_set(outcome, OUTCOME_TEMPORARY, "not attempted: %s", session_error);
    } else if (classify(rcpt->code) != OUTCOME_ACCEPTED) {
        reply_text(s, rcpt, text, sizeof(text));
        outcome_set(outcome, classify(rcpt->code), "RCPT TO: %d %s", rcpt->code, text);
    } else if (data == NULL || data->code == 0 || data->code / 100 == 3) {
        /* no reply after the message (a 354 is the reply to the DATA command) */
        if (session_error == NULL)
            return false;
        outcome_set(outcome, OUTCOME_TEMPORARY, "DATA not completed: %s", session_error);
    } else {
        reply_text(s, data, text, sizeof(text));
        /* a refusal says where it came from, as RCPT TO: and MAIL FROM: do */
        outcome_set(outcome, classify(data->code), "%s%d %s",
                    classify(data->code) == OUTCOME_ACCEPTED ? "" : "DATA: ", data->code, text);
    }
    if (outcome->kind == OUTCOME_ACCEPTED) {
        memcpy(outcome->content_sha256, m->content_sha256, sizeof(m->content_sha256));
        outcome->content_at = m->content_at; /* what the relay took */
    }
    return true;
}

/*
 * session_run - the SMTP session itself; session_error says why messages were left without
 * a reply: libesmtp's error when the session failed, else (smtp_start_session() succeeds
 * when the server was reached and then timed out or hung up) what the watch saw; a timeout
 * is said to be one either way.
 */
static void session_run(const struct email_session *s, smtp_session_t session,
                        struct session_watch *watch, char *session_error, size_t size)
{
    ERR_clear_error();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CONNECT_WAIT_SECONDS;
    watch->connect_locked = pthread_mutex_timedlock(&connect_lock, &until) == 0;
    int started = smtp_start_session(session);
    watch_connect_unlock(watch); /* no connection was made */
    watch_release(watch);        /* in case libesmtp did not say it disconnected */
    char buf[200], early[120], tls[240];
    ended_early(watch, early, sizeof(early));
    tls_failure(s, watch, tls, sizeof(tls));
    /* the reason, a timeout if there was one, and the server's last words (a 421
     * greeting, the 220 to STARTTLS before a broken handshake, a 354) */
    bool timed_out = strncmp(early, "timed out", 9) == 0;
    const char *reason = early;
    if (tls[0]) {
        reason = tls;
    } else if (!started) {
        smtp_strerror(smtp_errno(), buf, sizeof(buf));
        reason = buf;
    } else {
        timed_out = false; /* early is the reason itself */
    }
    snprintf(session_error, size, "%s%s%s%s%s%s", reason, timed_out ? "; " : "",
             timed_out ? early : "", watch->last_line[0] ? " (the server's last reply: " : "",
             watch->last_line, watch->last_line[0] ? ")" : "");
}

/* session_open - a libesmtp session to the relay: its timeouts, the watch on its events and
 * socket, STARTTLS and, when a user is configured, AUTH PLAIN (*ret_auth, or NULL). */
static smtp_session_t session_open(struct email_session *s, struct session_watch *watch,
                                   auth_context_t *ret_auth)
{
    static const int timeouts[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
                                   Timeout_TRANSFER, Timeout_DATA2};
    const struct crier_config *config = s->config;
    smtp_session_t session = smtp_create_session();
    smtp_set_server(session, s->server);
    if (config->email.helo)
        smtp_set_hostname(session, config->email.helo);
    long timeout = config->email.timeout_seconds * 1000;
    for (size_t i = 0; i < ARRAY_SIZE(timeouts); i++)
        smtp_set_timeout(session, timeouts[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
    smtp_set_eventcb(session, session_event, watch);
    smtp_set_monitorcb(session, session_monitor, watch, 0);
    smtp_starttls_enable(session, s->starttls);
    if (s->tls)
        smtp_starttls_set_ctx(session, s->tls);
    *ret_auth = NULL;
    if (config->email.auth_user) {
        *ret_auth = auth_create_context();
        auth_set_mechanism_flags(*ret_auth, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(*ret_auth, auth_interact, s);
        smtp_auth_set_context(session, *ret_auth);
    }
    return session;
}

/* message_queue - the notice's message added to the session as m; false, with the
 * outcome set, when there is none to send (no address, or it cannot be rendered). */
static bool message_queue(struct crier_channel *channel, smtp_session_t session,
                          const struct crier_notice *notice, size_t i, struct email_message *m,
                          struct crier_outcome *outcome)
{
    struct email_session *s = channel->state;
    if (notice->email == NULL) {
        outcome_set(outcome, OUTCOME_NO_ADDRESS, "no address");
        return false;
    }
    char err[OUTCOME_DETAIL_MAX];
    int64_t content_at = 0;
    char *bytes = build_message(s, notice, &content_at, err, sizeof(err));
    if (bytes == NULL) {
        /* a template problem is the campaign's, not the person's: retry, never skip */
        outcome_set(outcome, OUTCOME_TEMPORARY, "cannot render: %s", err);
        return false;
    }
    m->bytes = bytes;
    m->index = i;
    m->envelope_from = xasprintf("bounce+%s@%s", notice->token, s->domain);
    m->message = smtp_add_message(session);
    smtp_message_set_application_data_release(m->message, m, NULL);
    smtp_set_reverse_path(m->message, m->envelope_from);
    m->length = strlen(m->bytes);
    m->channel = channel;
    smtp_set_messagecb(m->message, message_read, m);
    m->recipient = smtp_add_recipient(m->message, notice->email);
    sha256_hex(bytes, strlen(bytes), m->content_sha256);
    m->content_at = content_at;
    return true;
}

static void messages_free(struct email_message *messages, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(messages[i].bytes);
        free(messages[i].envelope_from);
    }
    free(messages);
}

static int email_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                      struct crier_outcome *outcomes)
{
    struct email_session *s = channel->state;
    struct email_message *messages = xcalloc(n, sizeof(*messages));
    struct session_watch watch = {
        .channel = channel,
        .timeout_seconds = (double)s->config->email.timeout_seconds,
        .fd = -1,
        .port = s->config->email.port,
        .session = s,
        .outcomes = outcomes,
    };
    auth_context_t auth;
    smtp_session_t session = session_open(s, &watch, &auth);
    size_t queued = 0;
    for (size_t i = 0; i < n; i++)
        queued += message_queue(channel, session, &notices[i], i, &messages[i], &outcomes[i]);

    char session_error[256] = "";
    if (queued > 0)
        session_run(s, session, &watch, session_error, sizeof(session_error));
    /* what the server did not answer one by one: its refusals of the envelope, and what the
     * session's end left without a reply */
    for (size_t i = 0; i < n; i++)
        if (messages[i].message && !(channel->reported && channel->reported[i]))
            message_outcome(s, &messages[i], session_error, &outcomes[i]);
    smtp_destroy_session(session);
    if (auth)
        auth_destroy_context(auth);
    messages_free(messages, n);
    return 0;
}

/* email_compose - the compose op: the exact message email_send would hand the relay for a
 * notice (for `crier audit show`, which sets notice->content_time); nothing is sent. */
static int email_compose(const struct crier_config *config, const struct crier_notice *notice,
                         struct channel_content *ret, char *err, size_t err_size)
{
    pthread_once(&library_once, library_init);
    struct email_session s = {0};
    if (email_identity(&s, config) < 0) {
        snprintf(err, err_size, "channels.email.from is not a valid address");
        return -EINVAL;
    }
    int64_t content_at;
    char *bytes = build_message(&s, notice, &content_at, err, err_size);
    free(s.from_address);
    free(s.domain);
    if (bytes == NULL)
        return -EINVAL;
    ret->bytes = bytes;
    ret->len = strlen(bytes);
    sha256_hex(bytes, ret->len, ret->sha256);
    ret->extension = "eml";
    return 0;
}

/* email_proof - the proof op: the message itself, for `campaign proof`. */
static int email_proof(const struct crier_config *config, const struct crier_notice *notice,
                       char **ret_bytes, size_t *ret_len, char *err, size_t err_size)
{
    struct channel_content content;
    int r = email_compose(config, notice, &content, err, err_size);
    if (r == 0) {
        *ret_bytes = content.bytes;
        *ret_len = content.len;
    }
    return r;
}

static bool email_reachable(const struct crier_notice *notice)
{
    return notice->email != NULL;
}

static const struct channel_template email_templates[] = {
    {.name = "email.subject", .required = true},
    {.name = "email.txt", .required = true, .body = true, .subject = "email.subject"},
    {.name = "email.html", .body = true, .subject = "email.subject"},
    {.name = NULL},
};

static int email_probe(const struct crier_config *config, char *report, size_t report_size);
static int email_send_text(const struct crier_config *config, char *const *to, const char *subject,
                           const char *body, char *report, size_t report_size);

const struct crier_channel_ops email_channel_ops = {
    .name = "email",
    .accepted_state = STATE_SENT,
    .early_outcomes = true,
    .templates = email_templates,
    .reachable = email_reachable,
    .contact = CONTACT_EMAIL,
    .unreachable_why = "no valid email address",
    .probe = email_probe,
    .probe_label = "smtp",
    .send_text = email_send_text,
    .compose = email_compose,
    .proof = email_proof,
    .proof_file = "email.eml",
    .bounces = true,
    .open = email_open,
    .send = email_send,
    .close = email_close,
};

/* ---- config check --connect ------------------------------------------------------------ */

/* probe_debug - keep the relay's last reply line (CURLINFO_HEADER_IN) for the report. */
static int probe_debug(CURL *handle, curl_infotype type, char *data, size_t size, void *arg)
{
    if (type != CURLINFO_HEADER_IN)
        return 0;
    char *last = arg;
    size_t n = size < 255 ? size : 255;
    memcpy(last, data, n);
    last[n] = '\0';
    last[strcspn(last, "\r\n")] = '\0';
    return 0;
}

/*
 * struct relay - a libcurl handle on the configured relay, for what crier says over SMTP
 * outside the notices: the probe of `config check --connect` and the mail to legal of
 * `hold check --mail-to`. The URL's path is the EHLO name; STARTTLS as configured
 * (optional on loopback by default); certificates checked; AUTH when configured.
 */
struct relay {
    CURL *e;
    char url[512];
    enum crier_starttls starttls;
    char *secret; /* the AUTH password, wiped by relay_close */
    char error[CURL_ERROR_SIZE];
};

static int relay_open(const struct crier_config *config, struct relay *relay, char *report,
                      size_t report_size)
{
    memset(relay, 0, sizeof(*relay));
    const char *host = config->email.host ? config->email.host : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(relay->url, sizeof(relay->url), "smtp://%s%s%s:%d/%s", v6 ? "[" : "", host,
             v6 ? "]" : "", config->email.port, config->email.helo ? config->email.helo : "");
    relay->starttls = config->email.starttls;
    if (relay->starttls == STARTTLS_DEFAULT)
        relay->starttls = is_loopback(host) ? STARTTLS_OPTIONAL : STARTTLS_REQUIRED;
    if (config->email.auth_user) {
        int r = read_secret(config, &relay->secret);
        if (r < 0) {
            snprintf(report, report_size, "the SMTP AUTH password cannot be read: %s",
                     strerror(-r));
            return r;
        }
    }
    CURL *e = curl_easy_init();
    if (e == NULL)
        abort(); /* out of memory, as xmalloc would */
    curl_easy_setopt(e, CURLOPT_URL, relay->url);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, relay->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, config->email.timeout_seconds);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp");
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     relay->starttls == STARTTLS_REQUIRED   ? (long)CURLUSESSL_ALL
                     : relay->starttls == STARTTLS_OPTIONAL ? (long)CURLUSESSL_TRY
                                                            : (long)CURLUSESSL_NONE);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (config->email.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, config->email.ca_file);
    if (relay->secret) {
        curl_easy_setopt(e, CURLOPT_USERNAME, config->email.auth_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, relay->secret);
    }
    relay->e = e;
    return 0;
}

static void relay_close(struct relay *relay)
{
    if (relay->secret) {
        explicit_bzero(relay->secret, strlen(relay->secret));
        free(relay->secret);
    }
    if (relay->e)
        curl_easy_cleanup(relay->e);
    memset(relay, 0, sizeof(*relay));
}

static int email_probe(const struct crier_config *config, char *report, size_t report_size)
{
    struct relay relay;
    int r = relay_open(config, &relay, report, report_size);
    if (r < 0)
        return r;
    CURL *e = relay.e;
    char last[256] = "";
    /* EHLO, STARTTLS as configured, AUTH when configured, then NOOP: no message is sent */
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "NOOP");
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, probe_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, last);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    CURLcode result = curl_easy_perform(e);
    if (result != CURLE_OK) {
        snprintf(report, report_size, "%s: %s%s%s", relay.url,
                 relay.error[0] ? relay.error : curl_easy_strerror(result),
                 last[0] ? "; last reply: " : "", last);
        r = result == CURLE_LOGIN_DENIED ? -EACCES : -EHOSTUNREACH;
    } else {
        snprintf(report, report_size, "%s: EHLO%s%s ok (%s)", relay.url,
                 relay.starttls == STARTTLS_REQUIRED   ? ", STARTTLS"
                 : relay.starttls == STARTTLS_OPTIONAL ? ", STARTTLS if offered"
                                                       : "",
                 relay.secret ? ", AUTH" : "", last);
    }
    relay_close(&relay);
    return r;
}

/* ---- crier hold check --mail-to ------------------------------------------------------------ */

struct upload {
    const char *data;
    size_t len, done;
};

static size_t upload_read(char *buffer, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nitems;
    if (n > u->len - u->done)
        n = u->len - u->done;
    memcpy(buffer, u->data + u->done, n);
    u->done += n;
    return n;
}

/* envelope_address - the address inside "Name <addr>", or the whole value. */
static void envelope_address(const char *from, char *out, size_t size)
{
    const char *open = strrchr(from, '<');
    const char *close = open ? strchr(open, '>') : NULL;
    if (open && close)
        snprintf(out, size, "<%.*s>", (int)(close - open - 1), open + 1);
    else
        snprintf(out, size, "<%s>", from);
}

static int email_send_text(const struct crier_config *config, char *const *to, const char *subject,
                           const char *body, char *report, size_t report_size)
{
    const char *from = config->email.from ? config->email.from : "crier@localhost";
    struct relay relay;
    int r = relay_open(config, &relay, report, report_size);
    if (r < 0)
        return r;
    /* the message: subject with control characters folded (as email.c does for notices) */
    char *clean_subject = xstrdup(subject);
    for (char *p = clean_subject; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *recipients = NULL;
    size_t recipients_len = 0;
    FILE *list = open_memstream(&recipients, &recipients_len);
    for (char *const *t = to; *t; t++)
        fprintf(list, "%s%s", t == to ? "" : ", ", *t);
    fclose(list);
    char *message =
        xasprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n"
                  "\r\n",
                  from, recipients, clean_subject, date);
    free(clean_subject);
    free(recipients);
    /* the body with CRLF line ends and dot-stuffing left to libcurl (it stuffs) */
    size_t head = strlen(message);
    size_t body_len = strlen(body);
    message = xrealloc(message, head + body_len * 2 + 3);
    size_t k = head;
    for (size_t i = 0; i < body_len; i++) {
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            message[k++] = '\r';
        message[k++] = body[i];
    }
    message[k] = '\0';
    struct upload upload = {message, k, 0};

    char envelope_from[512];
    envelope_address(from, envelope_from, sizeof(envelope_from));
    struct curl_slist *rcpt = NULL;
    for (char *const *t = to; *t; t++) {
        char address[512];
        envelope_address(*t, address, sizeof(address));
        rcpt = curl_slist_append(rcpt, address);
    }
    CURL *e = relay.e;
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, envelope_from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &upload);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    CURLcode result = curl_easy_perform(e);
    if (result != CURLE_OK) {
        snprintf(report, report_size, "%s: %s", relay.url,
                 relay.error[0] ? relay.error : curl_easy_strerror(result));
        r = -EHOSTUNREACH;
    } else {
        snprintf(report, report_size, "sent through %s", relay.url);
    }
    relay_close(&relay);
    curl_slist_free_all(rcpt);
    free(message);
    return r;
}
