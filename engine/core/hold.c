/*
 * hold.c - law-enforcement holds: place, lift, confirm, list, show, check, and what status
 * and crier run say about them.
 *
 * Nothing here updates or deletes a hold: each event is one INSERT, and the database
 * stamps who and when, checks the document's SHA-256 and writes the dispatch-log rows
 * (engine/core/sql/002_holds.sql). Whether a hold is active is computed by crier.hold_state()
 * from those rows, the clock and holds.oral_lapse; the claim in queue.c obeys it. This
 * module must never change a notice: a hold that rewrote a million rows would be neither
 * fast nor a record (docs/holds.md).
 *
 * SECURITY: the text of a hold (authority, reason, evidence) and the attached document
 * come from the user and go to PostgreSQL only as parameters. What a role may do is the
 * database's decision; this module reports a refusal, it does not pre-empt it.
 */
#include "crier/hold.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/log.h"
#include "crier/rules.h"
#include "crier/notice.h"
#include "crier/jsonout.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_POLL_SECONDS 0.1
#define REFS_SHOWN         20 /* in-flight refs printed; the dispatch log has them all */

static bool release_lapsed; /* holds.oral_lapse: release */

void hold_policy_set(enum crier_oral_lapse oral_lapse)
{
    release_lapsed = oral_lapse == ORAL_LAPSE_RELEASE;
}

