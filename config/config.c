/*
 * config.c - crier.yaml, read once at start-up and checked against a table of every key.
 *
 * Every key crier understands is in the tables below, with its type, its range or its
 * allowed values and where it lands in struct crier_config. Anything else is an error.
 * Each problem is reported as FILE:LINE:COL: message, all of them in one pass, so an
 * operator can fix a file in one go.
 *
 * Never logs (but for config_secrets_check's warnings), never reads anything but the one
 * config file (config_secrets_check only looks at the modes of the secret files), never
 * guesses what a misspelt key meant, and never hands back a half-applied config: on any
 * error the caller gets nothing.
 *
 * SECURITY: the config is trusted-operator input, but secrets are never in it: it names
 * files (channels.fax.key_secret_file) or leaves them to libpq's PG* environment, and the
 * channel that needs a secret reads it itself. Do not add keys that hold secret values.
 * database.conninfo can still carry a password (libpq accepts one): the file holding it
 * then gets a warning if others can read it (config_secrets_check), and db.c never
 * copies the conninfo into a message.
 */
#include "crier/config.h"
#include "crier/crier.h"
#include "crier/log.h"
#include "crier/yamldoc.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_SIZE_MAX (1024 * 1024) /* bigger is a mistake (say, --config /dev/zero) */
#define DISPLAY_MAX     64            /* longest key or value quoted back in a message */
#define NO_OFFSET       SIZE_MAX      /* KEY_MAPPING with no "present" flag to set */

#define CONFIG_OFFSET(member) offsetof(struct crier_config, member)

/* KEY_CHOICE writes the chosen value through an int pointer. */
_Static_assert(sizeof(enum crier_starttls) == sizeof(int), "enum crier_starttls is int-sized");
_Static_assert(sizeof(enum crier_log_format) == sizeof(int), "enum crier_log_format is int-sized");
_Static_assert(sizeof(enum crier_oral_lapse) == sizeof(int), "enum crier_oral_lapse is int-sized");

enum key_kind {
    KEY_STRING,        /* char *; "" or null leaves it NULL (unless non_empty) */
    KEY_CHOICE_STRING, /* char *, one of choices */
    KEY_CHOICE,        /* int-sized enum: choice_values[i] for choices[i] */
    KEY_INT,           /* int in min..max, a plain YAML integer */
    KEY_LONG,          /* long in min..max, a plain YAML integer */
    KEY_DURATION,      /* long seconds in min..max: a plain integer, or "30s", "5m", ... */
    KEY_NUMBER,        /* double in min_number..max_number, a plain YAML number */
    KEY_MAPPING,       /* a nested section; a null value counts as an empty one */
};

/* Keys that a check across keys needs, remembered with the node they came from. */
enum remembered_key {
    REMEMBER_NONE,
    REMEMBER_BACKOFF_MIN,
    REMEMBER_BACKOFF_MAX,
    REMEMBER_FAX, /* the channels.fax section: its keys are checked together */
    REMEMBER_COUNT,
};

struct config_section;

struct config_key {
    const char *name;
    enum key_kind kind;
    /* of the field in struct crier_config; for KEY_MAPPING, of a bool set true when the
     * section is present, or NO_OFFSET */
    size_t offset;
    long long min, max;                   /* KEY_INT, KEY_LONG, KEY_DURATION: inclusive range */
    double min_number, max_number;        /* KEY_NUMBER: inclusive range; max may be INFINITY */
    const char *const *choices;           /* KEY_CHOICE, KEY_CHOICE_STRING: NULL-terminated */
    const int *choice_values;             /* KEY_CHOICE: stored for the matching choice */
    bool non_empty;                       /* KEY_STRING: "" or null is an error, not "unset" */
    const struct config_section *section; /* KEY_MAPPING: the keys inside */
    enum remembered_key remember;         /* kept for checks across keys */
};

struct config_section {
    const struct config_key *keys;
    size_t key_count;
    bool list_when_unknown; /* keys are names from a fixed set: an unknown one lists them */
};

#define SECTION(key_array, list)                                                                   \
    {                                                                                              \
        .keys = key_array, .key_count = ARRAY_SIZE(key_array), .list_when_unknown = list           \
    }

/* clang-format off */
#define STRING_KEY(key_name, member) \
    {.name = key_name, .kind = KEY_STRING, .offset = CONFIG_OFFSET(member)}
#define INT_KEY(key_name, member, low, high) \
    {.name = key_name, .kind = KEY_INT, .offset = CONFIG_OFFSET(member), .min = low, .max = high}
#define NUMBER_KEY(key_name, member, low, high) \
    {.name = key_name, .kind = KEY_NUMBER, .offset = CONFIG_OFFSET(member), \
     .min_number = low, .max_number = high}
#define LONG_KEY(key_name, member, low, high) \
    {.name = key_name, .kind = KEY_LONG, .offset = CONFIG_OFFSET(member), .min = low, .max = high}
#define DURATION_KEY(key_name, member, low, high) \
    {.name = key_name, .kind = KEY_DURATION, .offset = CONFIG_OFFSET(member), .min = low, \
     .max = high}
#define REQUIRED_STRING_KEY(key_name, member) \
    {.name = key_name, .kind = KEY_STRING, .offset = CONFIG_OFFSET(member), .non_empty = true}
#define CHOICE_STRING_KEY(key_name, member, names) \
    {.name = key_name, .kind = KEY_CHOICE_STRING, .offset = CONFIG_OFFSET(member), \
     .choices = names}
#define CHOICE_KEY(key_name, member, names, values) \
    {.name = key_name, .kind = KEY_CHOICE, .offset = CONFIG_OFFSET(member), .choices = names, \
     .choice_values = values}
/* a nested section; present: the offset of a bool set when it is there, or NO_OFFSET */
#define MAPPING_KEY(key_name, present, keys) \
    {.name = key_name, .kind = KEY_MAPPING, .offset = present, .section = keys}
#define COLUMN_KEY(field, key_name) \
    [field] = {.name = key_name, .kind = KEY_STRING, \
               .offset = CONFIG_OFFSET(import.columns[field]), .non_empty = true}

/* Every channel section starts with these. */
#define CHANNEL_COMMON_KEYS(id) \
    INT_KEY("lanes", channel[id].lanes, 0, 64), \
    INT_KEY("batch_size", channel[id].batch_size, 1, 10000), \
    NUMBER_KEY("rate", channel[id].rate, 0, INFINITY)
/* clang-format on */

static const char *const starttls_choices[] = {"required", "optional", "off", NULL};
static const int starttls_values[] = {STARTTLS_REQUIRED, STARTTLS_OPTIONAL, STARTTLS_OFF};

