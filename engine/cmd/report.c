/*
 * report.c - `crier audit report`: counts by channel, state and jurisdiction; the people
 * who could not be reached and why; each person's timeliness against a per-jurisdiction
 * deadline table, with lawful hold periods kept apart; regulator thresholds and the
 * substitute-notice trigger. Text tables, one JSON object, or one self-contained HTML file.
 *
 * Everything is read in one REPEATABLE READ READ ONLY transaction, so every figure comes
 * from the same snapshot and the report cannot write: an auditor's role needs SELECT only
 * (docs/audit-report.md lists what it reads). The people are streamed through a cursor and
 * folded into per-jurisdiction, per-channel and per-day counters as they pass; only the
 * lists (late, overdue, undeliverable) keep people, and only up to a limit: memory does
 * not grow with the campaign.
 *
 * Must never write to the database, and never decide what the law is: the rules table is
 * data (config/jurisdictions.yaml, engine/core/rules.c), reported with its caveat; what it does
 * not know is reported as unknown, never as "not required".
 *
 * SECURITY: names, refs, regions and reasons come from the affected-individual list and
 * from transports (untrusted); in HTML every one is escaped (html_text), and the HTML file
 * loads nothing from anywhere (a Content-Security-Policy of default-src 'none' says so).
 */
#include "crier/report.h"
#include "crier/campaign.h"
#include "crier/config.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/hold.h"
#include "crier/html.h"
#include "crier/policy.h"
#include "crier/progress.h"
#include "crier/rules.h"
#include "crier/status.h"
#include "crier/substitute.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>

#define FETCH_ROWS      10000 /* rows per FETCH from the cursor */
#define DAY_SECONDS     86400.0
#define UNKNOWN_COUNSEL "unknown \xe2\x80\x94 check counsel"

/* ---- the report's state ----------------------------------------------------------------- */

struct hold_period {
    long id;
    char *region, *ref; /* scope: neither = the whole campaign */
    char *form, *authority, *case_ref, *placed_at, *lifted_at;
    double from, until; /* the lawful period: placed to lift, lapse or now */
    double lifted;      /* when it was lifted (law enforcement's clearance), or NAN */
    bool active, lapsed;
};

/* The timeliness counts the campaign and each jurisdiction keep (a person counts in both),
 * and their names in the model. */
enum tally_count { NOTIFIED, ON_TIME, LATE, OVERDUE, PENDING, NO_DEADLINE, DELAYED, TALLIES };
static const char *const tally_names[TALLIES] = {
    "notified",    "on_time",         "late", "overdue_not_notified", "pending_within_deadline",
    "no_deadline", "delayed_by_holds"};
#define COUNTED(r, s, count) ((r)->tally[count]++, (s)->tally[count]++)

struct region_stats {
    char *code;                  /* "CA", "GDPR", "country XX", or "unknown" */
    const struct rules_entry *j; /* its entry in the rules table, or NULL */
    int deadline_days;           /* the shortest deadline that applies, -1: none */
    char deadline_source[64];    /* "CA", "HIPAA", "no fixed day count", "not in the table" */
    long people, by_state[STATE_COUNT];
    long tally[TALLIES];
    long no_contact;
    long day_max, day_sum, timed;         /* over the people notified, with a logged time */
    double first_notified, last_notified; /* hand-offs of its people: NAN when none */
};

struct chart_day {
    long day;                        /* days since the epoch (UTC) */
    long counts[CHANNEL_COUNTS_MAX]; /* by channel, as in report.channels */
};

struct person_list {
    json_t *people; /* up to the limit */
    long count;     /* all of them */
};

struct report {
    const struct report_options *options;
    struct rules_table *table;
    const struct rules_entry *frameworks[8]; /* that apply to this campaign */
    bool oral_lapse;                         /* an oral hold lapses: a framework that has the
                                              * rule applies (HIPAA), or report.oral_lapse */
    size_t framework_count;
    char *campaign_id, *name, *incident, *state, *policy;
    char *discovered, *discovered_source; /* NULL when unknown */
    double discovered_at;                 /* its 00:00 UTC, epoch seconds */
    double now;
    char now_text[32];
    struct hold_period *holds;
    size_t hold_count;
    struct region_stats *regions;
    size_t region_count, region_capacity;
    struct channel_counts channels[CHANNEL_COUNTS_MAX];
    size_t channel_count;
    struct chart_day *days;
    size_t day_count, day_capacity;
    long total, by_state[STATE_COUNT];
    long tally[TALLIES];
    long time_unknown; /* notified, with no logged time */
    long undeliverable, returned, no_contact;
    struct person_list late_people, overdue_people;
    json_t *filings; /* `crier regulators mark-filed` rows: "filed CODE NAME on ..." */
};

static void report_clear(struct report *r)
{
    rules_free(r->table);
    FREE_MANY(r->campaign_id, r->name, r->incident, r->state, r->policy, r->discovered,
              r->discovered_source);
    for (size_t i = 0; i < r->hold_count; i++) {
        struct hold_period *h = &r->holds[i];
        FREE_MANY(h->region, h->ref, h->form, h->authority, h->case_ref, h->placed_at,
                  h->lifted_at);
    }
    free(r->holds);
    for (size_t i = 0; i < r->region_count; i++)
        free(r->regions[i].code);
    free(r->regions);
    free(r->days);
    json_decref(r->late_people.people);
    json_decref(r->filings);
    json_decref(r->overdue_people.people);
}

static void iso_time(double epoch, char *out, size_t size)
{
    time_t t = (time_t)floor(epoch);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void iso_day(long day, char *out, size_t size)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d", &tm);
}

/* date_parse - "YYYY-MM-DD" into its 00:00 UTC. */
static int date_parse(const char *text, double *ret_epoch)
{
    struct tm tm = {0};
    const char *end = text ? strptime(text, "%Y-%m-%d", &tm) : NULL;
    if (end == NULL || *end != '\0' || strlen(text) != 10)
        return -EINVAL;
    *ret_epoch = (double)timegm(&tm);
    return 0;
}

static struct channel_counts *channel_slot(struct report *r, const char *name)
{
    return channel_counts_slot(r->channels, &r->channel_count, name);
}

/* entry_days - an entry's individual deadline in days, or -1 (none fixed, or unknown). */
static int entry_days(const struct rules_entry *e)
{
    if (e == NULL || !e->individual_known || e->individual.unit != PERIOD_DAYS)
        return -1;
    return (int)e->individual.amount;
}

/* region_deadline - the shortest deadline that applies to a region's people. */
static void region_deadline(const struct report *r, struct region_stats *s)
{
    s->deadline_days = -1;
    snprintf(s->deadline_source, sizeof(s->deadline_source), "%s",
             s->j == NULL                                     ? "not in the table"
             : !s->j->individual_known                        ? "unknown"
             : s->j->individual.unit == PERIOD_NO_FIXED_COUNT ? "no fixed day count"
                                                              : "unknown");
    if (entry_days(s->j) >= 0) {
        s->deadline_days = entry_days(s->j);
        snprintf(s->deadline_source, sizeof(s->deadline_source), "%s", s->j->code);
    }
    for (size_t i = 0; i < r->framework_count; i++) {
        const struct rules_entry *f = r->frameworks[i];
        if (entry_days(f) >= 0 && (s->deadline_days < 0 || entry_days(f) < s->deadline_days)) {
            s->deadline_days = entry_days(f);
            snprintf(s->deadline_source, sizeof(s->deadline_source), "%s", f->code);
        }
    }
}

/* region_entry - the rules entry of a jurisdiction key: a US region, a territory given as
 * the country, or the abroad entry of the country. */
static const struct rules_entry *region_entry(const struct report *r, const char *code)
{
    if (strncmp(code, "country ", 8) == 0)
        return rules_find_country(r->table, code + 8);
    const struct rules_entry *e = rules_find(r->table, SECTION_JURISDICTION, code);
    return e ? e : rules_find(r->table, SECTION_ABROAD, code);
}

static struct region_stats *region_slot(struct report *r, const char *code)
{
    for (size_t i = 0; i < r->region_count; i++)
        if (strcmp(r->regions[i].code, code) == 0)
            return &r->regions[i];
    if (r->region_count == r->region_capacity) {
        r->region_capacity = r->region_capacity ? r->region_capacity * 2 : 64;
        r->regions = xreallocarray(r->regions, r->region_capacity, sizeof(*r->regions));
    }
    struct region_stats *s = &r->regions[r->region_count++];
    memset(s, 0, sizeof(*s));
    s->code = xstrdup(code);
    s->j = region_entry(r, code);
    s->first_notified = s->last_notified = NAN;
    region_deadline(r, s);
    return s;
}

static struct chart_day *day_slot(struct report *r, long day)
{
    size_t low = 0, high = r->day_count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (r->days[mid].day < day)
            low = mid + 1;
        else
            high = mid;
    }
    if (low < r->day_count && r->days[low].day == day)
        return &r->days[low];
    if (r->day_count == r->day_capacity) {
        r->day_capacity = r->day_capacity ? r->day_capacity * 2 : 64;
        r->days = xreallocarray(r->days, r->day_capacity, sizeof(*r->days));
    }
    memmove(&r->days[low + 1], &r->days[low], (r->day_count - low) * sizeof(*r->days));
    r->day_count++;
    memset(&r->days[low], 0, sizeof(*r->days));
    r->days[low].day = day;
    return &r->days[low];
}

/* hold_covers - as crier.hold_covers(): the whole campaign, the region, or the ref. */
static bool hold_covers(const struct hold_period *h, const char *region_upper, const char *ref)
{
    if (h->region == NULL && h->ref == NULL)
        return true;
    if (h->region)
        return region_upper && strcmp(h->region, region_upper) == 0;
    return strcmp(h->ref, ref) == 0;
}

/* held_seconds - the union of the lawful periods of the holds covering a person, within
 * [from, until]: overlapping holds count once. */
static double held_seconds(const struct report *r, const char *region_upper, const char *ref,
                           double from, double until, bool *ret_active)
{
    double starts[64], ends[64];
    size_t n = 0;
    *ret_active = false;
    for (size_t i = 0; i < r->hold_count && n < ARRAY_SIZE(starts); i++) {
        const struct hold_period *h = &r->holds[i];
        if (!hold_covers(h, region_upper, ref))
            continue;
        if (h->active)
            *ret_active = true;
        double a = h->from > from ? h->from : from, b = h->until < until ? h->until : until;
        if (b <= a)
            continue;
        size_t k = n++; /* insertion sort by start: a handful of holds */
        while (k > 0 && starts[k - 1] > a) {
            starts[k] = starts[k - 1];
            ends[k] = ends[k - 1];
            k--;
        }
        starts[k] = a;
        ends[k] = b;
    }
    double total = 0, cur_start = 0, cur_end = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (starts[i] > cur_end) {
            if (cur_end > cur_start)
                total += cur_end - cur_start;
            cur_start = starts[i];
            cur_end = ends[i];
        } else if (ends[i] > cur_end) {
            cur_end = ends[i];
        }
    }
    if (n > 0 && cur_end > cur_start)
        total += cur_end - cur_start;
    return total;
}

static void list_add(struct person_list *list, long limit, json_t *person)
{
    list->count++;
    if ((long)json_array_size(list->people) < limit)
        json_array_append_new(list->people, person);
    else
        json_decref(person);
}

static json_t *person_json(const char *ref, const char *name, const char *region, const char *state,
                           const char *channel, long day, const struct region_stats *s, double held,
                           double notified_at)
{
    json_t *p = json_object();
    json_object_set_new(p, "ref", json_string(ref));
    json_object_set_new(p, "name", json_string(name));
    json_object_set_new(p, "region", json_string(region));
    json_object_set_new(p, "state", json_string(state));
    json_object_set_new(p, "channel", json_string(channel));
    json_object_set_new(p, "days", json_integer(day));
    json_object_set_new(p, "deadline_days", json_integer(s->deadline_days));
    json_object_set_new(p, "deadline_from", json_string(s->deadline_source));
    json_object_set_new(p, "held_days", json_real(round(held / DAY_SECONDS * 100) / 100));
    if (!isnan(notified_at)) {
        char at[32];
        iso_time(notified_at, at, sizeof(at));
        json_object_set_new(p, "notified_at", json_string(at));
    }
    return p;
}

/* One person's row of the cursor, as person_account reads it. */
struct person_row {
    const char *ref, *name, *region, *region_upper, *state_name, *channel, *country;
    double ok_at; /* when notified (NAN: not, or the log lacks it) */
    bool returned, notified;
    enum crier_notice_state state;
    double end, held; /* when the clock stopped; seconds of it under a hold */
};

/* person_jurisdiction - where a person counts: the region of a US resident; a territory
 * or a country abroad by the country (GDPR, PIPEDA by the entry that lists it). */
