/*
 * content.c - the rules table's content rules against the templates, at `campaign start`: a
 * California notice without its title or headings in order, a Massachusetts notice that says
 * what happened or how many were affected, an Illinois notice that gives the count, a breach
 * of SSNs without the credit-monitoring offer a state requires, a HIPAA notice without one of
 * the 164.404(c) elements: each refuses the start with FILE:LINE:COL.
 *
 * A rule is made checkable by what crier knows of templates: its variables (the meta keys of
 * docs/templates.md: meta.what_happened is the nature of the breach, meta.records_affected the
 * count) and its text (a heading line, a phrase). Comments ({{! }}) are blanked before any
 * search, so a comment that names a forbidden variable does not fail, and one that quotes a
 * required phrase does not pass. A rule whose text crier has no check for is listed as not
 * checked, never passed silently.
 *
 * Must never change a template; it only reads them.
 */
#include "crier/content.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/letter.h"
#include "crier/render.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct source {
    const struct template *template;
    char *text; /* the template with its comments blanked (newlines kept) */
    size_t length;
};

static void source_load(struct source *s, const struct template *t)
{
    size_t length = 0;
    const char *raw = template_source(t, &length);
    s->template = t;
    s->length = length;
    s->text = xmalloc(length + 1);
    memcpy(s->text, raw, length);
    s->text[length] = '\0';
    for (char *c = s->text; (c = strstr(c, "{{!")) != NULL;) {
        char *end = strstr(c, "}}");
        char *stop = end ? end + 2 : s->text + length;
        for (; c < stop; c++)
            if (*c != '\n')
                *c = ' ';
    }
}

static void __attribute__((format(printf, 5, 6)))
fail_at(FILE *diag, const struct source *s, size_t offset, int *failures, const char *fmt, ...)
{
    size_t line = 1, column = 1;
    text_position(s->text, s->length, offset, &line, &column);
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    fprintf(diag, "%s:%zu:%zu: %s\n", template_path(s->template), line, column, message);
    (*failures)++;
}

static const char *find_nocase(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *h = haystack; *h; h++)
        if (strncasecmp(h, needle, n) == 0)
            return h;
    return NULL;
}

/* variable_use - where the template inserts or tests variable (not in a comment), or NULL. */
static const char *variable_use(const struct source *s, const char *variable)
{
    for (const char *c = s->text; (c = strstr(c, "{{")) != NULL; c += 2) {
        const char *v = c + 2;
        if (*v == '#' || *v == '^' || *v == '{' || *v == '&')
            v++;
        while (*v == ' ')
            v++;
        size_t n = strlen(variable);
        if (strncmp(v, variable, n) == 0 && (v[n] == '}' || v[n] == ' '))
            return c;
    }
    return NULL;
}

/* heading_line - the offset of a line that is the heading text ("## Text" in Markdown, the
 * whole line in plain text, ignoring case and surrounding blanks), or -1. */
static long heading_line(const struct source *s, const char *heading)
{
    size_t n = strlen(heading);
    const char *line = s->text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *p = line;
        while (p < line + len && (*p == '#' || *p == ' ' || *p == '\t'))
            p++;
        const char *q = line + len;
        while (q > p && (q[-1] == ' ' || q[-1] == '\r' || q[-1] == '\t'))
            q--;
        if ((size_t)(q - p) == n && strncasecmp(p, heading, n) == 0)
            return (long)(line - s->text);
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static bool meta_has(const json_t *meta, const char *key, const char *word)
{
    const json_t *v = json_object_get(meta, key);
    if (json_is_string(v)) {
        char *copy = xstrdup(json_string_value(v)), *save = NULL;
        bool found = false;
        for (char *w = strtok_r(copy, ", ", &save); w && !found; w = strtok_r(NULL, ", ", &save))
            found = strcasecmp(w, word) == 0;
        free(copy);
        return found;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (json_is_string(item) && strcasecmp(json_string_value(item), word) == 0)
            return true;
    }
    return false;
}

static long meta_number(const json_t *meta, const char *key)
{
    const json_t *v = json_object_get(meta, key);
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_string(v)) {
        char *end = NULL;
        long n = strtol(json_string_value(v), &end, 10);
        return end && *end == '\0' && end != json_string_value(v) ? n : -1;
    }
    return -1;
}

