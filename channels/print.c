/*
 * print.c - the mail channel: a claimed batch of notices becomes one print-ready PDF of
 * letters for #10 double-window envelopes, sorted by ZIP, with a manifest beside it.
 *
 * A batch comes in slices (slice_begin, slice_send, flush; the engine claims it in the
 * order of print_sort_key and reads its rows 250 at a time, so that neither side holds the
 * batch's notices). What became of each letter (its digest, pages and place, or why it was
 * left out) goes back to the engine as a line of text (item_text), which it keeps beside the
 * batch in the database until the record asks for the outcomes (slice_outcomes). Each letter is
 * rendered as it arrives (letter.c, through the lane's letter cache: what the letters share is
 * shaped once and drawn once per batch as forms) into one cairo PDF surface written to
 * .B<ID>.pdf.tmp, its row written to the manifest
 * (.B<ID>.csv.tmp); flush closes them, writes a sha256sum file
 * (.B<ID>.sha256.tmp), fsyncs them, renames them to B<ID>.*.pending and fsyncs the
 * directory. Only then are the letters ACCEPTED ("batched", slice_outcomes). The engine
 * records the outcomes in one transaction and calls committed(), which renames the files to their
 * final, printable names. A crash in between leaves *.pending files that the recover op
 * (spool.c) reconciles with the database: finalised when recorded, orphaned (never printed) when
 * not. So no notice is batched without its letter on disk, and no letter reaches the
 * printer unless its notice is recorded batched (docs/mail.md).
 *
 * Never speaks SQL, never logs above debug.
 *
 * SECURITY: names and addresses are untrusted list values; letter.c draws them as plain
 * text. Batch files hold names and addresses: they are created 0640 (the print operator's
 * group may read them, nobody else), and a spool open to others or writable by its group is
 * refused at open (print_spool_check). The manifest quotes every field (RFC 4180) and prefixes a
 * field that a spreadsheet would run as a formula (= + - @) with an apostrophe.
 */
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/letter.h"
#include "crier/spool.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HAND_OFF_CHECK_SECONDS 2.0  /* a batch assembled longer than this re-checks holds */
#define BATCH_FILE_MODE        0640 /* names and addresses: owner and print group only */
#define SPOOL_FORBIDDEN_MODE   0027 /* group write, anything for others */

struct print_batch;
static struct print_batch *batch_free(struct print_batch *b);

/* One lane's session. */
struct print_session {
    const struct crier_config *config;
    struct letter_layout layout;
    struct letter_cache *letters;  /* what every letter shares, shaped and drawn once */
    char **return_address;         /* lines of channels.mail.return_address; NULL: the campaign's */
    bool imb;                      /* channels.mail.imb is configured */
    char pending_id[BATCH_ID_MAX]; /* the batch last written as *.pending, "" when none */
    struct print_batch *batch;     /* the batch the slice ops opened, until the next one */
};

/* Where a letter of the batch stands. */
enum item_state {
    ITEM_PENDING,  /* not handed over yet (or never: the batch failed first) */
    ITEM_DRAWN,    /* in the PDF and the manifest */
    ITEM_LEFT_OUT, /* not in the batch: its outcome is kind and detail */
};

/* One letter of the batch, while it is drawn and again while its outcome is made: handed to
 * the engine as text in between (item_text, item_parse), so that the batch holds none. */
struct print_item {
    unsigned char sha256[32];        /* the letter's digest (letter_digest), binary */
    char detail[OUTCOME_DETAIL_MAX]; /* left out: its outcome's words */
    int first_page;                  /* 1-based, in the batch PDF */
    int sequence;                    /* its row in the manifest, 1-based */
    short pages;                     /* the letter's pages, the duplex blank one included */
    unsigned char state;             /* enum item_state */
    unsigned char kind;              /* left out: enum crier_outcome_kind */
};

/* The PDF stream: written to a file and hashed as it goes, so it is never read back.
 * cairo hands its output over in pieces of some 20 bytes (about 110 per letter); they are
 * gathered here so that the file gets one write(2) per SINK_BUFFER bytes, not a system
 * call per piece (a tenth of a letter's CPU in crier run; docs/benchmarks.md). */
#define SINK_BUFFER (64 * 1024)

struct pdf_sink {
    int fd;
    EVP_MD_CTX *sha;
    int error;             /* first write error, as -errno */
    unsigned char *buffer; /* SINK_BUFFER bytes, not yet written nor hashed */
    size_t used;
};

static void strv_from_lines(const char *text, char ***ret)
{
    size_t count = 0;
    char **lines = xcalloc(1, sizeof(char *));
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0) {
            lines = xreallocarray(lines, count + 2, sizeof(char *));
            lines[count++] = xstrndup(p, len);
            lines[count] = NULL;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    *ret = lines;
}

/* date_of - the date (UTC) printed on a letter rendered at Unix time at. */
static void date_of(int64_t at, char date[11])
{
    time_t t = (time_t)at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, 11, "%Y-%m-%d", &tm);
}