static const char *person_jurisdiction(const struct report *r, const struct person_row *p,
                                       char *abroad, size_t abroad_size)
{
    const char *country = p->country;
    if (country[0] == '\0' || strcmp(country, "US") == 0)
        return p->region;
    /* the territories with an ISO code of their own are jurisdictions of the table; any
     * other country is the abroad entry that lists it (DE is Germany, not Delaware) */
    bool territory =
        strcmp(country, "PR") == 0 || strcmp(country, "GU") == 0 || strcmp(country, "VI") == 0;
    const struct rules_entry *e = territory ? rules_find(r->table, SECTION_JURISDICTION, country)
                                            : rules_find_country(r->table, country);
    snprintf(abroad, abroad_size, "%s", e ? e->code : "");
    if (e == NULL)
        snprintf(abroad, abroad_size, "country %.8s", country);
    return abroad;
}

/* person_states - the counts by state, contact and hold, and a notified person's day in
 * the chart; false when the person is notified but the log lacks the time. */
static bool person_states(struct report *r, struct region_stats *s, struct channel_counts *c,
                          const struct person_row *p)
{
    enum crier_notice_state state = p->state;
    r->total++;
    r->by_state[state]++;
    s->people++;
    s->by_state[state]++;
    if (c)
        c->by_state[state]++;
    if (state == STATE_UNDELIVERABLE)
        r->undeliverable++;
    if (p->returned && state == STATE_MAILED)
        r->returned++;
    if (state == STATE_UNDELIVERABLE || (p->returned && state == STATE_MAILED)) {
        r->no_contact++;
        s->no_contact++;
    }
    if (p->held > 0) {
        COUNTED(r, s, DELAYED);
    }
    if (!p->notified)
        return true;
    COUNTED(r, s, NOTIFIED);
    if (isnan(p->ok_at)) {
        r->time_unknown++; /* a final state without its log row: the record is short */
        return false;
    }
    if (isnan(s->last_notified) || p->ok_at > s->last_notified)
        s->last_notified = p->ok_at;
    if (isnan(s->first_notified) || p->ok_at < s->first_notified)
        s->first_notified = p->ok_at;
    struct chart_day *d = day_slot(r, (long)floor(p->ok_at / DAY_SECONDS));
    if (c)
        d->counts[c - r->channels]++;
    return true;
}

/* person_timeliness - the days from discovery, less those under a hold, against the
 * region's deadline: late, on time, overdue or pending. */
static void person_timeliness(struct report *r, struct region_stats *s, const struct person_row *p)
{
    long day = (long)floor((p->end - r->discovered_at - p->held) / DAY_SECONDS);
    if (p->notified) {
        s->day_sum += day;
        if (s->timed++ == 0 || day > s->day_max)
            s->day_max = day;
    }
    if (s->deadline_days < 0) {
        COUNTED(r, s, NO_DEADLINE);
        return;
    }
    bool past = day > s->deadline_days;
    long limit = r->options->list_limit;
    if (p->notified && past) {
        COUNTED(r, s, LATE);
        list_add(&r->late_people, limit,
                 person_json(p->ref, p->name, p->region, p->state_name, p->channel, day, s, p->held,
                             p->ok_at));
    } else if (p->notified) {
        COUNTED(r, s, ON_TIME);
    } else if (past) {
        COUNTED(r, s, OVERDUE);
        list_add(&r->overdue_people, limit,
                 person_json(p->ref, p->name, p->region, notice_state_name(p->state), p->channel,
                             day, s, p->held, NAN));
    } else {
        COUNTED(r, s, PENDING);
    }
}

/* person_account - one person's row from the cursor, into every counter. */
static void person_account(struct report *r, PGresult *rows, int i)
{
    struct person_row p = {
        .ref = PQgetvalue(rows, i, 0),
        .name = PQgetvalue(rows, i, 1),
        .region = PQgetvalue(rows, i, 2),
        .region_upper = db_value(rows, i, 3),
        .state_name = PQgetvalue(rows, i, 4),
        .channel = PQgetvalue(rows, i, 5),
        .ok_at = PQgetisnull(rows, i, 6) ? NAN : strtod(PQgetvalue(rows, i, 6), NULL),
        .returned = PQgetvalue(rows, i, 7)[0] == 't',
        .country = PQgetvalue(rows, i, 8),
    };
    if (notice_state_from_name(p.state_name, &p.state) < 0)
        return; /* the CHECK constraint allows no other */
    p.notified = p.state == STATE_SENT || p.state == STATE_DELIVERED || p.state == STATE_MAILED;
    p.end = p.notified && !isnan(p.ok_at) ? p.ok_at : r->now;
    bool hold_active = false;
    if (r->hold_count > 0) {
        double from = r->discovered ? r->discovered_at : -INFINITY;
        p.held = held_seconds(r, p.region_upper, p.ref, from, p.end, &hold_active);
    }
    if (p.state == STATE_READY && hold_active)
        p.state = STATE_HELD; /* derived, as crier status does: never stored */
    char abroad[64];
    struct region_stats *s = region_slot(r, person_jurisdiction(r, &p, abroad, sizeof(abroad)));
    struct channel_counts *c = channel_slot(r, p.channel);
    if (!person_states(r, s, c, &p))
        return;
    if (r->discovered == NULL)
        return; /* no clock to measure against */
    person_timeliness(r, s, &p);
}

/* ---- reading ------------------------------------------------------------------------------ */

static int read_campaign(struct crier_db *db, struct report *r, char *err, size_t err_size)
{
    PGresult *res = NULL;
    int rc = campaign_row(db,
                          "SELECT id, name, incident, state, array_to_string(policy, ','),"
                          " meta->>'discovered_date',"
                          " " CAMPAIGN_FRAMEWORKS_SQL ","
                          " extract(epoch FROM now())"
                          " FROM crier.campaign WHERE name = $1",
                          r->options->campaign, "reading the campaign", &res, err, err_size);
    if (rc < 0)
        return rc;
    r->campaign_id = xstrdup(PQgetvalue(res, 0, 0));
    r->name = xstrdup(PQgetvalue(res, 0, 1));
    r->incident = xstrdup(PQgetvalue(res, 0, 2));
    r->state = xstrdup(PQgetvalue(res, 0, 3));
    r->policy = xstrdup(PQgetvalue(res, 0, 4));
    r->now = strtod(PQgetvalue(res, 0, 7), NULL);
    iso_time(r->now, r->now_text, sizeof(r->now_text));
    const char *meta_date = db_value(res, 0, 5);
    const char *date = r->options->discovered ? r->options->discovered : meta_date;
    rc = 0;
    if (date) {
        if (date_parse(date, &r->discovered_at) < 0)
            rc = error_set(
                err, err_size, -EINVAL, "the discovery date '%s' (%s) is not YYYY-MM-DD", date,
                r->options->discovered ? "--discovered" : "campaign meta discovered_date");
        r->discovered = xstrdup(date);
        r->discovered_source =
            xstrdup(r->options->discovered ? "--discovered" : "campaign meta discovered_date");
    }
    const char *frameworks = r->options->frameworks;
    if (frameworks == NULL && !PQgetisnull(res, 0, 6))
        frameworks = PQgetvalue(res, 0, 6);
    if (rc == 0 && frameworks) {
        char *copy = xstrdup(frameworks), *save = NULL;
        for (char *word = strtok_r(copy, ", ", &save); word; word = strtok_r(NULL, ", ", &save)) {
            const struct rules_entry *f = rules_find(r->table, SECTION_FRAMEWORK, word);
            if (f == NULL) {
                rc = error_set(err, err_size, -EINVAL,
                               "framework '%s' is not in the rules table %s", word, r->table->path);
                break;
            }
            if (f->oral_lapse_days >= 0)
                r->oral_lapse = true; /* HIPAA's 45 CFR 164.412(b) */
            if (r->framework_count < ARRAY_SIZE(r->frameworks))
                r->frameworks[r->framework_count++] = f;
        }
        free(copy);
    }
    /* the campaign's policy fixes the order of the channel columns */
    char **policy = campaign_policy_from_array(PQgetvalue(res, 0, 4));
    for (char **p = policy; p && *p; p++)
        channel_slot(r, *p);
    strv_free(policy);
    PQclear(res);
    return rc;
}

static int read_holds(struct crier_db *db, struct report *r, char *err, size_t err_size)
{
    const char *params[] = {r->campaign_id, hold_release_lapsed_param(),
                            r->oral_lapse || r->options->oral_lapse_everywhere ? "t" : "f"};
    PGresult *res = NULL;
    /* the lawful period ends at the lift, or now; or at an oral hold's lapse (30 days unless
     * confirmed in writing) where that rule applies: HIPAA's (45 CFR 164.412(b)), so only when
     * the campaign declares a framework with the rule, or report.oral_lapse: everywhere. The
     * lapse is the report's own decision ($3), which --framework may override, not
     * hold_state's lapses_at, which follows the campaign meta alone (009_oral_lapse.sql). */
    int rc = db_query(db,
                      "SELECT s.id, s.region, s.recipient_ref, s.form, h.authority, h.case_ref,"
                      " to_char(s.placed_at, " DB_TIME_S "),"
                      " to_char(s.lifted_at, " DB_TIME_S "),"
                      " extract(epoch FROM s.placed_at),"
                      " extract(epoch FROM least(coalesce(s.lifted_at, now()),"
                      " coalesce(x.lapses_at, 'infinity'))), s.active,"
                      " coalesce(coalesce(s.lifted_at, now()) >= x.lapses_at, false),"
                      " extract(epoch FROM s.lifted_at)"
                      " FROM crier.hold_state($2::boolean) s JOIN crier.hold h ON h.id = s.id"
                      " CROSS JOIN LATERAL (SELECT CASE WHEN $3::boolean AND s.form = 'oral'"
                      "  AND s.confirmed_at IS NULL THEN s.placed_at + interval '720 hours' END"
                      "  AS lapses_at) x"
                      " WHERE s.campaign_id = $1 ORDER BY s.id",
                      3, params, &res);
    if (rc < 0)
        return error_set(err, err_size, rc, "reading the holds: %s", db->error);
    int n = PQntuples(res);
    r->holds = xcalloc((size_t)n + 1, sizeof(*r->holds));
    for (int i = 0; i < n; i++) {
        struct hold_period *h = &r->holds[r->hold_count++];
        h->id = strtol(PQgetvalue(res, i, 0), NULL, 10);
        h->region = PQgetisnull(res, i, 1) ? NULL : xstrdup(PQgetvalue(res, i, 1));
        h->ref = PQgetisnull(res, i, 2) ? NULL : xstrdup(PQgetvalue(res, i, 2));
        h->form = xstrdup(PQgetvalue(res, i, 3));
        h->authority = xstrdup(PQgetvalue(res, i, 4));
        h->case_ref = xstrdup(PQgetvalue(res, i, 5));
        h->placed_at = xstrdup(PQgetvalue(res, i, 6));
        h->lifted_at = PQgetisnull(res, i, 7) ? NULL : xstrdup(PQgetvalue(res, i, 7));
        h->from = strtod(PQgetvalue(res, i, 8), NULL);
        h->until = strtod(PQgetvalue(res, i, 9), NULL);
        h->active = PQgetvalue(res, i, 10)[0] == 't';
        h->lapsed = PQgetvalue(res, i, 11)[0] == 't';
        h->lifted = PQgetisnull(res, i, 12) ? NAN : strtod(PQgetvalue(res, i, 12), NULL);
    }
    PQclear(res);
    return 0;
}

/* read_people - every notice of the campaign with its person and its first successful
 * hand-off on the channel it ended on, through a cursor. */
struct people_walk {
    struct report *r;
    struct progress *bar;
};

/* people_batch - a batch of people from the cursor, into every counter. */
static int people_batch(void *data, PGresult *rows)
{
    struct people_walk *walk = data;
    int n = PQntuples(rows);
    for (int i = 0; i < n; i++)
        person_account(walk->r, rows, i);
    progress_add(walk->bar, n);
    return 0;
}

static int read_people(struct crier_db *db, struct report *r, char *err, size_t err_size)
{
    const char *params[] = {r->campaign_id};
    /* the hand-off: email sent, fax delivered, letter mailed (the day the post office
     * accepted the batch, from the batch's log row; else the row's time) */
    int rc = db_exec(
        db,
        "DECLARE report_people NO SCROLL CURSOR FOR"
        " SELECT r.ref, r.name, coalesce(nullif(upper(btrim(r.region)), ''), 'unknown'),"
        " upper(r.region), n.state, n.channel, extract(epoch FROM l.ok_at),"
        " coalesce(l.returned, false), upper(btrim(r.country))"
        " FROM crier.notice n"
        " JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
        " LEFT JOIN (SELECT d.notice_id, d.channel,"
        "  min(CASE WHEN d.to_state = 'mailed'"
        "   AND d.detail ~ '^batch \\S+ mailed \\d{4}-\\d{2}-\\d{2}'"
        "   THEN substring(d.detail FROM ' mailed (\\d{4}-\\d{2}-\\d{2})')::timestamp"
        "    AT TIME ZONE 'UTC' ELSE d.at END) FILTER (WHERE d.event = 'transition') AS ok_at,"
        "  bool_or(d.event = 'returned') AS returned"
        "  FROM crier.dispatch_log d"
        "  WHERE d.campaign_id = $1::bigint AND (d.event = 'returned' OR (d.event = 'transition'"
        "   AND d.to_state IN ('sent', 'delivered', 'mailed')))"
        "  GROUP BY d.notice_id, d.channel) l ON l.notice_id = n.id AND l.channel = n.channel"
        " WHERE n.campaign_id = $1::bigint AND r.campaign_id = $1::bigint"
        " ORDER BY n.id",
        1, params);
    if (rc < 0)
        return error_set(err, err_size, rc, "reading the notices: %s", db->error);
    struct progress bar;
    progress_start(&bar, r->options->progress, "audit report");
    struct people_walk walk = {.r = r, .bar = &bar};
    rc = db_fetch_each(db, "report_people", FETCH_ROWS, people_batch, &walk, NULL);
    if (rc < 0) {
        progress_clear(&bar);
        return error_set(err, err_size, rc, "reading the notices: %s", db->error);
    }
    progress_end(&bar);
    return db_exec(db, "CLOSE report_people", 0, NULL);
}

