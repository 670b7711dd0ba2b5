/*
 * worker.c - `crier run`: per channel, N lane threads, each with its own database
 * connection and its own channel session: claim a batch, send it, record every outcome
 * in one transaction. The main thread waits for signals and, once a tick, reaps expired
 * leases, stamps its heartbeat and marks finished campaigns completed.
 *
 * It never moves a notice off a channel because no worker serves it: such notices wait,
 * and only `crier campaign reroute` moves them (service.c).
 *
 * A lane never holds a notice only in memory: a lane that dies leaves its batch leased in
 * the database, and the reaper of any worker puts it back. On SIGTERM/SIGINT each lane
 * finishes the batch it is sending, records it, and exits; on SIGHUP the same, and then
 * worker_run returns WORKER_RELOAD for the caller to start again with the new configuration.
 */
#include "crier/worker.h"
#include "crier/batch.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/hold.h"
#include "crier/log.h"
#include "crier/metrics.h"
#include "crier/migrate.h"
#include "crier/policy.h"
#include "crier/poll.h"
#include "crier/queue.h"
#include "crier/recorder.h"
#include "crier/render.h"
#include "crier/seal.h"
#include "crier/service.h"
#include "crier/transition.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define TICK_SECONDS          1.0 /* main thread housekeeping period */
#define CAMPAIGN_REFRESH      1.0 /* how often a lane re-reads the running campaigns */
#define RECONNECT_MIN_SECONDS 1.0
#define RECONNECT_MAX_SECONDS 30.0
#define WAITING_WARN_SECONDS  60.0 /* how often run repeats that notices wait for a channel */
#define STATUS_SECONDS        5.0  /* how often systemd's STATUS= is refreshed */
#define IDLE_QUIET_SECONDS    0.25 /* --until-idle: lanes quiet this long before asking */
#define RECORD_LINGER_MS      20   /* a fax reply waits this long at most for others (recorder.c) */

/* A token bucket shared by the lanes of one channel in this process. */
struct rate_bucket {
    pthread_mutex_t lock;
    double rate;  /* notices per second; 0 = unlimited */
    double burst; /* most tokens held */
    double tokens;
    double refilled_at;
};

/* A running campaign as a lane sees it. */
struct campaign_ref {
    int64_t id;
    char **policy;
};

struct worker;

struct lane {
    struct worker *worker;
    enum crier_channel_id channel_id;
    const struct crier_channel_ops *ops;
    pthread_t thread;
    char owner[160]; /* host:pid:channel:lane, the lease owner and log actor */
    struct crier_db *db;
    struct crier_channel *session;
    struct campaign_ref *campaigns;
    size_t campaign_count;
    double campaigns_read_at;
    size_t round_robin;
    struct queue_batch *sending;   /* the batch being sent, for lease keepalive */
    struct queue_ids *sending_ids; /* or the batch claimed by ids being sent in slices */
    /* outcomes the channel reports while it sends are recorded at once by the process's
     * recorder thread, on its own connection (recorder.c); the rest when the batch ends */
    struct recorder *recorder;
    const struct queue_batch *recording; /* the batch being sent, for the recorder */
    const struct crier_outcome *recording_outcomes;
    char *const *recording_policy;
    long recording_late; /* outcomes the recorder found past their lease */
    unsigned short record_random_state[3];
    struct render_campaign **renders; /* templates of the campaigns this lane has sent for */
    struct queue_cursor *cursors;     /* where this lane's last claim ended, per campaign */
    int64_t *cursor_campaign;
    size_t cursor_count;
    size_t render_count;
    double lease_extended_at;
    double reset_at; /* monotonic: the last reconnection tried while a batch was handed over */
    bool claim_cut;  /* a claim of a batch in slices lost its connection: its lines may be left */
    unsigned short random_state[3];
    atomic_long done;      /* notices recorded */
    atomic_long in_flight; /* notices of the batch being sent (systemd STATUS=) */
    bool started;
};

struct worker {
    const struct crier_config *config;
    const struct worker_options *options;
    atomic_bool stop;
    char host[64];
    char id[96];              /* host:pid, this process's row in crier.worker */
    double started;           /* monotonic */
    _Atomic double last_work; /* monotonic time a lane last recorded a batch */
    unsigned long ticks;
    double sealed_at; /* monotonic: the last seal of the dispatch log (audit.seal_interval) */
    double reaped_at; /* monotonic: the last run of the lease reaper */
    double waiting_warned_at;  /* monotonic: the last warning about notices waiting */
    double waiting_counted_at; /* monotonic: the last count for /metrics (--metrics) */
    pthread_t main_thread;     /* pings systemd's watchdog, even while reconnecting */
    bool watchdog;             /* WatchdogSec= is set: WATCHDOG=1 every tick */
    char channels[256];        /* the channels this process serves, a text[] literal */
    struct rate_bucket bucket[CHANNEL_COUNT];
    struct lane *lanes;
    size_t lane_count;
    struct recorder_group *recorders; /* one thread records for every lane (recorder.c) */
    struct crier_db *record_db;       /* its connection */
};

/* ---- helpers ----------------------------------------------------------------------- */

static void sleep_seconds(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

/* take_stop_signal - the main thread takes SIGINT and SIGTERM in worker_run's loop; while
 * it waits for the database in housekeeping instead, a stop must still be taken, or a
 * `systemctl stop` during an outage waits for PostgreSQL to come back (it did: a run whose
 * cluster was gone for good ignored SIGTERM for an hour). SIGHUP stays pending for the
 * loop. Nothing is lost by stopping now: what the lanes hold is leased. */
static void take_stop_signal(struct worker *w)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    struct timespec now = {0, 0};
    siginfo_t info;
    int sig = sigtimedwait(&stop, &info, &now);
    if (sig != SIGINT && sig != SIGTERM)
        return;
    sd_notify(0, "STOPPING=1\nSTATUS=stopping while the database is unavailable");
    log_notice("%s received while waiting for the database: stopping; what is in flight "
               "stays leased and is reaped if it cannot be recorded",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&w->stop, true);
}

/* sleep_unless_stopped - sleep in short steps so that a stop request is seen quickly. */
static void sleep_unless_stopped(struct worker *w, double seconds)
{
    double until = monotonic_seconds() + seconds;
    while (!atomic_load(&w->stop)) {
        if (pthread_equal(pthread_self(), w->main_thread)) {
            if (w->watchdog)
                sd_notify(0, "WATCHDOG=1"); /* the main thread waits for the database: alive */
            take_stop_signal(w);
            if (atomic_load(&w->stop))
                break;
        }
        double left = until - monotonic_seconds();
        if (left <= 0)
            break;
        sleep_seconds(left < 0.05 ? left : 0.05);
    }
}

static void rate_acquire(struct worker *w, struct rate_bucket *b, double n)
{
    if (b->rate <= 0)
        return;
    while (!atomic_load(&w->stop)) {
        pthread_mutex_lock(&b->lock);
        double now = monotonic_seconds();
        b->tokens += (now - b->refilled_at) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->refilled_at = now;
        double wait = 0;
        if (b->tokens >= n || n > b->burst) {
            b->tokens -= n; /* a batch bigger than the burst goes into debt */
        } else {
            wait = (n - b->tokens) / b->rate;
        }
        pthread_mutex_unlock(&b->lock);
        if (wait == 0)
            return;
        sleep_seconds(wait < 0.1 ? wait : 0.1);
    }
}

static void campaigns_clear(struct lane *lane)
{
    for (size_t i = 0; i < lane->campaign_count; i++)
        strv_free(lane->campaigns[i].policy);
    free(lane->campaigns);
    lane->campaigns = NULL;
    lane->campaign_count = 0;
}

/* campaigns_read - the running campaigns whose policy names this lane's channel. */
static int campaigns_read(struct crier_db *db, const char *channel, struct campaign_ref **ret,
                          size_t *ret_count)
{
    const char *params[] = {channel};
    PGresult *result = NULL;
    int r = db_query(db,
                     "SELECT id, policy FROM crier.campaign WHERE state = 'running'"
                     " AND ($1 = '' OR $1 = ANY (policy)) ORDER BY id",
                     1, params, &result);
    if (r < 0)
        return r;
    size_t count = (size_t)PQntuples(result);
    struct campaign_ref *list = xcalloc(count + 1, sizeof(*list));
    for (size_t i = 0; i < count; i++) {
        list[i].id = strtoll(PQgetvalue(result, (int)i, 0), NULL, 10);
        list[i].policy = campaign_policy_from_array(PQgetvalue(result, (int)i, 1));
    }
    PQclear(result);
    *ret = list;
    *ret_count = count;
    return 0;
}

