/*
 * bounce.c - `crier bounces ingest`: delivery status notifications (RFC 3464) read from a
 * message file, a Maildir or an mbox, and applied to the notices they name.
 *
 * All MIME is GMime's: the report is found by its content type, the per-recipient field
 * groups of message/delivery-status are parsed as header blocks by GMime's parser, and the
 * returned original (message/rfc822 or text/rfc822-headers) by the same parser. What this
 * file adds is only the reading of a few field values (an address, "5.1.1", an id).
 *
 * A notice is found by its VERP envelope sender (bounce+<id>.<token>@...), or by the
 * X-Crier-Notice header of the returned original, both checked against the token stored
 * with the notice; only when neither is there, by the original's Message-ID
 * (<crier.<id>.<attempt>@...>). A permanent failure of a notice still 'sent' on email is
 * decided by policy_decide() exactly as a permanent SMTP reply would be, and stored with its
 * dispatch-log row (event 'bounce') in one transaction; a delay is only logged. Every
 * applied DSN leaves a dedupe key (notice id and the DSN's Message-ID) in its log row, so
 * ingesting the same DSN again changes nothing.
 *
 * It must never crash on what it reads, and never write a byte that is not valid UTF-8
 * into the database.
 *
 * SECURITY: every byte read here comes from whoever can put mail in the bounce mailbox.
 * Field values are folded to one line, bounded, and made valid UTF-8 before they reach
 * the log; values travel to SQL as parameters. A VERP or X-Crier-Notice reference moves a
 * notice only with the notice's 128-bit token. A Message-ID carries no secret: anyone who
 * can mail the bounce address and guess a notice id (campaign * 2^32 + row) can make that
 * notice fall back to its next channel (a second notice, never a lost one). Deployments
 * that care should make their MTA's DSNs return the original's headers (Postfix does by
 * default), which carry the token.
 */
#include "crier/bounce.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/log.h"
#include "crier/policy.h"
#include "crier/transition.h"
#include "crier/mime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MESSAGE_MAX       (16 * 1024 * 1024) /* a bigger message file is not a DSN */
#define STATUS_PART_MAX   (64 * 1024)        /* of message/delivery-status read */
#define STATUS_GROUPS_MAX 64                 /* field groups read from it */
#define NESTING_MAX       8                  /* multiparts searched for the report */
#define VERP_PREFIX       "bounce+"          /* channels/email.c: bounce+<id>.<token>@ */
#define MESSAGE_ID_PREFIX "crier."           /* channels/email.c: crier.<id>.<attempt>@ */
#define NOTICE_HEADER     "X-Crier-Notice"   /* channels/email.c: <id>.<token> */

const char *bounce_kind_name(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_UNPARSEABLE:
        return "unparseable";
    case BOUNCE_NOT_DSN:
        return "not a DSN";
    case BOUNCE_FAILED:
        return "failed";
    case BOUNCE_DELAYED:
        return "delayed";
    case BOUNCE_OTHER:
        return "other";
    }
    return "unknown";
}

/* ---- field values ----------------------------------------------------------------------- */

/*
 * copy_clean - src as one line into dst: controls (CR, LF, tabs) become spaces, runs of
 * spaces one space, both ends trimmed; bytes that do not form valid UTF-8 become '?', and a
 * truncation never splits a character.
 */
static void copy_clean(char *dst, size_t size, const char *src)
{
    size_t len = 0;
    bool space = false;
    if (size == 0)
        return;
    for (const char *p = src ? src : ""; *p && len + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = len > 0;
            continue;
        }
        if (space) {
            if (len + 2 >= size)
                break;
            dst[len++] = ' ';
            space = false;
        }
        dst[len++] = (char)c;
    }
    dst[len] = '\0';
    if (!utf8_valid(dst, len)) {
        /* the cut may have split the last character: drop its continuation bytes first */
        size_t end = len;
        while (end > 0 && ((unsigned char)dst[end - 1] & 0xc0) == 0x80)
            end--;
        if (end > 0 && (unsigned char)dst[end - 1] >= 0xc0)
            end--;
        if (utf8_valid(dst, end)) {
            dst[end] = '\0';
        } else {
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)dst[i] >= 0x80)
                    dst[i] = '?';
        }
    }
}

/* strip_type - "rfc822; a@b" -> "a@b": the address-type or diagnostic-type before ';'. */
static const char *strip_type(const char *value)
{
    const char *semicolon = strchr(value, ';');
    if (semicolon == NULL)
        return value;
    for (const char *p = value; p < semicolon; p++)
        if (*p == ' ' || *p == '\t' || *p == '@' || *p == '<')
            return value; /* not a type word */
    semicolon++;
    while (*semicolon == ' ' || *semicolon == '\t')
        semicolon++;
    return semicolon;
}

static bool is_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return len > 0;
}

/* parse_id - len decimal digits as a notice id of some campaign; false if it is not one. */
static bool parse_id(const char *s, size_t len, int64_t *ret_id)
{
    if (len == 0 || len > 18)
        return false;
    int64_t id = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        id = id * 10 + (s[i] - '0');
    }
    if (notice_id_campaign(id) < 1)
        return false; /* campaign ids start at 1 */
    *ret_id = id;
    return true;
}

