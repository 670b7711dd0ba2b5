/*
 * rules.c - the jurisdiction rules table: read config/jurisdictions.yaml (or counsel's copy),
 * check its schema, and answer "is this notice due for N people, and by when?".
 *
 * The schema is strict because a wrong "not required" is the worst answer this tool can
 * give: every key of an entry must be present (`unknown` is a value, absence is an error),
 * every threshold is an explicit comparison ("500 or more"), an unknown key is refused (a
 * misspelt key would otherwise read as missing data), and every problem is reported as
 * FILE:LINE:COL from libyaml's marks. Nothing here has a default.
 *
 * Must never decide what the law is: it reads data and reports what the data says.
 *
 * SECURITY: the table is configuration, written by counsel or the operator; it is parsed as
 * untrusted text all the same (no size or count is trusted).
 */
#include "crier/rules.h"
#include "crier/crier.h"
#include "crier/yamldoc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>

#ifndef CRIER_RULES_FILE
#define CRIER_RULES_FILE "/usr/local/share/crier/jurisdictions.yaml"
#endif
#ifndef CRIER_SOURCE_RULES_FILE
#define CRIER_SOURCE_RULES_FILE CRIER_RULES_FILE
#endif

#define DAY_SECONDS 86400.0

/* phrases of a deadline without a fixed count, as statutes write them */
static const char *const no_fixed_count[] = {
    "without unreasonable delay", "without undue delay",          "as soon as feasible",
    "as soon as practicable",     "most expedient time possible",
};

static const char *const event_names[] = {
    [EVENT_UNKNOWN] = "unknown",
    [EVENT_DISCOVERY] = "discovery",
    [EVENT_DETERMINATION] = "determination",
    [EVENT_CONFIRMATION] = "confirmation",
    [EVENT_DETECTION] = "detection",
    [EVENT_AWARENESS] = "awareness",
    [EVENT_INDIVIDUAL_NOTICE] = "individual-notice",
    [EVENT_CLEARANCE] = "clearance",
};

static const char *const source_kinds[] = {"statute", "source-check", "secondary", "none", NULL};
static const char *const orders[] = {"before", "with", "after", "unknown", NULL};
static const char *const content_rules[] = {
    "title",          "headings",          "min_type_points", "must_state",
    "must_not_state", "credit_monitoring", "element",         NULL,
};

/* ---- small pure parsers (unit-tested) ------------------------------------------------------ */

/* whole_number - text is a whole number >= 0 with nothing after it. */
static int whole_number(const char *text, long *ret_value)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text)
        return -EINVAL;
    *ret_value = v;
    return (int)(end - text);
}

int rules_threshold_parse(const char *text, struct rules_threshold *ret_threshold)
{
    if (text == NULL)
        return -EINVAL;
    struct rules_threshold t = {.comparison = COMPARE_UNKNOWN, .count = 0};
    long n = 0;
    int used;
    if (strcmp(text, "unknown") == 0) {
        t.comparison = COMPARE_UNKNOWN;
    } else if (strcmp(text, "none") == 0) {
        t.comparison = COMPARE_NONE;
    } else if (strcmp(text, "any number") == 0) {
        t.comparison = COMPARE_ANY;
    } else if (strncmp(text, "more than ", 10) == 0 && (used = whole_number(text + 10, &n)) > 0 &&
               text[10 + used] == '\0') {
        t.comparison = COMPARE_MORE_THAN;
        t.count = n;
    } else if ((used = whole_number(text, &n)) > 0 && strcmp(text + used, " or more") == 0 &&
               n > 0) {
        t.comparison = COMPARE_AT_LEAST;
        t.count = n;
    } else {
        return -EINVAL;
    }
    *ret_threshold = t;
    return 0;
}

void rules_threshold_text(const struct rules_threshold *threshold, char *buf, size_t size)
{
    switch (threshold->comparison) {
    case COMPARE_UNKNOWN:
        snprintf(buf, size, "unknown");
        break;
    case COMPARE_NONE:
        snprintf(buf, size, "none");
        break;
    case COMPARE_ANY:
        snprintf(buf, size, "any number");
        break;
    case COMPARE_AT_LEAST:
        snprintf(buf, size, "%ld or more", threshold->count);
        break;
    case COMPARE_MORE_THAN:
        snprintf(buf, size, "more than %ld", threshold->count);
        break;
    }
}

