/*
 * queue.h - the notice queue in PostgreSQL: claim, record, extend, reap.
 *
 * This is where a notice is claimed (ready -> sending, under a lease), its lease extended,
 * and an expired lease reaped. What its outcome decides is recorded by transition.c. Each
 * call is one statement, so each state change and its dispatch-log rows commit together.
 */
#ifndef CRIER_QUEUE_H
#define CRIER_QUEUE_H

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

/* queue_extend - push the lease of owner's notices in the batch forward. */
int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds);

/* queue_reap - expired leases go back to ready, each logged; *ret_count says how many. */
int queue_reap(struct crier_db *db, const char *actor, long *ret_count);

#endif
