/*
 * test_config.c - crier.yaml parsing: defaults, every key, and the exact message (with
 * FILE:LINE:COL) for every kind of mistake. Most cases are rows in tables.
 */
#include "crier/config.h"
#include "crier/crier.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A config pointer that parsing must leave alone when it fails. */
#define UNTOUCHED ((struct crier_config *)&untouched_marker)
static int untouched_marker;

/* parse - config_parse on text as "t.yaml", messages collected into *ret_diag. */
static int parse(const char *text, char **ret_diag, struct crier_config **ret_config)
{
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    assert_non_null(diag);
    int r = config_parse(text, strlen(text), "t.yaml", diag, ret_config);
    fclose(diag);
    *ret_diag = buffer;
    return r;
}

/* parse_ok - parse text that must be valid, with no message. */
static struct crier_config *parse_ok(const char *text)
{
    struct crier_config *config = NULL;
    char *diag = NULL;
    int r = parse(text, &diag, &config);
    assert_string_equal(diag, "");
    assert_int_equal(r, 0);
    assert_non_null(config);
    free(diag);
    return config;
}

static void assert_defaults(const struct crier_config *config)
{
    assert_null(config->conninfo);
    assert_int_equal(config->queue.lease_seconds, 300);
    assert_int_equal(config->queue.backoff_min_seconds, 30);
    assert_int_equal(config->queue.backoff_max_seconds, 3600);
    assert_true(config->queue.backoff_jitter == 0.2);
    assert_int_equal(config->queue.give_up_after_seconds, 259200);
    assert_int_equal(config->queue.idle_poll_ms, 500);
    assert_int_equal(config->log.format, LOG_FORMAT_AUTO);
    assert_int_equal(config->log.level, 6);
    for (size_t i = 0; i < FIELD_COUNT; i++)
        assert_null(config->import.columns[i]);
    for (size_t i = 0; i < CHANNEL_COUNT; i++) {
        assert_false(config->channel[i].enabled);
        assert_int_equal(config->channel[i].lanes, 1);
        assert_int_equal(config->channel[i].batch_size, 100);
        assert_true(config->channel[i].rate == 0);
    }
    assert_string_equal(config->email.host, "127.0.0.1");
    assert_int_equal(config->email.port, 25);
    assert_int_equal(config->email.starttls, STARTTLS_DEFAULT);
    assert_null(config->email.from);
    assert_null(config->email.bounce_domain);
    assert_int_equal(config->email.unrecorded, 0);
    assert_null(config->fax.provider);
    assert_null(config->fax.base_url);
    assert_null(config->fax.key_secret_file);
    assert_null(config->mail.spool);
    assert_int_equal(config->mail.letters_per_batch, 5000);
    assert_string_equal(config->test.default_outcome, "delivered");
    assert_int_equal(config->test.delay_ms, 0);
}

static void test_default(void **state)
{
    (void)state;
    struct crier_config *config = config_default();
    assert_defaults(config);
    assert_null(config->path);
    assert_null(config_free(config));
    assert_null(config_free(NULL));
}

/* Texts that say nothing: every one means "all defaults". */
static const char *const empty_texts[] = {
    "",       "\n",      "# only a comment\n",
    "---\n",  "--- ~\n", "~\n",
    "null\n", "{}\n",    "database:\nqueue: {}\nlog: ~\nimport:\n  columns: {}\nchannels:\n",
};

static void test_empty_is_default(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(empty_texts); i++) {
        struct crier_config *config = parse_ok(empty_texts[i]);
        assert_defaults(config);
        assert_string_equal(config->path, "t.yaml");
        config_free(config);
    }
}

static const char full_example[] = "database:\n"
                                   "  conninfo: \"host=/run/postgresql dbname=crier\"\n"
                                   "queue:\n"
                                   "  lease: 10m\n"
                                   "  backoff_min: 45\n"
                                   "  backoff_max: 2h\n"
                                   "  backoff_jitter: 0.5\n"
                                   "  give_up_after: 1d\n"
                                   "  idle_poll: 250\n"
                                   "log:\n"
                                   "  format: json\n"
                                   "  level: debug\n"
                                   "import:\n"
                                   "  columns:\n"
                                   "    ref: employee_id\n"
                                   "    postal_code: 'zip code'\n"
                                   "channels:\n"
                                   "  email:\n"
                                   "    lanes: 4\n"
                                   "    batch_size: 50\n"
                                   "    rate: 20\n"
                                   "    smtp: {host: smtp.example.com, port: 587, "
                                   "starttls: required}\n"
                                   "    from: \"Example Corp <privacy@example.com>\"\n"
                                   "    bounce_domain: bounces.example.com\n"
                                   "    unrecorded: 8\n"
                                   "  fax:\n"
                                   "    lanes: 2\n"
                                   "    rate: 0.5\n"
                                   "    provider: sinch\n"
                                   "    base_url: https://fax.example.net\n"
                                   "    project_id: \"1234\"\n"
                                   "    key_id: 42\n"
                                   "    key_secret_file: /etc/crier/fax.secret\n"
                                   "    from: +12125550100\n"
                                   "  mail:\n"
                                   "    batch_size: 1000\n"
                                   "    spool: /var/spool/crier\n"
                                   "    letters_per_batch: 250\n"
                                   "  null: {lanes: 3}\n"
                                   "  test:\n"
                                   "    lanes: 64\n"
                                   "    batch_size: 10000\n"
                                   "    default: temporary\n"
                                   "    delay_ms: 15\n";

