/*
 * queue.c - the claim and record SQL (see docs/architecture.md for the state machine).
 *
 * Nothing here keeps state in memory: a worker killed at any instant leaves notices in
 * sending under a lease that expires, and queue_reap() puts them back, logged as such.
 * Values always travel as parameters; arrays are built as PostgreSQL array literals
 * (db_array). The claimed rows are read as notice.h lays them out (notice_from_row).
 */
#include "crier/queue.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/hold.h"
#include "crier/poll.h"
#include "crier/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The claim. The candidate scan uses the partial index notice_claim; SKIP LOCKED lets any
 * number of lanes and processes claim side by side without waiting on each other. A
 * notice's lease owner and expiry are set in the same statement that logs the claim.
 */
/* clang-format off */
#define CLAIM_HEAD \
    /* FOR SHARE on the campaign row: a pause or cancel (which locks it FOR UPDATE) waits          \
     * for this claim to commit, and a claim waits for them, so no claim slips past one */         \
    /* The shared advisory lock first: a hold placement takes it exclusively, and a waiting        \
     * exclusive request queues the shared ones behind it, which shared row locks would not        \
     * (the lanes' overlapping FOR SHARE locks could starve a placement for seconds). */           \
    "WITH RECURSIVE gate AS (SELECT pg_advisory_xact_lock_shared(" CAMPAIGN_LOCK_CLASS ","         \
    " $1::integer)),"                                                                              \
    " running AS ("                                                                                \
    " SELECT c.id, c.holds_placed FROM crier.campaign c, gate WHERE c.id = $1"                     \
    " AND c.state = 'running' FOR SHARE OF c),"                                                    \
    /* law-enforcement holds (hold.c, docs/holds.md): the campaign's active holds, once;           \
     * a recipient hold as the recipient's seq, which the notice row carries */                    \
    " active AS ("                                                                                 \
    " SELECT region, recipient_ref FROM crier.hold_state($8) WHERE campaign_id = $1 AND active),"  \
    " holds AS ("                                                                                  \
    " SELECT coalesce((SELECT bool_or(region IS NULL AND recipient_ref IS NULL) FROM active),"     \
    " false) AS whole,"                                                                            \
    " (SELECT coalesce(array_agg(region), '{}') FROM active WHERE region IS NOT NULL)"             \
    " AS regions,"                                                                                 \
    " (SELECT coalesce(array_agg(r.seq), '{}') FROM crier.recipient r WHERE r.campaign_id = $1"    \
    " AND r.ref IN (SELECT recipient_ref FROM active)) AS seqs,"                                   \
    /* the skip scan below, only where it has its index: a campaign's region index is built       \
     * once a region hold is placed on it (022_region_index_lazy.sql); until then, or should       \
     * its build have failed, the walk compares each row's region from the cursor on */           \
    " EXISTS (SELECT 1 FROM active WHERE region IS NOT NULL)"                                      \
    " AND to_regclass('crier.notice_c' || $1 || '_claim_region') IS NOT NULL AS skip),"            \
    /* While a region hold is active: the first due notice after the cursor that no region         \
     * hold covers, found region by region in the campaign's region index (021, 022):             \
     * the regions with ready notices, one probe each (a skip scan, from the last region           \
     * down: a region's last entries are its live ones, its first the notices claimed since        \
     * the last vacuum), then one probe in each region not held, and in the notices whose          \
     * region is not known (NULL). The walk of notice_claim starts there, past every held          \
     * notice before it; with none, at infinity: an empty claim reads no notice. Without a         \
     * region hold these are one-off filters. */                                                   \
    " ready_regions (region) AS ("                                                                 \
    " (SELECT n.region FROM crier.notice n WHERE n.campaign_id = $1 AND n.channel = $2"            \
    " AND n.state = 'ready' AND n.region IS NOT NULL AND (SELECT skip FROM holds)"                 \
    " ORDER BY n.region DESC LIMIT 1)"                                                             \
    " UNION ALL SELECT (SELECT n.region FROM crier.notice n WHERE n.campaign_id = $1"              \
    " AND n.channel = $2 AND n.state = 'ready' AND n.region < g.region"                            \
    " ORDER BY n.region DESC LIMIT 1) FROM ready_regions g WHERE g.region IS NOT NULL),"           \
    " unheld AS ("                                                                                 \
    " SELECT f.next_attempt_at, f.id FROM ready_regions g CROSS JOIN LATERAL"                      \
    " (SELECT n.next_attempt_at, n.id FROM crier.notice n WHERE n.campaign_id = $1"                \
    " AND n.channel = $2 AND n.state = 'ready' AND n.region = g.region"                            \
    " AND n.next_attempt_at <= now() AND (n.next_attempt_at, n.id) > ($6::timestamptz, $7::bigint)"\
    " ORDER BY n.next_attempt_at, n.id LIMIT 1) f"                                                 \
    " WHERE NOT upper(g.region) = ANY ((SELECT regions FROM holds)::text[])"                       \
    " UNION ALL (SELECT n.next_attempt_at, n.id FROM crier.notice n WHERE n.campaign_id = $1"      \
    " AND n.channel = $2 AND n.state = 'ready' AND n.region IS NULL"                               \
    " AND n.next_attempt_at <= now() AND (n.next_attempt_at, n.id) > ($6::timestamptz, $7::bigint)"\
    " AND (SELECT skip FROM holds) ORDER BY n.next_attempt_at, n.id LIMIT 1)),"                    \
    /* the walk starts after (at, id): the cursor, or just before the first notice not held */     \
    " bound AS ("                                                                                  \
    " SELECT CASE WHEN NOT h.skip THEN $6::timestamptz"                                            \
    " ELSE coalesce(u.next_attempt_at, 'infinity') END AS at,"                                     \
    " CASE WHEN NOT h.skip THEN $7::bigint ELSE coalesce(u.id - 1, 0) END AS id"                   \
    " FROM holds h LEFT JOIN (SELECT * FROM unheld ORDER BY next_attempt_at, id LIMIT 1) u"        \
    " ON true),"                                                                                   \
    " candidate AS ("                                                                              \
    /* a constant campaign_id, and the running check as a one-off InitPlan: a join with            \
     * `running` made the planner give up the claim index for a sort of the whole queue */         \
    " SELECT n.id FROM crier.notice n"                                                             \
    " WHERE n.campaign_id = $1 AND EXISTS (SELECT 1 FROM running)"                                 \
    " AND n.channel = $2 AND n.state = 'ready'"                                                    \
    " AND n.next_attempt_at <= now()"                                                              \
    /* the lane's cursor: start after what it claimed last (see queue_cursor) */                   \
    " AND (n.next_attempt_at, n.id) > ((SELECT at FROM bound), (SELECT id FROM bound))"            \
    /* A hold placed while this claim waited for the campaign row bumped holds_placed, and         \
     * FOR SHARE returns the row as committed; this statement's snapshot then sees one             \
     * hold fewer than were placed: claim nothing this time (docs/holds.md, "The race").           \
     * The hold checks are one-off InitPlans and values of the row; only a notice whose            \
     * region is not known (NULL: loaded before 021) costs a probe of its recipient, a             \
     * correlated scalar subquery that coalesce runs only then. */                                 \
    " AND (SELECT holds_placed FROM running)"                                                      \
    " = (SELECT count(*) FROM crier.hold WHERE campaign_id = $1)"                                  \
    " AND NOT (SELECT whole FROM holds)"                                                           \
    " AND NOT (n.recipient_seq = ANY ((SELECT seqs FROM holds)::integer[]))"                       \
    " AND NOT coalesce(upper(n.region) = ANY ((SELECT regions FROM holds)::text[]), (SELECT true"   \
    " FROM crier.recipient r WHERE r.campaign_id = $1 AND r.seq = n.recipient_seq"                 \
    " AND upper(r.region) = ANY ((SELECT regions FROM holds)::text[]) LIMIT 1), false)"            \
    " ORDER BY n.next_attempt_at, n.id LIMIT $3 FOR UPDATE OF n SKIP LOCKED),"                     \
    /* Every later step reads only the claimed rows, each by its key, whatever the planner         \
     * believes: the UPDATE finds its rows through an array (an estimate of a few rows,            \
     * not the millions a join with the CTE was priced at), and the recipient is fetched           \
     * once per claimed notice through a LATERAL probe that OFFSET 0 keeps from being              \
     * flattened into a join. A merge or hash join here read the campaign's recipients             \
     * from the first one on every claim (docs/benchmarks.md, "Plans"). */                         \
    " claimed AS ("                                                                                \
    " UPDATE crier.notice n SET state = 'sending', lease_owner = $4,"                              \
    " lease_expires_at = now() + make_interval(secs => $5), attempt = n.attempt + 1,"              \
    " channel_attempt = n.channel_attempt + 1,"                                                    \
    " channel_started_at = coalesce(n.channel_started_at, now()), updated_at = now()"              \
    " WHERE n.campaign_id = $1 AND n.id = ANY (ARRAY(SELECT id FROM candidate))"                   \
    " RETURNING n.id, n.campaign_id, n.recipient_seq, n.token, n.channel_index, n.attempt,"        \
    " n.channel_attempt, n.channel_started_at, n.next_attempt_at, n.region AS hold_region),"       \
    " cr AS MATERIALIZED ("                                                                        \
    " SELECT c.*, r.ref, r.name, r.email, r.fax, r.address1, r.address2, r.city, r.region,"        \
    " r.postal_code, r.country, r.mailable, r.vars, r.load_id, r.version"                          \
    " FROM claimed c CROSS JOIN LATERAL"                                                           \
    /* recipient_now: the newest corrected contacts (011_unreached.sql), a key probe */            \
    " (SELECT * FROM crier.recipient_now r WHERE r.campaign_id = $1 AND r.seq = c.recipient_seq"   \
    " OFFSET 0) r),"                                                                               \
    /* delayed for law enforcement: a hold (now lifted, or lapsed) covered the notice after        \
     * it was loaded; its claim row names the holds. The campaign's holds are read once            \
     * (none in a campaign never held), then compared with each claimed row in memory; the         \
     * region is the one the claim held it by, the loaded row's (NULL: the recipient's). */        \
    " past AS MATERIALIZED ("                                                                      \
    " SELECT h.id, h.region, h.recipient_ref, h.lifted_at FROM crier.hold_state($8) h"             \
    " WHERE h.campaign_id = $1 AND (SELECT holds_placed FROM running) > 0),"                       \
    " delays AS ("                                                                                 \
    " SELECT c.id, 'delayed for law enforcement by hold '"                                         \
    " || string_agg(h.id::text, ', hold ' ORDER BY h.id) AS reason"                                \
    " FROM cr c JOIN crier.list_load ll ON ll.id = c.load_id JOIN past h"                          \
    " ON crier.hold_covers(h.region, h.recipient_ref, coalesce(c.hold_region, c.region), c.ref)"   \
    " AND coalesce(h.lifted_at, 'infinity') > ll.loaded_at"                                        \
    " WHERE (SELECT holds_placed FROM running) > 0 GROUP BY c.id),"                                \
    " logged AS ("                                                                                 \
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"      \
    " from_state, to_state, attempt, actor, reason)"                                               \
    " SELECT c.campaign_id, 'transition', c.id, c.ref, $2, 'ready', 'sending', c.attempt, $4,"     \
    " d.reason FROM cr c LEFT JOIN delays d ON d.id = c.id)"
