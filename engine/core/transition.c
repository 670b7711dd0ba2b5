/*
 * transition.c - decide what an outcome does to a notice, and record it (see transition.h
 * and docs/architecture.md, "Where a notice is claimed, rendered, sent, decided, recorded").
 *
 * Decisions are policy.c's; this file adds the configured limits, the channels' usable
 * test and the one fallback for a notice whose row no longer fits its policy. The record
 * statements are each one statement, values as parameters (arrays for a batch), so a
 * state change and its dispatch-log row commit together or not at all.
 */
#include "crier/transition.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/hold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- deciding ------------------------------------------------------------------------- */

void transition_decide(const struct transition_input *in, const struct crier_outcome *outcome,
                       struct policy_decision *ret_decision)
{
    const struct crier_config *config = in->config;
    const struct policy_limits limits = {
        .backoff_min_seconds = config->queue.backoff_min_seconds,
        .backoff_max_seconds = config->queue.backoff_max_seconds,
        .backoff_jitter = config->queue.backoff_jitter,
        .give_up_after_seconds = config->queue.give_up_after_seconds,
    };
    size_t count = strv_length((char **)in->policy);
    struct channel_usable_data usable = {config, in->policy, in->notice};
    struct policy_input pin = {
        .channels = (const char *const *)in->policy,
        .channel_count = count,
        .channel_index = in->channel_index,
        .channel_attempt = in->notice->channel_attempt,
        .channel_started_at = in->channel_started_at,
        .now = in->now,
        .random_unit = in->random_unit,
        .limits = &limits,
        .accepted_state = in->accepted_state,
        .usable = channel_usable,
        .usable_data = &usable,
    };
    /* the outcome's channel must be the one the policy has the notice on; when it is not
     * (the row and its campaign disagree), the notice waits for review, never guessed at */
    if (in->channel_index < count && strcmp(in->policy[in->channel_index], in->channel) == 0 &&
        policy_decide(&pin, outcome, ret_decision) == 0)
        return;
    *ret_decision = (struct policy_decision){.to_state = STATE_UNDELIVERABLE,
                                             .to_channel_index = in->channel_index};
    snprintf(ret_decision->reason, sizeof(ret_decision->reason),
             "%s: notice state inconsistent with its campaign policy", in->channel);
}

const char *transition_to_channel(const struct transition_input *in,
                                  const struct policy_decision *decision)
{
    size_t to = decision->to_channel_index;
    return to < strv_length((char **)in->policy) ? in->policy[to] : in->channel;
}

/* ---- from sending ------------------------------------------------------------------- */

/*
 * The lanes' record (moved here from queue.c as it was): one row per outcome arrives as
 * parallel arrays. Only notices still leased to this owner change; every outcome is logged
 * either way. Two statements share this text, record_sql and record_light_sql below.
 */
/* the shared advisory lock, as the claim takes it: a hold placement (002_holds.sql) waits
 * for the records under way and sees their notices no longer 'sending' */
#define RECORD_GATE                                                                                \
    "WITH gate AS (SELECT pg_advisory_xact_lock_shared(" CAMPAIGN_LOCK_CLASS ", $15::integer)),"
#define RECORD_UNNEST                                                                              \
    " unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[],"                  \
    " $6::text[], $7::text[], $8::text[], $9::boolean[], $10::bigint[], $11::text[],"              \
    " $12::integer[], $16::text[], $17::bigint[])"                                                 \
    " AS u(id, to_state, to_channel, to_channel_index, delay, detail, sha, reason, changed,"       \
    " campaign_id, ref, attempt, transport_id, content_at)"
#define RECORD_O_COLUMNS                                                                           \
    " u.changed, u.campaign_id, u.ref, u.attempt, u.transport_id, $13::text AS owner,"             \
    " CASE WHEN u.sha IS NOT NULL AND u.content_at > 0 THEN to_timestamp(u.content_at) END"        \
    " AS content_at"
