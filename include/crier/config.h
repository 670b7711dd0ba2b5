/*
 * config.h - crier.yaml, parsed once at start-up into a plain struct.
 *
 * Every key is known here: an unknown key, a wrong type or a missing required key is
 * an error reported as FILE:LINE:COL: message. Secrets are never in this struct's text
 * form: the config names a file or an environment variable, and the channel reads it.
 */
#ifndef CRIER_CONFIG_H
#define CRIER_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

/* The standard columns of an affected-individual list, in this order everywhere. */
enum crier_field {
    FIELD_REF,
    FIELD_NAME,
    FIELD_EMAIL,
    FIELD_FAX,
    FIELD_ADDRESS1,
    FIELD_ADDRESS2,
    FIELD_CITY,
    FIELD_REGION,
    FIELD_POSTAL_CODE,
    FIELD_COUNTRY,
    FIELD_COUNT
};

/* field_name - the standard column name of a field ("ref", "postal_code", ...). */
const char *field_name(enum crier_field field);

/* The channels crier knows; the order is only an index, a campaign's policy sets the order. */
enum crier_channel_id {
    CHANNEL_EMAIL,
    CHANNEL_FAX,
    CHANNEL_MAIL,
    CHANNEL_NULL, /* accepts everything: measures the engine alone */
    CHANNEL_TEST, /* outcomes scripted by the recipient's data: for tests */
    CHANNEL_COUNT
};

enum crier_starttls {
    STARTTLS_DEFAULT, /* required unless the host is loopback */
    STARTTLS_REQUIRED,
    STARTTLS_OPTIONAL,
    STARTTLS_OFF,
};

/* queue.record_commit: how the recorder's commits wait (docs/faults.md, "Commits") */
enum crier_record_commit {
    RECORD_COMMIT_WAIT,  /* as the server's synchronous_commit says: durable when answered */
    RECORD_COMMIT_ASYNC, /* synchronous_commit = off on the recorder's session */
};

enum crier_log_format {
    LOG_FORMAT_AUTO, /* text on a TTY, JSON lines otherwise */
    LOG_FORMAT_TEXT,
    LOG_FORMAT_JSON,
};

/* What an oral law-enforcement hold does 30 days after it was placed, unconfirmed. */
enum crier_oral_lapse {
    ORAL_LAPSE_ALERT,   /* keeps holding, and every status, list, check and run says so */
    ORAL_LAPSE_RELEASE, /* stops holding: its notices go out (marked delayed) */
};

/* What every channel section has; a section that is absent leaves the channel disabled. */
struct crier_channel_config {
    bool enabled;   /* the section is present */
    int lanes;      /* worker threads, each with its own DB connection and transport session */
    int batch_size; /* notices claimed per batch */
    double rate;    /* notices per second across this process's lanes; 0 = unlimited */
};

struct crier_config {
    char *path; /* file it came from, for messages */

    char *conninfo; /* database.conninfo; NULL or "" = libpq's PG* environment */

    struct {
        long lease_seconds;       /* queue.lease: how long a claim is owned before it expires */
        long backoff_min_seconds; /* queue.backoff_min: first retry delay */
        long backoff_max_seconds; /* queue.backoff_max: retry delay ceiling */
        double backoff_jitter;    /* queue.backoff_jitter: 0..1, fraction of the delay randomised */
        long give_up_after_seconds; /* queue.give_up_after: temporary failures on one channel
                                       for longer than this count as permanent */
        long idle_poll_ms;          /* queue.idle_poll: sleep when nothing is claimable */
        long route_grace_seconds;   /* queue.route_grace: how long a worker runs before it
                                       warns of notices waiting for a channel */
        enum crier_record_commit record_commit; /* queue.record_commit (worker.c) */
    } queue;

    struct {
        enum crier_log_format format; /* log.format */
        int level;                    /* log.level, syslog numbering (LOG_DEBUG=7 ... LOG_ERR=3) */
    } log;

    struct {
        char *columns[FIELD_COUNT]; /* import.columns: source column for each field; NULL = same
                                       name */
    } import;

    struct crier_channel_config channel[CHANNEL_COUNT];

