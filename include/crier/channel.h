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
#include <stdio.h>

#include "crier/config.h"
#include "crier/notice.h"

/* One notice waiting for its final status (the poll op). */
struct crier_poll_item {
    const struct crier_notice *notice; /* attempt is the attempt that was accepted */
    const char *transport_id;          /* recorded at acceptance; NULL: outcome unknown */
    double submitted_at;               /* epoch seconds of that attempt's claim */
};

/* One status a transport pushed (a fax gateway's webhook), as the callback op read it. */
struct crier_callback {
    char event[40];         /* the event's name, cleaned, for crier's log */
    bool final_status;      /* an outgoing fax's completion: outcome says how it ended */
    char transport_id[128]; /* the transport's id (the fax id) */
    char token[160];        /* the notice's public token ("<id>.<token>") the transport echoed,
                               "" when it echoed none: not a notice of crier's */
    int64_t notice_id;      /* the id in token, 0 when none */
    struct crier_outcome outcome; /* as poll would say for this status: DELIVERED, PERMANENT,
                                     TEMPORARY, or PENDING (not final: nothing to record) */
};

struct crier_channel;
struct render_campaign;

/*
 * The engine's renderer as a channel sees it (engine/core/render.c fills it in and hangs
 * it on each notice that needs it): a channel asks for a template by name and gets bytes,
 * and never learns where the templates, the variables or the metadata came from. Call it
 * through channel_render() and friends below.
 */
struct notice_renderer {
    /* render - template name ("email.txt") for notice, its region's override when there is
     * one; -ENOENT when the campaign has no such template or a variable is missing. */
    int (*render)(const struct crier_notice *notice, const char *name, bool html, char **ret_text,
                  size_t *ret_len, char *err, size_t err_size);
    /* has - does the campaign have template name (for any region)? */
    bool (*has)(const struct crier_notice *notice, const char *name);
    /* meta - a string of the campaign's --meta ("organisation"), or NULL. */
    const char *(*meta)(const struct crier_notice *notice, const char *key);
};

/* One template a channel renders. */
struct channel_template {
    const char *name;    /* "email.txt" */
    bool required;       /* a campaign whose policy names the channel cannot start without it */
    bool body;           /* it carries the notice's prose: the rules table's content rules
                            are checked against it at `campaign start` (content.c) */
    const char *subject; /* body only: a template a title rule may be met in instead, or NULL */
};

/* How a lane of a channel claims (channel_claim_limits). */
struct channel_claim {
    int limit;           /* notices per claim */
    long window_seconds; /* > 0: claim only when limit notices are ready or the oldest ready
                            one has waited this long (a print batch); 0: whatever is ready */
};

/* What compose made of one notice, exactly as the channel would hand it over. */
struct channel_content {
    void *bytes; /* malloc'd; what the channel hands over (the mail channel's: the
                    letter's Markdown body, since its PDF page is one of a batch) */
    size_t len;
    char sha256[65];       /* the SHA-256 the channel records for it when it sends */
    const char *extension; /* of a file holding bytes: "eml", "pdf", "md" */
    const char *renderer;  /* what it was rendered with ("DejaVu Sans"); may be NULL */
};

/*
 * The engine's side of a channel's recovery after a crash (engine/core/batch.c fills it
 * in): what the database recorded of a batch the channel made durable before the record,
 * and a way to take the notices of a batch that must never be handed over back.
 */
struct channel_recovery {
    void *data;
    /* recorded - of the n notices (ids[i] at attempts[i]) the channel put in batch (its
     * transport_id) of campaign_id: how many are recorded as accepted in it, and how many
     * are still being sent under that very claim (a live lane is still at it). */
    int (*recorded)(void *data, int64_t campaign_id, const char *batch, const int64_t *ids,
                    const int *attempts, size_t n, long *ret_recorded, long *ret_in_flight);
    /* take_back - the notices still accepted in batch go back to ready (cancelled in a
     * cancelled campaign), each logged with reason; *ret_count says how many. */
    int (*take_back)(void *data, int64_t campaign_id, const char *batch, const char *reason,
                     long *ret_count);
    /* orphaned - batch will never be handed over (taken_back of its notices went back):
     * the engine tells the operator. May be NULL. */
    void (*orphaned)(void *data, const char *channel, const char *batch, long taken_back);
};