const char *hold_release_lapsed_param(void)
{
    return release_lapsed ? "t" : "f";
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* db_message - the server's message without libpq's "ERROR:  " prefix. */
static const char *db_message(const struct crier_db *db)
{
    const char *m = db->error;
    if (strncmp(m, "ERROR:  ", 8) == 0)
        return m + 8;
    return m;
}

/* refused - the message for a statement the database refused for lack of privilege. */
static void refused(const struct crier_db *db, const char *what, char *err, size_t err_size)
{
    snprintf(err, err_size,
             "the database refused to %s: %s (holds are placed, lifted and confirmed by "
             "members of the role crier_legal)",
             what, db_message(db));
}

/* failed - r, with err saying why: a refusal for lack of privilege names what was refused
 * (what NULL: no refusal is told apart), anything else is the server's message. */
static int failed(const struct crier_db *db, int r, const char *what, char *err, size_t err_size)
{
    if (r == -EACCES && what)
        refused(db, what, err, err_size);
    else
        snprintf(err, err_size, "%s", db_message(db));
    return r;
}

/* one_row - after a query that names one campaign or hold: r < 0 said as failed() says
 * it, a result without rows freed and -ENOENT with err set from fmt. */
static int one_row(const struct crier_db *db, int r, PGresult **result, const char *what, char *err,
                   size_t err_size, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int one_row(const struct crier_db *db, int r, PGresult **result, const char *what, char *err,
                   size_t err_size, const char *fmt, ...)
{
    if (r < 0)
        return failed(db, r, what, err, err_size);
    if (PQntuples(*result) > 0)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    PQclear(*result);
    *result = NULL;
    return -ENOENT;
}

/* query_row - a query of one parameter that must return a row; else -ENOENT, saying
 * before, the parameter and after ("no hold ", "7", " (crier hold list)"). */
static int query_row(struct crier_db *db, const char *sql, const char *param, PGresult **result,
                     const char *what, char *err, size_t err_size, const char *before,
                     const char *after)
{
    const char *params[] = {param};
    int r = db_query(db, sql, 1, params, result);
    return one_row(db, r, result, what, err, err_size, "%s%s%s", before, param, after);
}

static bool blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* hold_id_valid - a hold is named by its number. */
static bool hold_id_valid(const char *hold)
{
    if (str_empty(hold) || strlen(hold) > 18)
        return false;
    for (const char *p = hold; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

static void json_set_text(json_t *obj, const char *key, const char *text)
{
    json_object_set_new(obj, key, text ? json_string(text) : json_null());
}

/* ---- documents ------------------------------------------------------------------------- */

int hold_document_read(const char *path, struct hold_document *ret_document, char *err,
                       size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_size, "cannot read document %s: %s", path, strerror(e));
        return e == EACCES ? -EACCES : -ENOENT;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "document %s is not a regular file", path);
        fclose(f);
        return -ENOENT;
    }
    if (st.st_size > HOLD_DOCUMENT_MAX) {
        snprintf(err, err_size, "document %s is %lld bytes; at most %d are kept", path,
                 (long long)st.st_size, HOLD_DOCUMENT_MAX);
        fclose(f);
        return -E2BIG;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *bytes = xmalloc(size + 1);
    size_t got = fread(bytes, 1, size + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || got != size) {
        snprintf(err, err_size, "cannot read document %s: %s", path,
                 failed ? strerror(EIO) : "it changed while being read");
        free(bytes);
        return -ENOENT;
    }
    const char *slash = strrchr(path, '/');
    int r = hold_document_from_memory(slash ? slash + 1 : path, bytes, size, ret_document, err,
                                      err_size);
    free(bytes);
    return r;
}

int hold_document_from_memory(const char *name, const void *data, size_t size,
                              struct hold_document *ret_document, char *err, size_t err_size)
{
    if (size == 0) {
        snprintf(err, err_size, "document %s is empty", name);
        return -EINVAL;
    }
    if (size > HOLD_DOCUMENT_MAX) {
        snprintf(err, err_size, "document %s is %zu bytes; at most %d are kept", name, size,
                 HOLD_DOCUMENT_MAX);
        return -E2BIG;
    }
    const unsigned char *bytes = data;
    char *bytea = xmalloc(2 + 2 * size + 1);
    bytea[0] = '\\';
    bytea[1] = 'x';
    hex_write(bytea + 2, bytes, size);
    struct hold_document d = {.bytea = bytea, .size = size};
    sha256_hex(bytes, size, d.sha256);
    d.name = xstrdup(name);
    *ret_document = d;
    return 0;
}

void hold_document_clear(struct hold_document *document)
{
    if (document == NULL)
        return;
    free(document->name);
    free(document->bytea);
    memset(document, 0, sizeof(*document));
}

/* ---- checking what the user asked for ---------------------------------------------------- */

/* region_valid - a region code or name: letters, digits, spaces and hyphens. */
static bool region_valid(const char *region)
{
    size_t len = strlen(region);
    if (len == 0 || len > 64 || blank(region))
        return false;
    for (const char *p = region; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != ' ' && *p != '-')
            return false;
    return true;
}

int hold_options_check(const struct hold_place_options *o, char *err, size_t err_size)
{
    if (o->region && o->recipient) {
        snprintf(err, err_size,
                 "give --region or --recipient, not both (neither: the whole "
                 "campaign)");
        return -EINVAL;
    }
    if (o->region && !region_valid(o->region)) {
        snprintf(err, err_size,
                 "invalid region '%s': a region code such as CA (letters, digits, spaces "
                 "and hyphens)",
                 o->region);
        return -EINVAL;
    }
    if (o->recipient && blank(o->recipient)) {
        snprintf(err, err_size, "--recipient needs the recipient's ref");
        return -EINVAL;
    }
    const struct {
        const char *option, *value;
    } required[] = {
        {"--authority", o->authority}, {"--official", o->official}, {"--case", o->case_ref},
        {"--reason", o->reason},       {"--form", o->form},
    };
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (blank(required[i].value)) {
            snprintf(err, err_size, "%s must not be empty", required[i].option);
            return -EINVAL;
        }
    }
    if (strcmp(o->form, "written") != 0 && strcmp(o->form, "oral") != 0) {
        snprintf(err, err_size, "invalid --form '%s': written or oral", o->form);
        return -EINVAL;
    }
    if (o->as_name && blank(o->as_name)) {
        snprintf(err, err_size, "--as needs a name");
        return -EINVAL;
    }
    if (o->review_by) {
        if (!date_valid(o->review_by)) {
            snprintf(err, err_size, "invalid --review-by '%s': a date, YYYY-MM-DD", o->review_by);
            return -EINVAL;
        }
        char today[11];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
        if (strcmp(o->review_by, today) < 0) {
            snprintf(err, err_size, "--review-by %s is in the past (today is %s, UTC)",
                     o->review_by, today);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- place --------------------------------------------------------------------------- */

/* The notices of a hold's scope still in flight: ids and refs. The campaign is a constant
 * ($2), so that only its partition is read, through the index of notices in flight, and
 * each recipient is one probe (OFFSET 0: not a hash of all of them). */
static const char in_flight_sql[] =
    "SELECT n.id, r.ref FROM crier.notice n, crier.hold h,"
    " LATERAL (SELECT r.ref, r.region FROM crier.recipient r WHERE r.campaign_id = $2::bigint"
    " AND r.seq = n.recipient_seq OFFSET 0) r"
    " WHERE h.id = $1 AND n.campaign_id = $2::bigint AND n.state = 'sending'"
    " AND crier.hold_covers(h.region, h.recipient_ref, r.region, r.ref) ORDER BY n.id";

/* refs_join - "a, b, c and 4 more" from column of result. */
static char *refs_join(const PGresult *result, int column)
{
    int rows = PQntuples(result);
    size_t size = 64;
    for (int i = 0; i < rows && i < REFS_SHOWN; i++)
        size += strlen(PQgetvalue(result, i, column)) + 2;
    char *text = xmalloc(size);
    text[0] = '\0';
    for (int i = 0; i < rows && i < REFS_SHOWN; i++) {
        if (i > 0)
            strcat(text, ", ");
        strcat(text, PQgetvalue(result, i, column));
    }
    if (rows > REFS_SHOWN)
        snprintf(text + strlen(text), size - strlen(text), " and %d more", rows - REFS_SHOWN);
    return text;
}

/* drain - wait until no notice in the hold's scope is in flight, at most seconds. Most
 * batches finish within milliseconds: poll often at first, then every DRAIN_POLL_SECONDS. */
static int drain(struct crier_db *db, const char *hold, const char *campaign_id, double seconds,
                 PGresult **ret_left)
{
    double deadline = monotonic_seconds() + seconds;
    double pause = 0.005;
    for (;;) {
        const char *params[] = {hold, campaign_id};
        PGresult *result = NULL;
        int r = db_query(db, in_flight_sql, 2, params, &result);
        if (r < 0)
            return r;
        if (PQntuples(result) == 0 || monotonic_seconds() >= deadline) {
            *ret_left = result;
            return 0;
        }
        PQclear(result);
        struct timespec ts = {0, (long)(pause * 1e9)};
        nanosleep(&ts, NULL);
        pause = pause * 2 < DRAIN_POLL_SECONDS ? pause * 2 : DRAIN_POLL_SECONDS;
    }
}

/* The notices in flight when hold $1 took effect, and their states now: its own and its
 * companion's (the substitute email campaign's, 016_substitute_holds.sql). */
static const char handed_sql[] =
    "SELECT l.recipient_ref, n.state FROM crier.dispatch_log l"
    " JOIN crier.notice n ON n.campaign_id = l.campaign_id AND n.id = l.notice_id"
    " WHERE l.hold_id IN (SELECT $1::bigint UNION ALL SELECT id FROM crier.hold"
    " WHERE parent_hold_id = $1::bigint) AND l.notice_id IS NOT NULL ORDER BY l.id";

/* report_handed - the notices that were in flight when the hold took effect, and how each
 * ended: as text on out, or (given json) as its array "handed" of {ref, state}. */
static int report_handed(struct crier_db *db, const char *hold, FILE *out, json_t *json)
{
    const char *params[] = {hold};
    PGresult *result = NULL;
    int r = db_query(db, handed_sql, 1, params, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (json) {
        json_t *handed = json_array();
        for (int i = 0; i < rows; i++)
            json_array_append_new(handed, json_pack("{s:s, s:s}", "ref", PQgetvalue(result, i, 0),
                                                    "state", PQgetvalue(result, i, 1)));
        json_object_set_new(json, "handed", handed);
        PQclear(result);
        return 0;
    }
    if (rows == 0) {
        fprintf(out, "no notice in its scope was in flight: none was handed to a channel after "
                     "the hold took effect\n");
        PQclear(result);
        return 0;
    }
    /* how they ended, by state, in the order states first appear */
    const char *states[16];
    int counts[16] = {0};
    int kinds = 0;
    for (int i = 0; i < rows; i++) {
        const char *state = PQgetvalue(result, i, 1);
        int k = 0;
        while (k < kinds && strcmp(states[k], state) != 0)
            k++;
        if (k == kinds && kinds < (int)ARRAY_SIZE(states))
            states[kinds++] = state;
        if (k < kinds)
            counts[k]++;
    }
    fprintf(out,
            "%d notice%s in its scope had been handed to a channel before the hold took "
            "effect; all finished: ",
            rows, rows == 1 ? "" : "s");
    for (int k = 0; k < kinds; k++)
        fprintf(out, "%s%d %s%s", k ? ", " : "", counts[k], states[k],
                strcmp(states[k], "ready") == 0 ? " (back in the queue, held)" : "");
    char *refs = refs_join(result, 0);
    fprintf(out, "\nrefs (all in the dispatch log, hold_id %s): %s\n", hold, refs);
    free(refs);
    PQclear(result);
    return 0;
}

static bool campaign_done(const char *state)
{
    return strcmp(state, "completed") == 0 || strcmp(state, "cancelled") == 0;
}

/* The companion of a hold: the hold that follows it on its campaign's substitute email
 * campaign (016_substitute_holds.sql), with that campaign's id and name and, once lifted,
 * the notices its lift released; no row when there is none. */
static const char companion_sql[] =
    "SELECT k.id, k.campaign_id, c.name, l.released FROM crier.hold k"
    " JOIN crier.campaign c ON c.id = k.campaign_id"
    " LEFT JOIN crier.hold_lift l ON l.hold_id = k.id WHERE k.parent_hold_id = $1";

enum { COMPANION_ID, COMPANION_CAMPAIGN_ID, COMPANION_CAMPAIGN, COMPANION_RELEASED };

static int companion_read(struct crier_db *db, const char *hold, PGresult **ret_result)
{
    const char *params[] = {hold};
    return db_query(db, companion_sql, 1, params, ret_result);
}

/* companion_json - {hold, campaign[, released]} of the companion, or null. */
static json_t *companion_json(const PGresult *k)
{
    if (PQntuples(k) == 0)
        return json_null();
    json_t *obj = json_pack("{s:I, s:s}", "hold",
                            (json_int_t)strtoll(PQgetvalue(k, 0, COMPANION_ID), NULL, 10),
                            "campaign", PQgetvalue(k, 0, COMPANION_CAMPAIGN));
    if (db_value(k, 0, COMPANION_RELEASED))
        json_object_set_new(obj, "released",
                            json_integer(strtoll(PQgetvalue(k, 0, COMPANION_RELEASED), NULL, 10)));
    return obj;
}

/* drain_both - drain() the hold's scope, then its companion's, within the same seconds. */
static int drain_both(struct crier_db *db, const char *hold, const char *campaign_id,
                      const PGresult *k, double seconds, PGresult **ret_left)
{
    double deadline = monotonic_seconds() + seconds;
    int r = drain(db, hold, campaign_id, seconds, ret_left);
    if (r < 0 || PQntuples(*ret_left) > 0 || PQntuples(k) == 0)
        return r;
    PQclear(*ret_left);
    double left = deadline - monotonic_seconds();
    return drain(db, PQgetvalue(k, 0, COMPANION_ID), PQgetvalue(k, 0, COMPANION_CAMPAIGN_ID),
                 left > 0 ? left : 0, ret_left);
}

/* place_campaign - the campaign's id into campaign_id, or why no hold can be placed on it. */
static int place_campaign(struct crier_db *db, const char *campaign, char *campaign_id,
                          size_t id_size, char *err, size_t err_size)
{
    PGresult *result = NULL;
    /* with the state of its substitute email campaign, if any */
    int r = query_row(db,
                      "SELECT c.id, c.state, (SELECT e.state FROM crier.substitute_email s"
                      " JOIN crier.campaign e ON e.id = s.email_campaign_id"
                      " WHERE s.campaign_id = c.id) FROM crier.campaign c WHERE c.name = $1",
                      campaign, &result, "read the campaign", err, err_size, "no campaign named '",
                      "'");
    if (r < 0)
        return r;
    snprintf(campaign_id, id_size, "%s", PQgetvalue(result, 0, 0));
    /* a campaign done with its own notices may still send its substitute email, which a
     * hold on it holds too: refused only when neither has a notice left */
    const char *state = PQgetvalue(result, 0, 1), *email = db_value(result, 0, 2);
    r = 0;
    if (campaign_done(state) && (email == NULL || campaign_done(email))) {
        snprintf(err, err_size, "campaign %s is %s: no notice of it is left to hold", campaign,
                 state);
        r = -EPERM;
    }
    PQclear(result);
    return r;
}

/* place_insert - the hold row; *ret_result: its id, placed_at, scope and oral lapse. */
static int place_insert(struct crier_db *db, const struct hold_place_options *o,
                        const char *campaign_id, PGresult **ret_result)
{
    char *region = NULL;
    if (o->region) {
        region = xstrdup(o->region);
        for (char *p = region; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    }
    const struct hold_document *d = o->document;
    const char *params[] = {campaign_id,
                            region,
                            o->recipient,
                            o->authority,
                            o->official,
                            o->case_ref,
                            o->form,
                            o->reason,
                            o->review_by,
                            d ? d->name : NULL,
                            d ? d->sha256 : NULL,
                            d ? d->bytea : NULL,
                            o->as_name};
    /* One statement: its trigger waits for the claims under way, logs the placement and
     * every notice in scope then in flight; from its commit on, claims skip the scope. */
    int r = db_query(db,
                     "INSERT INTO crier.hold AS h (campaign_id, region, recipient_ref, authority,"
                     " official, case_ref, form, reason, review_by, document_name,"
                     " document_sha256, document, placed_as) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                     " $8, $9::date, $10, $11, $12::bytea, $13)"
                     " RETURNING id, to_char(placed_at, " DB_TIME_S "),"
                     " crier.hold_scope_text(region, recipient_ref),"
                     /* an oral hold's lapse, where it applies (009_oral_lapse.sql), else NULL */
                     " CASE WHEN crier.oral_lapse_applies((SELECT c.meta FROM crier.campaign c"
                     "  WHERE c.id = h.campaign_id))"
                     " THEN to_char(placed_at + interval '720 hours', " DB_TIME_S ") END",
                     13, params, ret_result);
    free(region);
    return r;
}

/* place_say - what was placed, from place_insert's row: JSON, or lines on out. */
static void place_say(const struct hold_place_options *o, PGresult *result, const char *hold,
                      FILE *out, json_t *json)
{
    if (json) {
        json_object_update_new(
            json, json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:s?}", "hold",
                            (json_int_t)strtoll(hold, NULL, 10), "campaign", o->campaign, "scope",
                            PQgetvalue(result, 0, 2), "form", o->form, "review_by", o->review_by,
                            "placed_at", PQgetvalue(result, 0, 1), "lapses_at",
                            strcmp(o->form, "oral") == 0 ? db_value(result, 0, 3) : NULL));
        return; /* JSON has lapses_at */
    }
    fprintf(out,
            "hold %s placed on campaign %s (%s, %s%s%s) at %s: no notice in its scope will be "
            "handed to a channel until it is lifted\n",
            hold, o->campaign, PQgetvalue(result, 0, 2), o->form,
            o->review_by ? ", review by " : "", o->review_by ? o->review_by : "",
            PQgetvalue(result, 0, 1));
    if (strcmp(o->form, "oral") != 0)
        ; /* a written hold does not lapse */
    else if (!PQgetisnull(result, 0, 3))
        fprintf(out,
                "oral: it lapses at %s unless confirmed in writing first (crier hold confirm %s "
                "--written --document FILE)\n",
                PQgetvalue(result, 0, 3), hold);
    else
        fprintf(out,
                "oral: it does not lapse: no framework the campaign declares sets a lapse for "
                "oral holds (HIPAA's 30 days apply to campaigns that declare HIPAA, or with "
                "report.oral_lapse: everywhere); it holds until lifted. Confirm it when the "
                "agency writes (crier hold confirm %s --written --document FILE)\n",
                hold);
}

/* place_companion - the hold on the substitute email, written by the placement's trigger:
 * said, and left in *ret_k for the drain. */
static int place_companion(struct crier_db *db, const char *hold, FILE *out, json_t *json,
                           PGresult **ret_k, char *err, size_t err_size)
{
    int r = companion_read(db, hold, ret_k);
    if (r < 0) {
        snprintf(err, err_size, "hold %s is in effect, but reading its companion failed: %s", hold,
                 db_message(db));
        return r;
    }
    PGresult *k = *ret_k;
    if (json)
        json_object_set_new(json, "substitute_hold", companion_json(k));
    else if (PQntuples(k) > 0)
        fprintf(out,
                "it holds the substitute email too: hold %s on campaign %s follows it (the same "
                "scope; lifted and confirmed with it)\n",
                PQgetvalue(k, 0, COMPANION_ID), PQgetvalue(k, 0, COMPANION_CAMPAIGN));
    fflush(out);
    return 0;
}

/* place_drain - wait for the notices claimed before the hold (and its companion) took
 * effect; -ETIMEDOUT, naming them, when some are still in flight after drain_seconds. */
static int place_drain(struct crier_db *db, const char *hold, const char *campaign_id, PGresult *k,
                       double drain_seconds, char *err, size_t err_size)
{
    PGresult *left = NULL;
    int r = drain_both(db, hold, campaign_id, k, drain_seconds, &left);
    if (r < 0) {
        snprintf(err, err_size,
                 "hold %s is in effect, but waiting for the notices in flight "
                 "failed: %s",
                 hold, db_message(db));
        return r;
    }
    int still = PQntuples(left);
    if (still > 0) {
        char *refs = refs_join(left, 1);
        snprintf(err, err_size,
                 "hold %s is in effect, but %d notice%s claimed before it %s still in flight "
                 "after %.0f s (refs: %s); they were handed to a channel before the hold took "
                 "effect. A notice whose worker died goes back to ready, held, when its lease "
                 "expires; see crier hold show %s",
                 hold, still, still == 1 ? "" : "s", still == 1 ? "is" : "are", drain_seconds, refs,
                 hold);
        free(refs);
        r = -ETIMEDOUT;
    }
    PQclear(left);
    return r;
}

int hold_region_index_build(struct crier_db *db, const char *hold, const char *campaign_id,
                            long *ret_built)
{
    /* the campaigns asked about, then each one's build, in campaign order */
    const char *params[] = {hold, campaign_id};
    return db_query_long(
        db,
        "SELECT count(*) FILTER (WHERE crier.claim_region_build(m.id))"
        " FROM (SELECT DISTINCT c.id FROM crier.campaign c"
        " WHERE ($1::bigint IS NULL OR c.id IN (SELECT h.campaign_id FROM crier.hold h"
        "  WHERE h.id = $1::bigint OR h.parent_hold_id = $1::bigint))"
        " AND ($2::bigint IS NULL OR c.id = $2::bigint)"
        " AND c.id IN (SELECT crier.claim_region_missing(NULL)) ORDER BY 1) m",
        2, params, ret_built);
}

/* place_region_index - once a region hold is in effect, its campaign's region index, so
 * that the claims under it read by region (022_region_index_lazy.sql): built while the
 * lanes wait, said with its time. A failure is said and left: the hold holds either way. */
static void place_region_index(struct crier_db *db, const struct hold_place_options *o,
                               const char *hold, FILE *out, json_t *json)
{
    if (o->region == NULL)
        return;
    long built = 0;
    double start = monotonic_seconds();
    if (hold_region_index_build(db, hold, NULL, &built) < 0) {
        fprintf(stderr,
                "crier: hold %s is in effect, but building the claim's region index failed: %s\n"
                "crier: claims under it stay correct, stepping over the held notices;"
                " `crier db migrate` builds it\n",
                hold, db_message(db));
        return;
    }
    double seconds = monotonic_seconds() - start;
    if (built == 0)
        return; /* the campaign had it, or has no notices yet: its first load builds it */
    if (json)
        json_object_set_new(json, "region_index_seconds", json_real(seconds));
    else
        fprintf(out, "the claim's region index of campaign %s built in %.1f s\n", o->campaign,
                seconds);
}

int hold_place(struct crier_db *db, const struct hold_place_options *o, FILE *out, json_t *json,
               char *err, size_t err_size)
{
    int r = hold_options_check(o, err, err_size);
    if (r < 0)
        return r;
    char campaign_id[32];
    r = place_campaign(db, o->campaign, campaign_id, sizeof(campaign_id), err, err_size);
    if (r < 0)
        return r;
    PGresult *result = NULL;
    r = place_insert(db, o, campaign_id, &result);
    if (r < 0)
        return failed(db, r, "place the hold", err, err_size);
    char hold[32];
    snprintf(hold, sizeof(hold), "%s", PQgetvalue(result, 0, 0));
    place_say(o, result, hold, out, json);
    PQclear(result);
    PGresult *k = NULL;
    r = place_companion(db, hold, out, json, &k, err, err_size);
    if (r < 0)
        return r;
    place_region_index(db, o, hold, out, json);
    r = place_drain(db, hold, campaign_id, k, o->drain_seconds, err, err_size);
    PQclear(k);
    if (r < 0)
        return r;
    r = report_handed(db, hold, out, json);
    if (r < 0)
        snprintf(err, err_size, "%s", db_message(db));
    return r;
}

/* ---- lift, confirm ------------------------------------------------------------------------ */

/* hold_find's columns */
enum {
    FIND_CAMPAIGN,
    FIND_SCOPE,
    FIND_LIFTED_AT, /* then lifted_by */
    FIND_LIFTED_BY,
    FIND_CONFIRMED_AT, /* then confirmed_by */
    FIND_CONFIRMED_BY,
    FIND_FORM,
};

/* hold_find - the hold's campaign name and whether it is lifted / confirmed. */
static int hold_find(struct crier_db *db, const char *hold, PGresult **ret_result, char *err,
                     size_t err_size)
{
    if (!hold_id_valid(hold)) {
        snprintf(err, err_size, "invalid hold '%s': holds are numbered (crier hold list)", hold);
        return -EINVAL;
    }
    PGresult *result = NULL;
    int r =
        query_row(db,
                  "SELECT c.name, crier.hold_scope_text(h.region, h.recipient_ref),"
                  " to_char(l.lifted_at, " DB_TIME_S "), l.lifted_by,"
                  " to_char(f.confirmed_at, " DB_TIME_S "), f.confirmed_by, h.form"
                  " FROM crier.hold h JOIN crier.campaign c ON c.id = h.campaign_id"
                  " LEFT JOIN crier.hold_lift l ON l.hold_id = h.id"
                  " LEFT JOIN crier.hold_confirm f ON f.hold_id = h.id WHERE h.id = $1",
                  hold, &result, "read the hold", err, err_size, "no hold ", " (crier hold list)");
    if (r < 0)
        return r;
    *ret_result = result;
    return 0;
}

/* hold_not_done - the hold's campaign (and scope, when ret_scope is given) while its lift
 * or written confirmation (done: FIND_LIFTED_AT, FIND_CONFIRMED_AT) is not yet recorded;
 * -EEXIST, saying when and by whom, once it is. */
static int hold_not_done(struct crier_db *db, const char *hold, int done, const char *done_text,
                         char **ret_campaign, char **ret_scope, char *err, size_t err_size)
{
    PGresult *found = NULL;
    int r = hold_find(db, hold, &found, err, err_size);
    if (r < 0)
        return r;
    if (db_value(found, 0, done)) {
        snprintf(err, err_size, "hold %s was already %s, at %s by %s", hold, done_text,
                 PQgetvalue(found, 0, done), PQgetvalue(found, 0, done + 1));
        PQclear(found);
        return -EEXIST;
    }
    *ret_campaign = xstrdup(PQgetvalue(found, 0, FIND_CAMPAIGN));
    if (ret_scope)
        *ret_scope = xstrdup(PQgetvalue(found, 0, FIND_SCOPE));
    PQclear(found);
    return 0;
}

/* recording_failed - r, with err saying why a lift or confirmation was not recorded; one
 * recorded by someone else since hold_not_done looked is -EEXIST. */
static int recording_failed(const struct crier_db *db, int r, const char *hold, const char *what,
                            const char *done_text, char *err, size_t err_size)
{
    if (r != -EEXIST)
        return failed(db, r, what, err, err_size);
    snprintf(err, err_size, "hold %s was %s meanwhile (crier hold show %s)", hold, done_text, hold);
    return r;
}

/* companion_said - after a lift or confirmation (done) committed: the companion hold, which
 * the database lifted or confirmed in the same transaction, as "substitute_hold" or a line.
 * The record is written: a failure to read it back only leaves the line out. */
static void companion_said(struct crier_db *db, const char *hold, const char *done, FILE *out,
                           json_t *json)
{
    PGresult *k = NULL;
    if (companion_read(db, hold, &k) < 0)
        return;
    if (json)
        json_object_set_new(json, "substitute_hold", companion_json(k));
    else if (PQntuples(k) > 0 && db_value(k, 0, COMPANION_RELEASED))
        fprintf(out,
                "hold %s on campaign %s (its substitute email) %s with it: %s notice%s released\n",
                PQgetvalue(k, 0, COMPANION_ID), PQgetvalue(k, 0, COMPANION_CAMPAIGN), done,
                PQgetvalue(k, 0, COMPANION_RELEASED),
                strcmp(PQgetvalue(k, 0, COMPANION_RELEASED), "1") == 0 ? "" : "s");
    else if (PQntuples(k) > 0)
        fprintf(out, "hold %s on campaign %s (its substitute email) %s with it\n",
                PQgetvalue(k, 0, COMPANION_ID), PQgetvalue(k, 0, COMPANION_CAMPAIGN), done);
    PQclear(k);
}

int hold_lift(struct crier_db *db, const char *hold, const char *evidence,
              const struct hold_document *d, const char *as_name, FILE *out, json_t *json,
              char *err, size_t err_size)
{
    if (blank(evidence)) {
        snprintf(err, err_size, "--evidence must not be empty");
        return -EINVAL;
    }
    if (as_name && blank(as_name)) {
        snprintf(err, err_size, "--as needs a name");
        return -EINVAL;
    }
    char *campaign = NULL, *scope = NULL;
    int r = hold_not_done(db, hold, FIND_LIFTED_AT, "lifted", &campaign, &scope, err, err_size);
    if (r < 0)
        return r;

    /* the lift's trigger counts the notices it releases, under this process's policy */
    const char *policy[] = {release_lapsed ? "release" : "alert"};
    const char *params[] = {
        hold, evidence, d ? d->name : NULL, d ? d->sha256 : NULL, d ? d->bytea : NULL, as_name};
    PGresult *result = NULL;
    r = db_begin(db);
    if (r == 0)
        r = db_exec(db, "SELECT set_config('crier.oral_lapse', $1, true)", 1, policy);
    if (r == 0)
        r = db_query(db,
                     "INSERT INTO crier.hold_lift (hold_id, evidence, document_name,"
                     " document_sha256, document, lifted_as)"
                     " VALUES ($1, $2, $3, $4, $5::bytea, $6)"
                     " RETURNING to_char(lifted_at, " DB_TIME_S "), released",
                     6, params, &result);
    if (r == 0) {
        r = db_commit(db);
        if (r < 0)
            PQclear(result);
    }
    if (r < 0) {
        recording_failed(db, r, hold, "lift the hold", "lifted", err, err_size);
        db_rollback(db);
        free(campaign);
        free(scope);
        return r;
    }
    long released = strtol(PQgetvalue(result, 0, 1), NULL, 10);
    if (json)
        json_object_update_new(json,
                               json_pack("{s:I, s:s, s:s, s:s, s:I}", "hold",
                                         (json_int_t)strtoll(hold, NULL, 10), "campaign", campaign,
                                         "scope", scope, "lifted_at", PQgetvalue(result, 0, 0),
                                         "released", (json_int_t)released));
    else
        fprintf(out,
                "hold %s on campaign %s (%s) lifted at %s: %ld notice%s released (covered by no "
                "other active hold); they go out marked delayed for law enforcement\n",
                hold, campaign, scope, PQgetvalue(result, 0, 0), released,
                released == 1 ? "" : "s");
    PQclear(result);
    companion_said(db, hold, "lifted", out, json);
    free(campaign);
    free(scope);
    return 0;
}

int hold_confirm(struct crier_db *db, const char *hold, const struct hold_document *d,
                 const char *as_name, FILE *out, json_t *json, char *err, size_t err_size)
{
    if (as_name && blank(as_name)) {
        snprintf(err, err_size, "--as needs a name");
        return -EINVAL;
    }
    char *campaign = NULL;
    int r = hold_not_done(db, hold, FIND_CONFIRMED_AT, "confirmed in writing", &campaign, NULL, err,
                          err_size);
    if (r < 0)
        return r;
    const char *params[] = {hold, d->name, d->sha256, d->bytea, as_name};
    PGresult *result = NULL;
    /* the database refuses a written, lifted or lapsed hold, and says which */
    r = db_query(db,
                 "INSERT INTO crier.hold_confirm (hold_id, document_name, document_sha256,"
                 " document, confirmed_as) VALUES ($1, $2, $3, $4::bytea, $5)"
                 " RETURNING to_char(confirmed_at, " DB_TIME_S ")",
                 5, params, &result);
    if (r < 0) {
        recording_failed(db, r, hold, "confirm the hold", "confirmed", err, err_size);
        free(campaign);
        return r;
    }
    if (json)
        json_object_update_new(json, json_pack("{s:I, s:s, s:s, s:s, s:I, s:s}", "hold",
                                               (json_int_t)strtoll(hold, NULL, 10), "campaign",
                                               campaign, "confirmed_at", PQgetvalue(result, 0, 0),
                                               "document", d->name, "bytes", (json_int_t)d->size,
                                               "sha256", d->sha256));
    else
        fprintf(out,
                "hold %s on campaign %s confirmed in writing at %s (document %s, %zu bytes, sha256 "
                "%s): it no longer lapses\n",
                hold, campaign, PQgetvalue(result, 0, 0), d->name, d->size, d->sha256);
    PQclear(result);
    companion_said(db, hold, "confirmed", out, json);
    free(campaign);
    return 0;
}

/* ---- list, show --------------------------------------------------------------------------- */

/* Every hold with its computed state; $1 release_lapsed, $2 campaign name or '', $3 active
 * only, $4 hold id or 0. */
static const char holds_sql[] =
    "SELECT h.id, c.name, crier.hold_scope_text(h.region, h.recipient_ref), h.form,"
    " to_char(h.placed_at, " DB_TIME_S "), h.placed_by, h.placed_role, h.placed_as,"
    " to_char(h.review_by, 'YYYY-MM-DD'), s.active, s.lapsed, s.past_review,"
    " to_char(s.lapses_at, " DB_TIME_S "), h.authority, h.official, h.case_ref, h.reason,"
    " h.region, h.recipient_ref, h.document_name, h.document_sha256, octet_length(h.document),"
    /* 22: the lift */
    " to_char(l.lifted_at, " DB_TIME_S "), l.lifted_by, l.lifted_role, l.lifted_as,"
    " l.evidence, l.document_name, l.document_sha256, octet_length(l.document), l.released,"
    /* 31: the written confirmation */
    " to_char(f.confirmed_at, " DB_TIME_S "), f.confirmed_by, f.confirmed_role,"
    " f.confirmed_as, f.document_name, f.document_sha256, octet_length(f.document),"
    /* 38; 39: the hold it follows, 41: its companion (016_substitute_holds.sql) */
    " h.campaign_id, h.parent_hold_id, (SELECT pc.name FROM crier.hold p JOIN crier.campaign pc"
    " ON pc.id = p.campaign_id WHERE p.id = h.parent_hold_id),"
    " (SELECT k.id FROM crier.hold k WHERE k.parent_hold_id = h.id),"
    " (SELECT kc.name FROM crier.hold k JOIN crier.campaign kc ON kc.id = k.campaign_id"
    " WHERE k.parent_hold_id = h.id)"
    " FROM crier.hold_state($1) s JOIN crier.hold h ON h.id = s.id"
    " JOIN crier.campaign c ON c.id = h.campaign_id"
    " LEFT JOIN crier.hold_lift l ON l.hold_id = h.id"
    " LEFT JOIN crier.hold_confirm f ON f.hold_id = h.id"
    " WHERE ($2 = '' OR c.name = $2) AND (NOT $3::boolean OR s.active)"
    " AND ($4::bigint = 0 OR h.id = $4::bigint) ORDER BY h.id";

enum {
    COL_ID,
    COL_CAMPAIGN,
    COL_SCOPE,
    COL_FORM,
    COL_PLACED_AT,
    COL_PLACED_BY,
    COL_PLACED_ROLE,
    COL_PLACED_AS,
    COL_REVIEW_BY,
    COL_ACTIVE,
    COL_LAPSED,
    COL_PAST_REVIEW,
    COL_LAPSES_AT,
    COL_AUTHORITY,
    COL_OFFICIAL,
    COL_CASE,
    COL_REASON,
    COL_REGION,
    COL_RECIPIENT,
    COL_DOCUMENT, /* name, sha256, bytes */
    COL_LIFTED_AT = 22,
    COL_LIFTED_BY,
    COL_LIFTED_ROLE,
    COL_LIFTED_AS,
    COL_EVIDENCE,
    COL_LIFT_DOCUMENT, /* name, sha256, bytes */
    COL_RELEASED = 30,
    COL_CONFIRMED_AT,
    COL_CONFIRMED_BY,
    COL_CONFIRMED_ROLE,
    COL_CONFIRMED_AS,
    COL_CONFIRM_DOCUMENT, /* name, sha256, bytes */
    COL_CAMPAIGN_ID = 38,
    COL_PARENT,
    COL_PARENT_CAMPAIGN,
    COL_COMPANION,
    COL_COMPANION_CAMPAIGN,
};
/* record_json() reads by, role and as after each "at" */
_Static_assert(COL_LIFTED_AS == COL_LIFTED_AT + 3 && COL_CONFIRMED_AS == COL_CONFIRMED_AT + 3,
               "a record's columns follow its time");

static int holds_query(struct crier_db *db, const char *campaign, bool active_only,
                       const char *hold, PGresult **ret_result)
{
    const char *params[] = {hold_release_lapsed_param(), campaign ? campaign : "",
                            active_only ? "t" : "f", hold ? hold : "0"};
    return db_query(db, holds_sql, 4, params, ret_result);
}

/* state_word - active, lifted, or released (a lapsed oral hold under oral_lapse: release). */
static const char *state_word(const PGresult *result, int row)
{
    if (db_value(result, row, COL_LIFTED_AT))
        return "lifted";
    return db_flag(result, row, COL_ACTIVE) ? "active" : "released";
}

static json_t *document_json(const PGresult *result, int row, int column)
{
    if (db_value(result, row, column) == NULL)
        return json_null();
    json_t *obj = json_object();
    json_set_text(obj, "name", db_value(result, row, column));
    json_set_text(obj, "sha256", db_value(result, row, column + 1));
    json_object_set_new(obj, "bytes",
                        json_integer(strtoll(PQgetvalue(result, row, column + 2), NULL, 10)));
    return obj;
}

/* linked_json - {hold, campaign} from the two columns at column, or null. */
static json_t *linked_json(const PGresult *result, int row, int column)
{
    if (db_value(result, row, column) == NULL)
        return json_null();
    return json_pack("{s:I, s:s}", "hold",
                     (json_int_t)strtoll(PQgetvalue(result, row, column), NULL, 10), "campaign",
                     PQgetvalue(result, row, column + 1));
}

/* record_json - a hold's lift or written confirmation: when, by whom (the database role and
 * the name given), a lift's evidence (evidence < 0: none), its document; null when there is
 * none. Its columns: at, then by, role and as. */
static json_t *record_json(const PGresult *result, int row, int at, int evidence, int document)
{
    static const char *const who[] = {"at", "by", "role", "as"};
    if (!db_value(result, row, at))
        return json_null();
    json_t *o = json_object();
    for (int i = 0; i < (int)ARRAY_SIZE(who); i++)
        json_set_text(o, who[i], db_value(result, row, at + i));
    if (evidence >= 0)
        json_set_text(o, "evidence", db_value(result, row, evidence));
    json_object_set_new(o, "document", document_json(result, row, document));
    return o;
}

static json_t *hold_json(const PGresult *result, int row)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_integer(strtoll(db_value(result, row, COL_ID), NULL, 10)));
    json_set_text(obj, "campaign", db_value(result, row, COL_CAMPAIGN));
    json_t *scope = json_object();
    const char *region = db_value(result, row, COL_REGION);
    const char *recipient = db_value(result, row, COL_RECIPIENT);
    json_set_text(scope, "type", region ? "region" : recipient ? "recipient" : "campaign");
    if (region)
        json_set_text(scope, "region", region);
    if (recipient)
        json_set_text(scope, "recipient", recipient);
    json_object_set_new(obj, "scope", scope);
    json_set_text(obj, "state", state_word(result, row));
    json_object_set_new(obj, "active", json_boolean(db_flag(result, row, COL_ACTIVE)));
    json_object_set_new(obj, "lapsed", json_boolean(db_flag(result, row, COL_LAPSED)));
    json_object_set_new(obj, "past_review", json_boolean(db_flag(result, row, COL_PAST_REVIEW)));
    json_set_text(obj, "authority", db_value(result, row, COL_AUTHORITY));
    json_set_text(obj, "official", db_value(result, row, COL_OFFICIAL));
    json_set_text(obj, "case", db_value(result, row, COL_CASE));
    json_set_text(obj, "form", db_value(result, row, COL_FORM));
    json_set_text(obj, "reason", db_value(result, row, COL_REASON));
    json_set_text(obj, "review_by", db_value(result, row, COL_REVIEW_BY));
    json_set_text(obj, "lapses_at", db_value(result, row, COL_LAPSES_AT));
    json_set_text(obj, "placed_at", db_value(result, row, COL_PLACED_AT));
    json_set_text(obj, "placed_by", db_value(result, row, COL_PLACED_BY));
    json_set_text(obj, "placed_role", db_value(result, row, COL_PLACED_ROLE));
    json_set_text(obj, "placed_as", db_value(result, row, COL_PLACED_AS));
    json_object_set_new(obj, "document", document_json(result, row, COL_DOCUMENT));
    json_object_set_new(obj, "follows", linked_json(result, row, COL_PARENT));
    json_object_set_new(obj, "substitute_hold", linked_json(result, row, COL_COMPANION));
    json_object_set_new(obj, "confirmed",
                        record_json(result, row, COL_CONFIRMED_AT, -1, COL_CONFIRM_DOCUMENT));
    json_t *lifted = record_json(result, row, COL_LIFTED_AT, COL_EVIDENCE, COL_LIFT_DOCUMENT);
    if (json_is_object(lifted))
        json_object_set_new(lifted, "released",
                            json_integer(strtoll(PQgetvalue(result, row, COL_RELEASED), NULL, 10)));
    json_object_set_new(obj, "lifted", lifted);
    return obj;
}

/* flags - "LAPSED PAST-REVIEW", and "follows N" (a companion) or "email N" (a hold whose
 * companion N holds the substitute email), or "" */
static void flags(const PGresult *result, int row, char *out, size_t size)
{
    bool lapsed = db_flag(result, row, COL_LAPSED), past = db_flag(result, row, COL_PAST_REVIEW);
    const char *parent = db_value(result, row, COL_PARENT);
    const char *companion = db_value(result, row, COL_COMPANION);
    snprintf(out, size, "%s%s%s%s%s%s", lapsed ? "LAPSED" : "", lapsed && past ? " " : "",
             past ? "PAST-REVIEW" : "", (lapsed || past) && (parent || companion) ? " " : "",
             parent      ? "follows "
             : companion ? "email "
                         : "",
             parent      ? parent
             : companion ? companion
                         : "");
}

int hold_list(struct crier_db *db, const char *campaign, bool active_only, bool json, FILE *out,
              char *err, size_t err_size)
{
    if (campaign) {
        const char *params[] = {campaign};
        int r = db_exists(db, "SELECT 1 FROM crier.campaign WHERE name = $1", 1, params);
        if (r < 0)
            return failed(db, r, NULL, err, err_size);
        if (r == 0) {
            snprintf(err, err_size, "no campaign named '%s'", campaign);
            return -ENOENT;
        }
    }
    PGresult *result = NULL;
    int r = holds_query(db, campaign, active_only, NULL, &result);
    if (r < 0)
        return failed(db, r, NULL, err, err_size);
    int rows = PQntuples(result);
    if (json) {
        json_t *array = json_array();
        for (int i = 0; i < rows; i++)
            json_array_append_new(array, hold_json(result, i));
        json_out(out, array);
    } else {
        fprintf(out, "%-5s %-20s %-22s %-7s %-20s %-8s %-10s %-16s %s\n", "ID", "CAMPAIGN", "SCOPE",
                "FORM", "PLACED", "STATE", "REVIEW BY", "CASE", "FLAGS");
        for (int i = 0; i < rows; i++) {
            char f[64];
            flags(result, i, f, sizeof(f));
            const char *review = db_value(result, i, COL_REVIEW_BY);
            fprintf(out, "%-5s %-20s %-22s %-7s %-20s %-8s %-10s %-16s %s\n",
                    PQgetvalue(result, i, COL_ID), PQgetvalue(result, i, COL_CAMPAIGN),
                    PQgetvalue(result, i, COL_SCOPE), PQgetvalue(result, i, COL_FORM),
                    PQgetvalue(result, i, COL_PLACED_AT), state_word(result, i),
                    review ? review : "-", PQgetvalue(result, i, COL_CASE), f);
        }
    }
    PQclear(result);
    return 0;
}

/* What the notices say about a hold: in scope, held now, in flight at its placement, and
 * sent after it, marked delayed by it. */
static const char notices_sql[] =
    "WITH h AS (SELECT * FROM crier.hold WHERE id = $1),"
    " scope AS (SELECT n.state, r.region, r.ref FROM h JOIN crier.notice n"
    "  ON n.campaign_id = h.campaign_id JOIN crier.recipient r"
    "  ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
    "  WHERE crier.hold_covers(h.region, h.recipient_ref, r.region, r.ref))"
    " SELECT (SELECT count(*) FROM scope),"
    " (SELECT count(*) FROM scope s, h WHERE s.state = 'ready' AND EXISTS (SELECT 1"
    "  FROM crier.hold_state($2) o WHERE o.campaign_id = h.campaign_id AND o.active"
    "  AND crier.hold_covers(o.region, o.recipient_ref, s.region, s.ref))),"
    " (SELECT count(*) FROM crier.dispatch_log WHERE hold_id = $1 AND notice_id IS NOT NULL),"
    " (SELECT count(*) FROM crier.dispatch_log l, h WHERE l.campaign_id = h.campaign_id"
    "  AND l.from_state = 'ready' AND l.to_state = 'sending'"
    "  AND l.reason ~ ('^delayed for law enforcement.*\\mhold ' || $1 || '\\M'))";

/* clearance_deadlines - for a lifted hold, each jurisdiction it covered whose rules run a
 * deadline from the clearance: [{jurisdiction, rule, lifted, due_by}]. */
static json_t *clearance_deadlines(struct crier_db *db, const struct rules_table *rules,
                                   const PGresult *h)
{
    json_t *list = json_array();
    if (rules == NULL || !db_value(h, 0, COL_LIFTED_AT))
        return list;
    const char *params[] = {PQgetvalue(h, 0, COL_ID), PQgetvalue(h, 0, COL_CAMPAIGN_ID),
                            db_value(h, 0, COL_REGION), db_value(h, 0, COL_RECIPIENT)};
    PGresult *res = NULL;
    /* the jurisdictions in its scope: its region, its recipient's, or every region */
    if (db_query(db,
                 "SELECT DISTINCT x.j, extract(epoch FROM l.lifted_at) FROM crier.hold_lift l,"
                 " (SELECT upper($3::text) AS j WHERE $3::text IS NOT NULL"
                 "  UNION SELECT upper(btrim(r.region)) FROM crier.recipient r"
                 "  WHERE $3::text IS NULL AND r.campaign_id = $2::bigint"
                 "  AND r.region IS NOT NULL AND ($4::text IS NULL OR r.ref = $4)) x"
                 " WHERE l.hold_id = $1::bigint ORDER BY 1",
                 4, params, &res) < 0)
        return list;
    for (int i = 0; i < PQntuples(res); i++) {
        const struct rules_entry *e =
            rules_find(rules, SECTION_JURISDICTION, PQgetvalue(res, i, 0));
        double lifted = strtod(PQgetvalue(res, i, 1), NULL), end = 0;
        if (e == NULL || rules_period_end(&e->after_clearance, lifted, &end) < 0)
            continue;
        char due[16], at[16];
        time_t t = (time_t)(end - 1), l = (time_t)lifted;
        struct tm tm;
        strftime(due, sizeof(due), "%Y-%m-%d", gmtime_r(&t, &tm));
        strftime(at, sizeof(at), "%Y-%m-%d", gmtime_r(&l, &tm));
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:s, s:s}", "jurisdiction", e->code, "rule",
                                        e->after_clearance.text, "lifted", at, "due_by", due));
    }
    PQclear(res);
    return list;
}