/* connect_until_stopped - (re)connect with capped backoff; false if asked to stop first. */
static bool connect_until_stopped(struct worker *w, struct crier_db **db, const char *name)
{
    double delay = RECONNECT_MIN_SECONDS;
    bool reported = false;
    while (!atomic_load(&w->stop)) {
        char err[512];
        int r;
        if (*db) {
            r = db_reset(*db);
            snprintf(err, sizeof(err), "%s", (*db)->error);
        } else {
            r = db_open(w->config->conninfo, "crier run", db, err, sizeof(err));
        }
        if (r == 0) {
            if (reported) {
                log_notice("%s: database connection restored", name);
                metrics_reconnect();
            }
            return true;
        }
        if (!reported)
            log_warning("%s: database unavailable, retrying: %s", name, err);
        reported = true;
        sleep_unless_stopped(w, delay);
        delay = delay * 2 > RECONNECT_MAX_SECONDS ? RECONNECT_MAX_SECONDS : delay * 2;
    }
    return false;
}

/* decide - turn n outcomes into decisions (decisions and records: n each): those of the
 * batch's notices at indexes, or its first n when indexes is NULL. The records point into
 * batch and outcomes, which are read in place, never copied. */
static void decide(struct worker *w, const char *channel, const struct crier_channel_ops *ops,
                   char *const *policy, const struct queue_batch *batch,
                   const struct crier_outcome *outcomes, const size_t *indexes, size_t n,
                   unsigned short *random_state, struct policy_decision *decisions,
                   struct transition_record *records)
{
    double now = now_seconds();
    /* what a channel with a poll op leaves in its accepted state (a fax submitted) is first
     * asked about a poll interval later, as it is after each answer that is not final: a
     * status asked the moment the gateway took the fax is always "queued", and with the
     * status webhook the poll interval is the time the webhook has before the poller asks */
    long first_poll = 0, final_timeout = 0;
    enum crier_channel_id id;
    if (ops && ops->poll && channel_id_from_name(channel, &id) == 0)
        poll_settings(w->config, id, &first_poll, &final_timeout);
    for (size_t k = 0; k < n; k++) {
        size_t i = indexes ? indexes[k] : k;
        struct transition_input in = {
            .config = w->config,
            .policy = policy,
            .notice = &batch->notices[i],
            .channel = channel,
            .channel_index = batch->channel_index[i],
            .channel_started_at = batch->channel_started_at[i],
            .accepted_state = ops ? ops->accepted_state : STATE_SENT,
            .now = now,
            .random_unit = erand48(random_state),
        };
        transition_decide(&in, &outcomes[i], &decisions[k]);
        if (ops && ops->poll && outcomes[i].kind == OUTCOME_ACCEPTED &&
            decisions[k].to_state == ops->accepted_state)
            decisions[k].delay_seconds = first_poll;
        records[k] = (struct transition_record){
            .notice = &batch->notices[i],
            .outcome = &outcomes[i],
            .decision = &decisions[k],
            .to_channel = transition_to_channel(&in, &decisions[k]),
        };
    }
}

/* A lane's own record of a big batch (a print batch of thousands of letters) goes in
 * statements of this many outcomes, all in one transaction: its decisions, array
 * parameters and libpq buffers are then bounded by a slice, not the batch, while the
 * batch still commits whole (a print batch's letters are recorded all or none: spool.c). */
#define RECORD_SLICE 250

/* record_slice - decide and record outcomes [from, from + n) of batch in one statement;
 * *late grows by the outcomes that came after their lease. */
static int record_slice(struct worker *w, struct crier_db *db, const char *actor,
                        const char *channel, const struct crier_channel_ops *ops,
                        char *const *policy, const struct queue_batch *batch,
                        const struct crier_outcome *outcomes, size_t from, size_t n,
                        unsigned short *random_state, long *late)
{
    struct queue_batch slice = {
        .notices = batch->notices + from,
        .channel_index = batch->channel_index + from,
        .channel_started_at = batch->channel_started_at + from,
        .count = n,
    };
    struct policy_decision *decisions = xcalloc(n, sizeof(*decisions));
    struct transition_record *records = xcalloc(n, sizeof(*records));
    decide(w, channel, ops, policy, &slice, outcomes + from, NULL, n, random_state, decisions,
           records);
    long slice_late = 0;
    int r = transition_record(db, channel, actor, records, n, &slice_late);
    *late += slice_late;
    free(decisions);
    free(records);
    return r;
}

/* record_batch - the whole batch: one statement when it fits a slice, else one
 * transaction of slices. */
static int record_batch(struct worker *w, struct crier_db *db, const char *actor,
                        const char *channel, const struct crier_channel_ops *ops,
                        char *const *policy, const struct queue_batch *batch,
                        const struct crier_outcome *outcomes, unsigned short *random_state,
                        long *late)
{
    size_t n = batch->count;
    if (n <= RECORD_SLICE)
        return record_slice(w, db, actor, channel, ops, policy, batch, outcomes, 0, n, random_state,
                            late);
    int r = db_begin(db);
    for (size_t from = 0; r == 0 && from < n; from += RECORD_SLICE)
        r = record_slice(w, db, actor, channel, ops, policy, batch, outcomes, from,
                         n - from < RECORD_SLICE ? n - from : RECORD_SLICE, random_state, late);
    return db_end(db, r);
}

/* decide_and_record - turn outcomes into decisions and store them, retrying the store
 * through lost connections: what was sent must be recorded. A retry decides again from
 * the same random state, so the same outcome gets the same delay. */
static int decide_and_record(struct worker *w, struct crier_db **db, const char *actor,
                             const char *channel, const struct crier_channel_ops *ops,
                             char *const *policy, const struct queue_batch *batch,
                             const struct crier_outcome *outcomes, unsigned short *random_state,
                             long *ret_late)
{
    size_t n = batch->count;
    unsigned short first_state[3];
    memcpy(first_state, random_state, sizeof(first_state));
    int r;
    for (;;) {
        long late = 0;
        memcpy(random_state, first_state, sizeof(first_state));
        r = record_batch(w, *db, actor, channel, ops, policy, batch, outcomes, random_state, &late);
        if (r == 0) {
            if (late > 0)
                log_warning("%s: %ld outcomes arrived after their lease expired; logged as "
                            "late_outcome",
                            actor, late);
            if (ret_late)
                *ret_late = late;
            break;
        }
        log_error("%s: recording %zu outcomes failed: %s", actor, n, (*db)->error);
        if (!db_lost(*db) || !connect_until_stopped(w, db, actor))
            break; /* the leases will expire and the reaper will log the retry */
    }
    return r;
}

/* ---- lanes -------------------------------------------------------------------------- */

static void lane_keepalive(void *data)
{
    struct lane *lane = data;
    long lease = lane->worker->config->queue.lease_seconds;
    double now = monotonic_seconds();
    if ((lane->sending == NULL && lane->sending_ids == NULL) ||
        now - lane->lease_extended_at < (double)lease / 3)
        return;
    /* a connection lost while the channel sent (a database restart) is made again now: the
     * lease of what is left of the batch must not lapse while this lane still sends it */
    if (db_lost(lane->db) && db_reset(lane->db) < 0)
        return;
    int r = lane->sending ? queue_extend(lane->db, lane->sending, lane->owner, lease)
                          : queue_extend_ids(lane->db, lane->sending_ids, lane->owner, lease);
    if (r == 0)
        lane->lease_extended_at = now;
}

/* record_connect - the recorder's connection, (re)made: with queue.record_commit async its
 * session commits without waiting for the WAL flush (docs/faults.md, "Commits"). A new
 * server session has no SET of the last one, so it is said after every connect; if it
 * fails, the records wait for the flush, which is only slower. */
static bool record_connect(struct worker *w)
{
    if (!connect_until_stopped(w, &w->record_db, w->id))
        return false;
    if (w->config->queue.record_commit == RECORD_COMMIT_ASYNC &&
        db_exec(w->record_db, "SET synchronous_commit = off", 0, NULL) < 0)
        log_warning("%s: the recorder commits synchronously: %s", w->id, w->record_db->error);
    return true;
}

