/*
 * policy.h - the notice state machine: what a channel's outcome does to a notice.
 *
 * Pure functions, no I/O: the queue stores what these decide. The rule they enforce is
 * the notification policy: each notice starts on the first usable channel of its
 * campaign's policy, retries temporary failures on that channel with backoff, falls back
 * to the next usable channel on a permanent failure, and becomes undeliverable, with
 * every channel's reason, when none is left. Nothing is dropped silently.
 */
#ifndef CRIER_POLICY_H
#define CRIER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "crier/channel.h"

#define POLICY_CHANNEL_MAX 8 /* channels in one campaign's policy */
#define POLICY_REASON_MAX  1024

struct policy_limits {
    long backoff_min_seconds;
    long backoff_max_seconds;
    double backoff_jitter;
    long give_up_after_seconds;
};

/*
 * usable - may this notice go to channel number index of the policy? When not, *ret_why
 * says why in a few words ("not enabled", "no fax number").
 */
typedef bool (*policy_usable_fn)(size_t index, void *data, const char **ret_why);

struct policy_input {
    const char *const *channels; /* the campaign's policy, in order */
    size_t channel_count;
    size_t channel_index;      /* the channel just tried */
    int channel_attempt;       /* attempts on that channel, the one just made included */
    double channel_started_at; /* epoch seconds of the first attempt on that channel */
    double now;                /* epoch seconds */
    double random_unit;        /* [0,1), for jitter */
    const struct policy_limits *limits;
    enum crier_notice_state accepted_state; /* the tried channel's, for ACCEPTED */
    policy_usable_fn usable;
    void *usable_data;
};

struct policy_decision {
    enum crier_notice_state to_state;
    size_t to_channel_index;        /* channel the notice is on afterwards */
    bool channel_changed;           /* fell back to another channel */
    long delay_seconds;             /* STATE_READY: wait this long before the next claim */
    char reason[POLICY_REASON_MAX]; /* why it fell back or gave up ("" when it did not) */
};

/* policy_decide - the decision for one outcome. */
int policy_decide(const struct policy_input *in, const struct crier_outcome *outcome,
                  struct policy_decision *ret_decision);

/*
 * policy_first_channel - where a new notice starts: the first usable channel at or after
 * start. Returns the index, or -ENOENT when none is usable; reasons for the channels
 * skipped are appended to reason ("; "-separated).
 */
int policy_first_channel(const char *const *channels, size_t channel_count, size_t start,
                         policy_usable_fn usable, void *usable_data, char *reason,
                         size_t reason_size);

/* policy_parse - "email,fax,mail" into names (pointers into a copy owned by *ret_names,
 * free with strv_free); rejects unknown or repeated names with a message in err. */
int policy_parse(const char *text, char ***ret_names, char *err, size_t err_size);

#endif