static int print_spool_check(const char *spool, char *err, size_t err_size)
{
    struct stat st;
    if (str_empty(spool)) {
        snprintf(err, err_size, "channels.mail.spool is required");
        return -EINVAL;
    }
    if (stat(spool, &st) < 0) {
        int r = -errno;
        snprintf(err, err_size, "channels.mail.spool %s: %s", spool, strerror(-r));
        return r;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "channels.mail.spool %s is not a directory", spool);
        return -ENOTDIR;
    }
    if (st.st_mode & SPOOL_FORBIDDEN_MODE) {
        snprintf(err, err_size,
                 "channels.mail.spool %s has mode %04o: its letters carry names and addresses, "
                 "so it must be 0700 or 0750 (chmod o-rwx,g-w %s)",
                 spool, (unsigned)(st.st_mode & 07777), spool);
        return -EPERM;
    }
    if (access(spool, W_OK | X_OK) < 0) {
        int r = -errno;
        snprintf(err, err_size, "channels.mail.spool %s is not writable by uid %u: %s", spool,
                 (unsigned)geteuid(), strerror(-r));
        return r;
    }
    return 0;
}

/* batch_file_open - a new batch file, 0640 whatever the umask allows beyond it. */
static FILE *batch_file_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, BATCH_FILE_MODE);
    if (fd < 0)
        return NULL;
    FILE *file = fdopen(fd, "w");
    if (file == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return file;
}

/* session_setup - the letters' layout, return address and barcode from the configuration;
 * -EINVAL when the letters could not use them. */
static int session_setup(struct print_session *s, const struct crier_config *config)
{
    s->config = config;
    letter_layout_default(&s->layout);
    s->layout.duplex = config->mail.duplex != 0;
    s->layout.fold_marks = config->mail.fold_marks != 0;
    if (!str_empty(config->mail.return_address))
        strv_from_lines(config->mail.return_address, &s->return_address);
    s->imb =
        config->mail.imb_barcode_id && config->mail.imb_service_type && config->mail.imb_mailer_id;
    char err[256];
    if (s->imb) {
        size_t mailer = strlen(config->mail.imb_mailer_id);
        struct letter_imb imb = {config->mail.imb_barcode_id, config->mail.imb_service_type,
                                 config->mail.imb_mailer_id, mailer == 9 ? "000000" : "000000000",
                                 ""};
        char input[LETTER_IMB_INPUT_MAX];
        if (letter_imb_input(&imb, input, err, sizeof(err)) < 0)
            return -EINVAL;
    }
    return letter_layout_check(&s->layout, err, sizeof(err)) < 0 ? -EINVAL : 0;
}

static int print_open(struct crier_channel *channel, const struct crier_config *config)
{
    char spool_err[512];
    int r = print_spool_check(config->mail.spool, spool_err, sizeof(spool_err));
    if (r < 0)
        return r;
    struct print_session *s = xcalloc(1, sizeof(*s));
    /* a configuration the letters cannot use fails here, not as a letter's fault */
    r = session_setup(s, config);
    if (r < 0) {
        strv_free(s->return_address);
        free(s);
        return r;
    }
    s->letters = letter_cache_new(&s->layout, true);
    channel->state = s;
    return 0;
}

static void print_close(struct crier_channel *channel)
{
    struct print_session *s = channel->state;
    if (s == NULL)
        return;
    batch_free(s->batch);
    letter_cache_free(s->letters);
    strv_free(s->return_address);
    free(s);
}

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[n] == '\0';
}

/* us_zip_digits - "12345", "123456789" or "12345-6789" as 5 or 9 digits; false otherwise. */
static bool us_zip_digits(const char *zip, char out[10])
{
    if (zip == NULL)
        return false;
    size_t len = strlen(zip);
    if (len == 5 && is_digits(zip, 5)) {
        memcpy(out, zip, 6);
        return true;
    }
    if (len == 9 && is_digits(zip, 9)) {
        memcpy(out, zip, 10);
        return true;
    }
    if (len == 10 && zip[5] == '-' && is_digits(zip + 6, 4)) {
        char five[6];
        memcpy(five, zip, 5);
        five[5] = '\0';
        if (!is_digits(five, 5))
            return false;
        memcpy(out, zip, 5);
        memcpy(out + 5, zip + 6, 5);
        return true;
    }
    return false;
}

/* US mail: the US and the territories and freely associated states (letter.c agrees). */
static bool domestic(const char *country)
{
    static const char *const codes[] = {"US", "AS", "FM", "GU", "MH", "MP", "PR", "PW", "UM", "VI"};
    if (str_empty(country))
        return true;
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
        if (strcmp(country, codes[i]) == 0)
            return true;
    return false;
}