/* What one lane has for the recorder: the decisions on the outcomes at the pushed indexes
 * of its batch, and records pointing at those notices and outcomes where they are (a
 * reported outcome is not changed again: channel_outcome_ready). */
struct lane_part {
    struct policy_decision *decisions;
    struct transition_record *records;
};

/* part_decide - decide the outcomes of the batch being sent at indexes into part. */
static void part_decide(struct lane *lane, const size_t *indexes, size_t n, struct lane_part *part)
{
    part->decisions = xcalloc(n + 1, sizeof(*part->decisions));
    part->records = xcalloc(n + 1, sizeof(*part->records));
    decide(lane->worker, lane->ops->name, lane->ops, lane->recording_policy, lane->recording,
           lane->recording_outcomes, indexes, n, lane->record_random_state, part->decisions,
           part->records);
}

static void part_free(struct lane_part *part)
{
    free(part->decisions);
    free(part->records);
}

/* record_takes - every lane's part in one statement: one round trip, one commit. */
static int record_takes(struct worker *w, struct recorder_take *takes, size_t n,
                        struct transition_lane_records *sets)
{
    struct lane_part *parts = xcalloc(n, sizeof(*parts));
    for (size_t k = 0; k < n; k++) {
        struct lane *lane = takes[k].data;
        part_decide(lane, takes[k].indexes, takes[k].n, &parts[k]);
        sets[k] = (struct transition_lane_records){lane->ops->name, lane->owner, parts[k].records,
                                                   takes[k].n, 0};
    }
    int r = transition_record_lanes(w->record_db, sets, n);
    for (size_t k = 0; k < n; k++)
        part_free(&parts[k]);
    free(parts);
    return r;
}

/* worker_record_early - the recorder thread's record_group_fn: what the lanes' channels
 * reported since the last commit, retried through a lost connection (what was sent must
 * be recorded) until the worker stops; then the leases expire and the reaper logs. */
static void worker_record_early(void *data, struct recorder_take *takes, size_t n)
{
    struct worker *w = data;
    struct transition_lane_records *sets = xcalloc(n, sizeof(*sets));
    for (;;) {
        if ((w->record_db == NULL || db_lost(w->record_db)) && !record_connect(w))
            break;
        if (record_takes(w, takes, n, sets) == 0) {
            for (size_t k = 0; k < n; k++) {
                struct lane *lane = takes[k].data;
                if (sets[k].late > 0)
                    log_warning("%s: %ld outcomes arrived after their lease expired; logged "
                                "as late_outcome",
                                lane->owner, sets[k].late);
                lane->recording_late += sets[k].late;
                for (size_t j = 0; j < takes[k].n; j++)
                    takes[k].recorded[j] = true;
            }
            break;
        }
        log_error("%s: recording the outcomes of %zu lanes failed: %s", w->id, n,
                  w->record_db->error);
        if (!db_lost(w->record_db))
            break;
    }
    free(sets);
}

/* lane_outcome_ready - the channel has a final outcome: hand it to the recorder. */
static void lane_outcome_ready(void *data, size_t index)
{
    struct lane *lane = data;
    recorder_push(lane->recorder, index);
}

/* lane_before_no_return - the channel is about to hand over one more notice (an SMTP
 * message's final dot): it goes on once at most channels.email.unrecorded (default 0;
 * only email asks) earlier outcomes are still being recorded. The commit of one message
 * thus overlaps the sending of the next up to its dot, and a kill resends per lane at most
 * those outcomes and the message just handed over, not a batch. While the database is
 * away nothing more is handed over: what cannot be recorded, and whose lease cannot be
 * extended, would be sent again by whichever worker is given it next. */
static void lane_before_no_return(void *data)
{
    struct lane *lane = data;
    recorder_wait(lane->recorder, (size_t)lane->worker->config->email.unrecorded);
}

/* lane_record_rest - after the send: the outcomes not reported early go to the recorder
 * too (one connection, so a lost database is reconnected once), and all are waited for.
 * Without a recorder thread, the whole batch is recorded here. */
static int lane_record_rest(struct lane *lane, const struct queue_batch *batch,
                            const struct crier_outcome *outcomes, long *ret_late)
{
    if (lane->recorder == NULL)
        return decide_and_record(lane->worker, &lane->db, lane->owner, lane->ops->name, lane->ops,
                                 lane->recording_policy, batch, outcomes, lane->random_state,
                                 ret_late);
    recorder_drain(lane->recorder);
    int r = 0;
    for (size_t i = 0; i < batch->count; i++)
        if (!recorder_recorded(lane->recorder, i))
            r = -EIO; /* stopped while the database was away: the leases expire */
    *ret_late = lane->recording_late;
    return r;
}

/* lane_may_hand_off - no law-enforcement hold placed since the claim covers the notice;
 * when the database cannot say, the notice is taken back (retried later), not sent. A lost
 * connection is made again first (once a second at most: the batch's lines outlive it,
 * queue.h); while it cannot be, the rest of the batch is taken back without a warning
 * each: the first failure and the failed record say it once. */
static bool lane_may_hand_off(void *data, const struct crier_notice *notice)
{
    struct lane *lane = data;
    bool held = true;
    if (db_lost(lane->db)) {
        double now = monotonic_seconds();
        if (now - lane->reset_at < RECONNECT_MIN_SECONDS)
            return false;
        lane->reset_at = now;
        if (db_reset(lane->db) < 0)
            return false;
    }
    if (hold_covers_notice(lane->db, notice, &held) < 0)
        log_warning("%s: cannot check the holds on notice %lld, taking it back: %s", lane->owner,
                    (long long)notice->id, lane->db->error);
    return !held;
}

/* lane_cursor - this lane's claim cursor in a campaign, created on first use. */
static struct queue_cursor *lane_cursor(struct lane *lane, int64_t campaign_id)
{
    for (size_t i = 0; i < lane->cursor_count; i++)
        if (lane->cursor_campaign[i] == campaign_id)
            return &lane->cursors[i];
    lane->cursors = xreallocarray(lane->cursors, lane->cursor_count + 1, sizeof(*lane->cursors));
    lane->cursor_campaign =
        xreallocarray(lane->cursor_campaign, lane->cursor_count + 1, sizeof(int64_t));
    lane->cursor_campaign[lane->cursor_count] = campaign_id;
    struct queue_cursor *cursor = &lane->cursors[lane->cursor_count++];
    memset(cursor, 0, sizeof(*cursor));
    return cursor;
}

/* lane_render - the campaign's templates, loaded on first use and kept for the lane's life.
 * It runs right after a claim: a connection lost there is made again and the load run
 * again, or the whole batch just claimed would be retried for it (CI under ASan: a lane
 * stopped between its claim and this load, its session ended meanwhile, took back all 600
 * letters of a print batch). NULL when they cannot be loaded: the channel then reports
 * each notice TEMPORARY. */
static const struct render_campaign *lane_render(struct lane *lane, int64_t campaign_id)
{
    for (size_t i = 0; i < lane->render_count; i++)
        if (lane->renders[i]->id == campaign_id)
            return lane->renders[i];
    struct render_campaign *render = NULL;
    char *diag_text = NULL;
    size_t diag_len = 0;
    int r;
    do {
        free(diag_text);
        diag_text = NULL;
        diag_len = 0;
        FILE *diag = open_memstream(&diag_text, &diag_len);
        r = render_campaign_load(lane->db, lane->worker->config, campaign_id, diag, &render);
        fclose(diag);
    } while (r < 0 && db_lost(lane->db) &&
             connect_until_stopped(lane->worker, &lane->db, lane->owner));
    if (r < 0) {
        log_error("%s: cannot load the templates of campaign %lld: %s", lane->owner,
                  (long long)campaign_id, diag_len ? diag_text : strerror(-r));
        free(diag_text);
        return NULL;
    }
    free(diag_text);
    lane->renders = xreallocarray(lane->renders, lane->render_count + 1, sizeof(*lane->renders));
    lane->renders[lane->render_count++] = render;
    return render;
}

static void lane_renders_clear(struct lane *lane)
{
    for (size_t i = 0; i < lane->render_count; i++)
        render_campaign_free(lane->renders[i]);
    free(lane->renders);
    lane->renders = NULL;
    lane->render_count = 0;
}

/* ---- a batch claimed, sent and recorded in slices (print) ----------------------------- */

