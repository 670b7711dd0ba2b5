/*
 * status.c - counts of notices by state and channel, as a table or as JSON.
 *
 * The JSON shape is a contract users' monitoring depends on (DESIGN.md): every state key
 * is present, zeros included. Add keys freely; never rename one.
 */
#include "crier/status.h"
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/find_index.h"
#include "crier/hold.h"
#include "crier/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_WINDOW_MINUTES 15 /* the rate is over this many minutes */

struct campaign_status {
    char *name, *incident, *state, *policy;
    long total;
    long by_state[STATE_COUNT];
    struct channel_counts channels[CHANNEL_COUNTS_MAX];
    size_t channel_count;
    json_t *holds;    /* law-enforcement holds: active count and alerts (hold.c) */
    json_t *progress; /* a named campaign's rate, ETA and per-day counts; NULL for all */
    long find_missing, find_building; /* `audit find` indexes (find_index.h), named only */
    bool find_known;
};

struct channel_counts *channel_counts_slot(struct channel_counts *list, size_t *count,
                                           const char *name)
{
    for (size_t i = 0; i < *count; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    if (*count == CHANNEL_COUNTS_MAX)
        return NULL;
    struct channel_counts *c = &list[(*count)++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

static struct channel_counts *channel_slot(struct campaign_status *s, const char *name)
{
    return channel_counts_slot(s->channels, &s->channel_count, name);
}

json_t *states_json(const long by_state[STATE_COUNT])
{
    json_t *obj = json_object();
    for (int i = 0; i < STATE_COUNT; i++)
        json_object_set_new(obj, notice_state_name((enum crier_notice_state)i),
                            json_integer(by_state[i]));
    return obj;
}

void counts_json(json_t *o, long total, const long by_state[STATE_COUNT],
                 const struct channel_counts *channels, size_t channel_count)
{
    json_object_set_new(o, "total", json_integer(total));
    json_object_set_new(o, "by_state", states_json(by_state));
    json_t *by_channel = json_object();
    for (size_t i = 0; i < channel_count; i++)
        json_object_set_new(by_channel, channels[i].name, states_json(channels[i].by_state));
    json_object_set_new(o, "by_channel", by_channel);
}

static json_t *status_json(const struct campaign_status *s)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "campaign", json_string(s->name));
    json_object_set_new(obj, "incident", json_string(s->incident));
    json_object_set_new(obj, "state", json_string(s->state));
    counts_json(obj, s->total, s->by_state, s->channels, s->channel_count);
    if (s->holds)
        json_object_set(obj, "holds", s->holds);
    if (s->progress)
        json_object_set(obj, "progress", s->progress);
    if (s->find_known)
        json_object_set_new(obj, "find_indexes",
                            json_pack("{s:I, s:I}", "missing", (json_int_t)s->find_missing,
                                      "building", (json_int_t)s->find_building));
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
        fprintf(out, "  rate %.1f notices/min (the last %lld s)",
                json_real_value(json_object_get(p, "rate_per_minute")),
                (long long)json_integer_value(json_object_get(p, "rate_seconds")));
        const char *eta = json_string_value(json_object_get(p, "eta"));
        fprintf(out, "  %ld to go  eta %s\n",
                (long)json_integer_value(json_object_get(p, "remaining")), eta ? eta : "-");
    }
    if (s->find_missing > 0) /* the load committed its rows; `audit find` is only slower */
        fprintf(out, "  find indexes: %ld missing, %ld of them being built%s\n", s->find_missing,
                s->find_building,
                s->find_building < s->find_missing ? " (crier db migrate builds the rest)" : "");
}

static void status_clear(struct campaign_status *s)
{
    FREE_MANY(s->name, s->incident, s->state, s->policy);
    json_decref(s->holds);
    json_decref(s->progress);
}

/* The notices that finished, by UTC day: attempts that left 'sending' other than back to
 * 'ready' (handed over, or undeliverable), and people found unreachable without an attempt
 * (no usable contact). progress_tally counts them as the log is written (017_status.sql):
 * a few rows a day, never the campaign's log. */
static const char per_day_sql[] =
    "SELECT to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD'), sum(sent), sum(undeliverable)"
    " FROM crier.progress_tally WHERE campaign_id = $1 GROUP BY 1"
    " HAVING sum(sent) + sum(undeliverable) > 0 ORDER BY 1";

/* The rate: the finished attempts of the minutes that overlap the window, over the seconds
 * since the first of them (so the count and the span cover the same time, and a campaign
 * in its first minute is not spread over the whole minute), read from the same tally: its
 * rows of the last minutes, however large the campaign. */
static const char rate_sql[] =
    "SELECT coalesce(sum(attempts), 0),"
    " coalesce(extract(epoch FROM now() - min(first_at)), 0) FROM crier.progress_tally"
    " WHERE campaign_id = $1 AND attempts > 0"
    " AND minute > now() - make_interval(mins => $2::int + 1)";