#define RECORD_TAIL                                                                                \
    " updated AS ("                                                                                \
    " UPDATE crier.notice n SET state = o.to_state, channel = o.to_channel,"                       \
    " channel_index = o.to_channel_index,"                                                         \
    " next_attempt_at = now() + make_interval(secs => o.delay),"                                   \
    " channel_attempt = CASE WHEN o.changed THEN 0 ELSE n.channel_attempt END,"                    \
    " channel_started_at = CASE WHEN o.changed THEN NULL ELSE n.channel_started_at END,"           \
    " reasons = CASE WHEN o.reason IS NULL THEN n.reasons ELSE n.reasons || o.reason "             \
    "END," RECORD_TRANSPORT_ID                                                                     \
    " lease_owner = NULL, lease_expires_at = NULL, updated_at = now()" RECORD_WHERE                \
    " RETURNING n.id),"                                                                            \
    " logged AS ("                                                                                 \
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"      \
    " from_state, to_state, to_channel, attempt, actor, detail, reason, content_sha256,"           \
    " content_at)"                                                                                 \
    " SELECT o.campaign_id, CASE WHEN u.id IS NULL THEN 'late_outcome' ELSE 'transition' END,"     \
    " o.id, o.ref, $14, 'sending', CASE WHEN u.id IS NULL THEN NULL ELSE o.to_state END,"          \
    " CASE WHEN o.changed AND u.id IS NOT NULL THEN o.to_channel END, o.attempt, $13,"             \
    " o.detail, o.reason, o.sha, o.content_at FROM o LEFT JOIN updated u ON u.id = o.id"           \
    " ORDER BY o.id)"                                                                              \
    " SELECT count(*) - (SELECT count(*) FROM updated) FROM o"
/* the transport's id for this attempt (a fax id; poll.c): NULL when none or unknown */
#define RECORD_TRANSPORT_ID " transport_id = o.transport_id,"
/*
 * Only notices still leased to this owner, which implies state 'sending' (the table's
 * CHECK). Written so that no estimate can make this read more than the batch's notices,
 * or compare each with every outcome (docs/benchmarks.md, "Plans"): the notices are found
 * by key from the ids array, whose length the planner knows; the owner test is a join
 * clause, not a filter on the scan, so the planner cannot estimate one row there and
 * rescan the outcomes for each of 500 (a nested loop of 250,000 comparisons, 130 ms, that
 * it chose with "state = 'sending'" as a filter); and "state = 'sending'" would offer it
 * the lease index, which also holds entries of notices recorded since the last vacuum.
 */
#define RECORD_WHERE                                                                               \
    " FROM o WHERE n.campaign_id = $15 AND n.id = ANY ($1::bigint[]) AND n.id = o.id"              \
    " AND n.lease_owner = o.owner"

/* A notice of a cancelled campaign that would be tried again is cancelled instead. FOR
 * SHARE makes the campaign's state stable for the statement (see queue.c's claim_sql): a
 * cancel (FOR UPDATE) waits for this record to commit and then finds the notice 'ready',
 * or this record waits for the cancel and reads 'cancelled'. */
static const char record_sql[] =
    RECORD_GATE " campaign AS ("
                " SELECT c.state FROM crier.campaign c, gate WHERE c.id = $15 FOR SHARE OF c),"
                " o AS ("
                " SELECT u.id, CASE WHEN u.to_state = 'ready' AND campaign.state = 'cancelled'"
                " THEN 'cancelled' ELSE u.to_state END AS to_state,"
                " u.to_channel, u.to_channel_index, u.delay, u.detail, u.sha,"
                " CASE WHEN u.to_state = 'ready' AND campaign.state = 'cancelled'"
                " THEN concat_ws('; ', u.reason, 'campaign cancelled') ELSE u.reason END AS "
                "reason," RECORD_O_COLUMNS " FROM campaign," RECORD_UNNEST ")," RECORD_TAIL;

/*
 * The same record when no outcome makes its notice 'ready' again (every accepted email,
 * every permanent refusal): the campaign's state changes nothing then, so the campaign row
 * is neither read nor locked. That lock is dear for a record of a few messages: a FOR
 * SHARE row lock writes the campaign's tuple and WAL, and with several recorders holding
 * it at once PostgreSQL makes a MultiXact (docs/benchmarks.md: +17 % alone). Nothing else needs
 * it: a cancel changes only 'ready' and 'held' notices (campaign.c), and a notice still
 * leased to this owner cannot be either (the lease test above, re-checked under the
 * notice's row lock); a pause changes no notice.
 */