/* clang-format on */

static const char claim_sql[] = CLAIM_HEAD
    " SELECT " NOTICE_COLUMNS("c", "c") ", c.channel_index,"
                                        " extract(epoch FROM c.channel_started_at), (SELECT name "
                                        "FROM crier.campaign WHERE id = $1),"
                                        " c.next_attempt_at, d.reason IS NOT NULL"
                                        " FROM cr c LEFT JOIN delays d ON d.id = c.id"
                                        " ORDER BY c.next_attempt_at, c.id";

/*
 * The claim of a batch handed over in slices (queue_claim_ids): the same claim, leases and
 * log rows, but what the batch keeps of each notice goes into its lines (023_lane_batch.sql),
 * under a new crier.lane_batch row kept QUEUE_BATCH_KEEP past the leases: its numbers, the
 * contacts' version, whether it was delayed, and what the channel orders it by; the
 * contacts are read again in slices, at that version (queue_fetch). One row comes back:
 * the count, the cursor's new position, the lowest id, the batch.
 */
static const char claim_ids_sql[] =
    CLAIM_HEAD ", batch AS ("
               " INSERT INTO crier.lane_batch (owner, campaign_id, kept_until)"
               " SELECT $4, $1, now() + make_interval(secs => $5) + interval '" QUEUE_BATCH_KEEP
               "' WHERE EXISTS (SELECT 1 FROM cr) RETURNING id),"
               " kept AS ("
               " INSERT INTO crier.lane_batch_line (batch_id, claim_pos, id, attempt,"
               " channel_attempt, channel_index, channel_started_at, version, delayed, mailable,"
               " address1, city, postal_code, country)"
               " SELECT (SELECT id FROM batch),"
               " row_number() OVER (ORDER BY c.next_attempt_at, c.id) - 1, c.id, c.attempt,"
               " c.channel_attempt, c.channel_index, extract(epoch FROM c.channel_started_at),"
               " coalesce(c.version, 0), d.reason IS NOT NULL, c.mailable, c.address1, c.city,"
               " c.postal_code, c.country FROM cr c LEFT JOIN delays d ON d.id = c.id)"
               " SELECT (SELECT count(*) FROM cr), l.next_attempt_at, l.id, f.id, f.attempt,"
               " (SELECT id FROM batch)"
               " FROM (SELECT next_attempt_at, id FROM cr ORDER BY next_attempt_at DESC, id DESC"
               " LIMIT 1) l, (SELECT id, attempt FROM cr ORDER BY id LIMIT 1) f";

