/*
 * queue.c - the claim and record SQL (see docs/architecture.md for the state machine).
 *
 * Nothing here keeps state in memory: a worker killed at any instant leaves notices in
 * sending under a lease that expires, and queue_reap() puts them back, logged as such.
 * Values always travel as parameters; arrays are built as PostgreSQL array literals.
 */
#include "crier/queue.h"
#include "crier/crier.h"
#include "crier/hold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing buffer for array literals. */
struct strbuf {
    char *data;
    size_t len, cap;
};

static void strbuf_grow(struct strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    strbuf_grow(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void strbuf_addc(struct strbuf *b, char c)
{
    strbuf_add(b, &c, 1);
}

/* array_add - append one element (NULL for SQL NULL) to an array literal being built. */
static void array_add(struct strbuf *b, const char *value)
{
    strbuf_addc(b, b->len == 0 ? '{' : ',');
    if (value == NULL) {
        strbuf_add(b, "NULL", 4);
        return;
    }
    strbuf_addc(b, '"');
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_addc(b, '\\');
        strbuf_addc(b, *p);
    }
    strbuf_addc(b, '"');
}

static void array_add_long(struct strbuf *b, long long value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", value);
    array_add(b, text);
}

/* array_finish - close the literal; an empty array is "{}". */
static const char *array_finish(struct strbuf *b)
{
    if (b->len == 0)
        strbuf_addc(b, '{');
    strbuf_addc(b, '}');
    return b->data;
}

static const char *nullable(const PGresult *result, int row, int column)
{
    return PQgetisnull(result, row, column) ? NULL : PQgetvalue(result, row, column);
}

/*
 * The claim. The candidate scan uses the partial index notice_claim; SKIP LOCKED lets any
 * number of lanes and processes claim side by side without waiting on each other. A
 * notice's lease owner and expiry are set in the same statement that logs the claim.
 */
static const char claim_sql[] =
    /* FOR SHARE on the campaign row: a pause or cancel (which locks it FOR UPDATE) waits
     * for this claim to commit, and a claim waits for them, so no claim slips past one */
    /* The shared advisory lock first: a hold placement takes it exclusively, and a waiting
     * exclusive request queues the shared ones behind it, which shared row locks would not
     * (the lanes' overlapping FOR SHARE locks could starve a placement for seconds). */
    "WITH gate AS (SELECT pg_advisory_xact_lock_shared(" CAMPAIGN_LOCK_CLASS ", $1::integer)),"
    " running AS ("
    " SELECT c.id, c.holds_placed FROM crier.campaign c, gate WHERE c.id = $1"
    " AND c.state = 'running' FOR SHARE OF c),"
    /* law-enforcement holds (hold.c, docs/holds.md): the campaign's active holds, once;
     * a recipient hold as the recipient's seq, which the notice row carries */
    " active AS ("
    " SELECT region, recipient_ref FROM crier.hold_state($8) WHERE campaign_id = $1 AND active),"
    " holds AS ("
    " SELECT coalesce((SELECT bool_or(region IS NULL AND recipient_ref IS NULL) FROM active),"
    " false) AS whole,"
    " (SELECT coalesce(array_agg(region), '{}') FROM active WHERE region IS NOT NULL)"
    " AS regions,"
    " (SELECT coalesce(array_agg(r.seq), '{}') FROM crier.recipient r WHERE r.campaign_id = $1"
    " AND r.ref IN (SELECT recipient_ref FROM active)) AS seqs),"
    " candidate AS ("
    /* a constant campaign_id, and the running check as a one-off InitPlan: a join with
     * `running` made the planner give up the claim index for a sort of the whole queue */
    " SELECT n.id FROM crier.notice n"
    " WHERE n.campaign_id = $1 AND EXISTS (SELECT 1 FROM running)"
    " AND n.channel = $2 AND n.state = 'ready'"
    " AND n.next_attempt_at <= now()"
    /* the lane's cursor: start after what it claimed last (see queue_cursor) */
    " AND (n.next_attempt_at, n.id) > ($6::timestamptz, $7::bigint)"
    /* A hold placed while this claim waited for the campaign row bumped holds_placed, and
     * FOR SHARE returns the row as committed; this statement's snapshot then sees one
     * hold fewer than were placed: claim nothing this time (docs/holds.md, "The race").
     * The hold checks are one-off InitPlans; only a region hold costs a probe per row, a
     * correlated scalar subquery on purpose: the planner would turn an EXISTS under OR
     * into a hash of every held recipient, a scan of the whole list at every claim. */
    " AND (SELECT holds_placed FROM running)"
    " = (SELECT count(*) FROM crier.hold WHERE campaign_id = $1)"
    " AND NOT (SELECT whole FROM holds)"
    " AND NOT (n.recipient_seq = ANY ((SELECT seqs FROM holds)::integer[]))"
    " AND ((SELECT regions = '{}' FROM holds) OR NOT coalesce((SELECT true"
    " FROM crier.recipient r WHERE r.campaign_id = $1 AND r.seq = n.recipient_seq"
    " AND upper(r.region) = ANY ((SELECT regions FROM holds)::text[]) LIMIT 1), false))"
    " ORDER BY n.next_attempt_at, n.id LIMIT $3 FOR UPDATE OF n SKIP LOCKED),"
    /* Every later step reads only the claimed rows, each by its key, whatever the planner
     * believes: the UPDATE finds its rows through an array (an estimate of a few rows,
     * not the millions a join with the CTE was priced at), and the recipient is fetched
     * once per claimed notice through a LATERAL probe that OFFSET 0 keeps from being
     * flattened into a join. A merge or hash join here read the campaign's recipients
     * from the first one on every claim (docs/benchmarks.md, "Plans"). */
    " claimed AS ("
    " UPDATE crier.notice n SET state = 'sending', lease_owner = $4,"
    " lease_expires_at = now() + make_interval(secs => $5), attempt = n.attempt + 1,"
    " channel_attempt = n.channel_attempt + 1,"
    " channel_started_at = coalesce(n.channel_started_at, now()), updated_at = now()"
    " WHERE n.campaign_id = $1 AND n.id = ANY (ARRAY(SELECT id FROM candidate))"
    " RETURNING n.id, n.campaign_id, n.recipient_seq, n.token, n.channel_index, n.attempt,"
    " n.channel_attempt, n.channel_started_at, n.next_attempt_at),"
    " cr AS MATERIALIZED ("
    " SELECT c.*, r.ref, r.name, r.email, r.fax, r.address1, r.address2, r.city, r.region,"
    " r.postal_code, r.country, r.mailable, r.vars, r.load_id FROM claimed c CROSS JOIN LATERAL"
    /* recipient_now: the newest corrected contacts (010_unreached.sql), a key probe */
    " (SELECT * FROM crier.recipient_now r WHERE r.campaign_id = $1 AND r.seq = c.recipient_seq"
    " OFFSET 0) r),"
    /* delayed for law enforcement: a hold (now lifted, or lapsed) covered the notice after
     * it was loaded; its claim row names the holds. Skipped in a campaign never held. */
    " delays AS ("
    " SELECT c.id, 'delayed for law enforcement by hold '"
    " || string_agg(h.id::text, ', hold ' ORDER BY h.id) AS reason"
    " FROM cr c JOIN crier.list_load ll ON ll.id = c.load_id"
    " JOIN crier.hold_state($8) h ON h.campaign_id = $1"
    " AND crier.hold_covers(h.region, h.recipient_ref, c.region, c.ref)"
    " AND coalesce(h.lifted_at, 'infinity') > ll.loaded_at"
    " WHERE (SELECT holds_placed FROM running) > 0 GROUP BY c.id),"
    " logged AS ("
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    " from_state, to_state, attempt, actor, reason)"
    " SELECT c.campaign_id, 'transition', c.id, c.ref, $2, 'ready', 'sending', c.attempt, $4,"
    " d.reason FROM cr c LEFT JOIN delays d ON d.id = c.id)"
    " SELECT c.id, c.campaign_id, c.id || '.' || c.token, c.channel_index, c.attempt,"
    " c.channel_attempt, extract(epoch FROM c.channel_started_at), c.ref, c.name, c.email,"
    " c.fax, c.address1, c.address2, c.city, c.region, c.postal_code, c.country, c.mailable,"
    " c.vars::text, (SELECT name FROM crier.campaign WHERE id = $1), c.next_attempt_at,"
    " d.reason IS NOT NULL"
    " FROM cr c LEFT JOIN delays d ON d.id = c.id"
    " ORDER BY c.next_attempt_at, c.id";

int queue_claim(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                const char *owner, long lease_seconds, struct queue_cursor *cursor,
                struct queue_batch *ret_batch)
{
    char id[32], limit_text[16], lease[32], after_id[32];
    snprintf(id, sizeof(id), "%lld", (long long)campaign_id);
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    snprintf(lease, sizeof(lease), "%ld", lease_seconds);
    bool from_cursor = cursor && cursor->after_at[0];
    snprintf(after_id, sizeof(after_id), "%lld", from_cursor ? (long long)cursor->after_id : 0LL);
    const char *params[] = {id,         channel,
                            limit_text, owner,
                            lease,      from_cursor ? cursor->after_at : "-infinity",
                            after_id,   hold_release_lapsed_param()};
    PGresult *result = NULL;
    int r = db_query(db, claim_sql, 8, params, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (cursor && rows > 0) {
        snprintf(cursor->after_at, sizeof(cursor->after_at), "%s",
                 PQgetvalue(result, rows - 1, 20));
        cursor->after_id = strtoll(PQgetvalue(result, rows - 1, 0), NULL, 10);
    } else if (cursor && rows == 0 && from_cursor) {
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
        n->id = strtoll(PQgetvalue(result, row, 0), NULL, 10);
        n->campaign_id = strtoll(PQgetvalue(result, row, 1), NULL, 10);
        n->token = PQgetvalue(result, row, 2);
        batch.channel_index[i] = strtoul(PQgetvalue(result, row, 3), NULL, 10);
        n->attempt = atoi(PQgetvalue(result, row, 4));
        n->channel_attempt = atoi(PQgetvalue(result, row, 5));
        batch.channel_started_at[i] = strtod(PQgetvalue(result, row, 6), NULL);
        n->ref = PQgetvalue(result, row, 7);
        n->name = PQgetvalue(result, row, 8);
        n->email = nullable(result, row, 9);
        n->fax = nullable(result, row, 10);
        for (int a = 0; a < 5; a++)
            n->address[a] = nullable(result, row, 11 + a);
        n->country = PQgetvalue(result, row, 16);
        n->mailable = strcmp(PQgetvalue(result, row, 17), "t") == 0;
        n->vars_json = PQgetvalue(result, row, 18);
        n->campaign_name = PQgetvalue(result, row, 19);
        n->delayed = strcmp(PQgetvalue(result, row, 21), "t") == 0;
    }
    *ret_batch = batch;
    return 0;
}

void queue_batch_clear(struct queue_batch *batch)
{
    PQclear(batch->result);
    free(batch->notices);
    free(batch->channel_index);
    free(batch->channel_started_at);
    memset(batch, 0, sizeof(*batch));
}

/*
 * The record: one row per outcome arrives as parallel arrays. Only notices still leased to
 * this owner change; every outcome is logged either way.
 */
static const char record_sql[] =
    /* a notice of a cancelled campaign that would be tried again is cancelled instead;
     * FOR SHARE makes the campaign's state stable for the statement (see claim_sql) */
    "WITH gate AS (SELECT pg_advisory_xact_lock_shared(" CAMPAIGN_LOCK_CLASS ", $15::integer)),"
    " campaign AS ("
    " SELECT c.state FROM crier.campaign c, gate WHERE c.id = $15 FOR SHARE OF c),"
    " o AS ("
    " SELECT u.id, CASE WHEN u.to_state = 'ready' AND campaign.state = 'cancelled'"
    " THEN 'cancelled' ELSE u.to_state END AS to_state,"
    " u.to_channel, u.to_channel_index, u.delay, u.detail, u.sha,"
    " CASE WHEN u.to_state = 'ready' AND campaign.state = 'cancelled'"
    " THEN concat_ws('; ', u.reason, 'campaign cancelled') ELSE u.reason END AS reason,"
    " u.changed, u.campaign_id, u.ref, u.attempt, u.transport_id, $13::text AS owner,"
    " CASE WHEN u.sha IS NOT NULL AND u.content_at > 0 THEN to_timestamp(u.content_at) END"
    " AS content_at"
    " FROM campaign, unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[],"
    " $6::text[], $7::text[], $8::text[], $9::boolean[], $10::bigint[], $11::text[],"
    " $12::integer[], $16::text[], $17::bigint[])"
    " AS u(id, to_state, to_channel, to_channel_index, delay, detail, sha, reason, changed,"
    " campaign_id, ref, attempt, transport_id, content_at)),"
    " updated AS ("
    " UPDATE crier.notice n SET state = o.to_state, channel = o.to_channel,"
    " channel_index = o.to_channel_index,"
    " next_attempt_at = now() + make_interval(secs => o.delay),"
    " channel_attempt = CASE WHEN o.changed THEN 0 ELSE n.channel_attempt END,"
    " channel_started_at = CASE WHEN o.changed THEN NULL ELSE n.channel_started_at END,"
    " reasons = CASE WHEN o.reason IS NULL THEN n.reasons ELSE n.reasons || o.reason END,"
    /* the transport's id for this attempt (a fax id; poll.c): NULL when none or unknown */
    " transport_id = o.transport_id,"
    " lease_owner = NULL, lease_expires_at = NULL, updated_at = now()"
    /* Only notices still leased to this owner, which implies state 'sending' (the
     * table's CHECK). Written so that no estimate can make this read more than the
     * batch's notices, or compare each with every outcome (docs/benchmarks.md, "Plans"):
     * the notices are found by key from the ids array, whose length the planner knows;
     * the owner test is a join clause, not a filter on the scan, so the planner cannot
     * estimate one row there and rescan the outcomes for each of 500 (a nested loop of
     * 250,000 comparisons, 130 ms, that it chose with "state = 'sending'" as a filter);
     * and "state = 'sending'" would offer it the lease index, which also holds entries
     * of notices recorded since the last vacuum. */
    " FROM o WHERE n.campaign_id = $15 AND n.id = ANY ($1::bigint[]) AND n.id = o.id"
    " AND n.lease_owner = o.owner"
    " RETURNING n.id),"
    " logged AS ("
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    " from_state, to_state, to_channel, attempt, actor, detail, reason, content_sha256,"
    " content_at)"
    " SELECT o.campaign_id, CASE WHEN u.id IS NULL THEN 'late_outcome' ELSE 'transition' END,"
    " o.id, o.ref, $14, 'sending', CASE WHEN u.id IS NULL THEN NULL ELSE o.to_state END,"
    " CASE WHEN o.changed AND u.id IS NOT NULL THEN o.to_channel END, o.attempt, $13,"
    " o.detail, o.reason, o.sha, o.content_at FROM o LEFT JOIN updated u ON u.id = o.id"
    " ORDER BY o.id)"
    " SELECT count(*) - (SELECT count(*) FROM updated) FROM o";

int queue_record(struct crier_db *db, const char *channel, const char *owner,
                 const struct queue_record *records, size_t n, long *ret_late)
{
    if (n == 0) {
        if (ret_late)
            *ret_late = 0;
        return 0;
    }
    struct strbuf arrays[12] = {{0}};
    struct strbuf transport_ids = {0}, content_at = {0};
    for (size_t i = 0; i < n; i++) {
        const struct queue_record *rec = &records[i];
        const struct policy_decision *d = rec->decision;
        array_add(&transport_ids,
                  rec->outcome->transport_id[0] ? rec->outcome->transport_id : NULL);
        array_add_long(&content_at, (long long)rec->outcome->content_at);
        array_add_long(&arrays[0], rec->notice->id);
        array_add(&arrays[1], notice_state_name(d->to_state));
        array_add(&arrays[2], rec->to_channel);
        array_add_long(&arrays[3], (long long)d->to_channel_index);
        array_add_long(&arrays[4], d->delay_seconds);
        array_add(&arrays[5], rec->outcome->detail);
        array_add(&arrays[6],
                  rec->outcome->content_sha256[0] ? rec->outcome->content_sha256 : NULL);
        array_add(&arrays[7], d->reason[0] ? d->reason : NULL);
        array_add(&arrays[8], d->channel_changed ? "t" : "f");
        array_add_long(&arrays[9], rec->notice->campaign_id);
        array_add(&arrays[10], rec->notice->ref);
        array_add_long(&arrays[11], rec->notice->attempt);
    }
    const char *params[17];
    for (int i = 0; i < 12; i++)
        params[i] = array_finish(&arrays[i]);
    params[12] = owner;
    params[13] = channel;
    char campaign[32]; /* a batch is one campaign's: the partition is known */
    snprintf(campaign, sizeof(campaign), "%lld", (long long)records[0].notice->campaign_id);
    params[14] = campaign;
    params[15] = array_finish(&transport_ids);
    params[16] = array_finish(&content_at);
    PGresult *result = NULL;
    int r = db_query(db, record_sql, 17, params, &result);
    for (int i = 0; i < 12; i++)
        free(arrays[i].data);
    free(transport_ids.data);
    free(content_at.data);
    if (r < 0)
        return r;
    if (ret_late)
        *ret_late = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}

int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds)
{
    struct strbuf ids = {0};
    for (size_t i = 0; i < batch->count; i++)
        array_add_long(&ids, batch->notices[i].id);
    char lease[32], campaign[32];
    snprintf(lease, sizeof(lease), "%ld", lease_seconds);
    snprintf(campaign, sizeof(campaign), "%lld",
             batch->count ? (long long)batch->notices[0].campaign_id : 0LL);
    const char *params[] = {array_finish(&ids), owner, lease, campaign};
    int r = db_exec(db,
                    "UPDATE crier.notice SET lease_expires_at = now() + make_interval(secs => $3)"
                    " WHERE campaign_id = $4 AND id = ANY($1::bigint[]) AND lease_owner = $2",
                    4, params);
    free(ids.data);
    return r;
}

int queue_reap(struct crier_db *db, const char *actor, long *ret_count)
{
    /* A channel with a poll op (fax) can be asked whether the transport has what was in
     * flight: its notices wait for that answer in its accepted state, with no transport id
     * (an unknown outcome, poll.c), instead of being sent a second time. */
    struct strbuf polled = {0};
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops && ops->poll)
            array_add(&polled, ops->name);
    }
    const char *params[] = {actor, array_finish(&polled)};
    PGresult *result = NULL;
    int r = db_query(
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
        2, params, &result);
    free(polled.data);
    if (r < 0)
        return r;
    *ret_count = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}