static const char record_light_sql[] = RECORD_GATE
    " o AS ("
    " SELECT u.id, u.to_state, u.to_channel, u.to_channel_index, u.delay, u.detail, u.sha,"
    " u.reason," RECORD_O_COLUMNS " FROM gate," RECORD_UNNEST ")," RECORD_TAIL;

int transition_record(struct crier_db *db, const char *channel, const char *owner,
                      const struct transition_record *records, size_t n, long *ret_late)
{
    if (n == 0) {
        if (ret_late)
            *ret_late = 0;
        return 0;
    }
    struct db_array arrays[12] = {0};
    struct db_array transport_ids = {0}, content_at = {0};
    for (size_t i = 0; i < n; i++) {
        const struct transition_record *rec = &records[i];
        const struct policy_decision *d = rec->decision;
        db_array_add(&transport_ids,
                     rec->outcome->transport_id[0] ? rec->outcome->transport_id : NULL);
        db_array_add_long(&content_at, (long long)rec->outcome->content_at);
        db_array_add_long(&arrays[0], rec->notice->id);
        db_array_add(&arrays[1], notice_state_name(d->to_state));
        db_array_add(&arrays[2], rec->to_channel);
        db_array_add_long(&arrays[3], (long long)d->to_channel_index);
        db_array_add_long(&arrays[4], d->delay_seconds);
        db_array_add(&arrays[5], rec->outcome->detail);
        db_array_add(&arrays[6],
                     rec->outcome->content_sha256[0] ? rec->outcome->content_sha256 : NULL);
        db_array_add(&arrays[7], d->reason[0] ? d->reason : NULL);
        db_array_add(&arrays[8], d->channel_changed ? "t" : "f");
        db_array_add_long(&arrays[9], rec->notice->campaign_id);
        db_array_add(&arrays[10], rec->notice->ref);
        db_array_add_long(&arrays[11], rec->notice->attempt);
    }
    const char *params[17];
    db_arrays_end(arrays, 12, params);
    params[12] = owner;
    params[13] = channel;
    /* a batch is one campaign's: the partition is known */
    params[14] = DB_NUM(records[0].notice->campaign_id);
    params[15] = db_array_end(&transport_ids);
    params[16] = db_array_end(&content_at);
    bool again = false; /* an outcome that makes its notice 'ready' (record_sql) */
    for (size_t i = 0; i < n && !again; i++)
        again = records[i].decision->to_state == STATE_READY;
    PGresult *result = NULL;
    int r = db_query(db, again ? record_sql : record_light_sql, 17, params, &result);
    db_arrays_free(arrays, 12);
    db_array_free(&transport_ids);
    db_array_free(&content_at);
    if (r < 0)
        return r;
    if (ret_late)
        *ret_late = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}

/*
 * The recorder's statement: record_sql for several lanes at once, each row with its own
 * owner ($13), channel ($14) and campaign ($10). The advisory lock of every campaign
 * involved is taken first, in campaign order; a campaign's row is read and locked FOR
 * SHARE only when one of its outcomes would make a notice 'ready' (what a cancel must not
 * slip past; see record_light_sql for why nothing else needs it), so that the common case,
 * accepted messages, writes nothing but the notices, their log rows and the tallies.
 */
