/* test_backoff.c - retry delays: doubling, ceiling, jitter bounds, bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crier/backoff.h"

struct backoff_case {
    long min, max;
    double jitter;
    int attempt;
    double random_unit;
    long expected;
};

static const struct backoff_case cases[] = {
    /* no jitter: doubles from min */
    {30, 3600, 0, 1, 0.5, 30},
    {30, 3600, 0, 2, 0.5, 60},
    {30, 3600, 0, 3, 0.5, 120},
    {30, 3600, 0, 7, 0.5, 1920},
    /* and stops at max */
    {30, 3600, 0, 8, 0.5, 3600},
    {30, 3600, 0, 1000, 0.5, 3600},
    /* jitter only shortens, by up to jitter * base */
    {100, 1000, 0.2, 1, 0.0, 100},
    {100, 1000, 0.2, 1, 0.5, 90},
    {100, 1000, 0.2, 1, 0.999, 81},
    {100, 1000, 0.2, 10, 0.5, 900},
    /* bad arguments are clamped, never negative or above max */
    {30, 10, 0, 5, 0.5, 30},     /* max below min: min wins */
    {-5, 10, 0, 1, 0.5, 0},      /* negative min */
    {30, 3600, 0, 0, 0.5, 30},   /* attempt 0 counts as the first */
    {30, 3600, 5.0, 1, 0.5, 15}, /* jitter above 1 is 1 */
    {30, 3600, 0.5, 1, 7.0, 30}, /* random out of range counts as 0 */
    {0, 0, 0.5, 3, 0.5, 0},
    {1, 2000000000L, 0, 62, 0.5, 2000000000L}, /* no overflow while doubling */
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct backoff_case *c = &cases[i];
        long got = backoff_delay(c->min, c->max, c->jitter, c->attempt, c->random_unit);
        if (got != c->expected)
            fail_msg("case %zu: backoff_delay(%ld, %ld, %g, %d, %g) = %ld, expected %ld", i, c->min,
                     c->max, c->jitter, c->attempt, c->random_unit, got, c->expected);
    }
}

/* every attempt and random value stays within [base * (1 - jitter), max] */
static void test_bounds(void **state)
{
    (void)state;
    for (int attempt = 1; attempt < 40; attempt++) {
        for (int k = 0; k < 100; k++) {
            double random_unit = k / 100.0;
            long got = backoff_delay(30, 3600, 0.25, attempt, random_unit);
            assert_true(got <= 3600);
            assert_true(got >= (long)(30 * 0.75));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