static void candidate_add(struct bounce_report *report, enum bounce_source source, int64_t id,
                          const char *token, size_t token_len, int attempt)
{
    struct bounce_candidate c = {.source = source, .notice_id = id, .attempt = attempt};
    for (size_t i = 0; i < token_len; i++)
        c.token[i] = (char)(token[i] >= 'A' && token[i] <= 'F' ? token[i] - 'A' + 'a' : token[i]);
    for (size_t i = 0; i < report->candidate_count; i++) {
        const struct bounce_candidate *o = &report->candidates[i];
        if (o->source == c.source && o->notice_id == c.notice_id &&
            strcmp(o->token, c.token) == 0 && o->attempt == c.attempt)
            return;
    }
    if (report->candidate_count < BOUNCE_CANDIDATES_MAX)
        report->candidates[report->candidate_count++] = c;
}

/* notice_reference - "<id>.<token>" (len bytes) as a candidate; false if malformed. */
static bool notice_reference(struct bounce_report *report, enum bounce_source source,
                             const char *text, size_t len)
{
    const char *dot = memchr(text, '.', len);
    int64_t id;
    if (dot == NULL || !parse_id(text, (size_t)(dot - text), &id))
        return false;
    const char *token = dot + 1;
    size_t token_len = len - (size_t)(token - text);
    if (token_len > BOUNCE_TOKEN_MAX || !is_hex(token, token_len))
        return false;
    candidate_add(report, source, id, token, token_len, 0);
    return true;
}

/* verp_address - bounce+<id>.<token>@domain as a candidate. */
static void verp_address(struct bounce_report *report, const char *address)
{
    size_t prefix = strlen(VERP_PREFIX);
    const char *at = strrchr(address, '@');
    if (at == NULL || strncasecmp(address, VERP_PREFIX, prefix) != 0 || at < address + prefix)
        return;
    notice_reference(report, BOUNCE_BY_VERP, address + prefix, (size_t)(at - address) - prefix);
}

/* verp_addresses - every mailbox of an address header value (GMime parses it). */
static void verp_addresses(struct bounce_report *report, const char *value)
{
    InternetAddressList *list = internet_address_list_parse(NULL, strip_type(value));
    if (list == NULL)
        return;
    int count = internet_address_list_length(list);
    for (int i = 0; i < count && i < 32; i++) {
        InternetAddress *address = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(address)) {
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address));
            if (addr)
                verp_address(report, addr);
        } else if (INTERNET_ADDRESS_IS_GROUP(address)) {
            InternetAddressList *members =
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address));
            int n = members ? internet_address_list_length(members) : 0;
            for (int k = 0; k < n && k < 32; k++) {
                InternetAddress *member = internet_address_list_get_address(members, k);
                if (INTERNET_ADDRESS_IS_MAILBOX(member)) {
                    const char *addr =
                        internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(member));
                    if (addr)
                        verp_address(report, addr);
                }
            }
        }
    }
    g_object_unref(list);
}

/* verp_headers - VERP addresses in every header of object named in names. */
static void verp_headers(struct bounce_report *report, GMimeObject *object,
                         const char *const *names, size_t name_count)
{
    GMimeHeaderList *headers = g_mime_object_get_header_list(object);
    int count = headers ? g_mime_header_list_get_count(headers) : 0;
    for (int i = 0; i < count; i++) {
        GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
        const char *name = g_mime_header_get_name(header);
        const char *value = g_mime_header_get_value(header);
        if (name == NULL || value == NULL)
            continue;
        for (size_t k = 0; k < name_count; k++)
            if (strcasecmp(name, names[k]) == 0)
                verp_addresses(report, value);
    }
}

/* message_id_reference - crier.<id>.<attempt>@domain (without <>) as a candidate. */
static void message_id_reference(struct bounce_report *report, const char *message_id)
{
    size_t prefix = strlen(MESSAGE_ID_PREFIX);
    if (message_id == NULL || strncmp(message_id, MESSAGE_ID_PREFIX, prefix) != 0)
        return;
    const char *id_text = message_id + prefix;
    const char *dot = strchr(id_text, '.');
    const char *at = dot ? strchr(dot, '@') : NULL;
    int64_t id, attempt;
    if (at == NULL || !parse_id(id_text, (size_t)(dot - id_text), &id))
        return;
    size_t attempt_len = (size_t)(at - dot - 1);
    if (attempt_len == 0 || attempt_len > 9)
        return;
    attempt = 0;
    for (const char *p = dot + 1; p < at; p++) {
        if (*p < '0' || *p > '9')
            return;
        attempt = attempt * 10 + (*p - '0');
    }
    if (attempt < 1)
        return;
    candidate_add(report, BOUNCE_BY_MESSAGE_ID, id, "", 0, (int)attempt);
}

/* ---- the report ------------------------------------------------------------------------- */

