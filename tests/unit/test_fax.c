/* test_fax.c - the fax channel's pure parts: RFC 6901 JSON pointers (the RFC's own
 * examples), status words and their classes, the verdict on a submission (the rule that
 * an unknown outcome is never a plain retry), and the status webhook's reading of a
 * callback (the callback op: what crier serve's /hooks/fax/ records, and what it refuses). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "crier/channel.h"
#include "crier/config.h"
#include "crier/crier.h"
#include "crier/fax.h"

/* RFC 6901 section 5's document */
static const char rfc_document[] = "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2,"
                                   " \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6,"
                                   " \" \": 7, \"m~n\": 8}";

struct pointer_case {
    const char *pointer;
    int expected_r;
    const char *expected_json; /* compact dump of the value */
};

static const struct pointer_case pointer_cases[] = {
    {"/foo", 0, "[\"bar\",\"baz\"]"},
    {"/foo/0", 0, "\"bar\""},
    {"/", 0, "0"},
    {"/a~1b", 0, "1"},
    {"/c%d", 0, "2"},
    {"/e^f", 0, "3"},
    {"/g|h", 0, "4"},
    {"/i\\j", 0, "5"},
    {"/k\"l", 0, "6"},
    {"/ ", 0, "7"},
    {"/m~0n", 0, "8"},
    /* not there */
    {"/foo/2", -ENOENT, NULL},
    {"/foo/01", -ENOENT, NULL}, /* no leading zeros */
    {"/foo/-", -ENOENT, NULL},
    {"/foo/0/x", -ENOENT, NULL},
    {"/nothing", -ENOENT, NULL},
    {"/a/b", -ENOENT, NULL}, /* "a/b" must be written a~1b */
    /* malformed */
    {"foo", -EINVAL, NULL},
    {"/m~2n", -EINVAL, NULL},
    {"/m~", -EINVAL, NULL},
};

static void test_pointer_rfc(void **state)
{
    (void)state;
    json_t *document = json_loads(rfc_document, 0, NULL);
    assert_non_null(document);
    json_t *whole = NULL;
    assert_int_equal(fax_json_pointer(document, "", &whole), 0);
    assert_ptr_equal(whole, document);
    for (size_t i = 0; i < ARRAY_SIZE(pointer_cases); i++) {
        const struct pointer_case *c = &pointer_cases[i];
        json_t *value = NULL;
        int r = fax_json_pointer(document, c->pointer, &value);
        if (r != c->expected_r)
            fail_msg("%s: got %d, expected %d", c->pointer, r, c->expected_r);
        if (c->expected_json) {
            char *dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            if (strcmp(dump, c->expected_json) != 0)
                fail_msg("%s: got %s, expected %s", c->pointer, dump, c->expected_json);
            free(dump);
        }
    }
    json_decref(document);
}

static void test_pointer_text(void **state)
{
    (void)state;
    json_t *fax =
        json_loads("{\"id\": 12345, \"status\": \"QUEUED\", \"labels\": {\"crier_notice\":"
                   " \"4294967297.abc\"}, \"pages\": 1.5, \"ok\": true, \"list\":"
                   " [{\"id\": \"x\"}]}",
                   0, NULL);
    assert_non_null(fax);
    char buffer[32];
    assert_string_equal(fax_json_pointer_text(fax, "/id", buffer, sizeof(buffer)), "12345");
    assert_string_equal(fax_json_pointer_text(fax, "/status", buffer, sizeof(buffer)), "QUEUED");
    assert_string_equal(fax_json_pointer_text(fax, "/labels/crier_notice", buffer, sizeof(buffer)),
                        "4294967297.abc");
    assert_string_equal(fax_json_pointer_text(fax, "/list/0/id", buffer, sizeof(buffer)), "x");
    assert_null(fax_json_pointer_text(fax, "/pages", buffer, sizeof(buffer))); /* a real */
    assert_null(fax_json_pointer_text(fax, "/ok", buffer, sizeof(buffer)));
    assert_null(fax_json_pointer_text(fax, "/labels", buffer, sizeof(buffer)));
    assert_null(fax_json_pointer_text(fax, "/missing", buffer, sizeof(buffer)));
    assert_null(fax_json_pointer_text(NULL, "/id", buffer, sizeof(buffer)));
    json_decref(fax);
}

