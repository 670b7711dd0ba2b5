/*
 * poll.c - the pollers: final status for notices a channel left waiting (a fax
 * 'submitted' to its gateway), asked through the channel's poll op (see poll.h).
 *
 * One round, one transaction: lock a batch of due submitted notices of the channel (FOR
 * UPDATE SKIP LOCKED), ask the channel about them, record what the answers decide, commit.
 * A crash or a lost connection in between rolls the round back: nothing is lost, the
 * notices are asked about again. What each answer does:
 *
 *   DELIVERED          -> delivered (logged)
 *   PERMANENT          -> the policy's next usable channel, or undeliverable (logged)
 *   TEMPORARY          -> ready again on this channel, after backoff (logged): the gateway
 *                         confirmed the fax absent, or failed it in a way worth a resend
 *   ACCEPTED + id      -> stays submitted with the id found (logged: "reconciled")
 *   PENDING            -> stays submitted, asked again after the poll interval; no log row
 *                         (a row per poll would bury the record), but after the channel's
 *                         final-status timeout it counts as PERMANENT; PENDING "never by
 *                         itself" (retry_after -1) is logged once and left for a person
 *
 * A final status can also be pushed: crier serve's webhook (engine/web/hooks.c) hands the
 * callback its channel read to poll_callback_record, which decides and records it as an
 * answer of a round would be (poll_decide_final, transition_record_polled), for the one
 * submitted notice whose fax id and token match. A round passes a notice the webhook holds
 * (SKIP LOCKED); the webhook waits for a round that holds one, and then finds it final.
 *
 * Must never: resend anything itself (only a channel's TEMPORARY makes a notice ready
 * again), or hold a notice only in memory.
 */
#include "crier/poll.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/log.h"
#include "crier/policy.h"
#include "crier/transition.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_IDLE_SECONDS   1.0  /* a round that found less than a batch waits this long */
#define POLL_RECONNECT_MAX  30.0 /* seconds between reconnection attempts, at most */
#define POLL_REPORT_SECONDS 60.0 /* unanswered status checks are summed up this often */
#define POLL_NEVER          TRANSITION_NEVER

struct poller {
    const struct crier_config *config;
    const struct crier_channel_ops *ops;
    enum crier_channel_id channel_id;
    atomic_bool *stop;
    char owner[160]; /* host:pid:channel:poll, the log actor */
    pthread_t thread;
    bool started;
    struct crier_db *db;
    struct crier_channel *session;
    unsigned short random_state[3];
    long interval, final_timeout;
    int batch;
    long unanswered;          /* status checks the channel could not get an answer to */
    char unanswered_why[256]; /* the last such answer */
    double reported_at;
};

struct crier_pollers {
    struct poller *pollers;
    size_t count;
};

void poll_settings(const struct crier_config *config, enum crier_channel_id id, long *ret_interval,
                   long *ret_final_timeout)
{
    /* only the fax channel polls today; its section carries the settings */
    (void)id;
    *ret_interval = config->fax.poll_interval_seconds > 0 ? config->fax.poll_interval_seconds : 30;
    *ret_final_timeout = config->fax.final_status_timeout_seconds > 0
                             ? config->fax.final_status_timeout_seconds
                             : 86400;
}