/* part_bytes - a leaf part's content, transfer encoding undone, at most max bytes kept. */
static GByteArray *part_bytes(GMimePart *part, size_t max)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (content == NULL)
        return NULL;
    GMimeStream *stream = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(content, stream);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    GByteArray *copy = g_byte_array_new();
    if (bytes)
        g_byte_array_append(copy, bytes->data, (guint)(bytes->len < max ? bytes->len : max));
    g_object_unref(stream);
    return copy;
}

static bool content_is(GMimeObject *object, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    return ct && g_mime_content_type_is_type(ct, type, subtype);
}

/* What find_report() found: pointers into the message, not owned. */
struct report_parts {
    GMimeObject *report;   /* the multipart/report; report-type=delivery-status */
    GMimePart *status;     /* its message/delivery-status part */
    GMimeObject *original; /* its message/rfc822 or text/rfc822-headers part, or NULL */
};

static void find_report(GMimeObject *object, int depth, struct report_parts *found)
{
    if (found->report || depth > NESTING_MAX || !GMIME_IS_MULTIPART(object))
        return;
    GMimeMultipart *multipart = GMIME_MULTIPART(object);
    int count = g_mime_multipart_get_count(multipart);
    const char *report_type = g_mime_object_get_content_type_parameter(object, "report-type");
    if (content_is(object, "multipart", "report") && report_type &&
        strcasecmp(report_type, "delivery-status") == 0) {
        found->report = object;
        for (int i = 0; i < count; i++) {
            GMimeObject *part = g_mime_multipart_get_part(multipart, i);
            if (found->status == NULL && GMIME_IS_PART(part) &&
                (content_is(part, "message", "delivery-status") ||
                 content_is(part, "message", "global-delivery-status")))
                found->status = GMIME_PART(part);
            else if (found->original == NULL &&
                     (GMIME_IS_MESSAGE_PART(part) ||
                      (GMIME_IS_PART(part) && (content_is(part, "text", "rfc822-headers") ||
                                               content_is(part, "message", "global-headers")))))
                found->original = part;
        }
        return;
    }
    for (int i = 0; i < count && found->report == NULL; i++)
        find_report(g_mime_multipart_get_part(multipart, i), depth + 1, found);
}

/* severity - how much a per-recipient group matters: failed over delayed over the rest. */
static int severity(enum bounce_kind kind)
{
    return kind == BOUNCE_FAILED ? 3 : kind == BOUNCE_DELAYED ? 2 : kind == BOUNCE_OTHER ? 1 : 0;
}

/*
 * group_kind - what a per-recipient group says: its Action, else the class of its Status.
 * BOUNCE_UNPARSEABLE when it has neither (a per-message group, or garbage).
 */
static enum bounce_kind group_kind(const char *action, const char *status)
{
    if (action) {
        char word[16];
        copy_clean(word, sizeof(word), action);
        word[strcspn(word, " (")] = '\0';
        if (strcasecmp(word, "failed") == 0)
            return BOUNCE_FAILED;
        if (strcasecmp(word, "delayed") == 0)
            return BOUNCE_DELAYED;
        if (strcasecmp(word, "delivered") == 0 || strcasecmp(word, "relayed") == 0 ||
            strcasecmp(word, "expanded") == 0)
            return BOUNCE_OTHER;
    }
    if (status) {
        while (*status == ' ' || *status == '\t')
            status++;
        /* status[0] first: status[1] is only read when status[0] is not the end */
        if (status[0] == '5' && status[1] == '.')
            return BOUNCE_FAILED;
        if (status[0] == '4' && status[1] == '.')
            return BOUNCE_DELAYED;
        if (status[0] == '2' && status[1] == '.')
            return BOUNCE_OTHER;
    }
    return BOUNCE_UNPARSEABLE;
}

/* read_group - one field group (a header block, parsed by GMime) into the report. */
static void read_group(struct bounce_report *report, GMimeObject *group, bool first)
{
    if (first) {
        /* per-message fields; Postfix names the envelope sender here */
        static const char *const names[] = {"X-Postfix-Sender"};
        verp_headers(report, group, names, ARRAY_SIZE(names));
    }
    const char *action = g_mime_object_get_header(group, "Action");
    const char *status = g_mime_object_get_header(group, "Status");
    enum bounce_kind kind = group_kind(action, status);
    if (severity(kind) <= severity(report->kind))
        return;
    report->kind = kind;
    copy_clean(report->action, sizeof(report->action), action ? action : "");
    report->action[strcspn(report->action, " (")] = '\0';
    copy_clean(report->status, sizeof(report->status), status ? status : "");
    report->status[strcspn(report->status, " (")] = '\0';
    const char *recipient = g_mime_object_get_header(group, "Final-Recipient");
    if (recipient == NULL)
        recipient = g_mime_object_get_header(group, "Original-Recipient");
    copy_clean(report->recipient, sizeof(report->recipient),
               recipient ? strip_type(recipient) : "");
    const char *diagnostic = g_mime_object_get_header(group, "Diagnostic-Code");
    copy_clean(report->diagnostic, sizeof(report->diagnostic), diagnostic ? diagnostic : "");
}