int rules_period_parse(const char *text, struct rules_period *ret_period)
{
    if (text == NULL)
        return -EINVAL;
    struct rules_period p = {.unit = PERIOD_UNKNOWN};
    long n = 0;
    int used;
    if (strcmp(text, "unknown") == 0) {
        *ret_period = p;
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(no_fixed_count); i++) {
        if (strcmp(text, no_fixed_count[i]) == 0) {
            p.unit = PERIOD_NO_FIXED_COUNT;
            *ret_period = p;
            return 0;
        }
    }
    used = whole_number(text, &n);
    if (used <= 0 || n <= 0 || n > 3650)
        return -EINVAL;
    const char *unit = text + used;
    if (strcmp(unit, n == 1 ? " day" : " days") == 0)
        p.unit = PERIOD_DAYS;
    else if (strcmp(unit, n == 1 ? " business day" : " business days") == 0)
        p.unit = PERIOD_BUSINESS_DAYS;
    else if (strcmp(unit, n == 1 ? " hour" : " hours") == 0)
        p.unit = PERIOD_HOURS;
    else
        return -EINVAL;
    p.amount = n;
    *ret_period = p;
    return 0;
}

const char *rules_event_name(enum rules_event event)
{
    return (size_t)event < ARRAY_SIZE(event_names) ? event_names[event] : "unknown";
}

static int event_parse(const char *text, enum rules_event *ret_event)
{
    for (size_t i = 0; text && i < ARRAY_SIZE(event_names); i++) {
        if (strcmp(text, event_names[i]) == 0) {
            *ret_event = (enum rules_event)i;
            return 0;
        }
    }
    return -EINVAL;
}

enum rules_verdict rules_threshold_verdict(const struct rules_threshold *threshold, long count)
{
    switch (threshold->comparison) {
    case COMPARE_UNKNOWN:
        return VERDICT_UNKNOWN;
    case COMPARE_NONE:
        return VERDICT_NOT_REQUIRED;
    case COMPARE_ANY:
        return count > 0 ? VERDICT_REQUIRED : VERDICT_NOT_REQUIRED;
    case COMPARE_AT_LEAST:
        return count >= threshold->count ? VERDICT_REQUIRED : VERDICT_NOT_REQUIRED;
    case COMPARE_MORE_THAN:
        return count > threshold->count ? VERDICT_REQUIRED : VERDICT_NOT_REQUIRED;
    }
    return VERDICT_UNKNOWN;
}

enum rules_verdict rules_regulator_verdict(const struct rules_regulator *regulator, long count)
{
    enum rules_verdict v = rules_threshold_verdict(&regulator->threshold, count);
    if (v == VERDICT_REQUIRED && regulator->condition != NULL)
        return VERDICT_CONDITIONAL;
    return v;
}

const char *rules_verdict_name(enum rules_verdict verdict)
{
    switch (verdict) {
    case VERDICT_REQUIRED:
        return "required";
    case VERDICT_NOT_REQUIRED:
        return "not required";
    case VERDICT_CONDITIONAL:
        return "conditional";
    case VERDICT_UNKNOWN:
        break;
    }
    return "unknown";
}

int rules_period_end(const struct rules_period *period, double start, double *ret_end)
{
    if (period->unit == PERIOD_HOURS) {
        *ret_end = start + (double)period->amount * 3600.0;
        return 0;
    }
    /* a day-counted deadline ends at the end (24:00 UTC) of its last day */
    double day = floor(start / DAY_SECONDS);
    if (period->unit == PERIOD_DAYS) {
        *ret_end = (day + (double)period->amount + 1) * DAY_SECONDS;
        return 0;
    }
    if (period->unit == PERIOD_BUSINESS_DAYS) {
        long left = period->amount;
        while (left > 0) {
            day += 1;
            time_t t = (time_t)(day * DAY_SECONDS);
            struct tm tm;
            gmtime_r(&t, &tm);
            if (tm.tm_wday != 0 && tm.tm_wday != 6)
                left--;
        }
        *ret_end = (day + 1) * DAY_SECONDS;
        return 0;
    }
    return -EINVAL;
}

