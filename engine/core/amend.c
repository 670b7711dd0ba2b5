/*
 * amend.c - reaching the unreached: corrected contacts, forwarding addresses and copies
 * sent again (docs/unreached.md).
 *
 * A correction appends a version of the person's contacts (crier.recipient_version); the
 * loaded snapshot is never rewritten, and the claim reads the newest version through
 * crier.recipient_now. A person not yet reached goes back to the queue on the first
 * channel of the policy the new contacts allow; a person reached stays as they are
 * unless asked (--resend). A notice being sent, printed or awaiting a fax status is left
 * to that attempt: queuing it again could send the same attempt twice.
 *
 * Corrections are applied a batch of rows at a time (AMEND_BATCH): one query reads and
 * locks the batch's people, one statement writes their versions and log rows, one queues
 * their notices again; no round trip is per row.
 *
 * The campaign row is locked FOR UPDATE for the whole transaction, as a load locks it:
 * claims and records wait, so no lane can claim a notice between the moment it is read
 * here and the moment it is queued again.
 *
 * Every state change goes through reach_again(), the one place that decides and records
 * here, written as queue.c and returns.c write theirs (issue 13 moves them together).
 *
 * SECURITY: the corrections file is untrusted input, validated by validate.c as a load
 * is; values reach the database only as parameters.
 */
#include "crier/amend.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/db.h"
#include "crier/policy.h"
#include "crier/progress.h"
#include "crier/validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DIAG_REJECTS 20   /* rejected rows echoed to diag; the reject file has all */
#define AMEND_BATCH  1000 /* corrections read, checked and written together */

/* the versions of a batch: the columns of versions_sql's unnest, in order */
enum {
    V_SEQ,
    V_VERSION,
    V_REF,
    V_CONTACTS,
    V_MAILABLE = V_CONTACTS + 9,
    V_ROW,
    V_CHANGES,
    V_NOTICE,
    V_COLUMNS
};
/* the notices of a batch queued again: the columns of again_sql's unnest */
enum { A_NOTICE, A_STATE, A_CHANNEL, A_INDEX, A_REF, A_REASON, A_COLUMNS };

/* The contact fields a correction may change: everything but the ref. */
static const enum crier_field contact_fields[] = {
    FIELD_NAME, FIELD_EMAIL,  FIELD_FAX,         FIELD_ADDRESS1, FIELD_ADDRESS2,
    FIELD_CITY, FIELD_REGION, FIELD_POSTAL_CODE, FIELD_COUNTRY,
};

/* ---- one person, as the claim would read them now -------------------------------------- */

struct person {
    PGresult *result;
    const char *field[FIELD_COUNT]; /* current values, NULL when absent */
    const char *seq, *version, *notice_id, *state, *channel, *vars;
    bool mailable, returned;
};

/* A person as now, with their notice: the columns person_from_row reads, for one ref
 * (person_sql) or a batch of them (people_sql). The EXISTS: a letter that came back
 * after this attempt mailed it, so not reached. */
#define PERSON_SELECT                                                                              \
    "SELECT r.seq, r.version, r.ref, r.name, r.email, r.fax, r.address1, r.address2, r.city,"      \
    " r.region, r.postal_code, r.country, r.mailable, n.id, n.state, n.channel, r.vars::text,"     \
    " EXISTS (SELECT 1 FROM crier.dispatch_log d WHERE d.notice_id = n.id"                         \
    "  AND d.event = 'returned' AND d.attempt = n.attempt)"                                        \
    " FROM crier.recipient_now r JOIN crier.notice n ON n.campaign_id = r.campaign_id"             \
    " AND n.id = r.campaign_id * 4294967296 + r.seq"

static const char person_sql[] =
    PERSON_SELECT " WHERE r.campaign_id = $1 AND r.ref = $2 FOR UPDATE OF n";

static void person_clear(struct person *p)
{
    PQclear(p->result);
    memset(p, 0, sizeof(*p));
}

/* person_from_row - the person of row i of a result of person_sql's columns (not owned). */
static void person_from_row(PGresult *res, int i, struct person *p)
{
    p->seq = PQgetvalue(res, i, 0);
    p->version = PQgetvalue(res, i, 1);
    for (int f = FIELD_REF; f <= FIELD_COUNTRY; f++)
        p->field[f] = PQgetisnull(res, i, 2 + f) ? NULL : PQgetvalue(res, i, 2 + f);
    p->mailable = strcmp(PQgetvalue(res, i, 12), "t") == 0;
    p->notice_id = PQgetvalue(res, i, 13);
    p->state = PQgetvalue(res, i, 14);
    p->channel = PQgetvalue(res, i, 15);
    p->vars = PQgetvalue(res, i, 16);
    p->returned = strcmp(PQgetvalue(res, i, 17), "t") == 0;
}

/* person_load - 0, -ENOENT (no such ref), or a database error. */
static int person_load(struct crier_db *db, const char *campaign_id, const char *ref,
                       struct person *p)
{
    memset(p, 0, sizeof(*p));
    const char *params[] = {campaign_id, ref};
    int r = db_query(db, person_sql, 2, params, &p->result);
    if (r < 0)
        return r;
    if (PQntuples(p->result) == 0) {
        person_clear(p);
        return -ENOENT;
    }
    person_from_row(p->result, 0, p);
    return 0;
}