/* What hold_show prints beside the hold's row: notices_sql's counts and the refs handed to
 * a channel before the hold took effect. */
struct hold_notices {
    long long in_scope, held, in_flight, sent_delayed;
    PGresult *flight; /* recipient_ref of each, in log order */
};

static int hold_notices_read(struct crier_db *db, const char *hold, struct hold_notices *n)
{
    const char *params[] = {hold, hold_release_lapsed_param()};
    PGresult *counts = NULL;
    int r = db_query(db, notices_sql, 2, params, &counts);
    if (r == 0)
        r = db_query(db,
                     "SELECT recipient_ref FROM crier.dispatch_log WHERE hold_id = $1"
                     " AND notice_id IS NOT NULL ORDER BY id",
                     1, params, &n->flight);
    if (r == 0) {
        n->in_scope = strtoll(PQgetvalue(counts, 0, 0), NULL, 10);
        n->held = strtoll(PQgetvalue(counts, 0, 1), NULL, 10);
        n->in_flight = strtoll(PQgetvalue(counts, 0, 2), NULL, 10);
        n->sent_delayed = strtoll(PQgetvalue(counts, 0, 3), NULL, 10);
    }
    PQclear(counts);
    return r;
}

static void hold_show_json(struct crier_db *db, const PGresult *h,
                           const struct hold_notices *counts, const struct rules_table *rules,
                           FILE *out)
{
    json_t *obj = hold_json(h, 0);
    json_t *n = json_object();
    json_object_set_new(n, "in_scope", json_integer(counts->in_scope));
    json_object_set_new(n, "held", json_integer(counts->held));
    json_t *refs = json_array();
    for (int i = 0; i < PQntuples(counts->flight); i++)
        json_array_append_new(refs, json_string(PQgetvalue(counts->flight, i, 0)));
    json_object_set_new(n, "in_flight_at_placement", refs);
    json_object_set_new(n, "sent_delayed", json_integer(counts->sent_delayed));
    json_object_set_new(obj, "notices", n);
    json_object_set_new(obj, "clearance_deadlines", clearance_deadlines(db, rules, h));
    json_out(out, obj);
}