static void test_full_example(void **state)
{
    (void)state;
    struct crier_config *config = parse_ok(full_example);

    assert_string_equal(config->conninfo, "host=/run/postgresql dbname=crier");
    assert_int_equal(config->queue.lease_seconds, 600);
    assert_int_equal(config->queue.backoff_min_seconds, 45);
    assert_int_equal(config->queue.backoff_max_seconds, 7200);
    assert_true(config->queue.backoff_jitter == 0.5);
    assert_int_equal(config->queue.give_up_after_seconds, 86400);
    assert_int_equal(config->queue.idle_poll_ms, 250);
    assert_int_equal(config->log.format, LOG_FORMAT_JSON);
    assert_int_equal(config->log.level, 7);
    assert_string_equal(config->import.columns[FIELD_REF], "employee_id");
    assert_string_equal(config->import.columns[FIELD_POSTAL_CODE], "zip code");
    assert_null(config->import.columns[FIELD_EMAIL]);

    for (size_t i = 0; i < CHANNEL_COUNT; i++)
        assert_true(config->channel[i].enabled);
    const struct crier_channel_config *email = &config->channel[CHANNEL_EMAIL];
    assert_int_equal(email->lanes, 4);
    assert_int_equal(email->batch_size, 50);
    assert_true(email->rate == 20);
    assert_string_equal(config->email.host, "smtp.example.com");
    assert_int_equal(config->email.port, 587);
    assert_int_equal(config->email.starttls, STARTTLS_REQUIRED);
    assert_string_equal(config->email.from, "Example Corp <privacy@example.com>");
    assert_string_equal(config->email.bounce_domain, "bounces.example.com");
    assert_int_equal(config->email.unrecorded, 8);

    assert_int_equal(config->channel[CHANNEL_FAX].lanes, 2);
    assert_int_equal(config->channel[CHANNEL_FAX].batch_size, 100);
    assert_true(config->channel[CHANNEL_FAX].rate == 0.5);
    assert_string_equal(config->fax.provider, "sinch");
    assert_string_equal(config->fax.base_url, "https://fax.example.net");
    assert_string_equal(config->fax.project_id, "1234");
    assert_string_equal(config->fax.key_id, "42"); /* a string key takes any scalar's text */
    assert_string_equal(config->fax.key_secret_file, "/etc/crier/fax.secret");
    assert_string_equal(config->fax.from, "+12125550100");

    assert_int_equal(config->channel[CHANNEL_MAIL].batch_size, 1000);
    assert_string_equal(config->mail.spool, "/var/spool/crier");
    assert_int_equal(config->mail.letters_per_batch, 250);

    assert_int_equal(config->channel[CHANNEL_NULL].lanes, 3);

    assert_int_equal(config->channel[CHANNEL_TEST].lanes, 64);
    assert_int_equal(config->channel[CHANNEL_TEST].batch_size, 10000);
    assert_string_equal(config->test.default_outcome, "temporary");
    assert_int_equal(config->test.delay_ms, 15);

    config_free(config);
}

/* The shipped example must stay valid: tests/data/../../config/crier.example.yaml. */
static void test_example_file(void **state)
{
    (void)state;
    const char *data = getenv("CRIER_TEST_DATA");
    if (str_empty(data))
        skip();
    char *path = xasprintf("%s/../../config/crier.example.yaml", data);
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    struct crier_config *config = NULL;
    int r = config_load(path, diag, &config);
    fclose(diag);
    assert_string_equal(buffer, "");
    assert_int_equal(r, 0);
    assert_string_equal(config->path, path);
    assert_null(config->conninfo);
    assert_true(config->channel[CHANNEL_NULL].enabled);
    assert_int_equal(config->channel[CHANNEL_NULL].lanes, 1);
    assert_false(config->channel[CHANNEL_EMAIL].enabled);
    assert_false(config->channel[CHANNEL_FAX].enabled);
    assert_false(config->channel[CHANNEL_MAIL].enabled);
    assert_false(config->channel[CHANNEL_TEST].enabled);
    assert_string_equal(config->import.columns[FIELD_REF], "employee_id");
    assert_int_equal(config->queue.lease_seconds, 300);
    config_free(config);
    free(buffer);
    free(path);
}

static void test_channel_enabled_by_section(void **state)
{
    (void)state;
    struct crier_config *config = parse_ok("channels:\n"
                                           "  null:\n"
                                           "  test: {}\n"
                                           "  mail: ~\n");
    assert_false(config->channel[CHANNEL_EMAIL].enabled);
    assert_false(config->channel[CHANNEL_FAX].enabled);
    assert_true(config->channel[CHANNEL_MAIL].enabled);
    assert_true(config->channel[CHANNEL_NULL].enabled);
    assert_true(config->channel[CHANNEL_TEST].enabled);
    assert_int_equal(config->channel[CHANNEL_NULL].lanes, 1);
    config_free(config);
}

