/*
 * transition.h - the one place where what a transport said becomes a notice's next state,
 * and where that state is stored with its dispatch-log row.
 *
 * Every path that ends an attempt comes through here: the lanes' send outcomes
 * (worker.c), the fax poller's final statuses (poll.c), bounces (bounce.c) and returned
 * mail (returns.c). transition_decide asks policy_decide with the configured limits and
 * turns a notice whose channel no longer fits its campaign's policy into undeliverable,
 * for a person to look at. The record functions each store one path's decisions and log
 * rows in one statement, so a state change and its row commit together.
 *
 * Each path keeps its own statement: they guard different states (sending under a lease,
 * submitted, sent) and the claim path's was tuned for a million-notice queue (see the
 * comments in transition.c and docs/benchmarks.md, "Plans"). Claims and lease expiry are
 * the queue's (queue.c): they move notices into and out of sending, and decide nothing.
 */
#ifndef CRIER_TRANSITION_H
#define CRIER_TRANSITION_H

#include <stdbool.h>
#include <stddef.h>

#include "crier/config.h"
#include "crier/db.h"
#include "crier/notice.h"
#include "crier/policy.h"

/* What is known about one notice when its outcome arrives. */
struct transition_input {
    const struct crier_config *config; /* the queue's backoff and give-up limits */
    char *const *policy;               /* the campaign's channels, NULL-terminated */
    const struct crier_notice *notice;
    const char *channel;                    /* the channel the outcome came from */
    size_t channel_index;                   /* its position in the policy, as the notice row says */
    double channel_started_at;              /* epoch seconds of the first attempt on that channel */
    enum crier_notice_state accepted_state; /* where ACCEPTED leads on that channel */
    double now;                             /* epoch seconds */
    double random_unit;                     /* [0,1), for the backoff's jitter */
};

/* transition_decide - the decision for one outcome; never fails (see above). */
void transition_decide(const struct transition_input *in, const struct crier_outcome *outcome,
                       struct policy_decision *ret_decision);

/* transition_to_channel - the name of the channel a decision leaves the notice on. */
const char *transition_to_channel(const struct transition_input *in,
                                  const struct policy_decision *decision);

/* ---- from sending: a lane's outcomes -------------------------------------------------- */

struct transition_record {
    const struct crier_notice *notice;
    const struct crier_outcome *outcome;
    const struct policy_decision *decision;
    const char *to_channel; /* name of decision->to_channel_index */
};

/*
 * transition_record - store n decisions (all of one campaign, as a claimed batch is) and
 * their dispatch-log rows, in one statement. Notices whose lease this owner no longer
 * holds are not changed; their outcome is still logged (event late_outcome), since
 * something may have been sent. *ret_late counts them.
 */
int transition_record(struct crier_db *db, const char *channel, const char *owner,
                      const struct transition_record *records, size_t n, long *ret_late);

/* One lane's part of a transition_record_lanes call; late is set (as *ret_late above). */
struct transition_lane_records {
    const char *channel;
    const char *owner;
    const struct transition_record *records;
    size_t n;
    long late;
};

/*
 * transition_record_lanes - transition_record for several lanes (each its own owner, its
 * own campaign) in one statement, so one round trip and one commit: what the recorder
 * thread stores as replies arrive (recorder.c). The campaign rows are locked only for
 * notices that would be ready again.
 */
int transition_record_lanes(struct crier_db *db, struct transition_lane_records *lanes, size_t n);

/* ---- from submitted: the poller's answers --------------------------------------------- */

#define TRANSITION_NEVER (-1) /* delay: next_attempt_at = infinity, a person must look */

/* What one status answer decides for a submitted notice. */
struct transition_polled {
    const struct crier_notice *notice;
    const char *to_state;
    const char *to_channel;
    size_t to_channel_index;
    long delay; /* seconds; TRANSITION_NEVER = not by itself */
    const char *detail;
    const char *reason;
    bool changed;
    const char *transport_id;
    bool logged; /* false: still pending, nothing to log (a row per poll would bury the
                    record) */
};

/* transition_record_polled - store n answers of one channel's poll round; a notice that
 * would be ready again in a cancelled campaign is cancelled instead. */
int transition_record_polled(struct crier_db *db, const char *channel, const char *owner,
                             const struct transition_polled *polled, size_t n);

/* ---- from sent: a bounce -------------------------------------------------------------- */

struct transition_bounce {
    const struct crier_notice *notice;
    const char *channel;    /* the channel that sent it (email) */
    const char *to_state;   /* NULL: a delay, only logged */
    const char *to_channel; /* with to_channel_index and changed, from the decision */
    size_t to_channel_index;
    bool changed;
    const char *reason; /* NULL for none */
    const char *detail;
    const char *dedupe_key;  /* the DSN's: ingesting it again changes nothing */
    bool campaign_completed; /* a notice made ready again reopens the campaign */
};

/* transition_record_bounce - store one bounce's state change (for a notice still sent on
 * b->channel) and its 'bounce' log row, and reopen a completed campaign it gives work
 * again (logged too). *ret_logged false: the notice had moved on.
 * -EEXIST: the dedupe key was logged already (a concurrent ingest of the same DSN). */
int transition_record_bounce(struct crier_db *db, const char *actor,
                             const struct transition_bounce *b, bool *ret_logged);

/* ---- mailed: returned mail ------------------------------------------------------------ */

enum transition_return_result {
    RETURN_RECORDED,
    RETURN_ALREADY,    /* this notice's return was logged before */
    RETURN_UNKNOWN,    /* no such recipient in that campaign */
    RETURN_NOT_MAILED, /* the notice is not in state mailed */
};

/* transition_record_return - log a letter that came back (the notice stays mailed: the
 * return is a fact for the report, not a new attempt), once per mailing: a second return of
 * the same attempt, or one from the same file (file_sha256, may be NULL), is RETURN_ALREADY. */
int transition_record_return(struct crier_db *db, const char *campaign, const char *ref,
                             const char *reason, const char *returned_on, const char *where,
                             const char *file_sha256, const char *actor,
                             enum transition_return_result *ret_result);

#endif