/* check_title - the notice carries the title the rule names. */
static void check_title(const struct rules_entry *e, const struct rules_content *rule,
                        const struct source *s, const struct content_campaign *c,
                        const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    /* the title is in the body (letter, email text) or in the subject the channel
     * sends it under (email.subject) */
    const char *subject = NULL;
    size_t len = 0;
    const struct template *t =
        body->subject ? template_find(c->templates, body->subject, NULL) : NULL;
    if (t)
        subject = template_source(t, &len);
    if (strstr(s->text, rule->text) == NULL && !(subject && strstr(subject, rule->text)))
        fail_at(diag, s, 0, failures, "%s: the notice must carry the title \"%s\" (%s)", code,
                rule->text, e->citation);
}

/* check_headings - the rule's headings ("A | B | C") are there, in that order. */
static void check_headings(const struct rules_entry *e, const struct rules_content *rule,
                           const struct source *s, const struct content_campaign *c,
                           const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    if (strstr(template_name(s->template), ".html"))
        return; /* the text and letter forms carry the headings' order */
    char *copy = xstrdup(rule->text), *save = NULL;
    long previous = -1;
    const char *previous_heading = NULL;
    for (char *h = strtok_r(copy, "|", &save); h; h = strtok_r(NULL, "|", &save)) {
        while (*h == ' ')
            h++;
        char *end = h + strlen(h);
        while (end > h && end[-1] == ' ')
            *--end = '\0';
        long at = heading_line(s, h);
        if (at < 0)
            fail_at(diag, s, 0, failures, "%s: the heading \"%s\" is missing (%s)", code, h,
                    e->citation);
        else if (at < previous)
            fail_at(diag, s, (size_t)at, failures,
                    "%s: the heading \"%s\" must come after \"%s\" (%s)", code, h, previous_heading,
                    e->citation);
        if (at >= 0) {
            previous = at;
            previous_heading = h;
        }
    }
    free(copy);
}

/* check_must_not_state - the notice leaves out what the rule forbids (the nature of the
 * breach, the count). */
static void check_must_not_state(const struct rules_entry *e, const struct rules_content *rule,
                                 const struct source *s, const struct content_campaign *c,
                                 const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    /* the nature of the breach and the count are meta.what_happened and
     * meta.records_affected in crier's templates (docs/templates.md) */
    const char *variable = find_nocase(rule->text, "nature")   ? "meta.what_happened"
                           : find_nocase(rule->text, "number") ? "meta.records_affected"
                                                               : NULL;
    const char *use = variable ? variable_use(s, variable) : NULL;
    if (use)
        fail_at(diag, s, (size_t)(use - s->text), failures,
                "%s: the notice must not state %s, and {{%s}} does (%s)", code, rule->text,
                variable, e->citation);
}

/* check_must_state - the notice says what the rule requires (a delay by law enforcement,
 * the police report, the security freeze). */
static void check_must_state(const struct rules_entry *e, const struct rules_content *rule,
                             const struct source *s, const struct content_campaign *c,
                             const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    const char *phrase = find_nocase(rule->text, "police report")     ? "police report"
                         : find_nocase(rule->text, "security freeze") ? "security freeze"
                                                                      : NULL;
    bool delayed = find_nocase(rule->text, "delayed by law enforcement") != NULL;
    if (delayed && variable_use(s, "delayed_for_law_enforcement") == NULL)
        fail_at(diag, s, 0, failures,
                "%s: the notice must state %s ({{#delayed_for_law_enforcement}}) (%s)", code,
                rule->text, e->citation);
    else if (phrase && find_nocase(s->text, phrase) == NULL)
        fail_at(diag, s, 0, failures, "%s: the notice must state %s (\"%s\" is not in it) (%s)",
                code, rule->text, phrase, e->citation);
}

/* check_credit_monitoring - where SSNs (or licence numbers) were exposed, the months of
 * credit monitoring offered, and the offer in the notice. */