    char *templates_dir; /* templates: default template set for campaigns created without
                            --templates; NULL = the set installed with crier */

    struct {
        char *host; /* channels.email.smtp.host */
        int port;   /* channels.email.smtp.port */
        enum crier_starttls starttls;
        char *from;             /* channels.email.from: RFC 5322 From */
        char *reply_to;         /* channels.email.reply_to, may be NULL */
        char *bounce_domain;    /* channels.email.bounce_domain: VERP domain */
        char *ca_file;          /* smtp.ca_file: extra CA bundle for the relay's certificate */
        char *helo;             /* smtp.helo: EHLO name; NULL = this host's name */
        long timeout_seconds;   /* smtp.timeout: each SMTP step's limit */
        int unrecorded;         /* channels.email.unrecorded: accepted messages a lane may
                                   have unrecorded when it hands over the next (worker.c) */
        char *auth_user;        /* smtp.auth.user: SMTP AUTH (PLAIN/LOGIN) when set */
        char *auth_secret_file; /* smtp.auth.secret_file: the password, in a file */
        char *auth_secret_env;  /* smtp.auth.secret_env: or an environment variable */
    } email;

    struct {
        char *provider; /* sinch | generic */
        char *base_url;
        char *project_id;
        char *key_id;
        char *key_secret_file;
        char *from;
        char *key_secret_env;       /* or the secret in this environment variable */
        char *auth;                 /* basic | bearer | none; NULL = the provider's default */
        char *header_text;          /* headerText: the line the gateway prints on each page */
        char *callback_url;         /* callbackUrl, optional */
        char *ca_file;              /* extra CA bundle for the gateway's certificate */
        char *letterhead;           /* return address lines at the top of the letter */
        long timeout_seconds;       /* each HTTP request's limit */
        long poll_interval_seconds; /* how often a submitted fax's status is asked */
        long final_status_timeout_seconds; /* submitted this long without a final status:
                                              falls back */
        int max_in_flight;                 /* concurrent requests per lane; 0 = batch_size */
        struct {
            bool present;                           /* channels.fax.generic is there */
            char *send_url, *status_url, *list_url; /* templates: {base} {project} {id} {to} */
            char *file_field, *to_field, *from_field, *header_field, *labels_field,
                *callback_field; /* multipart field names */
            char *label_style;   /* json (one field) | brackets (labels[key] fields) */
            char *id_pointer, *status_pointer, *error_pointer; /* RFC 6901, in a fax */
            char *list_items_pointer, *list_id_pointer, *list_token_pointer, *list_attempt_pointer,
                *list_next_pointer, *list_page_param;
            char *delivered, *failed_permanent, *failed_temporary, *pending; /* status words,
                                                                                 comma-separated */
        } generic;
    } fax;

    struct {
        char *spool;               /* directory print batches are written to */
        int letters_per_batch;     /* letters in one batch PDF */
        long batch_window_seconds; /* batch_window: a smaller batch goes once its oldest
                                      letter has been ready this long */
        char *return_address;      /* return_address: lines of the sender's address */
        int duplex;                /* duplex: a blank back page after odd-length letters */
        int fold_marks;            /* fold_marks: tri-fold marks on page 1 */
        char *imb_barcode_id;      /* imb.barcode_id: 2 digits; no imb section = no IMb */
        char *imb_service_type;    /* imb.service_type: 3 digits (STID) */
        char *imb_mailer_id;       /* imb.mailer_id: 6 or 9 digits */
    } mail;

    struct {
        char *default_outcome; /* channels.test.default: outcome when a recipient scripts none */
        long delay_ms;         /* channels.test.delay_ms: time each send takes */
    } test;

    struct {
        enum crier_oral_lapse oral_lapse; /* holds.oral_lapse: alert (default) or release */
    } holds;

    struct {
        int readable_by; /* secrets.readable_by: who besides the owner may read a file that
                            holds a secret, SECRET_READABLE_* (crier.h); others are refused */
    } secrets;

    struct {
        char *listen; /* metrics.listen: HOST:PORT crier run serves /metrics on; NULL: off
                         (crier run --metrics overrides it) */
    } metrics;