/* unmailable - why this address cannot be mailed, or NULL. */
static const char *unmailable(const struct crier_notice *n)
{
    char zip[10];
    if (!n->mailable)
        return "no mailable postal address";
    if (str_empty(n->address[0]))
        return "no street address";
    if (str_empty(n->address[2]))
        return "no city";
    if (!str_empty(n->country) &&
        (strlen(n->country) != 2 || n->country[0] < 'A' || n->country[0] > 'Z' ||
         n->country[1] < 'A' || n->country[1] > 'Z'))
        return "unknown country";
    if (domestic(n->country) && !us_zip_digits(n->address[4], zip))
        return "bad ZIP code for US mail";
    return NULL;
}

/* print_sort_key - the sort_key op: presort order, US mail first by ZIP (5-digit, then
 * 3-digit groups follow from the digits), then abroad by postal code, as strcmp orders
 * them; what cannot be mailed last (it is never drawn). A postal code that validates is at
 * most 10 bytes: the key's 23 hold any. */
static void print_sort_key(const struct crier_notice *n, unsigned char *key)
{
    key[0] = unmailable(n) ? 2 : domestic(n->country) ? 0 : 1;
    const char *zip = n->address[4] ? n->address[4] : "";
    size_t len = strlen(zip);
    memcpy(key + 1, zip, len < CHANNEL_SORT_KEY - 1 ? len : CHANNEL_SORT_KEY - 1);
}

/*
 * imb_serial - a letter's IMb serial, unique per mailer id for 45 days (USPS): the
 * campaign's last digits, then the recipient's sequence in the campaign. With a 6-digit
 * mailer id: 2 + 7 digits (100 campaigns of up to 10 million letters each before a serial
 * repeats); with a 9-digit one: 1 + 5 digits. A letter whose sequence does not fit gets
 * no barcode rather than a serial that may repeat. false: no serial.
 */
static bool imb_serial(const struct crier_config *config, const struct crier_notice *n,
                       char out[10])
{
    int64_t seq = notice_id_seq(n->id);
    bool long_mailer = strlen(config->mail.imb_mailer_id) == 9;
    int64_t limit = long_mailer ? 100000 : 10000000;
    if (seq < 0 || seq >= limit)
        return false;
    if (long_mailer)
        snprintf(out, 10, "%01lld%05lld", (long long)(n->campaign_id % 10), (long long)seq);
    else
        snprintf(out, 10, "%02lld%07lld", (long long)(n->campaign_id % 100), (long long)seq);
    return true;
}

/* pdf_sink_flush - what is gathered, hashed and written. 0 or the first write error. */
static int pdf_sink_flush(struct pdf_sink *sink)
{
    const unsigned char *data = sink->buffer;
    size_t length = sink->used;
    EVP_DigestUpdate(sink->sha, data, length);
    sink->used = 0;
    while (length > 0 && sink->error == 0) {
        ssize_t w = write(sink->fd, data, length);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            sink->error = -errno;
            break;
        }
        data += w;
        length -= (size_t)w;
    }
    return sink->error;
}

