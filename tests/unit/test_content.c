/*
 * test_content.c - the content rules of the shipped rules table against templates
 * (engine/core/content.c): the default templates pass for CA, MA and IL; one failing fixture per
 * rule, each refused with its FILE:LINE:COL and the rule's words.
 */
#include "crier/content.h"
#include "crier/crier.h"
#include "crier/rules.h"
#include "crier/template.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct rules_table *rules;

static int setup(void **state)
{
    (void)state;
    char err[1024];
    return rules_load(rules_default_path(), stderr, &rules, err, sizeof(err)) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    rules_free(rules);
    return 0;
}

/* check - content_check of one template (name, source) for one region; the messages. */
static int check(const char *name, const char *source, const char *region, const char *meta_json,
                 const char *framework, char **ret_diag)
{
    struct template_set *set = NULL;
    char *names[] = {(char *)name};
    char *sources[] = {(char *)source};
    size_t lengths[] = {strlen(source)};
    assert_int_equal(template_set_from_memory("t", names, sources, lengths, 1, stderr, &set), 0);
    char *regions[] = {(char *)region, NULL};
    char *frameworks[] = {(char *)framework, NULL};
    json_t *meta = json_loads(meta_json ? meta_json : "{}", 0, NULL);
    /* the channel that renders the template, as a campaign's policy would name it */
    char *policy[] = {strncmp(name, "email", 5) == 0 ? "email" : "mail", NULL};
    const struct channel_template *renders[8];
    struct content_campaign c = {
        .templates = set,
        .regions = regions,
        .frameworks = framework ? frameworks : NULL,
        .meta = meta,
        .renders = renders,
        .render_count = channel_templates_of(policy, renders, 8),
    };
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    int failures = content_check(rules, &c, diag);
    fclose(diag);
    json_decref(meta);
    template_set_free(set);
    *ret_diag = buffer;
    return failures;
}