/*
 * read_status - the field groups of message/delivery-status: each is a header block, so
 * GMime's parser reads one, says where it ended, and the next starts after the blank line.
 */
static void read_status(struct bounce_report *report, GMimePart *part)
{
    GByteArray *bytes = part_bytes(part, STATUS_PART_MAX);
    if (bytes == NULL)
        return;
    size_t offset = 0;
    for (int group = 0; group < STATUS_GROUPS_MAX && offset < bytes->len; group++) {
        while (offset < bytes->len && (bytes->data[offset] == '\r' || bytes->data[offset] == '\n' ||
                                       bytes->data[offset] == ' ' || bytes->data[offset] == '\t'))
            offset++;
        if (offset >= bytes->len)
            break;
        GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)bytes->data + offset,
                                                                bytes->len - offset);
        GMimeParser *parser = g_mime_parser_new_with_stream(stream);
        GMimeObject *fields = g_mime_parser_construct_part(parser, NULL);
        gint64 end = g_mime_parser_get_headers_end(parser);
        g_object_unref(parser);
        g_object_unref(stream);
        if (fields == NULL)
            break;
        GMimeHeaderList *headers = g_mime_object_get_header_list(fields);
        bool empty = headers == NULL || g_mime_header_list_get_count(headers) == 0;
        if (!empty)
            read_group(report, fields, group == 0);
        g_object_unref(fields);
        if (empty || end <= 0)
            break;
        offset += (size_t)end;
    }
    g_byte_array_unref(bytes);
}

/* read_original - VERP, X-Crier-Notice and Message-ID of the returned original. */
static void read_original(struct bounce_report *report, GMimeObject *part)
{
    GMimeMessage *original = NULL;
    if (GMIME_IS_MESSAGE_PART(part)) {
        original = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
        if (original)
            g_object_ref(original);
    } else if (GMIME_IS_PART(part)) {
        /* text/rfc822-headers: a header block, parsed as a message with no body */
        GByteArray *bytes = part_bytes(GMIME_PART(part), MESSAGE_MAX);
        if (bytes == NULL)
            return;
        if (bytes->len == 0) {
            g_byte_array_unref(bytes);
            return;
        }
        GMimeStream *stream =
            g_mime_stream_mem_new_with_buffer((const char *)bytes->data, bytes->len);
        GMimeParser *parser = g_mime_parser_new_with_stream(stream);
        original = g_mime_parser_construct_message(parser, NULL);
        g_object_unref(parser);
        g_object_unref(stream);
        g_byte_array_unref(bytes);
    }
    if (original == NULL)
        return;
    static const char *const names[] = {"Return-Path"};
    verp_headers(report, GMIME_OBJECT(original), names, ARRAY_SIZE(names));
    const char *notice = g_mime_object_get_header(GMIME_OBJECT(original), NOTICE_HEADER);
    if (notice) {
        char value[BOUNCE_TOKEN_MAX + 32];
        copy_clean(value, sizeof(value), notice);
        notice_reference(report, BOUNCE_BY_HEADER, value, strlen(value));
    }
    message_id_reference(report, g_mime_message_get_message_id(original));
    g_object_unref(original);
}

/* parse_message - what one parsed message says. */
static int parse_message(GMimeMessage *message, struct bounce_report *report)
{
    *report = (struct bounce_report){.kind = BOUNCE_UNPARSEABLE};
    GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(message));
    if (headers == NULL || g_mime_header_list_get_count(headers) == 0)
        return -EBADMSG; /* no header at all: not a message */
    copy_clean(report->message_id, sizeof(report->message_id),
               g_mime_message_get_message_id(message));
    char *text = g_mime_object_to_string(GMIME_OBJECT(message), NULL);
    sha256_hex(text ? text : "", text ? strlen(text) : 0, report->sha256);
    g_free(text);

    struct report_parts found = {0};
    GMimeObject *body = g_mime_message_get_mime_part(message);
    if (body)
        find_report(body, 0, &found);
    if (found.report == NULL) {
        report->kind = BOUNCE_NOT_DSN;
        return 0;
    }
    if (found.status == NULL)
        goto unparseable;
    /* the DSN's recipient is the original's envelope sender: the VERP address */
    static const char *const names[] = {"To", "Delivered-To", "X-Original-To", "Envelope-To"};
    verp_headers(report, GMIME_OBJECT(message), names, ARRAY_SIZE(names));
    read_status(report, found.status);
    if (found.original)
        read_original(report, found.original);
    if (report->kind == BOUNCE_UNPARSEABLE)
        goto unparseable; /* a report without one usable per-recipient group */
    return 0;
unparseable:
    *report = (struct bounce_report){.kind = BOUNCE_UNPARSEABLE};
    return -EBADMSG;
}

