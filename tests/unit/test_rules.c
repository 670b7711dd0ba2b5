/*
 * test_rules.c - the jurisdiction rules table (engine/core/rules.c, config/jurisdictions.yaml):
 * the shipped table loads and covers every state, DC, PR, GU, VI, the frameworks and the
 * regimes abroad; every regulator and CRA flag is recomputed at 499, 500 and 501 people
 * (and at N-1, N, N+1 of its own threshold) and compared with an independent reading of the
 * comparison; the values of the source check (shared/jurisdictions.md) are pinned; the schema
 * check refuses each kind of mistake with FILE:LINE:COL.
 */
#include "crier/crier.h"
#include "crier/rules.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static struct rules_table *shipped(void)
{
    struct rules_table *table = NULL;
    char err[1024] = "";
    int r = rules_load(rules_default_path(), stderr, &table, err, sizeof(err));
    if (r < 0)
        fail_msg("the shipped table does not load: %s", err);
    return table;
}

static void test_threshold_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        enum rules_comparison comparison;
        long count;
    } cases[] = {
        {"500 or more", 0, COMPARE_AT_LEAST, 500},
        {"more than 500", 0, COMPARE_MORE_THAN, 500},
        {"1 or more", 0, COMPARE_AT_LEAST, 1},
        {"more than 0", 0, COMPARE_MORE_THAN, 0},
        {"any number", 0, COMPARE_ANY, 0},
        {"none", 0, COMPARE_NONE, 0},
        {"unknown", 0, COMPARE_UNKNOWN, 0},
        {"500", -EINVAL, 0, 0}, /* a threshold without its comparison */
        {"> 500", -EINVAL, 0, 0},
        {"500+", -EINVAL, 0, 0},
        {"above 500", -EINVAL, 0, 0},
        {"0 or more", -EINVAL, 0, 0},
        {"more than", -EINVAL, 0, 0},
        {"more than -1", -EINVAL, 0, 0},
        {"500 or more people", -EINVAL, 0, 0},
        {"", -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct rules_threshold t = {.comparison = COMPARE_ANY, .count = 77};
        int rc = rules_threshold_parse(cases[i].text, &t);
        if (rc != cases[i].rc)
            fail_msg("'%s': %d, expected %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(t.comparison, cases[i].comparison);
            assert_int_equal(t.count, cases[i].count);
            char text[64];
            rules_threshold_text(&t, text, sizeof(text));
            assert_string_equal(text, cases[i].text); /* it prints as the table writes it */
        } else {
            assert_int_equal(t.count, 77); /* untouched on failure */
        }
    }
    assert_int_equal(rules_threshold_parse(NULL, &(struct rules_threshold){0}), -EINVAL);
}

static void test_period_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        enum rules_unit unit;
        long amount;
    } cases[] = {
        {"30 days", 0, PERIOD_DAYS, 30},
        {"1 day", 0, PERIOD_DAYS, 1},
        {"7 business days", 0, PERIOD_BUSINESS_DAYS, 7},
        {"72 hours", 0, PERIOD_HOURS, 72},
        {"unknown", 0, PERIOD_UNKNOWN, 0},
        {"without unreasonable delay", 0, PERIOD_NO_FIXED_COUNT, 0},
        {"as soon as feasible", 0, PERIOD_NO_FIXED_COUNT, 0},
        {"30", -EINVAL, 0, 0},
        {"30 day", -EINVAL, 0, 0},
        {"0 days", -EINVAL, 0, 0},
        {"thirty days", -EINVAL, 0, 0},
        {"promptly", -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct rules_period p = {.amount = 99};
        int rc = rules_period_parse(cases[i].text, &p);
        if (rc != cases[i].rc)
            fail_msg("'%s': %d, expected %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(p.unit, cases[i].unit);
            assert_int_equal(p.amount, cases[i].amount);
        }
    }
}