static char *file_text(const char *name)
{
    char *path = xasprintf("%s/%s", CRIER_SOURCE_TEMPLATES_DIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = xcalloc(1, 65536);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    free(path);
    return text;
}

/* the shipped templates meet the shipped rules */
static void test_defaults_pass(void **state)
{
    (void)state;
    static const struct {
        const char *file, *as, *region;
    } cases[] = {
        {"letter.CA.md", "letter.CA.md", "CA"}, {"email.CA.txt", "email.CA.txt", "CA"},
        {"letter.MA.md", "letter.MA.md", "MA"}, {"email.MA.txt", "email.MA.txt", "MA"},
        {"letter.md", "letter.md", "IL"},       {"email.txt", "email.txt", "IL"},
        {"letter.md", "letter.md", "TX"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *text = file_text(cases[i].file), *diag = NULL;
        int failures = check(cases[i].as, text, cases[i].region, NULL, NULL, &diag);
        if (failures != 0)
            fail_msg("%s for %s: %s", cases[i].file, cases[i].region, diag);
        free(diag);
        free(text);
    }
}

#define CA_LETTER                                                                                  \
    "# Notice of Data Breach\n"                                                                    \
    "{{#delayed_for_law_enforcement}}delayed{{/delayed_for_law_enforcement}}\n"                    \
    "## What Happened\n"                                                                           \
    "## What Information Was Involved\n"                                                           \
    "## What We Are Doing\n"                                                                       \
    "## What You Can Do\n"                                                                         \
    "## For More Information\n"

/* one failing fixture per rule */
static void test_each_rule_fails(void **state)
{
    (void)state;
    static const struct {
        const char *name, *source, *region, *meta, *framework;
        const char *message; /* the first line, after "t/NAME:" */
    } cases[] = {
        {"letter.CA.md", CA_LETTER, "CA", NULL, NULL, NULL},
        /* CA: the title */
        {"letter.CA.md",
         "## What Happened\n## What Information Was Involved\n## What We Are "
         "Doing\n## What You Can Do\n## For More Information\n"
         "{{delayed_for_law_enforcement}}\n",
         "CA", NULL, NULL, "1:1: CA: the notice must carry the title \"Notice of Data Breach\""},
        /* CA: a heading missing */
        {"letter.CA.md",
         "# Notice of Data Breach\n{{delayed_for_law_enforcement}}\n## What Happened\n## What "
         "Information Was Involved\n## What You Can Do\n## For More Information\n",
         "CA", NULL, NULL, "1:1: CA: the heading \"What We Are Doing\" is missing"},
        /* CA: headings out of order */
        {"letter.CA.md",
         "# Notice of Data Breach\n{{delayed_for_law_enforcement}}\n## What Information Was "
         "Involved\n## What Happened\n## What We Are Doing\n## What You Can Do\n## For More "
         "Information\n",
         "CA", NULL, NULL,
         "3:1: CA: the heading \"What Information Was Involved\" must come after \"What "
         "Happened\""},
        /* CA: no statement of the law-enforcement delay */
        {"letter.CA.md",
         "# Notice of Data Breach\n## What Happened\n## What Information Was Involved\n## What "
         "We Are Doing\n## What You Can Do\n## For More Information\n",
         "CA", NULL, NULL,
         "1:1: CA: the notice must state whether notice was delayed by law enforcement"},
        /* MA: what happened */
        {"letter.MA.md",
         "police report, security freeze\n{{! not {{meta.what_happened}} in a comment }}\n"
         "It was {{meta.what_happened}}.\n",
         "MA", NULL, NULL,
         "3:8: MA: the notice must not state the nature of the breach, and "
         "{{meta.what_happened}} does"},
        /* MA: the count */
        {"email.MA.txt", "police report, security freeze\nWe notified {{meta.records_affected}}.",
         "MA", NULL, NULL,
         "2:13: MA: the notice must not state the number of residents affected, and "
         "{{meta.records_affected}} does"},
        /* MA: the police report */
        {"letter.MA.md", "a security freeze is free\n{{! police report }}\n", "MA", NULL, NULL,
         "1:1: MA: the notice must state the right to obtain a police report"},
        /* IL: the count */
        {"letter.md", "Dear {{name}},\n\n{{meta.records_affected}} Illinois residents", "IL", NULL,
         NULL, "3:1: IL: the notice must not state the number of Illinois residents affected"},
        /* SSNs exposed in MA: 18 months of credit monitoring */
        {"letter.MA.md", "police report, security freeze, credit monitoring", "MA",
         "{\"exposed\": \"ssn, name\", \"credit_monitoring_months\": \"12\"}", NULL,
         "1:1: MA: SSNs exposed: 18 months of credit monitoring when SSNs are exposed"},
        /* SSNs exposed in DC without any offer in the notice */
        {"letter.md", "Dear {{name}}", "DC",
         "{\"exposed\": [\"ssn\"], \"credit_monitoring_months\": 24}", NULL,
         "1:1: DC: SSNs exposed: the notice must offer identity-theft protection"},
        /* a CA driver's licence breach */
        {"letter.CA.md", CA_LETTER, "CA", "{\"exposed\": \"drivers_license\"}", NULL,
         "1:1: CA: driver's licence numbers exposed: 12 months of identity-theft prevention"},
        /* HIPAA: the MA letter lacks what happened (164.404(c)) */
        {"letter.MA.md", "police report, security freeze {{meta.information_involved}}", "MA", NULL,
         "HIPAA",
         "1:1: HIPAA: the notice lacks what happened, with the date of the breach and the date "
         "of its discovery: no {{meta.what_happened}}"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *diag = NULL;
        int failures = check(cases[i].name, cases[i].source, cases[i].region, cases[i].meta,
                             cases[i].framework, &diag);
        if (cases[i].message == NULL) {
            if (failures != 0)
                fail_msg("case %zu: expected to pass: %s", i, diag);
        } else {
            char *want = xasprintf("t/%s:%s", cases[i].name, cases[i].message);
            if (failures == 0 || strncmp(diag, want, strlen(want)) != 0)
                fail_msg("case %zu: %d failures:\n%s\nexpected first:\n%s", i, failures, diag,
                         want);
            free(want);
        }
        free(diag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_pass),
        cmocka_unit_test(test_each_rule_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
