/*
 * channel.c - the channel registry and the thin wrappers the engine calls channels through.
 *
 * The wrappers guarantee the engine's side of the contract whatever a channel does: every
 * outcome is filled (a channel that fails a batch leaves each notice TEMPORARY, never
 * unrecorded), and optional ops get their defaults here.
 */
#include "crier/channel.h"
#include "crier/crier.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Indexed by enum crier_channel_id; NULL for a channel not built yet. One channel per line
 * (clang-format would pack them into rows). */
/* clang-format off */
static const struct crier_channel_ops *const channel_table[CHANNEL_COUNT] = {
    [CHANNEL_EMAIL] = &email_channel_ops,
    [CHANNEL_FAX] = &fax_channel_ops,
    [CHANNEL_MAIL] = &mail_channel_ops,
    [CHANNEL_NULL] = &null_channel_ops,
    [CHANNEL_TEST] = &test_channel_ops,
};
/* clang-format on */

const struct crier_channel_ops *channel_ops_by_id(enum crier_channel_id id)
{
    if ((unsigned)id >= CHANNEL_COUNT)
        return NULL;
    return channel_table[id];
}

const struct crier_channel_ops *channel_ops_find(const char *name)
{
    enum crier_channel_id id;
    if (channel_id_from_name(name, &id) < 0)
        return NULL;
    return channel_ops_by_id(id);
}

int channel_open(const struct crier_channel_ops *ops, const struct crier_config *config,
                 struct crier_channel **ret_channel)
{
    struct crier_channel *channel = xcalloc(1, sizeof(*channel));
    channel->ops = ops;
    channel->config = config;
    if (ops->open) {
        int r = ops->open(channel, config);
        if (r < 0) {
            free(channel);
            return r;
        }
    }
    *ret_channel = channel;
    return 0;
}

/* redact - the channel's secrets out of what its peers said (see struct crier_channel). */
static void redact(const struct crier_channel *channel, struct crier_outcome *outcomes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        secret_redact(outcomes[i].detail, sizeof(outcomes[i].detail), channel->secrets,
                      ARRAY_SIZE(channel->secrets));
}

int channel_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                 struct crier_outcome *outcomes)
{
    /* Pre-fill: anything the channel leaves untouched counts as a temporary failure. */
    for (size_t i = 0; i < n; i++)
        outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "no outcome reported by the channel");
    if (channel->ops->send == NULL)
        return -ENOTSUP; /* a channel given batches in slices only (print) */
    bool *reported = xcalloc(n + 1, sizeof(*reported));
    channel->reported = reported;
    int r = channel->ops->send(channel, notices, n, outcomes);
    channel->reported = NULL;
    /* an outcome reported early may be being recorded by now: it is never written again */
    for (size_t i = 0; i < n; i++) {
        if (reported[i])
            continue;
        if (r < 0)
            outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "batch failed: %s", strerror(-r));
        redact(channel, &outcomes[i], 1);
    }
    free(reported);
    return r;
}

void channel_outcome_ready(struct crier_channel *channel, struct crier_outcome *outcomes,
                           size_t index)
{
    if (channel->reported == NULL || channel->reported[index])
        return; /* outside channel_send, or said twice: the end of the batch records it */
    redact(channel, &outcomes[index], 1);
    channel->reported[index] = true;
    if (channel->outcome_ready)
        channel->outcome_ready(channel->keepalive_data, index);
}

int channel_committed(struct crier_channel *channel, bool all_recorded)
{
    if (channel == NULL || channel->ops->committed == NULL)
        return 0;
    return channel->ops->committed(channel, all_recorded);
}

int channel_flush(struct crier_channel *channel)
{
    if (channel == NULL || channel->ops->flush == NULL)
        return 0;
    return channel->ops->flush(channel);
}

int channel_slice_begin(struct crier_channel *channel, const struct channel_batch *batch)
{
    if (channel == NULL || channel->ops->slice_begin == NULL)
        return -ENOTSUP;
    return channel->ops->slice_begin(channel, batch);
}

int channel_slice_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                       char **items)
{
    if (channel == NULL || channel->ops->slice_send == NULL)
        return -ENOTSUP;
    return channel->ops->slice_send(channel, notices, n, items);
}