static cairo_status_t pdf_sink_write(void *closure, const unsigned char *data, unsigned int length)
{
    struct pdf_sink *sink = closure;
    while (length > 0 && sink->error == 0) {
        size_t room = SINK_BUFFER - sink->used;
        size_t take = length < room ? length : room;
        memcpy(sink->buffer + sink->used, data, take);
        sink->used += take;
        data += take;
        length -= (unsigned)take;
        if (sink->used == SINK_BUFFER)
            pdf_sink_flush(sink);
    }
    return sink->error ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

static void digest_finish(EVP_MD_CTX *ctx, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    hex_write(out, digest, len);
}

/* letter_digest - the letter's SHA-256: its exact address fields and rendered body (the
 * input of a deterministic renderer), hashed without rendering the letter twice. */
static void letter_digest(const struct crier_notice *n, const char *date, const char *body,
                          char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        abort();
    const char *fields[] = {n->name,       n->address[0], n->address[1], n->address[2],
                            n->address[3], n->address[4], n->country,    date};
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        const char *f = fields[i] ? fields[i] : "";
        EVP_DigestUpdate(ctx, f, strlen(f));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    EVP_DigestUpdate(ctx, "\n", 1);
    EVP_DigestUpdate(ctx, body, strlen(body));
    digest_finish(ctx, out);
    EVP_MD_CTX_free(ctx);
}

/* file_sync_close - fsync and close; -errno on failure, -EIO when an earlier write failed
 * (stdio dropped that data; the flush here may still succeed). */
static int file_sync_close(FILE *f)
{
    int r = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        r = -errno;
    else if (ferror(f))
        r = -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}

static char *spool_path(const char *spool, const char *id, const char *kind, bool temp)
{
    return temp ? xasprintf("%s/.B%s.%s.tmp", spool, id, kind)
                : xasprintf("%s/B%s.%s.pending", spool, id, kind);
}

static void remove_temps(const char *spool, const char *id)
{
    for (size_t k = 0; k < ARRAY_SIZE(batch_file_kinds); k++) {
        char *path = spool_path(spool, id, batch_file_kinds[k], true);
        (void)unlink(path);
        free(path);
    }
}

/* One batch on its way from claimed notices, handed over a slice at a time in print
 * order, to *.pending files; kept until the next batch (its outcomes are read after). */
struct print_batch {
    struct crier_channel *channel;
    struct print_session *s;
    char id[BATCH_ID_MAX];
    double started;
    size_t count; /* letters in the batch */
    size_t next;  /* the position of the next notice handed over */
    int64_t at;   /* one instant for the whole batch: printed date, recorded with each hash */
    char date[11];
    char *pdf_tmp, *csv_tmp, *sum_tmp;
    struct pdf_sink sink;
    cairo_surface_t *surface;
    cairo_t *cr;
    FILE *csv; /* the manifest, a row written as each letter is drawn */
    int total_pages, letters;
    int error;      /* the first failure: nothing of the batch is handed over */
    bool closed;    /* flush has run */
    bool published; /* its files are *.pending: its drawn letters are ACCEPTED */
    char pdf_sha[65];
};

/* batch_name - the lowest notice of the claim, and its attempt. */
static void batch_name(struct print_batch *b, const struct channel_batch *info)
{
    snprintf(b->id, sizeof(b->id), "%lld-%lld-%d", (long long)info->campaign_id,
             (long long)notice_id_seq(info->lowest_id), info->lowest_attempt);
}

/* batch_open - the temporary PDF, hashed as it is written, and its cairo surface; the
 * manifest with its header. */
static int batch_open(struct print_batch *b)
{
    const char *spool = b->s->config->mail.spool;
    b->at = (int64_t)time(NULL);
    date_of(b->at, b->date);
    b->pdf_tmp = spool_path(spool, b->id, "pdf", true);
    b->csv_tmp = spool_path(spool, b->id, "csv", true);
    b->sum_tmp = spool_path(spool, b->id, "sha256", true);
    b->sink.sha = EVP_MD_CTX_new();
    if (b->sink.sha == NULL || EVP_DigestInit_ex(b->sink.sha, EVP_sha256(), NULL) != 1)
        abort();
    b->sink.buffer = xmalloc(SINK_BUFFER);
    b->sink.fd = open(b->pdf_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, BATCH_FILE_MODE);
    if (b->sink.fd < 0)
        return -errno;
    b->csv = batch_file_open(b->csv_tmp);
    if (b->csv == NULL)
        return -errno;
    fputs("batch,sequence,notice_id,attempt,ref,name,address1,address2,city,region,postal_code,"
          "country,zip,pages,sheets,imb_serial,letter_sha256\n",
          b->csv);
    b->surface = cairo_pdf_surface_create_for_stream(
        pdf_sink_write, &b->sink, b->s->layout.page_width, b->s->layout.page_height);
    letter_pdf_metadata(b->surface, b->date);
    b->cr = cairo_create(b->surface);
    return 0;
}

/* letter_imb_of - the notice's barcode fields when it gets one (serial and zip are the
 * caller's buffers); false: no barcode. */
static bool letter_imb_of(const struct print_session *s, const struct crier_notice *notice,
                          char serial[10], char zip[10], struct letter_imb *imb)
{
    const struct crier_config *config = s->config;
    serial[0] = '\0';
    if (!s->imb || !domestic(notice->country) || !us_zip_digits(notice->address[4], zip) ||
        !imb_serial(config, notice, serial)) {
        serial[0] = '\0';
        return false;
    }
    *imb = (struct letter_imb){config->mail.imb_barcode_id, config->mail.imb_service_type,
                               config->mail.imb_mailer_id, serial, zip};
    return true;
}

/* One letter's input and the storage its strings point into. */
struct letter_parts {
    struct letter_input in;
    struct letter_imb imb;
    const char *fallback[2]; /* the campaign's organisation as the return address */
    char zip[10];
};

/* letter_parts_of - what letter.c needs to draw the notice's letter: the body as rendered,
 * date, address, return address and barcode (its serial written to serial). */
static void letter_parts_of(const struct print_session *s, const struct crier_notice *notice,
                            const char *date, const char *body, char serial[10],
                            struct letter_parts *p)
{
    const char *organisation = channel_meta(notice, "organisation");
    p->fallback[0] = organisation;
    p->fallback[1] = NULL;
    bool with_imb = letter_imb_of(s, notice, serial, p->zip, &p->imb);
    p->in = (struct letter_input){
        .return_address = s->return_address ? (const char *const *)s->return_address
                          : organisation    ? p->fallback
                                            : NULL,
        .name = notice->name,
        .country = notice->country,
        .date = date,
        .body = body,
        .imb = with_imb ? &p->imb : NULL,
    };
    memcpy(p->in.address, notice->address, sizeof(p->in.address));
}

/* item_leave_out - the letter is not in the batch; its outcome is kind, for why. */
static void item_leave_out(struct print_item *item, enum crier_outcome_kind kind, const char *why)
{
    item->state = ITEM_LEFT_OUT;
    item->kind = (unsigned char)kind;
    snprintf(item->detail, sizeof(item->detail), "%s", why);
}

/* hex_value - a lower-case hex digit's value; -1 for anything else. */
static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* hex_to_bytes - a letter_digest's 64 hex digits as 32 bytes (by hand, not sscanf: it runs
 * twice a letter, and stdio's per-byte cost showed in valgrind's instruction counts). */
