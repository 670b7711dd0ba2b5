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
 * Must never: resend anything itself (only a channel's TEMPORARY makes a notice ready
 * again), or hold a notice only in memory.
 */
#include "crier/poll.h"
#include "crier/crier.h"
#include "crier/log.h"
#include "crier/policy.h"

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
#define POLL_NEVER          (-1) /* delay: next_attempt_at = infinity */

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

static const char due_sql[] =
    "SELECT n.id, n.campaign_id, n.id || '.' || n.token, n.channel_index, n.attempt,"
    " n.channel_attempt, extract(epoch FROM n.channel_started_at), r.ref, r.name, r.email,"
    " r.fax, r.address1, r.address2, r.city, r.region, r.postal_code, r.country, r.mailable,"
    " c.policy, n.transport_id,"
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

/* The record: parallel arrays, one statement. A notice that would be ready again in a
 * cancelled campaign is cancelled instead, as queue.c's record does. */
static const char record_sql[] =
    "WITH o AS ("
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::smallint[],"
    " $6::bigint[], $7::text[], $8::text[], $9::boolean[], $10::text[], $11::boolean[],"
    " $12::text[], $13::integer[])"
    " AS u(id, campaign_id, to_state, to_channel, to_channel_index, delay, detail, reason,"
    " changed, transport_id, logged, ref, attempt)),"
    " c AS (SELECT id, state FROM crier.campaign"
    " WHERE id IN (SELECT DISTINCT campaign_id FROM o) FOR SHARE),"
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
    /* by key from the ids array, the state test a join clause: as queue.c's record */
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

/* A growing PostgreSQL array literal (as queue.c builds them). */
struct array_text {
    char *data;
    size_t len, cap;
};

static void text_add(struct array_text *a, const char *s, size_t n)
{
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->len + n + 2)
            cap *= 2;
        a->data = xrealloc(a->data, cap);
        a->cap = cap;
    }
    memcpy(a->data + a->len, s, n);
    a->len += n;
    a->data[a->len] = '\0';
}

static void array_add(struct array_text *a, const char *value)
{
    text_add(a, a->len == 0 ? "{" : ",", 1);
    if (value == NULL) {
        text_add(a, "NULL", 4);
        return;
    }
    text_add(a, "\"", 1);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            text_add(a, "\\", 1);
        text_add(a, p, 1);
    }
    text_add(a, "\"", 1);
}

static void array_add_long(struct array_text *a, long long value)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", value);
    array_add(a, text);
}

static const char *array_finish(struct array_text *a)
{
    if (a->len == 0)
        text_add(a, "{", 1);
    text_add(a, "}", 1);
    return a->data;
}

static const char *nullable(const PGresult *result, int row, int column)
{
    return PQgetisnull(result, row, column) ? NULL : PQgetvalue(result, row, column);
}

/* What one answer decides, before it is stored. */
struct poll_decision {
    const char *to_state;
    const char *to_channel;
    size_t to_channel_index;
    long delay; /* seconds; POLL_NEVER = not by itself */
    const char *detail;
    const char *reason;
    bool changed;
    const char *transport_id;
    bool logged;
};

/* poll_decide - the decision for one answer (policy.c for the transitions it knows). */
static void poll_decide(struct poller *p, const struct crier_notice *notice, char **policy,
                        size_t channel_index, double channel_started_at, double submitted_at,
                        const char *transport_id, struct crier_outcome *outcome,
                        struct policy_decision *policy_decision, struct poll_decision *d)
{
    const struct crier_config *config = p->config;
    size_t policy_count = strv_length(policy);
    double now = now_seconds();
    *d = (struct poll_decision){
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
    const struct policy_limits limits = {
        .backoff_min_seconds = config->queue.backoff_min_seconds,
        .backoff_max_seconds = config->queue.backoff_max_seconds,
        .backoff_jitter = config->queue.backoff_jitter,
        .give_up_after_seconds = config->queue.give_up_after_seconds,
    };
    struct channel_usable_data usable = {config, policy, notice};
    struct policy_input in = {
        .channels = (const char *const *)policy,
        .channel_count = policy_count,
        .channel_index = channel_index,
        .channel_attempt = notice->channel_attempt,
        .channel_started_at = channel_started_at,
        .now = now,
        .random_unit = erand48(p->random_state),
        .limits = &limits,
        .accepted_state = p->ops->accepted_state,
        .usable = channel_usable,
        .usable_data = &usable,
    };
    if (policy_decide(&in, outcome, policy_decision) < 0) {
        *policy_decision = (struct policy_decision){.to_state = STATE_UNDELIVERABLE,
                                                    .to_channel_index = channel_index};
        snprintf(policy_decision->reason, sizeof(policy_decision->reason),
                 "%s: notice state inconsistent with its campaign policy", p->ops->name);
    }
    size_t to = policy_decision->to_channel_index;
    d->to_state = notice_state_name(policy_decision->to_state);
    d->to_channel = to < policy_count ? policy[to] : p->ops->name;
    d->to_channel_index = to;
    d->delay = policy_decision->delay_seconds;
    d->reason = policy_decision->reason[0] ? policy_decision->reason : NULL;
    d->changed = policy_decision->channel_changed;
    d->logged = true;
}

/* poll_round - one transaction; returns the notices asked about, or < 0. */
static long poll_round(struct poller *p)
{
    int r = db_begin(p->db);
    if (r < 0)
        return r;
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", p->batch);
    const char *params[] = {p->ops->name, limit};
    PGresult *due = NULL;
    r = db_query(p->db, due_sql, 2, params, &due);
    if (r < 0) {
        db_rollback(p->db);
        return r;
    }
    size_t n = (size_t)PQntuples(due);
    if (n == 0) {
        PQclear(due);
        return db_commit(p->db);
    }
    struct crier_notice *notices = xcalloc(n, sizeof(*notices));
    struct crier_poll_item *items = xcalloc(n, sizeof(*items));
    struct crier_outcome *outcomes = xcalloc(n, sizeof(*outcomes));
    struct policy_decision *policy_decisions = xcalloc(n, sizeof(*policy_decisions));
    struct poll_decision *decisions = xcalloc(n, sizeof(*decisions));
    char ***policies = xcalloc(n, sizeof(char **));
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        struct crier_notice *notice = &notices[i];
        notice->id = strtoll(PQgetvalue(due, row, 0), NULL, 10);
        notice->campaign_id = strtoll(PQgetvalue(due, row, 1), NULL, 10);
        notice->token = PQgetvalue(due, row, 2);
        notice->attempt = atoi(PQgetvalue(due, row, 4));
        notice->channel_attempt = atoi(PQgetvalue(due, row, 5));
        notice->ref = PQgetvalue(due, row, 7);
        notice->name = PQgetvalue(due, row, 8);
        notice->email = nullable(due, row, 9);
        notice->fax = nullable(due, row, 10);
        for (int a = 0; a < 5; a++)
            notice->address[a] = nullable(due, row, 11 + a);
        notice->country = PQgetvalue(due, row, 16);
        notice->mailable = strcmp(PQgetvalue(due, row, 17), "t") == 0;
        policies[i] = db_array_parse(PQgetvalue(due, row, 18));
        notice->campaign_name = PQgetvalue(due, row, 21);
        items[i].notice = notice;
        items[i].transport_id = nullable(due, row, 19);
        items[i].submitted_at = strtod(PQgetvalue(due, row, 20), NULL);
    }