/* ---- where a notice goes next ------------------------------------------------------------- */

/* first_channel - the policy's first channel these contacts reach, or -ENOENT. */
static int first_channel(const struct campaign *c, const char *const *field, bool mailable,
                         const char *vars, char *why, size_t why_size)
{
    struct crier_notice view = {
        .ref = field[FIELD_REF],
        .name = field[FIELD_NAME],
        .email = field[FIELD_EMAIL],
        .fax = field[FIELD_FAX],
        .country = field[FIELD_COUNTRY],
        .mailable = mailable,
        .vars_json = vars,
    };
    for (int a = 0; a < 5; a++)
        view.address[a] = field[FIELD_ADDRESS1 + a];
    struct channel_usable_data data = {.policy = c->policy, .notice = &view};
    return policy_first_channel((const char *const *)c->policy, strv_length(c->policy), 0,
                                channel_reaches, &data, why, why_size);
}

/* Where a notice's state leaves it. */
enum standing {
    NOT_REACHED, /* undeliverable, a letter returned, or waiting on a channel */
    REACHED,     /* sent, delivered, mailed (and not returned) */
    IN_FLIGHT,   /* sending, batched, submitted: that attempt decides */
    CLOSED,      /* cancelled */
};

static enum standing standing_of(const struct person *p)
{
    const char *s = p->state;
    if (strcmp(s, "undeliverable") == 0 || strcmp(s, "ready") == 0 || strcmp(s, "held") == 0)
        return NOT_REACHED;
    if (strcmp(s, "mailed") == 0)
        return p->returned ? NOT_REACHED : REACHED;
    if (strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0)
        return REACHED;
    if (strcmp(s, "cancelled") == 0)
        return CLOSED;
    return IN_FLIGHT;
}

/*
 * reach_again - the one state change of this module: notice back to ready on the policy's
 * channel at index, due now, its channel attempts counted afresh, logged as a transition
 * (to_channel set when it moves). Only from the state it was read in (the row is locked).
 * A ready notice already on that channel is left as it is. *ret_moved: it changed.
 */
static const char reach_again_sql[] =
    "WITH n AS (SELECT id, campaign_id, state, channel, attempt FROM crier.notice"
    "  WHERE campaign_id = $1 AND id = $2 AND state = $3),"
    " u AS (UPDATE crier.notice t SET state = 'ready', channel = $4, channel_index = $5,"
    "  channel_attempt = 0, channel_started_at = NULL, next_attempt_at = now(),"
    "  updated_at = now()"
    "  FROM n WHERE t.campaign_id = $1 AND t.id = n.id"
    "  AND NOT (n.state = 'ready' AND n.channel = $4) RETURNING t.id),"
    " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref,"
    "  channel, from_state, to_state, to_channel, attempt, actor, reason)"
    "  SELECT n.campaign_id, 'transition', n.id, $6, n.channel, n.state, 'ready',"
    "  nullif($4, n.channel), n.attempt, $7, $8 FROM n JOIN u ON u.id = n.id)"
    " SELECT count(*) FROM u";

static int reach_again(struct crier_db *db, const char *campaign_id, const struct person *p,
                       const struct campaign *c, int index, const char *reason, const char *actor,
                       bool *ret_moved)
{
    const char *params[] = {campaign_id,   p->notice_id,        p->state, c->policy[index],
                            DB_NUM(index), p->field[FIELD_REF], actor,    reason};
    long moved = 0;
    int r = db_query_long(db, reach_again_sql, 8, params, &moved);
    *ret_moved = r == 0 && moved == 1;
    return r;
}

/* reopen - a completed campaign with a notice queued again runs again (logged). */
static int reopen(struct crier_db *db, const char *campaign_id, const char *actor, const char *why)
{
    const char *params[] = {campaign_id, actor, why};
    return db_exec(db,
                   "WITH reopened AS (UPDATE crier.campaign SET state = 'running',"
                   " finished_at = NULL WHERE id = $1 AND state = 'completed' RETURNING id)"
                   " INSERT INTO crier.dispatch_log (campaign_id, event, from_state, to_state,"
                   " actor, detail) SELECT id, 'campaign', 'completed', 'running', $2, $3"
                   " FROM reopened",
                   3, params);
}

/* ---- a new version of the contacts --------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* changes_text - "email: 'a@x' -> 'b@y'; fax: none -> '+1555'", or NULL when none. */
static char *changes_text(const struct person *p, const char *const *field, bool mailable)
{
    char *text = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(contact_fields); i++) {
        enum crier_field f = contact_fields[i];
        if (same(p->field[f], field[f]))
            continue;
        char *old = p->field[f] ? xasprintf("'%s'", p->field[f]) : xstrdup("none");
        char *new = field[f] ? xasprintf("'%s'", field[f]) : xstrdup("none");
        char *longer = xasprintf("%s%s%s: %s -> %s", text ? text : "", text ? "; " : "",
                                 field_name(f), old, new);
        free(old);
        free(new);
        free(text);
        text = longer;
    }
    if (text && p->mailable != mailable) {
        char *longer = xasprintf("%s; mailable: %s -> %s", text, p->mailable ? "yes" : "no",
                                 mailable ? "yes" : "no");
        free(text);
        text = longer;
    }
    return text;
}

