/*
 * audit.c - `crier audit log` and `crier audit show`: reading the dispatch log, and
 * proving what one person was sent.
 *
 * The proof: every email, fax and letter logged its SHA-256 and the instant its content
 * was rendered (content_at); the campaign's templates were copied into the database when it
 * started; rendering is deterministic. So the content can be rendered again from the
 * recorded inputs and its hash compared with the recorded one. What is not recorded is
 * the channel configuration (From address, fax letterhead): the re-render uses the
 * configuration crier is run with, and says so.
 *
 * Read-only throughout: these run as crier_auditor.
 */
#include "crier/audit.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/db.h"
#include "crier/render.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FETCH_ROWS 5000

/* ---- audit log ------------------------------------------------------------------------ */

/* The columns `audit log` prints, in order. The timestamps come as the server's own text,
 * which log_row_write writes as to_char() with DB_TIME_US would (db_time_us: asking the
 * server for it was a third of its work per row read). */
static const char log_select[] =
    "SELECT l.id, l.at, c.name, l.event, l.notice_id, l.recipient_ref, l.channel,"
    " l.from_state, l.to_state, l.to_channel, l.attempt, l.actor, l.detail, l.reason,"
    " l.content_sha256, l.hold_id, l.content_at"
    " FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id";
enum { LOG_AT = 1, LOG_CONTENT_AT = 16 };
static const char *const log_columns[] = {
    "id",      "at",         "campaign",       "event",      "notice_id",  "recipient_ref",
    "channel", "from_state", "to_state",       "to_channel", "attempt",    "actor",
    "detail",  "reason",     "content_sha256", "hold_id",    "content_at",
};
static const bool log_integer[ARRAY_SIZE(log_columns)] = {
    [0] = true,
    [4] = true,
    [10] = true,
    [15] = true,
};

static void csv_row(FILE *out, const char *const *values, size_t n)
{
    csv_write_row(out, values, n, CSV_QUOTE_ALL | CSV_CRLF);
}

/* table_field - a value on one line: control characters shown as spaces. */
static void table_field(FILE *out, const char *value, int width)
{
    int written = 0;
    for (const char *p = value ? value : "-"; *p; p++, written++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, out);
    for (; written < width; written++)
        fputc(' ', out);
}

static int log_row_write(struct crier_db *db, FILE *out, enum audit_format format, PGresult *result,
                         int row)
{
    size_t n = ARRAY_SIZE(log_columns);
    const char *v[ARRAY_SIZE(log_columns)];
    for (size_t i = 0; i < n; i++)
        v[i] = db_value(result, row, (int)i);
    char at[DB_TIME_MAX], content_at[DB_TIME_MAX];
    int r = db_time_us(db, v[LOG_AT], at, &v[LOG_AT]);
    if (r == 0)
        r = db_time_us(db, v[LOG_CONTENT_AT], content_at, &v[LOG_CONTENT_AT]);
    if (r < 0)
        return r;
    switch (format) {
    case AUDIT_CSV:
        csv_row(out, v, n);
        break;
    case AUDIT_JSON: {
        json_t *o = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, log_columns[i],
                                v[i] == NULL     ? json_null()
                                : log_integer[i] ? json_integer(strtoll(v[i], NULL, 10))
                                                 : json_string(v[i]));
        json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(o);
        break;
    }
    case AUDIT_TABLE: {
        /* id, time, event, ref, channel, from -> to, attempt, actor, detail/reason */
        table_field(out, v[0], 9);
        fputc(' ', out);
        table_field(out, v[1], 27);
        fputc(' ', out);
        table_field(out, v[3], 12);
        fputc(' ', out);
        table_field(out, v[5], 12);
        fputc(' ', out);
        table_field(out, v[6], 6);
        fputc(' ', out);
        char move[64];
        snprintf(move, sizeof(move), "%s->%s%s%s", v[7] ? v[7] : "", v[8] ? v[8] : "",
                 v[9] ? " @" : "", v[9] ? v[9] : "");
        table_field(out, move, 24);
        fputc(' ', out);
        table_field(out, v[11], 18);
        fputc(' ', out);
        table_field(out, v[12] ? v[12] : "", 0);
        if (v[13]) {
            fputs(" | ", out);
            table_field(out, v[13], 0);
        }
        fputc('\n', out);
        break;
    }
    }
    return 0;
}