static void test_period_end(void **state)
{
    (void)state;
    /* 2026-12-04 is a Friday; 00:00 UTC */
    const double friday = 1796342400.0, day = 86400.0;
    double end = 0;
    assert_int_equal(rules_period_end(&(struct rules_period){.unit = PERIOD_DAYS, .amount = 7},
                                      friday + 3600, &end),
                     0);
    assert_true(end == friday + 8 * day); /* the end of the 7th day after */
    assert_int_equal(
        rules_period_end(&(struct rules_period){.unit = PERIOD_BUSINESS_DAYS, .amount = 7},
                         friday + 3600, &end),
        0);
    assert_true(end == friday + 12 * day); /* Mon..Fri, Mon, Tue: Tuesday the 15th, its end */
    assert_int_equal(rules_period_end(&(struct rules_period){.unit = PERIOD_HOURS, .amount = 72},
                                      friday + 3600, &end),
                     0);
    assert_true(end == friday + 3600 + 3 * day);
    assert_int_equal(
        rules_period_end(&(struct rules_period){.unit = PERIOD_NO_FIXED_COUNT}, friday, &end),
        -EINVAL);
    assert_int_equal(rules_period_end(&(struct rules_period){.unit = PERIOD_UNKNOWN}, friday, &end),
                     -EINVAL);
}

static void test_coverage(void **state)
{
    (void)state;
    static const char *const codes[] = {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
        "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV",
        "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
        "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI",
    };
    struct rules_table *t = shipped();
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
        if (rules_find(t, SECTION_JURISDICTION, codes[i]) == NULL)
            fail_msg("%s is missing from the table", codes[i]);
    assert_non_null(rules_find(t, SECTION_FRAMEWORK, "HIPAA"));
    assert_non_null(rules_find(t, SECTION_FRAMEWORK, "GLBA"));
    assert_string_equal(rules_find_country(t, "DE")->code, "GDPR");
    assert_string_equal(rules_find_country(t, "NO")->code, "GDPR");
    assert_string_equal(rules_find_country(t, "CA")->code, "PIPEDA");
    assert_null(rules_find_country(t, "US"));
    assert_null(rules_find_country(t, "JP")); /* not in the table: unknown, never "none" */
    assert_int_equal(t->count, ARRAY_SIZE(codes) + 4);
    for (size_t i = 0; i < t->count; i++) {
        const struct rules_entry *e = &t->entries[i];
        assert_non_null(e->citation);
        assert_non_null(e->checked);
        assert_non_null(e->source_kind);
        /* verified only when the entry has a real citation and is not a secondary source */
        if (e->verified) {
            assert_string_not_equal(e->citation, "unknown");
            assert_string_equal(e->source_kind, "source-check");
        }
    }
    rules_free(t);
}

/* expected - an independent reading of a threshold's words: is a notice due for count? -1 for
 * unknown. */
static int expected(const char *words, long count)
{
    long n = 0;
    char tail[32] = "";
    if (strcmp(words, "unknown") == 0)
        return -1;
    if (strcmp(words, "none") == 0)
        return 0;
    if (strcmp(words, "any number") == 0)
        return count >= 1;
    if (sscanf(words, "more than %ld%31s", &n, tail) == 1)
        return count > n;
    if (sscanf(words, "%ld or mor%31s", &n, tail) == 2 && strcmp(tail, "e") == 0)
        return count >= n;
    fail_msg("unreadable threshold '%s'", words);
    return -2;
}

static void check_flag(const char *code, const struct rules_regulator *g, long count)
{
    char words[64];
    rules_threshold_text(&g->threshold, words, sizeof(words));
    int want = expected(words, count);
    enum rules_verdict got = rules_regulator_verdict(g, count);
    enum rules_verdict want_verdict = want < 0       ? VERDICT_UNKNOWN
                                      : want == 0    ? VERDICT_NOT_REQUIRED
                                      : g->condition ? VERDICT_CONDITIONAL
                                                     : VERDICT_REQUIRED;
    if (got != want_verdict)
        fail_msg("%s %s (%s) at %ld: %s, expected %s", code, g->name, words, count,
                 rules_verdict_name(got), rules_verdict_name(want_verdict));
}