int bounce_parse(const void *data, size_t len, struct bounce_report *ret_report)
{
    *ret_report = (struct bounce_report){.kind = BOUNCE_UNPARSEABLE};
    if (data == NULL || len == 0 || len > MESSAGE_MAX)
        return -EBADMSG;
    GMimeMessage *message = mime_message_parse(data, len);
    if (message == NULL)
        return -EBADMSG;
    int r = parse_message(message, ret_report);
    g_object_unref(message);
    return r;
}

/* ---- reading a file, a Maildir or an mbox --------------------------------------------- */

enum reader_type {
    READER_FILE,
    READER_MAILDIR,
    READER_MBOX,
};

struct bounce_reader {
    enum reader_type type;
    char *path;
    char **files; /* FILE: the path; MAILDIR: new/ then cur/, each sorted; NULL-terminated */
    size_t next_file;
    GMimeStream *mbox_stream;
    GMimeParser *mbox_parser;
    long mbox_index; /* messages read from the mbox */
    bool mbox_done;
    char *where; /* names the last message read */
};

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* maildir_list - the regular files of DIR/sub, sorted, appended to *files. */
static int maildir_list(const char *dir, const char *sub, char ***files, size_t *count)
{
    char *path = xasprintf("%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL) {
        int r = -errno;
        free(path);
        return r;
    }
    size_t start = *count;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char *file = xasprintf("%s/%s", path, entry->d_name);
        struct stat st;
        if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(file);
            continue;
        }
        *files = xreallocarray(*files, *count + 2, sizeof(char *));
        (*files)[(*count)++] = file;
        (*files)[*count] = NULL;
    }
    closedir(d);
    free(path);
    if (*count > start)
        qsort(*files + start, *count - start, sizeof(char *), compare_names);
    return 0;
}

static bool is_directory(const char *dir, const char *sub)
{
    char *path = xasprintf("%s/%s", dir, sub);
    struct stat st;
    bool yes = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(path);
    return yes;
}

int bounce_reader_open(const char *path, struct bounce_reader **ret_reader, char *err,
                       size_t err_size)
{
    mime_ready();
    struct stat st;
    if (stat(path, &st) != 0) {
        int r = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return r;
    }
    struct bounce_reader *reader = xcalloc(1, sizeof(*reader));
    reader->path = xstrdup(path);
    size_t count = 0;
    if (S_ISDIR(st.st_mode)) {
        bool has_new = is_directory(path, "new"), has_cur = is_directory(path, "cur");
        if (!has_new && !has_cur) {
            snprintf(err, err_size, "%s: a directory, but not a Maildir (no new/ or cur/)", path);
            bounce_reader_free(reader);
            return -ENOTDIR;
        }
        reader->type = READER_MAILDIR;
        static const char *const subs[] = {"new", "cur"};
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
            if (!is_directory(path, subs[i]))
                continue;
            int r = maildir_list(path, subs[i], &reader->files, &count);
            if (r < 0) {
                snprintf(err, err_size, "%s/%s: %s", path, subs[i], strerror(-r));
                bounce_reader_free(reader);
                return r;
            }
        }
        if (reader->files == NULL)
            reader->files = xcalloc(1, sizeof(char *));
        *ret_reader = reader;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        bounce_reader_free(reader);
        return r;
    }
    char head[5] = {0};
    ssize_t got = read(fd, head, sizeof(head));
    if (got < 0) {
        int r = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        close(fd);
        bounce_reader_free(reader);
        return r;
    }
    if (got == (ssize_t)sizeof(head) && memcmp(head, "From ", 5) == 0) {
        /* an mbox: GMime's parser finds the "From " lines; the stream owns fd */
        lseek(fd, 0, SEEK_SET);
        reader->type = READER_MBOX;
        reader->mbox_stream = g_mime_stream_fs_new(fd);
        reader->mbox_parser = g_mime_parser_new_with_stream(reader->mbox_stream);
        g_mime_parser_set_format(reader->mbox_parser, GMIME_FORMAT_MBOX);
    } else {
        close(fd);
        reader->type = READER_FILE;
        reader->files = xcalloc(2, sizeof(char *));
        reader->files[0] = xstrdup(path);
    }
    *ret_reader = reader;
    return 0;
}

/* read_file - a whole message file; -EFBIG past MESSAGE_MAX. */
static int read_file(const char *path, char **ret_data, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t len = 0, cap = 8192;
    char *data = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > MESSAGE_MAX) {
                free(data);
                fclose(f);
                return -EFBIG;
            }
            cap *= 2;
            data = xrealloc(data, cap);
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int r = ferror(f) ? -EIO : 0;
    fclose(f);
    if (r < 0) {
        free(data);
        return r;
    }
    *ret_data = data;
    *ret_len = len;
    return 0;
}