/* ---- the reader ------------------------------------------------------------------------------ */

struct reader {
    yaml_document_t *document;
    const char *path;
    FILE *diag;
    char *err;
    size_t err_size;
    unsigned errors;
};

static void __attribute__((format(printf, 3, 4)))
reader_fail(struct reader *y, const yaml_node_t *node, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    size_t line = node ? node->start_mark.line + 1 : 1;
    size_t column = node ? node->start_mark.column + 1 : 1;
    if (y->errors++ == 0 && y->err)
        snprintf(y->err, y->err_size, "%s:%zu:%zu: %s", y->path, line, column, message);
    if (y->diag)
        fprintf(y->diag, "%s:%zu:%zu: %s\n", y->path, line, column, message);
}

static const char *scalar(const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static yaml_node_t *node_at(struct reader *y, int index)
{
    return yaml_document_get_node(y->document, index);
}

/* get - the value of key in a mapping, or NULL. */
static const yaml_node_t *get(struct reader *y, const yaml_node_t *mapping, const char *key)
{
    if (mapping == NULL || mapping->type != YAML_MAPPING_NODE)
        return NULL;
    for (const yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
         p < mapping->data.mapping.pairs.top; p++) {
        const char *k = scalar(node_at(y, p->key));
        if (k && strcmp(k, key) == 0)
            return node_at(y, p->value);
    }
    return NULL;
}

/* known_keys - refuse a key not in the list: a misspelt key would read as missing data. */
static void known_keys(struct reader *y, const yaml_node_t *mapping, const char *where,
                       const char *const *keys)
{
    for (const yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
         p < mapping->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = node_at(y, p->key);
        const char *k = scalar(key);
        bool found = false;
        for (const char *const *known = keys; k && *known && !found; known++)
            found = strcmp(k, *known) == 0;
        if (!found)
            reader_fail(y, key, "unknown key '%s' in %s", k ? k : "?", where);
    }
}

/* need - the value of a key that must be present. */
static const yaml_node_t *need(struct reader *y, const yaml_node_t *mapping, const char *key,
                               const char *where)
{
    const yaml_node_t *v = get(y, mapping, key);
    if (v == NULL)
        reader_fail(y, mapping, "%s has no '%s' (write 'unknown' when the source does not say)",
                    where, key);
    return v;
}

static bool is_word(const yaml_node_t *node, const char *word)
{
    const char *t = scalar(node);
    return t && strcmp(t, word) == 0;
}

/* text - a non-empty string value, or NULL after an error. */
static char *text(struct reader *y, const yaml_node_t *node, const char *where)
{
    const char *t = scalar(node);
    if (node == NULL)
        return NULL;
    if (t == NULL || t[0] == '\0') {
        reader_fail(y, node, "%s must be a non-empty string", where);
        return NULL;
    }
    return xstrdup(t);
}

static bool boolean(struct reader *y, const yaml_node_t *node, const char *where)
{
    if (is_word(node, "true"))
        return true;
    if (!is_word(node, "false"))
        reader_fail(y, node, "%s must be true or false", where);
    return false;
}

static const char *one_of(struct reader *y, const yaml_node_t *node, const char *where,
                          const char *const *choices)
{
    const char *t = scalar(node);
    for (const char *const *c = choices; t && *c; c++)
        if (strcmp(t, *c) == 0)
            return *c;
    char list[256] = "";
    for (const char *const *c = choices; *c; c++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", c == choices ? "" : ", ",
                 *c);
    reader_fail(y, node, "%s must be one of: %s", where, list);
    return NULL;
}

/* count_or_unknown - a whole number >= 0, or -1 for `unknown`. */
static long count_or_unknown(struct reader *y, const yaml_node_t *node, const char *where)
{
    long v = -1;
    if (node == NULL || is_word(node, "unknown"))
        return -1;
    const char *t = scalar(node);
    int used = whole_number(t, &v);
    if (used <= 0 || t[used] != '\0') {
        reader_fail(y, node, "%s must be a whole number or unknown", where);
        return -1;
    }
    return v;
}

static void threshold(struct reader *y, const yaml_node_t *node, const char *where,
                      struct rules_threshold *ret)
{
    ret->comparison = COMPARE_UNKNOWN;
    if (node == NULL)
        return;
    if (rules_threshold_parse(scalar(node), ret) < 0)
        reader_fail(y, node,
                    "%s must be an explicit comparison: \"N or more\", \"more than N\", "
                    "\"any number\", \"none\" or \"unknown\" (got '%s')",
                    where, scalar(node) ? scalar(node) : "a non-scalar");
}

static void period(struct reader *y, const yaml_node_t *node, const char *where,
                   struct rules_period *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (node == NULL)
        return;
    if (rules_period_parse(scalar(node), ret) < 0) {
        reader_fail(y, node,
                    "%s must be \"N days\", \"N business days\", \"N hours\", \"unknown\" or one "
                    "of: without unreasonable delay, without undue delay, as soon as feasible, as "
                    "soon as practicable, most expedient time possible",
                    where);
        return;
    }
    ret->text = xstrdup(scalar(node));
}

static enum rules_event event(struct reader *y, const yaml_node_t *node, const char *where)
{
    enum rules_event e = EVENT_UNKNOWN;
    if (node && event_parse(scalar(node), &e) < 0)
        reader_fail(y, node,
                    "%s must be one of: discovery, determination, confirmation, detection, "
                    "awareness, individual-notice, clearance, unknown",
                    where);
    return e;
}

static void regulator_read(struct reader *y, const yaml_node_t *node, const char *where,
                           bool entry_verified, bool is_cra, struct rules_regulator *r)
{
    static const char *const keys[] = {"name",    "threshold", "deadline", "from", "order",
                                       "counted", "condition", "verified", "note", NULL};
    static const char *const cra_keys[] = {"threshold", "verified", "note", NULL};
    static const char *const counted[] = {"residents", "campaign", NULL};
    memset(r, 0, sizeof(*r));
    r->verified = entry_verified;
    r->order = xstrdup("unknown");
    if (node->type != YAML_MAPPING_NODE) {
        reader_fail(y, node, "%s must be a mapping {%s}", where,
                    is_cra ? "threshold, verified, note" : "name, threshold, deadline, order, ...");
        r->name = xstrdup("?");
        return;
    }
    known_keys(y, node, where, is_cra ? cra_keys : keys);
    r->name = is_cra ? xstrdup("consumer reporting agencies")
                     : text(y, need(y, node, "name", where), where);
    if (r->name == NULL)
        r->name = xstrdup("?");
    char part[224];
    snprintf(part, sizeof(part), "%s threshold", where);
    threshold(y, need(y, node, "threshold", where), part, &r->threshold);
    if (!is_cra) {
        snprintf(part, sizeof(part), "%s deadline", where);
        period(y, need(y, node, "deadline", where), part, &r->deadline);
        const yaml_node_t *from = get(y, node, "from");
        if ((r->deadline.unit == PERIOD_DAYS || r->deadline.unit == PERIOD_BUSINESS_DAYS ||
             r->deadline.unit == PERIOD_HOURS) &&
            from == NULL)
            reader_fail(y, node, "%s has a deadline of '%s' but no 'from' (the event it runs from)",
                        where, r->deadline.text);
        r->from = event(y, from, where);
        const char *order = one_of(y, need(y, node, "order", where), where, orders);
        if (order) {
            free(r->order);
            r->order = xstrdup(order);
        }
        const yaml_node_t *c = get(y, node, "counted");
        if (c) {
            const char *word = one_of(y, c, where, counted);
            r->per_campaign = word && strcmp(word, "campaign") == 0;
        }
        r->condition = text(y, get(y, node, "condition"), where);
    }
    const yaml_node_t *verified = get(y, node, "verified");
    if (verified)
        r->verified = boolean(y, verified, where);
    r->note = text(y, get(y, node, "note"), where);
}

static void regulator_clear(struct rules_regulator *r)
{
    FREE_MANY(r->name, r->deadline.text, r->order, r->condition, r->note);
}

static void entry_clear(struct rules_entry *e)
{
    strv_free(e->countries);
    FREE_MANY(e->code, e->name, e->citation, e->source_kind, e->source_text, e->checked, e->note,
              e->individual.text, e->individual_condition);
    for (size_t i = 0; i < e->regulator_count; i++)
        regulator_clear(&e->regulators[i]);
    regulator_clear(&e->cra);
    FREE_MANY(e->regulators, e->substitute_consists_of, e->after_clearance.text);
    for (size_t i = 0; i < e->content_count; i++) {
        free(e->content[i].rule);
        free(e->content[i].text);
    }
    free(e->content);
}

struct rules_table *rules_free(struct rules_table *table)
{
    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < table->count; i++)
        entry_clear(&table->entries[i]);
    FREE_MANY(table->entries, table->path, table->caveat);
    free(table);
    return NULL;
}