enum claim_ids_column {
    IDS_COUNT,
    IDS_LAST_AT, /* the cursor's position */
    IDS_LAST_ID,
    IDS_LOWEST_ID,
    IDS_LOWEST_ATTEMPT,
    IDS_BATCH,
};

/* The claim's own columns, after the notice's. */
enum claim_column {
    CLAIM_CHANNEL_INDEX = NOTICE_COLUMN_COUNT,
    CLAIM_CHANNEL_STARTED_AT,
    CLAIM_CAMPAIGN_NAME,
    CLAIM_NEXT_ATTEMPT_AT, /* the cursor's position */
    CLAIM_DELAYED,
};

/*
 * claim_text - a claim (claim_sql, claim_ids_sql) for one campaign and limit: both written into the
 * text as constants, the other parameters renumbered $1-$6. With the campaign a constant, the
 * planner prunes crier.notice and crier.recipient to the campaign's own partitions when it
 * plans, so the statement can be prepared once and planned once (generically) per
 * session, and each run locks only those partitions. With $1 a parameter, a generic plan
 * names every campaign's partitions and PostgreSQL 15 locks them all at each run before
 * run-time pruning: 27 % slower with 204 campaigns (docs/benchmarks.md, "Third pass").
 * The LIMIT a constant: as a parameter the generic plan priced it at a tenth of the
 * queue, and plan_cache_mode = auto kept planning every call.
 */