#define CHANNEL_SORT_KEY 24 /* bytes of a sort key (the sort_key op) */

/* A batch handed to a channel in slices (the slice ops): what it knows before the first. */
struct channel_batch {
    size_t count;        /* notices in the whole batch */
    int64_t campaign_id; /* a batch is one campaign's */
    int64_t lowest_id;   /* its lowest notice id, and that notice's attempt: the batch's name */
    int lowest_attempt;
    double claimed_at; /* monotonic seconds at the claim: late hand-offs count from it */
};

struct crier_channel_ops {
    const char *name;                       /* the configuration's name of the channel */
    enum crier_notice_state accepted_state; /* where an ACCEPTED outcome leads */
    /* early_outcomes - the channel reports outcomes one by one while it sends
     * (channel_outcome_ready): its lanes record through the process's recorder thread.
     * Other lanes record each batch when it ends, on their own connection. */
    bool early_outcomes;
    /* templates - the templates the channel renders, ended by a {NULL}; NULL when it renders
     * none. The engine loads a campaign's templates for a lane of a channel that has some,
     * `campaign start` requires the required ones and checks the bodies' content. */
    const struct channel_template *templates;
    /* reachable - does this notice carry an address this channel can use? NULL: everyone.
     * unreachable_why says what is missing when it says no ("no valid email address"). */
    bool (*reachable)(const struct crier_notice *notice);
    const char *unreachable_why;
    /* contact - which of a person's contacts the channel uses (CONTACT_ANY: none). The engine
     * tests it where it works on recipients in SQL (`campaign reroute`), as reachable does
     * in C; so no channel's name is written in the engine's SQL. */
    enum crier_contact contact;
    /* claim - how a lane claims: NULL is the channel's batch_size, whatever is ready. */
    void (*claim)(const struct crier_config *config, struct channel_claim *ret);
    /* check - what the channel needs besides its keys, for `config check` and `crier run`'s
     * start (the mail spool's modes); a message naming the key and the fix goes to err.
     * May be NULL. */
    int (*check)(const struct crier_config *config, char *err, size_t err_size);
    /* probe - `config check --connect`: can the configuration reach its peer (nothing is
     * sent)? 0 or a negative errno; one line of what happened in report either way.
     * probe_label names the peer ("smtp"). May be NULL. */
    int (*probe)(const struct crier_config *config, char *report, size_t report_size);
    const char *probe_label;
    /* send_text - one plain-text message to the addresses in to (NULL-terminated) through
     * the channel's configured transport, as the probe connects: not a notice, not logged
     * (`crier hold check --mail-to`, legal's alert; channel_send_text). 0 or a negative
     * errno; report says what happened either way. May be NULL. */
    int (*send_text)(const struct crier_config *config, char *const *to, const char *subject,
                     const char *body, char *report, size_t report_size);
    /* recover - after a crash, settle what the channel made durable before the engine
     * recorded it (the mail channel's *.pending batches), asking engine what was recorded.
     * One line per settled batch on report (may be NULL); *ret_orphaned counts batches that
     * will never be handed over. May be NULL: nothing outlives a crash. */
    int (*recover)(const struct crier_config *config, const struct channel_recovery *engine,
                   FILE *report, long *ret_orphaned);
    /* compose - the exact content the channel would send for one notice, rendered at
     * notice->content_time (0: now), and the SHA-256 it records for it; nothing is sent.
     * `crier audit show` compares it with what was recorded. May be NULL: no content. */
    int (*compose)(const struct crier_config *config, const struct crier_notice *notice,
                   struct channel_content *ret, char *err, size_t err_size);
    /* compose_earlier - compose as an earlier crier rendered it: renderer 1 is the rendering
     * before today's, 2 the one before that; -ENOENT past the last. `crier audit show` asks
     * for them, newest first, when compose's SHA-256 is not the one recorded: a digest of
     * bytes (a fax's PDF) changes with the rendering, and content an older crier sent must
     * still be checked. Sets ret->renderer. May be NULL: one rendering only. */
    int (*compose_earlier)(const struct crier_config *config, const struct crier_notice *notice,
                           int renderer, struct channel_content *ret, char *err, size_t err_size);
    /* proof - what `campaign proof` writes for a notice, for legal to read (the message;
     * a letter's Markdown), into a file ending in proof_file ("email.eml"): channels with
     * the same proof_file write it once per notice. May be NULL. */
    int (*proof)(const struct crier_config *config, const struct crier_notice *notice,
                 char **ret_bytes, size_t *ret_len, char *err, size_t err_size);
    const char *proof_file;
    /* proof_print - the notice as it will be printed or transmitted (a PDF: the letter as
     * the mail channel prints it alone, the fax as sent), for `campaign proof`, into a file
     * ending in proof_print_file ("letter.pdf"); nothing is sent or spooled. May be NULL. */
    int (*proof_print)(const struct crier_config *config, const struct crier_notice *notice,
                       unsigned char **ret_pdf, size_t *ret_len, char *err, size_t err_size);
    const char *proof_print_file;
    /* bounces - what it hands over can come back as an RFC 3464 report to its VERP sender
     * (`crier bounces ingest` moves such a notice on: bounce.c). */
    bool bounces;
    /* batches - what it hands over is printed in batches the operator mails (`crier batch`,
     * engine/core/batch.c) and may come back as returned mail (`crier returns ingest`). */
    bool batches;
    /* open - start one session (one per lane thread); set channel->state. May be NULL. */
    int (*open)(struct crier_channel *channel, const struct crier_config *config);
    /* send - hand n claimed notices to the transport; fill outcome[i] for each. A return
     * < 0 means the whole batch failed before anything was handed over (all TEMPORARY). */
    int (*send)(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                struct crier_outcome *outcomes);
    /* flush - close a partly filled batch (print), and the batch the slice ops opened:
     * after it, that batch is handed over or failed whole. May be NULL. */
    int (*flush)(struct crier_channel *channel);
    /*
     * A batch too big to hold (a print batch of thousands of letters) is handed over in
     * slices instead of by send: slice_begin opens it (count notices, in the order of
     * sort_key), slice_send hands over the next n in that order, flush closes it, and
     * slice_outcomes then fills the outcomes of n notices of the batch, a slice at a time,
     * for the record. Neither side holds anything per notice for the whole batch: for each
     * notice it took in, slice_send sets items[k] to a malloc'd string (no more than a line
     * of text) that says what became of it, or leaves it NULL when nothing did; the engine
     * keeps those strings with the batch, outside its memory (queue.h), and hands them back
     * to slice_outcomes after flush (items[k] NULL: the notice was never taken in).
     * slice_send < 0: nothing more can go in (what did not is TEMPORARY). All NULL for a
     * channel that sends whole batches.
     */
    int (*slice_begin)(struct crier_channel *channel, const struct channel_batch *batch);
    int (*slice_send)(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                      char **items);
    void (*slice_outcomes)(struct crier_channel *channel, const char *const *items, size_t n,
                           struct crier_outcome *outcomes);
    /* sort_key - the order of a batch given in slices, from a notice of which only id,
     * mailable, address[0], address[2], address[4] (postal code) and country are set:
     * CHANNEL_SORT_KEY bytes, zeroed before, compared as memcmp (ties keep the claim's
     * order). NULL: the claim's order. */
    void (*sort_key)(const struct crier_notice *partial, unsigned char *key);
    /* poll - the final status of n notices this channel left in its accepted_state
     * (engine/core/poll.c asks; a fax's is 'submitted'). Fill outcome[i]: DELIVERED;
     * PERMANENT (failed: fall back); TEMPORARY (nothing was or will be delivered: send
     * again); PENDING (ask later); ACCEPTED with transport_id (a submission whose outcome
     * was unknown was found at the transport). A return < 0 leaves them all PENDING.
     * May be NULL: the accepted state is then final. */
    int (*poll)(struct crier_channel *channel, const struct crier_poll_item *items, size_t n,
                struct crier_outcome *outcomes);
    /* callback - read a status the transport pushed: body is the event as one JSON document
     * (crier serve's webhook turns a form into one), read as poll reads a status reply,
     * so that the same status gives the same outcome and words. 0 with *ret filled (an
     * event that is not a final status leaves final_status false); -EINVAL when the body
     * is not such an event, with err naming what is wrong; -ENOTSUP when the channel's
     * configuration cannot read one. Needs no session. May be NULL: no webhook. */
    int (*callback)(const struct crier_config *config, const char *body, size_t len,
                    struct crier_callback *ret, char *err, size_t err_size);
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
/* channel_slice_begin, channel_slice_send - wrappers around the slice ops (-ENOTSUP when
 * the channel has none). channel_slice_outcomes fills every outcome: TEMPORARY where the
 * channel says nothing, the secrets blotted out as channel_send does. */
int channel_slice_begin(struct crier_channel *channel, const struct channel_batch *batch);
int channel_slice_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                       char **items);
void channel_slice_outcomes(struct crier_channel *channel, const char *const *items, size_t n,
                            struct crier_outcome *outcomes);
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