/* checked_date - YYYY-MM-DD, a real date. */
static char *checked_date(struct reader *y, const yaml_node_t *node, const char *where)
{
    const char *t = scalar(node);
    struct tm tm = {0};
    const char *end = t ? strptime(t, "%Y-%m-%d", &tm) : NULL;
    if (node == NULL)
        return NULL;
    if (end == NULL || *end != '\0' || strlen(t) != 10) {
        reader_fail(y, node, "%s must be the date it was checked, YYYY-MM-DD", where);
        return NULL;
    }
    return xstrdup(t);
}

/* mapping_known - a section that is either `unknown` (or absent) or a mapping of keys:
 * true for a mapping, its keys checked; false otherwise (said, when it is neither). */
static bool mapping_known(struct reader *y, const yaml_node_t *node, const char *where,
                          const char *const *keys, const char *shape)
{
    if (node == NULL || is_word(node, "unknown"))
        return false;
    if (node->type != YAML_MAPPING_NODE) {
        reader_fail(y, node, "%s must be %s or unknown", where, shape);
        return false;
    }
    known_keys(y, node, where, keys);
    return true;
}

static void entry_individual(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                             const char *where)
{
    static const char *const keys[] = {"deadline", "from", "condition", NULL};
    if (!mapping_known(y, node, where, keys, "{deadline, from}"))
        return;
    e->individual_known = true;
    period(y, need(y, node, "deadline", where), where, &e->individual);
    e->individual_from = event(y, need(y, node, "from", where), where);
    e->individual_condition = text(y, get(y, node, "condition"), where);
}