static void hex_to_bytes(const char hex[65], unsigned char out[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        out[i] = (unsigned char)(hi < 0 || lo < 0 ? 0 : hi << 4 | lo);
    }
}

/* item_text - what the engine keeps of a letter handed over: "drawn SHA256 PAGES FIRST_PAGE
 * SEQUENCE" or "out KIND DETAIL" (the detail is the rest of the line: an outcome's words
 * never hold a newline, and one that did would only be cut there); NULL for one never
 * handed over. */
static char *item_text(const struct print_item *item)
{
    if (item->state == ITEM_DRAWN) {
        char sha[65];
        hex_write(sha, item->sha256, sizeof(item->sha256));
        return xasprintf("drawn %s %d %d %d", sha, item->pages, item->first_page, item->sequence);
    }
    if (item->state == ITEM_LEFT_OUT)
        return xasprintf("out %d %.*s", item->kind, (int)strcspn(item->detail, "\n"), item->detail);
    return NULL;
}

/* item_parse - item_text read back; false: not one of ours. */
static bool item_parse(const char *text, struct print_item *item)
{
    *item = (struct print_item){.state = ITEM_PENDING};
    char sha[65];
    int pages = 0, kind = 0, used = 0;
    if (sscanf(text, "drawn %64[0-9a-f] %d %d %d", sha, &pages, &item->first_page,
               &item->sequence) == 4 &&
        strlen(sha) == 64) {
        hex_to_bytes(sha, item->sha256);
        item->pages = (short)pages;
        item->state = ITEM_DRAWN;
        return true;
    }
    if (sscanf(text, "out %d %n", &kind, &used) == 1 && used > 0 && kind >= 0 &&
        kind <= UCHAR_MAX) {
        item->kind = (unsigned char)kind;
        snprintf(item->detail, sizeof(item->detail), "%s", text + used);
        item->state = ITEM_LEFT_OUT;
        return true;
    }
    return false;
}

/* item_sheets - "first-last" sheets of a letter: a sheet is two pages duplex, one simplex. */
static void item_sheets(const struct print_batch *b, const struct print_item *item, char *out,
                        size_t size)
{
    bool duplex = b->s->layout.duplex;
    int last_page = item->first_page + item->pages - 1;
    int first_sheet = duplex ? (item->first_page + 1) / 2 : item->first_page;
    int last_sheet = duplex ? (last_page + 1) / 2 : last_page;
    snprintf(out, size, "%d-%d", first_sheet, last_sheet);
}

/* manifest_row - one drawn letter's line of the manifest; -errno when stdio could not
 * write it out (a full spool). stdio drops what it held when a write fails, and a later
 * flush that succeeds does not say so: a manifest short of a buffer's worth of letters
 * would pass its own sha256sum. So the error is taken here, with the write's errno. */
static int manifest_row(struct print_batch *b, const struct crier_notice *notice,
                        const struct print_item *item, const char *serial)
{
    char number[32], sheets[48], attempt[16], notice_id[32], page_count[16], sha[65];
    snprintf(number, sizeof(number), "%d", item->sequence);
    snprintf(notice_id, sizeof(notice_id), "%lld", (long long)notice->id);
    snprintf(attempt, sizeof(attempt), "%d", notice->attempt);
    snprintf(page_count, sizeof(page_count), "%d", item->pages);
    item_sheets(b, item, sheets, sizeof(sheets));
    hex_write(sha, item->sha256, sizeof(item->sha256));
    char zip[10] = "";
    if (domestic(notice->country))
        us_zip_digits(notice->address[4], zip);
    const char *row[] = {b->id,
                         number,
                         notice_id,
                         attempt,
                         notice->ref,
                         notice->name,
                         notice->address[0],
                         notice->address[1],
                         notice->address[2],
                         notice->address[3],
                         notice->address[4],
                         str_empty(notice->country) ? "US" : notice->country,
                         zip,
                         page_count,
                         sheets,
                         serial,
                         sha};
    for (size_t c = 0; c < ARRAY_SIZE(row); c++)
        row[c] = row[c] ? row[c] : ""; /* every field quoted, an empty one too */
    errno = 0;
    csv_write_row(b->csv, row, ARRAY_SIZE(row), CSV_QUOTE_ALL);
    if (ferror(b->csv))
        return errno != 0 ? -errno : -EIO;
    return 0;
}

/* batch_letter - render one letter.md, draw it into the batch and write its manifest row.
 * 0: drawn, or left out with its outcome set; < 0: the surface is broken and the whole
 * batch must be retried. */
