/*
 * status.c - counts of notices by state and channel, as a table or as JSON.
 *
 * The JSON shape is a contract users' monitoring depends on (DESIGN.md): every state key
 * is present, zeros included. Add keys freely; never rename one.
 */
#include "crier/status.h"
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/hold.h"
#include "crier/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_CHANNEL_MAX      16
#define PROGRESS_WINDOW_MINUTES 15 /* the rate is over this many minutes */

struct channel_counts {
    char name[32];
    long by_state[STATE_COUNT];
};

struct campaign_status {
    char *name, *incident, *state, *policy;
    long total;
    long by_state[STATE_COUNT];
    struct channel_counts channels[STATUS_CHANNEL_MAX];
    size_t channel_count;
    json_t *holds;    /* law-enforcement holds: active count and alerts (hold.c) */
    json_t *progress; /* a named campaign's rate, ETA and per-day counts; NULL for all */
};

static struct channel_counts *channel_slot(struct campaign_status *s, const char *name)
{
    for (size_t i = 0; i < s->channel_count; i++)
        if (strcmp(s->channels[i].name, name) == 0)
            return &s->channels[i];
    if (s->channel_count == STATUS_CHANNEL_MAX)
        return NULL;
    struct channel_counts *c = &s->channels[s->channel_count++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

static json_t *states_json(const long *by_state)
{
    json_t *obj = json_object();
    for (int i = 0; i < STATE_COUNT; i++)
        json_object_set_new(obj, notice_state_name((enum crier_notice_state)i),
                            json_integer(by_state[i]));
    return obj;
}

static json_t *status_json(const struct campaign_status *s)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "campaign", json_string(s->name));
    json_object_set_new(obj, "incident", json_string(s->incident));
    json_object_set_new(obj, "state", json_string(s->state));
    json_object_set_new(obj, "total", json_integer(s->total));
    json_object_set_new(obj, "by_state", states_json(s->by_state));
    json_t *channels = json_object();
    for (size_t i = 0; i < s->channel_count; i++)
        json_object_set_new(channels, s->channels[i].name, states_json(s->channels[i].by_state));
    json_object_set_new(obj, "by_channel", channels);
    if (s->holds)
        json_object_set(obj, "holds", s->holds);
    if (s->progress)
        json_object_set(obj, "progress", s->progress);
    return obj;
}

static void status_text(const struct campaign_status *s, FILE *out)
{
    fprintf(out, "campaign %s  incident %s  %s  policy %s  total %ld\n", s->name, s->incident,
            s->state, s->policy, s->total);
    fprintf(out, "  %-14s %10s", "STATE", "ALL");
    for (size_t c = 0; c < s->channel_count; c++)
        fprintf(out, " %10s", s->channels[c].name);
    fputc('\n', out);
    for (int i = 0; i < STATE_COUNT; i++) {
        fprintf(out, "  %-14s %10ld", notice_state_name((enum crier_notice_state)i),
                s->by_state[i]);
        for (size_t c = 0; c < s->channel_count; c++)
            fprintf(out, " %10ld", s->channels[c].by_state[i]);
        fputc('\n', out);
    }
    if (s->holds)
        hold_status_text(s->holds, out);
    if (s->progress) {
        const json_t *p = s->progress;
        fprintf(out, "  rate %.1f notices/min (last %d min)",
                json_real_value(json_object_get(p, "rate_per_minute")), PROGRESS_WINDOW_MINUTES);
        const char *eta = json_string_value(json_object_get(p, "eta"));
        fprintf(out, "  %ld to go  eta %s\n",
                (long)json_integer_value(json_object_get(p, "remaining")), eta ? eta : "-");
    }
}

static void status_clear(struct campaign_status *s)
{
    free(s->name);
    free(s->incident);
    free(s->state);
    free(s->policy);
    json_decref(s->holds);
    json_decref(s->progress);
}

/* The notices that finished, by UTC day: attempts that left 'sending' other than back to
 * 'ready' (handed over, or undeliverable), and people found unreachable without an attempt
 * (no usable contact); how many in the rate's window. One pass over the campaign's log
 * rows (dispatch_log_campaign). */
static const char progress_sql[] =
    "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),"
    " count(*) FILTER (WHERE to_state <> 'undeliverable'),"
    " count(*) FILTER (WHERE to_state = 'undeliverable'),"
    " count(*) FILTER (WHERE at > now() - make_interval(mins => $2::int))"
    " FROM crier.dispatch_log WHERE campaign_id = $1 AND event = 'transition'"
    " AND (from_state = 'sending' AND to_state <> 'ready' OR to_state = 'undeliverable')"
    " GROUP BY 1 ORDER BY 1";

/* status_progress - the rate over the last PROGRESS_WINDOW_MINUTES, what is left to send
 * (ready and sending; held notices wait for a lift, not for the rate), the ETA at that rate
 * (null when nothing moved or the campaign is not running) and the per-day counts. */
