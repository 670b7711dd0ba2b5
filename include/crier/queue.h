/*
 * queue.h - the notice queue in PostgreSQL: claim, record, extend, reap.
 *
 * This is where a notice is claimed (ready -> sending, under a lease), its lease extended,
 * and an expired lease reaped. What its outcome decides is recorded by transition.c. Each
 * call is one statement, so each state change and its dispatch-log rows commit together.
 */
#ifndef CRIER_QUEUE_H
#define CRIER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crier/channel.h"
#include "crier/db.h"

/* A claimed batch: the notices handed to a channel, and the result they point into. */
struct queue_batch {
    PGresult *result;             /* owns every string in notices[] */
    struct crier_notice *notices; /* count entries */
    size_t *channel_index;        /* each notice's position in the campaign policy */
    double *channel_started_at;   /* epoch seconds of the first claim on this channel */
    const char **items; /* queue_fetch in the claim's order: what the channel kept of each */
    size_t count;
};

/*
 * Where a lane's last claim in a campaign ended, in the claim index's order
 * (next_attempt_at, id). Claimed notices leave dead entries at the front of the index
 * until VACUUM; a claim that started from the front every time would step over all of
 * them, and a million-notice campaign would slow down quadratically (measured: 167 ms per
 * claim after 100,000 notices). Everything that becomes ready later (retries, expired
 * leases, new loads) gets next_attempt_at >= now(), i.e. behind the cursor's position.
 */
struct queue_cursor {
    char after_at[48]; /* timestamptz text; "" = from the front */
    int64_t after_id;
};

/*
 * queue_claim - claim up to limit due, ready notices of one running campaign on one
 * channel (FOR UPDATE SKIP LOCKED), leased to owner for lease_seconds, starting after
 * *cursor when given (and moving it). When nothing is found after the cursor, the claim is
 * retried once from the front. A campaign that is not running yields nothing.
 * *ret_batch is filled even when empty.
 */
int queue_claim(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                const char *owner, long lease_seconds, struct queue_cursor *cursor,
                struct queue_batch *ret_batch);
void queue_batch_clear(struct queue_batch *batch);

/*
 * A batch claimed in slices (a print batch of tens of thousands of letters). The client
 * keeps nothing per notice: the claim writes each claimed notice's numbers (its place in
 * the claim's order, id, attempt, channel numbers, the contacts' version, whether a hold
 * delayed it) and its address columns as the batch's lines (crier.lane_batch_line,
 * 023_lane_batch.sql), the channel's sort key is computed a slice at a time and stored
 * there, the places in the channel's order numbered by the server, and the rows read back
 * a slice at a time (queue_fetch), with what the channel kept of each (queue_keep). The
 * lines are the server's, not the session's: a lane whose connection was lost finds them
 * again once it reconnects, and records the batch. They go with its record (queue_ids_drop
 * in the record's transaction), or QUEUE_BATCH_KEEP after the leases when the lane never
 * comes back (queue_sweep, the reaper's).
 */
#define QUEUE_SORT_KEY CHANNEL_SORT_KEY /* bytes of a channel's sort key (memcmp) */

/* How long a batch's lines outlive its leases: twice the lanes' longest wait between two
 * reconnection attempts (worker.c), so that a lane back within that after an outage that
 * outlasted its leases still finds its batch and records it (its letters then as
 * late_outcome when the reaper got to them first). An interval's text, for the SQL. */
#define QUEUE_BATCH_KEEP "60 seconds"

struct queue_ids {
    int64_t batch_id; /* crier.lane_batch */
    int64_t campaign_id;
    int64_t lowest_id; /* the batch's lowest notice and its attempt (a print batch's name) */
    int lowest_attempt;
    size_t count;
};

/* The two orders of a batch claimed in slices. */
enum queue_order {
    QUEUE_BY_CLAIM,   /* the claim's (next_attempt_at, id): the record's */
    QUEUE_BY_CHANNEL, /* the channel's sort key, ties in the claim's order: the send's */
};

/*
 * queue_claim_ids - queue_claim for a batch handed over in slices: the same statement
 * (leases, log rows, holds, cursor), its rows kept as a new batch's lines, in the claim's
 * order. queue_order_ids then orders them.
 */
int queue_claim_ids(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                    const char *owner, long lease_seconds, struct queue_cursor *cursor,
                    struct queue_ids *ret_batch);

/*
 * queue_order_ids - the batch's places in the channel's order: by sort_key, computed from
 * each notice's partial row (id, mailable, address[0] and [2], the postal code in
 * address[4], country; nothing else is set) into QUEUE_SORT_KEY bytes (zeroed before),
 * ties in the claim's order; NULL: the claim's order. Can be run again (after a lost
 * connection). -ENOENT: the batch's lines are gone.
 */
int queue_order_ids(struct crier_db *db, const struct queue_ids *batch,
                    void (*sort_key)(const struct crier_notice *partial, unsigned char *key));

/*
 * queue_fetch - the notices at places [from, from + n) of batch in order, as queue_claim
 * would have handed them over: the attempt, channel numbers and delay as claimed, the
 * contacts of the version claimed; in the claim's order also ret_slice->items, what
 * queue_keep kept of each (NULL: nothing). queue_batch_clear frees it. -ENOENT: the
 * batch's lines are gone (swept, or recorded).
 */
int queue_fetch(struct crier_db *db, const struct queue_ids *batch, enum queue_order order,
                size_t from, size_t n, struct queue_batch *ret_slice);

/* queue_keep - items[0..n) (NULL ones skipped), what the channel says of the notices at
 * places [from, from + n) of the channel's order, kept beside them for the record. */
int queue_keep(struct crier_db *db, const struct queue_ids *batch, size_t from, size_t n,
               char *const *items);

/*
 * queue_ids_lock - in the record's transaction, before it reads the lines: the batch is
 * locked against the reaper's sweep, and its lines checked whole: of the first handed
 * places in the channel's order, exactly unkept have no item (what the lane stored none
 * for). -ENOENT: the batch is gone (swept, or recorded by a commit whose answer was
 * lost); -EIO: items are missing (a database that lost writes: a failover to a standby
 * that was behind), so the batch must not be recorded.
 */
int queue_ids_lock(struct crier_db *db, const struct queue_ids *batch, size_t handed,
                   size_t unkept);

/* queue_ids_drop - the batch and its lines deleted: in its record's transaction, or when
 * its lane gives it up. */
int queue_ids_drop(struct crier_db *db, const struct queue_ids *batch);

/* queue_ids_drop_owner - every batch of owner (a lane that holds none: what a claim cut
 * with its connection may have left) and its lines deleted. */
int queue_ids_drop_owner(struct crier_db *db, const char *owner);

/* queue_sweep - the reaper's: batches kept past their kept_until, and their lines,
 * deleted; *ret_count says how many batches. */
int queue_sweep(struct crier_db *db, long *ret_count);

/* queue_extend_ids - queue_extend for a batch claimed in slices. */
int queue_extend_ids(struct crier_db *db, const struct queue_ids *batch, const char *owner,
                     long lease_seconds);

/* queue_extend - push the lease of owner's notices in the batch forward. */
int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds);

/* queue_reap - expired leases go back to ready, each logged; *ret_count says how many. */
int queue_reap(struct crier_db *db, const char *actor, long *ret_count);

#endif