static const char *const log_format_choices[] = {"auto", "text", "json", NULL};
static const int log_format_values[] = {LOG_FORMAT_AUTO, LOG_FORMAT_TEXT, LOG_FORMAT_JSON};
static const char *const record_commit_choices[] = {"wait", "async", NULL};
static const int record_commit_values[] = {RECORD_COMMIT_WAIT, RECORD_COMMIT_ASYNC};

/* Syslog numbering, as <syslog.h> has it; spelled out so this file needs no syslog. */
static const char *const log_level_choices[] = {"debug",   "info",  "notice",
                                                "warning", "error", NULL};
static const int log_level_values[] = {7, 6, 5, 4, 3};

static const char *const fax_provider_choices[] = {"sinch", "generic", NULL};

static const char *const test_outcome_choices[] = {"delivered", "accepted",   "temporary",
                                                   "permanent", "no_address", NULL};

static const struct config_key smtp_auth_keys[] = {
    STRING_KEY("user", email.auth_user),
    STRING_KEY("secret_file", email.auth_secret_file),
    STRING_KEY("secret_env", email.auth_secret_env),
};
static const struct config_section smtp_auth_section = SECTION(smtp_auth_keys, false);

static const struct config_key smtp_keys[] = {
    REQUIRED_STRING_KEY("host", email.host),
    INT_KEY("port", email.port, 1, 65535),
    CHOICE_KEY("starttls", email.starttls, starttls_choices, starttls_values),
    STRING_KEY("ca_file", email.ca_file),
    STRING_KEY("helo", email.helo),
    DURATION_KEY("timeout", email.timeout_seconds, 1, 3600),
    MAPPING_KEY("auth", NO_OFFSET, &smtp_auth_section),
};
static const struct config_section smtp_section = SECTION(smtp_keys, false);

static const struct config_key email_keys[] = {
    CHANNEL_COMMON_KEYS(CHANNEL_EMAIL),
    MAPPING_KEY("smtp", NO_OFFSET, &smtp_section),
    STRING_KEY("from", email.from),
    STRING_KEY("reply_to", email.reply_to),
    STRING_KEY("bounce_domain", email.bounce_domain),
    INT_KEY("unrecorded", email.unrecorded, 0, 10000),
};
static const struct config_section email_section = SECTION(email_keys, false);

/* channels.fax.generic: a gateway described in YAML (docs/fax.md) */
static const struct config_key fax_fields_keys[] = {
    STRING_KEY("file", fax.generic.file_field),
    STRING_KEY("to", fax.generic.to_field),
    STRING_KEY("from", fax.generic.from_field),
    STRING_KEY("header_text", fax.generic.header_field),
    STRING_KEY("labels", fax.generic.labels_field),
    STRING_KEY("callback_url", fax.generic.callback_field),
};
static const struct config_section fax_fields_section = SECTION(fax_fields_keys, false);

static const struct config_key fax_response_keys[] = {
    STRING_KEY("id", fax.generic.id_pointer),
    STRING_KEY("status", fax.generic.status_pointer),
    STRING_KEY("error", fax.generic.error_pointer),
};
static const struct config_section fax_response_section = SECTION(fax_response_keys, false);

static const struct config_key fax_list_keys[] = {
    STRING_KEY("items", fax.generic.list_items_pointer),
    STRING_KEY("id", fax.generic.list_id_pointer),
    STRING_KEY("token", fax.generic.list_token_pointer),
    STRING_KEY("attempt", fax.generic.list_attempt_pointer),
    STRING_KEY("next", fax.generic.list_next_pointer),
    STRING_KEY("page_param", fax.generic.list_page_param),
};
static const struct config_section fax_list_section = SECTION(fax_list_keys, false);

static const struct config_key fax_statuses_keys[] = {
    STRING_KEY("delivered", fax.generic.delivered),
    STRING_KEY("failed_permanent", fax.generic.failed_permanent),
    STRING_KEY("failed_temporary", fax.generic.failed_temporary),
    STRING_KEY("pending", fax.generic.pending),
};
static const struct config_section fax_statuses_section = SECTION(fax_statuses_keys, false);

static const char *const fax_label_style_choices[] = {"json", "brackets", NULL};
static const char *const fax_auth_choices[] = {"basic", "bearer", "none", NULL};

static const struct config_key fax_generic_keys[] = {
    STRING_KEY("send_url", fax.generic.send_url),
    STRING_KEY("status_url", fax.generic.status_url),
    STRING_KEY("list_url", fax.generic.list_url),
    MAPPING_KEY("fields", NO_OFFSET, &fax_fields_section),
    CHOICE_STRING_KEY("label_style", fax.generic.label_style, fax_label_style_choices),
    MAPPING_KEY("response", NO_OFFSET, &fax_response_section),
    MAPPING_KEY("list", NO_OFFSET, &fax_list_section),
    MAPPING_KEY("statuses", NO_OFFSET, &fax_statuses_section),
};
static const struct config_section fax_generic_section = SECTION(fax_generic_keys, false);

static const struct config_key fax_keys[] = {
    CHANNEL_COMMON_KEYS(CHANNEL_FAX),
    CHOICE_STRING_KEY("provider", fax.provider, fax_provider_choices),
    STRING_KEY("base_url", fax.base_url),
    STRING_KEY("project_id", fax.project_id),
    STRING_KEY("key_id", fax.key_id),
    STRING_KEY("key_secret_file", fax.key_secret_file),
    STRING_KEY("from", fax.from),
    STRING_KEY("key_secret_env", fax.key_secret_env),
    CHOICE_STRING_KEY("auth", fax.auth, fax_auth_choices),
    STRING_KEY("header_text", fax.header_text),
    STRING_KEY("callback_url", fax.callback_url),
    STRING_KEY("ca_file", fax.ca_file),
    STRING_KEY("letterhead", fax.letterhead),
    DURATION_KEY("timeout", fax.timeout_seconds, 1, 3600),
    DURATION_KEY("poll_interval", fax.poll_interval_seconds, 1, 86400),
    DURATION_KEY("final_status_timeout", fax.final_status_timeout_seconds, 1, LONG_MAX),
    INT_KEY("max_in_flight", fax.max_in_flight, 0, 10000),
    MAPPING_KEY("generic", CONFIG_OFFSET(fax.generic.present), &fax_generic_section),
};
static const struct config_section fax_section = SECTION(fax_keys, false);

static const char *const mail_flag_choices[] = {"true", "false", NULL};
static const int mail_flag_values[] = {1, 0};

static const struct config_key mail_imb_keys[] = {
    REQUIRED_STRING_KEY("barcode_id", mail.imb_barcode_id),
    REQUIRED_STRING_KEY("service_type", mail.imb_service_type),
    REQUIRED_STRING_KEY("mailer_id", mail.imb_mailer_id),
};
static const struct config_section mail_imb_section = SECTION(mail_imb_keys, false);

