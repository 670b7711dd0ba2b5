/*
 * substitute.c - the substitute-notice test and its records (docs/unreached.md).
 *
 * Most US statutes let an organisation give substitute notice (email where an address is
 * known, a conspicuous website posting, notice to major statewide media) when notice would
 * cost more than a sum, when more than a number of people are to be notified, or when it
 * lacks sufficient contact information; HIPAA asks for it from 10 people with insufficient
 * or out-of-date contact information. The test is made per jurisdiction on its residents,
 * with the thresholds of the rules table (config/jurisdictions.yaml, rules.c): a threshold
 * the table does not know makes the answer "unknown", never "not required".
 *
 * The cost is an estimate crier can make: the letters still to send (residents not yet
 * reached) times postage and printing per letter (substitute.* in crier.yaml). Who lacks
 * sufficient contact is who the unreached list counts: undeliverable (no usable contact, or
 * every channel failed for good) and letters returned.
 *
 * Must never send anything by itself (substitute_write.c queues the email as a campaign,
 * which crier run sends) and never decide what the law is.
 */
#include "crier/substitute.h"
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/hold.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CRIER_SUBSTITUTE_TEMPLATES_DIR
#define CRIER_SUBSTITUTE_TEMPLATES_DIR "/usr/local/share/crier/templates/substitute"
#endif
#ifndef CRIER_SOURCE_SUBSTITUTE_TEMPLATES_DIR
#define CRIER_SOURCE_SUBSTITUTE_TEMPLATES_DIR CRIER_SUBSTITUTE_TEMPLATES_DIR
#endif

const char *substitute_templates_dir(const struct crier_config *config)
{
    if (config && !str_empty(config->substitute.templates))
        return config->substitute.templates;
    if (access(CRIER_SUBSTITUTE_TEMPLATES_DIR, R_OK) == 0)
        return CRIER_SUBSTITUTE_TEMPLATES_DIR;
    return CRIER_SOURCE_SUBSTITUTE_TEMPLATES_DIR; /* an uninstalled build */
}

/* ---- the counts ------------------------------------------------------------------------- */

/* One row per region and country as loaded (the report's jurisdiction, report.c): people,
 * reached (sent, delivered, mailed and not returned), cancelled, without sufficient contact
 * (undeliverable, or the letter of the current attempt came back), and of those, how many
 * have an email address now (the substitute email's people). */
static const char counts_sql[] =
    "WITH p AS ("
    " SELECT upper(btrim(coalesce(r.region, ''))) AS region, upper(btrim(r.country)) AS country,"
    "  n.state, n.recipient_seq, r.email IS NOT NULL AS loaded_email,"
    "  n.state = 'mailed' AND EXISTS (SELECT 1 FROM crier.dispatch_log d WHERE d.campaign_id = $1"
    "   AND d.event = 'returned' AND d.notice_id = n.id AND d.attempt = n.attempt) AS returned"
    " FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id"
    "  AND r.seq = n.recipient_seq WHERE n.campaign_id = $1)"
    " SELECT region, country, count(*),"
    " count(*) FILTER (WHERE state IN ('sent', 'delivered') OR (state = 'mailed' AND NOT "
    "returned)),"
    " count(*) FILTER (WHERE state = 'cancelled'),"
    " count(*) FILTER (WHERE state = 'undeliverable' OR returned),"
    /* the newest version's email, else the loaded one (recipient_now's rule, without its
     * second read of the recipient: a third of the report's time at 200,000 people) */
    " count(*) FILTER (WHERE (state = 'undeliverable' OR returned) AND coalesce((SELECT"
    "  v.email IS NOT NULL FROM crier.recipient_version v WHERE v.campaign_id = $1"
    "  AND v.seq = p.recipient_seq ORDER BY v.version DESC LIMIT 1), loaded_email))"
    " FROM p GROUP BY 1, 2 ORDER BY 1, 2";