/* every flag at 499, 500, 501 and at its own N-1, N, N+1, for every thresholded notice */
static void test_boundaries(void **state)
{
    (void)state;
    struct rules_table *t = shipped();
    size_t thresholded = 0;
    for (size_t i = 0; i < t->count; i++) {
        const struct rules_entry *e = &t->entries[i];
        for (size_t k = 0; k <= e->regulator_count; k++) {
            const struct rules_regulator *g = k < e->regulator_count ? &e->regulators[k] : &e->cra;
            if (k == e->regulator_count && !e->cra_known)
                continue;
            const long counts[] = {0,
                                   1,
                                   499,
                                   500,
                                   501,
                                   g->threshold.count - 1,
                                   g->threshold.count,
                                   g->threshold.count + 1};
            for (size_t c = 0; c < ARRAY_SIZE(counts); c++)
                if (counts[c] >= 0)
                    check_flag(e->code, g, counts[c]);
            if (g->threshold.comparison == COMPARE_AT_LEAST ||
                g->threshold.comparison == COMPARE_MORE_THAN)
                thresholded++;
        }
    }
    assert_true(thresholded >= 25);
    rules_free(t);
}

/* the figures of the source check, pinned: a change to the table that moves one fails here */
static void test_source_check_values(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        const char *regulator; /* a prefix of the regulator's name; NULL: the CRAs */
        long count;
        enum rules_verdict verdict;
    } cases[] = {
        {"CO", "Attorney General", 499, VERDICT_NOT_REQUIRED},
        {"CO", "Attorney General", 500, VERDICT_REQUIRED},
        {"FL", "Department of Legal Affairs", 500, VERDICT_REQUIRED},
        {"FL", "Department of Legal Affairs", 499, VERDICT_NOT_REQUIRED},
        {"ME", "Attorney General", 1, VERDICT_REQUIRED},
        {"IN", "Attorney General", 1, VERDICT_REQUIRED},
        {"MD", "Attorney General", 1, VERDICT_REQUIRED},
        {"LA", "Attorney General", 1, VERDICT_REQUIRED},
        {"NC", "Attorney General", 1, VERDICT_REQUIRED},
        {"VA", "Attorney General", 1, VERDICT_REQUIRED},
        {"AK", "Attorney General", 1, VERDICT_CONDITIONAL},
        {"RI", "Attorney General", 500, VERDICT_NOT_REQUIRED},
        {"RI", "Attorney General", 501, VERDICT_REQUIRED},
        {"RI", NULL, 500, VERDICT_NOT_REQUIRED},
        {"RI", NULL, 501, VERDICT_REQUIRED},
        {"PA", NULL, 499, VERDICT_NOT_REQUIRED},
        {"PA", NULL, 500, VERDICT_REQUIRED},
        {"GA", NULL, 10000, VERDICT_NOT_REQUIRED},
        {"GA", NULL, 10001, VERDICT_REQUIRED},
        {"CA", "Attorney General", 500, VERDICT_NOT_REQUIRED},
        {"CA", "Attorney General", 501, VERDICT_REQUIRED},
        {"CA", NULL, 100000, VERDICT_NOT_REQUIRED},
        {"WI", NULL, 999, VERDICT_NOT_REQUIRED},
        {"WI", NULL, 1000, VERDICT_REQUIRED},
        {"DC", "Attorney General", 49, VERDICT_NOT_REQUIRED},
        {"DC", "Attorney General", 50, VERDICT_REQUIRED},
        {"DC", NULL, 1000, VERDICT_NOT_REQUIRED},
        {"DC", NULL, 1001, VERDICT_REQUIRED},
        {"UT", "Attorney General", 500, VERDICT_REQUIRED},
        {"UT", "Utah Cyber Center", 499, VERDICT_NOT_REQUIRED},
        {"UT", NULL, 999, VERDICT_NOT_REQUIRED},
        {"UT", NULL, 1000, VERDICT_REQUIRED},
        {"PR", "Department of Consumer Affairs", 1, VERDICT_REQUIRED},
        {"TX", "Attorney General", 249, VERDICT_NOT_REQUIRED},
        {"TX", "Attorney General", 250, VERDICT_REQUIRED},
        {"TX", NULL, 10001, VERDICT_REQUIRED},
        {"NY", "Attorney General", 1, VERDICT_REQUIRED},
        {"NY", NULL, 5000, VERDICT_NOT_REQUIRED},
        {"NY", NULL, 5001, VERDICT_REQUIRED},
        {"OR", "Attorney General", 250, VERDICT_NOT_REQUIRED},
        {"OR", "Attorney General", 251, VERDICT_REQUIRED},
        {"AZ", "Attorney General", 1001, VERDICT_REQUIRED},
        {"NJ", "Division of State Police", 1, VERDICT_REQUIRED},
        {"GLBA", "Federal Trade Commission", 499, VERDICT_NOT_REQUIRED},
        {"GLBA", "Federal Trade Commission", 500, VERDICT_REQUIRED},
        /* no data: unknown at every count, never "not required" */
        {"AR", NULL, 100000, VERDICT_UNKNOWN},
        {"CO", NULL, 100000, VERDICT_UNKNOWN},
    };
    struct rules_table *t = shipped();
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct rules_entry *e = rules_find(t, SECTION_JURISDICTION, cases[i].code);
        if (e == NULL)
            e = rules_find(t, SECTION_FRAMEWORK, cases[i].code);
        assert_non_null(e);
        const struct rules_regulator *g = cases[i].regulator ? NULL : &e->cra;
        for (size_t k = 0; g == NULL && k < e->regulator_count; k++)
            if (strncmp(e->regulators[k].name, cases[i].regulator, strlen(cases[i].regulator)) == 0)
                g = &e->regulators[k];
        if (g == NULL)
            fail_msg("%s has no regulator '%s'", cases[i].code, cases[i].regulator);
        enum rules_verdict v = rules_regulator_verdict(g, cases[i].count);
        if (v != cases[i].verdict)
            fail_msg("%s %s at %ld: %s, expected %s", cases[i].code,
                     cases[i].regulator ? cases[i].regulator : "CRA", cases[i].count,
                     rules_verdict_name(v), rules_verdict_name(cases[i].verdict));
    }
    /* no government notice at all where the source check found none */
    static const char *const none[] = {"TN", "WI", "GA", "MI", "OH"};
    for (size_t i = 0; i < ARRAY_SIZE(none); i++)
        assert_int_equal(rules_find(t, SECTION_JURISDICTION, none[i])->regulators_state, LIST_NONE);
    /* the regulators of a state without data are unknown, not empty */
    assert_int_equal(rules_find(t, SECTION_JURISDICTION, "WY")->regulators_state, LIST_UNKNOWN);
    assert_int_equal(rules_find(t, SECTION_JURISDICTION, "WA")->regulators_state, LIST_UNKNOWN);
    /* MD 7 days, ME 7 business days after clearance; HIPAA's oral lapse, and only HIPAA's */
    const struct rules_entry *md = rules_find(t, SECTION_JURISDICTION, "MD");
    assert_int_equal(md->after_clearance.unit, PERIOD_DAYS);
    assert_int_equal(md->after_clearance.amount, 7);
    assert_string_equal(md->regulators[0].order, "before");
    const struct rules_entry *me = rules_find(t, SECTION_JURISDICTION, "ME");
    assert_int_equal(me->after_clearance.unit, PERIOD_BUSINESS_DAYS);
    assert_int_equal(me->after_clearance.amount, 7);
    for (size_t i = 0; i < t->count; i++)
        assert_int_equal(t->entries[i].oral_lapse_days,
                         strcmp(t->entries[i].code, "HIPAA") == 0 ? 30 : -1);
    /* individual deadlines: CA 30, TX 60 from determination, HIPAA 60 from discovery */
    assert_int_equal(rules_find(t, SECTION_JURISDICTION, "CA")->individual.amount, 30);
    const struct rules_entry *tx = rules_find(t, SECTION_JURISDICTION, "TX");
    assert_int_equal(tx->individual.amount, 60);
    assert_int_equal(tx->individual_from, EVENT_DETERMINATION);
    assert_int_equal(tx->regulators[0].deadline.amount, 30);
    const struct rules_entry *hipaa = rules_find(t, SECTION_FRAMEWORK, "HIPAA");
    assert_int_equal(hipaa->individual.amount, 60);
    assert_int_equal(hipaa->individual_from, EVENT_DISCOVERY);
    assert_int_equal(hipaa->substitute_out_of_date_at_least, 10);
    assert_false(rules_find(t, SECTION_JURISDICTION, "AR")->individual_known);
    rules_free(t);
}