static const struct config_key mail_keys[] = {
    CHANNEL_COMMON_KEYS(CHANNEL_MAIL),
    STRING_KEY("spool", mail.spool),
    INT_KEY("letters_per_batch", mail.letters_per_batch, 1, 1000000),
    DURATION_KEY("batch_window", mail.batch_window_seconds, 0, 30 * 86400),
    STRING_KEY("return_address", mail.return_address),
    CHOICE_KEY("duplex", mail.duplex, mail_flag_choices, mail_flag_values),
    CHOICE_KEY("fold_marks", mail.fold_marks, mail_flag_choices, mail_flag_values),
    MAPPING_KEY("imb", NO_OFFSET, &mail_imb_section),
};
static const struct config_section mail_section = SECTION(mail_keys, false);

static const struct config_key null_keys[] = {
    CHANNEL_COMMON_KEYS(CHANNEL_NULL),
};
static const struct config_section null_section = SECTION(null_keys, false);

static const struct config_key test_keys[] = {
    CHANNEL_COMMON_KEYS(CHANNEL_TEST),
    CHOICE_STRING_KEY("default", test.default_outcome, test_outcome_choices),
    LONG_KEY("delay_ms", test.delay_ms, 0, LONG_MAX),
};
static const struct config_section test_section = SECTION(test_keys, false);

/* Indexed by enum crier_channel_id: also the source of channel names. */
static const struct config_key channel_keys[CHANNEL_COUNT] = {
    [CHANNEL_EMAIL] =
        MAPPING_KEY("email", CONFIG_OFFSET(channel[CHANNEL_EMAIL].enabled), &email_section),
    [CHANNEL_FAX] = {.name = "fax",
                     .kind = KEY_MAPPING,
                     .offset = CONFIG_OFFSET(channel[CHANNEL_FAX].enabled),
                     .section = &fax_section,
                     .remember = REMEMBER_FAX},
    [CHANNEL_MAIL] =
        MAPPING_KEY("mail", CONFIG_OFFSET(channel[CHANNEL_MAIL].enabled), &mail_section),
    [CHANNEL_NULL] =
        MAPPING_KEY("null", CONFIG_OFFSET(channel[CHANNEL_NULL].enabled), &null_section),
    [CHANNEL_TEST] =
        MAPPING_KEY("test", CONFIG_OFFSET(channel[CHANNEL_TEST].enabled), &test_section),
};
static const struct config_section channels_section = SECTION(channel_keys, true);

/* Indexed by enum crier_field: also the source of field names. */
static const struct config_key column_keys[FIELD_COUNT] = {
    COLUMN_KEY(FIELD_REF, "ref"),
    COLUMN_KEY(FIELD_NAME, "name"),
    COLUMN_KEY(FIELD_EMAIL, "email"),
    COLUMN_KEY(FIELD_FAX, "fax"),
    COLUMN_KEY(FIELD_ADDRESS1, "address1"),
    COLUMN_KEY(FIELD_ADDRESS2, "address2"),
    COLUMN_KEY(FIELD_CITY, "city"),
    COLUMN_KEY(FIELD_REGION, "region"),
    COLUMN_KEY(FIELD_POSTAL_CODE, "postal_code"),
    COLUMN_KEY(FIELD_COUNTRY, "country"),
};
static const struct config_section columns_section = SECTION(column_keys, true);

static const struct config_key import_keys[] = {
    MAPPING_KEY("columns", NO_OFFSET, &columns_section),
};
static const struct config_section import_section = SECTION(import_keys, false);

static const struct config_key database_keys[] = {
    STRING_KEY("conninfo", conninfo),
};
static const struct config_section database_section = SECTION(database_keys, false);

static const struct config_key queue_keys[] = {
    DURATION_KEY("lease", queue.lease_seconds, 1, LONG_MAX),
    {.name = "backoff_min",
     .kind = KEY_DURATION,
     .offset = CONFIG_OFFSET(queue.backoff_min_seconds),
     .min = 0,
     .max = LONG_MAX,
     .remember = REMEMBER_BACKOFF_MIN},
    {.name = "backoff_max",
     .kind = KEY_DURATION,
     .offset = CONFIG_OFFSET(queue.backoff_max_seconds),
     .min = 0,
     .max = LONG_MAX,
     .remember = REMEMBER_BACKOFF_MAX},
    NUMBER_KEY("backoff_jitter", queue.backoff_jitter, 0, 1),
    DURATION_KEY("give_up_after", queue.give_up_after_seconds, 1, LONG_MAX),
    LONG_KEY("idle_poll", queue.idle_poll_ms, 10, 60000),
    DURATION_KEY("route_grace", queue.route_grace_seconds, 0, 86400),
    CHOICE_KEY("record_commit", queue.record_commit, record_commit_choices, record_commit_values),
};
static const struct config_section queue_section = SECTION(queue_keys, false);

static const struct config_key log_keys[] = {
    CHOICE_KEY("format", log.format, log_format_choices, log_format_values),
    CHOICE_KEY("level", log.level, log_level_choices, log_level_values),
};
static const struct config_section log_section = SECTION(log_keys, false);

static const char *const oral_lapse_choices[] = {"alert", "release", NULL};
static const int oral_lapse_values[] = {ORAL_LAPSE_ALERT, ORAL_LAPSE_RELEASE};

static const struct config_key holds_keys[] = {
    CHOICE_KEY("oral_lapse", holds.oral_lapse, oral_lapse_choices, oral_lapse_values),
};
static const struct config_section holds_section = SECTION(holds_keys, false);

/* secrets: who besides the owner may read a file holding a secret (util.c's
 * secret_file_check); anyone else is refused */
static const char *const readable_by_choices[] = {"owner", "group", "others", NULL};
static const int readable_by_values[] = {SECRET_READABLE_OWNER, SECRET_READABLE_GROUP,
                                         SECRET_READABLE_OTHERS};
static const struct config_key secrets_keys[] = {
    CHOICE_KEY("readable_by", secrets.readable_by, readable_by_choices, readable_by_values),
};
static const struct config_section secrets_section = SECTION(secrets_keys, false);

/* metrics: crier run's Prometheus endpoint (engine/core/metrics.c) */
static const struct config_key metrics_keys[] = {
    STRING_KEY("listen", metrics.listen),
};
static const struct config_section metrics_section = SECTION(metrics_keys, false);

static const struct config_key audit_keys[] = {
    DURATION_KEY("seal_interval", audit.seal_interval_seconds, 0, 86400),
    LONG_KEY("block_rows", audit.block_rows, 1, 1000000),
    LONG_KEY("seal_wait", audit.seal_lock_timeout_ms, 1, 60000),
};
static const struct config_section audit_section = SECTION(audit_keys, false);
/* report: `crier audit report` (engine/cmd/report.c, docs/audit-report.md). oral_lapse: where
 * an unconfirmed oral hold stops counting as lawful delay after 30 days: hipaa (only where a
 * declared framework has the rule) or everywhere */