struct place {
    char code[40];
    const struct rules_entry *entry;
    long people, reached, cancelled, no_contact, with_email;
};

/* place_code - the report's jurisdiction of a region and country: the US state, a
 * territory, the abroad entry that lists the country, else "country XX". */
static const struct rules_entry *place_code(const struct rules_table *t, const char *region,
                                            const char *country, char *code, size_t size)
{
    static const char *const territories[] = {"PR", "GU", "VI"};
    if (str_empty(country) || strcmp(country, "US") == 0) {
        snprintf(code, size, "%s", str_empty(region) ? "unknown" : region);
        return str_empty(region) ? NULL : rules_find(t, SECTION_JURISDICTION, region);
    }
    for (size_t i = 0; i < ARRAY_SIZE(territories); i++)
        if (strcmp(country, territories[i]) == 0) {
            snprintf(code, size, "%s", country);
            return rules_find(t, SECTION_JURISDICTION, country);
        }
    const struct rules_entry *e = rules_find_country(t, country);
    if (e)
        snprintf(code, size, "%s", e->code);
    else
        snprintf(code, size, "country %.8s", country);
    return e;
}

static int place_compare(const void *a, const void *b)
{
    const struct place *x = a, *y = b;
    bool xu = strcmp(x->code, "unknown") == 0, yu = strcmp(y->code, "unknown") == 0;
    if (xu != yu)
        return xu ? 1 : -1; /* "unknown" last, as in the report */
    return strcmp(x->code, y->code);
}

/* places_read - the counts of a campaign per jurisdiction, in the report's order; *ret_count
 * places. */
static int places_read(struct crier_db *db, const struct rules_table *t, const char *campaign_id,
                       struct place **ret, size_t *ret_count, char *err, size_t err_size)
{
    PGresult *res = NULL;
    const char *params[] = {campaign_id};
    int r = db_query(db, counts_sql, 1, params, &res);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    size_t count = 0;
    struct place *places = xcalloc((size_t)PQntuples(res) + 1, sizeof(*places));
    for (int i = 0; i < PQntuples(res); i++) {
        char code[40];
        const struct rules_entry *e =
            place_code(t, db_value(res, i, 0), db_value(res, i, 1), code, sizeof(code));
        struct place *p = NULL;
        for (size_t k = 0; k < count && p == NULL; k++)
            if (strcmp(places[k].code, code) == 0)
                p = &places[k];
        if (p == NULL) {
            p = &places[count++];
            snprintf(p->code, sizeof(p->code), "%s", code);
            p->entry = e;
        }
        p->people += atol(db_value(res, i, 2));
        p->reached += atol(db_value(res, i, 3));
        p->cancelled += atol(db_value(res, i, 4));
        p->no_contact += atol(db_value(res, i, 5));
        p->with_email += atol(db_value(res, i, 6));
    }
    PQclear(res);
    qsort(places, count, sizeof(*places), place_compare);
    *ret = places;
    *ret_count = count;
    return 0;
}

/* ---- the test --------------------------------------------------------------------------- */

enum met { MET_NO, MET_YES, MET_UNKNOWN };

/* One entry's tests as they are made: each test's row, the sentences of those met, and
 * whether any test was known (met or not) and any unknown. */
struct tests {
    json_t *rows, *because;
    bool any, unknown;
};

static void test_add(struct tests *t, const char *name, const char *threshold, enum met met,
                     char *sentence)
{
    static const char *const words[] = {"no", "yes", "unknown"};
    json_array_append_new(t->rows, json_pack("{s:s, s:s, s:s, s:s}", "rule", name, "threshold",
                                             threshold, "met", words[met], "why", sentence));
    if (met == MET_YES)
        json_array_append_new(t->because, json_string(sentence));
    if (met == MET_UNKNOWN)
        t->unknown = true;
    else
        t->any = true;
    free(sentence);
}

static enum met met_if(bool met)
{
    return met ? MET_YES : MET_NO;
}