static const char version_sql[] =
    "WITH v AS (INSERT INTO crier.recipient_version (campaign_id, seq, version, ref, name,"
    "  email, fax, address1, address2, city, region, postal_code, country, mailable, source,"
    "  source_row, reason, by)"
    "  VALUES ($1, $2, $3::integer + 1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    "  $16, $17, $18) RETURNING version)"
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    "  from_state, to_state, attempt, actor, detail, reason)"
    " SELECT $1, 'amend', n.id, $4, n.channel, n.state, n.state, n.attempt, $18,"
    "  'version ' || v.version || ' (' || $15 || ', ' || $16 || '): ' || $19, $17"
    " FROM v, crier.notice n WHERE n.campaign_id = $1 AND n.id = $20";

static int version_add(struct crier_db *db, const char *campaign_id, const struct person *p,
                       const char *const *field, bool mailable, const char *source,
                       const char *source_row, const char *reason, const char *actor,
                       const char *changes)
{
    const char *params[20] = {campaign_id, p->seq, p->version, p->field[FIELD_REF]};
    for (int f = FIELD_NAME; f <= FIELD_COUNTRY; f++)
        params[3 + f] = field[f];
    params[13] = mailable ? "t" : "f";
    params[14] = source;
    params[15] = source_row;
    params[16] = reason;
    params[17] = actor;
    params[18] = changes;
    params[19] = p->notice_id;
    return db_exec(db, version_sql, 20, params);
}

/* ---- the corrections file ---------------------------------------------------------------- */

struct seen {
    char *ref; /* NULL: free slot */
    unsigned long line;
};

struct amend {
    struct crier_db *db;
    const struct amend_options *options;
    struct progress bar; /* options->progress: rows so far, on stderr */
    struct campaign *campaign;
    char campaign_id[32];
    struct csv_reader *csv;
    const struct csv_record *header;
    char **columns;
    size_t column_count;
    int column[FIELD_COUNT]; /* file column of each field, -1 if absent */
    struct seen *seen;       /* refs of earlier rows, with their lines: open addressing */
    size_t seen_count, seen_cap;
    FILE *rejects, *diag;
    struct amend_result result;
    struct csv_record batch[AMEND_BATCH]; /* rows read, waiting for their batch (copies) */
    size_t pending;
    struct db_array versions[V_COLUMNS], again[A_COLUMNS]; /* the batch's writes */
    size_t version_count, again_count;
};

static int map_columns(struct amend *a, const struct crier_config *config, char *err,
                       size_t err_size)
{
    for (int f = 0; f < FIELD_COUNT; f++)
        a->column[f] = -1;
    for (size_t c = 0; c < a->column_count; c++) {
        int found = -1;
        for (int f = 0; f < FIELD_COUNT && found < 0; f++) {
            const char *want = config->import.columns[f] ? config->import.columns[f]
                                                         : field_name((enum crier_field)f);
            if (strcasecmp(a->columns[c], want) == 0)
                found = f;
        }
        if (found < 0) {
            snprintf(err, err_size,
                     "%s: column '%s' is not a contact (a correction changes ref's name, email,"
                     " fax, address1, address2, city, region, postal_code or country)",
                     a->options->csv_path, a->columns[c]);
            return -EINVAL;
        }
        if (a->column[found] >= 0) {
            snprintf(err, err_size, "%s: column '%s' appears twice in the header",
                     a->options->csv_path, a->columns[c]);
            return -EINVAL;
        }
        a->column[found] = (int)c;
    }
    if (a->column[FIELD_REF] < 0) {
        snprintf(err, err_size, "%s: the header has no 'ref' column", a->options->csv_path);
        return -EINVAL;
    }
    return 0;
}

/* reject - one refused row: to diag (the first few) and the reject file (all). */
static int reject(struct amend *a, const struct csv_record *record, const char *ref,
                  const char *reason)
{
    a->result.rejected++;
    if (a->diag && a->result.rejected <= DIAG_REJECTS) {
        progress_clear(&a->bar);
        fprintf(a->diag, "crier: %s:%lu:%s%s rejected: %s\n", a->options->csv_path, record->line,
                ref ? " ref " : "", ref ? ref : "", reason);
    }
    if (a->rejects == NULL)
        return 0;
    char where[32];
    snprintf(where, sizeof(where), "line %lu", record->line);
    csv_write_field(a->rejects, where);
    fputs(",rejected,", a->rejects);
    csv_write_field(a->rejects, reason);
    for (size_t c = 0; c < a->column_count; c++) {
        fputc(',', a->rejects);
        csv_write_field(a->rejects, c < record->count ? record->fields[c] : "");
    }
    fputc('\n', a->rejects);
    return ferror(a->rejects) ? -EIO : 0;
}