static const char *const report_oral_lapse_choices[] = {"hipaa", "everywhere", NULL};
static const int report_oral_lapse_values[] = {0, 1};
static const struct config_key report_keys[] = {
    STRING_KEY("deadlines", report.deadlines),
    LONG_KEY("list_limit", report.list_limit, 0, 1000000),
    CHOICE_KEY("oral_lapse", report.oral_lapse_everywhere, report_oral_lapse_choices,
               report_oral_lapse_values),
};
static const struct config_section report_section = SECTION(report_keys, false);

/* substitute: `crier substitute` (engine/core/substitute.c, docs/unreached.md): the cost of a
 * letter for the statutes' cost test, and the substitute email's template set */
static const struct config_key substitute_keys[] = {
    NUMBER_KEY("postage_per_letter", substitute.postage_per_letter, 0, 1000),
    NUMBER_KEY("print_per_letter", substitute.print_per_letter, 0, 1000),
    STRING_KEY("templates", substitute.templates),
};
static const struct config_section substitute_section = SECTION(substitute_keys, false);

/* serve: `crier serve`, the web console (engine/cmd/serve.c, engine/web/, docs/console.md) */
static const struct config_key serve_tls_keys[] = {
    STRING_KEY("cert", serve.tls_cert),
    STRING_KEY("key", serve.tls_key),
};
static const struct config_section serve_tls_section = SECTION(serve_tls_keys, false);
/* serve.fax_webhook: the fax gateway's status webhook (engine/web/hooks.c, docs/fax.md): where
 * its URL secret is (never the secret itself) and the webhook role's own login */
static const struct config_key serve_webhook_keys[] = {
    STRING_KEY("secret_file", serve.webhook.secret_file),
    STRING_KEY("secret_env", serve.webhook.secret_env),
    STRING_KEY("conninfo", serve.webhook.conninfo),
};
static const struct config_section serve_webhook_section = SECTION(serve_webhook_keys, false);
static const struct config_key serve_keys[] = {
    STRING_KEY("listen", serve.listen),
    STRING_KEY("trusted_proxy", serve.trusted_proxy),
    MAPPING_KEY("tls", NO_OFFSET, &serve_tls_section),
    DURATION_KEY("session_idle", serve.session_idle_seconds, 60, 86400),
    DURATION_KEY("session_max", serve.session_max_seconds, 60, 7 * 86400),
    MAPPING_KEY("fax_webhook", CONFIG_OFFSET(serve.webhook.present), &serve_webhook_section),
};
static const struct config_section serve_section = SECTION(serve_keys, false);

static const struct config_key root_keys[] = {
    MAPPING_KEY("database", NO_OFFSET, &database_section),
    MAPPING_KEY("queue", NO_OFFSET, &queue_section),
    MAPPING_KEY("log", NO_OFFSET, &log_section),
    MAPPING_KEY("import", NO_OFFSET, &import_section),
    STRING_KEY("templates", templates_dir),
    MAPPING_KEY("channels", NO_OFFSET, &channels_section),
    MAPPING_KEY("holds", NO_OFFSET, &holds_section),
    MAPPING_KEY("secrets", NO_OFFSET, &secrets_section),
    MAPPING_KEY("metrics", NO_OFFSET, &metrics_section),
    MAPPING_KEY("audit", NO_OFFSET, &audit_section),
    MAPPING_KEY("report", NO_OFFSET, &report_section),
    MAPPING_KEY("substitute", NO_OFFSET, &substitute_section),
    MAPPING_KEY("serve", NO_OFFSET, &serve_section),
};
static const struct config_section root_section = SECTION(root_keys, false);

struct parse_context {
    const char *name; /* file name for messages */
    FILE *diag;       /* where messages go; NULL = only count them */
    yaml_document_t *document;
    struct crier_config *config;
    unsigned errors;
    struct {
        const yaml_node_t *node; /* the value it was set from; NULL = default */
        bool failed;             /* present but invalid: skip checks that involve it */
    } remembered[REMEMBER_COUNT];
};

const char *field_name(enum crier_field field)
{
    if ((unsigned)field >= FIELD_COUNT)
        return NULL;
    return column_keys[field].name;
}

const char *channel_id_name(enum crier_channel_id id)
{
    if ((unsigned)id >= CHANNEL_COUNT)
        return NULL;
    return channel_keys[id].name;
}

int channel_id_from_name(const char *name, enum crier_channel_id *ret_id)
{
    if (name == NULL)
        return -EINVAL;
    for (size_t i = 0; i < CHANNEL_COUNT; i++) {
        if (strcmp(channel_keys[i].name, name) == 0) {
            *ret_id = (enum crier_channel_id)i;
            return 0;
        }
    }
    return -EINVAL;
}

struct crier_config *config_default(void)
{
    struct crier_config *config = xcalloc(1, sizeof(*config));

    config->queue.lease_seconds = 300;
    config->queue.backoff_min_seconds = 30;
    config->queue.backoff_max_seconds = 3600;
    config->queue.backoff_jitter = 0.2;
    config->queue.give_up_after_seconds = 3 * 86400;
    config->queue.idle_poll_ms = 500;
    config->queue.route_grace_seconds = 10;

    config->audit.seal_interval_seconds = 5;
    config->audit.block_rows = 10000;
    config->audit.seal_lock_timeout_ms = 500;

    config->log.format = LOG_FORMAT_AUTO;
    config->log.level = 6; /* LOG_INFO */

    for (size_t i = 0; i < CHANNEL_COUNT; i++) {
        config->channel[i].enabled = false;
        config->channel[i].lanes = 1;
        config->channel[i].batch_size = 100;
        config->channel[i].rate = 0;
    }

    config->email.host = xstrdup("127.0.0.1");
    config->email.port = 25;
    config->email.starttls = STARTTLS_DEFAULT;
    config->email.timeout_seconds = 60;
    config->email.unrecorded = 0; /* a kill -9 resends at most one message per lane */
    config->mail.letters_per_batch = 5000;
    config->mail.batch_window_seconds = 600;
    config->fax.timeout_seconds = 60;
    config->fax.poll_interval_seconds = 30;
    config->fax.final_status_timeout_seconds = 86400;
    config->test.default_outcome = xstrdup("delivered");
    config->test.delay_ms = 0;
    config->report.list_limit = 100;
    config->substitute.postage_per_letter = 0.78; /* USPS First-Class stamp, 2025 */
    config->substitute.print_per_letter = 0.20;
    config->serve.session_idle_seconds = 15 * 60;
    config->serve.session_max_seconds = 8 * 3600;
    config->serve.webhook.channel = "fax"; /* the one channel whose gateway pushes statuses */
    return config;
}

