/*
 * print.c - the mail channel: a claimed batch of notices becomes one print-ready PDF of
 * letters for #10 double-window envelopes, sorted by ZIP, with a manifest beside it.
 *
 * send() renders every letter (letter.c) into one cairo PDF surface written to
 * .B<ID>.pdf.tmp, writes the manifest (.B<ID>.csv.tmp) and a sha256sum file
 * (.B<ID>.sha256.tmp), fsyncs them, renames them to B<ID>.*.pending and fsyncs the
 * directory. Only then are the letters ACCEPTED ("batched"). The engine records the
 * outcomes in one transaction and calls committed(), which renames the files to their
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
 * field that a spreadsheet would run as a formula with an apostrophe (csv_write_row).
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
#include <jansson.h>
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

/* One lane's session. */
struct print_session {
    const struct crier_config *config;
    struct letter_layout layout;
    char **return_address;         /* lines of channels.mail.return_address; NULL: the campaign's */
    bool imb;                      /* channels.mail.imb is configured */
    char pending_id[BATCH_ID_MAX]; /* the batch last written as *.pending, "" when none */
};

/* One letter of the batch being assembled. */
struct print_item {
    size_t index; /* into notices[] */
    const char *sort_zip;
    bool domestic;
};

/* The PDF stream: written to a file and hashed as it goes, so it is never read back. */
struct pdf_sink {
    int fd;
    EVP_MD_CTX *sha;
    int error; /* first write error, as -errno */
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

static int print_open(struct crier_channel *channel, const struct crier_config *config)
{
    char spool_err[512];
    int r = print_spool_check(config->mail.spool, spool_err, sizeof(spool_err));
    if (r < 0)
        return r;
    struct print_session *s = xcalloc(1, sizeof(*s));
    s->config = config;
    letter_layout_default(&s->layout);
    s->layout.duplex = config->mail.duplex != 0;
    s->layout.fold_marks = config->mail.fold_marks != 0;
    if (!str_empty(config->mail.return_address))
        strv_from_lines(config->mail.return_address, &s->return_address);
    s->imb =
        config->mail.imb_barcode_id && config->mail.imb_service_type && config->mail.imb_mailer_id;
    /* a configuration the letters cannot use fails here, not as a letter's fault */
    char err[256];
    if (s->imb) {
        size_t mailer = strlen(config->mail.imb_mailer_id);
        struct letter_imb imb = {config->mail.imb_barcode_id, config->mail.imb_service_type,
                                 config->mail.imb_mailer_id, mailer == 9 ? "000000" : "000000000",
                                 ""};
        char input[LETTER_IMB_INPUT_MAX];
        if (letter_imb_input(&imb, input, err, sizeof(err)) < 0) {
            strv_free(s->return_address);
            free(s);
            return -EINVAL;
        }
    }
    if (letter_layout_check(&s->layout, err, sizeof(err)) < 0) {
        strv_free(s->return_address);
        free(s);
        return -EINVAL;
    }
    channel->state = s;
    return 0;
}

static void print_close(struct crier_channel *channel)
{
    struct print_session *s = channel->state;
    if (s == NULL)
        return;
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

static int item_compare(const void *a, const void *b)
{
    const struct print_item *x = a, *y = b;
    if (x->domestic != y->domestic)
        return x->domestic ? -1 : 1; /* US mail first, presorted; then abroad */
    int c = strcmp(x->sort_zip, y->sort_zip);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
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

static cairo_status_t pdf_sink_write(void *closure, const unsigned char *data, unsigned int length)
{
    struct pdf_sink *sink = closure;
    EVP_DigestUpdate(sink->sha, data, length);
    while (length > 0 && sink->error == 0) {
        ssize_t w = write(sink->fd, data, length);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            sink->error = -errno;
            break;
        }
        data += w;
        length -= (unsigned)w;
    }
    return sink->error ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

static void digest_finish(EVP_MD_CTX *ctx, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
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

/* file_sync_close - fsync and close; -errno on failure. */
static int file_sync_close(FILE *f)
{
    int r = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        r = -errno;
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

static int print_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                      struct crier_outcome *outcomes)
{
    struct print_session *s = channel->state;
    const struct crier_config *config = s->config;
    const char *spool = config->mail.spool;
    double started = monotonic_seconds();
    s->pending_id[0] = '\0';
    if (n == 0)
        return 0;

    /* the batch's name: the lowest notice of the claim, and its attempt */
    size_t lowest = 0;
    for (size_t i = 1; i < n; i++)
        if (notices[i].id < notices[lowest].id)
            lowest = i;
    char id[BATCH_ID_MAX];
    snprintf(id, sizeof(id), "%lld-%lld-%d", (long long)notices[lowest].campaign_id,
             (long long)notice_id_seq(notices[lowest].id), notices[lowest].attempt);

    /* what can be mailed, sorted by ZIP for presort (5-digit, then 3-digit groups) */
    struct print_item *items = xcalloc(n, sizeof(*items));
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *why = unmailable(&notices[i]);
        if (why != NULL) {
            outcome_set(&outcomes[i], notices[i].mailable ? OUTCOME_PERMANENT : OUTCOME_NO_ADDRESS,
                        "%s", why);
            continue;
        }
        items[count++] = (struct print_item){
            .index = i,
            .sort_zip = notices[i].address[4] ? notices[i].address[4] : "",
            .domestic = domestic(notices[i].country),
        };
    }
    qsort(items, count, sizeof(*items), item_compare);

    /* one instant for the whole batch: its printed date, recorded with each letter's hash */
    int64_t batch_time = (int64_t)time(NULL);
    char date[11];
    date_of(batch_time, date);
    char *pdf_tmp = spool_path(spool, id, "pdf", true);
    char *csv_tmp = spool_path(spool, id, "csv", true);
    char *sum_tmp = spool_path(spool, id, "sha256", true);
    struct pdf_sink sink = {.fd = -1};
    FILE *csv = NULL;
    cairo_surface_t *surface = NULL;
    cairo_t *cr = NULL;
    char **bodies = xcalloc(n, sizeof(char *));
    char(*letter_sha)[65] = xcalloc(n, sizeof(*letter_sha));
    int *pages = xcalloc(n, sizeof(int));
    int *first_page = xcalloc(n, sizeof(int));
    char(*serials)[10] = xcalloc(n, sizeof(*serials));
    int r = 0;

    sink.fd = open(pdf_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, BATCH_FILE_MODE);
    if (sink.fd < 0) {
        r = -errno;
        goto fail;
    }
    sink.sha = EVP_MD_CTX_new();
    if (sink.sha == NULL || EVP_DigestInit_ex(sink.sha, EVP_sha256(), NULL) != 1)
        abort();
    surface = cairo_pdf_surface_create_for_stream(pdf_sink_write, &sink, s->layout.page_width,
                                                  s->layout.page_height);
    letter_pdf_metadata(surface, date);
    cr = cairo_create(surface);

    const char *organisation = NULL;
    int total_pages = 0, letters = 0;
    for (size_t k = 0; k < count; k++) {
        size_t i = items[k].index;
        const struct crier_notice *notice = &notices[i];
        char err[OUTCOME_DETAIL_MAX - 32];
        if (channel->may_hand_off && monotonic_seconds() - started > HAND_OFF_CHECK_SECONDS &&
            !channel->may_hand_off(channel->keepalive_data, notice)) {
            outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "taken back: a hold covers it now");
            items[k].sort_zip = NULL; /* not in the batch */
            continue;
        }
        size_t body_len = 0;
        struct crier_notice rendered = *notice;
        rendered.content_time = batch_time;
        if (channel_render(&rendered, "letter.md", false, &bodies[i], &body_len, err, sizeof(err)) <
            0) {
            /* the campaign's templates, not the person: retry, never skip */
            outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "cannot render letter.md: %s", err);
            items[k].sort_zip = NULL;
            continue;
        }
        organisation = channel_meta(notice, "organisation");
        const char *fallback[] = {organisation, NULL};
        struct letter_imb imb = {0};
        char zip[10];
        bool with_imb = s->imb && domestic(notice->country) &&
                        us_zip_digits(notice->address[4], zip) &&
                        imb_serial(config, notice, serials[i]);
        if (with_imb)
            imb = (struct letter_imb){config->mail.imb_barcode_id, config->mail.imb_service_type,
                                      config->mail.imb_mailer_id, serials[i], zip};
        else
            serials[i][0] = '\0';
        struct letter_input in = {
            .return_address = s->return_address ? (const char *const *)s->return_address
                              : organisation    ? fallback
                                                : NULL,
            .name = notice->name,
            .country = notice->country,
            .date = date,
            .body = bodies[i],
            .imb = with_imb ? &imb : NULL,
        };
        memcpy(in.address, notice->address, sizeof(in.address));
        int letter_pages = 0;
        r = letter_render(cr, &s->layout, &in, &letter_pages, err, sizeof(err));
        if (r == -EINVAL || r == -ENOSPC) {
            /* nothing was drawn: the person's data cannot be printed */
            outcome_set(&outcomes[i], OUTCOME_PERMANENT, "cannot print the letter: %s", err);
            items[k].sort_zip = NULL;
            r = 0;
            continue;
        }
        if (r < 0)
            goto fail; /* the surface is broken: the whole batch is retried */
        letter_digest(notice, date, bodies[i], letter_sha[i]);
        free(bodies[i]); /* memory must not grow with the batch: the hash is all we keep */
        bodies[i] = NULL;
        pages[i] = letter_pages;
        first_page[i] = total_pages + 1;
        total_pages += letter_pages;
        letters++;
        if (channel->lease_keepalive)
            channel->lease_keepalive(channel->keepalive_data);
    }
    cairo_destroy(cr);
    cr = NULL;
    cairo_surface_finish(surface);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS || sink.error) {
        r = sink.error ? sink.error : -EIO;
        goto fail;
    }
    cairo_surface_destroy(surface);
    surface = NULL;
    char pdf_sha[65];
    digest_finish(sink.sha, pdf_sha);
    if (fsync(sink.fd) != 0 || close(sink.fd) != 0) {
        sink.fd = -1;
        r = -errno;
        goto fail;
    }
    sink.fd = -1;
    if (letters == 0) {
        remove_temps(spool, id);
        r = 0;
        goto out;
    }