/*
 * list_read - a list entry (regulators, content): unknown or absent, none, or a sequence
 * of what (an empty one only when empty_ok). Sets *state; returns the sequence's length
 * when it is given, else 0 (a wrong node is reported).
 */
static size_t list_read(struct reader *y, const yaml_node_t *node, const char *where,
                        const char *what, bool empty_ok, enum rules_list_state *state)
{
    *state = LIST_UNKNOWN;
    if (node == NULL || is_word(node, "unknown"))
        return 0;
    if (is_word(node, "none")) {
        *state = LIST_NONE;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        reader_fail(y, node, "%s must be a list of %s, none or unknown", where, what);
        return 0;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0 && !empty_ok) {
        reader_fail(y, node, "%s is an empty list: write none or unknown", where);
        return 0;
    }
    *state = LIST_GIVEN;
    return n;
}

static void entry_regulators(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                             const char *where)
{
    size_t n = list_read(y, node, where, "regulators", false, &e->regulators_state);
    if (e->regulators_state != LIST_GIVEN)
        return;
    e->regulators = xcalloc(n, sizeof(*e->regulators));
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        char one[192];
        snprintf(one, sizeof(one), "%s[%zu]", where, e->regulator_count + 1);
        regulator_read(y, node_at(y, *item), one, e->verified, false,
                       &e->regulators[e->regulator_count++]);
    }
}