/* load_text - rules_load of text written to a file; the messages into *ret_diag. */
static int load_text(const char *text, char **ret_diag, const char *path, size_t path_size)
{
    (void)path_size;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    struct rules_table *t = NULL;
    char err[1024] = "";
    int r = rules_load(path, diag, &t, err, sizeof(err));
    fclose(diag);
    unlink(path);
    rules_free(t);
    *ret_diag = buffer;
    return r;
}

#define GOOD_ENTRY                                                                                 \
    "    name: Testland\n"                                                                         \
    "    citation: \"T. Code 1\"\n"                                                                \
    "    source: {kind: source-check, text: \"test\"}\n"                                           \
    "    checked: 2026-12-02\n"                                                                    \
    "    verified: false\n"                                                                        \
    "    individual: {deadline: \"30 days\", from: discovery}\n"                                   \
    "    regulators:\n"                                                                            \
    "      - {name: AG, threshold: \"500 or more\", deadline: unknown, order: before}\n"           \
    "    credit_reporting_agencies: {threshold: \"more than 1000\"}\n"                             \
    "    substitute_notice: unknown\n"                                                             \
    "    law_enforcement_delay: unknown\n"                                                         \
    "    content: unknown\n"

#define TABLE_HEAD "schema: 2\ncaveat: test\nframeworks: {}\nabroad: {}\njurisdictions:\n  TL:\n"