static void sleep_until_stopped(atomic_bool *stop, double seconds)
{
    double until = monotonic_seconds() + seconds;
    while (!atomic_load(stop)) {
        double left = until - monotonic_seconds();
        if (left <= 0)
            break;
        double step = left < 0.05 ? left : 0.05;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static bool connect_until_stopped(struct poller *p)
{
    double delay = 1.0;
    bool reported = false;
    while (!atomic_load(p->stop)) {
        char err[512];
        int r;
        if (p->db) {
            r = db_reset(p->db);
            snprintf(err, sizeof(err), "%s", p->db->error);
        } else {
            r = db_open(p->config->conninfo, "crier run", &p->db, err, sizeof(err));
        }
        if (r == 0) {
            if (reported)
                log_notice("%s: database connection restored", p->owner);
            return true;
        }
        if (!reported)
            log_warning("%s: database unavailable, retrying: %s", p->owner, err);
        reported = true;
        sleep_until_stopped(p->stop, delay);
        delay = delay * 2 > POLL_RECONNECT_MAX ? POLL_RECONNECT_MAX : delay * 2;
    }
    return false;
}

/* ---- one round -------------------------------------------------------------------------- */

static const char due_sql[] = "SELECT " NOTICE_COLUMNS(
    "n",
    "r") ", n.channel_index,"
         " extract(epoch FROM n.channel_started_at), c.policy, n.transport_id,"
         /* when this attempt was claimed: the reconciliation's "since", the timeout's start */
         " extract(epoch FROM coalesce((SELECT max(l.at) FROM crier.dispatch_log l"
         " WHERE l.notice_id = n.id AND l.to_state = 'sending' AND l.attempt = n.attempt),"
         " n.updated_at)), c.name"
         " FROM crier.notice n"
         " JOIN crier.recipient_now r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
         " JOIN crier.campaign c ON c.id = n.campaign_id"
         " WHERE n.state = 'submitted' AND n.channel = $1 AND n.next_attempt_at <= now()"
         " ORDER BY n.next_attempt_at, n.id LIMIT $2"
         " FOR UPDATE OF n SKIP LOCKED";

/* The round's own columns, after the notice's. */
enum due_column {
    DUE_CHANNEL_INDEX = NOTICE_COLUMN_COUNT,
    DUE_CHANNEL_STARTED_AT,
    DUE_POLICY,
    DUE_TRANSPORT_ID,
    DUE_SUBMITTED_AT,
    DUE_CAMPAIGN_NAME,
};

/* poll_decide_final - the decision for a final status (DELIVERED, PERMANENT, TEMPORARY),
 * into *d: transition.c's, whether the poller asked or the gateway told (the webhook). */
static void poll_decide_final(const struct transition_input *in,
                              const struct crier_outcome *outcome,
                              struct policy_decision *policy_decision, struct transition_polled *d)
{
    transition_decide(in, outcome, policy_decision);
    d->to_state = notice_state_name(policy_decision->to_state);
    d->to_channel = transition_to_channel(in, policy_decision);
    d->to_channel_index = policy_decision->to_channel_index;
    d->delay = policy_decision->delay_seconds;
    d->reason = policy_decision->reason[0] ? policy_decision->reason : NULL;
    d->changed = policy_decision->channel_changed;
    d->logged = true;
}

/* poll_decide - the decision for one answer (transition.c for those that move the notice). */
static void poll_decide(struct poller *p, const struct crier_notice *notice, char **policy,
                        size_t channel_index, double channel_started_at, double submitted_at,
                        const char *transport_id, struct crier_outcome *outcome,
                        struct policy_decision *policy_decision, struct transition_polled *d)
{
    double now = now_seconds();
    *d = (struct transition_polled){
        .notice = notice,
        .to_state = "submitted",
        .to_channel = p->ops->name,
        .to_channel_index = channel_index,
        .delay = p->interval,
        .detail = outcome->detail,
        .transport_id = transport_id,
    };
    if (outcome->kind == OUTCOME_PENDING) {
        if (outcome->retry_after_seconds == POLL_NEVER) {
            d->delay = POLL_NEVER;
            d->logged = true;
            log_warning("%s: notice %lld (%s) needs a person: %s", p->owner, (long long)notice->id,
                        notice->ref, outcome->detail);
            return;
        }
        if (now - submitted_at < (double)p->final_timeout) {
            if (outcome->retry_after_seconds > 0)
                d->delay = outcome->retry_after_seconds;
            if (outcome->detail[0]) {
                p->unanswered++;
                snprintf(p->unanswered_why, sizeof(p->unanswered_why), "%s", outcome->detail);
            }
            return;
        }
        /* no final status in all this time: fall back rather than wait for ever */
        char why[OUTCOME_DETAIL_MAX];
        snprintf(why, sizeof(why), "no final status from the gateway %ld s after submission%s%s",
                 p->final_timeout, outcome->detail[0] ? ": " : "", outcome->detail);
        outcome_set(outcome, OUTCOME_PERMANENT, "%s", why);
    }
    if (outcome->kind == OUTCOME_ACCEPTED) {
        /* an unknown outcome reconciled: the fax exists; its status comes next */
        if (!str_empty(outcome->transport_id))
            d->transport_id = outcome->transport_id;
        if (outcome->retry_after_seconds > 0)
            d->delay = outcome->retry_after_seconds;
        d->logged = true;
        return;
    }
    struct transition_input in = {
        .config = p->config,
        .policy = policy,
        .notice = notice,
        .channel = p->ops->name,
        .channel_index = channel_index,
        .channel_started_at = channel_started_at,
        .accepted_state = p->ops->accepted_state,
        .now = now,
        .random_unit = erand48(p->random_state),
    };
    poll_decide_final(&in, outcome, policy_decision, d);
}

/* due_read - a round's transaction begun and its due notices read (rolled back when the
 * query failed). */
static int due_read(struct poller *p, PGresult **ret_due)
{
    int r = db_begin(p->db);
    if (r < 0)
        return r;
    const char *params[] = {p->ops->name, DB_NUM(p->batch)};
    r = db_query(p->db, due_sql, 2, params, ret_due);
    if (r < 0)
        db_rollback(p->db);
    return r;
}

/* One round: the due notices, row i of the due query each, and what is decided for them. */
struct round {
    size_t n;
    struct crier_notice *notices;
    struct crier_poll_item *items;
    struct crier_outcome *outcomes;
    struct policy_decision *policy_decisions;
    struct transition_polled *decisions;
    char ***policies;
};

/* What an answer came to, as the round's log line counts it. */
enum answer {
    ANSWER_DELIVERED,
    ANSWER_FAILED, /* the next channel, or undeliverable */
    ANSWER_RESENT,
    ANSWER_RECONCILED,
    ANSWER_PERSON,
    ANSWER_PENDING,
    ANSWER_KINDS
};

static void round_open(struct round *round, const PGresult *due)
{
    size_t n = round->n;
    round->notices = xcalloc(n, sizeof(*round->notices));
    round->items = xcalloc(n, sizeof(*round->items));
    round->outcomes = xcalloc(n, sizeof(*round->outcomes));
    round->policy_decisions = xcalloc(n, sizeof(*round->policy_decisions));
    round->decisions = xcalloc(n, sizeof(*round->decisions));
    round->policies = xcalloc(n, sizeof(char **));
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        struct crier_notice *notice = &round->notices[i];
        notice_from_row(due, row, notice);
        notice->vars_json = NULL; /* a status check renders nothing */
        notice->campaign_name = PQgetvalue(due, row, DUE_CAMPAIGN_NAME);
        round->policies[i] = db_array_parse(PQgetvalue(due, row, DUE_POLICY));
        round->items[i].notice = notice;
        round->items[i].transport_id = db_value(due, row, DUE_TRANSPORT_ID);
        round->items[i].submitted_at = strtod(PQgetvalue(due, row, DUE_SUBMITTED_AT), NULL);
    }
}

/* round_decide - the decision for notice i of the round, and what it came to. */
static enum answer round_decide(struct poller *p, struct round *round, const PGresult *due,
                                size_t i)
{
    int row = (int)i;
    const char *started_text = db_value(due, row, DUE_CHANNEL_STARTED_AT);
    double channel_started_at = started_text ? strtod(started_text, NULL) : now_seconds();
    size_t channel_index = strtoul(PQgetvalue(due, row, DUE_CHANNEL_INDEX), NULL, 10);
    poll_decide(p, &round->notices[i], round->policies[i], channel_index, channel_started_at,
                round->items[i].submitted_at, round->items[i].transport_id, &round->outcomes[i],
                &round->policy_decisions[i], &round->decisions[i]);
    const struct transition_polled *d = &round->decisions[i];
    if (!d->logged)
        return ANSWER_PENDING;
    if (d->delay == POLL_NEVER)
        return ANSWER_PERSON;
    if (strcmp(d->to_state, "submitted") == 0)
        return ANSWER_RECONCILED;
    if (strcmp(d->to_state, "delivered") == 0)
        return ANSWER_DELIVERED;
    if (d->changed || strcmp(d->to_state, "undeliverable") == 0)
        return ANSWER_FAILED;
    return ANSWER_RESENT;
}

/* round_record - the decisions recorded and the transaction ended; a line for the log
 * when anything moved. */
static int round_record(struct poller *p, const struct round *round, const long *counts)
{
    int r = transition_record_polled(p->db, p->ops->name, p->owner, round->decisions, round->n);
    if (r == 0) {
        r = db_commit(p->db);
    } else {
        log_error("%s: recording %zu status answers failed: %s", p->owner, round->n, p->db->error);
        db_rollback(p->db);
    }
    if (r == 0 && (counts[ANSWER_DELIVERED] || counts[ANSWER_FAILED] || counts[ANSWER_RESENT] ||
                   counts[ANSWER_RECONCILED] || counts[ANSWER_PERSON]))
        log_info("%s: %zu asked: %ld delivered, %ld failed (next channel), %ld to send again, "
                 "%ld reconciled, %ld for a person, %ld pending",
                 p->owner, round->n, counts[ANSWER_DELIVERED], counts[ANSWER_FAILED],
                 counts[ANSWER_RESENT], counts[ANSWER_RECONCILED], counts[ANSWER_PERSON],
                 counts[ANSWER_PENDING]);
    return r;
}

static void round_free(struct round *round)
{
    for (size_t i = 0; i < round->n; i++)
        strv_free(round->policies[i]);
    FREE_MANY(round->policies, round->decisions, round->policy_decisions, round->outcomes,
              round->items, round->notices);
}

/* poll_round - one transaction; returns the notices asked about, or < 0. */
static long poll_round(struct poller *p)
{
    PGresult *due = NULL;
    int r = due_read(p, &due);
    if (r < 0)
        return r;
    struct round round = {.n = (size_t)PQntuples(due)};
    if (round.n == 0) {
        PQclear(due);
        return db_commit(p->db);
    }
    round_open(&round, due);
    channel_poll(p->session, round.items, round.n, round.outcomes);
    long counts[ANSWER_KINDS] = {0};
    for (size_t i = 0; i < round.n; i++)
        counts[round_decide(p, &round, due, i)]++;
    r = round_record(p, &round, counts);
    round_free(&round);
    PQclear(due);
    return r < 0 ? r : (long)round.n;
}

/* ---- a status the gateway pushed (crier serve's webhook) ------------------------------- */

/* The notice a pushed status is about: still submitted on the channel, with the fax id and
 * the token the gateway echoed. The token's id gives the campaign (id = campaign * 2^32 +
 * seq), so the lookup is one primary-key probe in one partition. FOR UPDATE without SKIP
 * LOCKED: a poll round that holds the notice is waited for, and the row is then tested
 * again (a notice it finished no longer matches, and nothing is recorded twice). */
static const char callback_sql[] = "SELECT " NOTICE_COLUMNS(
    "n", "r") ", n.channel_index, extract(epoch FROM n.channel_started_at), c.policy, c.name"
              " FROM crier.notice n"
              " JOIN crier.recipient_now r ON r.campaign_id = n.campaign_id"
              " AND r.seq = n.recipient_seq"
              " JOIN crier.campaign c ON c.id = n.campaign_id"
              " WHERE n.campaign_id = $1::bigint >> 32 AND n.id = $1::bigint"
              " AND n.id || '.' || n.token = $2 AND n.state = 'submitted' AND n.channel = $3"
              " AND n.transport_id = $4"
              " FOR UPDATE OF n";

enum callback_column {
    CALLBACK_CHANNEL_INDEX = NOTICE_COLUMN_COUNT,
    CALLBACK_CHANNEL_STARTED_AT,
    CALLBACK_POLICY,
    CALLBACK_CAMPAIGN_NAME,
};

/* callback_record_row - decide and record the status for the one notice found. */
static int callback_record_row(struct crier_db *db, const struct crier_config *config,
                               const struct crier_channel_ops *ops, PGresult *found,
                               const struct crier_callback *callback, const char *owner)
{
    struct crier_notice notice;
    notice_from_row(found, 0, &notice);
    notice.vars_json = NULL;
    notice.campaign_name = PQgetvalue(found, 0, CALLBACK_CAMPAIGN_NAME);
    char **policy = db_array_parse(PQgetvalue(found, 0, CALLBACK_POLICY));
    const char *started = db_value(found, 0, CALLBACK_CHANNEL_STARTED_AT);
    unsigned short random_state[3] = {(unsigned short)getpid(), (unsigned short)time(NULL),
                                      (unsigned short)notice.id};
    struct transition_input in = {
        .config = config,
        .policy = policy,
        .notice = &notice,
        .channel = ops->name,
        .channel_index = strtoul(PQgetvalue(found, 0, CALLBACK_CHANNEL_INDEX), NULL, 10),
        .channel_started_at = started ? strtod(started, NULL) : now_seconds(),
        .accepted_state = ops->accepted_state,
        .now = now_seconds(),
        .random_unit = erand48(random_state),
    };
    /* the poller's words, and where they came from */
    struct crier_outcome outcome = callback->outcome;
    size_t len = strlen(outcome.detail);
    snprintf(outcome.detail + len, sizeof(outcome.detail) - len, " (webhook)");
    struct policy_decision policy_decision;
    struct transition_polled d = {
        .notice = &notice,
        .detail = outcome.detail,
        .transport_id = callback->transport_id,
    };
    poll_decide_final(&in, &outcome, &policy_decision, &d);
    int r = transition_record_polled(db, ops->name, owner, &d, 1);
    strv_free(policy);
    return r;
}

int poll_callback_record(struct crier_db *db, const struct crier_config *config,
                         const struct crier_channel_ops *ops, const struct crier_callback *callback,
                         const char *owner, enum poll_callback_result *ret_result)
{
    enum crier_outcome_kind kind = callback->outcome.kind;
    if (!callback->final_status ||
        (kind != OUTCOME_DELIVERED && kind != OUTCOME_PERMANENT && kind != OUTCOME_TEMPORARY)) {
        *ret_result = CALLBACK_NOT_FINAL;
        return 0;
    }
    if (callback->notice_id <= 0) {
        *ret_result = CALLBACK_NO_NOTICE;
        return 0;
    }
    const char *params[] = {DB_NUM(callback->notice_id), callback->token, ops->name,
                            callback->transport_id};
    int r = db_begin(db);
    if (r < 0)
        return r;
    PGresult *found = NULL;
    r = db_query(db, callback_sql, 4, params, &found);
    if (r == 0 && PQntuples(found) == 1)
        r = callback_record_row(db, config, ops, found, callback, owner);
    bool recorded = r == 0 && PQntuples(found) == 1;
    PQclear(found);
    if (r < 0) {
        db_rollback(db);
        return r;
    }
    r = db_commit(db);
    if (r == 0)
        *ret_result = recorded ? CALLBACK_RECORDED : CALLBACK_NO_NOTICE;
    return r;
}

static void *poller_main(void *data)
{
    struct poller *p = data;
    if (!connect_until_stopped(p))
        return NULL;
    int r = channel_open(p->ops, p->config, &p->session);
    if (r < 0) {
        log_error("%s: cannot open the %s channel to poll: %s", p->owner, p->ops->name,
                  strerror(-r));
        return NULL;
    }
    p->reported_at = monotonic_seconds();
    while (!atomic_load(p->stop)) {
        if (db_lost(p->db) && !connect_until_stopped(p))
            break;
        long asked = poll_round(p);
        if (asked < 0 && !db_lost(p->db))
            log_error("%s: %s", p->owner, p->db->error);
        double now = monotonic_seconds();
        if (p->unanswered > 0 && now - p->reported_at >= POLL_REPORT_SECONDS) {
            log_warning("%s: %ld status checks got no answer in the last %.0f s (they are asked "
                        "again), e.g. %s",
                        p->owner, p->unanswered, now - p->reported_at, p->unanswered_why);
            p->unanswered = 0;
            p->reported_at = now;
        }
        if (asked < p->batch)
            sleep_until_stopped(p->stop, POLL_IDLE_SECONDS);
    }
    if (p->unanswered > 0)
        log_warning("%s: %ld status checks got no answer (they are asked again), e.g. %s", p->owner,
                    p->unanswered, p->unanswered_why);
    return NULL;
}

int pollers_start(const struct crier_config *config, atomic_bool *stop, const char *host,
                  struct crier_pollers **ret)
{
    struct crier_pollers *pollers = xcalloc(1, sizeof(*pollers));
    pollers->pollers = xcalloc(CHANNEL_COUNT, sizeof(struct poller));
    int r = 0;
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops == NULL || ops->poll == NULL || !config->channel[id].enabled ||
            config->channel[id].lanes == 0)
            continue;
        struct poller *p = &pollers->pollers[pollers->count++];
        p->config = config;
        p->ops = ops;
        p->channel_id = (enum crier_channel_id)id;
        p->stop = stop;
        p->batch = config->channel[id].batch_size > 0 ? config->channel[id].batch_size : 100;
        poll_settings(config, p->channel_id, &p->interval, &p->final_timeout);
        snprintf(p->owner, sizeof(p->owner), "%s:%d:%s:poll", host, (int)getpid(), ops->name);
        unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)id;
        memcpy(p->random_state, &seed, sizeof(unsigned short) * 2);
        p->random_state[2] = (unsigned short)(id * 7919);
        int e = pthread_create(&p->thread, NULL, poller_main, p);
        if (e != 0) {
            log_error("cannot start the %s poller: %s", ops->name, strerror(e));
            r = -e;
            pollers->count--;
            continue;
        }
        p->started = true;
    }
    *ret = pollers;
    return r;
}