/* The regulator filings of campaign $1, oldest first. */
static const char filings_sql[] =
    "SELECT detail FROM crier.dispatch_log WHERE campaign_id = $1::bigint"
    " AND event = 'regulator' AND to_state = 'filed' ORDER BY id";

/* read_filings - the regulator filings recorded for the campaign, oldest first. */
static int read_filings(struct crier_db *db, struct report *r, char *err, size_t err_size)
{
    const char *params[] = {r->campaign_id};
    PGresult *res = NULL;
    int rc = db_query(db, filings_sql, 1, params, &res);
    if (rc < 0)
        return error_set(err, err_size, rc, "reading the regulator filings: %s", db->error);
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(r->filings, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    return 0;
}

/* read_undeliverable - the people no channel reached: their reasons, and the last reason
 * the dispatch log gives, up to the limit. */
static int read_undeliverable(struct crier_db *db, struct report *r, json_t **ret_people, char *err,
                              size_t err_size)
{
    const char *params[] = {r->campaign_id, DB_NUM(r->options->list_limit)};
    PGresult *res = NULL;
    int rc = db_query(
        db,
        "SELECT r.ref, r.name, coalesce(nullif(upper(btrim(r.region)), ''), 'unknown'),"
        " n.channel, array_to_json(n.reasons)::text,"
        " (SELECT d.reason FROM crier.dispatch_log d WHERE d.notice_id = n.id"
        "  AND d.reason IS NOT NULL ORDER BY d.id DESC LIMIT 1),"
        " (SELECT to_char(d.at, " DB_TIME_S ") FROM crier.dispatch_log d"
        "  WHERE d.notice_id = n.id AND d.to_state = 'undeliverable' ORDER BY d.id DESC LIMIT 1)"
        " FROM crier.notice n"
        " JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
        " WHERE n.campaign_id = $1::bigint AND n.state = 'undeliverable'"
        " ORDER BY n.id LIMIT $2::bigint",
        2, params, &res);
    if (rc < 0)
        return error_set(err, err_size, rc, "reading the undeliverable notices: %s", db->error);
    json_t *people = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *p = json_object();
        json_object_set_new(p, "ref", json_string(PQgetvalue(res, i, 0)));
        json_object_set_new(p, "name", json_string(PQgetvalue(res, i, 1)));
        json_object_set_new(p, "region", json_string(PQgetvalue(res, i, 2)));
        json_object_set_new(p, "channel", json_string(PQgetvalue(res, i, 3)));
        json_t *reasons = json_loads(PQgetvalue(res, i, 4), 0, NULL);
        json_object_set_new(p, "reasons", reasons ? reasons : json_array());
        json_object_set_new(p, "last_reason",
                            PQgetisnull(res, i, 5) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 5)));
        json_object_set_new(
            p, "at", PQgetisnull(res, i, 6) ? json_null() : json_string(PQgetvalue(res, i, 6)));
        json_array_append_new(people, p);
    }
    PQclear(res);
    *ret_people = people;
    return 0;
}

/* ---- the model: one JSON object, rendered as JSON, text or HTML ------------------------- */

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* verdict_json - the answer for one notice: "required", "not required", "conditional" or
 * "unknown", and whether the value it rests on is verified. An unverified "not required" is
 * never shown bare: docs/jurisdictions.md. */
static void verdict_set(json_t *o, enum rules_verdict verdict, bool verified)
{
    json_object_set_new(o, "due", json_string(rules_verdict_name(verdict)));
    json_object_set_new(o, "verified", json_boolean(verified));
    const char *shown = verdict == VERDICT_UNKNOWN       ? UNKNOWN_COUNSEL
                        : verdict == VERDICT_REQUIRED    ? "REQUIRED"
                        : verdict == VERDICT_CONDITIONAL ? "CONDITIONAL"
                        : verified                       ? "not required"
                                                         : "not required per unverified data "
                                                           "\xe2\x80\x94 check counsel";
    if (verdict == VERDICT_REQUIRED && !verified)
        shown = "REQUIRED (unverified)";
    json_object_set_new(o, "shown", json_string(shown));
}

static json_t *entry_json(const struct rules_entry *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "code", json_string(j->code));
    json_object_set_new(o, "name", string_or_null(j->name));
    json_object_set_new(o, "days", entry_days(j) >= 0 ? json_integer(entry_days(j)) : json_null());
    json_object_set_new(o, "citation", string_or_null(j->citation));
    json_object_set_new(o, "source_kind", string_or_null(j->source_kind));
    json_object_set_new(o, "checked", string_or_null(j->checked));
    json_object_set_new(o, "verified", json_boolean(j->verified));
    if (j->note)
        json_object_set_new(o, "note", json_string(j->note));
    return o;
}

/* regulator_json - one notice to a regulator: its threshold, the count it is judged on, the
 * verdict, and its deadline as a date where the table and the record allow one. */
static json_t *regulator_json(const struct report *r, const struct region_stats *s,
                              const char *prefix, const struct rules_regulator *g, bool cra)
{
    long count = g->per_campaign || s == NULL ? r->total : s->people;
    char buf[64];
    json_t *o = json_object();
    char *name = xasprintf("%s%s", prefix, g->name);
    json_object_set_new(o, "name", json_string(name));
    free(name);
    rules_threshold_text(&g->threshold, buf, sizeof(buf));
    json_object_set_new(o, "threshold", json_string(buf));
    json_object_set_new(o, "counted",
                        json_string(g->per_campaign || s == NULL ? "campaign" : "residents"));
    json_object_set_new(o, "count", json_integer(count));
    enum rules_verdict verdict = rules_regulator_verdict(g, count);
    if (s != NULL && s->j == NULL)
        verdict = VERDICT_UNKNOWN;
    verdict_set(o, verdict, g->verified);
    if (g->condition)
        json_object_set_new(o, "condition", json_string(g->condition));
    if (cra) {
        if (g->note)
            json_object_set_new(o, "note", json_string(g->note));
        return o;
    }
    json_object_set_new(o, "deadline",
                        json_string(g->deadline.text ? g->deadline.text : "unknown"));
    json_object_set_new(o, "from", json_string(rules_event_name(g->from)));
    json_object_set_new(o, "order", json_string(g->order));
    /* the date: from the individual notices (their latest hand-off), from the clearance (the
     * latest lift), or from the discovery date standing for the table's event */
    double base = NAN;
    const char *basis = NULL;
    if (g->from == EVENT_INDIVIDUAL_NOTICE && s && !isnan(s->last_notified)) {
        base = s->last_notified;
        basis = "the latest individual notice of its residents";
    } else if (g->from == EVENT_INDIVIDUAL_NOTICE) {
        basis = "the individual notices, not all sent yet";
    } else if (g->from != EVENT_UNKNOWN && g->from != EVENT_CLEARANCE && r->discovered) {
        base = r->discovered_at;
        basis = g->from == EVENT_DISCOVERY ? "the discovery date"
                                           : "the discovery date, standing for the table's event";
    }
    double end = 0;
    if (!isnan(base) && rules_period_end(&g->deadline, base, &end) == 0) {
        char due[32];
        if (g->deadline.unit == PERIOD_HOURS)
            iso_time(end, due, sizeof(due));
        else
            iso_day((long)floor((end - 1) / DAY_SECONDS), due,
                    sizeof(due)); /* the last day, inclusive */
        json_object_set_new(o, "due_by", json_string(due));
    } else {
        json_object_set_new(o, "due_by", json_null());
    }
    json_object_set_new(o, "due_by_counted_from", string_or_null(basis));
    if (g->note)
        json_object_set_new(o, "note", json_string(g->note));
    return o;
}

/* substitute_json - the substitute-notice test of one jurisdiction on its residents. crier
 * cannot know the cost of notice, so a cost test is named, never decided. */
static json_t *substitute_json(const struct rules_entry *e, long people, long no_contact)
{
    json_t *o = json_object(), *because = json_array();
    if (e == NULL || !e->substitute_known) {
        json_object_set_new(o, "triggered", json_string("unknown"));
        json_object_set_new(o, "shown", json_string(UNKNOWN_COUNSEL));
        json_object_set_new(o, "because", because);
        return o;
    }
    bool all_known = e->substitute_people_above >= 0 || e->substitute_out_of_date_at_least >= 0;
    if (e->substitute_people_above >= 0 && people > e->substitute_people_above)
        json_array_append_new(because, json_string("people_above"));
    if (e->substitute_out_of_date_at_least >= 0 && no_contact >= e->substitute_out_of_date_at_least)
        json_array_append_new(because, json_string("out_of_date_contact_at_least"));
    if (e->substitute_insufficient_contact == 1 && no_contact > 0)
        json_array_append_new(because, json_string("insufficient_contact"));
    if (e->substitute_insufficient_contact < 0 && e->substitute_out_of_date_at_least < 0)
        all_known = false;
    const char *triggered = json_array_size(because) > 0 ? "yes"
                            : all_known                  ? "not by the counts"
                                                         : "unknown";
    json_object_set_new(o, "triggered", json_string(triggered));
    json_object_set_new(
        o, "shown", json_string(strcmp(triggered, "unknown") == 0 ? UNKNOWN_COUNSEL : triggered));
    json_object_set_new(o, "because", because);
    json_object_set_new(o, "people", json_integer(people));
    json_object_set_new(o, "no_usable_contact", json_integer(no_contact));
    json_object_set_new(o, "people_above",
                        e->substitute_people_above >= 0 ? json_integer(e->substitute_people_above)
                                                        : json_null());
    json_object_set_new(o, "cost_above",
                        e->substitute_cost_above >= 0 ? json_integer(e->substitute_cost_above)
                                                      : json_null());
    if (e->substitute_cost_above >= 0)
        json_object_set_new(o, "cost_note",
                            json_string("the cost test is not known to crier: check it"));
    json_object_set_new(o, "consists_of", string_or_null(e->substitute_consists_of));
    return o;
}

/* deadline_json - a jurisdiction's individual deadline as a date: the rule, the lawful hold
 * time its region's holds take out, and the deadlines that run from a clearance. */
static json_t *deadline_json(const struct report *r, const struct region_stats *s)
{
    json_t *o = json_object();
    const struct rules_entry *e = s->j;
    char rule[256];
    if (e == NULL || !e->individual_known)
        snprintf(rule, sizeof(rule), "%s", UNKNOWN_COUNSEL);
    else if (e->individual.unit == PERIOD_NO_FIXED_COUNT)
        snprintf(rule, sizeof(rule), "%s (no fixed day count)", e->individual.text);
    else
        snprintf(rule, sizeof(rule), "%s from %s", e->individual.text,
                 rules_event_name(e->individual_from));
    json_object_set_new(o, "rule", json_string(rule));
    json_object_set_new(o, "condition", string_or_null(e ? e->individual_condition : NULL));
    json_object_set_new(o, "days",
                        s->deadline_days >= 0 ? json_integer(s->deadline_days) : json_null());
    json_object_set_new(o, "days_from", json_string(s->deadline_source));
    double held = 0;
    bool active = false;
    if (r->discovered && r->hold_count > 0)
        held = held_seconds(r, s->code, "", r->discovered_at, r->now, &active);
    json_object_set_new(o, "held_days_deducted", json_real(round(held / DAY_SECONDS * 100) / 100));
    json_object_set_new(o, "hold_active", json_boolean(active));
    if (r->discovered && s->deadline_days >= 0) {
        char due[16];
        double last = r->discovered_at + ((double)s->deadline_days + 1) * DAY_SECONDS + held - 1;
        iso_day((long)floor(last / DAY_SECONDS), due, sizeof(due));
        json_object_set_new(o, "date", json_string(due));
        json_object_set_new(o, "counted_from",
                            json_string(e && e->individual_from != EVENT_DISCOVERY &&
                                                strcmp(s->deadline_source, e->code) == 0
                                            ? "the discovery date, standing for the table's event"
                                            : "the discovery date"));
    } else {
        json_object_set_new(o, "date", json_null());
    }
    /* a deadline that runs from law enforcement's clearance (MD 7 days, ME 7 business days) */
    json_t *clearance = json_array();
    for (size_t i = 0; e && i < r->hold_count; i++) {
        const struct hold_period *h = &r->holds[i];
        double end = 0;
        if (isnan(h->lifted) || h->ref != NULL || (h->region && strcmp(h->region, s->code) != 0) ||
            rules_period_end(&e->after_clearance, h->lifted, &end) < 0)
            continue;
        char lifted[16], due[16];
        iso_day((long)floor(h->lifted / DAY_SECONDS), lifted, sizeof(lifted));
        iso_day((long)floor((end - 1) / DAY_SECONDS), due, sizeof(due));
        json_t *c = json_object();
        json_object_set_new(c, "hold", json_integer(h->id));
        json_object_set_new(c, "lifted", json_string(lifted));
        json_object_set_new(c, "rule", json_string(e->after_clearance.text));
        json_object_set_new(c, "due_by", json_string(due));
        json_array_append_new(clearance, c);
    }
    json_object_set_new(o, "after_clearance", clearance);
    json_object_set_new(o, "after_clearance_rule",
                        json_string(e == NULL || !e->delay_known ? "unknown"
                                    : e->after_clearance.text    ? e->after_clearance.text
                                                                 : "unknown"));
    return o;
}

