/*
 * channel.h - the one interface every transport sits behind (curl's protocol handler
 * tables are the model).
 *
 * A channel knows nothing of SQL: it is handed claimed notices and fills one outcome per
 * notice. The engine knows nothing of SMTP, HTTP or PDF: it calls the ops only through
 * the channel_*() wrappers in channels/channel.c, which is where timing and tracing live.
 */
#ifndef CRIER_CHANNEL_H
#define CRIER_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crier/config.h"

/* What a transport said about one notice. Two kinds of failure, never a third. */
enum crier_outcome_kind {
    OUTCOME_DELIVERED,  /* final delivery confirmed */
    OUTCOME_ACCEPTED,   /* handed over; the channel's accepted_state (sent, submitted, batched) */
    OUTCOME_TEMPORARY,  /* try again later on the same channel (crash, timeout, 4xx) */
    OUTCOME_PERMANENT,  /* this channel will never work for this person: fall back */
    OUTCOME_NO_ADDRESS, /* no usable address for this channel: fall back */
    OUTCOME_PENDING,    /* poll only: no final status yet, the notice stays as it is */
};

#define OUTCOME_DETAIL_MAX 512

struct crier_outcome {
    enum crier_outcome_kind kind;
    char detail[OUTCOME_DETAIL_MAX]; /* the transport's own words: SMTP reply, HTTP status */
    char content_sha256[65];         /* hex SHA-256 of exactly what was sent, or "" */
    long retry_after_seconds;        /* TEMPORARY only: the peer's own delay, 0 = backoff;
                                        PENDING: when to ask again, 0 = the poll interval,
                                        -1 = never by itself (a person must look) */
    char transport_id[128];          /* ACCEPTED: the transport's id for what was handed
                                        over (a fax id), "" when it is not known */
    int64_t content_at;              /* Unix time the content was rendered at (its Date
                                        header, its printed date), 0 when none: recorded
                                        so that `crier audit show` can render it again */
};

/* One claimed notice, with its recipient's snapshot. Strings are NULL when absent. */
struct crier_notice {
    int64_t id;
    int64_t campaign_id;
    const char *campaign_name;
    const char *ref;   /* the recipient's ref in the list */
    const char *token; /* unguessable per-notice token (VERP, fax labels) */
    const char *name;
    const char *email;
    const char *fax;
    const char *address[5]; /* address1, address2, city, region, postal_code */
    const char *country;
    bool mailable;                        /* the postal address passed validation */
    const char *vars_json;                /* the list's other columns as a JSON object */
    int attempt;                          /* attempts in all, this one included */
    int channel_attempt;                  /* attempts on the current channel, this one included */
    bool delayed;                         /* a law-enforcement hold delayed this notice */
    int64_t content_time;                 /* Unix time to render its content at (Date header,
                                             notice_date): 0 = now; audit show sets the
                                             recorded one */
    const struct render_campaign *render; /* templates and metadata, for notice_render() */
};

/* One notice waiting for its final status (the poll op). */
struct crier_poll_item {
    const struct crier_notice *notice; /* attempt is the attempt that was accepted */
    const char *transport_id;          /* recorded at acceptance; NULL: outcome unknown */
    double submitted_at;               /* epoch seconds of that attempt's claim */
};

struct crier_channel;
struct render_campaign;

