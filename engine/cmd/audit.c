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
#include "crier/render.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FETCH_ROWS "5000"
#define TS(col)    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* ---- audit log ------------------------------------------------------------------------ */

/* The columns `audit log` prints, in order; the first SEAL_FIELDS are the sealed ones. */
static const char log_select[] = "SELECT l.id, " TS(
    "l.at") ", c.name, l.event, l.notice_id, l.recipient_ref, l.channel,"
            " l.from_state, l.to_state, l.to_channel, l.attempt, l.actor, l.detail, l.reason,"
            " l.content_sha256, l.hold_id, " TS(
                "l.content_at") " FROM crier.dispatch_log l"
                                " JOIN crier.campaign c ON c.id = l.campaign_id";
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

static void log_row_write(FILE *out, enum audit_format format, PGresult *result, int row)
{
    size_t n = ARRAY_SIZE(log_columns);
    const char *v[ARRAY_SIZE(log_columns)];
    for (size_t i = 0; i < n; i++)
        v[i] = PQgetisnull(result, row, (int)i) ? NULL : PQgetvalue(result, row, (int)i);
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
        PGresult *found = NULL;
        r = db_query(db, "SELECT 1 FROM crier.campaign WHERE name = $1", 1, params, &found);
        if (r < 0)
            goto db_error;
        bool exists = PQntuples(found) > 0;
        PQclear(found);
        if (!exists) {
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
    for (;;) {
        PGresult *result = NULL;
        r = db_query(db, "FETCH " FETCH_ROWS " FROM audit_rows", 0, NULL, &result);
        if (r < 0)
            goto db_error;
        int n = PQntuples(result);
        for (int row = 0; row < n; row++)
            log_row_write(out, q->format, result, row);
        rows += n;
        PQclear(result);
        if (n == 0)
            break;
        if (ferror(out)) {
            db_rollback(db);
            snprintf(err, err_size, "writing the log: %s", strerror(errno));
            return -EIO;
        }
    }
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
    fwrite(content->bytes, 1, content->len, f);
    return fclose(f) == 0 ? 0 : -EIO;
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

/*
 * rerender - the content of notice n on channel as it was rendered at content_at, hashed
 * as the channel hashes it when it sends (its compose op).
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
    memcpy(check->sha, content.sha256, sizeof(check->sha));
    check->verified = strcmp(check->sha, recorded) == 0;
    if (out_dir && content.bytes) {
        char path[4096];
        if (write_content(out_dir, log_id, channel, &content, path, sizeof(path)) == 0)
            snprintf(check->err, sizeof(check->err), "re-rendered content: %s", path);
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
static const char history_sql[] = "SELECT l.id, " TS(
    "l.at") ", l.event, l.channel, l.from_state, l.to_state, l.to_channel,"
            " l.attempt, l.actor, l.detail, l.reason, l.content_sha256, l.hold_id,"
            " extract(epoch FROM l.content_at)::bigint,"
            " (SELECT bool_or(d.reason LIKE 'delayed for law enforcement%') FROM "
            "crier.dispatch_log d"
            "  WHERE d.notice_id = l.notice_id AND d.attempt = l.attempt AND d.to_state = "
            "'sending')"
            " FROM crier.dispatch_log l WHERE l.notice_id = $1 ORDER BY l.id";

/* The holds that covered the person, and how long each lasted (or has lasted). */
static const char holds_sql[] =
    "SELECT h.id, coalesce(h.region, h.recipient_ref, 'whole campaign'), h.form,"
    " " TS("h.placed_at") ", " TS(
        "h.lifted_at") ","
                       " round(extract(epoch FROM coalesce(h.lifted_at, now()) - h.placed_at) / "
                       "86400, 2),"
                       " h.lapsed, h.active"
                       " FROM crier.hold_state(false) h WHERE h.campaign_id = $1"
                       " AND crier.hold_covers(h.region, h.recipient_ref, $2, $3) ORDER BY h.id";

/* A person's corrected contacts (011_unreached.sql), by version: row k-1 is version k. */
static const char versions_sql[] =
    "SELECT name, email, fax, address1, address2, city, region, postal_code, country, mailable,"
    " " TS("at") ", source, reason, by FROM crier.recipient_version"
                 " WHERE campaign_id = $1 AND seq = $2 ORDER BY version";

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
    snprintf(address, sizeof(address), "%s, %s%s%s %s %s %s", a[0], a[1], a[1][0] ? ", " : "", a[2],
             a[3], a[4], PQgetvalue(versions, row, 8));
    text_line(out, "address", address);
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
    struct person p = {0};
    PGresult *history = NULL, *holds = NULL, *versions = NULL;
    struct render_campaign *render = NULL;
    json_t *doc = NULL;
    r = person_load(db, campaign, ref, &p, err, err_size);
    if (r < 0)
        goto done;
    char id[32], campaign_id[32];
    snprintf(id, sizeof(id), "%" PRId64, p.notice.id);
    snprintf(campaign_id, sizeof(campaign_id), "%" PRId64, p.notice.campaign_id);
    const char *history_params[] = {id};
    const char *hold_params[] = {campaign_id, p.region, ref};
    char seq[32];
    snprintf(seq, sizeof(seq), "%" PRId64, p.recipient_seq);
    const char *version_params[] = {campaign_id, seq};
    if ((r = db_query(db, history_sql, 1, history_params, &history)) < 0 ||
        (r = db_query(db, holds_sql, 3, hold_params, &holds)) < 0 ||
        (r = db_query(db, versions_sql, 2, version_params, &versions)) < 0) {
        snprintf(err, err_size, "%s", db->error);
        goto done;
    }
    char render_err[512] = "";
    FILE *diag = fmemopen(render_err, sizeof(render_err) - 1, "w");
    int render_r = render_campaign_load(db, config, p.notice.campaign_id, diag, &render);
    if (diag)
        fclose(diag);
    render_attach(&p.notice, render);

    PGresult *res = p.result;
    if (json) {
        doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}", "campaign", campaign,
                        "ref", ref, "name", p.notice.name, "source_row",
                        PQgetvalue(res, 0, PERSON_SOURCE_ROW), "state", p.state, "channel",
                        p.channel, "email", p.notice.email, "fax", p.notice.fax, "reasons",
                        PQgetvalue(res, 0, PERSON_REASONS));
    } else {
        fprintf(out, "%s in campaign %s (notice %s, %s of the list)\n", ref, campaign, id,
                PQgetvalue(res, 0, PERSON_SOURCE_ROW));
        text_line(out, "name", p.notice.name);
        text_line(out, "email", p.notice.email);
        text_line(out, "fax", p.notice.fax);
        char address[1024];
        const char *a[5];
        for (int k = 0; k < 5; k++)
            a[k] = p.notice.address[k] ? p.notice.address[k] : "";
        snprintf(address, sizeof(address), "%s, %s%s%s %s %s %s", a[0], a[1], a[1][0] ? ", " : "",
                 a[2], a[3], a[4], p.notice.country);
        text_line(out, "address", address);
        text_line(out, "now", p.state);
        text_line(out, "on channel", p.channel);
        if (PQntuples(versions) > 0)
            fputs("\ncontacts corrected since the load (the newest is used):\n", out);
        for (int k = 0; k < PQntuples(versions); k++)
            version_print(out, versions, k);
        fputs("\nholds that covered them:\n", out);
        if (PQntuples(holds) == 0)
            fputs("  none\n", out);
    }
    json_t *hold_list = json ? json_array() : NULL;
    for (int i = 0; i < PQntuples(holds); i++) {
        if (json) {
            json_array_append_new(
                hold_list,
                json_pack("{s:I, s:s, s:s, s:s, s:s?, s:f, s:b, s:b}", "hold",
                          (json_int_t)strtoll(PQgetvalue(holds, i, 0), NULL, 10), "scope",
                          PQgetvalue(holds, i, 1), "form", PQgetvalue(holds, i, 2), "placed_at",
                          PQgetvalue(holds, i, 3), "lifted_at", db_value(holds, i, 4), "days",
                          strtod(PQgetvalue(holds, i, 5), NULL), "lapsed",
                          strcmp(PQgetvalue(holds, i, 6), "t") == 0, "active",
                          strcmp(PQgetvalue(holds, i, 7), "t") == 0));
        } else {
            fprintf(out, "  hold %s (%s, %s): placed %s, %s%s; %s days\n", PQgetvalue(holds, i, 0),
                    PQgetvalue(holds, i, 1), PQgetvalue(holds, i, 2), PQgetvalue(holds, i, 3),
                    db_value(holds, i, 4) ? "lifted " : "still active",
                    db_value(holds, i, 4) ? PQgetvalue(holds, i, 4) : "", PQgetvalue(holds, i, 5));
        }
    }
    if (json)
        json_object_set_new(doc, "holds", hold_list);
    else
        fputs("\nhistory (dispatch log):\n", out);

    if (json) {
        json_t *list = json_array();
        for (int k = 0; k < PQntuples(versions); k++)
            json_array_append_new(
                list,
                json_pack("{s:i, s:s, s:s?, s:s?, s:s, s:s, s:s}", "version", k + 1, "name",
                          PQgetvalue(versions, k, 0), "email", db_value(versions, k, 1), "fax",
                          db_value(versions, k, 2), "at", PQgetvalue(versions, k, 10), "source",
                          PQgetvalue(versions, k, 11), "reason", PQgetvalue(versions, k, 12)));
        json_object_set_new(doc, "contact_versions", list);
    }

    /* the contacts each attempt used: the version current when it was claimed (an amend
     * holds the campaign locked, so a claim's log row falls before or after it, by id) */
    int version_now = 0, version_claimed = 0;
    int unverified = 0, verified = 0;
    json_t *events = json ? json_array() : NULL;
    for (int i = 0; i < PQntuples(history); i++) {
        const char *log_id = PQgetvalue(history, i, 0);
        if (strcmp(PQgetvalue(history, i, 2), "amend") == 0 && db_value(history, i, 9))
            version_now = atoi(PQgetvalue(history, i, 9) + strlen("version "));
        if (db_value(history, i, 5) && strcmp(PQgetvalue(history, i, 5), "sending") == 0)
            version_claimed = version_now;
        const char *channel = db_value(history, i, 3);
        const char *sha = db_value(history, i, 11);
        struct content_check check;
        memset(&check, 0, sizeof(check));
        bool checked = false;
        if (sha && channel && strcmp(PQgetvalue(history, i, 2), "transition") == 0) {
            checked = true;
            if (PQgetisnull(history, i, 13)) {
                check.skipped = true;
                snprintf(check.err, sizeof(check.err),
                         "cannot render it again: its render time was not recorded (sent before "
                         "schema version 4)");
            } else if (render_r < 0) {
                check.skipped = true;
                snprintf(check.err, sizeof(check.err), "cannot load the campaign's templates: %s",
                         render_err);
            } else {
                struct crier_notice n = p.notice;
                with_version(&n, versions, version_claimed);
                n.attempt = atoi(PQgetvalue(history, i, 7));
                n.content_time = strtoll(PQgetvalue(history, i, 13), NULL, 10);
                n.delayed = strcmp(PQgetvalue(history, i, 14), "t") == 0;
                rerender(config, &n, channel, sha, out_dir, strtoll(log_id, NULL, 10), &check);
            }
            if (check.verified)
                verified++;
            else
                unverified++;
        }
        if (json) {
            json_t *e = json_pack(
                "{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?}", "id",
                (json_int_t)strtoll(log_id, NULL, 10), "at", PQgetvalue(history, i, 1), "event",
                PQgetvalue(history, i, 2), "channel", channel, "from_state",
                db_value(history, i, 4), "to_state", db_value(history, i, 5), "to_channel",
                db_value(history, i, 6), "attempt", db_value(history, i, 7), "actor",
                PQgetvalue(history, i, 8), "detail", db_value(history, i, 9), "reason",
                db_value(history, i, 10), "content_sha256", sha);
            if (checked) {
                json_object_set_new(e, "content",
                                    json_pack("{s:s, s:s?, s:s?}", "verdict",
                                              check.verified  ? "verified"
                                              : check.skipped ? "not checked"
                                                              : "DIFFERS",
                                              "rendered_sha256", check.sha[0] ? check.sha : NULL,
                                              "note", check.err[0] ? check.err : NULL));
            }
            json_array_append_new(events, e);
            continue;
        }
        fprintf(out, "  %s %-10s %-6s %s->%s", PQgetvalue(history, i, 1), PQgetvalue(history, i, 2),
                channel ? channel : "-", db_value(history, i, 4) ? PQgetvalue(history, i, 4) : "",
                db_value(history, i, 5) ? PQgetvalue(history, i, 5) : "");
        if (db_value(history, i, 6))
            fprintf(out, " (now on %s)", PQgetvalue(history, i, 6));
        fprintf(out, " attempt %s by %s\n",
                db_value(history, i, 7) ? PQgetvalue(history, i, 7) : "-",
                PQgetvalue(history, i, 8));
        if (db_value(history, i, 9))
            text_line(out, "reply", PQgetvalue(history, i, 9));
        if (db_value(history, i, 10))
            text_line(out, "why", PQgetvalue(history, i, 10));
        if (checked) {
            fprintf(out, "    content sha256 %s: %s\n", sha,
                    check.verified  ? "content verified (re-rendered, same SHA-256)"
                    : check.skipped ? "NOT CHECKED"
                                    : "CONTENT DIFFERS");
            if (!check.verified && check.sha[0])
                fprintf(out, "    re-rendered sha256 %s\n", check.sha);
            if (check.err[0])
                fprintf(out, "    %s\n", check.err);
        }
    }
    if (json) {
        json_object_set_new(doc, "history", events);
        json_object_set_new(doc, "contents_verified", json_integer(verified));
        json_object_set_new(doc, "contents_not_verified", json_integer(unverified));
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
    } else {
        fprintf(out, "\n%d content%s verified, %d not\n", verified, verified == 1 ? "" : "s",
                unverified);
        if (unverified)
            fputs("(a re-render uses the templates copied when the campaign started, the\n"
                  " recorded render time and THIS configuration's channel settings: a changed\n"
                  " From address or fax letterhead also shows as a difference)\n",
                  out);
    }
    r = unverified ? 1 : 0;
done:
    json_decref(doc);
    render_campaign_free(render);
    PQclear(history);
    PQclear(holds);
    PQclear(versions);
    PQclear(p.result);
    db_rollback(db);
    return r;
}