int bounce_reader_next(struct bounce_reader *reader, struct bounce_report *ret_report,
                       const char **ret_where)
{
    free(reader->where);
    reader->where = NULL;
    *ret_report = (struct bounce_report){.kind = BOUNCE_UNPARSEABLE};
    if (reader->type == READER_MBOX) {
        if (reader->mbox_done || g_mime_parser_eos(reader->mbox_parser))
            return 0;
        gint64 before = g_mime_parser_tell(reader->mbox_parser);
        GMimeMessage *message = g_mime_parser_construct_message(reader->mbox_parser, NULL);
        reader->mbox_index++;
        reader->where = xasprintf("%s, message %ld", reader->path, reader->mbox_index);
        *ret_where = reader->where;
        if (message == NULL) {
            /* the parser cannot go on from here: one unparseable message, then the end */
            reader->mbox_done = true;
            return g_mime_parser_tell(reader->mbox_parser) > before ? 1 : 0;
        }
        if (g_mime_parser_tell(reader->mbox_parser) <= before)
            reader->mbox_done = true; /* no progress: never loop on the same bytes */
        parse_message(message, ret_report);
        g_object_unref(message);
        return 1;
    }
    const char *file = reader->files ? reader->files[reader->next_file] : NULL;
    if (file == NULL)
        return 0;
    reader->next_file++;
    reader->where = xstrdup(file);
    *ret_where = reader->where;
    char *data = NULL;
    size_t len = 0;
    if (read_file(file, &data, &len) < 0)
        return 1; /* vanished or unreadable since it was listed: counted as unparseable */
    bounce_parse(data, len, ret_report);
    free(data);
    return 1;
}

struct bounce_reader *bounce_reader_free(struct bounce_reader *reader)
{
    if (reader == NULL)
        return NULL;
    if (reader->mbox_parser)
        g_object_unref(reader->mbox_parser);
    if (reader->mbox_stream)
        g_object_unref(reader->mbox_stream);
    strv_free(reader->files);
    free(reader->path);
    free(reader->where);
    free(reader);
    return NULL;
}

/* ---- applying a report ------------------------------------------------------------------ */

static const char *source_name(enum bounce_source source)
{
    switch (source) {
    case BOUNCE_BY_VERP:
        return "VERP address";
    case BOUNCE_BY_HEADER:
        return NOTICE_HEADER;
    case BOUNCE_BY_MESSAGE_ID:
        return "Message-ID (unverified)";
    }
    return "?";
}

/* Candidate lookup: a token, when there is one, must be the notice's. */
static const char find_sql[] = "SELECT 1 FROM crier.notice WHERE campaign_id = $1 AND id = $2"
                               " AND ($3 = '' OR token = $3) AND attempt >= $4::integer";

/*
 * resolve - the first candidate that names a notice crier sent. The Message-ID is tried
 * only when the DSN carries no token at all: a token that does not check out makes the
 * whole DSN suspect. 1 when found (*ret_match), 0 when none, < 0 on error.
 */
static int resolve(struct crier_db *db, const struct bounce_report *report,
                   const struct bounce_candidate **ret_match)
{
    bool tokens = false;
    for (int pass = 0; pass < 2 && !(pass == 1 && tokens); pass++) {
        for (size_t i = 0; i < report->candidate_count; i++) {
            const struct bounce_candidate *c = &report->candidates[i];
            if ((c->source == BOUNCE_BY_MESSAGE_ID) != (pass == 1))
                continue;
            tokens = tokens || c->token[0] != '\0';
            const char *params[] = {DB_NUM(notice_id_campaign(c->notice_id)), DB_NUM(c->notice_id),
                                    c->token, DB_NUM(c->attempt)};
            int r = db_exists(db, find_sql, 4, params);
            if (r < 0)
                return r;
            if (r == 1) {
                *ret_match = c;
                return 1;
            }
        }
    }
    return 0;
}

/* The notice, with what the policy needs to know about its recipient, locked. */
static const char notice_sql[] = "SELECT " NOTICE_COLUMNS(
    "n", "r") ", n.state, n.channel, n.channel_index,"
              " extract(epoch FROM coalesce(n.channel_started_at, now()))"
              " FROM crier.notice n JOIN crier.recipient_now r"
              " ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
              " WHERE n.campaign_id = $1 AND n.id = $2 FOR UPDATE OF n";

/* notice_sql's own columns, after the notice's. */
enum bounce_notice_column {
    BN_STATE = NOTICE_COLUMN_COUNT,
    BN_CHANNEL,
    BN_CHANNEL_INDEX,
    BN_CHANNEL_STARTED_AT,
};

/* diagnostic_text - the Diagnostic-Code without its type ("smtp; 550 ..." -> "550 ..."). */
static const char *diagnostic_text(const struct bounce_report *report)
{
    return strip_type(report->diagnostic);
}

enum apply_result {
    APPLIED_PERMANENT,
    APPLIED_DELAY,
    APPLY_DUPLICATE,
    APPLY_IGNORED,
};

/*
 * apply_read - under lock: the campaign and the notice as they are now. Returns 1 when
 * there is nothing to do (gone since resolve(), already moved on or never sent by email,
 * or the DSN already ingested: then *outcome is APPLY_DUPLICATE), 0 to go on.
 */