static size_t ref_hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void seen_insert(struct seen *slots, size_t cap, char *ref, unsigned long line)
{
    size_t i = ref_hash(ref) & (cap - 1);
    while (slots[i].ref)
        i = (i + 1) & (cap - 1);
    slots[i] = (struct seen){ref, line};
}

/* seen_before - the line of an earlier row with this ref, else 0 (and remember it). A
 * hash set: a corrections file may be as long as a list. */
static unsigned long seen_before(struct amend *a, const char *ref, unsigned long line)
{
    if ((a->seen_count + 1) * 2 > a->seen_cap) {
        size_t cap = a->seen_cap ? a->seen_cap * 2 : 256;
        struct seen *slots = xcalloc(cap, sizeof(*slots));
        for (size_t i = 0; i < a->seen_cap; i++)
            if (a->seen[i].ref)
                seen_insert(slots, cap, a->seen[i].ref, a->seen[i].line);
        free(a->seen);
        a->seen = slots;
        a->seen_cap = cap;
    }
    for (size_t i = ref_hash(ref) & (a->seen_cap - 1); a->seen[i].ref;
         i = (i + 1) & (a->seen_cap - 1))
        if (strcmp(a->seen[i].ref, ref) == 0)
            return a->seen[i].line;
    seen_insert(a->seen, a->seen_cap, xstrdup(ref), line);
    a->seen_count++;
    return 0;
}

/* note_given - is the contact a validation note is about one the file gives? */
static bool note_given(const struct amend *a, const char *note)
{
    if (strncmp(note, "email:", 6) == 0)
        return a->column[FIELD_EMAIL] >= 0;
    if (strncmp(note, "fax:", 4) == 0)
        return a->column[FIELD_FAX] >= 0;
    for (int f = FIELD_ADDRESS1; f <= FIELD_COUNTRY; f++)
        if (a->column[f] >= 0)
            return true;
    return false;
}

/*
 * merged_valid - the person's contacts with the row's columns over them, validated as a
 * load validates. NULL when valid; else why (the caller frees). A contact the file gives
 * that does not validate rejects the row: a load would drop it, a correction must not.
 */
static char *merged_valid(const struct amend *a, const struct csv_record *record,
                          const struct person *p, struct recipient_valid *v)
{
    struct recipient_input in = {{0}};
    for (int f = 0; f < FIELD_COUNT; f++) {
        int c = a->column[f];
        in.field[f] = c < 0 || (size_t)c >= record->count ? p->field[f]
                      : str_empty(record->fields[c])      ? NULL
                                                          : record->fields[c];
    }
    in.field[FIELD_REF] = p->field[FIELD_REF];
    if (validate_recipient(&in, v) < 0)
        return xstrdup(v->reject_reason ? v->reject_reason : "invalid row");
    for (size_t i = 0; i < v->note_count; i++)
        if (note_given(a, v->notes[i]))
            return xstrdup(v->notes[i]);
    return NULL;
}

/* ---- the corrections, a batch at a time ------------------------------------------------------
 * A row costs no round trip of its own: the people of up to AMEND_BATCH rows are read, and
 * their notices locked, in one query; their new versions with their log rows, and the
 * notices queued again with theirs, are written in one statement each. */

static const char people_sql[] =
    PERSON_SELECT " WHERE r.campaign_id = $1 AND r.ref = ANY ($2::text[]) FOR UPDATE OF n";

static const char versions_sql[] =
    "WITH i AS (SELECT * FROM unnest($4::integer[], $5::integer[], $6::text[], $7::text[],"
    "  $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],"
    "  $15::text[], $16::boolean[], $17::text[], $18::text[], $19::bigint[]) WITH ORDINALITY"
    "  AS i(seq, version, ref, name, email, fax, address1, address2, city, region, postal_code,"
    "  country, mailable, source_row, changes, notice_id, ord)),"
    " v AS (INSERT INTO crier.recipient_version (campaign_id, seq, version, ref, name, email,"
    "  fax, address1, address2, city, region, postal_code, country, mailable, source,"
    "  source_row, reason, by)"
    "  SELECT $1::bigint, seq, version + 1, ref, name, email, fax, address1, address2, city,"
    "  region, postal_code, country, mailable, 'amend', source_row, $2::text, $3::text"
    "  FROM i ORDER BY ord RETURNING seq, version)"
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    "  from_state, to_state, attempt, actor, detail, reason)"
    " SELECT $1::bigint, 'amend', n.id, i.ref, n.channel, n.state, n.state, n.attempt, $3::text,"
    "  'version ' || v.version || ' (amend, ' || i.source_row || '): ' || i.changes, $2::text"
    " FROM i JOIN v ON v.seq = i.seq JOIN crier.notice n ON n.campaign_id = $1::bigint"
    "  AND n.id = i.notice_id ORDER BY i.ord";

/* the notices of a batch queued again: reach_again_sql for many, from the states read */