static const char record_lanes_sql[] =
    "WITH u AS ("
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[],"
    " $6::text[], $7::text[], $8::text[], $9::boolean[], $10::bigint[], $11::text[],"
    " $12::integer[], $13::text[], $14::text[], $15::text[], $16::bigint[])"
    " AS u(id, to_state, to_channel, to_channel_index, delay, detail, sha, reason, changed,"
    " campaign_id, ref, attempt, owner, channel, transport_id, content_at)),"
    " gate AS (SELECT count(pg_advisory_xact_lock_shared(" CAMPAIGN_LOCK_CLASS ", d.id::integer))"
    " AS n FROM (SELECT DISTINCT campaign_id AS id FROM u ORDER BY 1) d),"
    " campaign AS ("
    " SELECT c.id, c.state FROM crier.campaign c WHERE (SELECT n FROM gate) >= 0"
    " AND c.id IN (SELECT campaign_id FROM u WHERE to_state = 'ready') FOR SHARE OF c),"
    " o AS ("
    " SELECT u.id, CASE WHEN u.to_state = 'ready' AND c.state = 'cancelled'"
    " THEN 'cancelled' ELSE u.to_state END AS to_state,"
    " u.to_channel, u.to_channel_index, u.delay, u.detail, u.sha,"
    " CASE WHEN u.to_state = 'ready' AND c.state = 'cancelled'"
    " THEN concat_ws('; ', u.reason, 'campaign cancelled') ELSE u.reason END AS reason,"
    " u.changed, u.campaign_id, u.ref, u.attempt, u.transport_id, u.owner, u.channel,"
    " CASE WHEN u.sha IS NOT NULL AND u.content_at > 0 THEN to_timestamp(u.content_at) END"
    " AS content_at"
    " FROM u LEFT JOIN campaign c ON c.id = u.campaign_id WHERE (SELECT n FROM gate) >= 0),"
    " updated AS ("
    " UPDATE crier.notice n SET state = o.to_state, channel = o.to_channel,"
    " channel_index = o.to_channel_index,"
    " next_attempt_at = now() + make_interval(secs => o.delay),"
    " channel_attempt = CASE WHEN o.changed THEN 0 ELSE n.channel_attempt END,"
    " channel_started_at = CASE WHEN o.changed THEN NULL ELSE n.channel_started_at END,"
    " reasons = CASE WHEN o.reason IS NULL THEN n.reasons ELSE n.reasons || o.reason END,"
    " transport_id = o.transport_id,"
    " lease_owner = NULL, lease_expires_at = NULL, updated_at = now()"
    /* by key from the arrays, the owner test a join clause: as record_sql */
    " FROM o WHERE n.campaign_id = ANY ($10::bigint[]) AND n.id = ANY ($1::bigint[])"
    " AND n.id = o.id AND n.campaign_id = o.campaign_id AND n.lease_owner = o.owner"
    " RETURNING n.id),"
    " logged AS ("
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    " from_state, to_state, to_channel, attempt, actor, detail, reason, content_sha256,"
    " content_at)"
    " SELECT o.campaign_id, CASE WHEN u.id IS NULL THEN 'late_outcome' ELSE 'transition' END,"
    " o.id, o.ref, o.channel, 'sending', CASE WHEN u.id IS NULL THEN NULL ELSE o.to_state END,"
    " CASE WHEN o.changed AND u.id IS NOT NULL THEN o.to_channel END, o.attempt, o.owner,"
    " o.detail, o.reason, o.sha, o.content_at FROM o LEFT JOIN updated u ON u.id = o.id"
    " ORDER BY o.id)"
    " SELECT o.owner, count(*) FILTER (WHERE u.id IS NULL) FROM o"
    " LEFT JOIN updated u ON u.id = o.id GROUP BY o.owner";

/* record_add - one outcome's values to the 16 parallel arrays of record_lanes_sql. */
static void record_add(struct db_array *arrays, const struct transition_record *rec,
                       const char *owner, const char *channel)
{
    const struct policy_decision *d = rec->decision;
    const struct crier_outcome *out = rec->outcome;
    db_array_add_long(&arrays[0], rec->notice->id);
    db_array_add(&arrays[1], notice_state_name(d->to_state));
    db_array_add(&arrays[2], rec->to_channel);
    db_array_add_long(&arrays[3], (long long)d->to_channel_index);
    db_array_add_long(&arrays[4], d->delay_seconds);
    db_array_add(&arrays[5], out->detail);
    db_array_add(&arrays[6], out->content_sha256[0] ? out->content_sha256 : NULL);
    db_array_add(&arrays[7], d->reason[0] ? d->reason : NULL);
    db_array_add(&arrays[8], d->channel_changed ? "t" : "f");
    db_array_add_long(&arrays[9], rec->notice->campaign_id);
    db_array_add(&arrays[10], rec->notice->ref);
    db_array_add_long(&arrays[11], rec->notice->attempt);
    db_array_add(&arrays[12], owner);
    db_array_add(&arrays[13], channel);
    db_array_add(&arrays[14], out->transport_id[0] ? out->transport_id : NULL);
    db_array_add_long(&arrays[15], (long long)out->content_at);
}