static void test_schema(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/crier-rules-%d.yaml", (int)getpid());
    static const struct {
        const char *find, *replace; /* GOOD_ENTRY with one line changed */
        const char *message;        /* after "PATH:" */
    } cases[] = {
        {NULL, NULL, NULL},
        {"    citation: \"T. Code 1\"\n", "",
         "7:5: entry TL has no 'citation' (write 'unknown' when the source does not say)"},
        {"    checked: 2026-12-02\n", "",
         "7:5: entry TL has no 'checked' (write 'unknown' when the source does not say)"},
        {"    checked: 2026-12-02\n", "    checked: last week\n",
         "10:14: entry TL must be the date it was checked, YYYY-MM-DD"},
        {"threshold: \"500 or more\"", "threshold: 500",
         "14:31: entry TL regulators[1] threshold must be an explicit comparison: \"N or more\", "
         "\"more than N\", "
         "\"any number\", \"none\" or \"unknown\" (got '500')"},
        {"{threshold: \"more than 1000\"}", "{threshold: 1000}",
         "15:44: entry TL credit_reporting_agencies threshold must be an explicit comparison: \"N "
         "or more\", \"more than N\", "
         "\"any number\", \"none\" or \"unknown\" (got '1000')"},
        {"    content: unknown\n", "    content: unknown\n    notes: typo\n",
         "19:5: unknown key 'notes' in entry TL"},
        {"    regulators:\n", "    regulators: []\n    old_regulators:\n",
         "13:17: entry TL regulators is an empty list: write none or unknown"},
        {"deadline: \"30 days\", from: discovery", "deadline: \"30 days\"",
         "12:17: entry TL individual has no 'from' (write 'unknown' when the source does not say)"},
        {"deadline: unknown, order", "deadline: \"10 days\", order",
         "14:9: entry TL regulators[1] has a deadline of '10 days' but no 'from' (the event it "
         "runs "
         "from)"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char entry[2048];
        snprintf(entry, sizeof(entry), "%s", GOOD_ENTRY);
        if (cases[i].find) {
            char *at = strstr(entry, cases[i].find);
            if (at == NULL)
                fail_msg("case %zu: '%s' not in the entry", i, cases[i].find);
            char rest[2048];
            snprintf(rest, sizeof(rest), "%s", at + strlen(cases[i].find));
            snprintf(at, sizeof(entry) - (size_t)(at - entry), "%s%s", cases[i].replace, rest);
        }
        char *text = xasprintf("%s%s", TABLE_HEAD, entry);
        char *want = cases[i].message ? xasprintf("%s:%s\n", path, cases[i].message) : NULL;
        char *diag = NULL;
        int r = load_text(text, &diag, path, sizeof(path));
        if (cases[i].message == NULL) {
            assert_int_equal(r, 0);
            assert_string_equal(diag, "");
        } else {
            if (r != -EINVAL || strstr(diag, want) == NULL)
                fail_msg("case %zu: rc %d, messages:\n%s\nexpected:\n%s", i, r, diag, want);
        }
        free(want);
        free(diag);
        free(text);
    }
    /* an entry without citation: unknown cannot claim to be verified */
    char *diag = NULL;
    char *text = xasprintf("%s%s", TABLE_HEAD, GOOD_ENTRY);
    char *at = strstr(text, "\"T. Code 1\"");
    memcpy(at, "unknown    ", 11);
    at = strstr(text, "verified: false");
    memcpy(at, "verified: true ", 15);
    assert_int_equal(load_text(text, &diag, path, sizeof(path)), -EINVAL);
    char *want =
        xasprintf("%s:11:15: entry TL: an entry without a citation cannot be verified\n", path);
    if (strstr(diag, want) == NULL)
        fail_msg("messages:\n%s\nexpected:\n%s", diag, want);
    free(want);
    free(diag);
    free(text);
    /* every problem is reported, not only the first */
    text =
        xasprintf("%s%s", TABLE_HEAD,
                  "    name: X\n    citation: \"C\"\n    source: {kind: source-check, text: t}\n");
    assert_int_equal(load_text(text, &diag, path, sizeof(path)), -EINVAL);
    size_t lines = 0;
    for (const char *c = diag; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 8); /* checked, verified, individual, regulators, CRA, substitute,
                                   delay, content */
    free(diag);
    free(text);
    /* not a schema-2 table (the old deadlines.yaml) */
    assert_int_equal(load_text("caveat: x\njurisdictions: {}\n", &diag, path, sizeof(path)),
                     -EINVAL);
    assert_non_null(strstr(diag, "schema: 2 is required"));
    free(diag);
    /* a byte that is not UTF-8 is placed where it stands (libyaml's reader gives an offset,
     * not a line and column), as a config file's is */
    assert_int_equal(load_text("schema: 2\ncaveat: \"x\xff\"\n", &diag, path, sizeof(path)),
                     -EINVAL);
    want = xasprintf("%s:2:11: invalid leading UTF-8 octet\n", path);
    if (strstr(diag, want) == NULL)
        fail_msg("messages:\n%s\nexpected:\n%s", diag, want);
    free(want);
    free(diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_parse), cmocka_unit_test(test_period_parse),
        cmocka_unit_test(test_period_end),      cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_boundaries),      cmocka_unit_test(test_source_check_values),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