static const char again_sql[] =
    "WITH i AS (SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::integer[],"
    "  $7::text[], $8::text[]) WITH ORDINALITY AS i(id, state, to_channel, idx, ref, reason, ord)),"
    " n AS (SELECT t.id, t.campaign_id, t.state, t.channel, t.attempt, i.to_channel, i.idx,"
    "  i.ref, i.reason, i.ord FROM i JOIN crier.notice t ON t.campaign_id = $1::bigint"
    "  AND t.id = i.id AND t.state = i.state),"
    " u AS (UPDATE crier.notice t SET state = 'ready', channel = n.to_channel,"
    "  channel_index = n.idx, channel_attempt = 0, channel_started_at = NULL,"
    "  next_attempt_at = now(), updated_at = now()"
    "  FROM n WHERE t.campaign_id = $1::bigint AND t.id = n.id"
    "  AND NOT (n.state = 'ready' AND n.channel = n.to_channel) RETURNING t.id),"
    " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref,"
    "  channel, from_state, to_state, to_channel, attempt, actor, reason)"
    "  SELECT n.campaign_id, 'transition', n.id, n.ref, n.channel, n.state, 'ready',"
    "  nullif(n.to_channel, n.channel), n.attempt, $2::text, n.reason FROM n JOIN u ON u.id = n.id"
    "  ORDER BY n.ord)"
    /* queued again: moved, or ready on that channel already */
    " SELECT (SELECT count(*) FROM u)"
    "  + (SELECT count(*) FROM n WHERE n.state = 'ready' AND n.id NOT IN (SELECT id FROM u))";

/* requeue - after a new version: queue the notice again where the contacts allow (into the
 * batch's arrays). */
static void requeue(struct amend *a, const struct person *p, const char *const *field,
                    bool mailable)
{
    enum standing s = standing_of(p);
    if (s == IN_FLIGHT || s == CLOSED) {
        a->result.in_flight++;
        return;
    }
    if (s == REACHED && !a->options->resend) {
        a->result.reached++;
        return;
    }
    char why[POLICY_REASON_MAX] = "";
    int index = first_channel(a->campaign, field, mailable, p->vars, why, sizeof(why));
    if (index < 0) {
        a->result.no_channel++;
        return;
    }
    char *reason = xasprintf("%s: %s", s == REACHED ? "amended, sent again (--resend)" : "amended",
                             a->options->reason);
    db_array_add(&a->again[A_NOTICE], p->notice_id);
    db_array_add(&a->again[A_STATE], p->state);
    db_array_add(&a->again[A_CHANNEL], a->campaign->policy[index]);
    db_array_add_long(&a->again[A_INDEX], index);
    db_array_add(&a->again[A_REF], p->field[FIELD_REF]);
    db_array_add(&a->again[A_REASON], reason);
    a->again_count++;
    free(reason);
}

static void version_push(struct amend *a, const struct person *p, const char *const *field,
                         bool mailable, unsigned long line, const char *changes)
{
    struct db_array *v = a->versions;
    db_array_add(&v[V_SEQ], p->seq);
    db_array_add(&v[V_VERSION], p->version);
    db_array_add(&v[V_REF], p->field[FIELD_REF]);
    for (size_t i = 0; i < ARRAY_SIZE(contact_fields); i++)
        db_array_add(&v[V_CONTACTS + i], field[contact_fields[i]]);
    db_array_add(&v[V_MAILABLE], mailable ? "t" : "f");
    char where[64];
    snprintf(where, sizeof(where), "corrections line %lu", line);
    db_array_add(&v[V_ROW], where);
    db_array_add(&v[V_CHANGES], changes);
    db_array_add(&v[V_NOTICE], p->notice_id);
    a->version_count++;
}

static const char *row_ref(const struct amend *a, const struct csv_record *record)
{
    int c = a->column[FIELD_REF];
    return c < (int)record->count ? record->fields[c] : NULL;
}

/* batch_row - one correction against the person read for it (NULL: no such ref); a
 * rejection is counted and written, not returned. */
static int batch_row(struct amend *a, const struct csv_record *record, const struct person *p)
{
    const char *ref = row_ref(a, record);
    if (str_empty(ref))
        return reject(a, record, NULL, "no ref");
    unsigned long earlier = seen_before(a, ref, record->line);
    if (earlier) {
        char *why = xasprintf("ref '%s' appears twice (first at line %lu)", ref, earlier);
        int r = reject(a, record, ref, why);
        free(why);
        return r;
    }
    if (p == NULL) {
        char *why = xasprintf("no ref '%s' in campaign '%s'", ref, a->campaign->name);
        int r = reject(a, record, ref, why);
        free(why);
        return r;
    }
    struct recipient_valid v;
    char *why = merged_valid(a, record, p, &v);
    int r = 0;
    if (why) {
        r = reject(a, record, ref, why);
        free(why);
    } else {
        const char *const *field = (const char *const *)v.field;
        char *changes = changes_text(p, field, v.has_address);
        if (changes == NULL) {
            a->result.unchanged++;
        } else if (a->result.rejected == 0) { /* after a rejection nothing will commit */
            version_push(a, p, field, v.has_address, record->line, changes);
            a->result.amended++;
            requeue(a, p, field, v.has_address);
        }
        free(changes);
    }
    recipient_valid_clear(&v);
    return r;
}