/* A batch claimed in slices, on its way: its lines are the server's (queue.h); the lane
 * knows how far it got. */
struct sliced {
    struct queue_ids ids;
    size_t handed; /* letters handed to the channel, from the first in its order */
    size_t unkept; /* of those, the ones the channel said nothing of (no item to keep) */
};

/* sliced_again - a step of a batch claimed in slices failed (r < 0): true when the
 * connection did and is back, so that the step is run again on the new session, which
 * finds the batch's lines where the last one left them. */
static bool sliced_again(struct lane *lane, int r)
{
    return r < 0 && db_lost(lane->db) &&
           connect_until_stopped(lane->worker, &lane->db, lane->owner);
}

/* sliced_send_slice - the places [from, from + n) of the channel's order: their rows read,
 * handed over (*sent is the channel's answer, or the read's error: then nothing of the slice
 * went in), and what the channel says of each kept beside them. < 0: that could not be
 * kept, so the batch cannot be recorded. A lost connection is made again and the read or
 * the keep run again. */
static int sliced_send_slice(struct lane *lane, struct sliced *b,
                             const struct render_campaign *render, size_t from, size_t n, int *sent)
{
    struct queue_batch slice;
    int r;
    do
        r = queue_fetch(lane->db, &b->ids, QUEUE_BY_CHANNEL, from, n, &slice);
    while (sliced_again(lane, r));
    if (r < 0) {
        log_error("%s: reading the batch's notices failed: %s; the rest of it is retried",
                  lane->owner, lane->db->error);
        *sent = r;
        return 0;
    }
    for (size_t k = 0; render && k < n; k++)
        render_attach(&slice.notices[k], render);
    char **items = xcalloc(n, sizeof(*items));
    *sent = channel_slice_send(lane->session, slice.notices, n, items);
    queue_batch_clear(&slice);
    b->handed += n;
    for (size_t k = 0; k < n; k++)
        b->unkept += items[k] == NULL;
    do
        r = queue_keep(lane->db, &b->ids, from, n, items);
    while (sliced_again(lane, r));
    if (r < 0)
        log_error("%s: keeping what became of the batch's letters failed: %s; the batch is "
                  "retried once its leases expire",
                  lane->owner, lane->db->error);
    for (size_t k = 0; k < n; k++)
        free(items[k]);
    free(items);
    return r;
}

/* sliced_send - the batch in the channel's order, a slice of its rows read at a time and
 * handed over, then closed (flush): a slice's rows and items are all the lane holds of them.
 * A read that fails ends the batch there: what was drawn goes out, the rest is TEMPORARY.
 * < 0: what the channel said of a slice could not be kept, so the batch must not be
 * recorded (its leases expire; its files stay pending and are orphaned: docs/mail.md). */
static int sliced_send(struct lane *lane, struct sliced *b, const struct render_campaign *render,
                       double claimed_at)
{
    const struct queue_ids *ids = &b->ids;
    struct channel_batch info = {.count = ids->count,
                                 .campaign_id = ids->campaign_id,
                                 .lowest_id = ids->lowest_id,
                                 .lowest_attempt = ids->lowest_attempt,
                                 .claimed_at = claimed_at};
    int sent = channel_slice_begin(lane->session, &info);
    int r = 0;
    for (size_t from = 0; sent == 0 && r == 0 && from < ids->count; from += RECORD_SLICE)
        r = sliced_send_slice(lane, b, render, from,
                              ids->count - from < RECORD_SLICE ? ids->count - from : RECORD_SLICE,
                              &sent);
    channel_flush(lane->session);
    return r;
}

/* sliced_record_slice - outcomes of the places [from, from + n) of the claim's order: their
 * rows and what the channel kept of them read again, the channel's outcomes, decided and
 * recorded. */
static int sliced_record_slice(struct lane *lane, struct crier_db *db, const struct queue_ids *ids,
                               char *const *policy, size_t from, size_t n, long *late, long *kinds)
{
    struct worker *w = lane->worker;
    struct queue_batch slice;
    int r = queue_fetch(db, ids, QUEUE_BY_CLAIM, from, n, &slice);
    if (r == 0) {
        struct crier_outcome *outcomes = xcalloc(n, sizeof(*outcomes));
        channel_slice_outcomes(lane->session, slice.items, n, outcomes);
        r = record_slice(w, db, lane->owner, lane->ops->name, lane->ops, policy, &slice, outcomes,
                         0, n, lane->random_state, late);
        for (size_t k = 0; k < n; k++)
            kinds[(unsigned)outcomes[k].kind < METRICS_KINDS ? outcomes[k].kind
                                                             : OUTCOME_PENDING]++;
        free(outcomes);
        queue_batch_clear(&slice);
    }
    return r;
}

/* sliced_record_once - the whole batch in one transaction of slices (a print batch is
 * recorded all or none: spool.c): the batch locked and checked whole first, its lines
 * deleted last, so that they exist exactly until the batch is recorded. */
static int sliced_record_once(struct lane *lane, const struct sliced *b, char *const *policy,
                              long *late, long *kinds)
{
    struct crier_db *db = lane->db;
    size_t n = b->ids.count;
    int r = db_begin(db);
    if (r == 0)
        r = queue_ids_lock(db, &b->ids, b->handed, b->unkept);
    for (size_t from = 0; r == 0 && from < n; from += RECORD_SLICE)
        r = sliced_record_slice(lane, db, &b->ids, policy, from,
                                n - from < RECORD_SLICE ? n - from : RECORD_SLICE, late, kinds);
    if (r == 0)
        r = queue_ids_drop(db, &b->ids);
    return db_end(db, r);
}

/* sliced_record - the whole batch, recorded again from its lines after a lost connection
 * (decided again from the same random state, as decide_and_record): what was printed must
 * be recorded. Its letters whose lease the reaper took meanwhile are logged as
 * late_outcome, and the batch's files then stay pending (print_committed). */
static int sliced_record(struct lane *lane, const struct sliced *b, char *const *policy,
                         long *ret_late)
{
    unsigned short first_state[3];
    memcpy(first_state, lane->random_state, sizeof(first_state));
    long late, kinds[METRICS_KINDS];
    int r;
    do {
        memcpy(lane->random_state, first_state, sizeof(first_state));
        late = 0;
        memset(kinds, 0, sizeof(kinds));
        r = sliced_record_once(lane, b, policy, &late, kinds);
    } while (sliced_again(lane, r));
    if (r == -ENOENT) {
        log_warning("%s: batch of %zu letters not recorded: %s; its files stay pending until "
                    "crier batch list settles them",
                    lane->owner, b->ids.count, lane->db->error);
        return r;
    }
    if (r < 0) {
        log_error("%s: recording %zu outcomes failed: %s; the batch is retried once its leases "
                  "expire",
                  lane->owner, b->ids.count, lane->db->error);
        return r;
    }
    metrics_kinds(lane->channel_id, kinds, b->ids.count);
    if (late > 0)
        log_warning("%s: %ld outcomes arrived after their lease expired; logged as late_outcome",
                    lane->owner, late);
    *ret_late = late;
    return 0;
}

/* sliced_give_up - a batch that will not be recorded: its lines go now when the connection
 * allows (else the reaper's sweep takes them); its leases expire and the reaper retries
 * its letters. */
static void sliced_give_up(struct lane *lane, const struct sliced *b)
{
    if (!db_lost(lane->db) && queue_ids_drop(lane->db, &b->ids) < 0)
        log_warning("%s: the lines of batch %lld stay until the reaper's sweep: %s", lane->owner,
                    (long long)b->ids.batch_id, lane->db->error);
}

/* lane_batch_sliced - lane_batch for a channel given its batches in slices (print): the
 * claim and what the channel says of each notice are kept by the server as the batch's
 * lines (queue.h), the rows read a slice at a time to be sent and again to be recorded, so
 * that the lane's memory does not grow with the batch (docs/benchmarks.md, letters, "Fifth
 * pass"); a lost connection is made again and the batch carried on from its lines
 * ("Sixth pass"). */