static void test_import_columns(void **state)
{
    (void)state;
    struct crier_config *config = parse_ok("import:\n"
                                           "  columns:\n"
                                           "    ref: Employee ID\n"
                                           "    name: full_name\n"
                                           "    email: mail\n"
                                           "    fax: fax_number\n"
                                           "    address1: street\n"
                                           "    address2: \"street 2\"\n"
                                           "    city: town\n"
                                           "    region: state\n"
                                           "    postal_code: zip\n"
                                           "    country: nation\n");
    static const char *const expected[FIELD_COUNT] = {
        [FIELD_REF] = "Employee ID", [FIELD_NAME] = "full_name",  [FIELD_EMAIL] = "mail",
        [FIELD_FAX] = "fax_number",  [FIELD_ADDRESS1] = "street", [FIELD_ADDRESS2] = "street 2",
        [FIELD_CITY] = "town",       [FIELD_REGION] = "state",    [FIELD_POSTAL_CODE] = "zip",
        [FIELD_COUNTRY] = "nation",
    };
    for (size_t i = 0; i < FIELD_COUNT; i++)
        assert_string_equal(config->import.columns[i], expected[i]);
    config_free(config);
}

static void test_strings(void **state)
{
    (void)state;
    struct crier_config *config = parse_ok("database: {conninfo: \"\"}\n"
                                           "channels:\n"
                                           "  email: {from: , bounce_domain: ~}\n"
                                           "  fax: {base_url: 'x: y', from: '+1 212'}\n");
    assert_null(config->conninfo);
    assert_null(config->email.from);
    assert_null(config->email.bounce_domain);
    assert_string_equal(config->fax.base_url, "x: y");
    assert_string_equal(config->fax.from, "+1 212");
    config_free(config);

    config = parse_ok("database:\n  conninfo: postgresql:///crier\n");
    assert_string_equal(config->conninfo, "postgresql:///crier");
    config_free(config);
}

/* A value and what it becomes, for keys whose values are data. */
struct value_case {
    const char *yaml;
    long expected;
};

static const struct value_case lease_cases[] = {
    {"90", 90},   {"30s", 30}, {"5m", 300}, {"2h", 7200}, {"3d", 259200},          {"\"45\"", 45},
    {"'1m'", 60}, {"1", 1},    {"+7", 7},   {"0090", 90}, {"100000d", 8640000000},
};

static void test_durations(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(lease_cases); i++) {
        char *text = xasprintf("queue:\n  lease: %s\n  give_up_after: %s\n", lease_cases[i].yaml,
                               lease_cases[i].yaml);
        struct crier_config *config = parse_ok(text);
        assert_int_equal(config->queue.lease_seconds, lease_cases[i].expected);
        assert_int_equal(config->queue.give_up_after_seconds, lease_cases[i].expected);
        config_free(config);
        free(text);
    }
}

static const struct value_case log_level_cases[] = {
    {"debug", 7}, {"info", 6}, {"notice", 5}, {"warning", 4}, {"error", 3}, {"'error'", 3},
};

static const struct value_case log_format_cases[] = {
    {"auto", LOG_FORMAT_AUTO},
    {"text", LOG_FORMAT_TEXT},
    {"json", LOG_FORMAT_JSON},
};

static const struct value_case starttls_cases[] = {
    {"required", STARTTLS_REQUIRED},
    {"optional", STARTTLS_OPTIONAL},
    {"off", STARTTLS_OFF},
};

static void test_choices(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(log_level_cases); i++) {
        char *text = xasprintf("log: {level: %s}\n", log_level_cases[i].yaml);
        struct crier_config *config = parse_ok(text);
        assert_int_equal(config->log.level, log_level_cases[i].expected);
        config_free(config);
        free(text);
    }
    for (size_t i = 0; i < ARRAY_SIZE(log_format_cases); i++) {
        char *text = xasprintf("log: {format: %s}\n", log_format_cases[i].yaml);
        struct crier_config *config = parse_ok(text);
        assert_int_equal(config->log.format, log_format_cases[i].expected);
        config_free(config);
        free(text);
    }
    for (size_t i = 0; i < ARRAY_SIZE(starttls_cases); i++) {
        char *text =
            xasprintf("channels: {email: {smtp: {starttls: %s}}}\n", starttls_cases[i].yaml);
        struct crier_config *config = parse_ok(text);
        assert_int_equal(config->email.starttls, starttls_cases[i].expected);
        assert_true(config->channel[CHANNEL_EMAIL].enabled);
        config_free(config);
        free(text);
    }
    static const char *const outcomes[] = {"delivered", "accepted", "temporary", "permanent",
                                           "no_address"};
    for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++) {
        char *text = xasprintf("channels: {test: {default: %s}}\n", outcomes[i]);
        struct crier_config *config = parse_ok(text);
        assert_string_equal(config->test.default_outcome, outcomes[i]);
        config_free(config);
        free(text);
    }
    static const char *const providers[] = {"sinch", "generic"};
    for (size_t i = 0; i < ARRAY_SIZE(providers); i++) {
        char *text = xasprintf("channels: {fax: {provider: %s}}\n", providers[i]);
        struct crier_config *config = parse_ok(text);
        assert_string_equal(config->fax.provider, providers[i]);
        config_free(config);
        free(text);
    }
}