/* Where audit log writes the cursor's rows (db_fetch_each's data). */
struct log_out {
    struct crier_db *db;
    FILE *out;
    enum audit_format format;
};

/* log_batch - a batch of log rows; a write that fails stops the walk. */
static int log_batch(void *data, PGresult *result)
{
    struct log_out *o = data;
    int r = 0;
    for (int row = 0; row < PQntuples(result) && r == 0; row++)
        r = log_row_write(o->db, o->out, o->format, result, row);
    return r < 0 ? r : ferror(o->out) ? -EIO : 0;
}

int audit_log(struct crier_db *db, const struct audit_log_query *q, FILE *out, long *ret_rows,
              char *err, size_t err_size)
{
    if (q->recipient && q->campaign == NULL) {
        snprintf(err, err_size, "--recipient needs a campaign (a ref is unique per campaign)");
        return -EINVAL;
    }
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (r < 0)
        goto db_error;
    const char *params[] = {q->campaign, q->recipient, q->channel, q->since, q->until};
    if (q->campaign) {
        r = db_exists(db, "SELECT 1 FROM crier.campaign WHERE name = $1", 1, params);
        if (r < 0)
            goto db_error;
        if (r == 0) {
            db_rollback(db);
            snprintf(err, err_size, "no campaign named '%s'", q->campaign);
            return -ENOENT;
        }
    }
    /* the recipient filter goes through the notice id, which the log is indexed on */
    char *declare = xasprintf(
        "DECLARE audit_rows NO SCROLL CURSOR FOR %s"
        " WHERE ($1::text IS NULL OR c.name = $1)"
        " AND ($2::text IS NULL OR l.notice_id = (SELECT n.id FROM crier.recipient rc"
        "  JOIN crier.notice n ON n.campaign_id = rc.campaign_id AND n.recipient_seq = rc.seq"
        "  WHERE rc.campaign_id = c.id AND rc.ref = $2)"
        "  OR (l.notice_id IS NULL AND l.recipient_ref = $2))"
        " AND ($3::text IS NULL OR l.channel = $3 OR l.to_channel = $3)"
        " AND ($4::timestamptz IS NULL OR l.at >= $4::timestamptz)"
        " AND ($5::timestamptz IS NULL OR l.at < $5::timestamptz)"
        " ORDER BY l.id",
        log_select);
    r = db_exec(db, declare, 5, params);
    free(declare);
    if (r < 0) {
        if (strcmp(db->sqlstate, "22007") == 0 || strcmp(db->sqlstate, "22008") == 0) {
            snprintf(err, err_size, "--since/--until: %s", db->error);
            db_rollback(db);
            return -EINVAL;
        }
        goto db_error;
    }
    if (q->format == AUDIT_CSV)
        csv_row(out, log_columns, ARRAY_SIZE(log_columns));
    long rows = 0;
    struct log_out o = {.db = db, .out = out, .format = q->format};
    r = db_fetch_each(db, "audit_rows", FETCH_ROWS, log_batch, &o, &rows);
    if (r < 0 && ferror(out)) {
        db_rollback(db);
        snprintf(err, err_size, "writing the log: %s", strerror(errno));
        return -EIO;
    }
    if (r < 0)
        goto db_error;
    db_rollback(db);
    if (ret_rows)
        *ret_rows = rows;
    return 0;
db_error:
    snprintf(err, err_size, "%s", db->error);
    db_rollback(db);
    return r;
}

/* ---- audit show ----------------------------------------------------------------------- */