static char *money(double usd)
{
    return xasprintf("$%.2f", usd);
}

/* test_cost - more than the entry's cost threshold? Unknown where the entry has none and no
 * out-of-date rule either (HIPAA's rule has no cost). */
static void test_cost(struct tests *t, const struct rules_entry *e, double cost, long remaining,
                      double per_letter)
{
    char *cost_text = money(cost), *per = money(per_letter);
    if (e->substitute_cost_above >= 0) {
        bool met = cost > (double)e->substitute_cost_above;
        test_add(t, "cost_above", "more than the cost", met_if(met),
                 xasprintf("estimated cost %s (%ld letters at %s) is %s $%ld", cost_text, remaining,
                           per, met ? "more than" : "not more than", e->substitute_cost_above));
    } else if (e->substitute_out_of_date_at_least < 0) {
        test_add(t, "cost_above", "unknown", MET_UNKNOWN,
                 xasprintf("estimated cost %s (%ld letters at %s): the table has no cost "
                           "threshold",
                           cost_text, remaining, per));
    }
    free(cost_text);
    free(per);
}

/* test_people - more people than the entry's count threshold? */
static void test_people(struct tests *t, const struct rules_entry *e, long people)
{
    if (e->substitute_people_above >= 0) {
        bool met = people > e->substitute_people_above;
        test_add(t, "people_above", "more than", met_if(met),
                 xasprintf("%ld people is %s %ld", people, met ? "more than" : "not more than",
                           e->substitute_people_above));
    } else if (e->substitute_out_of_date_at_least < 0) {
        test_add(t, "people_above", "unknown", MET_UNKNOWN,
                 xasprintf("%ld people: the table has no count threshold", people));
    }
}

/* test_contact - the people without sufficient contact: at least the entry's number, or
 * any at all where the entry says that alone calls for substitute notice. */
static void test_contact(struct tests *t, const struct rules_entry *e, long people, long no_contact)
{
    double share = people > 0 ? 100.0 * (double)no_contact / (double)people : 0;
    if (e->substitute_out_of_date_at_least >= 0) {
        bool met = no_contact >= e->substitute_out_of_date_at_least;
        test_add(t, "out_of_date_contact_at_least", "or more", met_if(met),
                 xasprintf("%ld without sufficient contact (%.1f%%) is %s %ld", no_contact, share,
                           met ? "at least" : "fewer than", e->substitute_out_of_date_at_least));
    }
    if (e->substitute_insufficient_contact == 1) {
        test_add(t, "insufficient_contact", "any", met_if(no_contact > 0),
                 xasprintf("%ld without sufficient contact (%.1f%%)", no_contact, share));
    } else if (e->substitute_insufficient_contact < 0 && e->substitute_out_of_date_at_least < 0) {
        test_add(t, "insufficient_contact", "unknown", MET_UNKNOWN,
                 xasprintf("%ld without sufficient contact (%.1f%%): the table does not say "
                           "whether that alone calls for substitute notice",
                           no_contact, share));
    }
}

/* verdict_json - "required" when any known test is met, "not required" when every test the
 * entry has is known and none is met, else "unknown"; with what the report shows for it. */
static json_t *verdict_json(struct tests *t, const struct rules_entry *e, double cost)
{
    json_t *v = json_object();
    const char *verdict = json_array_size(t->because) > 0 ? "required"
                          : t->unknown || !t->any         ? "unknown"
                                                          : "not required";
    bool verified = e && e->verified;
    const char *shown = strcmp(verdict, "unknown") == 0 ? "unknown \xe2\x80\x94 check counsel"
                        : strcmp(verdict, "not required") == 0 && !verified
                            ? "not required per unverified data \xe2\x80\x94 check counsel"
                            : verdict;
    json_object_set_new(v, "verdict", json_string(verdict));
    json_object_set_new(v, "shown", json_string(shown));
    json_object_set_new(v, "verified", json_boolean(verified));
    json_object_set_new(v, "because", t->because);
    json_object_set_new(v, "tests", t->rows);
    json_object_set_new(v, "estimated_cost", json_real(round(cost * 100) / 100));
    json_object_set_new(v, "consists_of",
                        e && e->substitute_consists_of ? json_string(e->substitute_consists_of)
                                                       : json_null());
    json_object_set_new(v, "citation", e && e->citation ? json_string(e->citation) : json_null());
    return v;
}