struct crier_config *config_free(struct crier_config *config)
{
    if (config == NULL)
        return NULL;
    free(config->path);
    free(config->conninfo);
    for (size_t i = 0; i < FIELD_COUNT; i++)
        free(config->import.columns[i]);
    FREE_MANY(config->email.host, config->email.from, config->email.bounce_domain,
              config->email.reply_to, config->email.ca_file, config->email.helo,
              config->email.auth_user, config->email.auth_secret_file,
              config->email.auth_secret_env, config->templates_dir, config->report.deadlines,
              config->substitute.templates, config->metrics.listen, config->serve.listen,
              config->serve.tls_cert, config->serve.tls_key, config->serve.trusted_proxy,
              config->serve.webhook.secret_file, config->serve.webhook.secret_env,
              config->serve.webhook.conninfo, config->fax.provider, config->fax.base_url,
              config->fax.project_id, config->fax.key_id, config->fax.key_secret_file,
              config->fax.from, config->fax.key_secret_env, config->fax.auth,
              config->fax.header_text, config->fax.callback_url, config->fax.ca_file,
              config->fax.letterhead);
    char **generic_strings[] = {
        &config->fax.generic.send_url,
        &config->fax.generic.status_url,
        &config->fax.generic.list_url,
        &config->fax.generic.file_field,
        &config->fax.generic.to_field,
        &config->fax.generic.from_field,
        &config->fax.generic.header_field,
        &config->fax.generic.labels_field,
        &config->fax.generic.callback_field,
        &config->fax.generic.label_style,
        &config->fax.generic.id_pointer,
        &config->fax.generic.status_pointer,
        &config->fax.generic.error_pointer,
        &config->fax.generic.list_items_pointer,
        &config->fax.generic.list_id_pointer,
        &config->fax.generic.list_token_pointer,
        &config->fax.generic.list_attempt_pointer,
        &config->fax.generic.list_next_pointer,
        &config->fax.generic.list_page_param,
        &config->fax.generic.delivered,
        &config->fax.generic.failed_permanent,
        &config->fax.generic.failed_temporary,
        &config->fax.generic.pending,
    };
    for (size_t i = 0; i < ARRAY_SIZE(generic_strings); i++)
        free(*generic_strings[i]);
    FREE_MANY(config->mail.spool, config->mail.return_address, config->mail.imb_barcode_id,
              config->mail.imb_service_type, config->mail.imb_mailer_id,
              config->test.default_outcome);
    free(config);
    return NULL;
}

const char *config_find(const char *explicit_path)
{
    if (explicit_path != NULL)
        return explicit_path;
    const char *from_environment = getenv("CRIER_CONFIG");
    if (!str_empty(from_environment))
        return from_environment;
    if (access("crier.yaml", R_OK) == 0)
        return "crier.yaml";
    if (access("/etc/crier/crier.yaml", R_OK) == 0)
        return "/etc/crier/crier.yaml";
    return NULL;
}

static void __attribute__((format(printf, 4, 0)))
report_va(struct parse_context *ctx, size_t line, size_t column, const char *fmt, va_list ap)
{
    ctx->errors++;
    if (ctx->diag == NULL)
        return;
    char *message = xvasprintf(fmt, ap);
    fprintf(ctx->diag, "%s:%zu:%zu: %s\n", ctx->name, line, column, message);
    free(message);
}

/* report - one "FILE:LINE:COL: message" line, where a node starts (libyaml's marks are
 * 0-based; the line and column said are 1-based). */
static void __attribute__((format(printf, 3, 4)))
report(struct parse_context *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_va(ctx, node->start_mark.line + 1, node->start_mark.column + 1, fmt, ap);
    va_end(ap);
}

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* scalar_is_null - an empty or ~/null plain scalar: a key given no value. */
static bool scalar_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *text = scalar_text(node);
    return text[0] == '\0' || strcmp(text, "~") == 0 || strcmp(text, "null") == 0 ||
           strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0;
}

/* scalar_display - a scalar fit to quote on one message line: control bytes become '?'. */
static const char *scalar_display(const yaml_node_t *node, char *buffer, size_t size)
{
    const unsigned char *text = node->data.scalar.value;
    size_t length = node->data.scalar.length;
    size_t out = 0;
    for (size_t i = 0; i < length && out + 4 < size; i++)
        buffer[out++] = (text[i] < 0x20 || text[i] == 0x7f) ? '?' : (char)text[i];
    if (out < length)
        out += (size_t)snprintf(buffer + out, size - out, "...");
    buffer[out] = '\0';
    return buffer;
}

/* scalar_integer - a plain scalar that is wholly a decimal integer: -EINVAL if not one,
 * -ERANGE if it does not fit. */
static int scalar_integer(const yaml_node_t *node, long long *ret_value)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return -EINVAL;
    const char *text = scalar_text(node);
    const char *digits = text + (text[0] == '-' || text[0] == '+');
    if (digits[0] == '\0' || strspn(digits, "0123456789") != strlen(digits))
        return -EINVAL;
    errno = 0;
    long long value = strtoll(text, NULL, 10);
    if (errno == ERANGE)
        return -ERANGE;
    *ret_value = value;
    return 0;
}

/* scalar_number - a plain scalar that is wholly a finite decimal number (1, 0.5, 2e3). */
static int scalar_number(const yaml_node_t *node, double *ret_value)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return -EINVAL;
    const char *text = scalar_text(node);
    /* strtod alone would also take hex, "inf", "nan" and leading blanks */
    if (strspn(text, "0123456789+-.eE") != strlen(text) || strpbrk(text, "0123456789") == NULL)
        return -EINVAL;
    /* "0.5" whatever LC_NUMERIC the process runs in */
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    char *end = NULL;
    errno = 0;
    double value = c_locale != (locale_t)0 ? strtod_l(text, &end, c_locale) : strtod(text, &end);
    int saved_errno = errno;
    if (c_locale != (locale_t)0)
        freelocale(c_locale);
    errno = saved_errno;
    if (end == text || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || !isfinite(value))
        return -ERANGE;
    *ret_value = value;
    return 0;
}

static void *config_field(struct crier_config *config, size_t offset)
{
    return (char *)config + offset;
}

/* choices_join - "a, b, c" for messages; caller frees. */
static char *choices_join(const char *const *choices)
{
    size_t length = 1;
    for (size_t i = 0; choices[i] != NULL; i++)
        length += strlen(choices[i]) + 2;
    char *joined = xmalloc(length);
    joined[0] = '\0';
    for (size_t i = 0; choices[i] != NULL; i++) {
        if (i > 0)
            strcat(joined, ", ");
        strcat(joined, choices[i]);
    }
    return joined;
}