/* channel_reaches - a policy_usable_fn for a load or an amend, where a notice starts: policy
 * channel number index names a channel and the notice's contacts reach it (config is not
 * read; whether this build has the channel is asked when it is sent). */
bool channel_reaches(size_t index, void *data, const char **ret_why);

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

/* channel_send_text - ops->send_text of the channel that has one (email): a plain message
 * that is not a notice; -EOPNOTSUPP when this build has none. */
int channel_send_text(const struct crier_config *config, char *const *to, const char *subject,
                      const char *body, char *report, size_t report_size);

/* channel_render, channel_render_has, channel_meta - the notice's renderer (struct
 * notice_renderer): -ENOENT, false and NULL when the engine hung none on the notice. */
int channel_render(const struct crier_notice *notice, const char *name, bool html, char **ret_text,
                   size_t *ret_len, char *err, size_t err_size);
bool channel_render_has(const struct crier_notice *notice, const char *name);
const char *channel_meta(const struct crier_notice *notice, const char *key);

/* channel_claim_limits - how a lane of the channel claims (ops->claim, else batch_size). */
struct channel_claim channel_claim_limits(const struct crier_channel_ops *ops,
                                          const struct crier_config *config);

/* channel_check_all - every channel this process runs (enabled, lanes > 0) that has a check
 * op: each problem on diag as "WHERE: problem"; -EINVAL if there was any. */