static int apply_read(struct crier_db *db, const char *campaign_id, const char *notice_id,
                      const char *dedupe_key, PGresult **campaign, PGresult **notice,
                      enum apply_result *outcome)
{
    const char *campaign_params[] = {campaign_id};
    int r = db_query(db, "SELECT state, policy FROM crier.campaign WHERE id = $1 FOR UPDATE", 1,
                     campaign_params, campaign);
    if (r < 0)
        return r;
    const char *notice_params[] = {campaign_id, notice_id};
    r = db_query(db, notice_sql, 2, notice_params, notice);
    if (r < 0)
        return r;
    if (PQntuples(*campaign) == 0 || PQntuples(*notice) == 0)
        return 1; /* gone since resolve(): nothing to do */
    const char *key_params[] = {dedupe_key};
    r = db_exists(db, "SELECT 1 FROM crier.dispatch_log WHERE dedupe_key = $1", 1, key_params);
    if (r < 0)
        return r;
    if (r == 1) {
        *outcome = APPLY_DUPLICATE;
        return 1;
    }
    const struct crier_channel_ops *bouncing = channel_bouncing();
    if (bouncing == NULL ||
        strcmp(PQgetvalue(*notice, 0, BN_STATE), notice_state_name(bouncing->accepted_state)) !=
            0 ||
        strcmp(PQgetvalue(*notice, 0, BN_CHANNEL), bouncing->name) != 0)
        return 1; /* already moved on (or never sent by email): changes nothing */
    return 0;
}

/* Where a bounce moves its notice: a delay leaves it where it is (to_state NULL). */
struct bounce_move {
    struct policy_decision decision;
    const char *to_state, *to_channel;
    char reason[POLICY_REASON_MAX + 32];
};

/* apply_decide - a permanent failure decided as every other outcome is (transition_decide),
 * from the notice's row of notice_sql. */
static void apply_decide(const struct crier_config *config, const struct bounce_report *report,
                         char **policy, const struct crier_notice *n, PGresult *notice,
                         const char *campaign_state, struct bounce_move *move)
{
    const struct crier_channel_ops *bouncing = channel_bouncing();
    struct transition_input in = {
        .config = config,
        .policy = policy,
        .notice = n,
        .channel = bouncing->name,
        .channel_index = move->decision.to_channel_index,
        .channel_started_at = strtod(PQgetvalue(notice, 0, BN_CHANNEL_STARTED_AT), NULL),
        .accepted_state = bouncing->accepted_state,
        .now = now_seconds(),
        .random_unit = 0,
    };
    struct crier_outcome bounced;
    const char *diagnostic = diagnostic_text(report);
    outcome_set(&bounced, OUTCOME_PERMANENT, "bounced: %s%s%s",
                report->status[0] ? report->status : report->action, diagnostic[0] ? " " : "",
                diagnostic);
    transition_decide(&in, &bounced, &move->decision);
    move->to_state = notice_state_name(move->decision.to_state);
    move->to_channel = transition_to_channel(&in, &move->decision);
    snprintf(move->reason, sizeof(move->reason), "%s", move->decision.reason);
    if (move->decision.to_state == STATE_READY && strcmp(campaign_state, "cancelled") == 0) {
        /* as the other record paths: a notice of a cancelled campaign is not tried again */
        move->to_state = "cancelled";
        snprintf(move->reason, sizeof(move->reason), "%s; campaign cancelled",
                 move->decision.reason);
    }
}

/* apply_detail - the log row's detail: which DSN said what, and how its notice was found. */
static char *apply_detail(const struct bounce_report *report, const struct bounce_candidate *match)
{
    return xasprintf(
        "DSN %s%s%s: %s %s%s%s%s%s; notice found by %s", report->message_id[0] ? "<" : "sha256:",
        report->message_id[0] ? report->message_id : report->sha256,
        report->message_id[0] ? ">" : "",
        report->action[0] ? report->action : bounce_kind_name(report->kind), report->status,
        report->recipient[0] ? " for " : "", report->recipient, report->diagnostic[0] ? ": " : "",
        report->diagnostic, source_name(match->source));
}

/* One DSN as apply reads it: its log row's dedupe key, and the campaign's and notice's rows
 * read under lock (apply_read). */
struct application {
    const struct bounce_report *report;
    const struct bounce_candidate *match;
    char *dedupe_key;
    PGresult *campaign, *notice;
};

/*
 * apply_record - in apply's transaction: what the DSN does to its notice (a delay only
 * logs it; a failure is decided, apply_decide), recorded with its log row and committed.
 * Returns 1 when committed (*outcome says how), 0 when there was nothing to record (a
 * concurrent ingest of the same DSN got there first: *outcome APPLY_DUPLICATE), or an
 * error; the caller rolls back all but the first.
 */