/* who_text - "AT by BY (role ROLE)[ as AS]" from the four columns from column on. */
static void who_text(FILE *out, const PGresult *h, int column)
{
    fprintf(out, "%s by %s (role %s)%s%s", PQgetvalue(h, 0, column), PQgetvalue(h, 0, column + 1),
            PQgetvalue(h, 0, column + 2), db_value(h, 0, column + 3) ? " as " : "",
            db_value(h, 0, column + 3) ? PQgetvalue(h, 0, column + 3) : "");
}

/* document_text - "NAME, BYTES bytes, sha256 SHA" from the three columns from column on. */
static void document_text(FILE *out, const PGresult *h, int column)
{
    fprintf(out, "%s, %s bytes, sha256 %s", PQgetvalue(h, 0, column), PQgetvalue(h, 0, column + 2),
            PQgetvalue(h, 0, column + 1));
}

/* text_form - the form, and whether and when an oral hold lapses. */
static void text_form(FILE *out, const PGresult *h)
{
    fprintf(out, "  form:       %s", PQgetvalue(h, 0, COL_FORM));
    if (db_flag(h, 0, COL_LAPSED))
        fprintf(out, " (lapsed at %s: not confirmed in writing within 30 days)",
                PQgetvalue(h, 0, COL_LAPSES_AT));
    else if (db_value(h, 0, COL_LAPSES_AT) && !db_value(h, 0, COL_LIFTED_AT))
        fprintf(out, " (lapses at %s unless confirmed in writing first)",
                PQgetvalue(h, 0, COL_LAPSES_AT));
    else if (strcmp(PQgetvalue(h, 0, COL_FORM), "oral") == 0 && !db_value(h, 0, COL_CONFIRMED_AT) &&
             !db_value(h, 0, COL_LIFTED_AT))
        fprintf(out, " (does not lapse: no framework the campaign declares sets a lapse)");
}