/* due_add - a notice due into flags.due, with its filing when `regulators mark-filed`
 * recorded one ("filed CODE NAME on DATE via HOW, reference REF"; NAME without "CODE: "). */
static void due_add(const struct report *r, json_t *due, const json_t *one, const char *code)
{
    json_t *copy = json_deep_copy(one);
    json_object_set_new(copy, "jurisdiction", json_string(code));
    const char *name = json_string_value(json_object_get(one, "name"));
    size_t code_len = strlen(code);
    if (strncmp(name, code, code_len) == 0 && strncmp(name + code_len, ": ", 2) == 0)
        name += code_len + 2;
    char *prefix = xasprintf("filed %s %s on ", code, name);
    json_t *filed = json_null();
    size_t i;
    const json_t *f;
    json_array_foreach(r->filings, i, f)
    {
        const char *detail = json_string_value(f);
        if (strncmp(detail, prefix, strlen(prefix)) == 0)
            filed = json_string(detail + 6); /* the latest filing wins */
    }
    free(prefix);
    json_object_set_new(copy, "filed", filed);
    json_array_append_new(due, copy);
}

/* notice_times - the first and last time a resident of the region was notified (null
 * when none was). */
static void notice_times(const struct region_stats *s, json_t *g)
{
    char first[32] = "", last[32] = "";
    if (!isnan(s->first_notified)) {
        iso_time(s->first_notified, first, sizeof(first));
        iso_time(s->last_notified, last, sizeof(last));
    }
    json_object_set_new(g, "first_notice_at", first[0] ? json_string(first) : json_null());
    json_object_set_new(g, "last_notice_at", last[0] ? json_string(last) : json_null());
}

/* regulators_of - the region's regulator notices, then each declared framework's notices
 * counted per jurisdiction (HIPAA's media notice), "CODE: " before their names. */
static json_t *regulators_of(const struct report *r, const struct region_stats *s)
{
    const struct rules_entry *e = s->j;
    json_t *regulators = json_array();
    for (size_t i = 0; e && i < e->regulator_count; i++)
        json_array_append_new(regulators, regulator_json(r, s, "", &e->regulators[i], false));
    for (size_t f = 0; f < r->framework_count; f++) {
        const struct rules_entry *fw = r->frameworks[f];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%s: ", fw->code);
        for (size_t i = 0; i < fw->regulator_count; i++)
            if (!fw->regulators[i].per_campaign)
                json_array_append_new(regulators,
                                      regulator_json(r, s, prefix, &fw->regulators[i], false));
    }
    return regulators;
}

/* cra_of - the consumer reporting agencies' verdict; unknown where the table has none. */
static json_t *cra_of(const struct report *r, const struct region_stats *s)
{
    const struct rules_entry *e = s->j;
    if (e && e->cra_known)
        return regulator_json(r, s, "", &e->cra, true);
    json_t *cra = json_object();
    json_object_set_new(cra, "name", json_string("consumer reporting agencies"));
    json_object_set_new(cra, "threshold", json_string("unknown"));
    verdict_set(cra, VERDICT_UNKNOWN, false);
    return cra;
}

/* unknown_add - what the rules table does not know about a jurisdiction, into flags.unknown. */
static void unknown_add(json_t *flags, const char *code, const char *what)
{
    json_array_append_new(json_object_get(flags, "unknown"),
                          json_pack("{s:s, s:s}", "jurisdiction", code, "what", what));
}

/* regulators_flag - each regulator notice due (and the Attorneys General required), or
 * unknown. */
static void regulators_flag(const struct report *r, const struct region_stats *s,
                            const json_t *regulators, json_t *flags)
{
    size_t i;
    json_t *one;
    json_array_foreach(regulators, i, one)
    {
        const char *d = json_string_value(json_object_get(one, "due"));
        const char *name = json_string_value(json_object_get(one, "name"));
        if (strcmp(d, "required") == 0 || strcmp(d, "conditional") == 0) {
            due_add(r, json_object_get(flags, "due"), one, s->code);
            if (strncmp(name, "Attorney General", 16) == 0 && strcmp(d, "required") == 0)
                json_array_append_new(json_object_get(flags, "attorney_general"),
                                      json_string(s->code));
        } else if (strcmp(d, "unknown") == 0) {
            char *what = xasprintf("notice to %s", name);
            unknown_add(flags, s->code, what);
            free(what);
        }
    }
}

/* verdict_flag - a region's code into the flags' list when the verdict is yes (value
 * yes); what into flags.unknown when it is unknown. */
static void verdict_flag(json_t *flags, const char *list, const char *code, const char *value,
                         const char *yes, const char *what)
{
    if (strcmp(value, yes) == 0)
        json_array_append_new(json_object_get(flags, list), json_string(code));
    else if (strcmp(value, "unknown") == 0)
        unknown_add(flags, code, what);
}

/* jurisdiction_rules - a region's rules and verdicts into g; the flags into the lists. */
static void jurisdiction_rules(const struct report *r, const struct region_stats *s, json_t *g,
                               json_t *flags)
{
    const struct rules_entry *e = s->j;
    json_object_set_new(g, "residents", json_integer(s->people));
    json_object_set_new(g, "in_table", json_boolean(e != NULL));
    notice_times(s, g);
    json_object_set_new(g, "rules", e ? entry_json(e) : json_null());
    json_object_set_new(g, "deadline", deadline_json(r, s));
    const char *state = e == NULL                           ? "unknown"
                        : e->regulators_state == LIST_NONE  ? "none"
                        : e->regulators_state == LIST_GIVEN ? "given"
                                                            : "unknown";
    json_object_set_new(g, "regulators_state", json_string(state));
    json_t *regulators = regulators_of(r, s);
    json_object_set_new(g, "regulators", regulators);
    json_t *cra = cra_of(r, s);
    json_object_set_new(g, "consumer_reporting_agencies", cra);
    json_t *sub = substitute_json(e, s->people, s->no_contact);
    json_object_set_new(g, "substitute_notice", sub);

    /* the flags: what is due, and what the table does not know */
    if (e == NULL || !e->individual_known)
        unknown_add(flags, s->code, "the individual deadline");
    if (e == NULL || e->regulators_state == LIST_UNKNOWN)
        unknown_add(flags, s->code, "the regulators to notify");
    regulators_flag(r, s, regulators, flags);
    verdict_flag(flags, "consumer_reporting_agencies", s->code,
                 json_string_value(json_object_get(cra, "due")), "required",
                 "the consumer reporting agencies");
    verdict_flag(flags, "substitute_notice", s->code,
                 json_string_value(json_object_get(sub, "triggered")), "yes", "substitute notice");
}

static int region_compare(const void *a, const void *b)
{
    const struct region_stats *x = a, *y = b;
    bool xu = strcmp(x->code, "unknown") == 0, yu = strcmp(y->code, "unknown") == 0;
    if (xu != yu)
        return xu ? 1 : -1; /* "unknown" last */
    return strcmp(x->code, y->code);
}

/* A section of the printed report: text or HTML, from the model alone. */
typedef void (*section_printer)(FILE *out, const json_t *o);

static void substitute_html(FILE *out, const json_t *o); /* below, with its section */
static void substitute_merge(json_t *model);

/* The model that the text and HTML sections print (text_sections, html_sections), one section a
 * function: a new section is one more *_json function and one line in report_json (and its
 * printers, which read the model and never the struct report). */

/* head_json - the campaign, the as-of time, the discovery date, the rules table used. */
static void head_json(const struct report *r, json_t *o)
{
    const struct rules_table *t = r->table;
    json_object_set_new(o, "campaign", json_string(r->name));
    json_object_set_new(o, "incident", json_string(r->incident));
    json_object_set_new(o, "state", json_string(r->state));
    json_object_set_new(o, "policy", json_string(r->policy));
    json_object_set_new(o, "as_of", json_string(r->now_text));
    json_object_set_new(o, "discovered_date", string_or_null(r->discovered));
    json_object_set_new(o, "discovered_from",
                        r->discovered ? json_string(r->discovered_source) : json_null());
    if (r->discovered == NULL)
        json_object_set_new(
            o, "timeliness_note",
            json_string("no discovery date: the campaign meta has no discovered_date and "
                        "--discovered was not given, so no timeliness is measured"));
    json_t *table = json_object();
    json_object_set_new(table, "path", json_string(t->path));
    json_object_set_new(table, "caveat", json_string(t->caveat));
    json_object_set_new(o, "deadline_table", table);
    json_t *frameworks = json_array();
    for (size_t i = 0; i < r->framework_count; i++)
        json_array_append_new(frameworks, entry_json(r->frameworks[i]));
    json_object_set_new(o, "frameworks", frameworks);
}

/* tally_json - timeliness counts into o; the campaign's also counts the notified whose time
 * was not logged (time_unknown, else NULL). */
static void tally_json(json_t *o, const long *tally, const long *time_unknown)
{
    for (int i = 0; i < TALLIES; i++) {
        json_object_set_new(o, tally_names[i], json_integer(tally[i]));
        if (i == NOTIFIED && time_unknown)
            json_object_set_new(o, "notified_time_unknown", json_integer(*time_unknown));
    }
}

/* region_json - one jurisdiction's counts, timeliness and rules; its flags into flags. */
static json_t *region_json(const struct report *r, const struct region_stats *s, json_t *flags)
{
    json_t *g = json_object();
    json_object_set_new(g, "total", json_integer(s->people));
    json_object_set_new(g, "by_state", states_json(s->by_state));
    if (s->j) {
        json_object_set_new(g, "name", string_or_null(s->j->name));
        json_object_set_new(g, "statute_days",
                            entry_days(s->j) >= 0 ? json_integer(entry_days(s->j)) : json_null());
        json_object_set_new(g, "citation", string_or_null(s->j->citation));
        json_object_set_new(g, "verified", json_boolean(s->j->verified));
    }
    json_object_set_new(g, "deadline_days",
                        s->deadline_days >= 0 ? json_integer(s->deadline_days) : json_null());
    json_object_set_new(g, "deadline_from", json_string(s->deadline_source));
    tally_json(g, s->tally, NULL);
    json_object_set_new(g, "no_usable_contact", json_integer(s->no_contact));
    json_object_set_new(g, "max_days", s->timed > 0 ? json_integer(s->day_max) : json_null());
    json_object_set_new(g, "mean_days",
                        s->timed > 0
                            ? json_real(round((double)s->day_sum / (double)s->timed * 10) / 10)
                            : json_null());
    jurisdiction_rules(r, s, g, flags);
    return g;
}

/* regions_json - every jurisdiction, "unknown" last. */
static void regions_json(struct report *r, json_t *o, json_t *flags)
{
    qsort(r->regions, r->region_count, sizeof(*r->regions), region_compare);
    json_t *regions = json_object();
    for (size_t i = 0; i < r->region_count; i++)
        json_object_set_new(regions, r->regions[i].code, region_json(r, &r->regions[i], flags));
    json_object_set_new(o, "by_jurisdiction", regions);
}

/* list_json - a list of people kept up to report.list_limit: the count, how many more
 * there are than it shows, and those it shows (people, which it takes). */
static json_t *list_json(long count, json_t *people)
{
    json_t *list = json_object();
    json_object_set_new(list, "count", json_integer(count));
    json_object_set_new(list, "more", json_integer(count - (long)json_array_size(people)));
    json_object_set_new(list, "people", people);
    return list;
}

/* unreached_json - the undeliverable people (the list stops at report.list_limit; `crier
 * audit unreached` has everyone, streamed), returned letters, no usable contact. */
static void unreached_json(const struct report *r, json_t *o, json_t *undeliverable_people)
{
    json_t *und = list_json(r->undeliverable, undeliverable_people);
    char *full_list = xasprintf("crier audit unreached %s", r->name);
    json_object_set_new(und, "full_list", json_string(full_list));
    free(full_list);
    json_object_set_new(o, "undeliverable", und);
    json_object_set_new(o, "returned_letters", json_integer(r->returned));
    json_object_set_new(o, "no_usable_contact", json_integer(r->no_contact));
}

/* timeliness_json - the campaign's timeliness, with its late and overdue people. */
static void timeliness_json(const struct report *r, json_t *o)
{
    json_t *tl = json_object();
    json_object_set_new(tl, "measured", json_boolean(r->discovered != NULL));
    tally_json(tl, r->tally, &r->time_unknown);
    json_object_set_new(tl, "late_people",
                        list_json(r->late_people.count, json_incref(r->late_people.people)));
    json_object_set_new(tl, "overdue_people",
                        list_json(r->overdue_people.count, json_incref(r->overdue_people.people)));
    json_object_set_new(o, "timeliness", tl);
}