/*
 * judge - the test of one entry on counts: people, letters still to send, people without
 * sufficient contact (verdict_json says how the tests make a verdict).
 */
static json_t *judge(const struct rules_entry *e, long people, long remaining, long no_contact,
                     const struct substitute_options *o)
{
    struct tests t = {json_array(), json_array(), false, false};
    double per_letter = o->postage + o->print;
    double cost = (double)remaining * per_letter;
    if (e == NULL || !e->substitute_known) {
        test_add(&t, "rules", "unknown", MET_UNKNOWN,
                 xasprintf("the rules table has no substitute-notice rule for %s",
                           e ? e->code : "this jurisdiction"));
    } else {
        test_cost(&t, e, cost, remaining, per_letter);
        test_people(&t, e, people);
        test_contact(&t, e, people, no_contact);
    }
    return verdict_json(&t, e, cost);
}

static json_t *place_json(const struct place *p, const struct substitute_options *o)
{
    long remaining = p->people - p->reached - p->cancelled;
    json_t *v = judge(p->entry, p->people, remaining, p->no_contact, o);
    json_object_set_new(v, "jurisdiction", json_string(p->code));
    json_object_set_new(v, "name", json_string(p->entry ? p->entry->name : p->code));
    json_object_set_new(v, "residents", json_integer(p->people));
    json_object_set_new(v, "reached", json_integer(p->reached));
    json_object_set_new(v, "remaining_letters", json_integer(remaining));
    json_object_set_new(v, "without_sufficient_contact", json_integer(p->no_contact));
    json_object_set_new(
        v, "without_sufficient_contact_share",
        json_real(p->people ? round(1000.0 * (double)p->no_contact / (double)p->people) / 1000
                            : 0));
    json_object_set_new(v, "unreached_with_email", json_integer(p->with_email));
    return v;
}

/* ---- what was done ---------------------------------------------------------------------- */

static json_t *records_json(struct crier_db *db, const char *campaign_id, char *err,
                            size_t err_size, int *ret)
{
    PGresult *res = NULL;
    const char *params[] = {campaign_id};
    *ret = db_query(db,
                    "SELECT kind, jurisdiction, url, outlet, from_date::text, until_date::text,"
                    " detail, to_char(at AT TIME ZONE 'UTC', " DB_TIME_S "),"
                    " actor FROM crier.substitute_record WHERE campaign_id = $1 ORDER BY id",
                    1, params, &res);
    if (*ret < 0) {
        error_set(err, err_size, *ret, "%s", db->error);
        return NULL;
    }
    static const char *const keys[] = {"kind",  "jurisdiction", "url", "outlet", "from",
                                       "until", "detail",       "at",  "actor"};
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *one = json_object();
        for (int k = 0; k < (int)ARRAY_SIZE(keys); k++)
            json_object_set_new(one, keys[k],
                                PQgetisnull(res, i, k) ? json_null()
                                                       : json_string(db_value(res, i, k)));
        json_array_append_new(list, one);
    }
    PQclear(res);
    return list;
}

/* email_json - the substitute email campaign, if queued: its name, state and counts; held:
 * ready but covered by an active hold (a hold on the campaign holds its substitute email
 * through its companion, 016_substitute_holds.sql; one probe per ready email). */
