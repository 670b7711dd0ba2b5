/* test_hold.c - law-enforcement holds without a database: what hold place refuses before
 * it connects, attached documents (bytes, SHA-256, the bytea parameter), and the template
 * variable delayed_for_law_enforcement that a released notice renders with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crier/crier.h"
#include "crier/hold.h"
#include "crier/render.h"

struct options_case {
    const char *region, *recipient, *form, *reason, *review_by, *as_name;
    const char *error; /* NULL: accepted; else a piece of the message */
};

static const struct options_case cases[] = {
    {NULL, NULL, "written", "impedes", NULL, NULL, NULL},
    {NULL, NULL, "oral", "impedes", "2999-12-31", "Dana Counsel", NULL},
    {"ca", NULL, "written", "impedes", NULL, NULL, NULL},
    {"New York", NULL, "written", "impedes", NULL, NULL, NULL},
    {NULL, "R00000001", "written", "impedes", NULL, NULL, NULL},
    {"CA", "R00000001", "written", "impedes", NULL, NULL, "not both"},
    {"C;A", NULL, "written", "impedes", NULL, NULL, "invalid region"},
    {"  ", NULL, "written", "impedes", NULL, NULL, "invalid region"},
    {NULL, " ", "written", "impedes", NULL, NULL, "--recipient needs"},
    {NULL, NULL, "sometimes", "impedes", NULL, NULL, "invalid --form"},
    {NULL, NULL, "Written", "impedes", NULL, NULL, "invalid --form"},
    {NULL, NULL, "written", " \t", NULL, NULL, "--reason must not be empty"},
    {NULL, NULL, "written", "impedes", "2999-02-29", NULL, "invalid --review-by"},
    {NULL, NULL, "written", "impedes", "2996-02-29", NULL, NULL}, /* a leap day */
    {NULL, NULL, "written", "impedes", "2999-13-01", NULL, "invalid --review-by"},
    {NULL, NULL, "written", "impedes", "31/12/2999", NULL, "invalid --review-by"},
    {NULL, NULL, "written", "impedes", "2000-01-01", NULL, "in the past"},
    {NULL, NULL, "written", "impedes", NULL, "", "--as needs a name"},
};

static void test_options(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct options_case *c = &cases[i];
        struct hold_place_options o = {
            .campaign = "breach",
            .region = c->region,
            .recipient = c->recipient,
            .authority = "FBI New York Field Office",
            .official = "SA Jane Roe",
            .case_ref = "NY-2026-0412",
            .form = c->form,
            .reason = c->reason,
            .review_by = c->review_by,
            .as_name = c->as_name,
        };
        char err[512] = "";
        int r = hold_options_check(&o, err, sizeof(err));
        if (c->error == NULL && r != 0)
            fail_msg("case %zu: refused: %s", i, err);
        if (c->error && (r != -EINVAL || strstr(err, c->error) == NULL))
            fail_msg("case %zu: expected -EINVAL with '%s', got %d '%s'", i, c->error, r, err);
    }
}

static void test_document(void **state)
{
    (void)state;
    char path[] = "/tmp/crier-test-hold-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const unsigned char bytes[] = {'a', 'b', 'c', 0x00, 0xff};
    assert_int_equal(write(fd, bytes, sizeof(bytes)), (int)sizeof(bytes));
    close(fd);

    struct hold_document d;
    char err[512];
    assert_int_equal(hold_document_read(path, &d, err, sizeof(err)), 0);
    assert_string_equal(d.bytea, "\\x616263"
                                 "00ff");
    assert_int_equal(d.size, sizeof(bytes));
    assert_string_equal(d.name, strrchr(path, '/') + 1);
    char expected[65];
    sha256_hex(bytes, sizeof(bytes), expected);
    assert_string_equal(d.sha256, expected);
    hold_document_clear(&d);

    FILE *f = fopen(path, "w"); /* empty: nothing to keep */
    fclose(f);
    assert_int_equal(hold_document_read(path, &d, err, sizeof(err)), -EINVAL);
    unlink(path);
    assert_int_equal(hold_document_read(path, &d, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cannot read document"));
}

/* a released notice renders with delayed_for_law_enforcement true; others false */
static void test_delayed_variable(void **state)
{
    (void)state;
    for (int delayed = 0; delayed <= 1; delayed++) {
        struct crier_notice n = {
            .ref = "R1",
            .name = "Ann",
            .country = "US",
            .vars_json = "{\"delayed_for_law_enforcement\": \"a list column cannot set it\"}",
            .delayed = delayed,
        };
        json_t *vars = render_vars(&n, "2026-03-01");
        json_t *value = json_object_get(vars, "delayed_for_law_enforcement");
        assert_true(json_is_boolean(value));
        assert_int_equal(json_is_true(value), delayed);
        json_decref(vars);
    }
}

static void test_policy(void **state)
{
    (void)state;
    assert_string_equal(hold_release_lapsed_param(), "f");
    hold_policy_set(ORAL_LAPSE_RELEASE);
    assert_string_equal(hold_release_lapsed_param(), "t");
    hold_policy_set(ORAL_LAPSE_ALERT);
    assert_string_equal(hold_release_lapsed_param(), "f");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_delayed_variable),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