/* section_names - the key names of a section, "a, b, c", for messages; caller frees. */
static char *section_names(const struct config_section *section)
{
    const char *names[32 + 1];
    size_t count = 0;
    for (size_t i = 0; i < section->key_count && count < ARRAY_SIZE(names) - 1; i++)
        names[count++] = section->keys[i].name;
    names[count] = NULL;
    return choices_join(names);
}

static void report_range(struct parse_context *ctx, const struct config_key *key,
                         const yaml_node_t *node, const char *path)
{
    char display[DISPLAY_MAX];
    scalar_display(node, display, sizeof(display));
    if (key->kind == KEY_NUMBER) {
        if (isinf(key->max_number))
            report(ctx, node, "value %s for '%s' is out of range (at least %g)", display, path,
                   key->min_number);
        else
            report(ctx, node, "value %s for '%s' is out of range (%g..%g)", display, path,
                   key->min_number, key->max_number);
    } else if (key->max == LONG_MAX || key->max == LLONG_MAX) {
        report(ctx, node, "value %s for '%s' is out of range (at least %lld)", display, path,
               key->min);
    } else {
        report(ctx, node, "value %s for '%s' is out of range (%lld..%lld)", display, path, key->min,
               key->max);
    }
}

/* parse_string - KEY_STRING and KEY_CHOICE_STRING: a scalar of any style. */
static bool parse_string(struct parse_context *ctx, const struct config_key *key,
                         const yaml_node_t *node, const char *path)
{
    if (node->type != YAML_SCALAR_NODE) {
        report(ctx, node, "expected a string for '%s'", path);
        return false;
    }
    bool is_null = scalar_is_null(node);
    const char *text = is_null ? "" : scalar_text(node);
    if (!is_null && strlen(text) != node->data.scalar.length) {
        report(ctx, node, "'%s' must not contain a NUL byte", path);
        return false;
    }
    if (key->kind == KEY_CHOICE_STRING) {
        bool found = false;
        for (size_t i = 0; key->choices[i] != NULL && !found; i++)
            found = strcmp(key->choices[i], text) == 0;
        if (!found) {
            char display[DISPLAY_MAX];
            char *expected = choices_join(key->choices);
            report(ctx, node, "invalid value '%s' for '%s' (expected one of: %s)",
                   scalar_display(node, display, sizeof(display)), path, expected);
            free(expected);
            return false;
        }
    } else if (key->non_empty && text[0] == '\0') {
        report(ctx, node, "'%s' must not be empty", path);
        return false;
    }
    char **slot = config_field(ctx->config, key->offset);
    free(*slot);
    *slot = text[0] == '\0' ? NULL : xstrdup(text);
    return true;
}

/* parse_choice - KEY_CHOICE: a name stored as its enum value. */
static bool parse_choice(struct parse_context *ctx, const struct config_key *key,
                         const yaml_node_t *node, const char *path)
{
    char *expected = choices_join(key->choices);
    if (node->type != YAML_SCALAR_NODE) {
        report(ctx, node, "expected one of %s for '%s'", expected, path);
        free(expected);
        return false;
    }
    for (size_t i = 0; key->choices[i] != NULL; i++) {
        if (strcmp(key->choices[i], scalar_text(node)) == 0) {
            int *slot = config_field(ctx->config, key->offset);
            *slot = key->choice_values[i];
            free(expected);
            return true;
        }
    }
    char display[DISPLAY_MAX];
    report(ctx, node, "invalid value '%s' for '%s' (expected one of: %s)",
           scalar_display(node, display, sizeof(display)), path, expected);
    free(expected);
    return false;
}

/* parse_integer - KEY_INT, KEY_LONG and KEY_DURATION, range-checked. */
static bool parse_integer(struct parse_context *ctx, const struct config_key *key,
                          const yaml_node_t *node, const char *path)
{
    long long value = 0;
    int r = scalar_integer(node, &value);
    if (r == -EINVAL && key->kind == KEY_DURATION && node->type == YAML_SCALAR_NODE) {
        long seconds = 0;
        if (parse_duration(scalar_text(node), &seconds) == 0) {
            value = seconds;
            r = 0;
        }
    }
    if (r == -EINVAL) {
        if (key->kind == KEY_DURATION)
            report(ctx, node,
                   "expected an integer for '%s' (seconds, or a duration like 30s, 5m, 2h, 3d)",
                   path);
        else
            report(ctx, node, "expected an integer for '%s'", path);
        return false;
    }
    if (r == -ERANGE || value < key->min || value > key->max) {
        report_range(ctx, key, node, path);
        return false;
    }
    if (key->kind == KEY_INT)
        *(int *)config_field(ctx->config, key->offset) = (int)value;
    else
        *(long *)config_field(ctx->config, key->offset) = (long)value;
    return true;
}

/* parse_number - KEY_NUMBER, range-checked. */
static bool parse_number(struct parse_context *ctx, const struct config_key *key,
                         const yaml_node_t *node, const char *path)
{
    double value = 0;
    int r = scalar_number(node, &value);
    if (r == -EINVAL) {
        report(ctx, node, "expected a number for '%s'", path);
        return false;
    }
    if (r == -ERANGE || value < key->min_number || value > key->max_number) {
        report_range(ctx, key, node, path);
        return false;
    }
    *(double *)config_field(ctx->config, key->offset) = value;
    return true;
}

static void parse_section(struct parse_context *ctx, const yaml_node_t *mapping, const char *path,
                          const struct config_section *section);

/* parse_mapping - KEY_MAPPING: mark the section present, then read what is inside. */
static bool parse_mapping(struct parse_context *ctx, const struct config_key *key,
                          const yaml_node_t *node, const char *path)
{
    if (node->type != YAML_MAPPING_NODE && !scalar_is_null(node)) {
        report(ctx, node, "expected a mapping for '%s'", path);
        return false;
    }
    if (key->offset != NO_OFFSET)
        *(bool *)config_field(ctx->config, key->offset) = true;
    if (node->type == YAML_MAPPING_NODE)
        parse_section(ctx, node, path, key->section);
    return true;
}

/* parse_value - check one value against its key and store it; false if it was reported. */
static bool parse_value(struct parse_context *ctx, const struct config_key *key,
                        const yaml_node_t *node, const char *path)
{
    switch (key->kind) {
    case KEY_STRING:
    case KEY_CHOICE_STRING:
        return parse_string(ctx, key, node, path);
    case KEY_CHOICE:
        return parse_choice(ctx, key, node, path);
    case KEY_INT:
    case KEY_LONG:
    case KEY_DURATION:
        return parse_integer(ctx, key, node, path);
    case KEY_NUMBER:
        return parse_number(ctx, key, node, path);
    case KEY_MAPPING:
        return parse_mapping(ctx, key, node, path);
    }
    abort(); /* every kind is handled above */
}