int transition_record_lanes(struct crier_db *db, struct transition_lane_records *lanes, size_t n)
{
    struct db_array arrays[16] = {0};
    size_t rows = 0;
    for (size_t k = 0; k < n; k++) {
        lanes[k].late = 0;
        for (size_t i = 0; i < lanes[k].n; i++, rows++)
            record_add(arrays, &lanes[k].records[i], lanes[k].owner, lanes[k].channel);
    }
    if (rows == 0)
        return 0;
    const char *params[16];
    db_arrays_end(arrays, 16, params);
    PGresult *result = NULL;
    int r = db_query_prepared(db, "crier_record_lanes", record_lanes_sql, 16, params, &result);
    db_arrays_free(arrays, 16);
    if (r < 0)
        return r;
    for (int row = 0; row < PQntuples(result); row++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(PQgetvalue(result, row, 0), lanes[k].owner) == 0)
                lanes[k].late = strtol(PQgetvalue(result, row, 1), NULL, 10);
    PQclear(result);
    return 0;
}

/* ---- from submitted --------------------------------------------------------------------- */

/* The record: parallel arrays, one statement. A notice that would be ready again in a
 * cancelled campaign is cancelled instead, as record_sql does. The poller and crier serve's
 * status webhook (engine/web/hooks.c) both record with it; only a notice still 'submitted'
 * changes, so of the two that learn the same final status the second changes nothing. */
static const char polled_sql[] =
    "WITH o AS ("
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::smallint[],"
    " $6::bigint[], $7::text[], $8::text[], $9::boolean[], $10::text[], $11::boolean[],"
    " $12::text[], $13::integer[])"
    " AS u(id, campaign_id, to_state, to_channel, to_channel_index, delay, detail, reason,"
    " changed, transport_id, logged, ref, attempt)),"
    /* FOR SHARE through campaign_share (015_fax_hook.sql): the webhook's role records with
     * this statement and may not UPDATE a campaign, which a plain FOR SHARE would need */
    " c AS (SELECT id, state FROM crier.campaign_share("
    " ARRAY(SELECT DISTINCT campaign_id FROM o))),"
    " d AS (SELECT o.*, CASE WHEN o.to_state = 'ready' AND c.state = 'cancelled'"
    " THEN 'cancelled' ELSE o.to_state END AS final_state,"
    " CASE WHEN o.to_state = 'ready' AND c.state = 'cancelled'"
    " THEN concat_ws('; ', o.reason, 'campaign cancelled') ELSE o.reason END AS final_reason,"
    " 'submitted'::text AS from_state FROM o JOIN c ON c.id = o.campaign_id),"
    " updated AS ("
    " UPDATE crier.notice n SET state = d.final_state, channel = d.to_channel,"
    " channel_index = d.to_channel_index,"
    " next_attempt_at = CASE WHEN d.delay < 0 THEN 'infinity'::timestamptz"
    " ELSE now() + make_interval(secs => d.delay) END,"
    " channel_attempt = CASE WHEN d.changed THEN 0 ELSE n.channel_attempt END,"
    " channel_started_at = CASE WHEN d.changed THEN NULL ELSE n.channel_started_at END,"
    " reasons = CASE WHEN d.final_reason IS NULL THEN n.reasons"
    " ELSE n.reasons || d.final_reason END,"
    /* kept while the fax is the notice's (submitted, delivered); cleared for a resend */
    " transport_id = CASE WHEN d.final_state IN ('submitted', 'delivered')"
    " THEN d.transport_id END,"
    " updated_at = CASE WHEN d.logged THEN now() ELSE n.updated_at END"
    /* by key from the ids array, the state test a join clause: as record_sql */
    " FROM d WHERE n.campaign_id = d.campaign_id AND n.id = ANY ($1::bigint[]) AND n.id = d.id"
    " AND n.state = d.from_state"
    " RETURNING n.id),"
    " logged AS ("
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    " from_state, to_state, to_channel, attempt, actor, detail, reason)"
    " SELECT d.campaign_id, 'transition', d.id, d.ref, $14, 'submitted', d.final_state,"
    " CASE WHEN d.changed THEN d.to_channel END, d.attempt, $15, d.detail, d.final_reason"
    " FROM d JOIN updated u ON u.id = d.id WHERE d.logged ORDER BY d.id)"
    " SELECT count(*) FROM updated";