static int batch_write(struct amend *a)
{
    int r = 0;
    if (a->version_count > 0) {
        const char *params[3 + V_COLUMNS] = {a->campaign_id, a->options->reason, a->options->actor};
        db_arrays_end(a->versions, V_COLUMNS, params + 3);
        r = db_exec(a->db, versions_sql, 3 + V_COLUMNS, params);
    }
    if (r == 0 && a->again_count > 0) {
        const char *params[2 + A_COLUMNS] = {a->campaign_id, a->options->actor};
        db_arrays_end(a->again, A_COLUMNS, params + 2);
        long requeued = 0;
        r = db_query_long(a->db, again_sql, 2 + A_COLUMNS, params, &requeued);
        a->result.requeued += requeued;
    }
    db_arrays_free(a->versions, V_COLUMNS);
    db_arrays_free(a->again, A_COLUMNS);
    memset(a->versions, 0, sizeof(a->versions));
    memset(a->again, 0, sizeof(a->again));
    a->version_count = a->again_count = 0;
    return r;
}

/* batch_apply - the rows read so far: their people in one query, then each row, then the
 * writes. The rows are freed. */
static int batch_apply(struct amend *a)
{
    struct db_array refs = {0};
    for (size_t i = 0; i < a->pending; i++)
        db_array_add(&refs, row_ref(a, &a->batch[i]));
    const char *params[] = {a->campaign_id, db_array_end(&refs)};
    PGresult *res = NULL;
    int r = a->pending ? db_query(a->db, people_sql, 2, params, &res) : 0;
    db_array_free(&refs);
    int rows = res ? PQntuples(res) : 0;
    for (size_t i = 0; r == 0 && i < a->pending; i++) {
        const char *ref = row_ref(a, &a->batch[i]);
        struct person p = {0}, *found = NULL;
        for (int k = 0; ref && k < rows && found == NULL; k++)
            if (strcmp(PQgetvalue(res, k, 2), ref) == 0) {
                person_from_row(res, k, &p);
                found = &p;
            }
        r = batch_row(a, &a->batch[i], found);
    }
    PQclear(res);
    if (r == 0)
        r = batch_write(a);
    for (size_t i = 0; i < a->pending; i++)
        strv_free(a->batch[i].fields);
    a->pending = 0;
    return r;
}

/* row_read - one row, copied to wait for its batch (checked there, in file order, so that
 * the reject file lists the rows as the file has them). */
static int row_read(struct amend *a, const struct csv_record *record)
{
    struct csv_record *copy = &a->batch[a->pending++];
    copy->count = record->count;
    copy->line = record->line;
    copy->lengths = NULL;
    copy->fields = xcalloc(record->count + 1, sizeof(char *));
    for (size_t c = 0; c < record->count; c++)
        copy->fields[c] = xstrdup(record->fields[c]);
    return a->pending == AMEND_BATCH ? batch_apply(a) : 0;
}

/* amend_open - the campaign (locked), the file and its header, the reject file. */
static int amend_open(struct amend *a, const struct crier_config *config, char *reject_tmp,
                      char *err, size_t err_size)
{
    int r = campaign_get(a->db, a->options->campaign, true, &a->campaign);
    if (r < 0) {
        snprintf(err, err_size, "%s", a->db->error);
        return r;
    }
    if (strcmp(a->campaign->state, "cancelled") == 0) {
        snprintf(err, err_size, "campaign '%s' is cancelled: nothing in it is sent again",
                 a->campaign->name);
        return -EPERM;
    }
    snprintf(a->campaign_id, sizeof(a->campaign_id), "%lld", (long long)a->campaign->id);
    r = csv_reader_open(a->options->csv_path, &a->csv, err, err_size);
    if (r < 0)
        return r;
    r = csv_reader_next(a->csv, &a->header, err, err_size);
    if (r <= 0) {
        if (r == 0)
            snprintf(err, err_size, "%s: empty file (a header line is required)",
                     a->options->csv_path);
        return r == 0 ? -EINVAL : r;
    }
    a->column_count = a->header->count;
    a->columns = xcalloc(a->column_count + 1, sizeof(char *));
    for (size_t c = 0; c < a->column_count; c++)
        a->columns[c] = xstrdup(a->header->fields[c]);
    r = map_columns(a, config, err, err_size);
    if (r < 0 || reject_tmp == NULL)
        return r;
    a->rejects = fopen(reject_tmp, "w");
    if (a->rejects == NULL) {
        snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
        return -EIO;
    }
    fputs("source_row,disposition,reason", a->rejects);
    for (size_t c = 0; c < a->column_count; c++) {
        fputc(',', a->rejects);
        csv_write_field(a->rejects, a->columns[c]);
    }
    fputc('\n', a->rejects);
    return 0;
}

static void amend_close(struct amend *a)
{
    csv_reader_free(a->csv);
    campaign_free(a->campaign);
    strv_free(a->columns);
    for (size_t i = 0; i < a->pending; i++)
        strv_free(a->batch[i].fields);
    db_arrays_free(a->versions, V_COLUMNS);
    db_arrays_free(a->again, A_COLUMNS);
    for (size_t i = 0; i < a->seen_cap; i++)
        free(a->seen[i].ref);
    free(a->seen);
    if (a->rejects)
        fclose(a->rejects);
}

