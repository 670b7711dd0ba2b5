/*
 * test.c - a channel whose outcomes the test suite scripts through the recipient's data.
 *
 * A recipient's list column "test_script" holds comma-separated outcomes, one per attempt
 * on this channel ("temporary,temporary,accepted"); the last one repeats. A column
 * "test_reachable" set to "no" makes the recipient unreachable here. Without a script,
 * channels.test.default applies. channels.test.delay_ms makes each send take that long,
 * so that tests can kill a worker mid-batch. Never enable it in production.
 */
#include "crier/channel.h"
#include "crier/crier.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *vars_string(const struct crier_notice *notice, const char *key,
                               json_t **ret_root)
{
    *ret_root = NULL;
    if (notice->vars_json == NULL)
        return NULL;
    json_t *root = json_loads(notice->vars_json, 0, NULL);
    if (root == NULL)
        return NULL;
    *ret_root = root;
    return json_string_value(json_object_get(root, key));
}

static bool test_reachable(const struct crier_notice *notice)
{
    json_t *root;
    const char *value = vars_string(notice, "test_reachable", &root);
    bool reachable = value == NULL || strcmp(value, "no") != 0;
    json_decref(root);
    return reachable;
}

/* script_step - the outcome word for attempt n (1-based) of a comma-separated script. */
static void script_step(const char *script, int n, char *out, size_t out_size)
{
    const char *start = script;
    for (int i = 1; i < n; i++) {
        const char *comma = strchr(start, ',');
        if (comma == NULL)
            break;
        start = comma + 1;
    }
    size_t len = strcspn(start, ",");
    if (len >= out_size)
        len = out_size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

static int outcome_from_word(const char *word, enum crier_outcome_kind *ret_kind)
{
    static const struct {
        const char *word;
        enum crier_outcome_kind kind;
    } words[] = {
        {"delivered", OUTCOME_DELIVERED},   {"accepted", OUTCOME_ACCEPTED},
        {"temporary", OUTCOME_TEMPORARY},   {"permanent", OUTCOME_PERMANENT},
        {"no_address", OUTCOME_NO_ADDRESS},
    };
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        if (strcmp(word, words[i].word) == 0) {
            *ret_kind = words[i].kind;
            return 0;
        }
    }
    return -1;
}

static int test_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                     struct crier_outcome *outcomes)
{
    const struct crier_config *config = channel->config;
    for (size_t i = 0; i < n; i++) {
        const struct crier_notice *notice = &notices[i];
        if (config->test.delay_ms > 0) {
            struct timespec ts = {config->test.delay_ms / 1000,
                                  (config->test.delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (channel->lease_keepalive)
                channel->lease_keepalive(channel->keepalive_data);
        }
        json_t *root;
        const char *script = vars_string(notice, "test_script", &root);
        char word[32];
        script_step(script ? script : config->test.default_outcome, notice->channel_attempt, word,
                    sizeof(word));
        json_decref(root);
        enum crier_outcome_kind kind;
        if (outcome_from_word(word, &kind) < 0) {
            outcome_set(&outcomes[i], OUTCOME_TEMPORARY, "unknown scripted outcome '%s'", word);
            continue;
        }
        outcome_set(&outcomes[i], kind, "scripted %s (attempt %d)", word, notice->channel_attempt);
        if (kind == OUTCOME_DELIVERED || kind == OUTCOME_ACCEPTED) {
            char *content =
                xasprintf("test notice for %s in %s", notice->ref, notice->campaign_name);
            sha256_hex(content, strlen(content), outcomes[i].content_sha256);
            free(content);
        }
    }
    return 0;
}

const struct crier_channel_ops test_channel_ops = {
    .name = "test",
    .accepted_state = STATE_SENT,
    .reachable = test_reachable,
    .send = test_send,
};