/* The edges of every range are accepted. */
static const char *const range_edges[] = {
    "queue: {lease: 1, give_up_after: 1, backoff_min: 0, backoff_max: 0}\n",
    "queue: {backoff_min: 1h, backoff_max: 3600}\n",
    "queue: {backoff_jitter: 0, idle_poll: 10}\n",
    "queue: {backoff_jitter: 1, idle_poll: 60000}\n",
    "queue: {backoff_jitter: 1.0e-1}\n",
    "channels: {null: {lanes: 1, batch_size: 1, rate: 0}}\n",
    "channels: {null: {lanes: 64, batch_size: 10000, rate: 1e6}}\n",
    "channels: {email: {smtp: {port: 1}}}\n",
    "channels: {email: {smtp: {port: 65535}}}\n",
    "channels: {mail: {letters_per_batch: 1}}\n",
    "channels: {mail: {letters_per_batch: 1000000}}\n",
    "channels: {test: {delay_ms: 0}}\n",
};

static void test_range_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(range_edges); i++)
        config_free(parse_ok(range_edges[i]));
}

/* A file with mistakes, and exactly what must be said about it. */
struct error_case {
    const char *name;
    const char *yaml;
    const char *diag;
};

#define LONG_KEY_SHOWN "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh" /* 60 */
#define LONG_KEY       LONG_KEY_SHOWN "ijklmnopqrstuvwxyz"