/* The person and their notice, as the claim would have read them. */
struct person {
    PGresult *result;
    struct crier_notice notice;
    const char *state, *channel, *region;
    int64_t recipient_seq;
};

/* person_load's own columns, after the notice's */
enum person_column {
    PERSON_CAMPAIGN = NOTICE_COLUMN_COUNT,
    PERSON_STATE,
    PERSON_CHANNEL,
    PERSON_SEQ,
    PERSON_SOURCE_ROW,
    PERSON_REASONS,
};

static int person_load(struct crier_db *db, const char *campaign, const char *ref, struct person *p,
                       char *err, size_t err_size)
{
    const char *params[] = {campaign, ref};
    int r = db_query(
        db,
        "SELECT " NOTICE_COLUMNS(
            "n", "r") ", c.name, n.state, n.channel, r.seq,"
                      " r.source_row, n.reasons::text"
                      " FROM crier.campaign c JOIN crier.recipient r ON r.campaign_id = c.id"
                      " JOIN crier.notice n ON n.campaign_id = c.id AND n.recipient_seq = r.seq"
                      " WHERE c.name = $1 AND r.ref = $2",
        2, params, &p->result);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    if (PQntuples(p->result) == 0) {
        PQclear(p->result);
        p->result = NULL;
        snprintf(err, err_size, "no recipient '%s' in campaign '%s'", ref, campaign);
        return -ENOENT;
    }
    PGresult *res = p->result;
    struct crier_notice *n = &p->notice;
    notice_from_row(res, 0, n);
    n->attempt = n->channel_attempt = 0; /* set from each log row that is rendered again */
    n->campaign_name = PQgetvalue(res, 0, PERSON_CAMPAIGN);
    p->state = PQgetvalue(res, 0, PERSON_STATE);
    p->channel = PQgetvalue(res, 0, PERSON_CHANNEL);
    p->recipient_seq = db_int64(res, 0, PERSON_SEQ);
    p->region = n->address[3];
    return 0;
}

/* One content check: what was sent at a log row, rendered again. */
struct content_check {
    char sha[65];
    char err[512];
    bool verified;
    bool skipped; /* cannot be re-rendered (why in err) */
};

static int write_content(const char *out_dir, int64_t log_id, const char *channel,
                         const struct channel_content *content, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/%" PRId64 "-%s.%s", out_dir, log_id, channel, content->extension);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -errno;
    bool written = fwrite(content->bytes, 1, content->len, f) == content->len;
    if (fclose(f) != 0 || !written)
        return -EIO;
    return 0;
}

/* write_printed - for a channel whose content is not what it prints (a letter: its body,
 * one page of a batch), the notice as printed alone (its proof_print op, the PDF `campaign
 * proof` writes) at the same render time, as OUT_DIR/LOG-CHANNEL.pdf; nothing when the
 * channel prints nothing. Not hashed: the recorded SHA-256 is of the content. */
static void write_printed(const struct crier_config *config, const struct crier_notice *n,
                          const char *channel, const char *out_dir, int64_t log_id)
{
    const struct crier_channel_ops *ops = channel_ops_find(channel);
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[400];
    if (ops == NULL || ops->proof_print == NULL ||
        ops->proof_print(config, n, &pdf, &len, err, sizeof(err)) < 0)
        return;
    struct channel_content printed = {.bytes = pdf, .len = len, .extension = "pdf"};
    char path[4096];
    write_content(out_dir, log_id, channel, &printed, path, sizeof(path));
    free(pdf);
}

/* earlier_match - the first of the channel's earlier renderings (compose_earlier, newest
 * first) whose SHA-256 is the recorded one, into content (freed first); false if none is. */