    struct {
        long seal_interval_seconds; /* audit.seal_interval: crier run seals this often, 0 = never */
        long block_rows;            /* audit.block_rows: most rows in one seal block */
        long seal_lock_timeout_ms;  /* audit.seal_wait: longest wait for log writers */
    } audit;

    struct {
        char *deadlines; /* report.deadlines: the jurisdiction rules table (YAML, schema 2,
                            docs/jurisdictions.md); NULL = config/jurisdictions.yaml as
                            installed with crier */
        long list_limit; /* report.list_limit: people listed per list (late, undeliverable) */
        int oral_lapse_everywhere; /* report.oral_lapse: 1 everywhere; 0 (hipaa) only where a
                                      declared framework has the rule */
    } report;

    struct {
        double postage_per_letter; /* substitute.postage_per_letter: USD per letter (0.78) */
        double print_per_letter;   /* substitute.print_per_letter: USD to print and stuff one
                                      letter (0.20); with postage, the cost test's estimate */
        char *templates;           /* substitute.templates: the substitute email's template
                                      set; NULL = the one installed with crier */
    } substitute;

    struct {
        char *listen;              /* serve.listen: HOST:PORT of crier serve (web console) */
        char *tls_cert;            /* serve.tls.cert: PEM certificate chain; NULL = plain HTTP */
        char *tls_key;             /* serve.tls.key: its private key (a secret file) */
        long session_idle_seconds; /* serve.session_idle: a session idle this long ends */
        long session_max_seconds;  /* serve.session_max: and any session ends after this */
        char *trusted_proxy;       /* serve.trusted_proxy: the reverse proxy's address, whose
                                    * X-Forwarded-For names the client; NULL = none */
    } serve;
};

/*
 * config_load - read and check a YAML file.
 * Each problem is written to diag as "FILE:LINE:COL: message\n" (all of them, not only
 * the first). Returns 0, -ENOENT if the file cannot be opened (message on diag),
 * or -EINVAL if it has errors.
 */
int config_load(const char *path, FILE *diag, struct crier_config **ret_config);

/* config_parse - as config_load, from memory; name is used in messages. */
int config_parse(const char *text, size_t len, const char *name, FILE *diag,
                 struct crier_config **ret_config);

/*
 * config_secrets_check - the files holding secrets (the configuration itself when its
 * database.conninfo has a password, channels.email.smtp.auth.secret_file,
 * channels.fax.key_secret_file) against secrets.readable_by: each one its group or others
 * can read is logged, an error naming it and its mode when the key does not allow that
 * (then -EACCES), else a warning. Sets the process-wide rule secret_read applies too.
 */
int config_secrets_check(const struct crier_config *config);

/* config_default - a config with every default and no channel enabled (no file). */
struct crier_config *config_default(void);

/*
 * config_find - the path to use: explicit, else $CRIER_CONFIG, else ./crier.yaml if it
 * exists, else /etc/crier/crier.yaml if it exists, else NULL (run on defaults).
 */
const char *config_find(const char *explicit_path);

struct stat;
/*
 * secret_file_check - the file at path holds what ("a secret", "a password
 * (database.conninfo)"); st is its stat. Silent when only its owner can read it. When its
 * group or others can: -EACCES, with an error naming it and its mode, if the rule
 * (secret_readable_set) does not allow that reader; else 0 with a warning, once per path
 * per process.
 */
int secret_file_check(const char *path, const struct stat *st, const char *what);

/* config_free - release everything; accepts NULL; returns NULL. */
struct crier_config *config_free(struct crier_config *config);

/* meta_yaml_to_json - a YAML mapping file (--meta) as compact JSON, scalars kept as
 * strings; errors as FILE:LINE:COL in err. */
int meta_yaml_to_json(const char *path, char **ret_json, char *err, size_t err_size);

/* channel_id_from_name - "email" -> CHANNEL_EMAIL; -EINVAL for an unknown name. */
int channel_id_from_name(const char *name, enum crier_channel_id *ret_id);
/* channel_id_name - CHANNEL_EMAIL -> "email". */
const char *channel_id_name(enum crier_channel_id id);

#endif