/* hold_json - one law-enforcement hold and its lawful period. */
static json_t *hold_json(const struct hold_period *h)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(h->id));
    char *scope = h->region ? xasprintf("region %s", h->region)
                  : h->ref  ? xasprintf("recipient %s", h->ref)
                            : xstrdup("the whole campaign");
    json_object_set_new(j, "scope", json_string(scope));
    free(scope);
    json_object_set_new(j, "form", json_string(h->form));
    json_object_set_new(j, "authority", json_string(h->authority));
    json_object_set_new(j, "case", json_string(h->case_ref));
    json_object_set_new(j, "placed_at", json_string(h->placed_at));
    json_object_set_new(j, "lifted_at", string_or_null(h->lifted_at));
    char until[32];
    iso_time(h->until, until, sizeof(until));
    json_object_set_new(j, "lawful_until", json_string(until));
    json_object_set_new(j, "lawful_days",
                        json_real(round((h->until - h->from) / DAY_SECONDS * 100) / 100));
    json_object_set_new(j, "active", json_boolean(h->active));
    json_object_set_new(j, "lapsed", json_boolean(h->lapsed));
    return j;
}

/* framework_notices - the campaign-wide notices of the declared frameworks (HHS, the
 * FTC, a supervisory authority counted over everyone), into their entries in o. */
static void framework_notices(const struct report *r, json_t *o, json_t *flags)
{
    for (size_t f = 0; f < r->framework_count; f++) {
        const struct rules_entry *fw = r->frameworks[f];
        json_t *entry = json_array_get(json_object_get(o, "frameworks"), f);
        json_t *notices = json_array();
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%s: ", fw->code);
        for (size_t i = 0; i < fw->regulator_count; i++) {
            if (!fw->regulators[i].per_campaign)
                continue;
            json_t *one = regulator_json(r, NULL, prefix, &fw->regulators[i], false);
            const char *d = json_string_value(json_object_get(one, "due"));
            if (strcmp(d, "required") == 0 || strcmp(d, "conditional") == 0)
                due_add(r, json_object_get(flags, "due"), one, fw->code);
            json_array_append_new(notices, one);
        }
        json_object_set_new(entry, "notices", notices);
        json_object_set_new(entry, "substitute_notice",
                            substitute_json(fw, r->total, r->no_contact));
        json_object_set_new(entry, "oral_hold_lapse_days",
                            fw->oral_lapse_days >= 0 ? json_integer(fw->oral_lapse_days)
                                                     : json_null());
    }
}

/* chart_json - notices handed over per day and channel. */
static json_t *chart_json(const struct report *r)
{
    json_t *chart_channels = json_array(), *chart_days = json_array();
    for (size_t i = 0; i < r->channel_count; i++)
        json_array_append_new(chart_channels, json_string(r->channels[i].name));
    for (size_t d = 0; d < r->day_count; d++) {
        char day[16];
        iso_day(r->days[d].day, day, sizeof(day));
        json_t *counts = json_object();
        for (size_t i = 0; i < r->channel_count; i++)
            json_object_set_new(counts, r->channels[i].name, json_integer(r->days[d].counts[i]));
        json_array_append_new(chart_days, json_pack("{s:s, s:o}", "day", day, "notified", counts));
    }
    return json_pack("{s:o, s:o}", "channels", chart_channels, "days", chart_days);
}

static json_t *report_json(struct report *r, json_t *undeliverable_people)
{
    json_t *o = json_object();
    json_t *flags =
        json_pack("{s:[], s:[], s:[], s:[], s:[]}", "due", "unknown", "attorney_general",
                  "consumer_reporting_agencies", "substitute_notice");
    head_json(r, o);
    counts_json(o, r->total, r->by_state, r->channels, r->channel_count);
    regions_json(r, o, flags);
    unreached_json(r, o, undeliverable_people);
    timeliness_json(r, o);
    json_t *holds = json_array();
    for (size_t i = 0; i < r->hold_count; i++)
        json_array_append_new(holds, hold_json(&r->holds[i]));
    json_object_set_new(o, "holds", holds);
    framework_notices(r, o, flags);
    json_object_set_new(o, "oral_hold_lapse_applied",
                        json_boolean(r->oral_lapse || r->options->oral_lapse_everywhere));
    json_object_set_new(o, "flags", flags);
    json_object_set_new(o, "notices_per_day", chart_json(r));
    return o;
}

/* ---- text ---------------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static long long jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* days_text - an integer member or "-" for null. */
static const char *days_text(const json_t *o, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    return buf;
}

/* A row of a section's table, in the text or the HTML report. */
typedef void (*row_printer)(FILE *out, const json_t *row);

/* text_rows - each element of an array, one line each; "empty" (when not NULL) for none. */
static void text_rows(FILE *out, const json_t *rows, row_printer row, const char *empty)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r) row(out, r);
    if (empty && json_array_size(rows) == 0)
        fputs(empty, out);
}

/* text_more - the line under a list that report.list_limit cut. */
static void text_more(FILE *out, const json_t *list)
{
    if (jint(list, "more") > 0)
        fprintf(out, "  ... and %lld more (report.list_limit)\n", jint(list, "more"));
}

static void text_person(FILE *out, const json_t *p)
{
    fprintf(out, "  %-16s %-24s %-8s %-14s %6lld %8lld %6.2f  %s\n", jstr(p, "ref"),
            jstr(p, "name"), jstr(p, "region"), jstr(p, "state"), jint(p, "days"),
            jint(p, "deadline_days"), json_real_value(json_object_get(p, "held_days")),
            jstr(p, "notified_at"));
}

static void text_people(FILE *out, const char *title, const json_t *list)
{
    const json_t *people = json_object_get(list, "people");
    fprintf(out, "\n%s: %lld\n", title, jint(list, "count"));
    if (json_array_size(people) == 0)
        return;
    fprintf(out, "  %-16s %-24s %-8s %-14s %6s %8s %6s  %s\n", "REF", "NAME", "REGION", "STATE",
            "DAYS", "DEADLINE", "HELD", "NOTIFIED AT");
    text_rows(out, people, text_person, NULL);
    text_more(out, list);
}

/* text_rules - per jurisdiction: its entry, the deadline as a date, the hold time taken out,
 * each regulator notice and the CRAs with their verdicts, substitute notice. */
static void text_rules(FILE *out, const json_t *o)
{
    fprintf(out, "\nRULES BY JURISDICTION (%s)\n",
            json_is_true(json_object_get(o, "oral_hold_lapse_applied"))
                ? "an unconfirmed oral hold lapses after 30 days"
                : "no oral-hold lapse: no declared framework has one");
    const char *key;
    const json_t *g;
    json_object_foreach(json_object_get(o, "by_jurisdiction"), key, g)
    {
        const json_t *rules = json_object_get(g, "rules");
        const json_t *deadline = json_object_get(g, "deadline");
        if (json_is_object(rules))
            fprintf(out, "  %s %s: residents %lld; %s (source %s, checked %s%s)\n", key,
                    jstr(rules, "name"), jint(g, "residents"), jstr(rules, "citation"),
                    jstr(rules, "source_kind"), jstr(rules, "checked"),
                    json_is_true(json_object_get(rules, "verified")) ? "" : ", UNVERIFIED");
        else
            fprintf(out, "  %s: residents %lld; not in the rules table: %s\n", key,
                    jint(g, "residents"), UNKNOWN_COUNSEL);
        fprintf(out, "    individual notice: %s", jstr(deadline, "rule"));
        if (json_is_string(json_object_get(deadline, "date")))
            fprintf(out,
                    "; due by %s (%lld days, %s's, from %s; %.2f days of lawful hold deducted)",
                    jstr(deadline, "date"), jint(deadline, "days"), jstr(deadline, "days_from"),
                    jstr(deadline, "counted_from"),
                    json_real_value(json_object_get(deadline, "held_days_deducted")));
        fputc('\n', out);
        size_t i;
        const json_t *c;
        json_array_foreach(json_object_get(deadline, "after_clearance"), i, c)
        {
            fprintf(out, "    after clearance (hold %lld lifted %s): %s, due by %s\n",
                    jint(c, "hold"), jstr(c, "lifted"), jstr(c, "rule"), jstr(c, "due_by"));
        }
        const char *state = jstr(g, "regulators_state");
        if (strcmp(state, "none") == 0)
            fprintf(out, "    regulators: none (the table says the law requires no government "
                         "notice)\n");
        else if (strcmp(state, "unknown") == 0)
            fprintf(out, "    regulators: %s\n", UNKNOWN_COUNSEL);
        const json_t *r;
        json_array_foreach(json_object_get(g, "regulators"), i, r)
        {
            fprintf(out, "    %s: %s (%s; %lld %s)", jstr(r, "name"), jstr(r, "shown"),
                    jstr(r, "threshold"), jint(r, "count"),
                    strcmp(jstr(r, "counted"), "campaign") == 0 ? "in the campaign" : "residents");
            if (strcmp(jstr(r, "deadline"), "unknown") == 0)
                fprintf(out, "; deadline %s", UNKNOWN_COUNSEL);
            else if (strcmp(jstr(r, "from"), "unknown") == 0)
                fprintf(out, "; deadline %s, from an event the table does not know",
                        jstr(r, "deadline"));
            else
                fprintf(out, "; deadline %s from %s", jstr(r, "deadline"), jstr(r, "from"));
            if (strcmp(jstr(r, "order"), "unknown") != 0)
                fprintf(out, ", %s the individual notices", jstr(r, "order"));
            if (json_is_string(json_object_get(r, "due_by")))
                fprintf(out, "; due by %s (from %s)", jstr(r, "due_by"),
                        jstr(r, "due_by_counted_from"));
            if (json_is_string(json_object_get(r, "condition")))
                fprintf(out, "; only %s", jstr(r, "condition"));
            fputc('\n', out);
        }
        const json_t *cra = json_object_get(g, "consumer_reporting_agencies");
        fprintf(out, "    consumer reporting agencies: %s (%s)\n", jstr(cra, "shown"),
                jstr(cra, "threshold"));
        const json_t *sub = json_object_get(g, "substitute_notice");
        fprintf(out, "    substitute notice: %s\n", jstr(sub, "shown"));
    }
}

static const char *const shown_states[] = {"ready",         "held",      "sending", "sent",
                                           "submitted",     "delivered", "batched", "mailed",
                                           "undeliverable", "cancelled"};

static void text_framework(FILE *out, const json_t *f)
{
    fprintf(out, "framework %s: %lld days, %s%s\n", jstr(f, "code"), jint(f, "days"),
            jstr(f, "citation"),
            json_is_true(json_object_get(f, "verified")) ? "" : " (unverified)");
}

/* text_head - the campaign, the as-of time, the rules table, the discovery, frameworks. */
static void text_head(FILE *out, const json_t *o)
{
    fprintf(out, "audit report: campaign %s  incident %s  %s  policy %s\n", jstr(o, "campaign"),
            jstr(o, "incident"), jstr(o, "state"), jstr(o, "policy"));
    fprintf(out, "as of %s; %lld people\n", jstr(o, "as_of"), jint(o, "total"));
    const json_t *table = json_object_get(o, "deadline_table");
    fprintf(out, "deadline table: %s\nCAVEAT: %s\n", jstr(table, "path"), jstr(table, "caveat"));
    if (json_is_null(json_object_get(o, "discovered_date")))
        fprintf(out, "TIMELINESS NOT MEASURED: %s\n", jstr(o, "timeliness_note"));
    else
        fprintf(out, "discovered %s (%s)\n", jstr(o, "discovered_date"),
                jstr(o, "discovered_from"));
    text_rows(out, json_object_get(o, "frameworks"), text_framework, NULL);
}

/* text_by_state - the states down, all and each channel across. */
static void text_by_state(FILE *out, const json_t *o)
{
    fprintf(out, "\nBY STATE AND CHANNEL\n  %-14s %10s", "STATE", "ALL");
    const json_t *channels = json_object_get(o, "by_channel");
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)channels, key, value) fprintf(out, " %10s", key);
    fputc('\n', out);
    for (size_t s = 0; s < ARRAY_SIZE(shown_states); s++) {
        fprintf(out, "  %-14s %10lld", shown_states[s],
                jint(json_object_get(o, "by_state"), shown_states[s]));
        json_object_foreach((json_t *)channels, key, value)
            fprintf(out, " %10lld", jint(value, shown_states[s]));
        fputc('\n', out);
    }
}