struct crier_channel_ops {
    const char *name;           /* "email", "fax", "mail", "null", "test" */
    const char *accepted_state; /* notice state an ACCEPTED outcome leads to */
    bool renders;               /* sends rendered templates: the engine loads them first */
    /* reachable - does this notice carry an address this channel can use? */
    bool (*reachable)(const struct crier_notice *notice);
    /* open - start one session (one per lane thread); set channel->state. May be NULL. */
    int (*open)(struct crier_channel *channel, const struct crier_config *config);
    /* send - hand n claimed notices to the transport; fill outcome[i] for each. A return
     * < 0 means the whole batch failed before anything was handed over (all TEMPORARY). */
    int (*send)(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                struct crier_outcome *outcomes);
    /* flush - close a partly filled batch (print). May be NULL. */
    int (*flush)(struct crier_channel *channel);
    /* poll - the final status of n notices this channel left in its accepted_state
     * (engine/core/poll.c asks; a fax's is 'submitted'). Fill outcome[i]: DELIVERED;
     * PERMANENT (failed: fall back); TEMPORARY (nothing was or will be delivered: send
     * again); PENDING (ask later); ACCEPTED with transport_id (a submission whose outcome
     * was unknown was found at the transport). A return < 0 leaves them all PENDING.
     * May be NULL: the accepted state is then final. */
    int (*poll)(struct crier_channel *channel, const struct crier_poll_item *items, size_t n,
                struct crier_outcome *outcomes);
    /* close - end the session and free channel->state. May be NULL. */
    void (*close)(struct crier_channel *channel);
    /* committed - the engine has recorded the outcomes of the last send in the database;
     * all_recorded is false when some arrived after their lease expired (logged as
     * late_outcome, not applied). A print batch makes its files final here. May be NULL. */
    int (*committed)(struct crier_channel *channel, bool all_recorded);
};

/* One session of a channel, owned by one lane thread. */
struct crier_channel {
    const struct crier_channel_ops *ops;
    const struct crier_config *config;
    void *state; /* the channel's own session state */
    /* lease_keepalive - the channel may call this between slow sends so the engine can
     * extend the batch's lease; NULL when the engine does not need it. */
    void (*lease_keepalive)(void *keepalive_data);
    void *keepalive_data;
    /* may_hand_off - a channel that keeps claimed notices a while before handing them to
     * the transport (a print batch being assembled, a fax waiting for a line) asks this
     * just before each hand-off. false: a law-enforcement hold placed meanwhile covers the
     * notice (or the engine cannot tell): do not hand it off, report it TEMPORARY ("taken
     * back"), and the hold keeps it. NULL when the engine offers no check. */
    bool (*may_hand_off)(void *keepalive_data, const struct crier_notice *notice);
    /* outcome_ready - the engine's recorder: a channel that learns a notice's final outcome
     * while the batch is still being sent (an SMTP server's reply to one message's DATA)
     * reports it through channel_outcome_ready() at once, so that a crash later in the batch
     * resends only what was still in flight. NULL when the engine records at the end of the
     * batch only. Called in the lane's thread; it must not block on the network. */
    void (*outcome_ready)(void *keepalive_data, size_t index);
    /* before_no_return - the channel is about to pass the point after which a notice counts
     * as handed over (an SMTP message's final dot): the engine may wait here until earlier
     * reported outcomes are recorded, which bounds what a crash can resend. NULL: no wait. */
    void (*before_no_return)(void *keepalive_data);
    bool *reported; /* channel_send's own: which outcomes were reported early (do not touch) */
    /* secrets - the channel's secret in every form a peer may have been sent it (the
     * password, its base64 in AUTH PLAIN or an Authorization header), set by open and owned
     * by state: channel_send and channel_poll blot them out of every outcome's detail, so
     * a peer that repeats them cannot put them in the dispatch log or on stderr. */
    const char *secrets[3];
};

/* channel_ops_find - the ops of a channel by name; NULL if crier has no such channel. */
const struct crier_channel_ops *channel_ops_find(const char *name);
/* channel_ops_by_id - the ops of a built-in channel; NULL if it is not built yet. */
const struct crier_channel_ops *channel_ops_by_id(enum crier_channel_id id);

/* channel_open - start a session; returns NULL-safe channel to pass to the others. */
int channel_open(const struct crier_channel_ops *ops, const struct crier_config *config,
                 struct crier_channel **ret_channel);
/* channel_send - wrapper around ops->send: fills every outcome, even on failure. */
int channel_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                 struct crier_outcome *outcomes);
/* channel_outcome_ready - outcome index of the batch channel_send is sending is final: the
 * secrets are blotted out of it and the engine is told (it may record it before send
 * returns). The channel must not change that outcome afterwards, and a send that returns
 * < 0 leaves it as it is. */