static void entry_substitute(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                             const char *where)
{
    static const char *const keys[] = {"cost_above",           "people_above",
                                       "insufficient_contact", "out_of_date_contact_at_least",
                                       "consists_of",          NULL};
    e->substitute_cost_above = e->substitute_people_above = -1;
    e->substitute_out_of_date_at_least = -1;
    e->substitute_insufficient_contact = -1;
    if (!mapping_known(y, node, where, keys, "a mapping"))
        return;
    e->substitute_known = true;
    e->substitute_cost_above = count_or_unknown(y, get(y, node, "cost_above"), where);
    e->substitute_people_above = count_or_unknown(y, get(y, node, "people_above"), where);
    e->substitute_out_of_date_at_least =
        count_or_unknown(y, get(y, node, "out_of_date_contact_at_least"), where);
    const yaml_node_t *insufficient = get(y, node, "insufficient_contact");
    if (insufficient && !is_word(insufficient, "unknown"))
        e->substitute_insufficient_contact = boolean(y, insufficient, where) ? 1 : 0;
    const yaml_node_t *consists = get(y, node, "consists_of");
    if (consists && !is_word(consists, "unknown"))
        e->substitute_consists_of = text(y, consists, where);
}

static void entry_delay(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                        const char *where)
{
    static const char *const keys[] = {"allowed", "after_clearance", "oral_lapse_days", NULL};
    e->delay_allowed = -1;
    e->oral_lapse_days = -1;
    if (!mapping_known(y, node, where, keys, "{allowed, after_clearance}"))
        return;
    e->delay_known = true;
    const yaml_node_t *allowed = need(y, node, "allowed", where);
    if (allowed && !is_word(allowed, "unknown"))
        e->delay_allowed = boolean(y, allowed, where) ? 1 : 0;
    period(y, need(y, node, "after_clearance", where), where, &e->after_clearance);
    e->oral_lapse_days = count_or_unknown(y, get(y, node, "oral_lapse_days"), where);
}

static void entry_content(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                          const char *where)
{
    static const char *const keys[] = {"rule", "text", "months", "verified", NULL};
    size_t n = list_read(y, node, where, "rules", true, &e->content_state);
    if (e->content_state != LIST_GIVEN)
        return;
    e->content = xcalloc(n ? n : 1, sizeof(*e->content));
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        const yaml_node_t *rule = node_at(y, *item);
        if (rule->type != YAML_MAPPING_NODE) {
            reader_fail(y, rule, "%s: each rule is {rule, text}", where);
            continue;
        }
        known_keys(y, rule, where, keys);
        struct rules_content *c = &e->content[e->content_count++];
        const char *name = one_of(y, need(y, rule, "rule", where), where, content_rules);
        c->rule = xstrdup(name ? name : "?");
        c->text = text(y, need(y, rule, "text", where), where);
        c->months = count_or_unknown(y, get(y, rule, "months"), where);
        const yaml_node_t *verified = get(y, rule, "verified");
        c->verified = verified ? boolean(y, verified, where) : e->verified;
    }
}

/* entry_source - where the entry's facts come from: its source, citation, the date they
 * were checked, and whether they were verified (only with a citation). */
static void entry_source(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                         const char *where)
{
    static const char *const source_keys[] = {"kind", "text", NULL};
    const yaml_node_t *source = need(y, node, "source", where);
    if (source && source->type == YAML_MAPPING_NODE) {
        known_keys(y, source, where, source_keys);
        const char *kind = one_of(y, need(y, source, "kind", where), "source.kind", source_kinds);
        e->source_kind = kind ? xstrdup(kind) : NULL;
        e->source_text = text(y, need(y, source, "text", where), where);
    } else if (source) {
        reader_fail(y, source, "%s: source must be {kind, text}", where);
    }
    const yaml_node_t *citation = need(y, node, "citation", where);
    e->citation = text(y, citation, where);
    if (e->citation && strcmp(e->citation, "unknown") == 0 && e->source_kind &&
        strcmp(e->source_kind, "statute") == 0)
        reader_fail(y, citation, "%s: a source of kind statute needs its citation", where);
    e->checked = checked_date(y, need(y, node, "checked", where), where);
    const yaml_node_t *verified = need(y, node, "verified", where);
    if (verified)
        e->verified = boolean(y, verified, where);
    if (e->verified && e->citation && strcmp(e->citation, "unknown") == 0)
        reader_fail(y, verified, "%s: an entry without a citation cannot be verified", where);
}

/* entry_cra - the credit reporting agencies' notice; unknown names them generically. */
static void entry_cra(struct reader *y, struct rules_entry *e, const yaml_node_t *cra,
                      const char *where)
{
    memset(&e->cra, 0, sizeof(e->cra));
    if (cra && !is_word(cra, "unknown")) {
        e->cra_known = true;
        regulator_read(y, cra, where, e->verified, true, &e->cra);
    } else {
        e->cra.name = xstrdup("consumer reporting agencies");
        e->cra.order = xstrdup("unknown");
    }
}