static const struct error_case error_cases[] = {
    {"unknown_top_level_key", "databse:\n  conninfo: x\n",
     "t.yaml:1:1: unknown key 'databse' at the top level\n"},
    {"unknown_queue_key", "queue:\n  leese: 5m\n", "t.yaml:2:3: unknown key 'leese' in 'queue'\n"},
    {"unknown_smtp_key", "channels:\n  email:\n    smtp:\n      hots: 127.0.0.1\n",
     "t.yaml:4:7: unknown key 'hots' in 'channels.email.smtp'\n"},
    {"unknown_smtp_key_flow", "channels:\n  email:\n    smtp: {hots: 127.0.0.1}\n",
     "t.yaml:3:12: unknown key 'hots' in 'channels.email.smtp'\n"},
    {"unknown_email_key", "channels:\n  email:\n    form: a@example.com\n",
     "t.yaml:3:5: unknown key 'form' in 'channels.email'\n"},
    {"null_channel_has_only_common_keys", "channels:\n  null: {spool: /tmp}\n",
     "t.yaml:2:10: unknown key 'spool' in 'channels.null'\n"},
    {"unknown_channel", "channels:\n  sms: {}\n",
     "t.yaml:2:3: unknown key 'sms' in 'channels' (expected one of: email, fax, mail, null, "
     "test)\n"},
    {"unknown_field", "import:\n  columns:\n    zip: postcode\n",
     "t.yaml:3:5: unknown key 'zip' in 'import.columns' (expected one of: ref, name, email, fax, "
     "address1, address2, city, region, postal_code, country)\n"},
    {"key_is_shown_on_one_line", "queue:\n  \"a\\nb\": 1\n",
     "t.yaml:2:3: unknown key 'a?b' in 'queue'\n"},
    {"long_key_is_cut", "log: {" LONG_KEY ": 1}\n",
     "t.yaml:1:7: unknown key '" LONG_KEY_SHOWN "...' in 'log'\n"},
    {"key_not_scalar", "queue:\n  [lease]: 5m\n", "t.yaml:2:3: expected a scalar key in 'queue'\n"},

    {"channels_not_mapping", "channels: [email]\n",
     "t.yaml:1:11: expected a mapping for 'channels'\n"},
    {"section_is_scalar", "queue: 5m\n", "t.yaml:1:8: expected a mapping for 'queue'\n"},
    {"top_level_not_mapping", "- queue\n", "t.yaml:1:1: expected a mapping at the top level\n"},
    {"top_level_scalar", "crier\n", "t.yaml:1:1: expected a mapping at the top level\n"},
    {"integer_is_word", "queue:\n  idle_poll: fast\n",
     "t.yaml:2:14: expected an integer for 'queue.idle_poll'\n"},
    {"integer_has_unit", "queue:\n  idle_poll: 500ms\n",
     "t.yaml:2:14: expected an integer for 'queue.idle_poll'\n"},
    {"integer_is_float", "channels:\n  null:\n    lanes: 2.5\n",
     "t.yaml:3:12: expected an integer for 'channels.null.lanes'\n"},
    {"quoted_integer", "channels:\n  email:\n    lanes: \"4\"\n",
     "t.yaml:3:12: expected an integer for 'channels.email.lanes'\n"},
    {"single_quoted_integer", "channels:\n  mail:\n    letters_per_batch: '10'\n",
     "t.yaml:3:24: expected an integer for 'channels.mail.letters_per_batch'\n"},
    {"integer_is_null", "channels:\n  email:\n    smtp: {port: }\n",
     "t.yaml:3:18: expected an integer for 'channels.email.smtp.port'\n"},
    {"integer_is_list", "channels: {test: {delay_ms: [1]}}\n",
     "t.yaml:1:29: expected an integer for 'channels.test.delay_ms'\n"},
    {"duration_is_word", "queue:\n  lease: soon\n",
     "t.yaml:2:10: expected an integer for 'queue.lease' (seconds, or a duration like 30s, 5m, "
     "2h, 3d)\n"},
    {"duration_bad_unit", "queue:\n  backoff_min: 5w\n",
     "t.yaml:2:16: expected an integer for 'queue.backoff_min' (seconds, or a duration like 30s, "
     "5m, 2h, 3d)\n"},
    {"duration_is_mapping", "queue:\n  give_up_after: {days: 3}\n",
     "t.yaml:2:18: expected an integer for 'queue.give_up_after' (seconds, or a duration like "
     "30s, 5m, 2h, 3d)\n"},
    {"number_is_quoted", "queue:\n  backoff_jitter: '0.5'\n",
     "t.yaml:2:19: expected a number for 'queue.backoff_jitter'\n"},
    {"number_is_nan", "channels: {fax: {rate: .nan}}\n",
     "t.yaml:1:24: expected a number for 'channels.fax.rate'\n"},
    {"number_is_hex", "channels: {fax: {rate: 0x10}}\n",
     "t.yaml:1:24: expected a number for 'channels.fax.rate'\n"},
    {"string_is_mapping", "database:\n  conninfo: {host: x}\n",
     "t.yaml:2:13: expected a string for 'database.conninfo'\n"},
    {"string_is_list", "channels: {fax: {from: [a, b]}}\n",
     "t.yaml:1:24: expected a string for 'channels.fax.from'\n"},
    {"string_has_nul", "database:\n  conninfo: \"a\\0b\"\n",
     "t.yaml:2:13: 'database.conninfo' must not contain a NUL byte\n"},
    {"empty_host", "channels: {email: {smtp: {host: ''}}}\n",
     "t.yaml:1:33: 'channels.email.smtp.host' must not be empty\n"},
    {"empty_column", "import:\n  columns:\n    ref: \"\"\n",
     "t.yaml:3:10: 'import.columns.ref' must not be empty\n"},
    {"null_column", "import:\n  columns:\n    ref:\n",
     "t.yaml:3:9: 'import.columns.ref' must not be empty\n"},

    {"lanes_too_many", "channels:\n  null: {lanes: 65}\n",
     "t.yaml:2:17: value 65 for 'channels.null.lanes' is out of range (0..64)\n"},
    {"lanes_negative", "channels:\n  null: {lanes: -1}\n",
     "t.yaml:2:17: value -1 for 'channels.null.lanes' is out of range (0..64)\n"},
    {"lanes_overflow", "channels:\n  null: {lanes: 99999999999999999999}\n",
     "t.yaml:2:17: value 99999999999999999999 for 'channels.null.lanes' is out of range "
     "(0..64)\n"},
    {"batch_size_too_big", "channels:\n  email:\n    batch_size: 10001\n",
     "t.yaml:3:17: value 10001 for 'channels.email.batch_size' is out of range (1..10000)\n"},
    {"port_too_big", "channels: {email: {smtp: {port: 65536}}}\n",
     "t.yaml:1:33: value 65536 for 'channels.email.smtp.port' is out of range (1..65535)\n"},
    {"port_zero", "channels: {email: {smtp: {port: 0}}}\n",
     "t.yaml:1:33: value 0 for 'channels.email.smtp.port' is out of range (1..65535)\n"},
    {"letters_per_batch_zero", "channels: {mail: {letters_per_batch: 0}}\n",
     "t.yaml:1:38: value 0 for 'channels.mail.letters_per_batch' is out of range "
     "(1..1000000)\n"},
    {"rate_negative", "channels: {fax: {rate: -0.5}}\n",
     "t.yaml:1:24: value -0.5 for 'channels.fax.rate' is out of range (at least 0)\n"},
    {"rate_overflow", "channels: {fax: {rate: 1e999}}\n",
     "t.yaml:1:24: value 1e999 for 'channels.fax.rate' is out of range (at least 0)\n"},
    {"jitter_above_one", "queue:\n  backoff_jitter: 1.5\n",
     "t.yaml:2:19: value 1.5 for 'queue.backoff_jitter' is out of range (0..1)\n"},
    {"idle_poll_too_short", "queue:\n  idle_poll: 9\n",
     "t.yaml:2:14: value 9 for 'queue.idle_poll' is out of range (10..60000)\n"},
    {"idle_poll_too_long", "queue:\n  idle_poll: 60001\n",
     "t.yaml:2:14: value 60001 for 'queue.idle_poll' is out of range (10..60000)\n"},
    {"lease_zero", "queue:\n  lease: 0s\n",
     "t.yaml:2:10: value 0s for 'queue.lease' is out of range (at least 1)\n"},
    {"give_up_after_negative", "queue:\n  give_up_after: -1\n",
     "t.yaml:2:18: value -1 for 'queue.give_up_after' is out of range (at least 1)\n"},
    {"delay_ms_negative", "channels: {test: {delay_ms: -5}}\n",
     "t.yaml:1:29: value -5 for 'channels.test.delay_ms' is out of range (at least 0)\n"},

    {"backoff_max_below_min", "queue:\n  backoff_min: 2h\n  backoff_max: 1h\n",
     "t.yaml:3:16: 'queue.backoff_max' (3600 s) must be at least 'queue.backoff_min' (7200 s)\n"},
    {"backoff_min_above_default_max", "queue:\n  backoff_min: 2h\n",
     "t.yaml:2:16: 'queue.backoff_max' (3600 s) must be at least 'queue.backoff_min' (7200 s)\n"},
    {"backoff_max_below_default_min", "queue:\n  backoff_max: 10\n",
     "t.yaml:2:16: 'queue.backoff_max' (10 s) must be at least 'queue.backoff_min' (30 s)\n"},
    {"backoff_not_compared_when_invalid", "queue:\n  backoff_min: 2h\n  backoff_max: soon\n",
     "t.yaml:3:16: expected an integer for 'queue.backoff_max' (seconds, or a duration like "
     "30s, 5m, 2h, 3d)\n"},

    {"bad_log_level", "log:\n  level: loud\n",
     "t.yaml:2:10: invalid value 'loud' for 'log.level' (expected one of: debug, info, notice, "
     "warning, error)\n"},
    {"log_level_number", "log:\n  level: 6\n",
     "t.yaml:2:10: invalid value '6' for 'log.level' (expected one of: debug, info, notice, "
     "warning, error)\n"},
    {"bad_log_format", "log:\n  format: xml\n",
     "t.yaml:2:11: invalid value 'xml' for 'log.format' (expected one of: auto, text, json)\n"},
    {"log_format_is_list", "log:\n  format: [text]\n",
     "t.yaml:2:11: expected one of auto, text, json for 'log.format'\n"},
    {"bad_starttls", "channels: {email: {smtp: {starttls: yes}}}\n",
     "t.yaml:1:37: invalid value 'yes' for 'channels.email.smtp.starttls' (expected one of: "
     "required, optional, off)\n"},
    {"bad_fax_provider", "channels:\n  fax:\n    provider: twilio\n",
     "t.yaml:3:15: invalid value 'twilio' for 'channels.fax.provider' (expected one of: sinch, "
     "generic)\n"},
    {"bad_test_default", "channels:\n  test:\n    default: lost\n",
     "t.yaml:3:14: invalid value 'lost' for 'channels.test.default' (expected one of: "
     "delivered, accepted, temporary, permanent, no_address)\n"},
    {"empty_test_default", "channels:\n  test:\n    default:\n",
     "t.yaml:3:13: invalid value '' for 'channels.test.default' (expected one of: "
     "delivered, accepted, temporary, permanent, no_address)\n"},

    {"duplicate_key", "queue:\n  lease: 5m\n  lease: 10m\n",
     "t.yaml:3:3: duplicate key 'lease' in 'queue'\n"},
    {"duplicate_section", "queue: {}\nlog: {}\nqueue: {lease: 1}\n",
     "t.yaml:3:1: duplicate key 'queue' at the top level\n"},
    {"duplicate_channel", "channels:\n  null: {}\n  'null': {lanes: 2}\n",
     "t.yaml:3:3: duplicate key 'null' in 'channels'\n"},
    {"duplicate_unknown_key", "queue: {x: 1, x: 2}\n",
     "t.yaml:1:9: unknown key 'x' in 'queue'\n"
     "t.yaml:1:15: duplicate key 'x' in 'queue'\n"},

    {"syntax_bad_indent", "queue:\n  lease: 5m\n   idle_poll: 500\n",
     "t.yaml:3:13: mapping values are not allowed in this context\n"},
    {"syntax_unterminated_quote", "database:\n  conninfo: \"host=x\n",
     "t.yaml:3:1: found unexpected end of stream (while scanning a quoted scalar at line 2 "
     "column 13)\n"},
    {"syntax_tab", "queue:\n\tlease: 5m\n",
     "t.yaml:2:1: found character that cannot start any token (while scanning for the next "
     "token at line 2 column 1)\n"},
    {"syntax_unclosed_flow", "channels: {null: {lanes: 1}\nlog: {}\n",
     "t.yaml:2:1: did not find expected ',' or '}' (while parsing a flow mapping at line 1 "
     "column 11)\n"},
    {"syntax_undefined_alias", "queue:\n  lease: *five\n", "t.yaml:2:10: found undefined alias\n"},
    {"syntax_duplicate_anchor", "queue:\n  lease: &a 5m\n  backoff_min: &a 1m\n",
     "t.yaml:3:16: second occurrence (found duplicate anchor; first occurrence at line 2 "
     "column 10)\n"},
    {"control_character", "queue:\n  lease: 5m\x01\n",
     "t.yaml:2:12: control characters are not allowed\n"},
    {"invalid_utf8", "log:\n  level: \xff\n", "t.yaml:2:10: invalid leading UTF-8 octet\n"},
    {"second_document", "queue: {}\n---\nlog: {}\n",
     "t.yaml:3:1: only one YAML document is allowed\n"},

    {"all_errors_reported",
     "queue:\n"
     "  lease: never\n"
     "  backoff_min: 2h\n"
     "  backoff_max: 1h\n"
     "  idle_poll: 1\n"
     "log: {level: loud, format: json, colour: yes}\n"
     "chanels: {}\n"
     "channels:\n"
     "  email:\n"
     "    lanes: \"4\"\n"
     "    smtp:\n"
     "      hots: x\n"
     "      port: 0\n"
     "  sms:\n"
     "  null:\n"
     "  null:\n",
     "t.yaml:2:10: expected an integer for 'queue.lease' (seconds, or a duration like 30s, 5m, "
     "2h, 3d)\n"
     "t.yaml:5:14: value 1 for 'queue.idle_poll' is out of range (10..60000)\n"
     "t.yaml:6:14: invalid value 'loud' for 'log.level' (expected one of: debug, info, notice, "
     "warning, error)\n"
     "t.yaml:6:34: unknown key 'colour' in 'log'\n"
     "t.yaml:7:1: unknown key 'chanels' at the top level\n"
     "t.yaml:10:12: expected an integer for 'channels.email.lanes'\n"
     "t.yaml:12:7: unknown key 'hots' in 'channels.email.smtp'\n"
     "t.yaml:13:13: value 0 for 'channels.email.smtp.port' is out of range (1..65535)\n"
     "t.yaml:14:3: unknown key 'sms' in 'channels' (expected one of: email, fax, mail, null, "
     "test)\n"
     "t.yaml:16:3: duplicate key 'null' in 'channels'\n"
     "t.yaml:4:16: 'queue.backoff_max' (3600 s) must be at least 'queue.backoff_min' (7200 s)\n"},
};