    /* the manifest, in print order */
    csv = batch_file_open(csv_tmp);
    if (csv == NULL) {
        r = -errno;
        goto fail;
    }
    fputs("batch,sequence,notice_id,attempt,ref,name,address1,address2,city,region,postal_code,"
          "country,zip,pages,sheets,imb_serial,letter_sha256\n",
          csv);
    int sequence = 0;
    for (size_t k = 0; k < count; k++) {
        if (items[k].sort_zip == NULL)
            continue;
        size_t i = items[k].index;
        const struct crier_notice *notice = &notices[i];
        sequence++;
        int last_page = first_page[i] + pages[i] - 1;
        /* a sheet is two pages duplex, one simplex */
        int first_sheet = s->layout.duplex ? (first_page[i] + 1) / 2 : first_page[i];
        int last_sheet = s->layout.duplex ? (last_page + 1) / 2 : last_page;
        char number[32], sheets[48], attempt[16], notice_id[32], page_count[16];
        snprintf(number, sizeof(number), "%d", sequence);
        snprintf(notice_id, sizeof(notice_id), "%lld", (long long)notice->id);
        snprintf(attempt, sizeof(attempt), "%d", notice->attempt);
        snprintf(page_count, sizeof(page_count), "%d", pages[i]);
        snprintf(sheets, sizeof(sheets), "%d-%d", first_sheet, last_sheet);
        char zip[10] = "";
        if (domestic(notice->country))
            us_zip_digits(notice->address[4], zip);
        const char *row[] = {id,
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
                             serials[i],
                             letter_sha[i]};
        for (size_t c = 0; c < ARRAY_SIZE(row); c++)
            row[c] = row[c] ? row[c] : ""; /* every field quoted, an empty one too */
        csv_write_row(csv, row, ARRAY_SIZE(row), CSV_QUOTE_ALL);
        outcome_set(&outcomes[i], OUTCOME_ACCEPTED,
                    "batch %s letter %d/%d pages %d sheets %s pdf_sha256 %s", id, sequence, letters,
                    pages[i], sheets, pdf_sha);
        memcpy(outcomes[i].content_sha256, letter_sha[i], 65);
        outcomes[i].content_at = batch_time;
        snprintf(outcomes[i].transport_id, sizeof(outcomes[i].transport_id), "%s", id);
    }
    r = file_sync_close(csv);
    csv = NULL;
    if (r < 0)
        goto fail;
    char csv_sha[65];
    r = sha256_file_hex(csv_tmp, csv_sha);
    if (r < 0)
        goto fail;
    FILE *sum = batch_file_open(sum_tmp);
    if (sum == NULL) {
        r = -errno;
        goto fail;
    }
    fprintf(sum, "%s  B%s.pdf\n%s  B%s.csv\n", pdf_sha, id, csv_sha, id);
    r = file_sync_close(sum);
    if (r < 0)
        goto fail;