static void test_status_words(void **state)
{
    (void)state;
    char **words = fax_status_words(" queued ,in progress,, ,done ");
    assert_int_equal(strv_length(words), 3);
    assert_string_equal(words[0], "queued");
    assert_string_equal(words[1], "in progress");
    assert_string_equal(words[2], "done");
    strv_free(words);
    words = fax_status_words(NULL);
    assert_int_equal(strv_length(words), 0);
    strv_free(words);

    struct fax_status_map map = {
        .delivered = fax_status_words("COMPLETED, success"),
        .failed_permanent = fax_status_words("FAILURE"),
        .failed_temporary = fax_status_words("retry"),
        .pending = fax_status_words("QUEUED,IN_PROGRESS"),
    };
    const struct {
        const char *word;
        enum fax_status_class expected;
    } cases[] = {
        {"COMPLETED", FAX_STATUS_DELIVERED},
        {"success", FAX_STATUS_DELIVERED},
        {"FAILURE", FAX_STATUS_FAILED_PERMANENT},
        {"retry", FAX_STATUS_FAILED_TEMPORARY},
        {"QUEUED", FAX_STATUS_PENDING},
        {"IN_PROGRESS", FAX_STATUS_PENDING},
        {"completed", FAX_STATUS_UNKNOWN}, /* exact words only */
        {"", FAX_STATUS_UNKNOWN},
        {NULL, FAX_STATUS_UNKNOWN},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_int_equal(fax_status_classify(&map, cases[i].word), cases[i].expected);
    strv_free(map.delivered);
    strv_free(map.failed_permanent);
    strv_free(map.failed_temporary);
    strv_free(map.pending);
}

static void test_verdict(void **state)
{
    (void)state;
    const struct {
        int curl;
        long http;
        bool complete;
        enum fax_verdict expected;
    } cases[] = {
        {CURLE_OK, 200, true, FAX_VERDICT_ACCEPTED},
        {CURLE_OK, 201, true, FAX_VERDICT_ACCEPTED},
        {CURLE_OK, 400, true, FAX_VERDICT_REFUSED},
        {CURLE_OK, 413, true, FAX_VERDICT_REFUSED},
        {CURLE_OK, 415, true, FAX_VERDICT_REFUSED},
        {CURLE_OK, 422, true, FAX_VERDICT_REFUSED},
        {CURLE_OK, 429, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 401, true, FAX_VERDICT_RETRY}, /* our credentials: never the person's fault */
        {CURLE_OK, 403, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 404, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 408, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 500, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 503, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 502, true, FAX_VERDICT_UNKNOWN}, /* a proxy: the gateway may have it */
        {CURLE_OK, 504, true, FAX_VERDICT_UNKNOWN},
        {CURLE_OK, 301, true, FAX_VERDICT_RETRY},
        {CURLE_OK, 100, true, FAX_VERDICT_UNKNOWN},
        /* before the request was whole: nothing can have been accepted */
        {CURLE_COULDNT_CONNECT, 0, false, FAX_VERDICT_RETRY},
        {CURLE_PEER_FAILED_VERIFICATION, 0, false, FAX_VERDICT_RETRY},
        {CURLE_OPERATION_TIMEDOUT, 0, false, FAX_VERDICT_RETRY},
        {CURLE_SEND_ERROR, 0, false, FAX_VERDICT_RETRY},
        /* after: the gateway may have the fax */
        {CURLE_OPERATION_TIMEDOUT, 0, true, FAX_VERDICT_UNKNOWN},
        {CURLE_GOT_NOTHING, 0, true, FAX_VERDICT_UNKNOWN},
        {CURLE_RECV_ERROR, 0, true, FAX_VERDICT_UNKNOWN},
        {CURLE_SEND_FAIL_REWIND, 0, true, FAX_VERDICT_UNKNOWN},
        {CURLE_PARTIAL_FILE, 200, true, FAX_VERDICT_UNKNOWN},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum fax_verdict got = fax_send_verdict(cases[i].curl, cases[i].http, cases[i].complete);
        if (got != cases[i].expected)
            fail_msg("case %zu (curl %d, HTTP %ld, complete %d): got %d, expected %d", i,
                     cases[i].curl, cases[i].http, cases[i].complete, got, cases[i].expected);
    }
}

/* ---- the status webhook's callbacks (the callback op) ------------------------------------ */

struct callback_case {
    const char *body;
    int expected_r;
    const char *expected; /* r == 0: "final kind transport_id notice_id detail";
                             r < 0: a piece of the error */
};

#define TOKEN "4294967297.0123456789abcdef0123456789abcdef"
#define FAX_OF(status, more)                                                                       \
    "{\"event\": \"FAX_COMPLETED\", \"eventTime\": \"2026-01-01T00:00:00Z\", \"fax\": {\"id\": "   \
    "\"01FAX1\", \"status\": \"" status "\", \"labels\": {\"crier_notice\": \"" TOKEN "\", "       \
    "\"crier_attempt\": \"1\"}" more "}}"

static const struct callback_case callback_cases[] = {
    {FAX_OF("COMPLETED", ""), 0, "final DELIVERED 01FAX1 4294967297 fax 01FAX1 COMPLETED"},
    {FAX_OF("FAILURE", ", \"errorType\": \"CALL_ERROR\", \"errorMessage\": \"busy\""), 0,
     "final PERMANENT 01FAX1 4294967297 fax 01FAX1 FAILURE: CALL_ERROR: busy"},
    {FAX_OF("IN_PROGRESS", ""), 0, "final PENDING 01FAX1 4294967297 "},
    {FAX_OF("WHATEVER", ""), 0,
     "final PENDING 01FAX1 4294967297 fax 01FAX1: status 'WHATEVER' is not one of the configured "
     "status words"},
    /* not crier's: no label, or another event */
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"01FAX2\", \"status\": \"COMPLETED\"}}", 0,
     "final DELIVERED 01FAX2 0 fax 01FAX2 COMPLETED"},
    {"{\"event\": \"INCOMING_FAX\", \"fax\": {\"id\": \"01FAX3\"}}", 0, "other PENDING 01FAX3 0 "},
    /* malformed */
    {"", -EINVAL, "not JSON"},
    {"{\"event\": \"FAX_COMPLETED\", \"event\": \"X\"}", -EINVAL, "not JSON"},
    {"[]", -EINVAL, "not a JSON object"},
    {"{\"fax\": {}}", -EINVAL, "'event' is missing"},
    {"{\"event\": 7, \"fax\": {}}", -EINVAL, "'event' is missing"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": \"{}\"}", -EINVAL,
     "'fax' is missing or not an object"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"status\": \"COMPLETED\"}}", -EINVAL,
     "'fax.id' is missing"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"a\\nb\", \"status\": \"COMPLETED\"}}",
     -EINVAL, "'fax.id' has a control character"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"01FAX1\"}}", -EINVAL,
     "'fax.status' is missing"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"1\", \"status\": \"COMPLETED\", "
     "\"labels\": {\"crier_notice\": \"12.XYZ\"}}}",
     -EINVAL, "'fax.labels.crier_notice' is not a notice token"},
    {"{\"event\": \"FAX_COMPLETED\", \"fax\": {\"id\": \"1\", \"status\": \"COMPLETED\", "
     "\"labels\": {\"crier_notice\": 12}}}",
     -EINVAL, "is not a notice token"},
};