static json_t *email_json(struct crier_db *db, const char *campaign_id, char *err, size_t err_size,
                          int *ret)
{
    PGresult *res = NULL;
    const char *params[] = {campaign_id, hold_release_lapsed_param()};
    *ret = db_query(
        db,
        "SELECT c.name, c.state, count(n.id),"
        " count(n.id) FILTER (WHERE n.state IN ('sent', 'delivered')),"
        " count(n.id) FILTER (WHERE n.state = 'undeliverable'),"
        " count(n.id) FILTER (WHERE n.state = 'ready'"
        "  AND crier.notice_held(c.id, n.recipient_seq, $2::boolean))"
        " FROM crier.substitute_email s JOIN crier.campaign c ON c.id = s.email_campaign_id"
        " LEFT JOIN crier.notice n ON n.campaign_id = c.id WHERE s.campaign_id = $1"
        " GROUP BY c.name, c.state",
        2, params, &res);
    if (*ret < 0) {
        error_set(err, err_size, *ret, "%s", db->error);
        return NULL;
    }
    json_t *o =
        PQntuples(res) == 0
            ? json_null()
            : json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "campaign", db_value(res, 0, 0), "state",
                        db_value(res, 0, 1), "queued", (json_int_t)atol(db_value(res, 0, 2)),
                        "sent", (json_int_t)atol(db_value(res, 0, 3)), "undeliverable",
                        (json_int_t)atol(db_value(res, 0, 4)), "held",
                        (json_int_t)atol(db_value(res, 0, 5)));
    PQclear(res);
    return o;
}

/* done_for - what was done for one jurisdiction: the posting (campaign-wide), its media
 * notices; for a framework (code NULL), the posting and every media notice. */
static json_t *done_for(const json_t *records, const char *code)
{
    json_t *done = json_array();
    size_t i;
    const json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *kind = json_string_value(json_object_get(r, "kind"));
        const char *j = json_string_value(json_object_get(r, "jurisdiction"));
        if (strcmp(kind, "posted") == 0 || (j && (code == NULL || strcmp(j, code) == 0)))
            json_array_append(done, (json_t *)r);
    }
    return done;
}

/* date_days - days since the epoch of a YYYY-MM-DD date, or -1. */
static long date_days(const char *date)
{
    struct tm tm = {0};
    const char *end = date ? strptime(date, "%Y-%m-%d", &tm) : NULL;
    return end && *end == '\0' ? (long)(timegm(&tm) / 86400) : -1;
}

/* posting_short - the postings recorded (substitute posted) that stay up fewer than days
 * days, first to last day counted: HIPAA asks for 90 (45 CFR 164.404(d)(2)(ii)(A)). One line
 * each; the report and crier substitute print them beside the entry. */
static json_t *posting_short(const json_t *records, long days)
{
    json_t *list = json_array();
    size_t i;
    const json_t *r;
    json_array_foreach(records, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "kind")), "posted") != 0)
            continue;
        const char *from = json_string_value(json_object_get(r, "from"));
        const char *until = json_string_value(json_object_get(r, "until"));
        long first = date_days(from), last = date_days(until);
        if (first < 0 || last < 0 || last - first + 1 >= days)
            continue;
        char due[16];
        struct tm tm;
        time_t t = (time_t)(first + days - 1) * 86400;
        strftime(due, sizeof(due), "%Y-%m-%d", gmtime_r(&t, &tm));
        json_array_append_new(
            list, json_sprintf("the website posting at %s from %s until %s stays up %ld days: "
                               "fewer than the %ld required; keep it up until %s or later and "
                               "record that (crier substitute posted)",
                               json_string_value(json_object_get(r, "url")), from, until,
                               last - first + 1, days, due));
    }
    return list;
}

/* ---- the model -------------------------------------------------------------------------- */