static bool earlier_match(const struct crier_config *config, const struct crier_notice *n,
                          const char *channel, const char *recorded,
                          struct channel_content *content)
{
    for (int renderer = 1;; renderer++) {
        char err[400] = "";
        struct channel_content earlier;
        if (channel_compose_earlier(channel, config, n, renderer, &earlier, err, sizeof(err)) < 0) {
            channel_content_free(&earlier);
            return false;
        }
        if (strcmp(earlier.sha256, recorded) == 0) {
            channel_content_free(content);
            *content = earlier;
            return true;
        }
        channel_content_free(&earlier);
    }
}

/*
 * rerender - the content of notice n on channel as it was rendered at content_at, hashed
 * as the channel hashes it when it sends (its compose op). When that is not the recorded
 * SHA-256, the renderings of an earlier crier are tried too (compose_earlier): a fax an
 * older crier sent is checked against the fonts it was drawn in, and the note says so.
 */
static void rerender(const struct crier_config *config, const struct crier_notice *n,
                     const char *channel, const char *recorded, const char *out_dir, int64_t log_id,
                     struct content_check *check)
{
    char err[400] = "";
    struct channel_content content;
    int r = channel_compose(channel, config, n, &content, err, sizeof(err));
    if (r < 0) {
        check->skipped = true;
        snprintf(check->err, sizeof(check->err), "cannot render it again: %s",
                 err[0] ? err : strerror(-r));
        channel_content_free(&content);
        return;
    }
    check->verified = strcmp(content.sha256, recorded) == 0;
    char earlier[160] = "";
    if (!check->verified && earlier_match(config, n, channel, recorded, &content)) {
        check->verified = true;
        snprintf(earlier, sizeof(earlier), "rendered as an earlier crier did (%s)",
                 content.renderer ? content.renderer : "an earlier rendering");
        snprintf(check->err, sizeof(check->err), "%s", earlier);
    }
    memcpy(check->sha, content.sha256, sizeof(check->sha));
    if (out_dir && content.bytes) {
        char path[4096];
        if (write_content(out_dir, log_id, channel, &content, path, sizeof(path)) == 0)
            snprintf(check->err, sizeof(check->err), "re-rendered content%s%s: %s",
                     earlier[0] ? ", " : "", earlier, path);
        if (strcmp(content.extension, "pdf") != 0)
            write_printed(config, n, channel, out_dir, log_id);
    }
    channel_content_free(&content);
}

static void text_line(FILE *out, const char *label, const char *value)
{
    fprintf(out, "  %-14s ", label);
    for (const char *p = value ? value : "-"; *p; p++)
        fputc((unsigned char)*p < 0x20 ? ' ' : *p, out);
    fputc('\n', out);
}

/* The log rows about one notice, with what each claim said about a delay. */
static const char history_sql[] =
    "SELECT l.id, to_char(l.at AT TIME ZONE 'UTC', " DB_TIME_US "), l.event, l.channel,"
    " l.from_state, l.to_state, l.to_channel, l.attempt, l.actor, l.detail, l.reason,"
    " l.content_sha256, l.hold_id, extract(epoch FROM l.content_at)::bigint,"
    " (SELECT bool_or(d.reason LIKE 'delayed for law enforcement%') FROM crier.dispatch_log d"
    "  WHERE d.notice_id = l.notice_id AND d.attempt = l.attempt AND d.to_state = 'sending')"
    " FROM crier.dispatch_log l WHERE l.notice_id = $1 ORDER BY l.id";

/* The holds that covered the person, and how long each lasted (or has lasted). */
static const char holds_sql[] =
    "SELECT h.id, coalesce(h.region, h.recipient_ref, 'whole campaign'), h.form,"
    " to_char(h.placed_at AT TIME ZONE 'UTC', " DB_TIME_US "),"
    " to_char(h.lifted_at AT TIME ZONE 'UTC', " DB_TIME_US "),"
    " round(extract(epoch FROM coalesce(h.lifted_at, now()) - h.placed_at) / 86400, 2),"
    " h.lapsed, h.active"
    " FROM crier.hold_state(false) h WHERE h.campaign_id = $1"
    " AND crier.hold_covers(h.region, h.recipient_ref, $2, $3) ORDER BY h.id";