    /* durable: now visible as pending, csv last (batch.h) */
    for (size_t k = 0; k < ARRAY_SIZE(batch_file_kinds); k++) {
        char *from = spool_path(spool, id, batch_file_kinds[k], true);
        char *to = spool_path(spool, id, batch_file_kinds[k], false);
        int rr = rename(from, to) == 0 ? 0 : -errno;
        free(from);
        free(to);
        if (rr < 0) {
            r = rr;
            goto fail;
        }
    }
    int dir = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0) {
        r = -errno;
        if (dir >= 0)
            close(dir);
        /* not durable: never hand these letters over; the files become orphans */
        (void)batch_files_rename(spool, id, ".pending", ".orphan", NULL);
        goto fail;
    }
    close(dir);
    snprintf(s->pending_id, sizeof(s->pending_id), "%s", id);
    r = 0;
    goto out;

fail:
    /* a write that failed (a full spool) breaks the surface: name that, not cairo's echo */
    if (sink.error)
        r = sink.error;
    /* nothing handed over: every letter that was going in is retried */
    for (size_t k = 0; k < count; k++)
        if (items[k].sort_zip != NULL)
            outcome_set(&outcomes[items[k].index], OUTCOME_TEMPORARY, "print batch %s failed: %s",
                        id, strerror(-r));
    remove_temps(spool, id);
    r = 0;