static char *claim_text(const char *claim, int64_t campaign_id, int limit)
{
    /* $1 campaign, $2 channel, $3 limit, $4 owner, $5 lease, $6 after_at, $7 after_id,
     * $8 hold param: what each becomes */
    char campaign[32], limit_text[16];
    snprintf(campaign, sizeof(campaign), "%lld", (long long)campaign_id);
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    const char *constant[] = {NULL, campaign, NULL, limit_text, NULL, NULL, NULL, NULL, NULL};
    const char *renumbered[] = {NULL, NULL, "$1", NULL, "$2", "$3", "$4", "$5", "$6"};
    struct strbuf text = {0};
    for (const char *p = claim; *p; p++) {
        if (p[0] == '$' && p[1] >= '1' && p[1] <= '8' && !(p[2] >= '0' && p[2] <= '9')) {
            int n = p[1] - '0';
            strbuf_adds(&text, constant[n] ? constant[n] : renumbered[n]);
            p++;
        } else {
            strbuf_addc(&text, *p);
        }
    }
    char *sql = xstrdup(strbuf_str(&text)); /* the caller frees it */
    strbuf_free(&text);
    return sql;
}

/* The claim's $1-$6 once claim_text has renumbered them (channel, owner, lease, the
 * cursor's after_at and after_id, the hold parameter), with the text they point into. */
struct claim_params {
    char lease[32], after_id[32];
    const char *params[6];
    bool from_cursor; /* the claim starts after the cursor, not at the queue's front */
};

static void claim_params_set(struct claim_params *cp, const char *channel, const char *owner,
                             long lease_seconds, const struct queue_cursor *cursor)
{
    snprintf(cp->lease, sizeof(cp->lease), "%ld", lease_seconds);
    bool from_cursor = cp->from_cursor = cursor && cursor->after_at[0];
    snprintf(cp->after_id, sizeof(cp->after_id), "%lld",
             from_cursor ? (long long)cursor->after_id : 0LL);
    cp->params[0] = channel;
    cp->params[1] = owner;
    cp->params[2] = cp->lease;
    cp->params[3] = from_cursor ? cursor->after_at : "-infinity";
    cp->params[4] = cp->after_id;
    cp->params[5] = hold_release_lapsed_param();
}

int queue_claim(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                const char *owner, long lease_seconds, struct queue_cursor *cursor,
                struct queue_batch *ret_batch)
{
    struct claim_params cp;
    claim_params_set(&cp, channel, owner, lease_seconds, cursor);
    const char **params = cp.params;
    char name[64];
    /* one statement per campaign and limit in each session (db.c keeps 16, the least
     * recently used deallocated first); the name is made of integers only */
    snprintf(name, sizeof(name), "crier_claim_%lld_%d", (long long)campaign_id, limit);
    char *sql = claim_text(claim_sql, campaign_id, limit);
    PGresult *result = NULL;
    int r = db_query_prepared(db, name, sql, 6, params, &result);
    free(sql);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (cursor && rows > 0) {
        snprintf(cursor->after_at, sizeof(cursor->after_at), "%s",
                 PQgetvalue(result, rows - 1, CLAIM_NEXT_ATTEMPT_AT));
        cursor->after_id = db_int64(result, rows - 1, NOTICE_COL_ID);
    } else if (cursor && rows == 0 && cp.from_cursor) {
        /* nothing after the cursor: start over once from the front of the queue, where a
         * notice skipped while another lane held it may still wait */
        PQclear(result);
        cursor->after_at[0] = '\0';
        return queue_claim(db, campaign_id, channel, limit, owner, lease_seconds, cursor,
                           ret_batch);
    }

    size_t count = (size_t)PQntuples(result);
    struct queue_batch batch = {.result = result, .count = count};
    batch.notices = xcalloc(count, sizeof(*batch.notices));
    batch.channel_index = xcalloc(count, sizeof(size_t));
    batch.channel_started_at = xcalloc(count, sizeof(double));
    for (size_t i = 0; i < count; i++) {
        int row = (int)i;
        struct crier_notice *n = &batch.notices[i];
        notice_from_row(result, row, n);
        n->campaign_name = PQgetvalue(result, row, CLAIM_CAMPAIGN_NAME);
        n->delayed = db_flag(result, row, CLAIM_DELAYED);
        batch.channel_index[i] = strtoul(PQgetvalue(result, row, CLAIM_CHANNEL_INDEX), NULL, 10);
        batch.channel_started_at[i] =
            strtod(PQgetvalue(result, row, CLAIM_CHANNEL_STARTED_AT), NULL);
    }
    *ret_batch = batch;
    return 0;
}