struct crier_pollers *pollers_stop(struct crier_pollers *pollers)
{
    if (pollers == NULL)
        return NULL;
    for (size_t i = 0; i < pollers->count; i++) {
        struct poller *p = &pollers->pollers[i];
        if (!p->started)
            continue;
        pthread_join(p->thread, NULL);
        channel_close(p->session);
        db_close(p->db);
    }
    free(pollers->pollers);
    free(pollers);
    return NULL;
}

void poll_channels(const struct crier_config *config, struct db_array *ret)
{
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops == NULL || ops->poll == NULL)
            continue;
        if (config && (!config->channel[id].enabled || config->channel[id].lanes == 0))
            continue;
        db_array_add(ret, ops->name);
    }
}

int poll_work_left(struct crier_db *db, const struct crier_config *config, long *ret_count)
{
    struct db_array channels = {0};
    poll_channels(config, &channels);
    if (channels.text.len == 0) {
        *ret_count = 0;
        return 0;
    }
    const char *params[] = {db_array_end(&channels)};
    int r = db_query_long(db,
                          "SELECT count(*) FROM (SELECT 1 FROM crier.notice n JOIN crier.campaign c"
                          " ON c.id = n.campaign_id WHERE c.state = 'running'"
                          " AND n.state = 'submitted' AND n.channel = ANY ($1::text[])"
                          " AND n.next_attempt_at < 'infinity' LIMIT 1) x",
                          1, params, ret_count);
    db_array_free(&channels);
    return r;
}