/* amend_rows - every row; a rejection goes on, so that the reject file names them all. */
static int amend_rows(struct amend *a, char *err, size_t err_size)
{
    const struct csv_record *record = NULL;
    progress_start(&a->bar, a->options->progress, "campaign amend");
    int r;
    while ((r = csv_reader_next(a->csv, &record, err, err_size)) > 0) {
        a->result.rows++;
        r = row_read(a, record);
        progress_add(&a->bar, 1);
        if (r < 0) {
            progress_clear(&a->bar);
            if (a->rejects && ferror(a->rejects))
                snprintf(err, err_size, "writing the reject file: %s", strerror(errno));
            else
                snprintf(err, err_size, "%s:%lu: %s", a->options->csv_path, record->line,
                         a->db->error);
            return r;
        }
    }
    if (r == 0)
        r = batch_apply(a);
    progress_end(&a->bar);
    if (r < 0) {
        if (err[0] == '\0')
            snprintf(err, err_size, "%s: %s", a->options->csv_path, a->db->error);
        return r;
    }
    if (a->result.rejected > 0) {
        snprintf(err, err_size, "%s: %ld row%s rejected; nothing was applied", a->options->csv_path,
                 a->result.rejected, a->result.rejected == 1 ? "" : "s");
        return -EINVAL;
    }
    if (a->result.requeued > 0) {
        char *why = xasprintf("reopened: amend queued %ld notice%s again", a->result.requeued,
                              a->result.requeued == 1 ? "" : "s");
        r = reopen(a->db, a->campaign_id, a->options->actor, why);
        free(why);
        if (r < 0)
            snprintf(err, err_size, "%s", a->db->error);
    }
    return r;
}

int amend_apply(struct crier_db *db, const struct crier_config *config,
                const struct amend_options *options, FILE *diag, struct amend_result *ret_result,
                char *err, size_t err_size)
{
    if (str_empty(options->reason)) {
        snprintf(err, err_size, "--reason is required: it is logged with every change");
        return -EINVAL;
    }
    struct amend a = {.db = db, .options = options, .diag = diag};
    char *reject_tmp = options->reject_path ? xasprintf("%s.tmp", options->reject_path) : NULL;
    int r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        free(reject_tmp);
        return r;
    }
    r = amend_open(&a, config, reject_tmp, err, err_size);
    if (r == 0)
        r = amend_rows(&a, err, err_size);
    if (a.rejects && (fflush(a.rejects) != 0 || ferror(a.rejects)) && r == 0) {
        snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
        r = -EIO;
    }
    r = db_end(db, r);
    if (r < 0 && err[0] == '\0')
        snprintf(err, err_size, "%s", db->error);
    /* the reject file is kept when rows were rejected: it is what the operator fixes */
    bool keep = a.rejects && (r == 0 || a.result.rejected > 0);
    amend_close(&a);
    if (reject_tmp) {
        if (keep && rename(reject_tmp, options->reject_path) != 0 && diag)
            fprintf(diag, "crier: %s could not be renamed to %s: %s\n", reject_tmp,
                    options->reject_path, strerror(errno));
        if (!keep)
            unlink(reject_tmp);
    }
    free(reject_tmp);
    *ret_result = a.result;
    return r;
}

/* ---- a forwarding address -------------------------------------------------------------- */

int amend_forward(struct crier_db *db, const char *campaign, const char *ref,
                  const struct amend_contacts *address, const char *source_row, const char *actor,
                  int *ret_done, char *err, size_t err_size)
{
    struct campaign *c = NULL;
    struct person p = {0};
    *ret_done = -1;
    int r = campaign_get(db, campaign, true, &c);
    if (r < 0) {
        snprintf(err, err_size, "%s", r == -ENOENT ? "no such campaign" : db->error);
        return r == -ENOENT ? 0 : r;
    }
    char campaign_id[32];
    snprintf(campaign_id, sizeof(campaign_id), "%lld", (long long)c->id);
    /* once per person: a second forwarding label for them is logged by the caller only */
    const char *once_params[] = {campaign_id, ref};
    PGresult *once = NULL;
    r = db_query(db,
                 "SELECT count(*) FROM crier.recipient_version v JOIN crier.recipient r"
                 " ON r.campaign_id = v.campaign_id AND r.seq = v.seq"
                 " WHERE r.campaign_id = $1 AND r.ref = $2 AND v.source = 'forwarding'",
                 2, once_params, &once);
    if (r < 0)
        goto out;
    bool forwarded = strcmp(PQgetvalue(once, 0, 0), "0") != 0;
    PQclear(once);
    if (forwarded) {
        *ret_done = 0;
        goto out;
    }
    r = person_load(db, campaign_id, ref, &p);
    if (r == -ENOENT) {
        snprintf(err, err_size, "no ref '%s' in campaign '%s'", ref, campaign);
        r = 0;
        goto out;
    }
    if (r < 0 || standing_of(&p) != NOT_REACHED || strcmp(p.state, "mailed") != 0) {
        if (r == 0)
            snprintf(err, err_size, "the letter to ref '%s' is %s, not returned", ref, p.state);
        goto out;
    }
    const char *field[FIELD_COUNT];
    memcpy(field, p.field, sizeof(field));
    for (int f = FIELD_ADDRESS1; f <= FIELD_COUNTRY; f++)
        field[f] = address->field[f];
    char *changes = changes_text(&p, field, true);
    r = version_add(db, campaign_id, &p, field, true, "forwarding", source_row,
                    "forwarding address on returned mail", actor,
                    changes ? changes : "address unchanged");
    free(changes);
    int index = -1; /* the channel the letter came back from, which mails it again */
    for (size_t i = 0; c->policy[i]; i++)
        if (strcmp(c->policy[i], p.channel) == 0)
            index = (int)i;
    bool moved = false;
    if (r == 0 && index >= 0)
        r = reach_again(db, campaign_id, &p, c, index, "forwarding address: mailed again once",
                        actor, &moved);
    if (r == 0 && moved)
        r = reopen(db, campaign_id, actor, "reopened: a forwarded letter is mailed again");
    if (r == 0)
        *ret_done = moved ? 1 : -1;
out:
    if (r < 0)
        snprintf(err, err_size, "%s", db->error);
    person_clear(&p);
    campaign_free(c);
    return r;
}

