/* test_metrics.c - metrics_campaigns_print, the crier_campaign_notices gauge of /metrics
 * (crier run --metrics and crier serve): one sample per campaign, channel and state of
 * what status_running returns, zeros included, in the Prometheus text format; a label value
 * with a backslash, a quote or a newline is escaped as that format asks (a campaign name
 * cannot hold them today, but a channel or a future name must not break the exposition). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crier/metrics.h"

static char *printed(const char *statuses_json)
{
    json_error_t error;
    json_t *statuses = json_loads(statuses_json, 0, &error);
    assert_non_null(statuses);
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    metrics_campaigns_print(out, statuses);
    fclose(out);
    json_decref(statuses);
    return text;
}

static void test_samples(void **state)
{
    char *text =
        printed("[{\"campaign\": \"c1\", \"state\": \"running\", \"by_state\": {\"ready\": 5},"
                " \"by_channel\": {\"email\": {\"ready\": 3, \"sent\": 0},"
                " \"fax\": {\"ready\": 2, \"sent\": 7}}}]");
    assert_string_equal(
        text, "# HELP crier_campaign_notices A running campaign's notices by state and "
              "channel, as `crier status --json` counts them (by_channel).\n"
              "# TYPE crier_campaign_notices gauge\n"
              "crier_campaign_notices{campaign=\"c1\",channel=\"email\",state=\"ready\"} 3\n"
              "crier_campaign_notices{campaign=\"c1\",channel=\"email\",state=\"sent\"} 0\n"
              "crier_campaign_notices{campaign=\"c1\",channel=\"fax\",state=\"ready\"} 2\n"
              "crier_campaign_notices{campaign=\"c1\",channel=\"fax\",state=\"sent\"} 7\n");
    free(text);
}

static void test_escaped(void **state)
{
    char *text = printed("[{\"campaign\": \"a\\\\b\\\"c\\nd\", \"by_channel\": "
                         "{\"x\\\"y\": {\"ready\": 1}}}]");
    assert_non_null(strstr(text, "crier_campaign_notices{campaign=\"a\\\\b\\\"c\\nd\",channel="
                                 "\"x\\\"y\",state=\"ready\"} 1\n"));
    /* the sample is one line: the newline of the name did not end it */
    assert_null(strstr(text, "c\nd"));
    free(text);
}

static void test_none(void **state)
{
    char *text = printed("[]");
    assert_string_equal(text, "# HELP crier_campaign_notices A running campaign's notices by "
                              "state and channel, as `crier status --json` counts them "
                              "(by_channel).\n# TYPE crier_campaign_notices gauge\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