int transition_record_polled(struct crier_db *db, const char *channel, const char *owner,
                             const struct transition_polled *polled, size_t n)
{
    struct db_array arrays[13] = {0};
    for (size_t i = 0; i < n; i++) {
        const struct transition_polled *d = &polled[i];
        db_array_add_long(&arrays[0], d->notice->id);
        db_array_add_long(&arrays[1], d->notice->campaign_id);
        db_array_add(&arrays[2], d->to_state);
        db_array_add(&arrays[3], d->to_channel);
        db_array_add_long(&arrays[4], (long long)d->to_channel_index);
        db_array_add_long(&arrays[5], d->delay);
        db_array_add(&arrays[6], d->detail);
        db_array_add(&arrays[7], d->reason);
        db_array_add(&arrays[8], d->changed ? "t" : "f");
        db_array_add(&arrays[9], d->transport_id);
        db_array_add(&arrays[10], d->logged ? "t" : "f");
        db_array_add(&arrays[11], d->notice->ref);
        db_array_add_long(&arrays[12], d->notice->attempt);
    }
    const char *params[15];
    db_arrays_end(arrays, 13, params);
    params[13] = channel;
    params[14] = owner;
    int r = db_exec(db, polled_sql, 15, params);
    db_arrays_free(arrays, 13);
    return r;
}

/* ---- from sent ------------------------------------------------------------------------ */

/*
 * The bounce's record, in the shape of record_sql: the state change (none for a delay:
 * $3 to_state NULL) and its log row in one statement, only for a notice still 'sent' on
 * the channel that sent it ($13). The dedupe key's unique index stops a concurrent ingest of the
 * same DSN.
 */
static const char bounce_sql[] =
    "WITH updated AS ("
    " UPDATE crier.notice SET state = $3, channel = $4, channel_index = $5::smallint,"
    " next_attempt_at = now(),"
    " channel_attempt = CASE WHEN $6::boolean THEN 0 ELSE channel_attempt END,"
    " channel_started_at = CASE WHEN $6::boolean THEN NULL ELSE channel_started_at END,"
    " reasons = CASE WHEN $7::text IS NULL THEN reasons ELSE reasons || $7::text END,"
    " updated_at = now()"
    " WHERE campaign_id = $1 AND id = $2 AND state = 'sent' AND channel = $13"
    " AND $3::text IS NOT NULL"
    " RETURNING id),"
    " logged AS ("
    " INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,"
    " from_state, to_state, to_channel, attempt, actor, detail, reason, dedupe_key)"
    " SELECT $1, 'bounce', $2, $8, $13, 'sent', $3, CASE WHEN $6::boolean THEN $4 END,"
    " $9::integer, $10, $11, $7, $12"
    " WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM updated)"
    " RETURNING id)"
    " SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM logged)";

/* A campaign that had completed has work again: it runs until the moved notice is done. */
static const char reopen_sql[] =
    "WITH reopened AS ("
    " UPDATE crier.campaign SET state = 'running', finished_at = NULL"
    " WHERE id = $1 AND state = 'completed' RETURNING id)"
    " INSERT INTO crier.dispatch_log (campaign_id, event, from_state, to_state, actor, detail)"
    " SELECT id, 'campaign', 'completed', 'running', $2, $3 FROM reopened";