static void check_credit_monitoring(const struct rules_entry *e, const struct rules_content *rule,
                                    const struct source *s, const struct content_campaign *c,
                                    const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    bool ssn = meta_has(c->meta, "exposed", "ssn");
    bool licence =
        find_nocase(rule->text, "driver") && meta_has(c->meta, "exposed", "drivers_license");
    if (!ssn && !licence)
        return;
    long months = meta_number(c->meta, "credit_monitoring_months");
    if (rule->months > 0 && months < rule->months)
        fail_at(diag, s, 0, failures,
                "%s: %s exposed: %ld months of %s required, the campaign meta's "
                "credit_monitoring_months is %s%ld (%s%s)",
                code, ssn ? "SSNs" : "driver's licence numbers", rule->months, rule->text,
                months < 0 ? "absent " : "", months < 0 ? 0 : months, e->citation,
                rule->verified ? "" : "; unverified figure");
    else if (variable_use(s, "meta.credit_monitoring_months") == NULL &&
             find_nocase(s->text, "credit monitoring") == NULL &&
             find_nocase(s->text, "identity") == NULL)
        fail_at(diag, s, 0, failures, "%s: %s exposed: the notice must offer %s (%s)", code,
                ssn ? "SSNs" : "driver's licence numbers", rule->text, e->citation);
}