static long lane_batch_sliced(struct lane *lane, const struct campaign_ref *campaign,
                              const struct channel_claim *claim)
{
    struct worker *w = lane->worker;
    const struct crier_config *config = w->config;
    struct sliced b = {0};
    /* a claim cut with its connection is not run again (whether it committed is not
     * known): if it did, its leases expire, and its lines go now */
    if (lane->claim_cut && queue_ids_drop_owner(lane->db, lane->owner) == 0)
        lane->claim_cut = false;
    double claim_started = monotonic_seconds();
    int r = queue_claim_ids(lane->db, campaign->id, lane->ops->name, claim->limit, lane->owner,
                            config->queue.lease_seconds, lane_cursor(lane, campaign->id), &b.ids);
    if (r < 0) {
        log_error("%s: claim failed: %s", lane->owner, lane->db->error);
        lane->claim_cut = db_lost(lane->db);
        return r;
    }
    if (b.ids.count == 0)
        return 0;
    do
        r = queue_order_ids(lane->db, &b.ids, lane->ops->sort_key);
    while (sliced_again(lane, r));
    if (r < 0) {
        log_error("%s: ordering the batch failed: %s; it is retried once its leases expire",
                  lane->owner, lane->db->error);
        sliced_give_up(lane, &b);
        return r;
    }
    double claimed_at = monotonic_seconds();
    const struct render_campaign *render =
        lane->ops->templates ? lane_render(lane, campaign->id) : NULL;
    rate_acquire(w, &w->bucket[lane->channel_id], (double)b.ids.count);
    lane->sending_ids = &b.ids;
    lane->lease_extended_at = monotonic_seconds();
    atomic_store(&lane->in_flight, (long)b.ids.count);
    double send_started = monotonic_seconds();
    r = sliced_send(lane, &b, render, claim_started);
    double record_started = monotonic_seconds();
    atomic_store(&lane->in_flight, 0);
    lane->sending_ids = NULL;
    long late = 0;
    if (r == 0)
        r = sliced_record(lane, &b, campaign->policy, &late);
    metrics_batch(lane->channel_id, claimed_at - claim_started, record_started - send_started,
                  monotonic_seconds() - record_started, NULL, 0);
    if (r == 0 && channel_committed(lane->session, late == 0) < 0)
        log_warning("%s: the batch just recorded is not final yet; crier batch list settles it",
                    lane->owner);
    if (r < 0) {
        sliced_give_up(lane, &b);
        return r;
    }
    atomic_fetch_add(&lane->done, (long)b.ids.count);
    atomic_store(&w->last_work, monotonic_seconds());
    return (long)b.ids.count;
}

/* lane_batch - claim, send and record one batch of one campaign; returns the count. */
static long lane_batch(struct lane *lane, const struct campaign_ref *campaign)
{
    struct worker *w = lane->worker;
    const struct crier_config *config = w->config;
    struct queue_batch batch;
    struct channel_claim claim = channel_claim_limits(lane->ops, config);
    if (claim.window_seconds > 0) {
        /* a print batch: a full one at once, or what waited the window (batch.c) */
        bool due = false;
        if (batch_window_due(lane->db, campaign->id, lane->ops->name, claim.limit,
                             claim.window_seconds, &due) < 0 ||
            !due)
            return 0;
    }
    if (lane->ops->slice_send)
        return lane_batch_sliced(lane, campaign, &claim);
    double claim_started = monotonic_seconds();
    int r = queue_claim(lane->db, campaign->id, lane->ops->name, claim.limit, lane->owner,
                        config->queue.lease_seconds, lane_cursor(lane, campaign->id), &batch);
    if (r < 0) {
        log_error("%s: claim failed: %s", lane->owner, lane->db->error);
        return r;
    }
    double claimed_at = monotonic_seconds();
    if (batch.count == 0) {
        queue_batch_clear(&batch);
        return 0;
    }
    if (lane->ops->templates) {
        const struct render_campaign *render = lane_render(lane, campaign->id);
        for (size_t i = 0; i < batch.count; i++)
            render_attach(&batch.notices[i], render);
    }
    rate_acquire(w, &w->bucket[lane->channel_id], (double)batch.count);
    struct crier_outcome *outcomes = xcalloc(batch.count, sizeof(*outcomes));
    recorder_begin(lane->recorder, batch.count);
    lane->recording = &batch;
    lane->recording_outcomes = outcomes;
    lane->recording_policy = campaign->policy;
    lane->recording_late = 0;
    lane->sending = &batch;
    lane->lease_extended_at = monotonic_seconds();
    atomic_store(&lane->in_flight, (long)batch.count);
    double send_started = monotonic_seconds();
    channel_send(lane->session, batch.notices, batch.count, outcomes);
    double record_started = monotonic_seconds();
    atomic_store(&lane->in_flight, 0);
    lane->sending = NULL;
    long late = 0;
    r = lane_record_rest(lane, &batch, outcomes, &late);
    lane->recording = NULL;
    metrics_batch(lane->channel_id, claimed_at - claim_started, record_started - send_started,
                  monotonic_seconds() - record_started, outcomes, batch.count);
    /* recorded: a print batch's files become final (a partial one is left to batch.c) */
    if (r == 0 && channel_committed(lane->session, late == 0) < 0)
        log_warning("%s: the batch just recorded is not final yet; crier batch list settles it",
                    lane->owner);
    long count = (long)batch.count;
    free(outcomes);
    queue_batch_clear(&batch);
    if (r < 0)
        return r;
    atomic_fetch_add(&lane->done, count);
    atomic_store(&w->last_work, monotonic_seconds());
    return count;
}

static void *lane_main(void *data)
{
    struct lane *lane = data;
    struct worker *w = lane->worker;
    if (!connect_until_stopped(w, &lane->db, lane->owner))
        return NULL;
    int r = channel_open(lane->ops, w->config, &lane->session);
    if (r < 0) {
        log_error("%s: cannot open the %s channel: %s", lane->owner, lane->ops->name, strerror(-r));
        return NULL;
    }
    lane->session->lease_keepalive = lane_keepalive;
    lane->session->keepalive_data = lane;
    lane->session->may_hand_off = lane_may_hand_off;
    /* only lanes whose channel reports early share the recorder thread: a 5,000-letter
     * batch's record must not hold up the recording of messages the relay just took */
    lane->recorder = lane->ops->early_outcomes ? recorder_join(w->recorders, lane) : NULL;
    /* a channel that is asked before anything is resent (fax: queue_reap) loses nothing
     * but time when a record waits, so its replies, which come one by one, may wait a
     * little to share a transaction; an email's record is committed at once */
    if (lane->ops->poll != NULL)
        recorder_linger(lane->recorder, RECORD_LINGER_MS);
    if (lane->recorder) {
        lane->session->outcome_ready = lane_outcome_ready;
        lane->session->before_no_return = lane_before_no_return;
    }

    while (!atomic_load(&w->stop)) {
        if (db_lost(lane->db) && !connect_until_stopped(w, &lane->db, lane->owner))
            break;
        double now = monotonic_seconds();
        if (now - lane->campaigns_read_at >= CAMPAIGN_REFRESH) {
            struct campaign_ref *list = NULL;
            size_t count = 0;
            if (campaigns_read(lane->db, lane->ops->name, &list, &count) == 0) {
                campaigns_clear(lane);
                lane->campaigns = list;
                lane->campaign_count = count;
                lane->campaigns_read_at = now;
            } else {
                log_error("%s: reading campaigns failed: %s", lane->owner, lane->db->error);
                sleep_unless_stopped(w, RECONNECT_MIN_SECONDS);
                continue;
            }
        }
        bool worked = false;
        for (size_t k = 0; k < lane->campaign_count && !atomic_load(&w->stop); k++) {
            /* start at a different campaign each round, so none starves the others */
            const struct campaign_ref *c =
                &lane->campaigns[(lane->round_robin + k) % lane->campaign_count];
            if (lane_batch(lane, c) > 0)
                worked = true;
        }
        lane->round_robin++;
        if (!worked) {
            channel_flush(lane->session);
            sleep_unless_stopped(w, (double)w->config->queue.idle_poll_ms / 1000.0);
        }
    }
    channel_flush(lane->session);
    return NULL;
}

/* ---- the main thread's housekeeping -------------------------------------------------- */