/* entry_countries - an abroad entry's ISO 3166 codes (node: the entry, for a missing list's
 * message); other sections have none. */
static void entry_countries(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                            const yaml_node_t *countries, const char *where)
{
    if (e->section == SECTION_ABROAD) {
        if (countries == NULL || countries->type != YAML_SEQUENCE_NODE) {
            reader_fail(y, countries ? countries : node,
                        "%s: an abroad entry needs countries: [ISO 3166 alpha-2 codes]", where);
        } else {
            size_t n =
                (size_t)(countries->data.sequence.items.top - countries->data.sequence.items.start);
            e->countries = xcalloc(n + 1, sizeof(*e->countries));
            size_t k = 0;
            for (yaml_node_item_t *item = countries->data.sequence.items.start;
                 item < countries->data.sequence.items.top; item++) {
                const char *c = scalar(node_at(y, *item));
                if (c == NULL || strlen(c) != 2 || !isupper((unsigned char)c[0]) ||
                    !isupper((unsigned char)c[1]))
                    reader_fail(y, node_at(y, *item), "%s: a country is two capital letters",
                                where);
                else
                    e->countries[k++] = xstrdup(c);
            }
        }
    } else if (countries) {
        reader_fail(y, countries, "%s: countries belong to entries under 'abroad'", where);
    }
}

/* The parts of an entry each read by a function of its own, in the order of their messages;
 * each is required ("unknown" where the facts are not known). */
static const struct {
    const char *key;
    void (*read)(struct reader *y, struct rules_entry *e, const yaml_node_t *node,
                 const char *where);
} entry_parts[] = {
    {"individual", entry_individual},         {"regulators", entry_regulators},
    {"credit_reporting_agencies", entry_cra}, {"substitute_notice", entry_substitute},
    {"law_enforcement_delay", entry_delay},   {"content", entry_content},
};