static bool scalars_equal(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE &&
           a->data.scalar.length == b->data.scalar.length &&
           memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

static const struct config_key *section_find(const struct config_section *section,
                                             const yaml_node_t *key_node)
{
    const char *name = scalar_text(key_node);
    if (strlen(name) != key_node->data.scalar.length)
        return NULL; /* a NUL inside names no key */
    for (size_t i = 0; i < section->key_count; i++) {
        if (strcmp(section->keys[i].name, name) == 0)
            return &section->keys[i];
    }
    return NULL;
}

/* parse_section - every pair of a mapping; path is its dotted name, NULL at the top. */
static void parse_section(struct parse_context *ctx, const yaml_node_t *mapping, const char *path,
                          const struct config_section *section)
{
    const yaml_node_pair_t *start = mapping->data.mapping.pairs.start;
    const yaml_node_pair_t *top = mapping->data.mapping.pairs.top;
    char where[DISPLAY_MAX + 16];
    if (path == NULL)
        snprintf(where, sizeof(where), "at the top level");
    else
        snprintf(where, sizeof(where), "in '%s'", path);

    for (const yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *key_node = yaml_document_get_node(ctx->document, pair->key);
        const yaml_node_t *value_node = yaml_document_get_node(ctx->document, pair->value);
        char display[DISPLAY_MAX];

        if (key_node->type != YAML_SCALAR_NODE) {
            report(ctx, key_node, "expected a scalar key %s", where);
            continue;
        }
        bool duplicate = false;
        for (const yaml_node_pair_t *earlier = start; earlier < pair && !duplicate; earlier++)
            duplicate =
                scalars_equal(key_node, yaml_document_get_node(ctx->document, earlier->key));
        if (duplicate) {
            report(ctx, key_node, "duplicate key '%s' %s",
                   scalar_display(key_node, display, sizeof(display)), where);
            continue;
        }
        const struct config_key *key = section_find(section, key_node);
        if (key == NULL) {
            scalar_display(key_node, display, sizeof(display));
            if (section->list_when_unknown) {
                char *expected = section_names(section);
                report(ctx, key_node, "unknown key '%s' %s (expected one of: %s)", display, where,
                       expected);
                free(expected);
            } else {
                report(ctx, key_node, "unknown key '%s' %s", display, where);
            }
            continue;
        }

        char *key_path = path == NULL ? xstrdup(key->name) : xasprintf("%s.%s", path, key->name);
        bool ok = parse_value(ctx, key, value_node, key_path);
        free(key_path);
        if (key->remember != REMEMBER_NONE) {
            ctx->remembered[key->remember].node = value_node;
            ctx->remembered[key->remember].failed = !ok;
        }
    }
}

/* fax_check - channels.fax: what its provider needs, and JSON pointers that are pointers. */
static void fax_check(struct parse_context *ctx)
{
    const struct crier_config *config = ctx->config;
    const yaml_node_t *node = ctx->remembered[REMEMBER_FAX].node;
    if (!config->channel[CHANNEL_FAX].enabled || node == NULL ||
        ctx->remembered[REMEMBER_FAX].failed)
        return;
    const char *provider = config->fax.provider ? config->fax.provider : "sinch";
    /* a generic gateway is checked once described (channels.fax.generic present); a sinch
     * section without its keys is refused when the channel opens, since configurations
     * may carry a partial fax section for a channel other workers run */
    bool generic = strcmp(provider, "generic") == 0 && config->fax.generic.present;
    const char *auth = config->fax.auth ? config->fax.auth : "basic";
    const struct {
        const char *name;
        const char *value;
        bool needed;
    } required[] = {
        {"key_id", config->fax.key_id, generic && strcmp(auth, "basic") == 0},
        {"generic.send_url", config->fax.generic.send_url, generic},
        {"generic.status_url", config->fax.generic.status_url, generic},
        {"generic.response.id", config->fax.generic.id_pointer, generic},
        {"generic.response.status", config->fax.generic.status_pointer, generic},
        {"generic.statuses.delivered", config->fax.generic.delivered, generic},
    };
    for (size_t i = 0; i < ARRAY_SIZE(required); i++)
        if (required[i].needed && str_empty(required[i].value))
            report(ctx, node, "'channels.fax.%s' is required (provider %s, auth %s)",
                   required[i].name, provider, auth);
    bool file = !str_empty(config->fax.key_secret_file),
         env = !str_empty(config->fax.key_secret_env);
    if (file && env)
        report(ctx, node, "'channels.fax': give 'key_secret_file' or 'key_secret_env', not both");
    else if (generic && strcmp(auth, "none") != 0 && !file && !env)
        report(ctx, node, "'channels.fax' needs 'key_secret_file' or 'key_secret_env' (auth %s)",
               auth);
    const struct {
        const char *name;
        const char *value;
    } pointers[] = {
        {"response.id", config->fax.generic.id_pointer},
        {"response.status", config->fax.generic.status_pointer},
        {"response.error", config->fax.generic.error_pointer},
        {"list.items", config->fax.generic.list_items_pointer},
        {"list.id", config->fax.generic.list_id_pointer},
        {"list.token", config->fax.generic.list_token_pointer},
        {"list.attempt", config->fax.generic.list_attempt_pointer},
        {"list.next", config->fax.generic.list_next_pointer},
    };
    for (size_t i = 0; i < ARRAY_SIZE(pointers); i++)
        if (pointers[i].value && pointers[i].value[0] != '/')
            report(ctx, node,
                   "'channels.fax.generic.%s' must be a JSON pointer (RFC 6901), starting "
                   "with '/'",
                   pointers[i].name);
    if (generic && config->fax.generic.list_url &&
        (str_empty(config->fax.generic.list_items_pointer) ||
         str_empty(config->fax.generic.list_id_pointer) ||
         str_empty(config->fax.generic.list_token_pointer)))
        report(ctx, node,
               "'channels.fax.generic.list_url' needs 'list.items', 'list.id' and 'list.token'");
}

/* config_check - what no single key can check alone. */
static void config_check(struct parse_context *ctx)
{
    const struct crier_config *config = ctx->config;
    fax_check(ctx);
    if (!ctx->remembered[REMEMBER_BACKOFF_MIN].failed &&
        !ctx->remembered[REMEMBER_BACKOFF_MAX].failed &&
        config->queue.backoff_max_seconds < config->queue.backoff_min_seconds) {
        /* the defaults are consistent, so at least one of the two was set */
        const yaml_node_t *node = ctx->remembered[REMEMBER_BACKOFF_MAX].node;
        if (node == NULL)
            node = ctx->remembered[REMEMBER_BACKOFF_MIN].node;
        report(ctx, node,
               "'queue.backoff_max' (%ld s) must be at least 'queue.backoff_min' (%ld s)",
               config->queue.backoff_max_seconds, config->queue.backoff_min_seconds);
    }
}

/* say_stream_error - a YAML syntax error as yamldoc placed it ("FILE:LINE:COL: ..."). */
static int say_stream_error(struct parse_context *ctx, int code, const char *message)
{
    ctx->errors++;
    if (ctx->diag != NULL)
        fprintf(ctx->diag, "%s\n", message);
    return code;
}

int config_parse(const char *text, size_t len, const char *name, FILE *diag,
                 struct crier_config **ret_config)
{
    struct parse_context ctx = {.name = name != NULL ? name : "-", .diag = diag};
    struct yaml_stream stream;
    yaml_document_t document;
    char err[1024];

    int r = yaml_stream_open(&stream, text, len, ctx.name, err, sizeof(err));
    if (r < 0)
        return say_stream_error(&ctx, r, err);
    r = yaml_stream_next(&stream, &document, err, sizeof(err));
    if (r < 0) {
        yaml_stream_close(&stream);
        return say_stream_error(&ctx, r, err);
    }

    struct crier_config *config = config_default();
    config->path = xstrdup(ctx.name);
    ctx.document = &document;
    ctx.config = config;

    const yaml_node_t *root = yaml_document_get_root_node(&document);
    if (root != NULL && !scalar_is_null(root)) { /* nothing at all means every default */
        if (root->type == YAML_MAPPING_NODE)
            parse_section(&ctx, root, NULL, &root_section);
        else
            report(&ctx, root, "expected a mapping at the top level");
    }
    config_check(&ctx);

    /* a second document is refused after the first one's problems are said */
    yaml_document_t extra;
    r = yaml_stream_next(&stream, &extra, err, sizeof(err));
    if (r < 0) {
        say_stream_error(&ctx, r, err);
    } else {
        const yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
        if (extra_root != NULL)
            report(&ctx, extra_root, "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }
    yaml_document_delete(&document);
    yaml_stream_close(&stream);

    if (r < 0 || ctx.errors > 0) {
        config_free(config);
        return r < 0 ? r : -EINVAL;
    }
    *ret_config = config;
    return 0;
}

int config_load(const char *path, FILE *diag, struct crier_config **ret_config)
{
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        if (diag != NULL)
            fprintf(diag, "%s: cannot open: %s\n", path, strerror(errno));
        return -ENOENT;
    }

    size_t size = 0, capacity = 4096;
    char *text = xmalloc(capacity);
    for (;;) {
        if (size == capacity) {
            capacity *= 2;
            text = xrealloc(text, capacity);
        }
        size_t n = fread(text + size, 1, capacity - size, file);
        size += n;
        if (n == 0 || size > CONFIG_SIZE_MAX)
            break;
    }
    int r = 0;
    if (ferror(file)) {
        /* a directory opens but does not read: to the caller, both "cannot be opened" */
        if (diag != NULL)
            fprintf(diag, "%s: cannot read: %s\n", path, strerror(errno));
        r = -ENOENT;
    } else if (size > CONFIG_SIZE_MAX) {
        if (diag != NULL)
            fprintf(diag, "%s: larger than %d bytes, not a config file\n", path, CONFIG_SIZE_MAX);
        r = -EINVAL;
    }
    fclose(file);
    if (r == 0)
        r = config_parse(text, size, path, diag, ret_config);
    free(text);
    return r;
}

/* conninfo_has_password - does a libpq connection string or URI carry a password? */
static bool conninfo_has_password(const char *conninfo)
{
    if (str_empty(conninfo))
        return false;
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &error);
    PQfreemem(error); /* unparseable: db_open says so; it holds nothing we can tell */
    bool found = false;
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && !str_empty(o->val))
            found = true;
    PQconninfoFree(options);
    return found;
}