/* worker_register - record (or refresh) this process and its channels in crier.worker. */
static int worker_register(struct worker *w, struct crier_db *db, const char *id)
{
    struct db_array list = {0};
    for (int c = 0; c < CHANNEL_COUNT; c++) {
        /* lanes: 0 serves nothing here: its notices would wait unseen behind this row */
        if (!w->config->channel[c].enabled || w->config->channel[c].lanes == 0 ||
            channel_ops_by_id((enum crier_channel_id)c) == NULL)
            continue;
        db_array_add(&list, channel_id_name((enum crier_channel_id)c));
    }
    snprintf(w->channels, sizeof(w->channels), "%s", db_array_end(&list));
    db_array_free(&list);
    const char *params[] = {id, w->channels};
    /* and each channel served now, so that status can say since when nobody has (service.c) */
    return db_exec(db,
                   "WITH w AS (INSERT INTO crier.worker (id, channels) VALUES ($1, $2)"
                   " ON CONFLICT (id) DO UPDATE SET channels = $2, heartbeat_at = now())"
                   " INSERT INTO crier.channel_service (channel, last_served_at)"
                   " SELECT unnest($2::text[]), now() ON CONFLICT (channel)"
                   " DO UPDATE SET last_served_at = excluded.last_served_at",
                   2, params);
}

/* waiting_warn - say which notices wait for a channel no live worker serves; they are
 * never moved on by crier run (service.c). */
static void waiting_warn(struct crier_db *db)
{
    json_t *waiting = NULL;
    if (service_waiting(db, NULL, &waiting) < 0) {
        log_error("counting the notices that wait for a channel: %s", db->error);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(waiting, i, row)
    {
        const char *campaign = json_string_value(json_object_get(row, "campaign"));
        const char *channel = json_string_value(json_object_get(row, "channel"));
        log_warning("campaign %s: %lld notices wait on %s: %s; crier campaign reroute %s --from "
                    "%s --to ... moves them",
                    campaign, json_integer_value(json_object_get(row, "notices")), channel,
                    json_string_value(json_object_get(row, "reason")), campaign, channel);
    }
    metrics_waiting_set(waiting);
    json_decref(waiting);
}

/* metrics_campaigns_read - the running campaigns' counts for /metrics, with the statement
 * of `crier status` (the tallies: its cost does not grow with the campaigns' size), every
 * STATUS_SECONDS while --metrics is on. */
static void metrics_campaigns_read(struct worker *w, struct crier_db *db)
{
    json_t *statuses = NULL;
    if (w->options->running_counts == NULL)
        return;
    if (w->options->running_counts(db, &statuses) < 0) {
        log_error("counting the running campaigns' notices for /metrics: %s", db->error);
        return;
    }
    metrics_campaigns_set(statuses);
    json_decref(statuses);
}

/* work_left - notices of running campaigns in flight, or ready on a channel this process
 * serves (channels, a text[]); a ready notice that a law-enforcement hold keeps is not work
 * (hold.c), nor one waiting for a channel served elsewhere or nowhere (service.c). */
static int work_left(struct crier_db *db, const char *channels, long *ret_count)
{
    const char *params[] = {hold_release_lapsed_param(), channels};
    return db_query_long(db,
                         /* each state by its own partial index (notice_lease, notice_claim):
                          * one scan over both states had none and walked the finished notices */
                         "SELECT (EXISTS (SELECT 1 FROM crier.notice n JOIN crier.campaign c"
                         " ON c.id = n.campaign_id WHERE c.state = 'running'"
                         " AND n.state = 'sending')"
                         " OR EXISTS (SELECT 1 FROM crier.notice n JOIN crier.campaign c"
                         " ON c.id = n.campaign_id WHERE c.state = 'running' AND n.state = 'ready'"
                         " AND n.channel = ANY ($2::text[]) AND (c.holds_placed = 0"
                         " OR NOT crier.notice_held(n.campaign_id, n.recipient_seq, $1))))::int",
                         2, params, ret_count);
}

/* seal - seal the dispatch log written so far (seal.c); a wait for writers that times out
 * is tried again at the next tick. */
static void seal(struct worker *w, struct crier_db *db, enum seal_turn turn)
{
    long rows = 0, blocks = 0;
    int r = seal_run(db, turn, w->config->audit.block_rows, w->config->audit.seal_lock_timeout_ms,
                     &rows, &blocks);
    if (r == -EAGAIN)
        return;
    w->sealed_at = monotonic_seconds();
    if (r == -EBUSY)
        log_debug("another process is sealing the dispatch log: this round is its");
    else if (r < 0)
        log_error("sealing the dispatch log: %s", db->error);
    else if (blocks > 0)
        log_debug("sealed %ld log rows in %ld blocks", rows, blocks);
}

/* complete_campaigns - mark completed the running campaigns with nothing left to do. */
static int complete_campaigns(struct crier_db *db, const char *actor)
{
    long count = 0;
    int r = campaign_complete_finished(db, actor, &count);
    if (r < 0)
        log_error("completing campaigns: %s", db->error);
    else if (count > 0)
        log_notice("%ld campaign%s completed", count, count == 1 ? "" : "s");
    return r;
}

/* housekeeping - one tick: heartbeat, reaper, warnings, completion, the seal. */
static void housekeeping(struct worker *w, struct crier_db **db, const char *actor)
{
    if (db_lost(*db) && !connect_until_stopped(w, db, actor))
        return;
    long count = 0;
    if (worker_register(w, *db, w->id) < 0)
        log_error("worker heartbeat: %s", (*db)->error);
    /* The reaper's index scan passes the lease entries of every notice recorded since the
     * last vacuum whose lease time has passed: at a few thousand notices a second that is
     * hundreds of thousands of dead entries. A quarter of the lease (at most 10 s) is
     * soon enough to find an expired one, and one process in ten as costly. */
    double reap_every = (double)w->config->queue.lease_seconds / 4.0;
    if (reap_every > 10.0)
        reap_every = 10.0;
    if (monotonic_seconds() - w->reaped_at >= reap_every) {
        w->reaped_at = monotonic_seconds();
        if (queue_reap(*db, actor, &count) < 0)
            log_error("lease reaper: %s", (*db)->error);
        else if (count > 0)
            log_notice("%ld notices whose worker stopped without recording went back to ready",
                       count);
        /* the lines of batches whose lane never came back to record them (queue.h) */
        if (queue_sweep(*db, &count) < 0)
            log_error("sweeping unrecorded batches: %s", (*db)->error);
        else if (count > 0)
            log_notice("%ld unrecorded batch%s swept, kept past their leases", count,
                       count == 1 ? "" : "es");
    }
    /* after queue.route_grace, so that workers started together have registered */
    double now = monotonic_seconds();
    if (now - w->started >= (double)w->config->queue.route_grace_seconds &&
        now - w->waiting_warned_at >= WAITING_WARN_SECONDS) {
        w->waiting_warned_at = now;
        w->waiting_counted_at = now;
        waiting_warn(*db);
    } else if (w->options->metrics_address && now - w->waiting_counted_at >= STATUS_SECONDS) {
        json_t *waiting = NULL;
        w->waiting_counted_at = now;
        if (service_waiting(*db, NULL, &waiting) == 0)
            metrics_waiting_set(waiting);
        json_decref(waiting);
        metrics_campaigns_read(w, *db);
    }
    /* Counting what is left reads the whole queue: do it only when the lanes have found
     * nothing for a second (and completion every tenth tick while they are busy). */
    bool lanes_idle = monotonic_seconds() - atomic_load(&w->last_work) > 1.0;
    if (lanes_idle || w->ticks++ % 10 == 0) {
        complete_campaigns(*db, actor);
        /* status sums the tallies' deltas: keep them few (006_scale.sql) */
        if (db_exec(*db,
                    "SELECT crier.notice_tally_fold(campaign_id) FROM crier.notice_tally"
                    " GROUP BY campaign_id HAVING count(*) > 64",
                    0, NULL) < 0)
            log_error("folding the notice tallies: %s", (*db)->error);
    }
    long interval = w->config->audit.seal_interval_seconds;
    if (interval > 0 && monotonic_seconds() - w->sealed_at >= (double)interval)
        seal(w, *db, SEAL_SKIP);
}

/* nothing_left - with --until-idle: true when no running campaign has work for this
 * process. The answer is the database's, not the lanes': a claimed, sending or submitted
 * notice is in flight there, so a lane between batches cannot make it come too soon. The
 * main loop asks once the lanes have recorded nothing for IDLE_QUIET_SECONDS, and at most
 * that often, so a run ends a fraction of a second after its last record. (It used to ask
 * on the housekeeping tick after a whole second of quiet: 1-2 s at the end of every run.) */
static bool nothing_left(struct worker *w, struct crier_db *db, const char *actor)
{
    if (db_lost(db)) /* the next tick's housekeeping reconnects */
        return false;
    long left = 0;
    if (work_left(db, w->channels, &left) < 0)
        return false;
    /* faxes submitted and not yet final: their poller is still at work (poll.c) */
    if (left == 0 && poll_work_left(db, w->config, &left) < 0)
        return false;
    if (left > 0)
        return false;
    /* Nothing is left: complete the campaigns whose last outcomes were just recorded, or
     * they stay running. */
    return complete_campaigns(db, actor) == 0;
}

/* worker_in_flight - the notices the lanes have handed to channels (metrics.c). */
static long worker_in_flight(void *data)
{
    struct worker *w = data;
    long in_flight = 0;
    for (size_t i = 0; i < w->lane_count; i++)
        in_flight += atomic_load(&w->lanes[i].in_flight);
    return in_flight;
}

static long total_done(struct worker *w)
{
    long total = 0;
    for (size_t i = 0; i < w->lane_count; i++)
        total += atomic_load(&w->lanes[i].done);
    return total;
}

/* worker_start_checks - the database is there, migrated, and some channel can run. */
static int worker_start_checks(struct worker *w, struct crier_db **ret_db)
{
    char err[512];
    struct crier_db *db = NULL;
    int r = db_open(w->config->conninfo, "crier run", &db, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    unsigned version = 0;
    r = migrate_check(db, &version);
    if (r < 0) {
        if (r == -ENOENT || r == -ESTALE)
            log_error("the database schema is at version %u, this crier needs %u: run "
                      "'crier db migrate'",
                      version, migrate_latest());
        else if (r == -EPROTO)
            log_error("the database schema (version %u) is newer than this crier (%u)", version,
                      migrate_latest());
        else
            log_error("%s", db->error);
        db_close(db);
        return r;
    }
    *ret_db = db;
    return 0;
}

/* worker_init - the host name, and the signals the main thread waits for. SIGHUP (a closed
 * terminal, systemctl reload) must never kill a worker mid-batch: it is blocked from here
 * on and waited for in worker_loop, with SIGINT and SIGTERM. */
static void worker_init(struct worker *w, sigset_t *signals)
{
    atomic_init(&w->stop, false);
    atomic_init(&w->last_work, 0.0);
    if (gethostname(w->host, sizeof(w->host)) != 0)
        snprintf(w->host, sizeof(w->host), "localhost");
    w->host[sizeof(w->host) - 1] = '\0';
    sigemptyset(signals);
    sigaddset(signals, SIGINT);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, signals, NULL);
    w->main_thread = pthread_self();
    uint64_t watchdog_usec = 0;
    w->watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
}

/* channels_try_open - a channel that cannot open (a bad secret, a missing spool) is a
 * start-up error: a worker that registered it and then could not send would leave its
 * notices stuck. */
static int channels_try_open(const struct crier_config *config)
{
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        struct crier_channel *trial = NULL;
        if (!config->channel[id].enabled || config->channel[id].lanes == 0 || ops == NULL)
            continue;
        char why[512] = "";
        if (ops->check && ops->check(config, why, sizeof(why)) < 0)
            log_error("%s", why);
        int r = channel_open(ops, config, &trial);
        if (r < 0) {
            log_error("channels.%s in %s cannot be used: %s", ops->name,
                      config->path ? config->path : "the configuration", strerror(-r));
            return -EINVAL;
        }
        channel_close(trial);
    }
    return 0;
}