out:
    if (cr)
        cairo_destroy(cr);
    if (surface)
        cairo_surface_destroy(surface);
    if (sink.fd >= 0)
        close(sink.fd);
    if (csv)
        fclose(csv);
    EVP_MD_CTX_free(sink.sha);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(letter_sha);
    free(pages);
    free(first_page);
    free(serials);
    free(items);
    free(pdf_tmp);
    free(csv_tmp);
    free(sum_tmp);
    return r;
}

/* print_committed - the letters are recorded batched: the files become printable. When
 * some outcomes came too late to be applied, the files stay pending for batch.c's
 * reconciliation, which orphans them and returns the recorded letters to ready. */
static int print_committed(struct crier_channel *channel, bool all_recorded)
{
    struct print_session *s = channel->state;
    if (s->pending_id[0] == '\0')
        return 0;
    int r = all_recorded
                ? batch_files_rename(s->config->mail.spool, s->pending_id, ".pending", "", NULL)
                : -EAGAIN;
    s->pending_id[0] = '\0';
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

const struct crier_channel_ops mail_channel_ops = {
    .name = "mail",
    .accepted_state = STATE_BATCHED,
    .templates = channel_letter_templates,
    .reachable = print_reachable,
    .unreachable_why = "no mailable postal address",
    .claim = print_claim,
    .check = print_check,
    .recover = print_recover,
    .compose = print_compose,
    .proof = channel_proof_letter,
    .proof_file = "letter.md",
    .open = print_open,
    .send = print_send,
    .flush = NULL,
    .poll = NULL,
    .close = print_close,
    .committed = print_committed,
};