    channel_poll(p->session, items, n, outcomes);

    struct array_text arrays[13] = {{0}};
    long counts[6] = {0}; /* delivered, failed, resent, reconciled, person, pending */
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        const char *started_text = nullable(due, row, 6);
        double channel_started_at = started_text ? strtod(started_text, NULL) : now_seconds();
        size_t channel_index = strtoul(PQgetvalue(due, row, 3), NULL, 10);
        poll_decide(p, &notices[i], policies[i], channel_index, channel_started_at,
                    items[i].submitted_at, items[i].transport_id, &outcomes[i],
                    &policy_decisions[i], &decisions[i]);
        const struct poll_decision *d = &decisions[i];
        if (!d->logged)
            counts[5]++;
        else if (d->delay == POLL_NEVER)
            counts[4]++;
        else if (strcmp(d->to_state, "submitted") == 0)
            counts[3]++;
        else if (strcmp(d->to_state, "delivered") == 0)
            counts[0]++;
        else if (d->changed || strcmp(d->to_state, "undeliverable") == 0)
            counts[1]++;
        else
            counts[2]++;
        array_add_long(&arrays[0], notices[i].id);
        array_add_long(&arrays[1], notices[i].campaign_id);
        array_add(&arrays[2], d->to_state);
        array_add(&arrays[3], d->to_channel);
        array_add_long(&arrays[4], (long long)d->to_channel_index);
        array_add_long(&arrays[5], d->delay);
        array_add(&arrays[6], d->detail);
        array_add(&arrays[7], d->reason);
        array_add(&arrays[8], d->changed ? "t" : "f");
        array_add(&arrays[9], d->transport_id);
        array_add(&arrays[10], d->logged ? "t" : "f");
        array_add(&arrays[11], notices[i].ref);
        array_add_long(&arrays[12], notices[i].attempt);
    }
    const char *record_params[15];
    for (int k = 0; k < 13; k++)
        record_params[k] = array_finish(&arrays[k]);
    record_params[13] = p->ops->name;
    record_params[14] = p->owner;
    PGresult *result = NULL;
    r = db_query(p->db, record_sql, 15, record_params, &result);
    if (r == 0) {
        PQclear(result);
        r = db_commit(p->db);
    } else {
        log_error("%s: recording %zu status answers failed: %s", p->owner, n, p->db->error);
        db_rollback(p->db);
    }
    if (r == 0 && (counts[0] || counts[1] || counts[2] || counts[3] || counts[4]))
        log_info("%s: %zu asked: %ld delivered, %ld failed (next channel), %ld to send again, "
                 "%ld reconciled, %ld for a person, %ld pending",
                 p->owner, n, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
    for (int k = 0; k < 13; k++)
        free(arrays[k].data);
    for (size_t i = 0; i < n; i++)
        strv_free(policies[i]);
    free(policies);
    free(decisions);
    free(policy_decisions);
    free(outcomes);
    free(items);
    free(notices);
    PQclear(due);
    return r < 0 ? r : (long)n;
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

int poll_work_left(struct crier_db *db, const struct crier_config *config, long *ret_count)
{
    char channels[256] = "{";
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops == NULL || ops->poll == NULL || !config->channel[id].enabled ||
            config->channel[id].lanes == 0)
            continue;
        size_t len = strlen(channels);
        snprintf(channels + len, sizeof(channels) - len, "%s\"%s\"", len > 1 ? "," : "", ops->name);
    }
    strcat(channels, "}");
    if (strcmp(channels, "{}") == 0) {
        *ret_count = 0;
        return 0;
    }
    const char *params[] = {channels};
    PGresult *result = NULL;
    int r = db_query(db,
                     "SELECT count(*) FROM (SELECT 1 FROM crier.notice n JOIN crier.campaign c"
                     " ON c.id = n.campaign_id WHERE c.state = 'running'"
                     " AND n.state = 'submitted' AND n.channel = ANY ($1::text[])"
                     " AND n.next_attempt_at < 'infinity' LIMIT 1) x",
                     1, params, &result);
    if (r < 0)
        return r;
    *ret_count = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}