/* The files already warned about: each is named once per process, however often the
 * configuration is loaded again. */
static pthread_mutex_t exposed_lock = PTHREAD_MUTEX_INITIALIZER;
static char **exposed;
static size_t exposed_count;

/* readers - who besides the owner can read a file of mode */
static const char *readers(mode_t mode)
{
    return (mode & S_IRGRP) && (mode & S_IROTH) ? "its group and others"
           : (mode & S_IRGRP)                   ? "its group"
                                                : "others";
}

int secret_file_check(const char *path, const struct stat *st, const char *what)
{
    if ((st->st_mode & (S_IRGRP | S_IROTH)) == 0)
        return 0;
    if (!secret_mode_allowed(st->st_mode)) {
        log_error("%s holds %s and can be read by %s (mode %04o): refused; make it readable "
                  "by its owner alone (chmod go-rwx %s), or allow it with secrets.readable_by",
                  path, what, readers(st->st_mode), (unsigned)(st->st_mode & 07777), path);
        return -EACCES;
    }
    pthread_mutex_lock(&exposed_lock);
    for (size_t i = 0; i < exposed_count; i++) {
        if (strcmp(exposed[i], path) == 0) {
            pthread_mutex_unlock(&exposed_lock);
            return 0;
        }
    }
    exposed = xreallocarray(exposed, exposed_count + 1, sizeof(*exposed));
    exposed[exposed_count++] = xstrdup(path);
    pthread_mutex_unlock(&exposed_lock);
    log_warning("%s holds %s and can be read by %s (mode %04o): make it readable by its owner "
                "alone (chmod go-rwx %s)",
                path, what, readers(st->st_mode), (unsigned)(st->st_mode & 07777), path);
    return 0;
}

static int secret_path_check(const char *path, const char *what)
{
    struct stat st;
    if (!str_empty(path) && stat(path, &st) == 0) /* missing: the channel says so at open */
        return secret_file_check(path, &st, what);
    return 0;
}

int config_secrets_check(const struct crier_config *config)
{
    secret_readable_set(config->secrets.readable_by);
    int r = 0;
    if (config->path && strcmp(config->path, "-") != 0 && conninfo_has_password(config->conninfo))
        r |= secret_path_check(config->path, "a password (database.conninfo)");
    if (config->channel[CHANNEL_EMAIL].enabled && config->email.auth_user &&
        str_empty(config->email.auth_secret_env))
        r |= secret_path_check(config->email.auth_secret_file,
                               "a secret (channels.email.smtp.auth.secret_file)");
    if (config->channel[CHANNEL_FAX].enabled && str_empty(config->fax.key_secret_env))
        r |= secret_path_check(config->fax.key_secret_file,
                               "a secret (channels.fax.key_secret_file)");
    r |= secret_path_check(config->serve.tls_key, "a private key (serve.tls.key)");
    if (config->serve.webhook.present && str_empty(config->serve.webhook.secret_env))
        r |= secret_path_check(config->serve.webhook.secret_file,
                               "a secret (serve.fax_webhook.secret_file)");
    if (config->path && strcmp(config->path, "-") != 0 &&
        conninfo_has_password(config->serve.webhook.conninfo))
        r |= secret_path_check(config->path, "a password (serve.fax_webhook.conninfo)");
    return r < 0 ? -EACCES : 0;
}