static void entry_read(struct reader *y, struct rules_entry *e, const yaml_node_t *key,
                       const yaml_node_t *node, enum rules_section section)
{
    static const char *const keys[] = {"name",
                                       "citation",
                                       "source",
                                       "checked",
                                       "verified",
                                       "individual",
                                       "regulators",
                                       "credit_reporting_agencies",
                                       "substitute_notice",
                                       "law_enforcement_delay",
                                       "content",
                                       "countries",
                                       "note",
                                       NULL};
    e->section = section;
    e->line = key->start_mark.line + 1;
    e->column = key->start_mark.column + 1;
    e->code = xstrdup(scalar(key));
    for (char *c = e->code; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    char where[96];
    snprintf(where, sizeof(where), "entry %s", e->code);
    known_keys(y, node, where, keys);
    e->name = text(y, need(y, node, "name", where), where);

    entry_source(y, e, node, where);

    for (size_t k = 0; k < sizeof(entry_parts) / sizeof(entry_parts[0]); k++) {
        char part[160];
        snprintf(part, sizeof(part), "%s %s", where, entry_parts[k].key);
        entry_parts[k].read(y, e, need(y, node, entry_parts[k].key, where), part);
    }
    e->note = text(y, get(y, node, "note"), where);

    entry_countries(y, e, node, get(y, node, "countries"), where);
}

static void section_read(struct reader *y, struct rules_table *t, const yaml_node_t *root,
                         const char *name, enum rules_section section)
{
    const yaml_node_t *mapping = get(y, root, name);
    if (mapping == NULL) {
        reader_fail(y, root, "the table has no '%s' section", name);
        return;
    }
    if (mapping->type != YAML_MAPPING_NODE) {
        reader_fail(y, mapping, "'%s' must be a mapping of codes to entries", name);
        return;
    }
    size_t n = (size_t)(mapping->data.mapping.pairs.top - mapping->data.mapping.pairs.start);
    t->entries = xreallocarray(t->entries, t->count + n + 1, sizeof(*t->entries));
    for (const yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
         p < mapping->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = node_at(y, p->key), *value = node_at(y, p->value);
        const char *code = scalar(key);
        if (code == NULL || code[0] == '\0' || value->type != YAML_MAPPING_NODE) {
            reader_fail(y, key, "each entry of '%s' is CODE: {name: ..., citation: ..., ...}",
                        name);
            continue;
        }
        if (rules_find(t, section, code) != NULL) {
            reader_fail(y, key, "'%s' appears twice in '%s'", code, name);
            continue;
        }
        struct rules_entry *e = &t->entries[t->count++];
        memset(e, 0, sizeof(*e));
        entry_read(y, e, key, value, section);
    }
}

/* rules_read - the table from its document, as yaml_doc_from_*() loaded it (load: its
 * result); path names it in messages. Deletes the document. */
static int rules_read(int load, yaml_document_t *document, const char *path, FILE *diag,
                      struct rules_table **ret_table, char *err, size_t err_size)
{
    if (load < 0) {
        if (diag)
            fprintf(diag, "%s\n", err);
        return load;
    }
    struct reader y = {
        .document = document, .path = path, .diag = diag, .err = err, .err_size = err_size};
    struct rules_table *t = xcalloc(1, sizeof(*t));
    t->path = xstrdup(path);
    const yaml_node_t *root = yaml_document_get_root_node(document);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        reader_fail(&y, root, "expected a mapping (schema, caveat, jurisdictions, ...)");
    } else {
        static const char *const keys[] = {"schema",     "caveat", "jurisdictions",
                                           "frameworks", "abroad", NULL};
        known_keys(&y, root, "the table", keys);
        const yaml_node_t *schema = get(&y, root, "schema");
        if (!is_word(schema, "2"))
            reader_fail(&y, schema ? schema : root,
                        "schema: 2 is required (this is not a crier rules table of schema 2; "
                        "docs/jurisdictions.md)");
        t->caveat = text(&y, need(&y, root, "caveat", "the table"), "caveat");
        section_read(&y, t, root, "jurisdictions", SECTION_JURISDICTION);
        section_read(&y, t, root, "frameworks", SECTION_FRAMEWORK);
        section_read(&y, t, root, "abroad", SECTION_ABROAD);
    }
    yaml_document_delete(document);
    if (y.errors > 0) {
        rules_free(t);
        return -EINVAL;
    }
    *ret_table = t;
    return 0;
}

int rules_parse(const char *text, size_t length, const char *name, FILE *diag,
                struct rules_table **ret_table, char *err, size_t err_size)
{
    yaml_document_t document;
    int r = yaml_doc_from_text(text, length, name, &document, err, err_size);
    return rules_read(r, &document, name, diag, ret_table, err, err_size);
}

int rules_load(const char *path, FILE *diag, struct rules_table **ret_table, char *err,
               size_t err_size)
{
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        int code = errno;
        if (diag)
            fprintf(diag, "%s: cannot open the rules table: %s\n", path, strerror(code));
        return error_set(err, err_size, -ENOENT, "%s: cannot open the rules table: %s", path,
                         strerror(code));
    }
    yaml_document_t document;
    int r = yaml_doc_from_file(file, path, &document, err, err_size);
    fclose(file);
    return rules_read(r, &document, path, diag, ret_table, err, err_size);
}

const char *rules_default_path(void)
{
    FILE *f = fopen(CRIER_RULES_FILE, "re");
    if (f) {
        fclose(f);
        return CRIER_RULES_FILE;
    }
    return CRIER_SOURCE_RULES_FILE; /* an uninstalled build runs from its source tree */
}

const struct rules_entry *rules_find(const struct rules_table *table, enum rules_section section,
                                     const char *code)
{
    for (size_t i = 0; code && i < table->count; i++)
        if (table->entries[i].section == section && strcasecmp(table->entries[i].code, code) == 0)
            return &table->entries[i];
    return NULL;
}

const struct rules_entry *rules_find_country(const struct rules_table *table, const char *country)
{
    for (size_t i = 0; country && i < table->count; i++) {
        const struct rules_entry *e = &table->entries[i];
        for (char **c = e->countries; e->section == SECTION_ABROAD && c && *c; c++)
            if (strcasecmp(*c, country) == 0)
                return e;
    }
    return NULL;
}