static int apply_record(struct crier_db *db, const struct crier_config *config,
                        const struct application *a, const char *actor, enum apply_result *outcome)
{
    const struct bounce_report *report = a->report;
    const struct crier_channel_ops *bouncing = channel_bouncing();
    const char *campaign_state = PQgetvalue(a->campaign, 0, 0);
    char **policy = campaign_policy_from_array(PQgetvalue(a->campaign, 0, 1));
    struct crier_notice n;
    notice_from_row(a->notice, 0, &n);
    struct bounce_move move = {
        .decision.to_channel_index = strtoul(PQgetvalue(a->notice, 0, BN_CHANNEL_INDEX), NULL, 10),
        .to_channel = bouncing->name,
    };
    if (report->kind == BOUNCE_FAILED)
        apply_decide(config, report, policy, &n, a->notice, campaign_state, &move);
    char *detail = apply_detail(report, a->match);
    const struct transition_bounce record = {
        .notice = &n,
        .channel = bouncing->name,
        .to_state = move.to_state,
        .to_channel = move.to_channel,
        .to_channel_index = move.decision.to_channel_index,
        .changed = move.decision.channel_changed,
        .reason = move.reason[0] ? move.reason : NULL,
        .detail = detail,
        .dedupe_key = a->dedupe_key,
        .campaign_completed = strcmp(campaign_state, "completed") == 0,
    };
    bool logged = false;
    int r = transition_record_bounce(db, actor, &record, &logged);
    if (r == -EEXIST) {
        *outcome = APPLY_DUPLICATE; /* a concurrent ingest of the same DSN got there first */
        r = 0;
    } else if (r == 0 && logged && (r = db_commit(db)) == 0) {
        *outcome = report->kind == BOUNCE_FAILED ? APPLIED_PERMANENT : APPLIED_DELAY;
        if (*outcome == APPLIED_PERMANENT)
            log_info("notice %lld (%s): bounced %s, now %s on %s", (long long)a->match->notice_id,
                     n.ref, report->status, move.to_state, move.to_channel);
        r = 1;
    }
    strv_free(policy);
    free(detail);
    return r;
}

/*
 * apply - one matched DSN, in one transaction: lock the campaign (its state decides
 * whether a notice moved to ready is claimable; FOR UPDATE because a completed campaign
 * is reopened here) and the notice, skip a DSN already ingested, decide and record.
 */
static int apply(struct crier_db *db, const struct crier_config *config,
                 const struct bounce_report *report, const struct bounce_candidate *match,
                 const char *actor, enum apply_result *ret_result)
{
    char campaign_id[32], notice_id[32];
    snprintf(campaign_id, sizeof(campaign_id), "%lld",
             (long long)notice_id_campaign(match->notice_id));
    snprintf(notice_id, sizeof(notice_id), "%lld", (long long)match->notice_id);
    struct application a = {
        .report = report,
        .match = match,
        .dedupe_key = report->message_id[0] ? xasprintf("%s %s", notice_id, report->message_id)
                                            : xasprintf("%s sha256:%s", notice_id, report->sha256),
    };
    enum apply_result outcome = APPLY_IGNORED;
    int r = db_begin(db);
    if (r == 0) {
        r = apply_read(db, campaign_id, notice_id, a.dedupe_key, &a.campaign, &a.notice, &outcome);
        if (r == 0 && (report->kind == BOUNCE_FAILED || report->kind == BOUNCE_DELAYED))
            r = apply_record(db, config, &a, actor, &outcome);
        else if (r > 0)
            r = 0; /* nothing to do */
        if (r <= 0)
            db_rollback(db);
    }
    PQclear(a.campaign);
    PQclear(a.notice);
    free(a.dedupe_key);
    if (r >= 0)
        *ret_result = outcome;
    return r < 0 ? r : 0;
}

int bounce_ingest(struct crier_db *db, const struct crier_config *config,
                  struct bounce_reader *reader, const char *actor, struct bounce_counts *ret_counts)
{
    struct bounce_counts counts = {0};
    struct bounce_report report;
    const char *where = NULL;
    int r = 0;
    while (bounce_reader_next(reader, &report, &where) > 0) {
        counts.messages++;
        if (report.kind == BOUNCE_UNPARSEABLE) {
            counts.unparseable++;
            log_notice("%s: unparseable", where);
            continue;
        }
        if (report.kind == BOUNCE_NOT_DSN) {
            counts.unmatched++;
            log_info("%s: not a delivery status notification", where);
            continue;
        }
        const struct bounce_candidate *match = NULL;
        r = resolve(db, &report, &match);
        if (r < 0)
            break;
        if (r == 0) {
            counts.unmatched++;
            log_info("%s: %s DSN names no notice crier sent", where, bounce_kind_name(report.kind));
            continue;
        }
        enum apply_result result = APPLY_IGNORED;
        if (report.kind == BOUNCE_OTHER)
            r = 0; /* a success report: nothing to change, nothing to log */
        else
            r = apply(db, config, &report, match, actor, &result);
        if (r < 0)
            break;
        switch (result) {
        case APPLIED_PERMANENT:
            counts.permanent++;
            break;
        case APPLIED_DELAY:
            counts.delayed++;
            break;
        case APPLY_DUPLICATE:
            counts.duplicate++;
            break;
        case APPLY_IGNORED:
            counts.ignored++;
            log_info("%s: %s DSN for notice %lld changes nothing", where,
                     bounce_kind_name(report.kind), (long long)match->notice_id);
            break;
        }
    }
    *ret_counts = counts;
    return r < 0 ? r : 0;
}