int transition_record_bounce(struct crier_db *db, const char *actor,
                             const struct transition_bounce *b, bool *ret_logged)
{
    char notice_id[32];
    snprintf(notice_id, sizeof(notice_id), "%lld", (long long)b->notice->id);
    const char *params[] = {
        DB_NUM(b->notice->campaign_id),
        notice_id,
        b->to_state,
        b->to_channel,
        DB_NUM(b->to_channel_index),
        b->changed ? "t" : "f",
        b->reason,
        b->notice->ref,
        DB_NUM(b->notice->attempt),
        actor,
        b->detail,
        b->dedupe_key,
        b->channel,
    };
    PGresult *result = NULL;
    int r = db_query(db, bounce_sql, 13, params, &result);
    if (r < 0)
        return r;
    *ret_logged = strcmp(PQgetvalue(result, 0, 1), "1") == 0;
    PQclear(result);
    if (!*ret_logged || !b->campaign_completed || b->to_state == NULL ||
        strcmp(b->to_state, "ready") != 0)
        return 0;
    char *detail = xasprintf("reopened: a bounce moved notice %s to %s", notice_id, b->to_channel);
    const char *reopen_params[] = {DB_NUM(b->notice->campaign_id), actor, detail};
    r = db_exec(db, reopen_sql, 3, reopen_params);
    free(detail);
    return r;
}

/* ---- mailed --------------------------------------------------------------------------- */

/* The notice stays mailed. A return is a duplicate, counted and not logged again, when a
 * return of the same mailing (the notice's attempt) is logged, or when the same file (its
 * SHA-256, $7, in the detail) logged a return of this notice: the file ingested twice, even
 * after the letter was mailed again. A letter mailed again after a forwarding address and
 * returned once more, reported in a new file, is a new return. The dedupe key (notice and
 * attempt) stops two concurrent ingests. Rows logged before the attempt entered the key
 * ('returned ID') are found by the attempt. */
static const char return_sql[] =
    "WITH n AS (SELECT n.id, n.campaign_id, n.state, n.attempt FROM crier.notice n"
    "  JOIN crier.campaign c ON c.id = n.campaign_id"
    "  JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
    "  WHERE c.name = $1 AND r.ref = $2),"
    " ins AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref,"
    "  channel, from_state, to_state, attempt, actor, detail, reason, dedupe_key)"
    "  SELECT n.campaign_id, 'returned', n.id, $2, $8, 'mailed', 'mailed', n.attempt,"
    "  $6, 'returned mail' || coalesce(' on ' || $4, '') || ' (' || $5 || coalesce(', ' || $7, '')"
    "  || ')', $3, 'returned ' || n.id || ' ' || n.attempt FROM n WHERE n.state = 'mailed'"
    "  AND NOT EXISTS (SELECT 1 FROM crier.dispatch_log d WHERE d.notice_id = n.id"
    "   AND d.event = 'returned' AND (d.attempt = n.attempt"
    "   OR ($7::text IS NOT NULL AND strpos(d.detail, $7) > 0)))"
    "  ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING 1)"
    " SELECT (SELECT count(*) FROM n), (SELECT state FROM n), (SELECT count(*) FROM ins)";

int transition_record_return(struct crier_db *db, const char *campaign, const char *ref,
                             const char *reason, const char *returned_on, const char *where,
                             const char *file_sha256, const char *actor,
                             enum transition_return_result *ret_result)
{
    char *file = file_sha256 ? xasprintf("file sha256 %s", file_sha256) : NULL;
    const char *params[] = {campaign, ref,   reason, returned_on,
                            where,    actor, file,   channel_batching()};
    PGresult *result = NULL;
    int r = db_query(db, return_sql, 8, params, &result);
    free(file);
    if (r < 0)
        return r;
    long found = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    const char *state = PQgetisnull(result, 0, 1) ? "" : PQgetvalue(result, 0, 1);
    long inserted = strtol(PQgetvalue(result, 0, 2), NULL, 10);
    *ret_result = found == 0                     ? RETURN_UNKNOWN
                  : strcmp(state, "mailed") != 0 ? RETURN_NOT_MAILED
                  : inserted == 1                ? RETURN_RECORDED
                                                 : RETURN_ALREADY;
    PQclear(result);
    return 0;
}