static int batch_letter(struct print_batch *b, const struct crier_notice *notice,
                        struct print_item *item)
{
    struct print_session *s = b->s;
    struct crier_channel *channel = b->channel;
    char err[OUTCOME_DETAIL_MAX - 32], why[OUTCOME_DETAIL_MAX];
    if (channel->may_hand_off && monotonic_seconds() - b->started > HAND_OFF_CHECK_SECONDS &&
        !channel->may_hand_off(channel->keepalive_data, notice)) {
        item_leave_out(item, OUTCOME_TEMPORARY, "taken back: a hold covers it now");
        return 0;
    }
    char *body = NULL;
    size_t body_len = 0;
    struct crier_notice rendered = *notice;
    rendered.content_time = b->at;
    if (channel_render(&rendered, "letter.md", false, &body, &body_len, err, sizeof(err)) < 0) {
        /* the campaign's templates, not the person: retry, never skip */
        snprintf(why, sizeof(why), "cannot render letter.md: %s", err);
        item_leave_out(item, OUTCOME_TEMPORARY, why);
        return 0;
    }
    struct letter_parts parts;
    char serial[10];
    letter_parts_of(s, notice, b->date, body, serial, &parts);
    int pages = 0;
    int r = letter_render_cached(b->cr, s->letters, &parts.in, &pages, err, sizeof(err));
    if (r == -EINVAL || r == -ENOSPC) {
        /* nothing was drawn: the person's data cannot be printed */
        snprintf(why, sizeof(why), "cannot print the letter: %s", err);
        item_leave_out(item, OUTCOME_PERMANENT, why);
        free(body);
        return 0;
    }
    if (r == 0) {
        char sha[65];
        letter_digest(notice, b->date, body, sha);
        hex_to_bytes(sha, item->sha256);
        item->state = ITEM_DRAWN;
        item->pages = (short)pages;
        item->first_page = b->total_pages + 1;
        item->sequence = ++b->letters;
        b->total_pages += pages;
        r = manifest_row(b, notice, item, serial);
    }
    free(body); /* memory must not grow with the batch: the hash is all we keep */
    return r;
}

/* batch_pdf_close - finish the PDF, its digest and fsync. */
static int batch_pdf_close(struct print_batch *b)
{
    cairo_destroy(b->cr);
    b->cr = NULL;
    cairo_surface_finish(b->surface);
    if (cairo_surface_status(b->surface) == CAIRO_STATUS_SUCCESS)
        pdf_sink_flush(&b->sink); /* the trailer cairo has just written, and what was left */
    if (cairo_surface_status(b->surface) != CAIRO_STATUS_SUCCESS || b->sink.error)
        return b->sink.error ? b->sink.error : -EIO;
    cairo_surface_destroy(b->surface);
    b->surface = NULL;
    digest_finish(b->sink.sha, b->pdf_sha);
    int fd = b->sink.fd;
    b->sink.fd = -1;
    if (fsync(fd) != 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return close(fd) != 0 ? -errno : 0;
}

/* batch_sums - the sha256sum file of the PDF and the manifest. */
static int batch_sums(struct print_batch *b)
{
    char csv_sha[65];
    int r = sha256_file_hex(b->csv_tmp, csv_sha);
    if (r < 0)
        return r;
    FILE *sum = batch_file_open(b->sum_tmp);
    if (sum == NULL)
        return -errno;
    fprintf(sum, "%s  B%s.pdf\n%s  B%s.csv\n", b->pdf_sha, b->id, csv_sha, b->id);
    return file_sync_close(sum);
}

/* batch_publish - durable: now visible as pending, csv last (batch.h). */
static int batch_publish(struct print_batch *b)
{
    const char *spool = b->s->config->mail.spool;
    for (size_t k = 0; k < ARRAY_SIZE(batch_file_kinds); k++) {
        char *from = spool_path(spool, b->id, batch_file_kinds[k], true);
        char *to = spool_path(spool, b->id, batch_file_kinds[k], false);
        int r = rename(from, to) == 0 ? 0 : -errno;
        free(from);
        free(to);
        if (r < 0)
            return r;
    }
    int dir = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0) {
        int r = -errno;
        if (dir >= 0)
            close(dir);
        /* not durable: never hand these letters over; the files become orphans */
        (void)batch_files_rename(spool, b->id, ".pending", ".orphan", NULL);
        return r;
    }
    close(dir);
    snprintf(b->s->pending_id, sizeof(b->s->pending_id), "%s", b->id);
    return 0;
}

/* batch_fail - nothing handed over: every letter that was going in is retried, those not
 * yet drawn too (slice_outcomes says so). */
static void batch_fail(struct print_batch *b, int r)
{
    /* a write that failed (a full spool) breaks the surface: name that, not cairo's echo */
    b->error = b->sink.error ? b->sink.error : r;
    remove_temps(b->s->config->mail.spool, b->id);
}