/* campaign_read - id, meta frameworks (as report.c reads them) and meta of a campaign. */
static int campaign_read(struct crier_db *db, const char *name, char *id, size_t id_size,
                         char **ret_frameworks, json_t **ret_meta, char *err, size_t err_size)
{
    PGresult *res = NULL;
    int r = campaign_row(db,
                         "SELECT id, " CAMPAIGN_FRAMEWORKS_SQL ", coalesce(meta, '{}')::text"
                         " FROM crier.campaign WHERE name = $1",
                         name, NULL, &res, err, err_size);
    if (r < 0)
        return r;
    snprintf(id, id_size, "%s", db_value(res, 0, 0));
    *ret_frameworks = PQgetisnull(res, 0, 1) ? NULL : xstrdup(db_value(res, 0, 1));
    if (ret_meta)
        *ret_meta = json_loads(db_value(res, 0, 2), 0, NULL);
    PQclear(res);
    return 0;
}

/* frameworks_json - each declared framework that has substitute rules, judged on the whole
 * campaign. */
static json_t *frameworks_json(const struct rules_table *t, const char *list,
                               const struct place *places, size_t count, const json_t *meta,
                               const json_t *records, const struct substitute_options *o)
{
    json_t *out = json_array();
    long people = 0, reached = 0, cancelled = 0, no_contact = 0, with_email = 0;
    for (size_t i = 0; i < count; i++) {
        people += places[i].people;
        reached += places[i].reached;
        cancelled += places[i].cancelled;
        no_contact += places[i].no_contact;
        with_email += places[i].with_email;
    }
    char *copy = xstrdup(list ? list : ""), *save = NULL;
    for (char *f = strtok_r(copy, ", ", &save); f; f = strtok_r(NULL, ", ", &save)) {
        const struct rules_entry *e = rules_find(t, SECTION_FRAMEWORK, f);
        if (e == NULL)
            continue;
        struct place all = {.entry = e,
                            .people = people,
                            .reached = reached,
                            .cancelled = cancelled,
                            .no_contact = no_contact,
                            .with_email = with_email};
        snprintf(all.code, sizeof(all.code), "%s", e->code);
        json_t *v = place_json(&all, o);
        if (strcmp(e->code, "HIPAA") == 0) {
            const char *phone = json_string_value(json_object_get(meta, "toll_free_number"));
            json_object_set_new(v, "toll_free_number",
                                str_empty(phone) ? json_null() : json_string(phone));
            json_object_set_new(v, "posting_days", json_integer(90));
            json_object_set_new(v, "posting_short", posting_short(records, 90));
        }
        json_object_set_new(v, "done", done_for(records, NULL));
        json_array_append_new(out, v);
    }
    free(copy);
    return out;
}

int substitute_model(struct crier_db *db, const struct rules_table *table,
                     const struct substitute_options *o, json_t **ret, char *err, size_t err_size)
{
    char id[32];
    char *frameworks = NULL;
    json_t *meta = NULL;
    int r = campaign_read(db, o->campaign, id, sizeof(id), &frameworks, &meta, err, err_size);
    if (r < 0)
        return r;
    struct place *places = NULL;
    size_t count = 0;
    json_t *records = NULL, *email = NULL;
    r = places_read(db, table, id, &places, &count, err, err_size);
    if (r == 0)
        records = records_json(db, id, err, err_size, &r);
    if (r == 0)
        email = email_json(db, id, err, err_size, &r);
    if (r < 0)
        goto done;
    json_t *m = json_object(), *list = json_array(), *required = json_array();
    for (size_t i = 0; i < count; i++) {
        json_t *v = place_json(&places[i], o);
        json_object_set_new(v, "done", done_for(records, places[i].code));
        if (strcmp(json_string_value(json_object_get(v, "verdict")), "required") == 0)
            json_array_append_new(required, json_string(places[i].code));
        json_array_append_new(list, v);
    }
    json_t *fw = frameworks_json(table, o->frameworks ? o->frameworks : frameworks, places, count,
                                 meta, records, o);
    size_t i;
    json_t *f;
    json_array_foreach(fw, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "verdict")), "required") == 0)
            json_array_append(required, json_object_get(f, "jurisdiction"));
    }
    json_object_set_new(m, "campaign", json_string(o->campaign));
    json_object_set_new(
        m, "costs",
        json_pack("{s:f, s:f}", "postage_per_letter", o->postage, "print_per_letter", o->print));
    json_object_set_new(m, "required", required);
    json_object_set_new(m, "jurisdictions", list);
    json_object_set_new(m, "frameworks", fw);
    json_object_set_new(m, "records", records);
    json_object_set_new(m, "substitute_email", email);
    records = NULL;
    *ret = m;