/* A person's corrected contacts (011_unreached.sql), by version: row k-1 is version k. */
static const char versions_sql[] =
    "SELECT name, email, fax, address1, address2, city, region, postal_code, country, mailable,"
    " to_char(at AT TIME ZONE 'UTC', " DB_TIME_US "), source, reason, by"
    " FROM crier.recipient_version WHERE campaign_id = $1 AND seq = $2 ORDER BY version";

/* with_version - n with the contacts of version (0: as loaded, n unchanged). */
static void with_version(struct crier_notice *n, PGresult *versions, int version)
{
    if (version <= 0 || version > PQntuples(versions))
        return;
    int row = version - 1;
    n->name = PQgetvalue(versions, row, 0);
    n->email = db_value(versions, row, 1);
    n->fax = db_value(versions, row, 2);
    for (int a = 0; a < 5; a++)
        n->address[a] = db_value(versions, row, 3 + a);
    n->country = PQgetvalue(versions, row, 8);
    n->mailable = strcmp(PQgetvalue(versions, row, 9), "t") == 0;
}

/* address_line - the five address lines and the country on one line. */
static void address_line(const char *const a[5], const char *country, char *buf, size_t size)
{
    snprintf(buf, size, "%s, %s%s%s %s %s %s", a[0], a[1], a[1][0] ? ", " : "", a[2], a[3], a[4],
             country);
}

/* version_text - version k's contacts on one line. */
static void version_print(FILE *out, PGresult *versions, int row)
{
    fprintf(out, "  version %d (%s, %s by %s: %s)\n", row + 1, PQgetvalue(versions, row, 11),
            PQgetvalue(versions, row, 10), PQgetvalue(versions, row, 13),
            PQgetvalue(versions, row, 12));
    text_line(out, "name", PQgetvalue(versions, row, 0));
    text_line(out, "email", db_value(versions, row, 1));
    text_line(out, "fax", db_value(versions, row, 2));
    char address[1024];
    const char *a[5];
    for (int k = 0; k < 5; k++)
        a[k] = db_value(versions, row, 3 + k) ? PQgetvalue(versions, row, 3 + k) : "";
    address_line(a, PQgetvalue(versions, row, 8), address, sizeof(address));
    text_line(out, "address", address);
}

/* history_sql's columns */
enum history_column {
    H_ID,
    H_AT,
    H_EVENT,
    H_CHANNEL,
    H_FROM,
    H_TO,
    H_TO_CHANNEL,
    H_ATTEMPT,
    H_ACTOR,
    H_DETAIL,
    H_REASON,
    H_SHA,
    H_HOLD,
    H_CONTENT_AT,
    H_DELAYED,
};

/* What `audit show` reads, in one snapshot, and where it writes. */
struct show {
    struct crier_db *db;
    const struct crier_config *config;
    const char *campaign, *ref, *out_dir;
    FILE *out;
    json_t *doc; /* --json: the document, printed at the end */
    struct person p;
    char id[32];
    PGresult *history, *holds, *versions;
    struct render_campaign *render;
    int render_r;
    char render_err[512];
    int verified, unverified;
};

/* show_read - the person, their log rows, holds and contact versions, and the campaign's
 * templates (a failure to load them is kept in render_err: each check says it). */
