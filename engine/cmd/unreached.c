/*
 * unreached.c - `crier audit find` (people by ref, contact or name) and `crier audit
 * unreached` (everyone not reached, whole campaign, streamed). docs/unreached.md.
 *
 * find matches what a load stored: the value given is normalised by the validators a load
 * uses (validate.c), so "Ann@Example.COM" finds ann@example.com and "(555) 010-0199" with
 * a country code finds +15550100199. Every key is an index probe per campaign partition
 * (011_unreached.sql), never a scan of a campaign. Earlier contacts (the loaded row and
 * every correction, crier.recipient_version) are searched too: a person is found by the
 * address that bounced as well as by the one that replaced it.
 *
 * Read-only throughout: these run as crier_auditor.
 */
#include "crier/unreached.h"
#include "crier/crier.h"
#include "crier/validate.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_ROWS 5000

/* ---- CSV with spreadsheet-formula guarding ------------------------------------------------ */

void csv_guarded(FILE *out, const char *value)
{
    if (value == NULL)
        return;
    bool formula = value[0] && strchr("=+-@\t\r", value[0]) != NULL;
    bool quote = formula || strpbrk(value, ",\"\r\n") != NULL;
    if (quote)
        fputc('"', out);
    if (formula)
        fputc('\'', out); /* shown as text by spreadsheets, never evaluated */
    for (const char *p = value; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    if (quote)
        fputc('"', out);
}

/* ---- find -------------------------------------------------------------------------------- */

/* like_prefix - value, LIKE's specials escaped, then '%': a prefix pattern. */
static char *like_prefix(const char *value, bool lower)
{
    char *out = xmalloc(2 * strlen(value) + 2);
    char *p = out;
    for (const char *s = value; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *p++ = '\\';
        *p++ = lower ? (char)tolower((unsigned char)*s) : *s;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

/* normalise - the value as a load would have stored it (or a LIKE pattern); NULL when it
 * cannot be one (why in err). */
static char *normalise(enum find_key key, const char *value, char *err, size_t err_size)
{
    char buffer[64];
    switch (key) {
    case FIND_REF:
        return xstrdup(value);
    case FIND_EMAIL: {
        struct recipient_input in = {{0}};
        in.field[FIELD_REF] = "-";
        in.field[FIELD_NAME] = "-";
        in.field[FIELD_EMAIL] = value;
        struct recipient_valid v;
        validate_recipient(&in, &v);
        char *email = v.has_email ? xstrdup(v.field[FIELD_EMAIL]) : NULL;
        if (email == NULL)
            snprintf(err, err_size, "--email '%s': %s", value,
                     v.note_count ? v.notes[0] : "not a valid address");
        recipient_valid_clear(&v);
        return email;
    }
    case FIND_FAX:
        if (validate_fax(value, buffer, sizeof(buffer)))
            return xstrdup(buffer);
        snprintf(err, err_size, "--fax '%s': not in E.164 form (+CC...)", value);
        return NULL;
    case FIND_POSTAL:
        if (validate_us_zip(value, buffer, sizeof(buffer)))
            return like_prefix(buffer, false); /* 12345 finds 12345-6789 too */
        if (str_empty(value)) {
            snprintf(err, err_size, "--postal: empty");
            return NULL;
        }
        {
            char *upper = xstrdup(value);
            for (char *p = upper; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            char *pattern = like_prefix(upper, false);
            pattern[strlen(pattern) - 1] = '\0'; /* exact: no trailing % */
            free(upper);
            return pattern;
        }
    case FIND_NAME:
        if (str_empty(value)) {
            snprintf(err, err_size, "--name: empty");
            return NULL;
        }
        return like_prefix(value, true);
    }
    return NULL;
}

/* The condition on x (crier.recipient or crier.recipient_version) for each key; each is
 * what one of 011_unreached.sql's indexes serves. */
static const char *find_condition(enum find_key key)
{
    switch (key) {
    case FIND_REF:
        return "x.ref = $1";
    case FIND_EMAIL:
        return "x.email = $1";
    case FIND_FAX:
        return "x.fax = $1";
    case FIND_POSTAL:
        return "x.postal_code LIKE $1";
    case FIND_NAME:
        return "(lower(x.name) LIKE $1 OR lower(split_part(x.name, ' ', -1)) LIKE $1)";
    }
    return "false";
}

/* The loaded rows through each campaign's partition (run-time pruning: one index probe per
 * campaign), the versions directly; then each person's current contacts and notice. */
#define FIND_SQL                                                                                   \
    "WITH m AS ("                                                                                  \
    " SELECT x.campaign_id, x.seq, 0 AS version FROM crier.campaign cc CROSS JOIN LATERAL"         \
    "  (SELECT x.campaign_id, x.seq FROM crier.recipient x WHERE x.campaign_id = cc.id AND %s) x"  \
    "  WHERE ($2::bigint IS NULL OR cc.id = $2::bigint)"                                           \
    " UNION ALL"                                                                                   \
    " SELECT x.campaign_id, x.seq, x.version FROM crier.recipient_version x WHERE %s"              \
    "  AND ($2::bigint IS NULL OR x.campaign_id = $2::bigint)),"                                   \
    " g AS (SELECT campaign_id, seq, array_agg(DISTINCT version ORDER BY version) AS matched"      \
    "  FROM m GROUP BY 1, 2)"                                                                      \
    " SELECT c.name, r.ref, r.name, r.email, r.fax, r.address1, r.address2, r.city, r.region,"     \
    " r.postal_code, r.country, r.version, n.state, n.channel, array_to_json(g.matched)::text"     \
    " FROM g JOIN crier.campaign c ON c.id = g.campaign_id"                                        \
    " CROSS JOIN LATERAL (SELECT * FROM crier.recipient_now r WHERE r.campaign_id = g.campaign_id" \
    "  AND r.seq = g.seq OFFSET 0) r"                                                              \
    " CROSS JOIN LATERAL (SELECT n.state, n.channel FROM crier.notice n"                           \
    "  WHERE n.campaign_id = g.campaign_id AND n.id = g.campaign_id * 4294967296 + g.seq"          \
    "  OFFSET 0) n"                                                                                \
    " ORDER BY c.name, g.seq"

static const char *const find_columns[] = {
    "campaign", "ref",      "name",  "email",   "fax",
    "address1", "address2", "city",  "region",  "postal_code",
    "country",  "version",  "state", "channel", "matched_versions",
};

static void find_row(FILE *out, bool json, json_t *array, PGresult *res, int row)
{
    const char *v[ARRAY_SIZE(find_columns)];
    for (size_t i = 0; i < ARRAY_SIZE(find_columns); i++)
        v[i] = PQgetisnull(res, row, (int)i) ? NULL : PQgetvalue(res, row, (int)i);
    if (json) {
        json_t *o = json_object();
        for (size_t i = 0; i < ARRAY_SIZE(find_columns); i++) {
            json_t *value = v[i] == NULL ? json_null()
                            : i == 11    ? json_integer(strtoll(v[i], NULL, 10))
                            : i == 14    ? json_loads(v[i], 0, NULL)
                                         : json_string(v[i]);
            json_object_set_new(o, find_columns[i], value ? value : json_null());
        }
        json_array_append_new(array, o);
        return;
    }
    fprintf(out, "%s %s: %s\n", v[0], v[1], v[2]);
    fprintf(out, "  notice    %s on %s\n", v[12], v[13]);
    fprintf(out, "  email     %s\n  fax       %s\n", v[3] ? v[3] : "-", v[4] ? v[4] : "-");
    fprintf(out, "  address   %s%s%s, %s %s %s %s\n", v[5] ? v[5] : "", v[6] ? ", " : "",
            v[6] ? v[6] : "", v[7] ? v[7] : "", v[8] ? v[8] : "", v[9] ? v[9] : "", v[10]);
    fprintf(out, "  contacts  version %s (0 = as loaded); matched in versions %s\n", v[11], v[14]);
}

static int campaign_id_of(struct crier_db *db, const char *name, char *id, size_t id_size)
{
    const char *params[] = {name};
    PGresult *res = NULL;
    int r = db_query(db, "SELECT id FROM crier.campaign WHERE name = $1", 1, params, &res);
    if (r < 0)
        return r;
    bool found = PQntuples(res) > 0;
    if (found)
        snprintf(id, id_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found)
        snprintf(db->error, sizeof(db->error), "no campaign named '%s'", name);
    return found ? 0 : -ENOENT;
}

/* Where a cursor's rows are written (db_fetch_each's data). */
struct rows_out {
    FILE *out;
    bool json;
    json_t *array;
    enum unreached_format format;
};

static int find_batch(void *data, PGresult *res)
{
    struct rows_out *o = data;
    for (int i = 0; i < PQntuples(res); i++)
        find_row(o->out, o->json, o->array, res, i);
    return 0;
}

int audit_find(struct crier_db *db, const struct find_query *q, FILE *out, long *ret_found,
               char *err, size_t err_size)
{
    char *value = normalise(q->key, q->value, err, err_size);
    if (value == NULL)
        return -EINVAL;
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    char id[32] = "";
    if (r == 0 && q->campaign)
        r = campaign_id_of(db, q->campaign, id, sizeof(id));
    const char *condition = find_condition(q->key);
    char *full = xasprintf("DECLARE found NO SCROLL CURSOR FOR " FIND_SQL, condition, condition);
    const char *params[] = {value, id[0] ? id : NULL};
    if (r == 0)
        r = db_exec(db, full, 2, params);
    free(full);
    json_t *array = q->json ? json_array() : NULL;
    long found = 0;
    struct rows_out o = {.out = out, .json = q->json, .array = array};
    if (r == 0)
        r = db_fetch_each(db, "found", FETCH_ROWS, find_batch, &o, &found);
    if (r < 0)
        snprintf(err, err_size, "%s", db->error);
    else if (q->json) {
        json_dumpf(array, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
    }
    json_decref(array);
    db_rollback(db);
    free(value);
    *ret_found = found;
    return r;
}

/* ---- unreached ---------------------------------------------------------------------------- */

/* Undeliverable notices through notice_unreached, returned letters through
 * dispatch_log_returned (a letter counts as returned when it came back after the attempt
 * that mailed it, and nothing sent it again since); the last attempt of each through
 * dispatch_log_notice. Each is a probe by key. */
static const char unreached_sql[] =
    "DECLARE unreached NO SCROLL CURSOR FOR"
    " WITH n AS ("
    " SELECT n.id, n.recipient_seq, n.state, n.channel, n.attempt, n.reasons"
    "  FROM crier.notice n WHERE n.campaign_id = $1 AND n.state = 'undeliverable'"
    " UNION"
    " SELECT n.id, n.recipient_seq, n.state, n.channel, n.attempt, n.reasons"
    "  FROM crier.dispatch_log d JOIN crier.notice n ON n.campaign_id = $1 AND n.id = d.notice_id"
    "  WHERE d.campaign_id = $1 AND d.event = 'returned' AND n.state = 'mailed'"
    "  AND d.attempt = n.attempt)"
    " SELECT r.ref, r.name,"
    " CASE WHEN n.state = 'mailed' THEN 'returned'"
    "  WHEN n.attempt = 0 THEN 'no usable contact' ELSE 'undeliverable' END,"
    " coalesce(nullif(array_to_string(n.reasons, '; '), ''), l.reason, l.detail),"
    " n.state, n.channel, n.attempt,"
    " to_char(l.at AT TIME ZONE 'UTC', " DB_TIME_S "), l.event, l.channel,"
    " l.to_state, l.detail, r.email, r.fax, r.address1, r.address2, r.city, r.region,"
    " r.postal_code, r.country, r.version"
    " FROM n CROSS JOIN LATERAL (SELECT * FROM crier.recipient_now r WHERE r.campaign_id = $1"
    "  AND r.seq = n.recipient_seq OFFSET 0) r"
    " LEFT JOIN LATERAL (SELECT d.at, d.event, d.channel, d.to_state, d.detail, d.reason"
    "  FROM crier.dispatch_log d WHERE d.notice_id = n.id"
    "  AND d.event IN ('transition', 'bounce', 'returned') AND d.attempt > 0"
    "  ORDER BY d.id DESC LIMIT 1) l ON true"
    " ORDER BY n.id";

static const char *const unreached_columns[] = {
    "ref",          "name",         "why",
    "reason",       "state",        "channel",
    "attempts",     "last_at",      "last_event",
    "last_channel", "last_outcome", "last_detail",
    "email",        "fax",          "address1",
    "address2",     "city",         "region",
    "postal_code",  "country",      "contacts_version",
};

static void unreached_row(FILE *out, enum unreached_format format, PGresult *res, int row)
{
    size_t n = ARRAY_SIZE(unreached_columns);
    if (format == UNREACHED_CSV) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            csv_guarded(out, PQgetisnull(res, row, (int)i) ? NULL : PQgetvalue(res, row, (int)i));
        }
        fputs("\r\n", out);
        return;
    }
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *v = PQgetisnull(res, row, (int)i) ? NULL : PQgetvalue(res, row, (int)i);
        bool integer = i == 6 || i == 20;
        json_object_set_new(o, unreached_columns[i],
                            v == NULL ? json_null()
                            : integer ? json_integer(strtoll(v, NULL, 10))
                                      : json_string(v));
    }
    json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(o);
}

/* unreached_batch - a batch of rows; a write that fails stops the walk. */
static int unreached_batch(void *data, PGresult *res)
{
    struct rows_out *o = data;
    for (int i = 0; i < PQntuples(res); i++)
        unreached_row(o->out, o->format, res, i);
    return ferror(o->out) ? -EIO : 0;
}

int audit_unreached(struct crier_db *db, const char *campaign, enum unreached_format format,
                    FILE *out, long *ret_rows, char *err, size_t err_size)
{
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    char id[32] = "";
    if (r == 0)
        r = campaign_id_of(db, campaign, id, sizeof(id));
    const char *params[] = {id};
    if (r == 0)
        r = db_exec(db, unreached_sql, 1, params);
    if (r == 0 && format == UNREACHED_CSV) {
        for (size_t i = 0; i < ARRAY_SIZE(unreached_columns); i++)
            fprintf(out, "%s%s", i ? "," : "", unreached_columns[i]);
        fputs("\r\n", out);
    }
    long rows = 0;
    struct rows_out o = {.out = out, .format = format};
    if (r == 0)
        r = db_fetch_each(db, "unreached", FETCH_ROWS, unreached_batch, &o, &rows);
    if (r < 0 && ferror(out)) {
        snprintf(err, err_size, "writing the list: %s", strerror(errno));
        db_rollback(db);
        return -EIO;
    }
    if (r < 0)
        snprintf(err, err_size, "%s", db->error);
    db_rollback(db);
    *ret_rows = rows;
    return r;
}