/* text_regions - a row per jurisdiction, then the rules that applied. */
static void text_regions(FILE *out, const json_t *o)
{
    fprintf(out, "\nBY JURISDICTION\n  %-8s %8s %8s %8s %8s %8s %8s %8s %8s %6s  %s\n", "REGION",
            "PEOPLE", "NOTIFIED", "ON TIME", "LATE", "OVERDUE", "PENDING", "NOCONTACT", "HELD",
            "DAYS", "DEADLINE");
    const char *key;
    const json_t *value;
    json_object_foreach(json_object_get(o, "by_jurisdiction"), key, value)
    {
        char buf[32];
        const char *deadline = days_text(value, "deadline_days", buf, sizeof(buf));
        char max[32];
        fprintf(out, "  %-8s %8lld %8lld %8lld %8lld %8lld %8lld %8lld %8lld %6s  %s (%s)\n", key,
                jint(value, "total"), jint(value, "notified"), jint(value, "on_time"),
                jint(value, "late"), jint(value, "overdue_not_notified"),
                jint(value, "pending_within_deadline"), jint(value, "no_usable_contact"),
                jint(value, "delayed_by_holds"), days_text(value, "max_days", max, sizeof(max)),
                deadline, jstr(value, "deadline_from"));
    }
    fprintf(out, "  (DAYS: the most days any notified person waited, hold time excluded;"
                 " DEADLINE: the shortest that applies, in days, and whose rule it is)\n");
    text_rules(out, o);
}

/*
 * The timeliness sentence, once for both reports: which counts it gives, in which order,
 * each with the words after it in the text and in the HTML report (NULL: that report
 * leaves the count out).
 */
static const struct {
    const char *key, *text, *html;
} timeliness_sentence[] = {
    {"notified", " notified (", " notified: "},
    {"on_time", " on time, ", " on time, "},
    {"late", " late, ", " late; "},
    {"notified_time_unknown", " without a logged time), ", NULL},
    {"overdue_not_notified", " not notified past the deadline, ",
     " not notified past the deadline, "},
    {"pending_within_deadline", " within it, ", " within it; "},
    {"no_deadline", " with no fixed deadline; ", " with no fixed deadline; "},
    {"delayed_by_holds", " people had notice lawfully delayed by holds\n",
     " lawfully delayed by holds (hold time is not counted).</p>\n"},
};

/* timeliness_say - the sentence after opening, in the HTML report's words or the text's. */
static void timeliness_say(FILE *out, const json_t *tl, const char *opening, bool html)
{
    fputs(opening, out);
    for (size_t i = 0; i < ARRAY_SIZE(timeliness_sentence); i++) {
        const char *words = html ? timeliness_sentence[i].html : timeliness_sentence[i].text;
        if (words)
            fprintf(out, "%lld%s", jint(tl, timeliness_sentence[i].key), words);
    }
}

static void text_timeliness(FILE *out, const json_t *o)
{
    const json_t *tl = json_object_get(o, "timeliness");
    timeliness_say(out, tl, "\nTIMELINESS: ", false);
    text_people(out, "LATE (notified after the deadline)", json_object_get(tl, "late_people"));
    text_people(out, "NOT NOTIFIED, PAST THE DEADLINE", json_object_get(tl, "overdue_people"));
}

static void text_unreached(FILE *out, const json_t *p)
{
    fprintf(out, "  %-16s %-24s %-8s %s\n", jstr(p, "ref"), jstr(p, "name"), jstr(p, "region"),
            jstr(p, "last_reason"));
}

static void text_undeliverable(FILE *out, const json_t *o)
{
    const json_t *und = json_object_get(o, "undeliverable");
    fprintf(out, "\nUNDELIVERABLE: %lld (letters returned: %lld; without usable contact: %lld)\n",
            jint(und, "count"), jint(o, "returned_letters"), jint(o, "no_usable_contact"));
    text_rows(out, json_object_get(und, "people"), text_unreached, NULL);
    text_more(out, und);
    if (jint(und, "count") > 0 || jint(o, "returned_letters") > 0)
        fprintf(out, "  everyone not reached, with each last attempt: %s\n",
                jstr(und, "full_list"));
}

static void text_hold(FILE *out, const json_t *h)
{
    fprintf(out,
            "  hold %lld on %s: %s, %s case %s; placed %s, %s; lawful until %s (%.2f days)%s\n",
            jint(h, "id"), jstr(h, "scope"), jstr(h, "form"), jstr(h, "authority"), jstr(h, "case"),
            jstr(h, "placed_at"),
            json_is_null(json_object_get(h, "lifted_at")) ? "not lifted" : "lifted",
            jstr(h, "lawful_until"), json_real_value(json_object_get(h, "lawful_days")),
            json_is_true(json_object_get(h, "lapsed")) ? " LAPSED (oral, unconfirmed)" : "");
}

static void text_holds(FILE *out, const json_t *o)
{
    fprintf(out, "\nHOLDS (lawful delay, not counted against the deadline)\n");
    text_rows(out, json_object_get(o, "holds"), text_hold, "  none\n");
}

/* text_names - " A B" of an array of strings, or " none" when it is empty. */
static void text_names(FILE *out, const json_t *names)
{
    size_t i;
    const json_t *f;
    json_array_foreach(names, i, f) fprintf(out, " %s", json_string_value(f));
    fputs(json_array_size(names) ? "" : " none", out);
}

static void text_due(FILE *out, const json_t *d)
{
    fprintf(out, "  %-8s %s: %s (%s; %lld %s)%s%s%s%s\n", jstr(d, "jurisdiction"), jstr(d, "name"),
            jstr(d, "shown"), jstr(d, "threshold"), jint(d, "count"),
            strcmp(jstr(d, "counted"), "campaign") == 0 ? "in the campaign" : "residents",
            json_is_string(json_object_get(d, "due_by")) ? ", due by " : "",
            json_is_string(json_object_get(d, "due_by")) ? jstr(d, "due_by") : "",
            json_is_string(json_object_get(d, "filed")) ? "; " : "; NOT FILED",
            json_is_string(json_object_get(d, "filed")) ? jstr(d, "filed") : "");
}

static void text_unknown(FILE *out, const json_t *d)
{
    fprintf(out, "  %-8s %s\n", jstr(d, "jurisdiction"), jstr(d, "what"));
}

/* text_flags - the notices due, the agencies and substitute notice, what is unknown. */
static void text_flags(FILE *out, const json_t *o)
{
    const json_t *flags = json_object_get(o, "flags");
    fprintf(out, "\nNOTICES DUE (from the rules table, on each jurisdiction's residents)\n");
    text_rows(out, json_object_get(flags, "due"), text_due,
              "  none found in the table (see UNKNOWN below)\n");
    fprintf(out, "  consumer reporting agencies:");
    text_names(out, json_object_get(flags, "consumer_reporting_agencies"));
    fprintf(out, "\n  substitute notice triggered:");
    text_names(out, json_object_get(flags, "substitute_notice"));
    fprintf(out, "\n");
    fprintf(out, "\nUNKNOWN \xe2\x80\x94 CHECK COUNSEL (the table has no data: never read as not "
                 "required)\n");
    text_rows(out, json_object_get(flags, "unknown"), text_unknown, "  nothing\n");
}

/* ---- HTML ---------------------------------------------------------------------------------- */

static void html_cell(FILE *out, const char *s)
{
    html_wrap(out, "<td>", s, "</td>");
}

static void html_number(FILE *out, long long n)
{
    fprintf(out, "<td class=n>%lld</td>", n);
}

/* html_cells - one cell for each key of o named in keys (a NULL-ended list), in order. */
static void html_cells(FILE *out, const json_t *o, const char *const *keys)
{
    for (; *keys; keys++)
        html_cell(out, jstr(o, *keys));
}

/* html_table - a table's opening and its row of column heads (markup, a NULL-ended list). */
static void html_table(FILE *out, const char *id, const char *const *heads)
{
    fprintf(out, "<table id=%s><tr>", id);
    for (; *heads; heads++)
        fprintf(out, "<th>%s</th>", *heads);
    fputs("</tr>\n", out);
}

/* html_rows - a table's rows, one an element of an array, each opened with tr, then the end
 * of the table. */
static void html_rows(FILE *out, const json_t *rows, const char *tr, row_printer row)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r)
    {
        fputs(tr, out);
        row(out, r);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* html_more - the line under a list that report.list_limit cut. */
static void html_more(FILE *out, const json_t *list)
{
    if (jint(list, "more") > 0)
        fprintf(out, "<p>... and %lld more (report.list_limit).</p>\n", jint(list, "more"));
}

static const char *const chart_colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                            "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

/* The chart's frame (SVG units): 900 by 320, the plot inside these margins. */
static const struct {
    double width, height, left, right, top, bottom;
} chart_frame = {900, 320, 60, 20, 20, 50};

/* What the chart's parts share: the x range (epoch seconds of whole days; first is
 * INFINITY when there is nothing to draw), the discovery day, one day's width and the
 * tallest day's notices. */
struct chart {
    double first, last, discovered;
    long day_count;
    double plot_w, plot_h, slot;
    long long max;
};

/* hold_time - a hold's time stamp as epoch seconds; false when it is not one. */
static bool hold_time(const json_t *h, const char *key, double *ret)
{
    struct tm tm = {0};
    if (!strptime(jstr(h, key), "%Y-%m-%dT%H:%M:%SZ", &tm))
        return false;
    *ret = (double)timegm(&tm);
    return true;
}

/* chart_range - the x range: every day with a notice, every hold period, the discovery. */
static void chart_range(const json_t *o, const json_t *days, const json_t *holds, struct chart *ch)
{
    ch->first = INFINITY;
    ch->last = -INFINITY;
    size_t i;
    const json_t *d;
    json_array_foreach(days, i, d)
    {
        double t = 0;
        if (date_parse(jstr(d, "day"), &t) == 0) {
            ch->first = fmin(ch->first, t);
            ch->last = fmax(ch->last, t);
        }
    }
    const json_t *h;
    json_array_foreach(holds, i, h)
    {
        double t;
        if (hold_time(h, "placed_at", &t))
            ch->first = fmin(ch->first, floor(t / DAY_SECONDS) * DAY_SECONDS);
        if (hold_time(h, "lawful_until", &t))
            ch->last = fmax(ch->last, floor(t / DAY_SECONDS) * DAY_SECONDS);
    }
    ch->discovered = NAN; /* the clock's start, marked on the chart */
    if (date_parse(json_string_value(json_object_get(o, "discovered_date")), &ch->discovered) ==
            0 &&
        isfinite(ch->first)) {
        ch->first = fmin(ch->first, ch->discovered);
        ch->last = fmax(ch->last, ch->discovered);
    }
}

/* chart_scale - the days shown, one day's width, and the tallest day (at least 1). */
static void chart_scale(const json_t *days, struct chart *ch)
{
    ch->day_count = (long)((ch->last - ch->first) / DAY_SECONDS) + 1;
    ch->plot_w = chart_frame.width - chart_frame.left - chart_frame.right;
    ch->plot_h = chart_frame.height - chart_frame.top - chart_frame.bottom;
    ch->slot = ch->plot_w / (double)ch->day_count;
    ch->max = 1;
    size_t i;
    const json_t *d;
    json_array_foreach(days, i, d)
    {
        long long sum = 0;
        const char *key;
        const json_t *v;
        json_object_foreach(json_object_get(d, "notified"), key, v) sum += json_integer_value(v);
        if (sum > ch->max)
            ch->max = sum;
    }
}

/* chart_holds - the hold periods, drawn first so that the bars stand over them. */
static void chart_holds(FILE *out, const json_t *holds, const struct chart *ch)
{
    size_t i;
    const json_t *h;
    json_array_foreach(holds, i, h)
    {
        double a, b;
        if (!hold_time(h, "placed_at", &a) || !hold_time(h, "lawful_until", &b))
            continue;
        double x0 = chart_frame.left + (a - ch->first) / DAY_SECONDS * ch->slot;
        double x1 = chart_frame.left + (b - ch->first) / DAY_SECONDS * ch->slot;
        if (x1 - x0 < 3)
            x1 = x0 + 3; /* a hold of minutes is still visible */
        fprintf(out,
                "<rect class=hold x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\""
                " fill=\"#f4a261\" fill-opacity=\"0.35\"><title>hold %lld on ",
                x0, chart_frame.top, x1 - x0, ch->plot_h, jint(h, "id"));
        html_escape(out, jstr(h, "scope"));
        fputs("</title></rect>\n", out);
    }
}

/* chart_day - one day's bar, its channels stacked in the order of the legend. */
static void chart_day(FILE *out, const json_t *d, const json_t *channels, const struct chart *ch)
{
    double t = 0;
    if (date_parse(jstr(d, "day"), &t) < 0)
        return;
    double x = chart_frame.left + (t - ch->first) / DAY_SECONDS * ch->slot + ch->slot * 0.1;
    double y = chart_frame.top + ch->plot_h;
    size_t c;
    const json_t *name;
    json_array_foreach(channels, c, name)
    {
        long long n = json_integer_value(
            json_object_get(json_object_get(d, "notified"), json_string_value(name)));
        if (n == 0)
            continue;
        double bar = (double)n / (double)ch->max * ch->plot_h;
        y -= bar;
        fprintf(out,
                "<rect class=bar x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
                " fill=\"%s\"><title>",
                x, y, ch->slot * 0.8, bar, chart_colours[c % ARRAY_SIZE(chart_colours)]);
        html_escape(out, jstr(d, "day"));
        fputc(' ', out);
        html_escape(out, json_string_value(name));
        fprintf(out, ": %lld</title></rect>\n", n);
    }
}

/* chart_axes - the discovery line, the axes, the count and the day labels. */
static void chart_axes(FILE *out, const struct chart *ch)
{
    const double left = chart_frame.left, top = chart_frame.top, plot_h = ch->plot_h;
    if (!isnan(ch->discovered)) {
        double x = left + (ch->discovered - ch->first) / DAY_SECONDS * ch->slot;
        fprintf(out,
                "<line id=discovered x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\""
                " stroke=\"#c00\" stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%.0f\""
                " font-size=11 fill=\"#c00\">discovered</text>\n",
                x, top, x, top + plot_h, x + 3, top + 12);
    }
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n", left,
            top + plot_h, left + ch->plot_w, top + plot_h);
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n", left,
            top, left, top + plot_h);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=end font-size=11>%lld</text>\n", left - 4,
            top + 10, ch->max);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=end font-size=11>0</text>\n", left - 4,
            top + plot_h);
    long step = ch->day_count > 10 ? (ch->day_count + 9) / 10 : 1;
    for (long k = 0; k < ch->day_count; k += step) {
        char label[16];
        iso_day((long)(ch->first / DAY_SECONDS) + k, label, sizeof(label));
        fprintf(out, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=middle font-size=11>%s</text>\n",
                left + ((double)k + 0.5) * ch->slot, top + plot_h + 16, label);
    }
}

