/*
 * null.c - the channel that accepts everything as delivered, at once.
 *
 * It exists to measure the engine alone (claim, record, log) with no transport cost, and
 * to drain a campaign whose policy is or ends in "null". It must never be the last
 * channel of a real campaign: nobody is told anything.
 */
#include "crier/channel.h"

static int null_send(struct crier_channel *channel, const struct crier_notice *notices, size_t n,
                     struct crier_outcome *outcomes)
{
    for (size_t i = 0; i < n; i++)
        outcome_set(&outcomes[i], OUTCOME_DELIVERED, "accepted");
    return 0;
}

const struct crier_channel_ops null_channel_ops = {
    .name = "null",
    .accepted_state = STATE_DELIVERED,
    .reachable = NULL, /* everyone is reachable */
    .send = null_send,
};