/* worker_recover - what is said and settled at every start: law-enforcement holds that
 * lapsed or passed their review date, and what a crash left half handed over (print
 * batches pending, batch.c). */
static void worker_recover(const struct crier_config *config, struct crier_db *db)
{
    hold_policy_set(config->holds.oral_lapse);
    long hold_alerts = 0;
    if (hold_alerts_log(db, &hold_alerts) < 0)
        log_error("reading the law-enforcement holds: %s", db->error);
    int settled = batch_reconcile(db, config, NULL, NULL);
    if (settled < 0)
        log_error("settling what the channels left at a crash failed: %s",
                  settled == -EIO ? db->error : strerror(-settled));
}

/* buckets_init - one rate bucket per enabled channel this build has; counts the lanes. */
static void buckets_init(struct worker *w)
{
    const struct crier_config *config = w->config;
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_config *cc = &config->channel[id];
        if (!cc->enabled)
            continue;
        if (channel_ops_by_id((enum crier_channel_id)id) == NULL) {
            log_warning("channels.%s is configured, but this build of crier has no %s channel "
                        "yet: its notices wait for a worker that has one",
                        channel_id_name((enum crier_channel_id)id),
                        channel_id_name((enum crier_channel_id)id));
            continue;
        }
        w->lane_count += (size_t)cc->lanes;
        struct rate_bucket *b = &w->bucket[id];
        pthread_mutex_init(&b->lock, NULL);
        b->rate = cc->rate;
        b->burst = cc->rate > cc->batch_size ? cc->rate : cc->batch_size;
        b->tokens = b->burst;
        b->refilled_at = monotonic_seconds();
    }
}

/* lanes_init - the lanes, named host:pid:channel:lane, none running yet. */
static void lanes_init(struct worker *w)
{
    const struct crier_config *config = w->config;
    w->lanes = xcalloc(w->lane_count + 1, sizeof(struct lane));
    size_t k = 0;
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (!config->channel[id].enabled || ops == NULL)
            continue;
        for (int i = 0; i < config->channel[id].lanes; i++, k++) {
            struct lane *lane = &w->lanes[k];
            lane->worker = w;
            lane->channel_id = (enum crier_channel_id)id;
            lane->ops = ops;
            atomic_init(&lane->done, 0);
            snprintf(lane->owner, sizeof(lane->owner), "%s:%d:%s:%d", w->host, (int)getpid(),
                     ops->name, i);
            unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(k * 7919);
            memcpy(lane->random_state, &seed, sizeof(unsigned short) * 2);
            lane->random_state[2] = (unsigned short)k;
            memcpy(lane->record_random_state, lane->random_state, sizeof(lane->random_state));
            lane->record_random_state[2] ^= 0x5a5a; /* its own sequence, not the lane's */
        }
    }
}

/* worker_first_register - the first row in crier.worker; -EACCES when this role cannot
 * run campaigns (it lacks crier_operator): a worker that went on would log one refusal per
 * tick and, with --until-idle, exit 0. Another failure is only warned about. */
static int worker_first_register(struct worker *w, struct crier_db *db)
{
    if (worker_register(w, db, w->id) == 0)
        return 0;
    if (!db_lost(db) && db_error_code(db->sqlstate) == -EACCES) {
        log_error("the database refused this role the work of crier run (it needs the role "
                  "crier_operator): %s",
                  db->error);
        return -EACCES;
    }
    log_warning("cannot register in crier.worker: %s", db->error);
    return 0;
}

/* unserved_warn - a running campaign's channel this process does not serve: its notices
 * wait (service.c). */
static void unserved_warn(const struct crier_config *config, struct crier_db *db)
{
    const char *served[CHANNEL_COUNT + 1] = {0};
    for (int id = 0, n = 0; id < CHANNEL_COUNT; id++)
        if (config->channel[id].enabled && config->channel[id].lanes > 0 &&
            channel_ops_by_id((enum crier_channel_id)id))
            served[n++] = channel_id_name((enum crier_channel_id)id);
    long unserved = 0;
    if (service_warn_unserved(db, served, &unserved) < 0)
        log_error("reading the running campaigns' policies: %s", db->error);
}

/* lanes_start - a lane that cannot start stops the others. */
static void lanes_start(struct worker *w)
{
    for (size_t i = 0; i < w->lane_count; i++) {
        int r = pthread_create(&w->lanes[i].thread, NULL, lane_main, &w->lanes[i]);
        if (r != 0) {
            log_error("cannot start lane %s: %s", w->lanes[i].owner, strerror(r));
            atomic_store(&w->stop, true);
            break;
        }
        w->lanes[i].started = true;
    }
}

/* The main thread's loop, and what it hands back when the lanes stop. */
struct main_loop {
    double started, last_tick, last_report, last_status, idle_asked;
    long last_done, status_done;
    int stop_signals;
    bool reload;
};

/* loop_signal - a signal the main thread waited for; true when the loop ends. On SIGHUP
 * the new configuration is read now: a bad one keeps this one running. */