void channel_slice_outcomes(struct crier_channel *channel, const char *const *items, size_t n,
                            struct crier_outcome *outcomes)
{
    for (size_t i = 0; i < n; i++)
        outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "no outcome reported by the channel");
    if (channel && channel->ops->slice_outcomes)
        channel->ops->slice_outcomes(channel, items, n, outcomes);
    redact(channel, outcomes, n);
}

int channel_poll(struct crier_channel *channel, const struct crier_poll_item *items, size_t n,
                 struct crier_outcome *outcomes)
{
    /* Pre-fill: a notice the channel says nothing about is asked about again later. */
    for (size_t i = 0; i < n; i++)
        outcome_set(&outcomes[i], OUTCOME_PENDING, "%s", "");
    if (channel == NULL || channel->ops->poll == NULL)
        return -ENOTSUP;
    int r = channel->ops->poll(channel, items, n, outcomes);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            outcome_set(&outcomes[i], OUTCOME_PENDING, "status check failed: %s", strerror(-r));
    }
    redact(channel, outcomes, n);
    return r;
}

bool channel_enabled(const struct crier_config *config, const char *name, const char **ret_why)
{
    enum crier_channel_id id;
    if (channel_id_from_name(name, &id) < 0) {
        *ret_why = "unknown channel";
        return false;
    }
    if (!config->channel[id].enabled) {
        *ret_why = "not enabled in the configuration";
        return false;
    }
    if (channel_ops_by_id(id) == NULL) {
        *ret_why = "not available in this build of crier";
        return false;
    }
    return true;
}

bool channel_usable(size_t index, void *data, const char **ret_why)
{
    const struct channel_usable_data *u = data;
    enum crier_channel_id id;
    /* Not whether this process enables the channel: that says nothing about the deployment
     * (another worker may serve it). A notice falls back to it and waits there for a worker;
     * only crier campaign reroute moves it on (engine/core/service.c). */
    if (channel_id_from_name(u->policy[index], &id) == 0 && channel_ops_by_id(id) == NULL) {
        *ret_why = "not available in this build of crier";
        return false;
    }
    return channel_reaches(index, data, ret_why);
}

bool channel_reaches(size_t index, void *data, const char **ret_why)
{
    const struct channel_usable_data *u = data;
    enum crier_channel_id id;
    if (channel_id_from_name(u->policy[index], &id) < 0) {
        *ret_why = "unknown channel";
        return false;
    }
    return channel_reachable(id, u->notice, ret_why);
}

bool channel_reachable(enum crier_channel_id id, const struct crier_notice *notice,
                       const char **ret_why)
{
    const char *why = NULL;
    const struct crier_channel_ops *ops = channel_ops_by_id(id);
    if (ops && ops->reachable && !ops->reachable(notice))
        why = ops->unreachable_why ? ops->unreachable_why : "not reachable";
    if (ret_why)
        *ret_why = why;
    return why == NULL;
}

int channel_render(const struct crier_notice *notice, const char *name, bool html, char **ret_text,
                   size_t *ret_len, char *err, size_t err_size)
{
    if (notice->renderer == NULL) {
        snprintf(err, err_size, "no templates loaded for campaign %s", notice->campaign_name);
        return -ENOENT;
    }
    return notice->renderer->render(notice, name, html, ret_text, ret_len, err, err_size);
}

bool channel_render_has(const struct crier_notice *notice, const char *name)
{
    return notice->renderer && notice->renderer->has(notice, name);
}

const char *channel_meta(const struct crier_notice *notice, const char *key)
{
    return notice->renderer ? notice->renderer->meta(notice, key) : NULL;
}

struct channel_claim channel_claim_limits(const struct crier_channel_ops *ops,
                                          const struct crier_config *config)
{
    struct channel_claim claim = {.limit = 1, .window_seconds = 0};
    enum crier_channel_id id;
    if (channel_id_from_name(ops->name, &id) == 0)
        claim.limit = config->channel[id].batch_size;
    if (ops->claim)
        ops->claim(config, &claim);
    return claim;
}

int channel_check_all(const struct crier_config *config, const char *where, FILE *diag)
{
    int r = 0;
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        char why[512] = "";
        if (ops == NULL || ops->check == NULL || !config->channel[id].enabled ||
            config->channel[id].lanes == 0)
            continue;
        if (ops->check(config, why, sizeof(why)) < 0) {
            fprintf(diag, "%s: %s\n", where, why);
            r = -EINVAL;
        }
    }
    return r;
}