static int status_progress(struct crier_db *db, const char *campaign_id, struct campaign_status *s)
{
    char window[16];
    snprintf(window, sizeof(window), "%d", PROGRESS_WINDOW_MINUTES);
    const char *params[] = {campaign_id, window};
    PGresult *res = NULL;
    int r = db_query(db, progress_sql, 2, params, &res);
    if (r < 0)
        return r;
    long recent = 0;
    json_t *days = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        recent += strtol(PQgetvalue(res, i, 3), NULL, 10);
        json_array_append_new(
            days, json_pack("{s:s, s:I, s:I}", "day", PQgetvalue(res, i, 0), "sent",
                            (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10), "undeliverable",
                            (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10)));
    }
    PQclear(res);
    long remaining = s->by_state[STATE_READY] + s->by_state[STATE_SENDING];
    double rate = (double)recent / PROGRESS_WINDOW_MINUTES;
    json_t *eta = json_null(), *eta_seconds = json_null();
    if (rate > 0 && remaining > 0 && strcmp(s->state, "running") == 0) {
        double seconds = (double)remaining / rate * 60.0;
        char secs[32];
        snprintf(secs, sizeof(secs), "%.0f", seconds);
        const char *eta_params[] = {secs};
        /* the instant, in the database's clock as every timestamp of crier is */
        r = db_query(
            db,
            "SELECT to_char((now() AT TIME ZONE 'UTC') + make_interval(secs => $1::float8),"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            1, eta_params, &res);
        if (r < 0) {
            json_decref(days);
            return r;
        }
        if (PQntuples(res) == 1)
            eta = json_string(PQgetvalue(res, 0, 0));
        PQclear(res);
        eta_seconds = json_integer((json_int_t)seconds);
    }
    s->progress =
        json_pack("{s:i, s:I, s:f, s:I, s:o, s:o, s:o}", "window_minutes", PROGRESS_WINDOW_MINUTES,
                  "finished_in_window", (json_int_t)recent, "rate_per_minute", rate, "remaining",
                  (json_int_t)remaining, "eta_seconds", eta_seconds, "eta", eta, "per_day", days);
    return 0;
}

/* status_holds - held is derived: ready notices an active law-enforcement hold covers
 * (hold.c, never stored); the campaign's lapsed and past-review holds come with it. */
static int status_holds(struct crier_db *db, const char *campaign_id, struct campaign_status *s)
{
    PGresult *held = NULL;
    int r = hold_held_by_channel(db, campaign_id, &held);
    if (r < 0)
        return r;
    for (int i = 0; i < PQntuples(held); i++) {
        long count = strtol(PQgetvalue(held, i, 1), NULL, 10);
        s->by_state[STATE_READY] -= count;
        s->by_state[STATE_HELD] += count;
        struct channel_counts *c = channel_slot(s, PQgetvalue(held, i, 0));
        if (c) {
            c->by_state[STATE_READY] -= count;
            c->by_state[STATE_HELD] += count;
        }
    }
    PQclear(held);
    return hold_status_json(db, campaign_id, &s->holds);
}

int status_print(struct crier_db *db, const char *name, bool json, FILE *out)
{
    const char *params[] = {name ? name : ""};
    PGresult *result = NULL;
    /* one row per campaign and (channel, state); campaigns without notices get one row.
     * The counts are the tallies' (006_scale.sql), kept exact by triggers: a few dozen
     * rows to sum, where counting the notices took a second per million. */
    int r = db_query(db,
                     "SELECT c.id, c.name, c.incident, c.state, array_to_string(c.policy, ','),"
                     " t.channel, t.state, t.n"
                     " FROM crier.campaign c LEFT JOIN LATERAL (SELECT channel, state, sum(n) AS n"
                     " FROM crier.notice_tally WHERE campaign_id = c.id GROUP BY 1, 2"
                     " HAVING sum(n) <> 0) t ON true"
                     " WHERE $1 = '' OR c.name = $1 ORDER BY c.id",
                     1, params, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (name && rows == 0) {
        PQclear(result);
        snprintf(db->error, sizeof(db->error), "no campaign named '%s'", name);
        return -ENOENT;
    }
    json_t *array = json ? json_array() : NULL;
    int row = 0;
    while (row < rows) {
        struct campaign_status s = {0};
        const char *id = PQgetvalue(result, row, 0);
        s.name = xstrdup(PQgetvalue(result, row, 1));
        s.incident = xstrdup(PQgetvalue(result, row, 2));
        s.state = xstrdup(PQgetvalue(result, row, 3));
        s.policy = xstrdup(PQgetvalue(result, row, 4));
        char **policy = campaign_policy_from_array(PQgetvalue(result, row, 4));
        for (char **p = policy; *p; p++)
            channel_slot(&s, *p);
        strv_free(policy);
        for (; row < rows && strcmp(PQgetvalue(result, row, 0), id) == 0; row++) {
            if (PQgetisnull(result, row, 6))
                continue;
            enum crier_notice_state state;
            if (notice_state_from_name(PQgetvalue(result, row, 6), &state) < 0)
                continue;
            long count = strtol(PQgetvalue(result, row, 7), NULL, 10);
            s.total += count;
            s.by_state[state] += count;
            struct channel_counts *c = channel_slot(&s, PQgetvalue(result, row, 5));
            if (c)
                c->by_state[state] += count;
        }
        r = status_holds(db, id, &s);
        if (r == 0 && name)
            r = status_progress(db, id, &s);
        if (r < 0) {
            status_clear(&s);
            PQclear(result);
            json_decref(array);
            return r;
        }
        if (json)
            json_array_append_new(array, status_json(&s));
        else
            status_text(&s, out);
        status_clear(&s);
    }
    PQclear(result);
    if (json) {
        json_t *printed = name ? json_array_get(array, 0) : array;
        json_dumpf(printed, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(array);
    }
    fflush(out);
    return 0;
}