/* A lease pushed forward: owner's notices of the batch ($1 ids, $4 campaign). */
static const char extend_sql[] =
    "UPDATE crier.notice SET lease_expires_at = now() + make_interval(secs => $3)"
    " WHERE campaign_id = $4 AND id = ANY($1::bigint[]) AND lease_owner = $2";

/* The address columns the channel's sort key is computed from, a slice at a time. */
static const char keys_sql[] =
    "SELECT claim_pos, id, mailable, address1, city, postal_code, country"
    " FROM crier.lane_batch_line WHERE batch_id = $3 AND claim_pos >= $1 AND claim_pos < $2"
    " ORDER BY claim_pos";

enum keys_column {
    KEYS_POS,
    KEYS_ID,
    KEYS_MAILABLE,
    KEYS_ADDRESS1,
    KEYS_CITY,
    KEYS_POSTAL,
    KEYS_COUNTRY
};

#define KEYS_SLICE 1000 /* rows whose keys are computed per round trip */

/* batch_store - run sql, an UPDATE of batch_id's lines from two arrays side by side (a
 * place in an order, a value; $3 the batch), and free them. */
static int batch_store(struct crier_db *db, const char *sql, int64_t batch_id,
                       struct db_array arrays[2])
{
    const char *params[3];
    db_arrays_end(arrays, 2, params);
    params[2] = DB_NUM(batch_id);
    int r = db_exec(db, sql, 3, params);
    db_arrays_free(arrays, 2);
    return r;
}

/* batch_gone - the error of a batch whose lines are not all there: swept by the reaper
 * after its leases expired (queue_sweep), or recorded by a commit whose answer was lost. */
static int batch_gone(struct crier_db *db, const struct queue_ids *batch, int found, size_t n)
{
    snprintf(db->error, sizeof(db->error),
             "%d of %zu lines of batch %lld found: it was recorded or swept meanwhile", found, n,
             (long long)batch->batch_id);
    return -ENOENT;
}

/* slice_read - the rows sql gives for the lines [from, from + n) of batch, all n of them or
 * batch_gone's error. sql's parameters: the campaign when with_campaign ($1), then the
 * range's bounds and the batch (the next three). Lines are never deleted but with their
 * batch, so one missing is a batch that is no longer there. */
static int slice_read(struct crier_db *db, const struct queue_ids *batch, const char *sql,
                      bool with_campaign, size_t from, size_t n, PGresult **ret_result)
{
    const char *params[] = {DB_NUM(batch->campaign_id), DB_NUM(from), DB_NUM(from + n),
                            DB_NUM(batch->batch_id)};
    int skip = with_campaign ? 0 : 1;
    PGresult *result = NULL;
    int r = db_query(db, sql, 4 - skip, params + skip, &result);
    if (r < 0)
        return r;
    if ((size_t)PQntuples(result) != n) {
        r = batch_gone(db, batch, PQntuples(result), n);
        PQclear(result);
        return r;
    }
    *ret_result = result;
    return 0;
}

/* keys_slice - the sort keys of the places [from, from + n) of the claim's order, stored. */
static int keys_slice(struct crier_db *db, const struct queue_ids *batch, size_t from, size_t n,
                      void (*sort_key)(const struct crier_notice *partial, unsigned char *key))
{
    PGresult *result = NULL;
    int r = slice_read(db, batch, keys_sql, false, from, n, &result);
    if (r < 0)
        return r;
    struct db_array arrays[2] = {0};
    for (int row = 0; row < PQntuples(result); row++) {
        struct crier_notice partial = {
            .id = db_int64(result, row, KEYS_ID),
            .campaign_id = batch->campaign_id,
            .mailable = db_flag(result, row, KEYS_MAILABLE),
            .country = PQgetvalue(result, row, KEYS_COUNTRY),
        };
        partial.address[0] = db_value(result, row, KEYS_ADDRESS1);
        partial.address[2] = db_value(result, row, KEYS_CITY);
        partial.address[4] = db_value(result, row, KEYS_POSTAL);
        unsigned char key[QUEUE_SORT_KEY] = {0};
        sort_key(&partial, key);
        char hex[2 * QUEUE_SORT_KEY + 1];
        hex_write(hex, key, QUEUE_SORT_KEY);
        db_array_add(&arrays[0], PQgetvalue(result, row, KEYS_POS));
        db_array_add(&arrays[1], hex);
    }
    PQclear(result);
    return batch_store(db,
                       "UPDATE crier.lane_batch_line b SET sort_key = decode(k.v, 'hex')"
                       " FROM unnest($1::integer[], $2::text[]) AS k(pos, v)"
                       " WHERE b.batch_id = $3 AND b.claim_pos = k.pos",
                       batch->batch_id, arrays);
}

