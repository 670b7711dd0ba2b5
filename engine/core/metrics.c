/*
 * metrics.c - `crier run --metrics ADDR`: Prometheus text format on /metrics, served by
 * libmicrohttpd's own thread. Per channel: notices claimed, sent, failed, retried; lane
 * busy time; claim and record latency histograms. Also: notices in flight, database
 * reconnects, the notices waiting for a channel no live worker serves, and each running
 * campaign's notices by state and channel (crier_campaign_notices, read every few seconds by
 * the main thread with `crier status`'s statement: the tallies, never a count of the
 * notices; `crier serve` prints the same gauges on its own /metrics).
 *
 * It must never slow a lane down: counters are atomics; only the waiting list and the
 * campaign gauges (replaced by the main thread) take a mutex, which the scrape holds for a
 * copy.
 * SECURITY: it serves counters and campaign names, nothing else, to whoever can reach the
 * address: bind it to loopback or a monitoring network.
 */
#include "crier/metrics.h"
#include "crier/httpd.h"
#include "crier/crier.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* latency buckets, seconds (le=) */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define BUCKET_COUNT ARRAY_SIZE(buckets)

struct histogram {
    atomic_ulong le[BUCKET_COUNT]; /* cumulative when printed, per bucket here */
    atomic_ulong count;
    atomic_ullong sum_us;
};

struct channel_metrics {
    atomic_ulong claimed, sent, failed, retried;
    atomic_ullong busy_us; /* lane time spent on batches (claim + send + record) */
    struct histogram claim, record;
};

static struct channel_metrics channels[CHANNEL_COUNT];
static atomic_ulong reconnects;
static long (*in_flight_fn)(void *);
static void *in_flight_data;
static pthread_mutex_t waiting_lock = PTHREAD_MUTEX_INITIALIZER;
static char *waiting_text;   /* the crier_waiting_notices lines, ready to serve */
static char *campaigns_text; /* the crier_campaign_notices lines, under waiting_lock too */
static struct MHD_Daemon *daemon_handle;

static void histogram_add(struct histogram *h, double seconds)
{
    size_t i = 0;
    while (i < BUCKET_COUNT && seconds > buckets[i])
        i++;
    if (i < BUCKET_COUNT)
        atomic_fetch_add(&h->le[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6));
}

void metrics_kinds(enum crier_channel_id channel, const long *kinds, size_t n)
{
    if ((unsigned)channel >= CHANNEL_COUNT)
        return;
    struct channel_metrics *m = &channels[channel];
    atomic_fetch_add(&m->claimed, n);
    atomic_fetch_add(&m->sent, kinds[OUTCOME_ACCEPTED] + kinds[OUTCOME_DELIVERED]);
    atomic_fetch_add(&m->failed, kinds[OUTCOME_PERMANENT] + kinds[OUTCOME_NO_ADDRESS]);
    atomic_fetch_add(&m->retried, kinds[OUTCOME_TEMPORARY] + kinds[OUTCOME_PENDING]);
}

void metrics_batch(enum crier_channel_id channel, double claim_seconds, double send_seconds,
                   double record_seconds, const struct crier_outcome *outcomes, size_t n)
{
    if ((unsigned)channel >= CHANNEL_COUNT)
        return;
    struct channel_metrics *m = &channels[channel];
    long kinds[METRICS_KINDS] = {0};
    for (size_t i = 0; i < n; i++)
        if ((unsigned)outcomes[i].kind < METRICS_KINDS)
            kinds[outcomes[i].kind]++;
    metrics_kinds(channel, kinds, n);
    double busy = claim_seconds + send_seconds + record_seconds;
    atomic_fetch_add(&m->busy_us, (unsigned long long)(busy * 1e6));
    histogram_add(&m->claim, claim_seconds);
    histogram_add(&m->record, record_seconds);
}

void metrics_reconnect(void)
{
    atomic_fetch_add(&reconnects, 1);
}

void metrics_in_flight_source(long (*in_flight)(void *data), void *data)
{
    in_flight_fn = in_flight;
    in_flight_data = data;
}

