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
 * A batch claimed by ids (a print batch of thousands of letters): what it keeps of each
 * notice is a slot, about 40 bytes; the recipients' rows are read again a slice at a time
 * (queue_fetch), so that what the batch holds does not grow with the people in it.
 */
#define QUEUE_SORT_KEY CHANNEL_SORT_KEY /* bytes of a channel's sort key (memcmp) */

struct queue_slot {
    int64_t id;
    double channel_started_at; /* epoch seconds of the first claim on this channel */
    int attempt, channel_attempt;
    int version; /* the recipient's contacts as claimed (crier.recipient_now.version) */
    unsigned short channel_index;
    bool delayed; /* a law-enforcement hold delayed it (its claim's log row says which) */
};

struct queue_ids {
    int64_t campaign_id;
    struct queue_slot *slots; /* count, in the claim's order (next_attempt_at, id) */
    uint32_t *order;          /* indexes of slots in the channel's order (its sort key) */
    size_t count;
};

/*
 * queue_claim_ids - queue_claim for a batch handed over in slices: the same statement
 * (leases, log rows, holds, cursor) returning per notice only its slot and, given sort_key,
 * the order it computes from each notice's partial row (id, mailable, address[0] and [2],
 * the postal code in address[4], country; nothing else is set) into QUEUE_SORT_KEY bytes
 * (zeroed before). The rows arrive one at a time: nothing the size of the batch is held
 * but the slots.
 */
int queue_claim_ids(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                    const char *owner, long lease_seconds, struct queue_cursor *cursor,
                    void (*sort_key)(const struct crier_notice *partial, unsigned char *key),
                    struct queue_ids *ret_batch);
void queue_ids_clear(struct queue_ids *batch);

/*
 * queue_fetch - the notices of slots[0..n) of batch (indexes into batch->slots), in that
 * order, as queue_claim would have handed them over: the attempt, channel numbers and
 * delay as claimed, the contacts of the version claimed. queue_batch_clear frees it.
 */
int queue_fetch(struct crier_db *db, const struct queue_ids *batch, const uint32_t *slots, size_t n,
                struct queue_batch *ret_slice);

/* queue_extend_ids - queue_extend for a batch claimed by ids. */
int queue_extend_ids(struct crier_db *db, const struct queue_ids *batch, const char *owner,
                     long lease_seconds);

/* queue_extend - push the lease of owner's notices in the batch forward. */
int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds);

/* queue_reap - expired leases go back to ready, each logged; *ret_count says how many. */
int queue_reap(struct crier_db *db, const char *actor, long *ret_count);

#endif
