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
 * delayed it) and its address columns into the session's temporary table
 * pg_temp.crier_batch, the channel's sort key is computed a slice at a time and stored
 * there, the places in the channel's order numbered by the server, and the rows read back
 * a slice at a time (queue_fetch), with what the channel kept of each (queue_keep). The
 * table is the connection's: a connection lost with a batch in it loses the batch's
 * record, and its leases expire as after a crash (docs/mail.md).
 */
#define QUEUE_SORT_KEY CHANNEL_SORT_KEY /* bytes of a channel's sort key (memcmp) */

struct queue_ids {
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
 * (leases, log rows, holds, cursor), its rows kept in pg_temp.crier_batch (emptied first),
 * then ordered by sort_key, computed from each notice's partial row (id, mailable,
 * address[0] and [2], the postal code in address[4], country; nothing else is set) into
 * QUEUE_SORT_KEY bytes (zeroed before); NULL: the claim's order.
 */
int queue_claim_ids(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                    const char *owner, long lease_seconds, struct queue_cursor *cursor,
                    void (*sort_key)(const struct crier_notice *partial, unsigned char *key),
                    struct queue_ids *ret_batch);

/*
 * queue_fetch - the notices at places [from, from + n) of batch in order, as queue_claim
 * would have handed them over: the attempt, channel numbers and delay as claimed, the
 * contacts of the version claimed; in the claim's order also ret_slice->items, what
 * queue_keep kept of each (NULL: nothing). queue_batch_clear frees it.
 */
int queue_fetch(struct crier_db *db, const struct queue_ids *batch, enum queue_order order,
                size_t from, size_t n, struct queue_batch *ret_slice);

/* queue_keep - items[0..n) (NULL ones skipped), what the channel says of the notices at
 * places [from, from + n) of the channel's order, kept beside them for the record. */
int queue_keep(struct crier_db *db, size_t from, size_t n, char *const *items);

/* queue_extend_ids - queue_extend for a batch claimed in slices. */
int queue_extend_ids(struct crier_db *db, const struct queue_ids *batch, const char *owner,
                     long lease_seconds);

/* queue_extend - push the lease of owner's notices in the batch forward. */
int queue_extend(struct crier_db *db, const struct queue_batch *batch, const char *owner,
                 long lease_seconds);

/* queue_reap - expired leases go back to ready, each logged; *ret_count says how many. */
int queue_reap(struct crier_db *db, const char *actor, long *ret_count);

#endif