/* label_escape - a Prometheus label value: backslash, quote and newline escaped. */
static void label_escape(FILE *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', out);
        if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

/* series - a sample's name and its campaign and channel labels, open for more labels
 * (",state=...") or the closing brace. */
static void series(FILE *out, const char *name, const char *campaign, const char *channel)
{
    fprintf(out, "%s{campaign=\"", name);
    label_escape(out, campaign);
    fputs("\",channel=\"", out);
    label_escape(out, channel);
    fputc('"', out);
}

void metrics_waiting_set(const json_t *waiting)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    size_t i;
    const json_t *row;
    json_array_foreach(waiting, i, row)
    {
        series(out, "crier_waiting_notices", json_string_value(json_object_get(row, "campaign")),
               json_string_value(json_object_get(row, "channel")));
        fprintf(out, "} %lld\n", json_integer_value(json_object_get(row, "notices")));
    }
    fclose(out);
    pthread_mutex_lock(&waiting_lock);
    free(waiting_text);
    waiting_text = text;
    pthread_mutex_unlock(&waiting_lock);
}

static const char campaigns_help[] =
    "# HELP crier_campaign_notices A running campaign's notices by state and channel, as "
    "`crier status --json` counts them (by_channel).\n"
    "# TYPE crier_campaign_notices gauge\n";

/* campaign_lines - one sample per running campaign, channel and state (zeros included, as
 * status prints every state: a series does not vanish when its count reaches 0). */
static void campaign_lines(FILE *out, const json_t *statuses)
{
    size_t i;
    const json_t *status;
    json_array_foreach(statuses, i, status)
    {
        const char *campaign = json_string_value(json_object_get(status, "campaign"));
        const char *channel, *state;
        const json_t *states, *count;
        json_object_foreach((json_t *)json_object_get(status, "by_channel"), channel, states)
        {
            json_object_foreach((json_t *)states, state, count)
            {
                series(out, "crier_campaign_notices", campaign ? campaign : "", channel);
                fputs(",state=\"", out);
                label_escape(out, state);
                fprintf(out, "\"} %" JSON_INTEGER_FORMAT "\n", json_integer_value(count));
            }
        }
    }
}

void metrics_campaigns_print(FILE *out, const json_t *statuses)
{
    fputs(campaigns_help, out);
    campaign_lines(out, statuses);
}

void metrics_campaigns_set(const json_t *statuses)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return;
    campaign_lines(out, statuses);
    fclose(out);
    pthread_mutex_lock(&waiting_lock);
    free(campaigns_text);
    campaigns_text = text;
    pthread_mutex_unlock(&waiting_lock);
}

static void histogram_print(FILE *out, const char *name, const char *channel,
                            const struct histogram *h)
{
    unsigned long cumulative = 0;
    for (size_t i = 0; i < BUCKET_COUNT; i++) {
        cumulative += atomic_load(&h->le[i]);
        fprintf(out, "%s_bucket{channel=\"%s\",le=\"%g\"} %lu\n", name, channel, buckets[i],
                cumulative);
    }
    fprintf(out, "%s_bucket{channel=\"%s\",le=\"+Inf\"} %lu\n", name, channel,
            atomic_load(&h->count));
    fprintf(out, "%s_sum{channel=\"%s\"} %.6f\n", name, channel,
            (double)atomic_load(&h->sum_us) / 1e6);
    fprintf(out, "%s_count{channel=\"%s\"} %lu\n", name, channel, atomic_load(&h->count));
}