static int per_day_read(struct crier_db *db, const char *campaign_id, json_t **ret_days)
{
    const char *params[] = {campaign_id};
    PGresult *res = NULL;
    int r = db_query(db, per_day_sql, 1, params, &res);
    if (r < 0)
        return r;
    json_t *days = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(
            days, json_pack("{s:s, s:I, s:I}", "day", PQgetvalue(res, i, 0), "sent",
                            (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10), "undeliverable",
                            (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10)));
    PQclear(res);
    *ret_days = days;
    return 0;
}

/* eta_at - now + seconds, in the database's clock as every timestamp of crier is. */
static json_t *eta_at(struct crier_db *db, double seconds)
{
    char secs[32];
    snprintf(secs, sizeof(secs), "%.0f", seconds);
    const char *params[] = {secs};
    PGresult *res = NULL;
    if (db_query(db,
                 "SELECT to_char((now() AT TIME ZONE 'UTC') + make_interval(secs => $1::float8),"
                 " " DB_TIME_S ")",
                 1, params, &res) < 0)
        return json_null();
    json_t *eta = PQntuples(res) == 1 ? json_string(PQgetvalue(res, 0, 0)) : json_null();
    PQclear(res);
    return eta;
}

/* status_progress - the rate (the attempts finished in the minutes that overlap the last
 * PROGRESS_WINDOW_MINUTES, over the time since the first of them), what is left to send
 * (ready and sending; held notices wait for a lift, not for the rate), the ETA at that rate
 * (null when nothing moved or the campaign is not running) and the per-day counts. */
static int status_progress(struct crier_db *db, const char *campaign_id, struct campaign_status *s)
{
    const char *params[] = {campaign_id, DB_NUM(PROGRESS_WINDOW_MINUTES)};
    PGresult *res = NULL;
    int r = db_query(db, rate_sql, 2, params, &res);
    if (r < 0)
        return r;
    long sampled = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    double span = strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);
    /* nothing finished: 0 over the window; else over the span the count covers (>= 1 s) */
    double over = sampled == 0 ? PROGRESS_WINDOW_MINUTES * 60.0 : span > 1 ? span : 1.0;
    double rate = (double)sampled / over * 60.0;
    json_t *days = NULL;
    if ((r = per_day_read(db, campaign_id, &days)) < 0)
        return r;
    long remaining = s->by_state[STATE_READY] + s->by_state[STATE_SENDING];
    json_t *eta = json_null(), *eta_seconds = json_null();
    if (rate > 0 && remaining > 0 && strcmp(s->state, "running") == 0) {
        double seconds = (double)remaining / rate * 60.0;
        json_decref(eta);
        eta = eta_at(db, seconds);
        eta_seconds = json_integer((json_int_t)seconds);
    }
    s->progress =
        json_pack("{s:i, s:I, s:I, s:f, s:I, s:o, s:o, s:o}", "window_minutes",
                  PROGRESS_WINDOW_MINUTES, "rate_sample", (json_int_t)sampled, "rate_seconds",
                  (json_int_t)over, "rate_per_minute", rate, "remaining", (json_int_t)remaining,
                  "eta_seconds", eta_seconds, "eta", eta, "per_day", days);
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

/* status_each - the named campaign, or every campaign (campaign_state: only those in that
 * state; "" every one): each printed to out as text, or appended to array in the --json
 * shape. The named campaign's progress is read too. -ENOENT: the named one does not exist. */
static int status_each(struct crier_db *db, const char *name, const char *campaign_state, FILE *out,
                       json_t *array)
{
    const char *params[] = {name ? name : "", campaign_state};
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
                     " WHERE ($1 = '' OR c.name = $1) AND ($2 = '' OR c.state = $2) ORDER BY c.id",
                     2, params, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (name && rows == 0) {
        PQclear(result);
        snprintf(db->error, sizeof(db->error), "no campaign named '%s'", name);
        return -ENOENT;
    }
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
        if (r == 0 && name) {
            r = find_index_missing(db, strtoll(id, NULL, 10), &s.find_missing, &s.find_building);
            s.find_known = r == 0;
        }
        if (r == 0 && array)
            json_array_append_new(array, status_json(&s));
        else if (r == 0)
            status_text(&s, out);
        status_clear(&s);
        if (r < 0)
            break;
    }
    PQclear(result);
    return r;
}

int status_print(struct crier_db *db, const char *name, bool json, FILE *out)
{
    json_t *array = json ? json_array() : NULL;
    int r = status_each(db, name, "", out, array);
    if (r == 0 && json) {
        json_t *printed = name ? json_array_get(array, 0) : array;
        json_dumpf(printed, out, JSON_INDENT(2));
        fputc('\n', out);
    }
    json_decref(array);
    fflush(out);
    return r;
}

int status_running(struct crier_db *db, json_t **ret_array)
{
    json_t *array = json_array();
    int r = status_each(db, NULL, "running", NULL, array);
    if (r < 0) {
        json_decref(array);
        return r;
    }
    *ret_array = array;
    return 0;
}