static void test_callback(void **state)
{
    static const char yaml[] = "channels:\n  fax:\n    provider: sinch\n"
                               "    base_url: http://127.0.0.1:9\n    project_id: p\n";
    struct crier_config *config = NULL;
    assert_int_equal(config_parse(yaml, strlen(yaml), "test.yaml", stderr, &config), 0);
    for (size_t i = 0; i < sizeof(callback_cases) / sizeof(callback_cases[0]); i++) {
        const struct callback_case *c = &callback_cases[i];
        struct crier_callback callback;
        char err[256] = "", got[1024];
        int r =
            fax_channel_ops.callback(config, c->body, strlen(c->body), &callback, err, sizeof(err));
        if (r != c->expected_r)
            fail_msg("case %zu: r %d, expected %d (%s)", i, r, c->expected_r, err);
        if (r < 0) {
            if (strstr(err, c->expected) == NULL)
                fail_msg("case %zu: error '%s' lacks '%s'", i, err, c->expected);
            continue;
        }
        snprintf(got, sizeof(got), "%s %s %s %lld %s", callback.final_status ? "final" : "other",
                 callback.final_status ? outcome_kind_name(callback.outcome.kind) : "PENDING",
                 callback.transport_id, (long long)callback.notice_id, callback.outcome.detail);
        if (strcasecmp(got, c->expected) != 0)
            fail_msg("case %zu: '%s', expected '%s'", i, got, c->expected);
    }
    /* a configuration that describes no gateway cannot read one */
    struct crier_config *empty = config_default();
    struct crier_callback callback;
    char err[256];
    assert_int_equal(fax_channel_ops.callback(empty, "{}", 2, &callback, err, sizeof(err)),
                     -ENOTSUP);
    config_free(empty);
    config_free(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointer_rfc),  cmocka_unit_test(test_pointer_text),
        cmocka_unit_test(test_status_words), cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