int queue_order_ids(struct crier_db *db, const struct queue_ids *batch,
                    void (*sort_key)(const struct crier_notice *partial, unsigned char *key))
{
    /* statistics first: the lines are read by the batch's key, and the planner must know
     * that the batch is most of the table (023_lane_batch.sql) */
    int r = db_exec(db, "SELECT crier.lane_batch_analyze()", 0, NULL);
    for (size_t from = 0; r == 0 && sort_key && from < batch->count; from += KEYS_SLICE)
        r = keys_slice(db, batch, from,
                       batch->count - from < KEYS_SLICE ? batch->count - from : KEYS_SLICE,
                       sort_key);
    if (r < 0)
        return r;
    const char *params[] = {DB_NUM(batch->batch_id)};
    return db_exec(db,
                   "UPDATE crier.lane_batch_line b SET order_pos = o.pos FROM (SELECT claim_pos,"
                   " row_number() OVER (ORDER BY sort_key, claim_pos) - 1 AS pos"
                   " FROM crier.lane_batch_line WHERE batch_id = $1) o"
                   " WHERE b.batch_id = $1 AND b.claim_pos = o.claim_pos",
                   1, params);
}

int queue_claim_ids(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                    const char *owner, long lease_seconds, struct queue_cursor *cursor,
                    struct queue_ids *ret_batch)
{
    struct queue_ids batch = {.campaign_id = campaign_id};
    *ret_batch = batch;
    struct claim_params cp;
    claim_params_set(&cp, channel, owner, lease_seconds, cursor);
    char name[64];
    snprintf(name, sizeof(name), "crier_claim_ids_%lld_%d", (long long)campaign_id, limit);
    char *sql = claim_text(claim_ids_sql, campaign_id, limit);
    PGresult *result = NULL;
    int r = db_query_prepared(db, name, sql, 6, cp.params, &result);
    free(sql);
    if (r < 0)
        return r;
    if (PQntuples(result) == 1) {
        batch.count = (size_t)db_int64(result, 0, IDS_COUNT);
        batch.batch_id = db_int64(result, 0, IDS_BATCH);
        batch.lowest_id = db_int64(result, 0, IDS_LOWEST_ID);
        batch.lowest_attempt = (int)db_int64(result, 0, IDS_LOWEST_ATTEMPT);
        if (cursor) {
            snprintf(cursor->after_at, sizeof(cursor->after_at), "%s",
                     PQgetvalue(result, 0, IDS_LAST_AT));
            cursor->after_id = db_int64(result, 0, IDS_LAST_ID);
        }
    }
    PQclear(result);
    if (batch.count == 0 && cursor && cp.from_cursor) {
        /* nothing after the cursor: once more from the front (as queue_claim) */
        cursor->after_at[0] = '\0';
        return queue_claim_ids(db, campaign_id, channel, limit, owner, lease_seconds, cursor,
                               ret_batch);
    }
    *ret_batch = batch;
    return 0;
}

/*
 * The rows of a slice of a batch claimed in slices, by their places in one order ($2 from,
 * $3 to): each notice by its key, and its recipient's contacts as they were when it was
 * claimed, the loaded row or the correction of that version (an amend appends versions
 * and never rewrites one, so a later read finds the same words; audit show re-renders
 * with that version too). The same columns as the claim's, then what the batch kept.
 */
/* clang-format off */
#define FETCH_SQL(place)                                                                          \
    "SELECT " NOTICE_COLUMNS("n", "r") ", (SELECT name FROM crier.campaign WHERE id = $1),"       \
    " b.attempt, b.channel_attempt, b.delayed, b.channel_index, b.channel_started_at, b.item"     \
    " FROM crier.lane_batch_line b JOIN crier.notice n ON n.campaign_id = $1 AND n.id = b.id"     \
    " CROSS JOIN LATERAL (SELECT l.ref,"                                                          \
    " CASE WHEN v.version IS NULL THEN l.name ELSE v.name END AS name,"                           \
    " CASE WHEN v.version IS NULL THEN l.email ELSE v.email END AS email,"                        \
    " CASE WHEN v.version IS NULL THEN l.fax ELSE v.fax END AS fax,"                              \
    " CASE WHEN v.version IS NULL THEN l.address1 ELSE v.address1 END AS address1,"               \
    " CASE WHEN v.version IS NULL THEN l.address2 ELSE v.address2 END AS address2,"               \
    " CASE WHEN v.version IS NULL THEN l.city ELSE v.city END AS city,"                           \
    " CASE WHEN v.version IS NULL THEN l.region ELSE v.region END AS region,"                     \
    " CASE WHEN v.version IS NULL THEN l.postal_code ELSE v.postal_code END AS postal_code,"      \
    " CASE WHEN v.version IS NULL THEN l.country ELSE v.country END AS country,"                  \
    " CASE WHEN v.version IS NULL THEN l.mailable ELSE v.mailable END AS mailable, l.vars"        \
    " FROM crier.recipient l LEFT JOIN crier.recipient_version v ON v.campaign_id = $1"           \
    " AND v.seq = l.seq AND v.version = b.version"                                                \
    " WHERE l.campaign_id = $1 AND l.seq = n.recipient_seq OFFSET 0) r"                           \
    " WHERE b.batch_id = $4 AND b." place " >= $2 AND b." place " < $3 ORDER BY b." place
