/* test_policy.c - the notice state machine, as a table of outcomes and decisions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crier/crier.h"
#include "crier/policy.h"

static const struct policy_limits limits = {
    .backoff_min_seconds = 30,
    .backoff_max_seconds = 3600,
    .backoff_jitter = 0,
    .give_up_after_seconds = 86400,
};

/* usable: a bit per policy index says whether that channel can take the notice */
static bool usable_mask(size_t index, void *data, const char **ret_why)
{
    unsigned mask = *(unsigned *)data;
    if (mask & (1u << index))
        return true;
    *ret_why = "no address";
    return false;
}

struct policy_case {
    const char *name;
    size_t channel_index;
    int channel_attempt;
    double age;    /* seconds since the first attempt on this channel */
    unsigned mask; /* usable channels */
    enum crier_outcome_kind outcome;
    long retry_after;
    /* expected */
    enum crier_notice_state state;
    size_t to_channel;
    bool changed;
    long delay;
    const char *reason; /* substring expected in the reason, "" = reason empty */
};

static const char *const policy3[] = {"email", "fax", "mail"};

static const struct policy_case cases[] = {
    {"email accepted -> sent", 0, 1, 0, 7, OUTCOME_ACCEPTED, 0, STATE_SENT, 0, false, 0, ""},
    {"delivered -> delivered", 0, 1, 0, 7, OUTCOME_DELIVERED, 0, STATE_DELIVERED, 0, false, 0, ""},
    {"temporary -> ready, backoff", 0, 1, 10, 7, OUTCOME_TEMPORARY, 0, STATE_READY, 0, false, 30,
     ""},
    {"third temporary doubles twice", 0, 3, 10, 7, OUTCOME_TEMPORARY, 0, STATE_READY, 0, false, 120,
     ""},
    {"retry-after wins over backoff", 0, 1, 10, 7, OUTCOME_TEMPORARY, 429, STATE_READY, 0, false,
     429, ""},
    {"temporary too long -> next channel", 0, 9, 86400, 7, OUTCOME_TEMPORARY, 0, STATE_READY, 1,
     true, 0, "email: gave up after 86400 s"},
    {"permanent -> next channel", 0, 1, 0, 7, OUTCOME_PERMANENT, 0, STATE_READY, 1, true, 0,
     "email: 550 no such user"},
    {"permanent skips unreachable fax", 0, 1, 0, 5, OUTCOME_PERMANENT, 0, STATE_READY, 2, true, 0,
     "fax: no address"},
    {"no address -> next", 1, 1, 0, 7, OUTCOME_NO_ADDRESS, 0, STATE_READY, 2, true, 0,
     "fax: 550 no such user"},
    {"permanent on last -> undeliverable", 2, 1, 0, 7, OUTCOME_PERMANENT, 0, STATE_UNDELIVERABLE, 2,
     false, 0, "no channel left"},
    {"nothing usable after -> undeliverable", 0, 1, 0, 1, OUTCOME_PERMANENT, 0, STATE_UNDELIVERABLE,
     0, false, 0, "fax: no address; mail: no address; no channel left"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct policy_case *c = &cases[i];
        unsigned mask = c->mask;
        struct policy_input in = {
            .channels = policy3,
            .channel_count = 3,
            .channel_index = c->channel_index,
            .channel_attempt = c->channel_attempt,
            .channel_started_at = 1000000.0,
            .now = 1000000.0 + c->age,
            .random_unit = 0.5,
            .limits = &limits,
            .accepted_state = STATE_SENT,
            .usable = usable_mask,
            .usable_data = &mask,
        };
        struct crier_outcome outcome = {.kind = c->outcome, .retry_after_seconds = c->retry_after};
        snprintf(outcome.detail, sizeof(outcome.detail), "550 no such user");
        struct policy_decision d;
        assert_int_equal(policy_decide(&in, &outcome, &d), 0);
        if (d.to_state != c->state || d.to_channel_index != c->to_channel ||
            d.channel_changed != c->changed || d.delay_seconds != c->delay)
            fail_msg("%s: got state %s channel %zu changed %d delay %ld", c->name,
                     notice_state_name(d.to_state), d.to_channel_index, d.channel_changed,
                     d.delay_seconds);
        if (c->reason[0] == '\0' ? d.reason[0] != '\0' : strstr(d.reason, c->reason) == NULL)
            fail_msg("%s: reason '%s' lacks '%s'", c->name, d.reason, c->reason);
    }
}

static void test_accepted_state_follows_channel(void **state)
{
    (void)state;
    unsigned mask = 7;
    const char *const fax_first[] = {"fax"};
    struct policy_input in = {.channels = fax_first,
                              .channel_count = 1,
                              .limits = &limits,
                              .accepted_state = STATE_SUBMITTED,
                              .usable = usable_mask,
                              .usable_data = &mask,
                              .channel_attempt = 1};
    struct crier_outcome outcome = {.kind = OUTCOME_ACCEPTED};
    struct policy_decision d;
    assert_int_equal(policy_decide(&in, &outcome, &d), 0);
    assert_int_equal(d.to_state, STATE_SUBMITTED);
    in.accepted_state = STATE_COUNT; /* no state: refused, not stored */
    assert_int_equal(policy_decide(&in, &outcome, &d), -EINVAL);
    in.accepted_state = STATE_SUBMITTED;
    in.channel_index = 1; /* outside the policy */
    assert_int_equal(policy_decide(&in, &outcome, &d), -EINVAL);
}

static void test_first_channel(void **state)
{
    (void)state;
    char reason[256] = "";
    unsigned mask = 4; /* only mail */
    assert_int_equal(
        policy_first_channel(policy3, 3, 0, usable_mask, &mask, reason, sizeof(reason)), 2);
    assert_string_equal(reason, "email: no address; fax: no address");
    reason[0] = '\0';
    mask = 0;
    assert_int_equal(
        policy_first_channel(policy3, 3, 0, usable_mask, &mask, reason, sizeof(reason)), -ENOENT);
}

static void test_parse(void **state)
{
    (void)state;
    char err[256];
    char **names = NULL;
    assert_int_equal(policy_parse("email, fax,mail", &names, err, sizeof(err)), 0);
    assert_int_equal(strv_length(names), 3);
    assert_string_equal(names[1], "fax");
    strv_free(names);
    assert_int_equal(policy_parse("email,pigeon", &names, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unknown channel 'pigeon'"));
    assert_int_equal(policy_parse("email,email", &names, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "appears twice"));
    assert_int_equal(policy_parse("", &names, err, sizeof(err)), -EINVAL);
}

static void test_state_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < STATE_COUNT; i++) {
        enum crier_notice_state s;
        assert_int_equal(notice_state_from_name(notice_state_name(i), &s), 0);
        assert_int_equal(s, i);
    }
    enum crier_notice_state s;
    assert_int_equal(notice_state_from_name("lost", &s), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_accepted_state_follows_channel),
        cmocka_unit_test(test_first_channel),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_state_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