int channel_check_all(const struct crier_config *config, const char *where, FILE *diag);

/* channel_recover_all - the recover op of every channel this process enables (see
 * struct channel_recovery). *ret_orphaned sums theirs (may be NULL). */
int channel_recover_all(const struct crier_config *config, const struct channel_recovery *engine,
                        FILE *report, long *ret_orphaned);

/* channel_compose - the compose op of channel name, or -ENOTSUP with "channel NAME renders no
 * content" in err. channel_content_free frees what it made. */
int channel_compose(const char *name, const struct crier_config *config,
                    const struct crier_notice *notice, struct channel_content *ret, char *err,
                    size_t err_size);
/* channel_compose_earlier - the compose_earlier op of channel name (renderer >= 1), or
 * -ENOENT when it has no such rendering. */
int channel_compose_earlier(const char *name, const struct crier_config *config,
                            const struct crier_notice *notice, int renderer,
                            struct channel_content *ret, char *err, size_t err_size);
void channel_content_free(struct channel_content *content);

/* channel_proof_letter - the proof op of the channels that print the notice as a letter
 * (fax, mail): letter.md rendered for the notice. */
int channel_proof_letter(const struct crier_config *config, const struct crier_notice *notice,
                         char **ret_bytes, size_t *ret_len, char *err, size_t err_size);

/* channel_bouncing - the channel whose notices come back as bounces (ops->bounces), or
 * NULL when this build has none. */
const struct crier_channel_ops *channel_bouncing(void);
/* channel_batching - the name of the channel whose notices are mailed in batches
 * (ops->batches): what batch.c and returned mail log and look for. */
const char *channel_batching(void);

/* channel_templates_of - the templates the channels named in policy render, each name once,
 * into out (room for max); returns how many. Unknown channels render nothing. */
size_t channel_templates_of(char *const *policy, const struct channel_template **out, size_t max);

/* channel_letter_templates - what a channel that prints letter.md renders (fax, mail). */
extern const struct channel_template channel_letter_templates[];

extern const struct crier_channel_ops email_channel_ops;
extern const struct crier_channel_ops fax_channel_ops;
extern const struct crier_channel_ops mail_channel_ops;
extern const struct crier_channel_ops null_channel_ops;
extern const struct crier_channel_ops test_channel_ops;

#endif