void channel_outcome_ready(struct crier_channel *channel, struct crier_outcome *outcomes,
                           size_t index);
int channel_flush(struct crier_channel *channel);
/* channel_committed - wrapper around ops->committed (0 when the channel has none). */
int channel_committed(struct crier_channel *channel, bool all_recorded);
/* channel_poll - wrapper around ops->poll: every outcome filled (PENDING unless told). */
int channel_poll(struct crier_channel *channel, const struct crier_poll_item *items, size_t n,
                 struct crier_outcome *outcomes);
/* channel_enabled - does this process run channel name (configured and built into this
 * crier)? *ret_why says why not. Says nothing about other workers of the deployment. */
bool channel_enabled(const struct crier_config *config, const char *name, const char **ret_why);

/* The data of channel_usable(): the campaign's policy and the notice being decided. */
struct channel_usable_data {
    const struct crier_config *config;
    char *const *policy;
    const struct crier_notice *notice;
};

/* channel_usable - a policy_usable_fn: policy channel number index is a channel crier has
 * and reaches the notice, whether or not this process serves it (a notice waits on its
 * channel for a worker). The one test `crier run`, the fax poller and bounce ingestion
 * share. */
bool channel_usable(size_t index, void *data, const char **ret_why);

/* channel_reachable - does the notice carry an address channel id can use? For email, fax
 * and mail the validated address decides (even before those channels are built); a
 * channel's own reachable op may then say no. *ret_why names what is missing. */
bool channel_reachable(enum crier_channel_id id, const struct crier_notice *notice,
                       const char **ret_why);
struct crier_channel *channel_close(struct crier_channel *channel);

/* outcome_set - fill an outcome (detail formatted, truncated to fit). */
void outcome_set(struct crier_outcome *outcome, enum crier_outcome_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *outcome_kind_name(enum crier_outcome_kind kind);

/* email_compose - the exact message the email channel would send for a notice (for
 * `campaign proof`, and `audit show`, which sets notice->content_time); nothing is sent. */
int email_compose(const struct crier_config *config, const struct crier_notice *notice,
                  char **ret_bytes, char *err, size_t err_size);

/* fax_compose - the exact PDF the fax channel would send for a notice (for `audit show`,
 * which sets notice->content_time); nothing is sent. */
int fax_compose(const struct crier_config *config, const struct crier_notice *notice,
                unsigned char **ret_pdf, size_t *ret_len, char *err, size_t err_size);

/* email_probe, fax_probe - `crier config check --connect`: can this configuration reach
 * its SMTP relay (EHLO, STARTTLS as configured, AUTH when configured, NOOP: nothing is
 * sent) or its fax gateway (an authenticated GET of a fax that cannot exist)? 0 or a
 * negative errno; what happened, in one line, goes to report either way. */
int email_probe(const struct crier_config *config, char *report, size_t report_size);
int fax_probe(const struct crier_config *config, char *report, size_t report_size);

/* email_send_text - one plain-text message from channels.email.from to the addresses in
 * to (NULL-terminated) through the configured relay, as the probe connects (for `crier hold
 * check --mail-to`: not a notice, not logged). 0 or a negative errno; report says what
 * happened either way. */
int email_send_text(const struct crier_config *config, char *const *to, const char *subject,
                    const char *body, char *report, size_t report_size);

/* print_spool_check - the mail channel's spool exists, is a directory this process may
 * write, and is closed to others and to group writes (0700 or 0750): letters carry names
 * and addresses. A message naming the key and the fix goes to err. */
int print_spool_check(const char *spool, char *err, size_t err_size);

/* print_letter_digest - the SHA-256 the mail channel records for a notice's letter (its
 * address and rendered body, at notice->content_time), for `audit show`. */
int print_letter_digest(const struct crier_notice *notice, char out[65], char *err,
                        size_t err_size);

extern const struct crier_channel_ops email_channel_ops;
extern const struct crier_channel_ops fax_channel_ops;
extern const struct crier_channel_ops mail_channel_ops;
extern const struct crier_channel_ops null_channel_ops;
extern const struct crier_channel_ops test_channel_ops;

#endif