static int show_read(struct show *s, char *err, size_t err_size)
{
    struct crier_db *db = s->db;
    int r = person_load(db, s->campaign, s->ref, &s->p, err, err_size);
    if (r < 0)
        return r;
    snprintf(s->id, sizeof(s->id), "%" PRId64, s->p.notice.id);
    const char *history_params[] = {s->id};
    const char *hold_params[] = {DB_NUM(s->p.notice.campaign_id), s->p.region, s->ref};
    const char *version_params[] = {DB_NUM(s->p.notice.campaign_id), DB_NUM(s->p.recipient_seq)};
    if ((r = db_query(db, history_sql, 1, history_params, &s->history)) < 0 ||
        (r = db_query(db, holds_sql, 3, hold_params, &s->holds)) < 0 ||
        (r = db_query(db, versions_sql, 2, version_params, &s->versions)) < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    FILE *diag = fmemopen(s->render_err, sizeof(s->render_err) - 1, "w");
    s->render_r = render_campaign_load(db, s->config, s->p.notice.campaign_id, diag, &s->render);
    if (diag)
        fclose(diag);
    render_attach(&s->p.notice, s->render);
    return 0;
}

/* show_person_text - who, where they are now, their corrected contacts. */
static void show_person_text(struct show *s)
{
    FILE *out = s->out;
    const struct crier_notice *n = &s->p.notice;
    fprintf(out, "%s in campaign %s (notice %s, %s of the list)\n", s->ref, s->campaign, s->id,
            PQgetvalue(s->p.result, 0, PERSON_SOURCE_ROW));
    text_line(out, "name", n->name);
    text_line(out, "email", n->email);
    text_line(out, "fax", n->fax);
    char address[1024];
    const char *a[5];
    for (int k = 0; k < 5; k++)
        a[k] = n->address[k] ? n->address[k] : "";
    address_line(a, n->country, address, sizeof(address));
    text_line(out, "address", address);
    text_line(out, "now", s->p.state);
    text_line(out, "on channel", s->p.channel);
    if (PQntuples(s->versions) > 0)
        fputs("\ncontacts corrected since the load (the newest is used):\n", out);
    for (int k = 0; k < PQntuples(s->versions); k++)
        version_print(out, s->versions, k);
}

static json_t *person_json(struct show *s)
{
    PGresult *res = s->p.result;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}", "campaign", s->campaign,
                     "ref", s->ref, "name", s->p.notice.name, "source_row",
                     PQgetvalue(res, 0, PERSON_SOURCE_ROW), "state", s->p.state, "channel",
                     s->p.channel, "email", s->p.notice.email, "fax", s->p.notice.fax, "reasons",
                     PQgetvalue(res, 0, PERSON_REASONS));
}

/* show_holds - the holds that covered the person. */
static void show_holds(struct show *s)
{
    PGresult *holds = s->holds;
    json_t *hold_list = s->doc ? json_array() : NULL;
    if (!s->doc) {
        fputs("\nholds that covered them:\n", s->out);
        if (PQntuples(holds) == 0)
            fputs("  none\n", s->out);
    }
    for (int i = 0; i < PQntuples(holds); i++) {
        const char *lifted = db_value(holds, i, 4);
        if (s->doc)
            json_array_append_new(
                hold_list,
                json_pack("{s:I, s:s, s:s, s:s, s:s?, s:f, s:b, s:b}", "hold",
                          (json_int_t)db_int64(holds, i, 0), "scope", PQgetvalue(holds, i, 1),
                          "form", PQgetvalue(holds, i, 2), "placed_at", PQgetvalue(holds, i, 3),
                          "lifted_at", lifted, "days", strtod(PQgetvalue(holds, i, 5), NULL),
                          "lapsed", db_flag(holds, i, 6), "active", db_flag(holds, i, 7)));
        else
            fprintf(s->out, "  hold %s (%s, %s): placed %s, %s%s; %s days\n",
                    PQgetvalue(holds, i, 0), PQgetvalue(holds, i, 1), PQgetvalue(holds, i, 2),
                    PQgetvalue(holds, i, 3), lifted ? "lifted " : "still active",
                    lifted ? lifted : "", PQgetvalue(holds, i, 5));
    }
    if (s->doc)
        json_object_set_new(s->doc, "holds", hold_list);
}