/* clang-format on */

enum fetch_column {
    FETCH_CAMPAIGN_NAME = NOTICE_COLUMN_COUNT,
    FETCH_ATTEMPT,
    FETCH_CHANNEL_ATTEMPT,
    FETCH_DELAYED,
    FETCH_CHANNEL_INDEX,
    FETCH_CHANNEL_STARTED_AT,
    FETCH_ITEM,
};

int queue_fetch(struct crier_db *db, const struct queue_ids *batch, enum queue_order order,
                size_t from, size_t n, struct queue_batch *ret_slice)
{
    static const char by_claim[] = FETCH_SQL("claim_pos"), by_channel[] = FETCH_SQL("order_pos");
    PGresult *result = NULL;
    int r = slice_read(db, batch, order == QUEUE_BY_CLAIM ? by_claim : by_channel, true, from, n,
                       &result);
    if (r < 0)
        return r;
    struct queue_batch slice = {.result = result, .count = n};
    slice.notices = xcalloc(n + 1, sizeof(*slice.notices));
    slice.channel_index = xcalloc(n + 1, sizeof(size_t));
    slice.channel_started_at = xcalloc(n + 1, sizeof(double));
    slice.items = xcalloc(n + 1, sizeof(*slice.items));
    for (size_t k = 0; k < n; k++) {
        int row = (int)k;
        struct crier_notice *notice = &slice.notices[k];
        notice_from_row(result, row, notice);
        /* the attempt as claimed: what today's one-statement claim handed over */
        notice->attempt = atoi(PQgetvalue(result, row, FETCH_ATTEMPT));
        notice->channel_attempt = atoi(PQgetvalue(result, row, FETCH_CHANNEL_ATTEMPT));
        notice->delayed = db_flag(result, row, FETCH_DELAYED);
        notice->campaign_name = PQgetvalue(result, row, FETCH_CAMPAIGN_NAME);
        slice.channel_index[k] = strtoul(PQgetvalue(result, row, FETCH_CHANNEL_INDEX), NULL, 10);
        slice.channel_started_at[k] =
            strtod(PQgetvalue(result, row, FETCH_CHANNEL_STARTED_AT), NULL);
        slice.items[k] = db_value(result, row, FETCH_ITEM);
    }
    *ret_slice = slice;
    return 0;
}

int queue_keep(struct crier_db *db, const struct queue_ids *batch, size_t from, size_t n,
               char *const *items)
{
    struct db_array arrays[2] = {0};
    size_t kept = 0;
    for (size_t k = 0; k < n; k++) {
        if (items[k] == NULL)
            continue;
        db_array_add_long(&arrays[0], (long long)(from + k));
        db_array_add(&arrays[1], items[k]);
        kept++;
    }
    if (kept == 0) {
        db_arrays_free(arrays, 2);
        return 0;
    }
    return batch_store(db,
                       "UPDATE crier.lane_batch_line b SET item = k.v"
                       " FROM unnest($1::integer[], $2::text[]) AS k(pos, v)"
                       " WHERE b.batch_id = $3 AND b.order_pos = k.pos",
                       batch->batch_id, arrays);
}

/* extend - extend_sql over ids (freed here), the notices owner holds in campaign_id. */
static int extend(struct crier_db *db, struct db_array *ids, const char *owner, long lease_seconds,
                  int64_t campaign_id)
{
    const char *params[] = {db_array_end(ids), owner, DB_NUM(lease_seconds), DB_NUM(campaign_id)};
    int r = db_exec(db, extend_sql, 4, params);
    db_array_free(ids);
    return r;
}

int queue_extend_ids(struct crier_db *db, const struct queue_ids *batch, const char *owner,
                     long lease_seconds)
{
    const char *params[] = {owner, DB_NUM(lease_seconds), DB_NUM(batch->campaign_id),
                            DB_NUM(batch->batch_id)};
    /* the ids as an array built by the server: a key probe each, as extend_sql's; the
     * batch's lines are kept as much longer */
    return db_exec(db,
                   "WITH kept AS (UPDATE crier.lane_batch SET kept_until = now()"
                   " + make_interval(secs => $2) + interval '" QUEUE_BATCH_KEEP "' WHERE id = $4)"
                   " UPDATE crier.notice SET lease_expires_at = now() + make_interval(secs => $2)"
                   " WHERE campaign_id = $3 AND id = ANY (ARRAY(SELECT id FROM"
                   " crier.lane_batch_line WHERE batch_id = $4)) AND lease_owner = $1",
                   4, params);
}