/* text_record - who placed, confirmed and lifted it, with their documents. */
static void text_record(FILE *out, const PGresult *h)
{
    fputs("  placed:     ", out);
    who_text(out, h, COL_PLACED_AT);
    fputc('\n', out);
    if (db_value(h, 0, COL_DOCUMENT)) {
        fputs("  document:   ", out);
        document_text(out, h, COL_DOCUMENT);
        fputc('\n', out);
    }
    if (db_value(h, 0, COL_CONFIRMED_AT)) {
        fputs("  confirmed:  ", out);
        who_text(out, h, COL_CONFIRMED_AT);
        fputs(": ", out);
        document_text(out, h, COL_CONFIRM_DOCUMENT);
        fputc('\n', out);
    }
    if (!db_value(h, 0, COL_LIFTED_AT))
        return;
    fputs("  lifted:     ", out);
    who_text(out, h, COL_LIFTED_AT);
    fprintf(out, "; %s notices released\n", PQgetvalue(h, 0, COL_RELEASED));
    fprintf(out, "  evidence:   %s\n", PQgetvalue(h, 0, COL_EVIDENCE));
    if (db_value(h, 0, COL_LIFT_DOCUMENT)) {
        fputs("  lift doc:   ", out);
        document_text(out, h, COL_LIFT_DOCUMENT);
        fputc('\n', out);
    }
}