int channel_recover_all(const struct crier_config *config, const struct channel_recovery *engine,
                        FILE *report, long *ret_orphaned)
{
    int r = 0;
    long orphaned = 0;
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        long count = 0;
        if (ops == NULL || ops->recover == NULL || !config->channel[id].enabled)
            continue;
        int k = ops->recover(config, engine, report, &count);
        orphaned += count;
        if (k < 0 && r == 0)
            r = k;
    }
    if (ret_orphaned)
        *ret_orphaned = orphaned;
    return r;
}

int channel_compose(const char *name, const struct crier_config *config,
                    const struct crier_notice *notice, struct channel_content *ret, char *err,
                    size_t err_size)
{
    const struct crier_channel_ops *ops = channel_ops_find(name);
    *ret = (struct channel_content){0};
    if (ops == NULL || ops->compose == NULL) {
        snprintf(err, err_size, "channel %s renders no content", name);
        return -ENOTSUP;
    }
    return ops->compose(config, notice, ret, err, err_size);
}

int channel_compose_earlier(const char *name, const struct crier_config *config,
                            const struct crier_notice *notice, int renderer,
                            struct channel_content *ret, char *err, size_t err_size)
{
    const struct crier_channel_ops *ops = channel_ops_find(name);
    *ret = (struct channel_content){0};
    if (ops == NULL || ops->compose_earlier == NULL || renderer < 1)
        return -ENOENT;
    return ops->compose_earlier(config, notice, renderer, ret, err, err_size);
}

void channel_content_free(struct channel_content *content)
{
    free(content->bytes);
    content->bytes = NULL;
}

int channel_proof_letter(const struct crier_config *config, const struct crier_notice *notice,
                         char **ret_bytes, size_t *ret_len, char *err, size_t err_size)
{
    return channel_render(notice, "letter.md", false, ret_bytes, ret_len, err, err_size);
}

const struct crier_channel_ops *channel_bouncing(void)
{
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops && ops->bounces)
            return ops;
    }
    return NULL;
}

int channel_send_text(const struct crier_config *config, char *const *to, const char *subject,
                      const char *body, char *report, size_t report_size)
{
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops && ops->send_text)
            return ops->send_text(config, to, subject, body, report, report_size);
    }
    return error_set(report, report_size, -EOPNOTSUPP,
                     "this build has no channel that sends a plain message");
}

const char *channel_batching(void)
{
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (ops && ops->batches)
            return ops->name;
    }
    return "";
}

size_t channel_templates_of(char *const *policy, const struct channel_template **out, size_t max)
{
    size_t count = 0;
    for (char *const *p = policy; p && *p; p++) {
        const struct channel_template *t = NULL;
        const struct crier_channel_ops *ops = channel_ops_find(*p);
        for (t = ops ? ops->templates : NULL; t && t->name; t++) {
            bool seen = false;
            for (size_t i = 0; i < count && !seen; i++)
                seen = strcmp(out[i]->name, t->name) == 0;
            if (!seen && count < max)
                out[count++] = t;
        }
    }
    return count;
}

const struct channel_template channel_letter_templates[] = {
    {.name = "letter.md", .required = true, .body = true},
    {.name = NULL},
};

struct crier_channel *channel_close(struct crier_channel *channel)
{
    if (channel == NULL)
        return NULL;
    if (channel->ops->close)
        channel->ops->close(channel);
    free(channel);
    return NULL;
}

void outcome_set(struct crier_outcome *outcome, enum crier_outcome_kind kind, const char *fmt, ...)
{
    outcome->kind = kind;
    outcome->content_sha256[0] = '\0';
    outcome->content_at = 0;
    outcome->retry_after_seconds = 0;
    outcome->transport_id[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(outcome->detail, sizeof(outcome->detail), fmt, ap);
    va_end(ap);
}

const char *outcome_kind_name(enum crier_outcome_kind kind)
{
    switch (kind) {
    case OUTCOME_DELIVERED:
        return "delivered";
    case OUTCOME_ACCEPTED:
        return "accepted";
    case OUTCOME_TEMPORARY:
        return "temporary";
    case OUTCOME_PERMANENT:
        return "permanent";
    case OUTCOME_NO_ADDRESS:
        return "no_address";
    case OUTCOME_PENDING:
        return "pending";
    }
    return "unknown";
}