/* chart_legend - a swatch per channel, then the hold period's. */
static void chart_legend(FILE *out, const json_t *channels)
{
    size_t c;
    const json_t *name;
    double lx = chart_frame.left;
    json_array_foreach(channels, c, name)
    {
        fprintf(out, "<rect x=\"%.0f\" y=\"%.0f\" width=12 height=12 fill=\"%s\"/>", lx,
                chart_frame.height - 18, chart_colours[c % ARRAY_SIZE(chart_colours)]);
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" font-size=12>", lx + 16, chart_frame.height - 8);
        html_escape(out, json_string_value(name));
        fputs("</text>\n", out);
        lx += 110;
    }
    fprintf(out,
            "<rect x=\"%.0f\" y=\"%.0f\" width=12 height=12 fill=\"#f4a261\""
            " fill-opacity=\"0.35\"/><text x=\"%.0f\" y=\"%.0f\" font-size=12>hold period"
            "</text>\n</svg>\n",
            lx, chart_frame.height - 18, lx + 16, chart_frame.height - 8);
}

/* html_chart - notices per day per channel as stacked bars, hold periods shaded; inline SVG */
static void html_chart(FILE *out, const json_t *o)
{
    fputs("<h2>Notices per day per channel</h2>\n", out);
    const json_t *chart = json_object_get(o, "notices_per_day");
    const json_t *days = json_object_get(chart, "days"),
                 *channels = json_object_get(chart, "channels");
    const json_t *holds = json_object_get(o, "holds");
    struct chart ch;
    chart_range(o, days, holds, &ch);
    fprintf(out,
            "<svg id=chart width=\"%.0f\" height=\"%.0f\""
            " viewBox=\"0 0 %.0f %.0f\" role=img aria-label=\"notices per day per channel\">\n",
            chart_frame.width, chart_frame.height, chart_frame.width, chart_frame.height);
    fprintf(out, "<rect x=0 y=0 width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n",
            chart_frame.width, chart_frame.height);
    if (!isfinite(ch.first)) {
        fprintf(out,
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=middle>no notice handed off yet"
                "</text></svg>\n",
                chart_frame.width / 2, chart_frame.height / 2);
        return;
    }
    chart_scale(days, &ch);
    chart_holds(out, holds, &ch);
    size_t i;
    const json_t *d;
    json_array_foreach(days, i, d) chart_day(out, d, channels, &ch);
    chart_axes(out, &ch);
    chart_legend(out, channels);
}

static void html_person(FILE *out, const json_t *p)
{
    html_cells(out, p, (const char *const[]){"ref", "name", "region", "state", "channel", NULL});
    html_number(out, jint(p, "days"));
    html_number(out, jint(p, "deadline_days"));
    fprintf(out, "<td class=n>%.2f</td>", json_real_value(json_object_get(p, "held_days")));
    html_cell(out, jstr(p, "notified_at"));
}

static void html_people(FILE *out, const char *id, const char *title, const json_t *list)
{
    fprintf(out, "<h2>%s: %lld</h2>\n", title, jint(list, "count"));
    html_table(out, id,
               (const char *const[]){"ref", "name", "region", "state", "channel", "days",
                                     "deadline", "held days", "notified at", NULL});
    html_rows(out, json_object_get(list, "people"), "<tr>", html_person);
    html_more(out, list);
}

/* html_verdict - one verdict cell: unknown in red (class unknown), required in bold red. */
static void html_verdict(FILE *out, const json_t *v)
{
    const char *shown = jstr(v, "shown");
    const char *due = json_string_value(json_object_get(v, "due"));
    const char *triggered = json_string_value(json_object_get(v, "triggered"));
    bool unknown = (due && strcmp(due, "unknown") == 0) ||
                   (triggered && strcmp(triggered, "unknown") == 0) ||
                   strncmp(shown, "not required per unverified", 27) == 0;
    bool flagged =
        (due && strcmp(due, "not required") != 0) || (triggered && strcmp(triggered, "yes") == 0);
    fprintf(out, "<td%s>", unknown ? " class=unknown" : flagged ? " class=flag" : "");
    html_escape(out, shown);
    fputs("</td>", out);
}

/* html_regulators - a jurisdiction's regulator notices in one cell, each with its verdict. */
static void html_regulators(FILE *out, const json_t *g)
{
    const char *state = jstr(g, "regulators_state");
    bool unknown = strcmp(state, "unknown") == 0;
    fprintf(out, "<td%s>", unknown ? " class=unknown" : "");
    if (unknown)
        fputs(UNKNOWN_COUNSEL "<br>", out);
    else if (strcmp(state, "none") == 0)
        fputs("none (no government notice in the table)<br>", out);
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(g, "regulators"), i, r)
    {
        const char *due = jstr(r, "due");
        const char *shown = jstr(r, "shown");
        const char *cls =
            strcmp(due, "unknown") == 0 || strncmp(shown, "not required per unverified", 27) == 0
                ? "unknown"
            : strcmp(due, "not required") == 0 ? "no"
                                               : "flag";
        fprintf(out, "<span class=%s>", cls);
        html_escape(out, jstr(r, "name"));
        fputs(": ", out);
        html_escape(out, shown);
        fputs(" (", out);
        html_escape(out, jstr(r, "threshold"));
        fputs("; ", out);
        html_escape(out, jstr(r, "deadline"));
        if (json_is_string(json_object_get(r, "due_by"))) {
            fputs(", by ", out);
            html_escape(out, jstr(r, "due_by"));
        }
        fputs(")</span><br>", out);
    }
    fputs("</td>", out);
}

/* html_head - the document head (no external resources: CSP default-src 'none'), the
 * campaign, the rules table's caveat and the discovery date. */
static void html_head(FILE *out, const json_t *o)
{
    fputs("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"
          " style-src 'unsafe-inline'\">\n<title>crier audit report: ",
          out);
    html_escape(out, jstr(o, "campaign"));
    fputs("</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
          "td,th{border:1px solid #bbb;padding:2px 8px;text-align:left}\n"
          "td.n{text-align:right}th{background:#eee}\n"
          ".caveat{border:2px solid #c00;padding:0.5em;background:#fff4f4}\n"
          ".flag{color:#c00;font-weight:bold}\n"
          ".unknown{color:#d00000;font-weight:bold}\n"
          "</style></head><body>\n<h1>Audit report: campaign ",
          out);
    html_escape(out, jstr(o, "campaign"));
    fputs("</h1>\n<p>Incident ", out);
    html_escape(out, jstr(o, "incident"));
    fprintf(out, "; campaign %s; policy ", jstr(o, "state"));
    html_escape(out, jstr(o, "policy"));
    fprintf(out, "; %lld people; as of %s.</p>\n", jint(o, "total"), jstr(o, "as_of"));
    const json_t *table = json_object_get(o, "deadline_table");
    fputs("<p class=caveat><b>Caveat.</b> ", out);
    html_escape(out, jstr(table, "caveat"));
    fputs(" (table: ", out);
    html_escape(out, jstr(table, "path"));
    fputs(")</p>\n", out);
    if (json_is_null(json_object_get(o, "discovered_date"))) {
        fputs("<p class=flag>Timeliness not measured: ", out);
        html_escape(out, jstr(o, "timeliness_note"));
        fputs("</p>\n", out);
    } else {
        fputs("<p>Discovered ", out);
        html_escape(out, jstr(o, "discovered_date"));
        fputs(" (", out);
        html_escape(out, jstr(o, "discovered_from"));
        fputs(").</p>\n", out);
    }
}

static void html_due(FILE *out, const json_t *d)
{
    html_cells(out, d, (const char *const[]){"jurisdiction", "name", NULL});
    fputs("<td class=flag>", out);
    html_escape(out, jstr(d, "shown"));
    fputs("</td>", out);
    html_cell(out, jstr(d, "threshold"));
    html_number(out, jint(d, "count"));
    char *rule = xasprintf("%s from %s", jstr(d, "deadline"), jstr(d, "from"));
    html_cell(out, rule);
    free(rule);
    html_cell(out, jstr(d, "due_by"));
    html_cell(out, json_is_string(json_object_get(d, "filed")) ? jstr(d, "filed") : "not filed");
}

static void html_unknown(FILE *out, const json_t *d)
{
    html_cells(out, d, (const char *const[]){"jurisdiction", "what", NULL});
}

/* html_flags - the notices due, and what the rules table does not know. */
static void html_flags(FILE *out, const json_t *o)
{
    const json_t *flags = json_object_get(o, "flags");
    fputs("<h2>Notices due</h2>\n", out);
    html_table(out, "due",
               (const char *const[]){"jurisdiction", "notice", "verdict", "threshold", "count",
                                     "deadline", "due by", "filed", NULL});
    html_rows(out, json_object_get(flags, "due"), "<tr>", html_due);
    fputs("<h2 class=unknown>Unknown \xe2\x80\x94 check counsel</h2>\n", out);
    html_table(out, "unknown",
               (const char *const[]){"jurisdiction", "what the rules table does not know", NULL});
    html_rows(out, json_object_get(flags, "unknown"), "<tr class=unknown>", html_unknown);
}