/* metrics_text - the whole exposition, freshly read. */
static char *metrics_text(size_t *ret_len)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    /* per channel: a counter or histogram of struct channel_metrics, at offset */
    struct metric_row {
        const char *name, *help;
        size_t offset;
    };
    static const struct metric_row counters[] = {
        {"crier_notices_claimed_total", "Notices claimed by this worker's lanes.",
         offsetof(struct channel_metrics, claimed)},
        {"crier_notices_sent_total", "Notices a channel accepted or delivered.",
         offsetof(struct channel_metrics, sent)},
        {"crier_notices_failed_total", "Notices a channel failed permanently (or no address).",
         offsetof(struct channel_metrics, failed)},
        {"crier_notices_retried_total", "Notices that failed temporarily and will be retried.",
         offsetof(struct channel_metrics, retried)},
    };
    static const struct metric_row histograms[] = {
        {"crier_claim_seconds", "Time to claim a batch.", offsetof(struct channel_metrics, claim)},
        {"crier_record_seconds", "Time to record a batch's outcomes.",
         offsetof(struct channel_metrics, record)},
    };
    for (size_t k = 0; k < ARRAY_SIZE(counters); k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
                counters[k].name);
        for (int c = 0; c < CHANNEL_COUNT; c++) {
            const atomic_ulong *value =
                (const atomic_ulong *)((const char *)&channels[c] + counters[k].offset);
            fprintf(out, "%s{channel=\"%s\"} %lu\n", counters[k].name,
                    channel_id_name((enum crier_channel_id)c), atomic_load(value));
        }
    }
    fputs("# HELP crier_lane_busy_seconds_total Lane time spent claiming, sending and "
          "recording.\n# TYPE crier_lane_busy_seconds_total counter\n",
          out);
    for (int c = 0; c < CHANNEL_COUNT; c++)
        fprintf(out, "crier_lane_busy_seconds_total{channel=\"%s\"} %.6f\n",
                channel_id_name((enum crier_channel_id)c),
                (double)atomic_load(&channels[c].busy_us) / 1e6);
    for (size_t k = 0; k < ARRAY_SIZE(histograms); k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", histograms[k].name, histograms[k].help,
                histograms[k].name);
        for (int c = 0; c < CHANNEL_COUNT; c++)
            histogram_print(
                out, histograms[k].name, channel_id_name((enum crier_channel_id)c),
                (const struct histogram *)((const char *)&channels[c] + histograms[k].offset));
    }
    fprintf(out,
            "# HELP crier_in_flight_notices Notices handed to a channel and not yet recorded.\n"
            "# TYPE crier_in_flight_notices gauge\ncrier_in_flight_notices %ld\n",
            in_flight_fn ? in_flight_fn(in_flight_data) : 0L);
    fprintf(out,
            "# HELP crier_database_reconnects_total Database connections restored.\n"
            "# TYPE crier_database_reconnects_total counter\n"
            "crier_database_reconnects_total %lu\n",
            atomic_load(&reconnects));
    fputs("# HELP crier_waiting_notices Ready notices whose channel no live worker serves "
          "(they wait; crier campaign reroute moves them).\n"
          "# TYPE crier_waiting_notices gauge\n",
          out);
    pthread_mutex_lock(&waiting_lock);
    if (waiting_text)
        fputs(waiting_text, out);
    fputs(campaigns_help, out);
    if (campaigns_text)
        fputs(campaigns_text, out);
    pthread_mutex_unlock(&waiting_lock);
    fclose(out);
    *ret_len = len;
    return text;
}

static enum MHD_Result metrics_answer(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **request_state)
{
    struct MHD_Response *response;
    unsigned status;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char text[] = "only GET\n";
        response =
            MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        static const char text[] = "crier serves /metrics\n";
        response =
            MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    } else {
        size_t len = 0;
        char *text = metrics_text(&len);
        response = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(response, "Content-Type", "text/plain; version=0.0.4");
        status = MHD_HTTP_OK;
    }
    enum MHD_Result r = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return r;
}

int metrics_start(const char *address, char *err, size_t err_size)
{
    struct httpd_address listen;
    int r = httpd_address(address, "--metrics", "127.0.0.1:9464", &listen, err, err_size);
    if (r < 0)
        return r;
    const struct MHD_OptionItem options[] = {
        {MHD_OPTION_CONNECTION_LIMIT, 16, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    daemon_handle = httpd_start(&listen, 0, metrics_answer, NULL, options);
    if (daemon_handle == NULL) {
        snprintf(err, err_size, "--metrics %s: cannot listen (in use, or not an address here)",
                 address);
        return -EADDRINUSE;
    }
    return 0;
}

void metrics_stop(void)
{
    if (daemon_handle)
        MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
    pthread_mutex_lock(&waiting_lock);
    free(waiting_text);
    waiting_text = NULL;
    free(campaigns_text);
    campaigns_text = NULL;
    pthread_mutex_unlock(&waiting_lock);
}