/* batch_free - the batch and everything it held; NULL. */
static struct print_batch *batch_free(struct print_batch *b)
{
    if (b == NULL)
        return NULL;
    if (b->cr)
        cairo_destroy(b->cr);
    if (b->surface)
        cairo_surface_destroy(b->surface);
    if (b->sink.fd >= 0)
        close(b->sink.fd);
    if (b->csv)
        fclose(b->csv);
    EVP_MD_CTX_free(b->sink.sha);
    FREE_MANY(b->sink.buffer, b->pdf_tmp, b->csv_tmp, b->sum_tmp);
    free(b);
    return NULL;
}

/* batch_finish - the PDF closed; when any letter went in, its manifest and sums, published
 * as *.pending. */
static int batch_finish(struct print_batch *b)
{
    int r = batch_pdf_close(b);
    if (r == 0 && b->letters == 0) {
        fclose(b->csv);
        b->csv = NULL;
        remove_temps(b->s->config->mail.spool, b->id);
        return 0;
    }
    if (r == 0) {
        FILE *csv = b->csv;
        b->csv = NULL;
        r = file_sync_close(csv);
    }
    if (r == 0)
        r = batch_sums(b);
    if (r == 0)
        r = batch_publish(b);
    b->published = r == 0;
    return r;
}

/* print_slice_begin - a new batch of info->count letters, named after its lowest notice;
 * the last one's record is over (committed or not), so it goes. A failure to open the
 * files fails the batch: every letter handed over is then TEMPORARY. */
static int print_slice_begin(struct crier_channel *channel, const struct channel_batch *info)
{
    struct print_session *s = channel->state;
    s->batch = batch_free(s->batch);
    s->pending_id[0] = '\0';
    struct print_batch *b = xcalloc(1, sizeof(*b));
    *b = (struct print_batch){
        .channel = channel,
        .s = s,
        /* from the claim: a hold placed while the engine ordered the batch counts too */
        .started = info->claimed_at > 0 ? info->claimed_at : monotonic_seconds(),
        .sink = {.fd = -1},
        .count = info->count,
    };
    s->batch = b;
    if (info->count == 0)
        return 0;
    batch_name(b, info);
    int r = batch_open(b);
    if (r < 0)
        batch_fail(b, r);
    return r;
}

/* print_slice_send - the next n letters in print order: each is drawn (and its manifest
 * row written) or left out with its outcome, and items[k] says which. < 0 once the batch
 * has failed. */
static int print_slice_send(struct crier_channel *channel, const struct crier_notice *notices,
                            size_t n, char **items)
{
    struct print_session *s = channel->state;
    struct print_batch *b = s->batch;
    if (b == NULL || b->closed || b->next + n > b->count)
        return -EINVAL;
    for (size_t k = 0; k < n && b->error == 0; k++) {
        struct print_item item = {.state = ITEM_PENDING};
        const char *why = unmailable(&notices[k]);
        int r = 0;
        if (why != NULL)
            item_leave_out(&item, notices[k].mailable ? OUTCOME_PERMANENT : OUTCOME_NO_ADDRESS,
                           why);
        else
            r = batch_letter(b, &notices[k], &item);
        if (r < 0) {
            batch_fail(b, r);
            break;
        }
        items[k] = item_text(&item);
        if (item.state == ITEM_DRAWN && channel->lease_keepalive)
            channel->lease_keepalive(channel->keepalive_data);
    }
    b->next += n;
    return b->error;
}

/* print_flush - the flush op: the batch the slice ops opened is closed, published or failed
 * whole. Nothing is open between batches (a batch is written in one go), so that is all. */
static int print_flush(struct crier_channel *channel)
{
    struct print_session *s = channel->state;
    struct print_batch *b = s->batch;
    if (b == NULL || b->closed)
        return 0;
    b->closed = true;
    if (b->error || b->count == 0)
        return b->error;
    int r = batch_finish(b);
    if (r < 0)
        batch_fail(b, r);
    return r;
}

/* print_slice_outcomes - the outcomes of the letters items describe: as each was left out;
 * TEMPORARY when the batch failed; ACCEPTED in the published batch. A letter never handed
 * over (or an item not ours) keeps the engine's TEMPORARY. */
static void print_slice_outcomes(struct crier_channel *channel, const char *const *items, size_t n,
                                 struct crier_outcome *outcomes)
{
    struct print_session *s = channel->state;
    struct print_batch *b = s->batch;
    for (size_t k = 0; b && k < n; k++) {
        struct print_item parsed = {.state = ITEM_PENDING};
        if (items[k] != NULL && !item_parse(items[k], &parsed))
            parsed.state = ITEM_PENDING; /* not ours: as if never handed over */
        const struct print_item *item = &parsed;
        struct crier_outcome *outcome = &outcomes[k];
        if (item->state == ITEM_LEFT_OUT) {
            outcome_set(outcome, (enum crier_outcome_kind)item->kind, "%s", item->detail);
        } else if (b->error) {
            outcome_set(outcome, OUTCOME_TEMPORARY, "print batch %s failed: %s", b->id,
                        strerror(-b->error));
        } else if (item->state == ITEM_DRAWN && b->published) {
            char sheets[48];
            item_sheets(b, item, sheets, sizeof(sheets));
            outcome_set(outcome, OUTCOME_ACCEPTED,
                        "batch %s letter %d/%d pages %d sheets %s pdf_sha256 %s", b->id,
                        item->sequence, b->letters, item->pages, sheets, b->pdf_sha);
            hex_write(outcome->content_sha256, item->sha256, sizeof(item->sha256));
            outcome->content_at = b->at;
            snprintf(outcome->transport_id, sizeof(outcome->transport_id), "%s", b->id);
        }
    }
}