static void test_error_case(void **state)
{
    const struct error_case *error_case = *state;
    struct crier_config *config = UNTOUCHED;
    char *diag = NULL;
    int r = parse(error_case->yaml, &diag, &config);
    assert_string_equal(diag, error_case->diag);
    assert_int_equal(r, -EINVAL);
    assert_ptr_equal(config, UNTOUCHED);
    free(diag);
}

/* Errors are counted even with nowhere to write them. */
static void test_no_diag(void **state)
{
    (void)state;
    struct crier_config *config = UNTOUCHED;
    const char *text = "queue: {lease: soon}\n";
    assert_int_equal(config_parse(text, strlen(text), "t.yaml", NULL, &config), -EINVAL);
    assert_ptr_equal(config, UNTOUCHED);
    text = "queue: [\n";
    assert_int_equal(config_parse(text, strlen(text), "t.yaml", NULL, &config), -EINVAL);
    assert_ptr_equal(config, UNTOUCHED);
}

/* Only len bytes are read: text need not be NUL-terminated. */
static void test_parse_length(void **state)
{
    (void)state;
    const char text[] = "log: {level: debug}\nthis is not yaml: [";
    struct crier_config *config = NULL;
    assert_int_equal(config_parse(text, strlen("log: {level: debug}\n"), "t.yaml", stderr, &config),
                     0);
    assert_int_equal(config->log.level, 7);
    config_free(config);
}