/* text_notices - the notices it covers, the deadlines its lift starts, those in flight. */
static void text_notices(FILE *out, struct crier_db *db, const PGresult *h,
                         const struct hold_notices *counts, const struct rules_table *rules)
{
    fprintf(out,
            "  notices:    %lld in scope, %lld held now; %lld sent after a lift marked "
            "delayed by it\n",
            counts->in_scope, counts->held, counts->sent_delayed);
    json_t *clearance = clearance_deadlines(db, rules, h);
    size_t k;
    const json_t *c;
    json_array_foreach(clearance, k, c)
    {
        fprintf(out, "  clearance:  %s: notice within %s of the clearance (%s): due by %s\n",
                json_string_value(json_object_get(c, "jurisdiction")),
                json_string_value(json_object_get(c, "rule")),
                json_string_value(json_object_get(c, "lifted")),
                json_string_value(json_object_get(c, "due_by")));
    }
    json_decref(clearance);
    if (counts->in_flight > 0) {
        char *refs = refs_join(counts->flight, 0);
        fprintf(out, "  in flight:  %lld already handed to a channel when it was placed: %s\n",
                counts->in_flight, refs);
        free(refs);
    }
}

static void hold_show_text(struct crier_db *db, const char *hold, const PGresult *h,
                           const struct hold_notices *counts, const struct rules_table *rules,
                           FILE *out)
{
    char f[64];
    flags(h, 0, f, sizeof(f));
    fprintf(out, "hold %s on campaign %s: %s\n", hold, PQgetvalue(h, 0, COL_CAMPAIGN),
            PQgetvalue(h, 0, COL_SCOPE));
    if (db_value(h, 0, COL_PARENT))
        fprintf(out,
                "  follows:    hold %s on campaign %s, whose substitute email this campaign "
                "sends: placed, lifted and confirmed with it (act on hold %s)\n",
                PQgetvalue(h, 0, COL_PARENT), PQgetvalue(h, 0, COL_PARENT_CAMPAIGN),
                PQgetvalue(h, 0, COL_PARENT));
    if (db_value(h, 0, COL_COMPANION))
        fprintf(out,
                "  substitute: hold %s holds the same scope of campaign %s (its substitute "
                "email), placed, lifted and confirmed with this one\n",
                PQgetvalue(h, 0, COL_COMPANION), PQgetvalue(h, 0, COL_COMPANION_CAMPAIGN));
    fprintf(out, "  state:      %s%s%s\n", state_word(h, 0), f[0] ? "  " : "", f);
    fprintf(out, "  authority:  %s\n", PQgetvalue(h, 0, COL_AUTHORITY));
    fprintf(out, "  official:   %s\n", PQgetvalue(h, 0, COL_OFFICIAL));
    fprintf(out, "  case:       %s\n", PQgetvalue(h, 0, COL_CASE));
    text_form(out, h);
    fprintf(out, "\n  reason:     %s\n", PQgetvalue(h, 0, COL_REASON));
    fprintf(out, "  review by:  %s%s\n",
            db_value(h, 0, COL_REVIEW_BY) ? PQgetvalue(h, 0, COL_REVIEW_BY) : "-",
            db_flag(h, 0, COL_PAST_REVIEW) ? " (past)" : "");
    text_record(out, h);
    text_notices(out, db, h, counts, rules);
}