int queue_ids_lock(struct crier_db *db, const struct queue_ids *batch, size_t handed, size_t unkept)
{
    const char *params[] = {DB_NUM(batch->batch_id), DB_NUM(handed)};
    PGresult *result = NULL;
    /* FOR UPDATE: the reaper's sweep (a DELETE) waits for this record, then finds nothing */
    int r = db_query(db,
                     "SELECT (SELECT count(*) FROM crier.lane_batch_line WHERE batch_id = $1"
                     " AND order_pos < $2 AND item IS NULL) FROM crier.lane_batch WHERE id = $1"
                     " FOR UPDATE",
                     2, params, &result);
    if (r < 0)
        return r;
    if (PQntuples(result) != 1) {
        r = batch_gone(db, batch, 0, batch->count);
    } else if ((size_t)db_int64(result, 0, 0) != unkept) {
        snprintf(db->error, sizeof(db->error),
                 "batch %lld: %lld of the %zu letters handed over have no line of what became of"
                 " them, %zu expected",
                 (long long)batch->batch_id, (long long)db_int64(result, 0, 0), handed, unkept);
        r = -EIO;
    }
    PQclear(result);
    return r;
}

int queue_ids_drop(struct crier_db *db, const struct queue_ids *batch)
{
    const char *params[] = {DB_NUM(batch->batch_id)};
    return db_exec(db,
                   "WITH lines AS (DELETE FROM crier.lane_batch_line WHERE batch_id = $1)"
                   " DELETE FROM crier.lane_batch WHERE id = $1",
                   1, params);
}

int queue_ids_drop_owner(struct crier_db *db, const char *owner)
{
    const char *params[] = {owner};
    return db_exec(db,
                   "WITH gone AS (DELETE FROM crier.lane_batch WHERE owner = $1 RETURNING id)"
                   " DELETE FROM crier.lane_batch_line l USING gone g WHERE l.batch_id = g.id",
                   1, params);
}

int queue_sweep(struct crier_db *db, long *ret_count)
{
    /* a batch's lines by its key, once the batch row is ours to delete (a record under
     * way holds it, queue_ids_lock: this waits, then finds it gone) */
    return db_query_long(db,
                         "WITH gone AS (DELETE FROM crier.lane_batch WHERE kept_until < now()"
                         " RETURNING id),"
                         " lines AS (DELETE FROM crier.lane_batch_line l USING gone g"
                         " WHERE l.batch_id = g.id)"
                         " SELECT count(*) FROM gone",
                         0, NULL, ret_count);
}

void queue_batch_clear(struct queue_batch *batch)
{
    PQclear(batch->result);
    FREE_MANY(batch->notices, batch->channel_index, batch->channel_started_at, batch->items);
    memset(batch, 0, sizeof(*batch));
}

int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds)
{
    struct db_array ids = {0};
    for (size_t i = 0; i < batch->count; i++)
        db_array_add_long(&ids, batch->notices[i].id);
    return extend(db, &ids, owner, lease_seconds, batch->count ? batch->notices[0].campaign_id : 0);
}

int queue_reap(struct crier_db *db, const char *actor, long *ret_count)
{
    /* A channel with a poll op (fax) can be asked whether the transport has what was in
     * flight: its notices wait for that answer in its accepted state, with no transport id
     * (an unknown outcome, poll.c), instead of being sent a second time. */
    struct db_array polled = {0};
    poll_channels(NULL, &polled);
    const char *params[] = {actor, db_array_end(&polled)};
    int r = db_query_long(
        db,
        "WITH expired AS ("
        " SELECT id, campaign_id, lease_owner FROM crier.notice"
        " WHERE state = 'sending' AND lease_expires_at < now() FOR UPDATE SKIP LOCKED),"
        " reset AS ("
        " UPDATE crier.notice n SET state = CASE WHEN c.state = 'cancelled' THEN 'cancelled'"
        " WHEN n.channel = ANY ($2::text[]) THEN 'submitted' ELSE 'ready' END,"
        " transport_id = NULL, lease_owner = NULL,"
        " lease_expires_at = NULL, next_attempt_at = now(), updated_at = now()"
        " FROM expired e, crier.campaign c WHERE n.campaign_id = e.campaign_id AND n.id = e.id"
        " AND c.id = e.campaign_id"
        " RETURNING n.id, n.campaign_id, n.recipient_seq, n.channel, n.attempt, n.state,"
        " e.lease_owner),"
        " logged AS ("
        " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
        " from_state, to_state, attempt, actor, detail)"
        " SELECT s.campaign_id, 'transition', s.id, r.ref, s.channel, 'sending', s.state,"
        " s.attempt, $1, 'lease of ' || s.lease_owner || CASE WHEN s.state = 'submitted'"
        " THEN ' expired: unknown outcome, the transport will be asked before anything is"
        " sent again' ELSE ' expired: attempt outcome unknown, will retry' END"
        /* one probe per reset notice (see cr in claim_sql) */
        " FROM reset s CROSS JOIN LATERAL (SELECT r.ref FROM crier.recipient r"
        " WHERE r.campaign_id = s.campaign_id AND r.seq = s.recipient_seq OFFSET 0) r)"
        " SELECT count(*) FROM reset",
        2, params, ret_count);
    db_array_free(&polled);
    return r;
}