static void test_load_missing(void **state)
{
    (void)state;
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    struct crier_config *config = UNTOUCHED;
    int r = config_load("/nonexistent/crier.yaml", diag, &config);
    fclose(diag);
    assert_int_equal(r, -ENOENT);
    assert_ptr_equal(config, UNTOUCHED);
    assert_string_equal(buffer,
                        "/nonexistent/crier.yaml: cannot open: No such file or directory\n");
    free(buffer);
}

/* write_temp - a file holding text in a new temporary directory; returns its path. */
static char *write_temp(const char *directory_template, const char *name, const char *text)
{
    char *directory = xstrdup(directory_template);
    assert_non_null(mkdtemp(directory));
    char *path = xasprintf("%s/%s", directory, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    free(directory);
    return path;
}

static void remove_temp(char *path)
{
    unlink(path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rmdir(path);
    free(path);
}

static void test_load_file(void **state)
{
    (void)state;
    char *path = write_temp("/tmp/crier-test-config-XXXXXX", "crier.yaml",
                            "channels:\n  null: {lanes: 2}\nqueue:\n  lease: 2m\n");
    struct crier_config *config = NULL;
    assert_int_equal(config_load(path, stderr, &config), 0);
    assert_string_equal(config->path, path);
    assert_true(config->channel[CHANNEL_NULL].enabled);
    assert_int_equal(config->channel[CHANNEL_NULL].lanes, 2);
    assert_int_equal(config->queue.lease_seconds, 120);
    config_free(config);
    remove_temp(path);

    path = write_temp("/tmp/crier-test-config-XXXXXX", "bad.yaml", "\n\nqueue: {lease: x}\n");
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    config = UNTOUCHED;
    assert_int_equal(config_load(path, diag, &config), -EINVAL);
    fclose(diag);
    assert_ptr_equal(config, UNTOUCHED);
    char *expected = xasprintf("%s:3:16: expected an integer for 'queue.lease' (seconds, or a "
                               "duration like 30s, 5m, 2h, 3d)\n",
                               path);
    assert_string_equal(buffer, expected);
    free(expected);
    free(buffer);
    remove_temp(path);
}

/* A directory opens but cannot be read; a huge file is not a config. */
static void test_load_unreadable(void **state)
{
    (void)state;
    char *buffer = NULL;
    size_t size = 0;
    FILE *diag = open_memstream(&buffer, &size);
    struct crier_config *config = UNTOUCHED;
    assert_int_equal(config_load("/", diag, &config), -ENOENT);
    fclose(diag);
    assert_ptr_equal(config, UNTOUCHED);
    assert_string_equal(buffer, "/: cannot read: Is a directory\n");
    free(buffer);

    char *huge = xmalloc(2 * 1024 * 1024 + 1);
    memset(huge, '#', 2 * 1024 * 1024);
    huge[2 * 1024 * 1024] = '\0';
    char *path = write_temp("/tmp/crier-test-config-XXXXXX", "huge.yaml", huge);
    diag = open_memstream(&buffer, &size);
    assert_int_equal(config_load(path, diag, &config), -EINVAL);
    fclose(diag);
    assert_ptr_equal(config, UNTOUCHED);
    char *expected = xasprintf("%s: larger than 1048576 bytes, not a config file\n", path);
    assert_string_equal(buffer, expected);
    free(expected);
    free(buffer);
    free(huge);
    remove_temp(path);
}

static void test_find(void **state)
{
    (void)state;
    char *saved = getenv("CRIER_CONFIG") ? xstrdup(getenv("CRIER_CONFIG")) : NULL;
    char *cwd = getcwd(NULL, 0);
    assert_non_null(cwd);

    assert_string_equal(config_find("/x/explicit.yaml"), "/x/explicit.yaml");

    setenv("CRIER_CONFIG", "/x/env.yaml", 1);
    assert_string_equal(config_find("/x/explicit.yaml"), "/x/explicit.yaml");
    assert_string_equal(config_find(NULL), "/x/env.yaml");

    /* an empty $CRIER_CONFIG counts as unset; ./crier.yaml comes next */
    setenv("CRIER_CONFIG", "", 1);
    char *path = write_temp("/tmp/crier-test-find-XXXXXX", "crier.yaml", "");
    char *directory = xstrdup(path);
    *strrchr(directory, '/') = '\0';
    assert_int_equal(chdir(directory), 0);
    assert_string_equal(config_find(NULL), "crier.yaml");

    /* without ./crier.yaml: /etc/crier/crier.yaml if it exists, else nothing */
    unlink(path);
    unsetenv("CRIER_CONFIG");
    if (access("/etc/crier/crier.yaml", R_OK) == 0)
        assert_string_equal(config_find(NULL), "/etc/crier/crier.yaml");
    else
        assert_null(config_find(NULL));

    assert_int_equal(chdir(cwd), 0);
    remove_temp(path);
    free(directory);
    free(cwd);
    if (saved != NULL)
        setenv("CRIER_CONFIG", saved, 1);
    free(saved);
}

static void test_channel_names(void **state)
{
    (void)state;
    static const char *const names[CHANNEL_COUNT] = {
        [CHANNEL_EMAIL] = "email", [CHANNEL_FAX] = "fax",   [CHANNEL_MAIL] = "mail",
        [CHANNEL_NULL] = "null",   [CHANNEL_TEST] = "test",
    };
    for (size_t i = 0; i < CHANNEL_COUNT; i++) {
        enum crier_channel_id id = CHANNEL_COUNT;
        assert_string_equal(channel_id_name((enum crier_channel_id)i), names[i]);
        assert_int_equal(channel_id_from_name(names[i], &id), 0);
        assert_int_equal(id, i);
    }
    static const char *const unknown[] = {"", "sms", "Email", "email ", "nul"};
    for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
        enum crier_channel_id id = CHANNEL_COUNT;
        assert_int_equal(channel_id_from_name(unknown[i], &id), -EINVAL);
        assert_int_equal(id, CHANNEL_COUNT);
    }
    enum crier_channel_id id = CHANNEL_COUNT;
    assert_int_equal(channel_id_from_name(NULL, &id), -EINVAL);
    assert_null(channel_id_name(CHANNEL_COUNT));
}

static void test_field_names(void **state)
{
    (void)state;
    static const char *const names[FIELD_COUNT] = {
        "ref",      "name", "email",  "fax",         "address1",
        "address2", "city", "region", "postal_code", "country",
    };
    for (size_t i = 0; i < FIELD_COUNT; i++)
        assert_string_equal(field_name((enum crier_field)i), names[i]);
    assert_null(field_name(FIELD_COUNT));
}

/* parse_duration, which durations in the config go through. */
struct duration_case {
    const char *text;
    int expected_r;
    long expected_seconds;
};

static const struct duration_case duration_cases[] = {
    {"90", 0, 90},
    {"0", 0, 0},
    {"30s", 0, 30},
    {"5m", 0, 300},
    {"2h", 0, 7200},
    {"3d", 0, 259200},
    {"", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"5x", -EINVAL, 0},
    {"5mm", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"1.5h", -EINVAL, 0},
    {"5 m", -EINVAL, 0},
    {"99999999999999999999", -EINVAL, 0},
    {"999999999999999999d", -EINVAL, 0},
};

static void test_parse_duration(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(duration_cases); i++) {
        long seconds = -42;
        int r = parse_duration(duration_cases[i].text, &seconds);
        assert_int_equal(r, duration_cases[i].expected_r);
        assert_int_equal(seconds, r == 0 ? duration_cases[i].expected_seconds : -42);
    }
}

int main(void)
{
    static const struct CMUnitTest named_tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_empty_is_default),
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_channel_enabled_by_section),
        cmocka_unit_test(test_import_columns),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_range_edges),
        cmocka_unit_test(test_no_diag),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_load_missing),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_unreadable),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_channel_names),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_parse_duration),
    };
    /* one test per row of error_cases, named after the row */
    struct CMUnitTest tests[ARRAY_SIZE(named_tests) + ARRAY_SIZE(error_cases)];
    size_t count = 0;
    for (size_t i = 0; i < ARRAY_SIZE(named_tests); i++)
        tests[count++] = named_tests[i];
    for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
        tests[count++] = (struct CMUnitTest){
            .name = error_cases[i].name,
            .test_func = test_error_case,
            .initial_state = (void *)&error_cases[i],
        };
    }
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