int hold_show(struct crier_db *db, const char *hold, bool json, const struct rules_table *rules,
              FILE *out, char *err, size_t err_size)
{
    if (!hold_id_valid(hold)) {
        snprintf(err, err_size, "invalid hold '%s': holds are numbered (crier hold list)", hold);
        return -EINVAL;
    }
    PGresult *result = NULL;
    int r = holds_query(db, NULL, false, hold, &result);
    r = one_row(db, r, &result, NULL, err, err_size, "no hold %s (crier hold list)", hold);
    if (r < 0)
        return r;
    struct hold_notices counts = {0};
    r = hold_notices_read(db, hold, &counts);
    if (r < 0)
        snprintf(err, err_size, "%s", db_message(db));
    else if (json)
        hold_show_json(db, result, &counts, rules, out);
    else
        hold_show_text(db, hold, result, &counts, rules, out);
    PQclear(result);
    PQclear(counts.flight);
    return r;
}

/* ---- alerts: lapsed and past review --------------------------------------------------- */

/* The holds not lifted that have lapsed or passed their review date ($2: one campaign's
 * id, or 0 for all). */
static const char alerts_sql[] =
    "SELECT s.id, c.name, crier.hold_scope_text(s.region, s.recipient_ref), s.lapsed,"
    " s.past_review, s.active, to_char(s.lapses_at, " DB_TIME_S "),"
    " to_char(s.review_by, 'YYYY-MM-DD')"
    " FROM crier.hold_state($1) s JOIN crier.campaign c ON c.id = s.campaign_id"
    " WHERE s.lifted_at IS NULL AND (s.lapsed OR s.past_review)"
    " AND ($2::bigint = 0 OR s.campaign_id = $2::bigint) ORDER BY s.id";

/* alert_messages - one line of text per problem, for any of the callers. */
static int alert_messages(struct crier_db *db, const char *campaign_id, char ***ret_lines)
{
    const char *params[] = {hold_release_lapsed_param(), campaign_id ? campaign_id : "0"};
    PGresult *result = NULL;
    int r = db_query(db, alerts_sql, 2, params, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    char **lines = xcalloc((size_t)rows * 2 + 1, sizeof(char *));
    size_t n = 0;
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(result, i, 0), *campaign = PQgetvalue(result, i, 1),
                   *scope = PQgetvalue(result, i, 2);
        if (db_flag(result, i, 3))
            lines[n++] = xasprintf(
                "hold %s on campaign %s (%s) LAPSED at %s: an oral hold not confirmed in "
                "writing within 30 days; %s",
                id, campaign, scope, PQgetvalue(result, i, 6),
                db_flag(result, i, 5)
                    ? "it still holds (holds.oral_lapse: alert): place a written hold and lift "
                      "this one, or lift it"
                    : "its notices were released (holds.oral_lapse: release): lift it to close "
                      "the record");
        if (db_flag(result, i, 4))
            lines[n++] = xasprintf(
                "hold %s on campaign %s (%s) is PAST its review date %s: review it with the "
                "agency, then lift it, or place a new hold with a new review date and lift "
                "this one",
                id, campaign, scope, PQgetvalue(result, i, 7));
    }
    PQclear(result);
    *ret_lines = lines;
    return 0;
}

/* alerts_each - each alert line to out, or to the log when out is NULL; *ret_count: how many */
static int alerts_each(struct crier_db *db, FILE *out, long *ret_count)
{
    char **lines = NULL;
    int r = alert_messages(db, NULL, &lines);
    if (r < 0)
        return r;
    long count = 0;
    for (char **p = lines; *p; p++, count++) {
        if (out)
            fprintf(out, "%s\n", *p);
        else
            log_warning("%s", *p);
    }
    strv_free(lines);
    *ret_count = count;
    return 0;
}

int hold_check(struct crier_db *db, FILE *out, long *ret_count)
{
    int r = alerts_each(db, out, ret_count);
    if (r == 0 && *ret_count == 0)
        fprintf(out, "no hold has lapsed or passed its review date\n");
    return r;
}