/* print_committed - the letters are recorded batched: the files become printable. When
 * some outcomes came too late to be applied, the files stay pending for the recover
 * op's reconciliation (spool.c), which orphans them and returns the recorded letters to ready. */
static int print_committed(struct crier_channel *channel, bool all_recorded)
{
    struct print_session *s = channel->state;
    if (s->pending_id[0] == '\0')
        return 0;
    int r = all_recorded
                ? batch_files_rename(s->config->mail.spool, s->pending_id, ".pending", "", NULL)
                : -EAGAIN;
    s->pending_id[0] = '\0';
    s->batch = batch_free(s->batch); /* its outcomes are recorded */
    return r;
}

static bool print_reachable(const struct crier_notice *notice)
{
    return notice->mailable;
}

/* print_claim - a lane claims letters_per_batch letters, or what waited batch_window. */
static void print_claim(const struct crier_config *config, struct channel_claim *ret)
{
    ret->limit = config->mail.letters_per_batch;
    ret->window_seconds = config->mail.batch_window_seconds;
}

static int print_check(const struct crier_config *config, char *err, size_t err_size)
{
    return print_spool_check(config->mail.spool, err, err_size);
}

static int print_recover(const struct crier_config *config, const struct channel_recovery *engine,
                         FILE *report, long *ret_orphaned)
{
    return spool_recover(config->mail.spool, "mail", engine, report, ret_orphaned);
}

/* print_compose - the compose op: a letter's PDF page is one of a batch, so the channel
 * records the SHA-256 of its input instead (letter_digest: its address and rendered body,
 * at notice->content_time), and the content is that body, in Markdown. */
static int print_compose(const struct crier_config *config, const struct crier_notice *notice,
                         struct channel_content *ret, char *err, size_t err_size)
{
    char *body = NULL;
    size_t body_len = 0;
    int r = channel_render(notice, "letter.md", false, &body, &body_len, err, err_size);
    if (r < 0)
        return r;
    char date[11];
    date_of(notice->content_time ? notice->content_time : (int64_t)time(NULL), date);
    letter_digest(notice, date, body, ret->sha256);
    ret->bytes = body;
    ret->len = body_len;
    ret->extension = "md";
    return 0;
}

/* print_proof_print - one notice's letter as the mail channel would print it (layout,
 * return address, barcode and date as configured, today unless notice->content_time is
 * set), as a PDF of its own, for `campaign proof`; nothing is spooled. */
static int print_proof_print(const struct crier_config *config, const struct crier_notice *notice,
                             unsigned char **ret_pdf, size_t *ret_len, char *err, size_t err_size)
{
    struct print_session s = {0};
    int r = session_setup(&s, config);
    if (r < 0) {
        strv_free(s.return_address);
        return error_set(err, err_size, r,
                         "channels.mail: the letters cannot use this layout "
                         "or barcode (crier config check says why)");
    }
    struct crier_notice rendered = *notice;
    if (rendered.content_time == 0)
        rendered.content_time = (int64_t)time(NULL);
    char *body = NULL;
    size_t body_len = 0;
    r = channel_render(&rendered, "letter.md", false, &body, &body_len, err, err_size);
    if (r == 0) {
        char date[11], serial[10];
        date_of(rendered.content_time, date);
        struct letter_parts parts;
        letter_parts_of(&s, &rendered, date, body, serial, &parts);
        int pages = 0;
        r = letter_render_pdf(&s.layout, &parts.in, ret_pdf, ret_len, &pages, err, err_size);
    }
    free(body);
    strv_free(s.return_address);
    return r;
}

const struct crier_channel_ops mail_channel_ops = {
    .name = "mail",
    .accepted_state = STATE_BATCHED,
    .templates = channel_letter_templates,
    .reachable = print_reachable,
    .contact = CONTACT_POSTAL,
    .unreachable_why = "no mailable postal address",
    .batches = true,
    .claim = print_claim,
    .check = print_check,
    .recover = print_recover,
    .compose = print_compose,
    .proof = channel_proof_letter,
    .proof_file = "letter.md",
    .proof_print = print_proof_print,
    .proof_print_file = "letter.pdf",
    .open = print_open,
    .send = NULL, /* a batch comes in slices: */
    .slice_begin = print_slice_begin,
    .slice_send = print_slice_send,
    .flush = print_flush,
    .slice_outcomes = print_slice_outcomes,
    .sort_key = print_sort_key,
    .close = print_close,
    .committed = print_committed,
};