/* html_by_state - the states down, all and each channel across. */
static void html_by_state(FILE *out, const json_t *o)
{
    fputs("<h2>By state and channel</h2>\n<table id=by_state><tr><th>state</th><th>all</th>", out);
    const json_t *channels = json_object_get(o, "by_channel");
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)channels, key, value) html_wrap(out, "<th>", key, "</th>");
    fputs("</tr>\n", out);
    for (size_t s = 0; s < ARRAY_SIZE(shown_states); s++) {
        fprintf(out, "<tr><td>%s</td>", shown_states[s]);
        html_number(out, jint(json_object_get(o, "by_state"), shown_states[s]));
        json_object_foreach((json_t *)channels, key, value)
            html_number(out, jint(value, shown_states[s]));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* html_region - one jurisdiction's row. */
static void html_region(FILE *out, const char *code, const json_t *g)
{
    static const char *const counts[] = {"total",
                                         "notified",
                                         "on_time",
                                         "late",
                                         "overdue_not_notified",
                                         "pending_within_deadline",
                                         "no_usable_contact",
                                         "delayed_by_holds"};
    char buf[32], max[32];
    fputs("<tr>", out);
    html_cell(out, code);
    for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
        html_number(out, jint(g, counts[i]));
    html_cell(out, days_text(g, "max_days", max, sizeof(max)));
    char *deadline = xasprintf("%s (%s)", days_text(g, "deadline_days", buf, sizeof(buf)),
                               jstr(g, "deadline_from"));
    html_cell(out, deadline);
    free(deadline);
    const json_t *due = json_object_get(g, "deadline");
    char *due_by =
        xasprintf("%s (%s; %.2f hold days deducted)", jstr(due, "date"), jstr(due, "rule"),
                  json_real_value(json_object_get(due, "held_days_deducted")));
    html_cell(out, due_by);
    free(due_by);
    char *citation =
        xasprintf("%s%s", jstr(g, "citation"),
                  json_is_false(json_object_get(g, "verified")) ? " (unverified)" : "");
    html_cell(out, citation);
    free(citation);
    html_regulators(out, g);
    html_verdict(out, json_object_get(g, "consumer_reporting_agencies"));
    html_verdict(out, json_object_get(g, "substitute_notice"));
    fputs("</tr>\n", out);
}

static void html_regions(FILE *out, const json_t *o)
{
    fputs("<h2>By jurisdiction</h2>\n", out);
    html_table(out, "by_jurisdiction",
               (const char *const[]){"region", "people", "notified", "on time", "late",
                                     "not notified, overdue", "pending", "no usable contact",
                                     "delayed by holds", "most days", "deadline (days)", "due by",
                                     "citation", "regulators", "CRA notice", "substitute notice",
                                     NULL});
    const char *key;
    const json_t *value;
    json_object_foreach(json_object_get(o, "by_jurisdiction"), key, value)
        html_region(out, key, value);
    fputs("</table>\n", out);
}

static void html_timeliness(FILE *out, const json_t *o)
{
    const json_t *tl = json_object_get(o, "timeliness");
    timeliness_say(out, tl, "<h2>Timeliness</h2>\n<p>", true);
    html_people(out, "late", "Late (notified after the deadline)",
                json_object_get(tl, "late_people"));
    html_people(out, "overdue", "Not notified, past the deadline",
                json_object_get(tl, "overdue_people"));
}

static void html_unreached(FILE *out, const json_t *p)
{
    html_cells(out, p, (const char *const[]){"ref", "name", "region", NULL});
    fputs("<td>", out);
    size_t k;
    const json_t *reason;
    json_array_foreach(json_object_get(p, "reasons"), k, reason)
    {
        html_escape(out, json_string_value(reason));
        fputs("<br>", out);
    }
    fputs("</td>", out);
    html_cell(out, jstr(p, "last_reason"));
}

static void html_undeliverable(FILE *out, const json_t *o)
{
    const json_t *und = json_object_get(o, "undeliverable");
    fprintf(out,
            "<h2>Undeliverable: %lld</h2>\n<p>Letters returned: %lld; without usable contact:"
            " %lld.</p>\n",
            jint(und, "count"), jint(o, "returned_letters"), jint(o, "no_usable_contact"));
    html_table(
        out, "undeliverable",
        (const char *const[]){"ref", "name", "region", "reasons", "last reason in the log", NULL});
    html_rows(out, json_object_get(und, "people"), "<tr>", html_unreached);
    html_more(out, und);
    fputs("<p>Everyone not reached, with each last attempt: <code>", out);
    html_escape(out, jstr(und, "full_list"));
    fputs("</code></p>\n", out);
}

static void html_hold(FILE *out, const json_t *h)
{
    html_number(out, jint(h, "id"));
    html_cells(out, h,
               (const char *const[]){"scope", "form", "authority", "case", "placed_at", "lifted_at",
                                     "lawful_until", NULL});
    fprintf(out, "<td class=n>%.2f</td>", json_real_value(json_object_get(h, "lawful_days")));
    html_cell(out, json_is_true(json_object_get(h, "lapsed"))   ? "lapsed (oral, unconfirmed)"
                   : json_is_true(json_object_get(h, "active")) ? "active"
                                                                : "lifted");
}

static void html_holds(FILE *out, const json_t *o)
{
    const json_t *holds = json_object_get(o, "holds");
    fputs("<h2>Holds (lawful delay, not counted against the deadline)</h2>\n", out);
    html_table(out, "holds",
               (const char *const[]){"hold", "scope", "form", "authority", "case", "placed",
                                     "lifted", "lawful until", "days", "state", NULL});
    html_rows(out, holds, "<tr>", html_hold);
}

/* ---- substitute notice (engine/core/substitute.c) ------------------------------------------ */

/* read_substitute - the substitute-notice test per jurisdiction and what was done, in the
 * report's snapshot. */
static int read_substitute(struct crier_db *db, const struct report *r, json_t **ret, char *err,
                           size_t err_size)
{
    struct substitute_options o = {
        .campaign = r->options->campaign,
        .frameworks = r->options->frameworks,
        .postage = r->options->postage_per_letter,
        .print = r->options->print_per_letter,
    };
    return substitute_model(db, r->table, &o, ret, err, err_size);
}

/* substitute_verdict - one jurisdiction's substitute_notice in the report's shape from the
 * substitute model's entry v: triggered yes, no or unknown; because the tests met. */
static void substitute_verdict(json_t *sub, const json_t *v)
{
    const char *verdict = json_string_value(json_object_get(v, "verdict"));
    json_t *because = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(v, "tests"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "met")), "yes") == 0)
            json_array_append(because, json_object_get(t, "rule"));
    }
    json_object_set_new(sub, "triggered",
                        json_string(strcmp(verdict, "required") == 0       ? "yes"
                                    : strcmp(verdict, "not required") == 0 ? "no"
                                                                           : "unknown"));
    json_object_set(sub, "shown", json_object_get(v, "shown"));
    json_object_set_new(sub, "because", because);
    json_object_set(sub, "why", json_object_get(v, "tests"));
    json_object_set(sub, "estimated_cost", json_object_get(v, "estimated_cost"));
    json_object_del(sub, "cost_note");
}

/* substitute_merge - one answer in the whole report: each jurisdiction's and framework's
 * substitute_notice, flags.substitute_notice and the unknowns from the substitute model
 * (which also decides the cost test). */
static void substitute_merge(json_t *model)
{
    const json_t *m = json_object_get(model, "substitute");
    json_t *flags = json_object_get(model, "flags");
    json_t *unknown = json_object_get(flags, "unknown"), *kept = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(unknown, i, u)
    {
        if (strcmp(json_string_value(json_object_get(u, "what")), "substitute notice") != 0)
            json_array_append(kept, u);
    }
    json_t *flagged = json_array();
    const json_t *v;
    json_array_foreach(json_object_get(m, "jurisdictions"), i, v)
    {
        const char *code = json_string_value(json_object_get(v, "jurisdiction"));
        json_t *g = json_object_get(json_object_get(model, "by_jurisdiction"), code);
        if (g)
            substitute_verdict(json_object_get(g, "substitute_notice"), v);
        const char *verdict = json_string_value(json_object_get(v, "verdict"));
        if (strcmp(verdict, "required") == 0)
            json_array_append_new(flagged, json_string(code));
        else if (strcmp(verdict, "unknown") == 0)
            json_array_append_new(
                kept, json_pack("{s:s, s:s}", "jurisdiction", code, "what", "substitute notice"));
    }
    json_object_set_new(flags, "substitute_notice", flagged);
    json_object_set_new(flags, "unknown", kept);
    json_t *f;
    json_array_foreach(json_object_get(model, "frameworks"), i, f)
    {
        size_t k;
        json_array_foreach(json_object_get(m, "frameworks"), k, v)
        {
            if (strcmp(json_string_value(json_object_get(v, "jurisdiction")),
                       json_string_value(json_object_get(f, "code"))) == 0 &&
                json_is_object(json_object_get(f, "substitute_notice")))
                substitute_verdict(json_object_get(f, "substitute_notice"), v);
        }
    }
}

/* substitute_text - the report's SUBSTITUTE NOTICE section. */
static void substitute_text(FILE *out, const json_t *o)
{
    fprintf(out, "\nSUBSTITUTE NOTICE (per jurisdiction on its residents; crier substitute)\n");
    substitute_print(json_object_get(o, "substitute"), out);
}

/* substitute_html_row - one jurisdiction: verdict, why, what was done. */
static void substitute_html_row(FILE *out, const json_t *v)
{
    fputs("<tr><td>", out);
    html_escape(out, json_string_value(json_object_get(v, "jurisdiction")));
    const char *verdict = json_string_value(json_object_get(v, "verdict"));
    fprintf(out, "</td><td%s>", strcmp(verdict, "unknown") == 0 ? " class=\"unknown\"" : "");
    html_escape(out, json_string_value(json_object_get(v, "shown")));
    fputs("</td><td><ul>", out);
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(v, "tests"), i, t)
    {
        fputs("<li>", out);
        html_escape(out, json_string_value(json_object_get(t, "why")));
        fputs("</li>", out);
    }
    fputs("</ul></td><td><ul>", out);
    json_array_foreach(json_object_get(v, "done"), i, t)
    {
        fputs("<li>", out);
        html_escape(out, json_string_value(json_object_get(t, "at")));
        fputs(": ", out);
        html_escape(out, json_string_value(json_object_get(t, "detail")));
        fputs("</li>", out);
    }
    json_array_foreach(json_object_get(v, "posting_short"), i, t)
    {
        fputs("<li class=\"unknown\">too short: ", out);
        html_escape(out, json_string_value(t));
        fputs("</li>", out);
    }
    fputs("</ul></td></tr>\n", out);
}

/* substitute_html - the report's substitute-notice table. */
static void substitute_html(FILE *out, const json_t *o)
{
    const json_t *m = json_object_get(o, "substitute");
    fputs("<h2 id=\"substitute\">Substitute notice</h2>\n<table>\n<tr><th>jurisdiction</th>"
          "<th>substitute notice</th><th>why</th><th>done</th></tr>\n",
          out);
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(m, "frameworks"), i, v) substitute_html_row(out, v);
    json_array_foreach(json_object_get(m, "jurisdictions"), i, v) substitute_html_row(out, v);
    fputs("</table>\n", out);
    const json_t *email = json_object_get(m, "substitute_email");
    if (json_is_object(email)) {
        fputs("<p>Substitute email: campaign ", out);
        html_escape(out, json_string_value(json_object_get(email, "campaign")));
        fprintf(out,
                ", %lld queued, %lld sent, %lld undeliverable, %lld held by a law-enforcement "
                "hold.</p>\n",
                (long long)json_integer_value(json_object_get(email, "queued")),
                (long long)json_integer_value(json_object_get(email, "sent")),
                (long long)json_integer_value(json_object_get(email, "undeliverable")),
                (long long)json_integer_value(json_object_get(email, "held")));
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

int report_model(struct crier_db *db, const struct report_options *options, json_t **ret_model,
                 char *err, size_t err_size)
{
    struct report r = {.options = options};
    const char *path = options->deadlines ? options->deadlines : rules_default_path();
    int rc = rules_load(path, NULL, &r.table, err, err_size);
    if (rc < 0)
        return rc;
    r.late_people.people = json_array();
    r.overdue_people.people = json_array();
    r.filings = json_array();
    json_t *undeliverable = NULL;
    /* one snapshot for every figure; READ ONLY: the database refuses any write */
    rc = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    /* The report reads every row its cursors return, so plan them for the whole result:
     * at the default 0.1 the planner chose fast-start plans that aggregate the campaign's
     * log once per notice (7.8 s for 20,000 notices whose tables had no statistics yet,
     * as after a fresh load; bench/soak.sh). */
    if (rc == 0)
        rc = db_exec(db, "SET LOCAL cursor_tuple_fraction = 1", 0, NULL);
    if (rc < 0) {
        error_set(err, err_size, rc, "%s", db->error);
        goto done;
    }
    rc = read_campaign(db, &r, err, err_size);
    if (rc == 0)
        rc = read_holds(db, &r, err, err_size);
    if (rc == 0)
        rc = read_people(db, &r, err, err_size);
    if (rc == 0)
        rc = read_undeliverable(db, &r, &undeliverable, err, err_size);
    if (rc == 0)
        rc = read_filings(db, &r, err, err_size);
    json_t *substitute = NULL;
    if (rc == 0)
        rc = read_substitute(db, &r, &substitute, err, err_size);
    db_rollback(db); /* nothing to commit: it only read */
    if (rc == 0) {
        *ret_model = report_json(&r, undeliverable);
        undeliverable = NULL; /* the model owns it */
        json_object_set_new(*ret_model, "substitute", substitute);
        substitute_merge(*ret_model);
    }
done:
    json_decref(undeliverable);
    report_clear(&r);
    return rc;
}

void report_options_configure(struct report_options *options, const struct crier_config *config)
{
    options->deadlines = config->report.deadlines;
    options->oral_lapse_everywhere = config->report.oral_lapse_everywhere != 0;
    options->list_limit = config->report.list_limit;
    options->postage_per_letter = config->substitute.postage_per_letter;
    options->print_per_letter = config->substitute.print_per_letter;
}

/* The report's sections, one row each: how the text and the HTML file print it (NULL: not
 * in that one), in the order of both; each prints a member of the model (report_json()). What is
 * due comes first in the HTML file, under the chart, and last in the text, before substitute
 * notice. */
static const struct section {
    section_printer text, html;
} sections[] = {
    {text_head, html_head}, /* the campaign, the rules table, the discovery */
    {NULL, html_chart},
    {NULL, html_flags},
    {text_by_state, html_by_state},
    {text_regions, html_regions},
    {text_timeliness, html_timeliness},
    {text_undeliverable, html_undeliverable},
    {text_holds, html_holds},
    {text_flags, NULL},
    {substitute_text, substitute_html},
};

/* report_html - the model as one self-contained HTML file, one section a function. */
static int report_html(const json_t *o, const char *path, char *err, size_t err_size)
{
    FILE *out = fopen(path, "we");
    if (out == NULL)
        return error_set(err, err_size, -EIO, "%s: cannot write: %s", path, strerror(errno));
    for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
        if (sections[i].html)
            sections[i].html(out, o);
    fputs("</body></html>\n", out);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed)
        return error_set(err, err_size, -EIO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

int report_run(struct crier_db *db, const struct report_options *options, FILE *out, char *err,
               size_t err_size)
{
    json_t *model = NULL;
    int rc = report_model(db, options, &model, err, err_size);
    if (rc < 0)
        return rc;
    if (options->html_path) {
        rc = report_html(model, options->html_path, err, err_size);
        if (rc < 0)
            goto done;
    }
    if (options->json) {
        json_dumpf(model, out, JSON_INDENT(2));
        fputc('\n', out);
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
            if (sections[i].text)
                sections[i].text(out, model);
    }
    fflush(out);
done:
    json_decref(model);
    return rc;
}