done:
    json_decref(records);
    json_decref(meta);
    free(places);
    free(frameworks);
    return r;
}

int substitute_assess(struct crier_db *db, const struct substitute_options *o, json_t **ret,
                      char *err, size_t err_size)
{
    struct rules_table *table = NULL;
    int r = rules_load(o->rules_path ? o->rules_path : rules_default_path(), NULL, &table, err,
                       err_size);
    if (r < 0)
        return r;
    r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (r < 0)
        error_set(err, err_size, r, "%s", db->error);
    else {
        r = substitute_model(db, table, o, ret, err, err_size);
        db_rollback(db); /* it only read */
    }
    rules_free(table);
    return r;
}

/* ---- text ------------------------------------------------------------------------------- */

static void print_one(const json_t *v, FILE *out)
{
    fprintf(out, "  %-10s %s", json_string_value(json_object_get(v, "jurisdiction")),
            json_string_value(json_object_get(v, "shown")));
    fprintf(out, " (%lld residents, %lld letters to send, %lld without sufficient contact)\n",
            (long long)json_integer_value(json_object_get(v, "residents")),
            (long long)json_integer_value(json_object_get(v, "remaining_letters")),
            (long long)json_integer_value(json_object_get(v, "without_sufficient_contact")));
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(v, "tests"), i, t)
        fprintf(out, "      %s: %s\n", json_string_value(json_object_get(t, "met")),
                json_string_value(json_object_get(t, "why")));
    const json_t *d;
    json_array_foreach(json_object_get(v, "done"), i, d)
        fprintf(out, "      done %s: %s\n", json_string_value(json_object_get(d, "at")),
                json_string_value(json_object_get(d, "detail")));
    json_array_foreach(json_object_get(v, "posting_short"), i, d)
        fprintf(out, "      TOO SHORT: %s\n", json_string_value(d));
}

void substitute_print(const json_t *m, FILE *out)
{
    const json_t *costs = json_object_get(m, "costs");
    fprintf(out,
            "substitute notice for %s (cost per letter: postage $%.2f + print $%.2f; "
            "not legal advice)\n",
            json_string_value(json_object_get(m, "campaign")),
            json_real_value(json_object_get(costs, "postage_per_letter")),
            json_real_value(json_object_get(costs, "print_per_letter")));
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(m, "frameworks"), i, v) print_one(v, out);
    json_array_foreach(json_object_get(m, "jurisdictions"), i, v) print_one(v, out);
    const json_t *email = json_object_get(m, "substitute_email");
    if (json_is_object(email))
        fprintf(out,
                "  substitute email: campaign %s (%s): %lld queued, %lld sent, %lld "
                "undeliverable, %lld held by a law-enforcement hold\n",
                json_string_value(json_object_get(email, "campaign")),
                json_string_value(json_object_get(email, "state")),
                (long long)json_integer_value(json_object_get(email, "queued")),
                (long long)json_integer_value(json_object_get(email, "sent")),
                (long long)json_integer_value(json_object_get(email, "undeliverable")),
                (long long)json_integer_value(json_object_get(email, "held")));
    fprintf(out, "  required in:");
    json_array_foreach(json_object_get(m, "required"), i, v)
        fprintf(out, " %s", json_string_value(v));
    fprintf(out, "%s\n", json_array_size(json_object_get(m, "required")) ? "" : " none");
}

/* ---- records ---------------------------------------------------------------------------- */

