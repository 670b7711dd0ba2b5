/*
 * policy.c - the notice state machine (see policy.h and docs/architecture.md).
 *
 * Decides; never stores. Every path ends in a state, so a notice can never be left
 * without one: delivered/accepted, ready again (same channel or the next), or
 * undeliverable with the reasons of every channel tried.
 */
#include "crier/policy.h"
#include "crier/backoff.h"
#include "crier/crier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* reason_append - add "; text" (or "text" at the start), truncating to fit. */
static void reason_append(char *reason, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason_append(char *reason, size_t size, const char *fmt, ...)
{
    size_t used = strlen(reason);
    if (used + 3 >= size)
        return;
    if (used > 0) {
        memcpy(reason + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason + used, size - used, fmt, ap);
    va_end(ap);
}

int policy_first_channel(const char *const *channels, size_t channel_count, size_t start,
                         policy_usable_fn usable, void *usable_data, char *reason,
                         size_t reason_size)
{
    for (size_t i = start; i < channel_count; i++) {
        const char *why = NULL;
        if (usable(i, usable_data, &why))
            return (int)i;
        reason_append(reason, reason_size, "%s: %s", channels[i], why ? why : "not usable");
    }
    return -ENOENT;
}

/* fall_back - move to the next usable channel after the current one, or undeliverable. */
static void fall_back(const struct policy_input *in, struct policy_decision *d)
{
    int next = policy_first_channel(in->channels, in->channel_count, in->channel_index + 1,
                                    in->usable, in->usable_data, d->reason, sizeof(d->reason));
    d->delay_seconds = 0;
    if (next < 0) {
        d->to_state = STATE_UNDELIVERABLE;
        d->to_channel_index = in->channel_index;
        d->channel_changed = false;
        reason_append(d->reason, sizeof(d->reason), "no channel left");
        return;
    }
    d->to_state = STATE_READY;
    d->to_channel_index = (size_t)next;
    d->channel_changed = true;
}

int policy_decide(const struct policy_input *in, const struct crier_outcome *outcome,
                  struct policy_decision *ret_decision)
{
    if (in->channel_index >= in->channel_count)
        return -EINVAL;
    struct policy_decision d = {.to_channel_index = in->channel_index};
    const char *channel = in->channels[in->channel_index];

    switch (outcome->kind) {
    case OUTCOME_DELIVERED:
        d.to_state = STATE_DELIVERED;
        break;
    case OUTCOME_ACCEPTED:
        if ((unsigned)in->accepted_state >= STATE_COUNT)
            return -EINVAL;
        d.to_state = in->accepted_state;
        break;
    case OUTCOME_TEMPORARY:
        if (in->now - in->channel_started_at >= (double)in->limits->give_up_after_seconds) {
            reason_append(d.reason, sizeof(d.reason),
                          "%s: gave up after %ld s of temporary failures: %s", channel,
                          in->limits->give_up_after_seconds, outcome->detail);
            fall_back(in, &d);
            break;
        }
        d.to_state = STATE_READY;
        if (outcome->retry_after_seconds > 0)
            d.delay_seconds = outcome->retry_after_seconds;
        else
            d.delay_seconds =
                backoff_delay(in->limits->backoff_min_seconds, in->limits->backoff_max_seconds,
                              in->limits->backoff_jitter, in->channel_attempt, in->random_unit);
        break;
    case OUTCOME_PERMANENT:
    case OUTCOME_NO_ADDRESS:
        reason_append(d.reason, sizeof(d.reason), "%s: %s", channel, outcome->detail);
        fall_back(in, &d);
        break;
    default:
        return -EINVAL;
    }
    *ret_decision = d;
    return 0;
}

int policy_parse(const char *text, char ***ret_names, char *err, size_t err_size)
{
    char **names = xcalloc(POLICY_CHANNEL_MAX + 1, sizeof(char *));
    size_t count = 0;
    const char *p = text;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        char *name = xstrndup(p, len);
        p = p[len] == ',' ? p + len + 1 : p + len;
        /* tolerate spaces around names: "email, fax" */
        char *start = name;
        while (*start == ' ')
            start++;
        char *end = start + strlen(start);
        while (end > start && end[-1] == ' ')
            *--end = '\0';
        enum crier_channel_id id;
        if (channel_id_from_name(start, &id) < 0) {
            snprintf(err, err_size,
                     "unknown channel '%s' in policy (channels: email, fax, mail, null, test)",
                     start);
            free(name);
            strv_free(names);
            return -EINVAL;
        }
        for (size_t i = 0; i < count; i++) {
            if (strcmp(names[i], start) == 0) {
                snprintf(err, err_size, "channel '%s' appears twice in policy", start);
                free(name);
                strv_free(names);
                return -EINVAL;
            }
        }
        if (count == POLICY_CHANNEL_MAX) {
            snprintf(err, err_size, "policy has more than %d channels", POLICY_CHANNEL_MAX);
            free(name);
            strv_free(names);
            return -EINVAL;
        }
        names[count++] = xstrdup(start);
        free(name);
    }
    if (count == 0) {
        snprintf(err, err_size, "policy names no channel");
        strv_free(names);
        return -EINVAL;
    }
    *ret_names = names;
    return 0;
}
