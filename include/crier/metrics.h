/*
 * metrics.h - `crier run --metrics ADDR`: the worker's counters in Prometheus text format
 * on http://ADDR/metrics (libmicrohttpd). Counters are this process's, from its start.
 */
#ifndef CRIER_METRICS_H
#define CRIER_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "crier/channel.h"

/* metrics_batch - one lane's batch: how long its claim, send and record took, and how each
 * notice came out (claimed = n). Safe from any thread. */
void metrics_batch(enum crier_channel_id channel, double claim_seconds, double send_seconds,
                   double record_seconds, const struct crier_outcome *outcomes, size_t n);
/* metrics_kinds - outcomes counted by kind (kinds[enum crier_outcome_kind], METRICS_KINDS
 * of them) for n claimed notices, as metrics_batch counts them: a batch recorded in
 * slices says its outcomes once it is recorded, and its times with n = 0. */
#define METRICS_KINDS (OUTCOME_PENDING + 1)
void metrics_kinds(enum crier_channel_id channel, const long *kinds, size_t n);
/* metrics_reconnect - a database connection was restored. */
void metrics_reconnect(void);
/* metrics_in_flight_source - how /metrics counts the notices handed to channels now. */
void metrics_in_flight_source(long (*in_flight)(void *data), void *data);
/* metrics_waiting_set - the notices waiting for a channel no live worker serves, as
 * service_waiting() returns them (a JSON array); the metrics keep a copy. */
void metrics_waiting_set(const json_t *waiting);
/* metrics_campaigns_set - the running campaigns' counts, as status_running() returns them
 * (`crier status --json`'s shape): served as crier_campaign_notices; the metrics keep a copy. */
void metrics_campaigns_set(const json_t *statuses);
/* metrics_campaigns_print - the crier_campaign_notices gauge (its HELP and TYPE, then one
 * sample per campaign, channel and state of statuses), label values escaped as the text
 * format asks: what `crier serve` answers on /metrics. */
void metrics_campaigns_print(FILE *out, const json_t *statuses);

/*
 * metrics_start - serve GET /metrics on address ("127.0.0.1:9464", "[::1]:9464"): 0, or
 * a negative errno with a message in err (an address it cannot parse, a port in use).
 * metrics_stop stops it; a no-op when it was not started.
 */
int metrics_start(const char *address, char *err, size_t err_size);
void metrics_stop(void);

#endif