static bool one_line(const char *s, size_t max)
{
    return s && s[0] != '\0' && strlen(s) <= max && strpbrk(s, "\r\n") == NULL;
}

/* record - a substitute_record row and its dispatch-log row, in one transaction. */
static int record(struct crier_db *db, const char *campaign, const char *kind,
                  const char *const values[5], const char *detail, char *err, size_t err_size)
{
    const char *params[] = {campaign,  kind,      values[0], values[1],
                            values[2], values[3], values[4], detail};
    PGresult *res = NULL;
    int r = db_begin(db);
    if (r == 0)
        r = db_query(db,
                     "WITH c AS (SELECT id FROM crier.campaign WHERE name = $1),"
                     " l AS (INSERT INTO crier.dispatch_log (campaign_id, event, to_state, actor,"
                     "  detail) SELECT id, 'substitute', $2, session_user, $8 FROM c)"
                     " INSERT INTO crier.substitute_record (campaign_id, kind, jurisdiction, url,"
                     " outlet, from_date, until_date, detail) SELECT id, $2, $3, $4, $5, $6::date,"
                     " $7::date, $8 FROM c RETURNING id",
                     8, params, &res);
    if (r == 0 && PQntuples(res) == 0) {
        PQclear(res);
        db_rollback(db);
        return error_set(err, err_size, -ENOENT, "no campaign named '%s'", campaign);
    }
    PQclear(res);
    r = db_end(db, r);
    return r < 0 ? error_set(err, err_size, r, "%s", db->error) : 0;
}

int substitute_posted(struct crier_db *db, const struct substitute_act *a, char *err,
                      size_t err_size)
{
    regex_t url;
    regcomp(&url, "^https?://[^[:space:]/]+", REG_EXTENDED | REG_NOSUB | REG_ICASE);
    bool url_ok = one_line(a->url, 2000) && regexec(&url, a->url, 0, NULL, 0) == 0;
    regfree(&url);
    if (!url_ok)
        return error_set(err, err_size, -EINVAL,
                         "--url must be the posting's http:// or https:// address, one line");
    if (!date_valid_past(a->from))
        return error_set(err, err_size, -EINVAL,
                         "--from must be the day the posting went up, YYYY-MM-DD, not in the "
                         "future");
    if (!date_valid(a->until) || strcmp(a->until, a->from) < 0)
        return error_set(err, err_size, -EINVAL,
                         "--until must be the last day of the posting, YYYY-MM-DD, not before "
                         "--from");
    char *detail = xasprintf("website posting at %s from %s until %s", a->url, a->from, a->until);
    const char *values[] = {NULL, a->url, NULL, a->from, a->until};
    int r = record(db, a->campaign, "posted", values, detail, err, err_size);
    free(detail);
    return r;
}

int substitute_media(struct crier_db *db, const struct substitute_act *a, char *err,
                     size_t err_size)
{
    if (!one_line(a->outlet, 200))
        return error_set(err, err_size, -EINVAL, "--outlet must name the outlet, one line");
    if (!date_valid_past(a->date))
        return error_set(err, err_size, -EINVAL,
                         "--date must be the day the notice ran, YYYY-MM-DD, not in the future");
    bool state_ok = a->jurisdiction && strlen(a->jurisdiction) == 2;
    for (size_t i = 0; state_ok && i < 2; i++)
        state_ok = a->jurisdiction[i] >= 'A' && a->jurisdiction[i] <= 'Z';
    if (!state_ok)
        return error_set(err, err_size, -EINVAL,
                         "--state must be the jurisdiction's two-letter code in capitals (CA, DC, "
                         "PR)");
    char *detail =
        xasprintf("media notice in %s on %s for %s", a->outlet, a->date, a->jurisdiction);
    const char *values[] = {a->jurisdiction, NULL, a->outlet, a->date, NULL};
    int r = record(db, a->campaign, "media", values, detail, err, err_size);
    free(detail);
    return r;
}