static bool loop_signal(struct worker *w, struct main_loop *m, int sig)
{
    const struct worker_options *options = w->options;
    if (sig == SIGHUP) {
        if (options->reload == NULL || options->reload(options->reload_data) < 0) {
            log_error("SIGHUP: the configuration was not reloaded; running on with the "
                      "one loaded at start");
            return false;
        }
        sd_notify(0, "RELOADING=1\nSTATUS=reloading: finishing in-flight batches");
        log_notice("SIGHUP: configuration reloaded; finishing in-flight batches, then "
                   "restarting the lanes with it");
        m->reload = true;
        atomic_store(&w->stop, true);
        return true;
    }
    if (sig == SIGINT || sig == SIGTERM) {
        sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing in-flight batches");
        m->stop_signals++;
        log_notice("%s received: finishing in-flight batches, then exiting",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
        atomic_store(&w->stop, true);
        return true;
    }
    return false;
}

/* loop_tick - systemd's watchdog and STATUS=, housekeeping once a tick, and the rate in
 * the log every ten seconds. */
static void loop_tick(struct worker *w, struct main_loop *m, struct crier_db **db,
                      const char *actor)
{
    double now = monotonic_seconds();
    if (w->watchdog)
        sd_notify(0, "WATCHDOG=1");
    if (now - m->last_status >= STATUS_SECONDS) {
        long done = total_done(w), in_flight = worker_in_flight(w);
        sd_notifyf(0, "STATUS=%.0f notices/s, %ld in flight, %ld recorded since start",
                   (double)(done - m->status_done) / (now - m->last_status), in_flight, done);
        m->status_done = done;
        m->last_status = now;
    }
    if (now - m->last_tick >= TICK_SECONDS) {
        m->last_tick = now;
        housekeeping(w, db, actor);
    }
    if (w->options->until_idle && now - m->idle_asked >= IDLE_QUIET_SECONDS &&
        now - atomic_load(&w->last_work) >= IDLE_QUIET_SECONDS) {
        m->idle_asked = now;
        if (nothing_left(w, *db, actor)) {
            log_info("idle: no running campaign has notices ready on a channel this "
                     "process serves, or in flight");
            waiting_warn(*db); /* what is left waits for a channel served elsewhere */
            atomic_store(&w->stop, true);
        }
    }
    if (now - m->last_report >= 10.0) {
        long done = total_done(w);
        log_info("%ld notices recorded (%.0f/s over the last %.0f s)", done,
                 (double)(done - m->last_done) / (now - m->last_report), now - m->last_report);
        m->last_done = done;
        m->last_report = now;
    }
}

/* worker_loop - wait for signals and tick until the lanes are told to stop. */
static void worker_loop(struct worker *w, struct main_loop *m, const sigset_t *signals,
                        struct crier_db **db, const char *actor)
{
    m->started = m->last_report = m->last_status = monotonic_seconds();
    loop_tick(w, m, db, actor); /* so a run with nothing to do ends now, not after a wait */
    while (!atomic_load(&w->stop)) {
        struct timespec timeout = {0, 200 * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(signals, &info, &timeout);
        if (loop_signal(w, m, sig))
            break;
        if (sig == SIGHUP)
            continue;
        loop_tick(w, m, db, actor);
    }
}

/* lanes_join - wait for every started lane and free what it held. */
static void lanes_join(struct worker *w)
{
    for (size_t i = 0; i < w->lane_count; i++) {
        struct lane *lane = &w->lanes[i];
        if (!lane->started)
            continue;
        pthread_join(lane->thread, NULL);
        channel_close(lane->session);
        campaigns_clear(lane);
        lane_renders_clear(lane);
        free(lane->cursors);
        free(lane->cursor_campaign);
        db_close(lane->db);
    }
}

/* worker_finish - after the lanes stopped: complete what just finished (until idle, not
 * stopped by a signal), seal what this run wrote, leave crier.worker, free the rest. */
static void worker_finish(struct worker *w, struct main_loop *m, struct crier_db **db,
                          const char *actor)
{
    if (w->options->until_idle && m->stop_signals == 0 && !m->reload)
        housekeeping(w, db, actor);
    /* what this run wrote is sealed before it says it stopped: its turn is waited for */
    if (w->config->audit.seal_interval_seconds > 0 && !db_lost(*db))
        seal(w, *db, SEAL_WAIT);
    const char *unregister[] = {w->id};
    db_exec(*db, "DELETE FROM crier.worker WHERE id = $1", 1, unregister);
    double elapsed = monotonic_seconds() - m->started;
    long done = total_done(w);
    log_info("stopped: %ld notices recorded in %.1f s (%.0f/s)", done, elapsed,
             elapsed > 0 ? (double)done / elapsed : 0.0);
    for (int id = 0; id < CHANNEL_COUNT; id++)
        if (w->bucket[id].refilled_at > 0)
            pthread_mutex_destroy(&w->bucket[id].lock);
}

/* worker_metrics_start - --metrics: listening is part of starting; the lanes exist, none
 * runs yet. */
static int worker_metrics_start(struct worker *w)
{
    if (!w->options->metrics_address)
        return 0;
    char err[256];
    metrics_in_flight_source(worker_in_flight, w);
    if (metrics_start(w->options->metrics_address, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -EINVAL;
    }
    log_info("metrics on http://%s/metrics", w->options->metrics_address);
    return 0;
}

/* worker_prepare - everything before the lanes start; on failure nothing is left open but
 * db, which the caller closes. */
static int worker_prepare(struct worker *w, struct crier_db *db)
{
    const struct crier_config *config = w->config;
    if (channels_try_open(config) < 0)
        return -EINVAL;
    worker_recover(config, db);
    buckets_init(w);
    if (w->lane_count == 0) {
        log_error("no channel can run: enable one under 'channels:' in %s",
                  config->path ? config->path : "the configuration");
        return -EINVAL;
    }
    /* a relay that hangs up mid-write must not kill the worker: the write fails instead */
    signal(SIGPIPE, SIG_IGN);
    lanes_init(w);
    if (worker_metrics_start(w) < 0)
        return -EINVAL;
    snprintf(w->id, sizeof(w->id), "%s:%d", w->host, (int)getpid());
    w->started = monotonic_seconds();
    if (worker_first_register(w, db) < 0) {
        metrics_stop();
        return -EACCES;
    }
    return 0;
}

int worker_run(const struct crier_config *config, const struct worker_options *options)
{
    struct worker w = {.config = config, .options = options, .channels = "{}"};
    sigset_t signals;
    worker_init(&w, &signals);
    /* where an oral hold lapses: every session of this run, lanes included, says it */
    db_oral_lapse_set(config->report.oral_lapse_everywhere != 0);
    struct crier_db *db = NULL;
    int r = worker_start_checks(&w, &db);
    if (r < 0)
        return r;
    r = worker_prepare(&w, db);
    if (r < 0) {
        free(w.lanes);
        db_close(db);
        return r;
    }
    char actor[128];
    snprintf(actor, sizeof(actor), "%s:%d:main", w.host, (int)getpid());
    log_info("crier %s starting: %zu lanes%s", CRIER_VERSION, w.lane_count,
             options->until_idle ? ", until idle" : "");
    unserved_warn(config, db);
    /* the recorder's connection now: a stop must not find it still to be made */
    if (!record_connect(&w) || recorder_group_start(worker_record_early, &w, &w.recorders) < 0)
        log_warning("no recorder thread: outcomes are recorded when each batch ends");
    lanes_start(&w);
    /* final status of what channels left waiting (faxes submitted): poll.c */
    struct crier_pollers *pollers = NULL;
    if (pollers_start(config, &w.stop, w.host, &pollers) < 0)
        atomic_store(&w.stop, true);
    sd_notifyf(0, "READY=1\nSTATUS=%zu lanes up, nothing recorded yet", w.lane_count);
    struct main_loop m = {0};
    worker_loop(&w, &m, &signals, &db, actor);
    lanes_join(&w);
    w.recorders = recorder_group_free(w.recorders); /* every lane has drained */
    db_close(w.record_db);
    pollers = pollers_stop(pollers);
    metrics_stop();
    worker_finish(&w, &m, &db, actor);
    free(w.lanes);
    db_close(db);
    return m.reload ? WORKER_RELOAD : 0;
}