static json_t *versions_json(PGresult *versions)
{
    json_t *list = json_array();
    for (int k = 0; k < PQntuples(versions); k++)
        json_array_append_new(
            list, json_pack("{s:i, s:s, s:s?, s:s?, s:s, s:s, s:s}", "version", k + 1, "name",
                            PQgetvalue(versions, k, 0), "email", db_value(versions, k, 1), "fax",
                            db_value(versions, k, 2), "at", PQgetvalue(versions, k, 10), "source",
                            PQgetvalue(versions, k, 11), "reason", PQgetvalue(versions, k, 12)));
    return list;
}

/* event_check - a transition row that recorded a content hash, rendered again with the
 * contacts of version (the one current when it was claimed); false for any other row. */
static bool event_check(struct show *s, int i, int version, struct content_check *check)
{
    PGresult *history = s->history;
    const char *channel = db_value(history, i, H_CHANNEL);
    const char *sha = db_value(history, i, H_SHA);
    memset(check, 0, sizeof(*check));
    if (!sha || !channel || strcmp(PQgetvalue(history, i, H_EVENT), "transition") != 0)
        return false;
    if (PQgetisnull(history, i, H_CONTENT_AT)) {
        check->skipped = true;
        snprintf(check->err, sizeof(check->err),
                 "cannot render it again: its render time was not recorded (sent before "
                 "schema version 4)");
    } else if (s->render_r < 0) {
        check->skipped = true;
        snprintf(check->err, sizeof(check->err), "cannot load the campaign's templates: %s",
                 s->render_err);
    } else {
        struct crier_notice n = s->p.notice;
        with_version(&n, s->versions, version);
        n.attempt = atoi(PQgetvalue(history, i, H_ATTEMPT));
        n.content_time = db_int64(history, i, H_CONTENT_AT);
        n.delayed = db_flag(history, i, H_DELAYED);
        rerender(s->config, &n, channel, sha, s->out_dir, db_int64(history, i, H_ID), check);
    }
    if (check->verified)
        s->verified++;
    else
        s->unverified++;
    return true;
}

static json_t *event_json(PGresult *history, int i, const struct content_check *check)
{
    json_t *e = json_pack(
        "{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?}", "id",
        (json_int_t)db_int64(history, i, H_ID), "at", PQgetvalue(history, i, H_AT), "event",
        PQgetvalue(history, i, H_EVENT), "channel", db_value(history, i, H_CHANNEL), "from_state",
        db_value(history, i, H_FROM), "to_state", db_value(history, i, H_TO), "to_channel",
        db_value(history, i, H_TO_CHANNEL), "attempt", db_value(history, i, H_ATTEMPT), "actor",
        PQgetvalue(history, i, H_ACTOR), "detail", db_value(history, i, H_DETAIL), "reason",
        db_value(history, i, H_REASON), "content_sha256", db_value(history, i, H_SHA));
    if (check)
        json_object_set_new(e, "content",
                            json_pack("{s:s, s:s?, s:s?}", "verdict",
                                      check->verified  ? "verified"
                                      : check->skipped ? "not checked"
                                                       : "DIFFERS",
                                      "rendered_sha256", check->sha[0] ? check->sha : NULL, "note",
                                      check->err[0] ? check->err : NULL));
    return e;
}

static void event_print(FILE *out, PGresult *history, int i, const struct content_check *check)
{
    const char *channel = db_value(history, i, H_CHANNEL);
    const char *from = db_value(history, i, H_FROM), *to = db_value(history, i, H_TO);
    const char *attempt = db_value(history, i, H_ATTEMPT);
    fprintf(out, "  %s %-10s %-6s %s->%s", PQgetvalue(history, i, H_AT),
            PQgetvalue(history, i, H_EVENT), channel ? channel : "-", from ? from : "",
            to ? to : "");
    if (db_value(history, i, H_TO_CHANNEL))
        fprintf(out, " (now on %s)", PQgetvalue(history, i, H_TO_CHANNEL));
    fprintf(out, " attempt %s by %s\n", attempt ? attempt : "-", PQgetvalue(history, i, H_ACTOR));
    if (db_value(history, i, H_DETAIL))
        text_line(out, "reply", PQgetvalue(history, i, H_DETAIL));
    if (db_value(history, i, H_REASON))
        text_line(out, "why", PQgetvalue(history, i, H_REASON));
    if (check == NULL)
        return;
    fprintf(out, "    content sha256 %s: %s\n", PQgetvalue(history, i, H_SHA),
            check->verified  ? "content verified (re-rendered, same SHA-256)"
            : check->skipped ? "NOT CHECKED"
                             : "CONTENT DIFFERS");
    if (!check->verified && check->sha[0])
        fprintf(out, "    re-rendered sha256 %s\n", check->sha);
    if (check->err[0])
        fprintf(out, "    %s\n", check->err);
}