/* check_element - the HIPAA content element the rule names has its variables. */
static void check_element(const struct rules_entry *e, const struct rules_content *rule,
                          const struct source *s, const struct content_campaign *c,
                          const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    /* 45 CFR 164.404(c), by the meta keys of crier's templates */
    static const struct {
        const char *words;
        const char *variables[3];
    } elements[] = {
        {"what happened", {"meta.what_happened", "meta.incident_date", "meta.discovered_date"}},
        {"kinds of information", {"meta.information_involved"}},
        {"steps individuals", {"meta.what_you_can_do"}},
        {"what the entity is doing", {"meta.what_we_are_doing"}},
        {"contact procedures", {"meta.contact_phone"}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(elements); i++) {
        if (find_nocase(rule->text, elements[i].words) == NULL)
            continue;
        for (size_t k = 0; k < 3 && elements[i].variables[k]; k++)
            if (variable_use(s, elements[i].variables[k]) == NULL)
                fail_at(diag, s, 0, failures, "%s: the notice lacks %s: no {{%s}} (%s)", code,
                        rule->text, elements[i].variables[k], e->citation);
        return;
    }
}

/* check_min_type_points - a letter's type is at least the rule's size. */
static void check_min_type_points(const struct rules_entry *e, const struct rules_content *rule,
                                  const struct source *s, const struct content_campaign *c,
                                  const struct channel_template *body, FILE *diag, int *failures)
{
    const char *code = e->code;
    if (strncmp(template_name(s->template), "letter.", 7) != 0)
        return;
    /* the letter's type sizes are letter.c's defaults (no configuration sets them) */
    struct letter_layout layout;
    letter_layout_default(&layout);
    double points = strtod(rule->text, NULL);
    if (layout.body_size < points || layout.heading_size < points || layout.title_size < points)
        fail_at(diag, s, 0, failures,
                "%s: the letter's type is below %s point (body %.1f, headings %.1f) (%s)", code,
                rule->text, layout.body_size, layout.heading_size, e->citation);
}

/* The content rules crier can check, by the rules table's name; others are not checked. */
static const struct {
    const char *rule;
    void (*check)(const struct rules_entry *e, const struct rules_content *rule,
                  const struct source *s, const struct content_campaign *c,
                  const struct channel_template *body, FILE *diag, int *failures);
} content_checks[] = {
    {"title", check_title},
    {"headings", check_headings},
    {"must_not_state", check_must_not_state},
    {"must_state", check_must_state},
    {"credit_monitoring", check_credit_monitoring},
    {"element", check_element},
    {"min_type_points", check_min_type_points},
};

/* rule_check - one rule against one template, by its kind. */
static void rule_check(const struct rules_entry *e, const struct rules_content *rule,
                       const struct source *s, const struct content_campaign *c,
                       const struct channel_template *body, FILE *diag, int *failures)
{
    for (size_t i = 0; i < ARRAY_SIZE(content_checks); i++)
        if (strcmp(rule->rule, content_checks[i].rule) == 0)
            content_checks[i].check(e, rule, s, c, body, diag, failures);
}

int content_check(const struct rules_table *rules, const struct content_campaign *c, FILE *diag)
{
    int failures = 0;
    for (char *const *region = c->regions; region && *region; region++) {
        const struct rules_entry *entries[9];
        size_t entry_count = 0;
        const struct rules_entry *own = rules_find(rules, SECTION_JURISDICTION, *region);
        if (own && own->content_state == LIST_GIVEN)
            entries[entry_count++] = own;
        for (char *const *f = c->frameworks; f && *f && entry_count < ARRAY_SIZE(entries); f++) {
            const struct rules_entry *fw = rules_find(rules, SECTION_FRAMEWORK, *f);
            if (fw && fw->content_state == LIST_GIVEN)
                entries[entry_count++] = fw;
        }
        for (size_t n = 0; n < c->render_count; n++) {
            const struct channel_template *body = c->renders[n];
            const struct template *t =
                body->body ? template_find(c->templates, body->name, *region) : NULL;
            if (t == NULL)
                continue;
            struct source s;
            source_load(&s, t);
            for (size_t k = 0; k < entry_count; k++)
                for (size_t i = 0; i < entries[k]->content_count; i++)
                    rule_check(entries[k], &entries[k]->content[i], &s, c, body, diag, &failures);
            free(s.text);
        }
    }
    return failures;
}

int content_check_campaign(struct crier_db *db, const struct crier_config *config,
                           const char *campaign_name, FILE *diag)
{
    struct campaign *campaign = NULL;
    int r = campaign_get(db, campaign_name, false, &campaign);
    if (r < 0)
        return r;
    struct rules_table *rules = NULL;
    struct render_campaign *render = NULL;
    char **regions = NULL, **frameworks = NULL;
    char err[1024];
    const char *path = config->report.deadlines ? config->report.deadlines : rules_default_path();
    r = rules_load(path, diag, &rules, err, sizeof(err));
    if (r < 0)
        goto done;
    r = render_campaign_load(db, config, campaign->id, diag, &render);
    if (r < 0)
        goto done;
    const char *params[] = {DB_NUM(campaign->id)};
    PGresult *res = NULL;
    /* the jurisdictions of its people (a US region, or a territory given as the country),
     * kept by the loads and amends (020_load.sql): a scan of every recipient here
     * took 12.6 s at 10,000,000 */
    r = db_query(db,
                 "SELECT jurisdiction FROM crier.campaign_jurisdiction WHERE campaign_id = $1"
                 " ORDER BY jurisdiction",
                 1, params, &res);
    if (r < 0)
        goto done;
    regions = xcalloc((size_t)PQntuples(res) + 1, sizeof(*regions));
    for (int i = 0; i < PQntuples(res); i++)
        regions[i] = xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    const json_t *declared = json_object_get(render->meta, "frameworks");
    if (json_is_string(declared)) {
        char *copy = xstrdup(json_string_value(declared)), *save = NULL;
        size_t n = 0;
        frameworks = xcalloc(9, sizeof(*frameworks));
        for (char *w = strtok_r(copy, ", ", &save); w && n < 8; w = strtok_r(NULL, ", ", &save))
            frameworks[n++] = xstrdup(w);
        free(copy);
    }
    const struct channel_template *renders[16];
    size_t render_count = channel_templates_of(campaign->policy, renders, ARRAY_SIZE(renders));
    struct content_campaign c = {
        .templates = render->templates,
        .regions = regions,
        .frameworks = frameworks,
        .meta = render->meta,
        .renders = renders,
        .render_count = render_count,
    };
    r = content_check(rules, &c, diag) > 0 ? -EINVAL : 0;
done:
    strv_free(regions);
    strv_free(frameworks);
    render_campaign_free(render);
    rules_free(rules);
    campaign_free(campaign);
    return r;
}