int hold_check_json(struct crier_db *db, json_t **ret_alerts)
{
    const char *params[] = {hold_release_lapsed_param(), "0"};
    PGresult *result = NULL;
    int r = db_query(db, alerts_sql, 2, params, &result);
    if (r < 0)
        return r;
    json_t *alerts = json_array();
    for (int i = 0; i < PQntuples(result); i++) {
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:b, s:b, s:b}", "hold", PQgetvalue(result, i, 0),
                      "campaign", PQgetvalue(result, i, 1), "scope", PQgetvalue(result, i, 2),
                      "lapsed", db_flag(result, i, 3), "past_review", db_flag(result, i, 4),
                      "holds_now", db_flag(result, i, 5));
        if (db_flag(result, i, 3))
            json_object_set_new(o, "lapsed_at", json_string(PQgetvalue(result, i, 6)));
        if (db_flag(result, i, 4))
            json_object_set_new(o, "review_by", json_string(PQgetvalue(result, i, 7)));
        json_array_append_new(alerts, o);
    }
    PQclear(result);
    *ret_alerts = alerts;
    return 0;
}

int hold_alerts_log(struct crier_db *db, long *ret_count)
{
    return alerts_each(db, NULL, ret_count);
}

/* ---- status ----------------------------------------------------------------------------- */

/*
 * The ready notices an active hold covers, per channel ($1 campaign, $2 release_lapsed),
 * in parts that do not overlap, none of which reads the campaign's notices one by one
 * while the campaign has its region index:
 *   whole      a whole-campaign hold: every ready notice, the tallies' count;
 *   by_region  notices whose row carries a held region (021_hold_region.sql): the regions
 *              that have ready notices found per channel in the campaign's region index,
 *              one probe each (a skip scan, from the last region down, as the claim's),
 *              then each held one counted in that index (its entries, not the campaign's);
 *   by_recipient  notices whose region is not known (NULL: loaded before 021), per channel
 *              through the same index, against the recipients of the held regions;
 *   by_seq     the notices of held recipients (a notice's id is its recipient's seq in its
 *              campaign: notice.h), by key, those of a held region left to the parts above;
 *   by_pass    instead of by_region and by_recipient while the campaign's region index is
 *              missing (built at its first region hold, 022_region_index_lazy.sql: until
 *              then, or should the build have failed): every ready notice compared, its
 *              row's region or, without one, its recipient's.
 * Until this was written so, every ready notice was compared, with a hashed pass over the
 * recipients: 1.1-3.5 s at 1,000,000 (docs/benchmarks.md, "`crier status` under a region
 * hold").
 */
/* clang-format off */
static const char held_sql[] =
    "WITH RECURSIVE active AS (SELECT region, recipient_ref FROM crier.hold_state($2::boolean)"
    " WHERE campaign_id = $1 AND active),"
    " holds AS (SELECT (SELECT count(*) FROM active) > 0 AS active,"
    " coalesce((SELECT bool_or(region IS NULL AND recipient_ref IS NULL) FROM active), false)"
    " AS whole,"
    " (SELECT coalesce(array_agg(region), '{}') FROM active WHERE region IS NOT NULL) AS regions,"
    " (SELECT coalesce(array_agg(r.seq), '{}') FROM crier.recipient r WHERE r.campaign_id = $1"
    " AND r.ref IN (SELECT recipient_ref FROM active)) AS seqs,"
    " to_regclass('crier.notice_c' || $1::bigint || '_claim_region') IS NOT NULL AS indexed),"
    " ready AS (SELECT channel, sum(n) AS n FROM crier.notice_tally WHERE campaign_id = $1"
    " AND state = 'ready' AND (SELECT active FROM holds) GROUP BY channel HAVING sum(n) > 0),"
    " regional AS (SELECT channel FROM ready"
    " WHERE (SELECT regions <> '{}' AND NOT whole AND indexed FROM holds)),"
    " known (channel, region) AS ("
    " SELECT g.channel, (SELECT n.region FROM crier.notice n WHERE n.campaign_id = $1"
    " AND n.channel = g.channel AND n.state = 'ready' AND n.region IS NOT NULL"
    " ORDER BY n.region DESC LIMIT 1) FROM regional g"
    " UNION ALL SELECT k.channel, (SELECT n.region FROM crier.notice n WHERE n.campaign_id = $1"
    " AND n.channel = k.channel AND n.state = 'ready' AND n.region < k.region"
    " ORDER BY n.region DESC LIMIT 1) FROM known k WHERE k.region IS NOT NULL),"
    " by_region AS (SELECT k.channel, (SELECT count(*) FROM crier.notice n"
    " WHERE n.campaign_id = $1 AND n.channel = k.channel AND n.state = 'ready'"
    " AND n.region = k.region) AS n FROM known k"
    " WHERE upper(k.region) = ANY ((SELECT regions FROM holds)::text[])),"
    " by_recipient AS (SELECT g.channel, (SELECT count(*) FROM crier.notice n"
    " WHERE n.campaign_id = $1 AND n.channel = g.channel AND n.state = 'ready'"
    " AND n.region IS NULL AND EXISTS (SELECT 1 FROM crier.recipient r WHERE r.campaign_id = $1"
    " AND r.seq = n.recipient_seq AND upper(r.region) = ANY ((SELECT regions FROM holds)::text[])))"
    " AS n FROM regional g),"
    " by_seq AS (SELECT n.channel, count(*) AS n FROM crier.notice n WHERE n.campaign_id = $1"
    " AND n.id = ANY (ARRAY(SELECT " NOTICE_ID_SQL("$1", "s") " FROM unnest((SELECT seqs FROM holds)) s))"
    " AND n.state = 'ready' AND NOT (SELECT whole FROM holds)"
    " AND NOT coalesce(upper(n.region) = ANY ((SELECT regions FROM holds)::text[]),"
    " EXISTS (SELECT 1 FROM crier.recipient r WHERE r.campaign_id = $1 AND r.seq = n.recipient_seq"
    " AND upper(r.region) = ANY ((SELECT regions FROM holds)::text[]))) GROUP BY n.channel),"
    " by_pass AS (SELECT n.channel, count(*) AS n FROM crier.notice n WHERE n.campaign_id = $1"
    " AND n.state = 'ready' AND (SELECT regions <> '{}' AND NOT whole AND NOT indexed FROM holds)"
    " AND coalesce(upper(n.region) = ANY ((SELECT regions FROM holds)::text[]),"
    " EXISTS (SELECT 1 FROM crier.recipient r WHERE r.campaign_id = $1 AND r.seq = n.recipient_seq"
    " AND upper(r.region) = ANY ((SELECT regions FROM holds)::text[]))) GROUP BY n.channel)"
    " SELECT channel, sum(n) FROM (SELECT channel, n FROM ready WHERE (SELECT whole FROM holds)"
    " UNION ALL SELECT channel, n FROM by_region UNION ALL SELECT channel, n FROM by_recipient"
    " UNION ALL SELECT channel, n FROM by_seq UNION ALL SELECT channel, n FROM by_pass) p"
    " GROUP BY channel HAVING sum(n) > 0";
/* clang-format on */

int hold_held_by_channel(struct crier_db *db, const char *campaign_id, PGresult **ret_result)
{
    const char *params[] = {campaign_id, hold_release_lapsed_param()};
    PGresult *result = NULL;
    int r = db_query(db, held_sql, 2, params, &result);
    if (r < 0)
        return r;
    *ret_result = result;
    return 0;
}

/* The campaign's active holds ($1 its id, $2 release_lapsed). */
static const char active_holds_sql[] =
    "SELECT count(*) FILTER (WHERE active) FROM crier.hold_state($2::boolean)"
    " WHERE campaign_id = $1";

int hold_status_json(struct crier_db *db, const char *campaign_id, json_t **ret_holds)
{
    const char *params[] = {campaign_id, hold_release_lapsed_param()};
    long active = 0;
    int r = db_query_long(db, active_holds_sql, 2, params, &active);
    if (r < 0)
        return r;
    char **lines = NULL;
    r = alert_messages(db, campaign_id, &lines);
    if (r < 0)
        return r;
    json_t *holds = json_object();
    json_object_set_new(holds, "active", json_integer(active));
    json_t *alerts = json_array();
    for (char **p = lines; *p; p++)
        json_array_append_new(alerts, json_string(*p));
    strv_free(lines);
    json_object_set_new(holds, "alerts", alerts);
    *ret_holds = holds;
    return 0;
}

void hold_status_text(const json_t *holds, FILE *out)
{
    long long active = json_integer_value(json_object_get(holds, "active"));
    if (active > 0)
        fprintf(out, "  law-enforcement holds: %lld active (crier hold list)\n", active);
    size_t i;
    json_t *alert;
    json_array_foreach(json_object_get(holds, "alerts"), i, alert)
        fprintf(out, "  ALERT: %s\n", json_string_value(alert));
}

/* ---- channels that wait before handing off ---------------------------------------------- */

int hold_covers_notice(struct crier_db *db, const struct crier_notice *notice, bool *ret_held)
{
    const char *params[] = {DB_NUM(notice->campaign_id), DB_NUM(notice_id_seq(notice->id)),
                            hold_release_lapsed_param()};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT crier.notice_held($1, $2, $3)", 3, params, &result);
    if (r < 0)
        return r;
    *ret_held = db_flag(result, 0, 0);
    PQclear(result);
    return 0;
}