/* ---- another copy -------------------------------------------------------------------- */

static int resend_checked(struct crier_db *db, const struct campaign *c, const char *campaign_id,
                          const struct person *p, const char *channel, const char *reason,
                          const char *actor, char *err, size_t err_size)
{
    int index = -1;
    for (size_t i = 0; c->policy[i]; i++)
        if (strcmp(c->policy[i], channel) == 0)
            index = (int)i;
    if (index < 0) {
        snprintf(err, err_size,
                 "campaign '%s' does not send by %s (its policy lists the channels"
                 " it can)",
                 c->name, channel);
        return -EINVAL;
    }
    enum crier_channel_id id;
    const char *why = "unknown channel";
    struct crier_notice view = {.ref = p->field[FIELD_REF],
                                .name = p->field[FIELD_NAME],
                                .email = p->field[FIELD_EMAIL],
                                .fax = p->field[FIELD_FAX],
                                .country = p->field[FIELD_COUNTRY],
                                .mailable = p->mailable,
                                .vars_json = p->vars};
    for (int k = 0; k < 5; k++)
        view.address[k] = p->field[FIELD_ADDRESS1 + k];
    if (channel_id_from_name(channel, &id) < 0 || !channel_reachable(id, &view, &why)) {
        snprintf(err, err_size, "ref '%s' cannot be reached by %s: %s", p->field[FIELD_REF],
                 channel, why);
        return -EINVAL;
    }
    enum standing s = standing_of(p);
    if (s == IN_FLIGHT || s == CLOSED || strcmp(p->state, "ready") == 0) {
        snprintf(err, err_size, "ref '%s' is %s on %s: a copy is sent once that is over",
                 p->field[FIELD_REF], p->state, p->channel);
        return s == CLOSED ? -EPERM : -EBUSY;
    }
    const char *params[] = {campaign_id, p->notice_id, p->field[FIELD_REF], channel, p->state,
                            actor,       reason};
    int r = db_exec(db,
                    "INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
                    " recipient_ref, channel, from_state, to_state, attempt, actor, detail,"
                    " reason) SELECT $1, 'resend', n.id, $3, n.channel, $5, 'ready', n.attempt,"
                    " $6, 'another copy by ' || $4 || ' (a resend, not a retry)', $7"
                    " FROM crier.notice n WHERE n.campaign_id = $1 AND n.id = $2",
                    7, params);
    char *why_text = xasprintf("resend: %s", reason);
    bool moved = false;
    if (r == 0)
        r = reach_again(db, campaign_id, p, c, index, why_text, actor, &moved);
    free(why_text);
    if (r == 0 && moved)
        r = reopen(db, campaign_id, actor, "reopened: a copy is sent again (notice resend)");
    if (r < 0)
        snprintf(err, err_size, "%s", db->error);
    return r;
}

int notice_resend(struct crier_db *db, const char *campaign, const char *ref, const char *channel,
                  const char *reason, const char *actor, char *err, size_t err_size)
{
    if (str_empty(reason)) {
        snprintf(err, err_size, "--reason is required: it is logged with the resend");
        return -EINVAL;
    }
    int r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    struct campaign *c = NULL;
    struct person p = {0};
    r = campaign_get(db, campaign, true, &c);
    if (r < 0) {
        snprintf(err, err_size, "%s", r == -ENOENT ? "no such campaign" : db->error);
        goto out;
    }
    char campaign_id[32];
    snprintf(campaign_id, sizeof(campaign_id), "%lld", (long long)c->id);
    r = person_load(db, campaign_id, ref, &p);
    if (r < 0) {
        snprintf(err, err_size, "%s", r == -ENOENT ? "no such ref in the campaign" : db->error);
        goto out;
    }
    r = resend_checked(db, c, campaign_id, &p, channel, reason, actor, err, err_size);
out:
    r = db_end(db, r);
    if (r < 0 && err[0] == '\0')
        snprintf(err, err_size, "%s", db->error);
    person_clear(&p);
    campaign_free(c);
    return r;
}