/* show_history - the log rows, each sent content checked. The contacts each attempt used
 * are the version current when it was claimed (an amend holds the campaign locked, so a
 * claim's log row falls before or after it, by id). */
static void show_history(struct show *s)
{
    PGresult *history = s->history;
    int version_now = 0, version_claimed = 0;
    json_t *events = s->doc ? json_array() : NULL;
    if (!s->doc)
        fputs("\nhistory (dispatch log):\n", s->out);
    for (int i = 0; i < PQntuples(history); i++) {
        if (strcmp(PQgetvalue(history, i, H_EVENT), "amend") == 0 && db_value(history, i, H_DETAIL))
            version_now = atoi(PQgetvalue(history, i, H_DETAIL) + strlen("version "));
        /* a claim: a transition into sending (an amend of a notice in flight is logged
         * sending -> sending too, and the attempt in flight keeps the contacts it had) */
        if (strcmp(PQgetvalue(history, i, H_EVENT), "transition") == 0 &&
            db_value(history, i, H_TO) && strcmp(PQgetvalue(history, i, H_TO), "sending") == 0)
            version_claimed = version_now;
        struct content_check check;
        bool checked = event_check(s, i, version_claimed, &check);
        if (s->doc)
            json_array_append_new(events, event_json(history, i, checked ? &check : NULL));
        else
            event_print(s->out, history, i, checked ? &check : NULL);
    }
    if (s->doc)
        json_object_set_new(s->doc, "history", events);
}

/* show_end - how many contents were verified; the JSON document. */
static void show_end(struct show *s)
{
    FILE *out = s->out;
    if (s->doc) {
        json_object_set_new(s->doc, "contents_verified", json_integer(s->verified));
        json_object_set_new(s->doc, "contents_not_verified", json_integer(s->unverified));
        json_dumpf(s->doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        return;
    }
    fprintf(out, "\n%d content%s verified, %d not\n", s->verified, s->verified == 1 ? "" : "s",
            s->unverified);
    if (s->unverified)
        fputs("(a re-render uses the templates copied when the campaign started, the\n"
              " recorded render time and THIS configuration's channel settings: a changed\n"
              " From address or fax letterhead also shows as a difference)\n",
              out);
}

int audit_show(struct crier_db *db, const struct crier_config *config, const char *campaign,
               const char *ref, bool json, const char *out_dir, FILE *out, char *err,
               size_t err_size)
{
    if (out_dir && mkdir(out_dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, err_size, "%s: %s", out_dir, strerror(errno));
        return -EIO;
    }
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    struct show s = {.db = db,
                     .config = config,
                     .campaign = campaign,
                     .ref = ref,
                     .out_dir = out_dir,
                     .out = out};
    r = show_read(&s, err, err_size);
    if (r == 0) {
        if (json)
            s.doc = person_json(&s);
        else
            show_person_text(&s);
        show_holds(&s);
        if (json)
            json_object_set_new(s.doc, "contact_versions", versions_json(s.versions));
        show_history(&s);
        show_end(&s);
        r = s.unverified ? 1 : 0;
    }
    json_decref(s.doc);
    render_campaign_free(s.render);
    PQclear(s.history);
    PQclear(s.holds);
    PQclear(s.versions);
    PQclear(s.p.result);
    db_rollback(db);
    return r;
}
