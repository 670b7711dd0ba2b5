/*
 * cli.c - the crier command line: parses arguments, loads the configuration, opens the
 * database and calls the module that does the work. It decides what the operator sees
 * and which sysexits.h code crier exits with; the modules only return error codes.
 *
 * The command names are a contract (DESIGN.md, "The interface users script against"):
 * add freely, rename nothing.
 */
#include "crier/cli.h"
#include "crier/amend.h"
#include "crier/audit.h"
#include "crier/bounce.h"
#include "crier/batch.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/config.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/find_index.h"
#include "crier/hold.h"
#include "crier/import.h"
#include "crier/letter.h"
#include "crier/log.h"
#include "crier/migrate.h"
#include "crier/proof.h"
#include "crier/render.h"
#include "crier/content.h"
#include "crier/regulators.h"
#include "crier/report.h"
#include "crier/rules.h"
#include "crier/returns.h"
#include "crier/seal.h"
#include "crier/serve.h"
#include "crier/service.h"
#include "crier/status.h"
#include "crier/substitute.h"
#include "crier/users.h"
#include "crier/unreached.h"
#include "crier/worker.h"
#include "crier/jsonout.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cli {
    const char *config_path; /* -c, else config_find() */
    struct crier_config *config;
    struct crier_config *reloaded; /* crier run: read on SIGHUP, used once the lanes stop */
    int log_level;                 /* --log-level, when log_level_set */
    bool log_level_set;
    bool json;           /* --json, for a command whose usage offers it and parses no own */
    const char *command; /* "campaign load", for messages */
    const struct command *current; /* its row in the table */
};

/*
 * A command's options are rows, one an option: its long name and the field of the
 * command's argument struct its value goes to. parse_options() reads every command's rows
 * the same way: a text option stores its string, a flag stores true, and a row with a
 * parse function hands its value to it (a number, a choice, a repeated option), which
 * returns 0, or -1 after saying why it refuses the value.
 */
typedef int (*option_parse_fn)(const char *arg, void *field, int tag);

struct opt_row {
    const char *name; /* "reject-file" */
    int has_arg;      /* required_argument or no_argument */
    size_t offset;    /* of its field in the command's argument struct */
    option_parse_fn parse;
    int tag; /* for parse: which of the options that share it this one is */
};

/* offsetof, refused at compile time unless the field has the type the row stores */
#define FIELD_AS(type, field, ftype)                                                               \
    (offsetof(type, field) +                                                                       \
     0 * sizeof(                                                                                   \
             char[__builtin_types_compatible_p(__typeof__(((type *)0)->field), ftype) ? 1 : -1]))
#define OPT_TEXT(name, type, field)                                                                \
    {                                                                                              \
        name, required_argument, FIELD_AS(type, field, const char *), NULL, 0                      \
    }
#define OPT_FLAG(name, type, field)                                                                \
    {                                                                                              \
        name, no_argument, FIELD_AS(type, field, bool), NULL, 0                                    \
    }
#define OPT_PARSE(name, type, field, fn, tag)                                                      \
    {                                                                                              \
        name, required_argument, offsetof(type, field), fn, tag                                    \
    }
/* a row whose parse function is handed the whole argument struct (it sets several fields) */
#define OPT_WHOLE(name, fn, tag)                                                                   \
    {                                                                                              \
        name, required_argument, 0, fn, tag                                                        \
    }

struct run;

/* Which database a command's call gets. */
enum command_db {
    DB_NONE,   /* none: the call needs none, or its shape is its own */
    DB_OPEN,   /* connected, the schema unchecked (db migrate, db roles, user add) */
    DB_SCHEMA, /* connected at the schema version of this crier */
};

/* A step of a command: GO_ON to go on, else the exit code (a check), or the call's result
 * (>= 0, or -errno with run->err set). */
typedef int (*command_step)(struct run *run);
/* The end of a command: its result (or error) said; returns the exit code. */
typedef int (*command_end)(struct run *run, int r);

/*
 * A command is a row: its name and help, its options and the struct they are stored in,
 * its positional arguments, the database it needs, the core call, and how its result and
 * its errors are said. command_run() drives every row the same way: options, check,
 * connect, call, say (or failed), close.
 */
struct command {
    const char *group;             /* "campaign" */
    const char *name;              /* "load", or NULL for one-word commands */
    const char *usage;             /* the synopsis after "crier " */
    const char *help;              /* what it does and its options */
    const struct opt_row *options; /* its options, NULL: none */
    size_t args_size;              /* the struct they are stored in */
    const void *defaults;          /* its values before the options (else zeroes) */
    const char *what;   /* its one positional argument, as named when missing ("CAMPAIGN") */
    int max;            /* else how many positional arguments it takes at most */
    int tag;            /* which of the rows that share a call this one is */
    command_step check; /* its own rules on its arguments, before connecting */
    enum command_db db; /* the database its call needs */
    bool actor;         /* the call names the session's role in the dispatch log */
    size_t err_size;    /* the room of its error messages, when not 1024 */
    command_step call;  /* the core call */
    command_end failed; /* its error said (failed_plain when NULL) */
    command_end say;    /* its result said (nothing, exit 0, when NULL) */
};

/* The rows of the table share these (it is at the end of this file). */
#define ARGS(type, rows) .args_size = sizeof(type), .options = (rows)

/* ---- shared helpers ---------------------------------------------------------------- */

static void fail(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crier %s: ", cli->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* exit_code - the sysexits.h code for a module's error. */
static int exit_code(int error)
{
    switch (error) {
    case 0:
        return 0;
    case -EHOSTUNREACH:
    case -ECONNRESET:
    case -ECONNREFUSED:
        return EXIT_UNAVAILABLE;
    case -EINVAL:
    case -EILSEQ:
    case -EBADMSG:
    case -E2BIG:
    case -EEXIST:
    case -EPERM:
        return EXIT_DATAERR;
    case -ENOENT:
        return EXIT_NOINPUT;
    case -EACCES:
        return EXIT_NOPERM;
    case -EAGAIN:
        return EXIT_TEMPFAIL;
    case -ESTALE:
    case -EPROTO:
        return EXIT_CONFIG;
    case -EIO:
        return EXIT_IOERR;
    default:
        return EXIT_SOFTWARE;
    }
}

static void command_help(const struct command *c, FILE *out)
{
    fprintf(out, "usage: crier [-c FILE] %s\n\n%s", c->usage, c->help);
    fputs("  -c, --config FILE  the configuration (also before the command)\n", out);
}

/* The generic --json's getopt code, and the first of the rows' codes: above every byte, so
 * no short option (-h, -c) can be taken for either. */
#define OPT_GENERIC_JSON 0x1000
#define OPT_ROW          0x1001

/* option_store - one option's value into its row's field of the command's arguments. */
static int option_store(const struct opt_row *row, const char *arg, void *data)
{
    void *field = (char *)data + row->offset;
    if (row->parse)
        return row->parse(arg, field, row->tag);
    if (row->has_arg == no_argument)
        *(bool *)field = true;
    else
        *(const char **)field = arg;
    return 0;
}

/*
 * parse_options - getopt_long over a command's own arguments, its options given as rows
 * (NULL: none); --help is always accepted, and -c/--config FILE as well as before the
 * command (`crier status -c FILE`). Returns 1 when --help was printed, 0 when parsed, -1
 * on a usage error (printed).
 */
static int parse_options(struct cli *cli, int argc, char **argv, const struct opt_row *rows,
                         void *data)
{
    struct option all[24];
    size_t n = 0;
    bool own_json = false;
    for (; rows && rows[n].name; n++) {
        /* three slots stay for --json, --help and --config, and one for the end */
        if (n >= ARRAY_SIZE(all) - 4) {
            log_error("internal: crier %s has more options than parse_options takes", cli->command);
            abort();
        }
        all[n] = (struct option){rows[n].name, rows[n].has_arg, NULL, OPT_ROW + (int)n};
        own_json |= strcmp(rows[n].name, "json") == 0;
    }
    /* a command that offers --json and has no option of its own for it: cli->json */
    if (!own_json && strstr(cli->current->usage, "[--json]"))
        all[n++] = (struct option){"json", no_argument, NULL, OPT_GENERIC_JSON};
    all[n++] = (struct option){"help", no_argument, NULL, 'h'};
    all[n++] = (struct option){"config", required_argument, NULL, 'c'};
    all[n] = (struct option){0};
    optind = 0; /* 0, not 1: glibc then also forgets the "+" mode of the global parse */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hc:", all, NULL)) != -1) {
        if (opt == 'h') {
            command_help(cli->current, stdout);
            return 1;
        }
        if (opt == '?') {
            fail(cli, "unknown option '%s' (see crier %s --help)", argv[optind - 1], cli->command);
            return -1;
        }
        if (opt == ':') {
            fail(cli, "option '%s' needs a value", argv[optind - 1]);
            return -1;
        }
        if (opt == 'c')
            cli->config_path = optarg;
        else if (opt == OPT_GENERIC_JSON)
            cli->json = true;
        else if (option_store(&rows[opt - OPT_ROW], optarg, data) < 0)
            return -1;
    }
    return 0;
}

/* config_ready - load the configuration once (defaults when there is no file). */
static int config_ready(struct cli *cli)
{
    if (cli->config)
        return 0;
    const char *path = config_find(cli->config_path);
    if (path == NULL) {
        cli->config = config_default();
    } else {
        int r = config_load(path, stderr, &cli->config);
        if (r < 0)
            return EXIT_CONFIG;
    }
    log_setup(cli->config->log.format,
              cli->log_level_set ? cli->log_level : cli->config->log.level);
    /* a secret others may read is refused before anything reads it (secrets.readable_by) */
    if (config_secrets_check(cli->config) < 0)
        return EXIT_CONFIG;
    hold_policy_set(cli->config->holds.oral_lapse);
    /* report.oral_lapse decides where an oral hold lapses, for the engine as for the report */
    db_oral_lapse_set(cli->config->report.oral_lapse_everywhere != 0);
    return 0;
}

/* connect - config, database and schema check; prints why not and returns an exit code. */
static int connect(struct cli *cli, bool check_schema, struct crier_db **ret_db)
{
    int code = config_ready(cli);
    if (code)
        return code;
    char err[1024];
    struct crier_db *db = NULL;
    int r = db_open(cli->config->conninfo, "crier", &db, err, sizeof(err));
    if (r < 0) {
        fail(cli, "%s", err);
        return exit_code(r);
    }
    if (check_schema) {
        unsigned version = 0;
        r = migrate_check(db, &version);
        if (r == -ENOENT || r == -ESTALE) {
            fail(cli,
                 "the database schema is at version %u, this crier needs %u: run 'crier db "
                 "migrate'",
                 version, migrate_latest());
            db_close(db);
            return EXIT_CONFIG;
        }
        if (r < 0) {
            fail(cli, "%s",
                 r == -EPROTO ? "the database schema is newer than this crier" : db->error);
            db_close(db);
            return exit_code(r);
        }
    }
    *ret_db = db;
    return 0;
}

/* actor - who the dispatch log names for a command: the database role of the session. */
static char *actor(struct crier_db *db)
{
    PGresult *result = NULL;
    if (db_query(db, "SELECT session_user", 0, NULL, &result) < 0)
        return xstrdup("unknown");
    char *name = xstrdup(PQgetvalue(result, 0, 0));
    PQclear(result);
    return name;
}

/* one_name - exactly one positional argument left after the options. */
static const char *one_name(struct cli *cli, int argc, char **argv, const char *what)
{
    if (optind >= argc) {
        fail(cli, "missing %s (see crier %s --help)", what, cli->command);
        return NULL;
    }
    if (optind + 1 < argc) {
        fail(cli, "unexpected argument '%s'", argv[optind + 1]);
        return NULL;
    }
    return argv[optind];
}

/* What begin() and the groups' parsers return when the command goes on; anything else is
 * the exit code to return now. */
#define GO_ON (-1)

/*
 * begin - the start every command shares: its options (parse_options), then, when what
 * names it ("CAMPAIGN"), exactly one positional argument into *ret_name. A command that
 * takes other arguments reads them after optind itself. Returns GO_ON, or the exit code to
 * return now: 0 after --help, EXIT_USAGE after a usage error (said).
 */
static int begin(struct cli *cli, int argc, char **argv, const struct opt_row *rows, void *data,
                 const char *what, const char **ret_name)
{
    int r = parse_options(cli, argc, argv, rows, data);
    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    if (what == NULL)
        return GO_ON;
    *ret_name = one_name(cli, argc, argv, what);
    return *ret_name ? GO_ON : EXIT_USAGE;
}

/* begin_upto - begin, for a command that takes at most max positional arguments (which it
 * reads after optind itself). */
static int begin_upto(struct cli *cli, int argc, char **argv, const struct opt_row *rows,
                      void *data, int max)
{
    int r = begin(cli, argc, argv, rows, data, NULL, NULL);
    if (r != GO_ON)
        return r;
    if (argc - optind > max) {
        fail(cli, "unexpected argument '%s'", argv[optind + max]);
        return EXIT_USAGE;
    }
    return GO_ON;
}

/* ---- the driver ---------------------------------------------------------------------- */

/*
 * A command's run once its options are parsed: what its row's check, call, failed and say
 * share. The driver owns it, and releases what it holds whichever way the command ends.
 */
struct run {
    struct cli *cli;
    void *args;       /* the row's argument struct, its options stored in it */
    const char *name; /* the one positional argument the row's `what` names */
    int argc;         /* the arguments; the positional ones start at optind */
    char **argv;
    struct crier_db *db;           /* open while call, failed and say run, when the row connects */
    char *who;                     /* the session's role (actor()), when the row asks for it */
    char err[2048];                /* the call's error, said by failed */
    size_t err_size;               /* how much of err the call may use: as each command had it */
    char *text;                    /* a secret or a document read before connecting: wiped, freed */
    struct bounce_reader *reader;  /* bounces ingest's input */
    struct hold_document document; /* hold place, lift, confirm: --document */
    union {                        /* what a call hands its say, the row's own */
        struct import_result import;
        struct amend_result amend;
        struct returns_result returns;
        struct bounce_counts bounces;
        json_t *json;
        long n[2];
        struct {
            unsigned version[2];
            long built; /* find indexes a load left missing */
        } migrate;
    } out;
};

/* Up to this many positional arguments (config check reads the one it wants). */
#define ANY_ARGS 1000

/* positional - the positional argument i (from 0) after the options, NULL where it was not given:
 * a command whose row takes up to max reads them here. */
static const char *positional(const struct run *run, int i)
{
    return optind + i < run->argc ? run->argv[optind + i] : NULL;
}

/* db_error - the database's own message as the call's error. */
static void db_error(struct run *run)
{
    snprintf(run->err, run->err_size, "%s", run->db->error);
}

/* failed_plain - a module's error, said; its sysexits.h code. */
static int failed_plain(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return exit_code(r);
}

/* say_code - a call that returns the exit code itself. */
static int say_code(struct run *run, int r)
{
    return r;
}

/* command_connect - connect as the row says, call, and say how it went. */
static int command_connect(struct run *run, const struct command *c)
{
    if (c->db != DB_NONE) {
        int code = connect(run->cli, c->db == DB_SCHEMA, &run->db);
        if (code)
            return code;
        if (c->actor)
            run->who = actor(run->db);
    }
    int r = c->call(run);
    int code = r < 0 ? (c->failed ? c->failed : failed_plain)(run, r) : c->say ? c->say(run, r) : 0;
    if (run->db)
        db_close(run->db);
    return code;
}

/*
 * command_run - every command: its options into its argument struct (its row's defaults
 * first), its positional arguments, its own checks, then connect, call and say. Returns
 * the exit code.
 */
static int command_run(struct cli *cli, const struct command *c, int argc, char **argv)
{
    void *args = xcalloc(1, c->args_size ? c->args_size : 1);
    if (c->defaults)
        memcpy(args, c->defaults, c->args_size);
    struct run *run = xcalloc(1, sizeof(*run));
    *run = (struct run){.cli = cli, .args = args, .argc = argc, .argv = argv};
    run->err_size = c->err_size ? c->err_size : 1024;
    int code = c->what ? begin(cli, argc, argv, c->options, args, c->what, &run->name)
                       : begin_upto(cli, argc, argv, c->options, args, c->max);
    if (code == GO_ON && c->check)
        code = c->check(run);
    if (code == GO_ON)
        code = command_connect(run, c);
    free(run->who);
    if (run->text)
        explicit_bzero(run->text, strlen(run->text));
    free(run->text);
    bounce_reader_free(run->reader);
    hold_document_clear(&run->document);
    free(run);
    free(args);
    return code;
}

/* ---- db, user, config ------------------------------------------------------------------ */

static int roles_call(struct run *run)
{
    bool migrate_ok = false;
    int r = users_roles(run->db, run->cli->json, stdout, &migrate_ok, run->err, run->err_size);
    run->out.n[0] = migrate_ok;
    return r;
}

static int roles_say(struct run *run, int r)
{
    return run->out.n[0] ? 0 : 1;
}

struct user_args {
    const char *role, *password_file;
};

static const struct opt_row user_options[] = {
    OPT_TEXT("role", struct user_args, role),
    OPT_TEXT("password-file", struct user_args, password_file),
    {0},
};

/* user_check - --role, and the password, read before connecting (run->text) */
static int user_check(struct run *run)
{
    const struct user_args *a = run->args;
    if (a->role == NULL) {
        fail(run->cli, "--role operator|legal|auditor is required");
        return EXIT_USAGE;
    }
    int r = users_password(a->password_file, &run->text, run->err, 1024);
    if (r < 0) {
        fail(run->cli, "%s", run->err);
        return r == -ENOTTY || r == -EINVAL ? EXIT_USAGE : r == -EPERM ? EXIT_NOPERM : EXIT_NOINPUT;
    }
    return GO_ON;
}

static int user_call(struct run *run)
{
    const struct user_args *a = run->args;
    return users_add(run->db, run->name, a->role, run->text, run->err, run->err_size);
}

static int user_failed(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -EINVAL ? EXIT_USAGE : exit_code(r);
}

static int user_say(struct run *run, int r)
{
    printf("login %s created in crier_%s\n", run->name,
           ((const struct user_args *)run->args)->role);
    return 0;
}

static int migrate_call(struct run *run)
{
    unsigned *version = run->out.migrate.version;
    int r = migrate_apply(run->db, &version[0], &version[1]);
    if (r < 0) {
        db_error(run);
        return r;
    }
    /* the find indexes a load that was interrupted after its commit left missing */
    char err[1024] = "";
    r = find_index_build(run->db, run->cli->config->conninfo, FIND_INDEX_CONNECTIONS, 0,
                         &run->out.migrate.built, err, sizeof(err));
    if (r < 0) {
        snprintf(run->err, run->err_size,
                 "schema at version %u, but building the missing find indexes failed: %s",
                 version[1], err);
        return r == -EPROTO ? -EIO : r; /* EPROTO is the schema's: not this */
    }
    /* the claim's region index that an interrupted placement or load left missing */
    long region_built = 0;
    r = hold_region_index_build(run->db, NULL, NULL, &region_built);
    if (r < 0) {
        snprintf(run->err, run->err_size,
                 "schema at version %u, but building the missing region indexes failed: %s",
                 version[1], run->db->error);
        return r == -EPROTO ? -EIO : r;
    }
    return 0;
}

static int migrate_failed(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -EPROTO ? EXIT_CONFIG : exit_code(r);
}

static int migrate_say(struct run *run, int r)
{
    unsigned from = run->out.migrate.version[0], to = run->out.migrate.version[1];
    long built = run->out.migrate.built;
    if (run->cli->json)
        json_out(stdout,
                 json_pack("{s:i, s:i, s:b, s:I}", "from", (int)from, "to", (int)to, "migrated",
                           from != to, "find_indexes_built", (json_int_t)built));
    else if (from == to)
        printf("schema is at version %u: nothing to do\n", to);
    else
        printf("schema migrated from version %u to %u\n", from, to);
    if (!run->cli->json && built > 0)
        printf("find indexes built: %ld (a load was interrupted after its commit)\n", built);
    return 0;
}

/* config_probe - config check --connect: each service the configuration names, one line
 * each; returns how many failed. */
static int config_probe(const struct crier_config *config)
{
    int failed = 0;
    char err[1024];
    struct crier_db *db = NULL;
    if (db_open(config->conninfo, "crier config check", &db, err, sizeof(err)) < 0) {
        printf("  database: FAILED: %s\n", err);
        failed++;
    } else {
        unsigned version = 0;
        int r = migrate_check(db, &version);
        printf("  database: ok: PostgreSQL %s as %s, schema version %u%s\n",
               PQparameterStatus(db->conn, "server_version"), PQuser(db->conn), version,
               r == 0         ? ""
               : r == -EPROTO ? " (newer than this crier)"
                              : " (run crier db migrate)");
        db_close(db);
    }
    for (int id = 0; id < CHANNEL_COUNT; id++) {
        const struct crier_channel_ops *ops = channel_ops_by_id((enum crier_channel_id)id);
        if (!config->channel[id].enabled || ops == NULL || ops->probe == NULL)
            continue;
        int r = ops->probe(config, err, sizeof(err));
        printf("  %s: %s: %s\n", ops->probe_label, r == 0 ? "ok" : "FAILED", err);
        if (r < 0)
            failed++;
    }
    return failed;
}

struct config_check_args {
    bool probe; /* --connect */
};

static const struct opt_row config_check_options[] = {
    OPT_FLAG("connect", struct config_check_args, probe),
    {0},
};

/* config_check_call - its own shape: the file named (or found), no database; an exit code */
static int config_check_call(struct run *run)
{
    struct cli *cli = run->cli;
    if (positional(run, 0))
        cli->config_path = positional(run, 0);
    const char *path = config_find(cli->config_path);
    if (path == NULL) {
        fail(cli, "no configuration file: give -c FILE, set CRIER_CONFIG, or create "
                  "./crier.yaml or /etc/crier/crier.yaml");
        return EXIT_CONFIG;
    }
    struct crier_config *config = NULL;
    if (config_load(path, stderr, &config) < 0)
        return EXIT_CONFIG;
    log_setup(config->log.format, cli->log_level_set ? cli->log_level : config->log.level);
    if (config_secrets_check(config) < 0) {
        config_free(config);
        return EXIT_CONFIG;
    }
    /* the rules table the report reads: every problem as FILE:LINE:COL (docs/jurisdictions.md) */
    const char *rules_path =
        config->report.deadlines ? config->report.deadlines : rules_default_path();
    struct rules_table *rules = NULL;
    char err[1024];
    if (rules_load(rules_path, stderr, &rules, err, sizeof(err)) < 0) {
        config_free(config);
        return EXIT_CONFIG;
    }
    /* the files the channels need: what crier run would refuse at start (exit 78) */
    if (channel_check_all(config, path, stderr) < 0) {
        rules_free(rules);
        config_free(config);
        return EXIT_CONFIG;
    }
    printf("%s: ok\n", path);
    for (int id = 0; id < CHANNEL_COUNT; id++)
        if (config->channel[id].enabled)
            printf("  channel %s: %d lane%s\n", channel_id_name((enum crier_channel_id)id),
                   config->channel[id].lanes, config->channel[id].lanes == 1 ? "" : "s");
    size_t verified = 0, secondary = 0, no_source = 0;
    for (size_t i = 0; i < rules->count; i++) {
        verified += rules->entries[i].verified;
        secondary += strcmp(rules->entries[i].source_kind, "secondary") == 0;
        no_source += strcmp(rules->entries[i].source_kind, "none") == 0;
    }
    printf("  rules table %s: %zu entries, %zu verified, %zu from a secondary source only, %zu "
           "without any source\n",
           rules->path, rules->count, verified, secondary, no_source);
    rules_free(rules);
    /* letters and faxes are drawn in Crier Sans where it is installed (letter.h) */
    const char *fonts = letter_fonts_dir();
    if (fonts != NULL)
        printf("  fonts: Crier Sans, from %s\n", fonts);
    else
        printf(
            "  fonts: crier's own are not installed (or not where CRIER_FONTS_DIR says): letters "
            "and faxes are drawn in the system's DejaVu Sans (a fax's PDF about twice the "
            "size)\n");
    int failed = ((const struct config_check_args *)run->args)->probe ? config_probe(config) : 0;
    fflush(stdout);
    config_free(config);
    return failed ? EXIT_UNAVAILABLE : 0;
}

/* ---- campaign ------------------------------------------------------------------------ */

struct create_args {
    struct campaign_create_options options;
    const char *meta_path;
};

static const struct opt_row create_options[] = {
    OPT_TEXT("incident", struct create_args, options.incident),
    OPT_TEXT("policy", struct create_args, options.policy),
    OPT_TEXT("templates", struct create_args, options.templates),
    OPT_TEXT("meta", struct create_args, meta_path),
    {0},
};

/* create_check - --incident, and --meta read before connecting (run->text) */
static int create_check(struct run *run)
{
    struct create_args *a = run->args;
    a->options.name = run->name;
    if (a->options.incident == NULL) {
        fail(run->cli, "--incident REF is required (the incident this campaign notifies about)");
        return EXIT_USAGE;
    }
    if (a->meta_path) {
        int r = meta_yaml_to_json(a->meta_path, &run->text, run->err, 1024);
        if (r < 0) {
            fail(run->cli, "%s", run->err);
            return r == -ENOENT ? EXIT_NOINPUT : EXIT_DATAERR;
        }
        a->options.meta_json = run->text;
    }
    return GO_ON;
}

static int create_call(struct run *run)
{
    struct create_args *a = run->args;
    return campaign_create(run->db, &a->options, run->who, run->err, run->err_size);
}

static int create_say(struct run *run, int r)
{
    const struct create_args *a = run->args;
    const char *policy = a->options.policy ? a->options.policy : "email,fax,mail";
    if (run->cli->json)
        json_out(stdout, json_pack("{s:s, s:s, s:s}", "campaign", a->options.name, "state", "draft",
                                   "policy", policy));
    else
        printf("campaign %s created (draft, policy %s)\n", a->options.name, policy);
    return 0;
}

static const struct opt_row load_options[] = {
    OPT_TEXT("csv", struct import_options, csv_path),
    OPT_TEXT("table", struct import_options, table),
    OPT_TEXT("query", struct import_options, query),
    OPT_TEXT("reject-file", struct import_options, reject_path),
    {0},
};

static int load_check(struct run *run)
{
    struct import_options *o = run->args;
    o->campaign = run->name;
    if ((o->csv_path != NULL) + (o->table != NULL) + (o->query != NULL) != 1) {
        fail(run->cli, "give exactly one of --csv FILE, --table SCHEMA.TABLE, --query SQL");
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int load_call(struct run *run)
{
    struct import_options *o = run->args;
    o->actor = run->who;
    o->progress = isatty(STDERR_FILENO);
    return import_load(run->db, run->cli->config, o, stderr, &run->out.import, run->err,
                       run->err_size);
}

static int load_failed(struct run *run, int r)
{
    const struct import_options *o = run->args;
    fail(run->cli, "%s; nothing was loaded", run->err);
    return r == -ENOENT && o->csv_path && access(o->csv_path, R_OK) != 0 ? EXIT_NOINPUT
                                                                         : exit_code(r);
}

static int load_say(struct run *run, int r)
{
    const struct import_options *o = run->args;
    const struct import_result *result = &run->out.import;
    if (run->cli->json) {
        json_out(stdout,
                 json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s?, s:I, s:I}", "campaign",
                           o->campaign, "load", (json_int_t)result->load_id, "rows",
                           (json_int_t)result->rows, "loaded", (json_int_t)result->loaded,
                           "rejected", (json_int_t)result->rejected, "contacts_dropped",
                           (json_int_t)result->contacts_dropped, "undeliverable",
                           (json_int_t)result->undeliverable, "reject_file", o->reject_path,
                           "find_indexes_built", (json_int_t)result->find_built,
                           "find_indexes_missing", (json_int_t)result->find_missing));
        return 0;
    }
    printf("campaign %s: %ld rows read, %ld loaded, %ld rejected, %ld with a contact dropped",
           o->campaign, result->rows, result->loaded, result->rejected, result->contacts_dropped);
    if (result->undeliverable)
        printf(", %ld with no channel of the policy (undeliverable)", result->undeliverable);
    printf(" (load %lld)\n", (long long)result->load_id);
    if (o->reject_path && (result->rejected || result->contacts_dropped))
        printf("rejected rows and dropped contacts: %s\n", o->reject_path);
    if (result->find_missing != 0) /* the rows are in; only `audit find` is slower */
        printf("find indexes still missing: %s (crier db migrate builds them)\n",
               result->find_missing < 0 ? "unknown" : "some");
    return 0;
}

/* start_check - a typo in a template stops the campaign here, not in someone's letter. */
static int start_check(struct crier_db *db, const char *name, void *data)
{
    const struct cli *cli = data;
    int r = render_check_campaign(db, cli->config, name, stderr);
    if (r < 0)
        return r;
    /* the rules table's content rules (CA headings, MA and IL prohibited content, credit
     * monitoring, HIPAA's elements) against the templates each jurisdiction gets */
    r = content_check_campaign(db, cli->config, name, stderr);
    if (r < 0)
        return r;
    /* what was checked is what is sent: the templates are copied into the database */
    struct campaign *c = NULL;
    r = campaign_get(db, name, false, &c);
    if (r == 0 && render_needs_templates(c->policy))
        r = render_templates_record(db, cli->config, c->id, stderr);
    campaign_free(c);
    return r;
}

/* action_call - start, pause, resume or cancel (the row's tag) */
static int action_call(struct run *run)
{
    struct cli *cli = run->cli;
    enum campaign_action action = (enum campaign_action)cli->current->tag;
    int r = campaign_transition(run->db, run->name, action, run->who, start_check, cli,
                                &run->out.n[0], run->err, run->err_size);
    /* said now, not discovered later: a channel nobody serves keeps its notices waiting */
    char **unserved = NULL;
    if (r == 0 && (action == CAMPAIGN_START || action == CAMPAIGN_RESUME) &&
        service_unserved(run->db, run->name, &unserved) == 0) {
        for (char **c = unserved; *c; c++)
            fprintf(stderr,
                    "crier %s: warning: no live crier run serves %s, in the policy of %s: its "
                    "notices wait until one does (or crier campaign reroute moves them)\n",
                    cli->command, *c, run->name);
        strv_free(unserved);
    }
    return r;
}

/* failed_data - a module's error; a campaign it does not know is bad data (65) */
static int failed_data(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -ENOENT ? EXIT_DATAERR : exit_code(r);
}

static int action_say(struct run *run, int r)
{
    static const char *const done[] = {"started", "paused", "resumed", "cancelled"};
    enum campaign_action action = (enum campaign_action)run->cli->current->tag;
    long affected = run->out.n[0];
    if (run->cli->json) {
        json_t *o = json_pack("{s:s, s:s}", "campaign", run->name, "done", done[action]);
        if (action == CAMPAIGN_CANCEL)
            json_object_set_new(o, "cancelled_notices", json_integer(affected));
        json_out(stdout, o);
        return 0;
    }
    printf("campaign %s %s", run->name, done[action]);
    if (action == CAMPAIGN_CANCEL)
        printf(": %ld notices not yet sent were cancelled", affected);
    putchar('\n');
    return 0;
}

struct proof_args {
    const char *out;
    int count;
};

/* proof_count - --count N: how many proofs of each template, 1 to 1000. */
static int proof_count(const char *arg, void *field, int tag)
{
    char *end = NULL;
    long count = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || count < 1 || count > 1000) {
        fprintf(stderr, "crier campaign proof: --count takes a number from 1 to 1000\n");
        return -1;
    }
    *(int *)field = (int)count;
    return 0;
}

static const struct opt_row proof_options[] = {
    OPT_TEXT("out", struct proof_args, out),
    OPT_PARSE("count", struct proof_args, count, proof_count, 0),
    {0},
};
static const struct proof_args proof_defaults = {.count = 1};

/* need - a required option: GO_ON when given, else said (EXIT_USAGE) */
static int need(struct run *run, const char *value, const char *what)
{
    if (value != NULL)
        return GO_ON;
    fail(run->cli, "%s is required", what);
    return EXIT_USAGE;
}

static int proof_check(struct run *run)
{
    return need(run, ((const struct proof_args *)run->args)->out, "--out DIR");
}

static int proof_call(struct run *run)
{
    const struct proof_args *a = run->args;
    return proof_write(run->db, run->cli->config, run->name, a->out, a->count, stdout, stderr);
}

static int proof_failed(struct run *run, int r)
{
    if (r == -ENOENT)
        fail(run->cli, "no campaign named '%s'", run->name);
    else if (r == -EINVAL)
        fail(run->cli, "some proofs could not be rendered (above)");
    return r == -ENOENT ? EXIT_DATAERR : exit_code(r);
}

static int proof_say(struct run *run, int r)
{
    fprintf(stderr, "crier campaign proof: %d files in %s; nothing was sent\n", r,
            ((const struct proof_args *)run->args)->out);
    return 0;
}

/* The flags of campaign list and status. */
struct flag_args {
    bool json, watch;
};

static const struct opt_row list_options[] = {OPT_FLAG("json", struct flag_args, json), {0}};

static int list_call(struct run *run)
{
    int r = campaign_list(run->db, ((const struct flag_args *)run->args)->json, stdout);
    if (r < 0)
        db_error(run);
    return r;
}

struct reroute_args {
    const char *from, *to, *reason;
};

static const struct opt_row reroute_options[] = {
    OPT_TEXT("from", struct reroute_args, from),
    OPT_TEXT("to", struct reroute_args, to),
    OPT_TEXT("reason", struct reroute_args, reason),
    {0},
};

static int reroute_check(struct run *run)
{
    const struct reroute_args *a = run->args;
    const char *missing = a->from == NULL        ? "--from CHANNEL"
                          : a->to == NULL        ? "--to CHANNEL"
                          : str_empty(a->reason) ? "--reason TEXT"
                                                 : NULL;
    if (missing) {
        fail(run->cli, "missing %s (see crier campaign reroute --help)", missing);
        return EXIT_USAGE;
    }
    enum crier_channel_id id;
    const char *unknown = channel_id_from_name(a->from, &id) < 0 ? a->from
                          : channel_id_from_name(a->to, &id) < 0 ? a->to
                                                                 : NULL;
    if (unknown) {
        fail(run->cli, "unknown channel '%s' (email, fax, mail, null, test)", unknown);
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int reroute_call(struct run *run)
{
    const struct reroute_args *a = run->args;
    return service_reroute(run->db, run->name, a->from, a->to, a->reason, run->who, &run->out.n[0],
                           &run->out.n[1], run->err, run->err_size);
}

/* failed_refused - a module's error; a request it refuses (EINVAL, EPERM) is bad data */
static int failed_refused(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -EINVAL || r == -EPERM ? EXIT_DATAERR : exit_code(r);
}

static int reroute_say(struct run *run, int r)
{
    const struct reroute_args *a = run->args;
    long moved = run->out.n[0], left = run->out.n[1];
    if (run->cli->json) {
        json_out(stdout,
                 json_pack("{s:s, s:s, s:s, s:I, s:I}", "campaign", run->name, "from", a->from,
                           "to", a->to, "moved", (json_int_t)moved, "left", (json_int_t)left));
        return 0;
    }
    printf("%ld notice%s moved from %s to %s", moved, moved == 1 ? "" : "s", a->from, a->to);
    if (left > 0)
        printf("; %ld left waiting on %s: %s cannot reach them", left, a->from, a->to);
    printf("\n");
    return 0;
}

/* ---- run, status --------------------------------------------------------------------- */

/* run_reload - SIGHUP: the configuration file again, kept aside until the lanes stop. */
static int run_reload(void *data)
{
    struct cli *cli = data;
    const char *path = config_find(cli->config_path);
    if (path == NULL) {
        log_error("SIGHUP: no configuration file to read");
        return -ENOENT;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *diag = open_memstream(&text, &len);
    struct crier_config *config = NULL;
    int r = config_load(path, diag, &config);
    fclose(diag);
    if (r < 0) {
        log_error("SIGHUP: %s is not valid: %s", path, len ? text : strerror(-r));
        free(text);
        return r;
    }
    free(text);
    if (config_secrets_check(config) < 0) { /* said why; the old rule stands again */
        log_error("SIGHUP: %s names a secret file others may read: running on with the old "
                  "configuration",
                  path);
        config_secrets_check(cli->config);
        config_free(config);
        return -EACCES;
    }
    config_free(cli->reloaded);
    cli->reloaded = config;
    return 0;
}

struct run_args {
    bool until_idle;
    const char *metrics;
};

static const struct opt_row run_options[] = {
    OPT_FLAG("until-idle", struct run_args, until_idle),
    OPT_TEXT("metrics", struct run_args, metrics),
    {0},
};

/* run_call - its own shape: the lanes until a signal, a reload between runs; an exit code */
static int run_call(struct run *run)
{
    struct cli *cli = run->cli;
    const struct run_args *a = run->args;
    int r = config_ready(cli);
    if (r)
        return r;
    /* --metrics, else metrics.listen of the first configuration: a reload keeps the port */
    const char *listen = a->metrics ? a->metrics : cli->config->metrics.listen;
    char *metrics = listen ? xstrdup(listen) : NULL;
    struct worker_options o = {.until_idle = a->until_idle,
                               .reload = run_reload,
                               .reload_data = cli,
                               .metrics_address = metrics,
                               .running_counts = status_running};
    while ((r = worker_run(cli->config, &o)) == WORKER_RELOAD) {
        config_free(cli->config);
        cli->config = cli->reloaded;
        cli->reloaded = NULL;
        log_setup(cli->config->log.format,
                  cli->log_level_set ? cli->log_level : cli->config->log.level);
        (void)config_secrets_check(cli->config); /* passed in run_reload */
        hold_policy_set(cli->config->holds.oral_lapse);
    }
    free(metrics);
    if (r == -EINVAL || r == -ENOENT || r == -ESTALE)
        return EXIT_CONFIG;
    return exit_code(r);
}

static volatile sig_atomic_t watch_stop;

static void watch_signal(int sig)
{
    watch_stop = 1;
}

/* status_with_waiting - status_print, and the notices that wait because no live worker
 * serves their channel (service.c): under the table, or as each campaign's "waiting". */
static int status_with_waiting(struct crier_db *db, const char *name, bool json, FILE *out)
{
    json_t *waiting = NULL;
    int r = service_waiting(db, name, &waiting);
    if (r < 0)
        return r;
    if (!json) {
        r = status_print(db, name, false, out);
        if (r == 0)
            service_waiting_text(waiting, out);
        json_decref(waiting);
        fflush(out);
        return r;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *buffer = open_memstream(&text, &len);
    r = status_print(db, name, true, buffer);
    fclose(buffer);
    json_t *printed = r == 0 ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    if (r == 0 && printed == NULL) {
        snprintf(db->error, sizeof(db->error), "status printed no JSON");
        r = -EIO;
    }
    if (r < 0) {
        json_decref(waiting);
        return r;
    }
    json_t *campaigns = json_is_array(printed) ? json_incref(printed) : json_pack("[O]", printed);
    size_t i, k;
    json_t *campaign, *row;
    json_array_foreach(campaigns, i, campaign)
    {
        json_t *list = json_array();
        json_array_foreach(waiting, k, row) if (json_equal(json_object_get(row, "campaign"),
                                                           json_object_get(campaign, "campaign")))
            json_array_append(list, row);
        json_object_set_new(campaign, "waiting", list);
    }
    json_dumpf(printed, out, JSON_INDENT(2));
    fputc('\n', out);
    fflush(out);
    json_decref(campaigns);
    json_decref(printed);
    json_decref(waiting);
    return 0;
}

static const struct opt_row status_options[] = {
    OPT_FLAG("json", struct flag_args, json),
    OPT_FLAG("watch", struct flag_args, watch),
    {0},
};

static int status_call(struct run *run)
{
    const struct flag_args *a = run->args;
    const char *name = positional(run, 0);
    bool tty = isatty(STDOUT_FILENO);
    if (a->watch) {
        signal(SIGINT, watch_signal);
        signal(SIGTERM, watch_signal);
    }
    int r;
    do {
        if (a->watch && tty && !a->json)
            fputs("\033[H\033[2J", stdout);
        r = status_with_waiting(run->db, name, a->json, stdout);
        if (r < 0) {
            db_error(run);
            break;
        }
        for (int i = 0; a->watch && i < 20 && !watch_stop; i++)
            usleep(100000);
    } while (a->watch && !watch_stop);
    return r;
}

/* ---- returns, bounces ---------------------------------------------------------------- */

struct returns_args {
    const char *campaign, *reject_path;
};

static const struct opt_row returns_options[] = {
    OPT_TEXT("campaign", struct returns_args, campaign),
    OPT_TEXT("reject-file", struct returns_args, reject_path),
    {0},
};

static int returns_check(struct run *run)
{
    if (access(run->name, R_OK) != 0) {
        fail(run->cli, "%s: %s", run->name, strerror(errno));
        return EXIT_NOINPUT;
    }
    return GO_ON;
}

static int returns_call(struct run *run)
{
    const struct returns_args *a = run->args;
    return returns_ingest(run->db, run->name, a->campaign, run->who, a->reject_path, stderr,
                          &run->out.returns, run->err, run->err_size);
}

static int returns_failed(struct run *run, int r)
{
    fail(run->cli, "%s; nothing was recorded", run->err[0] ? run->err : run->db->error);
    return db_lost(run->db) ? EXIT_UNAVAILABLE : exit_code(r);
}

static int returns_say(struct run *run, int r)
{
    const struct returns_result *result = &run->out.returns;
    if (run->cli->json) {
        json_out(stdout,
                 json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows",
                           (json_int_t)result->rows, "recorded", (json_int_t)result->recorded,
                           "already", (json_int_t)result->already, "unknown",
                           (json_int_t)result->unknown, "not_mailed",
                           (json_int_t)result->not_mailed, "forwarded",
                           (json_int_t)result->forwarded, "forward_once",
                           (json_int_t)result->forward_once, "forward_rejected",
                           (json_int_t)result->forward_rejected));
        return 0;
    }
    printf("%ld rows: %ld returns recorded, %ld already recorded, %ld unknown, %ld not "
           "mailed\n",
           result->rows, result->recorded, result->already, result->unknown, result->not_mailed);
    if (result->forwarded || result->forward_once || result->forward_rejected)
        printf("forwarding addresses: %ld amended and mailed again, %ld already forwarded "
               "once, %ld rejected\n",
               result->forwarded, result->forward_once, result->forward_rejected);
    return 0;
}

static void bounce_counts_print(const struct cli *cli, const struct bounce_counts *c)
{
    if (cli->json) {
        json_out(stdout,
                 json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "messages",
                           (json_int_t)c->messages, "permanent", (json_int_t)c->permanent,
                           "delayed", (json_int_t)c->delayed, "unmatched", (json_int_t)c->unmatched,
                           "unparseable", (json_int_t)c->unparseable, "duplicate",
                           (json_int_t)c->duplicate, "ignored", (json_int_t)c->ignored));
        return;
    }
    printf("%ld messages: %ld bounces applied (%ld permanent, %ld delays), %ld unmatched, %ld "
           "unparseable, %ld already ingested",
           c->messages, c->permanent + c->delayed, c->permanent, c->delayed, c->unmatched,
           c->unparseable, c->duplicate);
    if (c->ignored)
        printf(", %ld ignored", c->ignored);
    putchar('\n');
}

/* bounces_check - PATH opened before connecting (run->reader) */
static int bounces_check(struct run *run)
{
    if (bounce_reader_open(run->name, &run->reader, run->err, 1024) < 0) {
        fail(run->cli, "%s", run->err);
        return EXIT_NOINPUT;
    }
    return GO_ON;
}

/* bounces_call - the counts are said even when it stops part way */
static int bounces_call(struct run *run)
{
    int r = bounce_ingest(run->db, run->cli->config, run->reader, run->who, &run->out.bounces);
    bounce_counts_print(run->cli, &run->out.bounces);
    return r;
}

static int bounces_failed(struct run *run, int r)
{
    fail(run->cli, "stopped: %s", run->db->error);
    return db_lost(run->db) ? EXIT_UNAVAILABLE : exit_code(r);
}

/* ---- hold ---------------------------------------------------------------------------- */

struct hold_args {
    struct hold_place_options place;
    const char *document_path;
    const char *evidence;
    const char *as_name;
    bool written, json, active;
};

/* What hold lift, confirm and show name their argument when it is missing. */
#define HOLD_NUMBER "HOLD (its number: crier hold list)"

/* failed_hold - a hold module's error (its message is in err) and its exit code */
static int failed_hold(struct run *run, int r)
{
    json_decref(run->out.json);
    fail(run->cli, "%s", run->err);
    switch (r) {
    case -ENOENT: /* no such campaign or hold: the argument names no data */
    case -EEXIST:
    case -EPERM:
        return EXIT_DATAERR;
    case -ETIMEDOUT:
        return EXIT_TEMPFAIL;
    default:
        return exit_code(r);
    }
}

/* say_json - the --json object the call filled in, when asked for */
static int say_json(struct run *run, int r)
{
    if (run->out.json)
        json_out(stdout, run->out.json);
    return 0;
}

/* hold_document_check - --document FILE read before connecting (run->document) */
static int hold_document_check(struct run *run)
{
    const char *path = ((const struct hold_args *)run->args)->document_path;
    if (path == NULL)
        return GO_ON;
    char err[1024];
    int r = hold_document_read(path, &run->document, err, sizeof(err));
    if (r < 0) {
        fail(run->cli, "%s", err);
        return r == -ENOENT || r == -EACCES ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    return GO_ON;
}

/* hold_json - the object a hold action fills in for --json; its document, when given */
static const struct hold_document *hold_json(struct run *run)
{
    run->out.json = run->cli->json ? json_object() : NULL;
    return ((const struct hold_args *)run->args)->document_path ? &run->document : NULL;
}

static const struct opt_row place_options[] = {
    OPT_TEXT("region", struct hold_args, place.region),
    OPT_TEXT("recipient", struct hold_args, place.recipient),
    OPT_TEXT("authority", struct hold_args, place.authority),
    OPT_TEXT("official", struct hold_args, place.official),
    OPT_TEXT("case", struct hold_args, place.case_ref),
    OPT_TEXT("form", struct hold_args, place.form),
    OPT_TEXT("reason", struct hold_args, place.reason),
    OPT_TEXT("review-by", struct hold_args, place.review_by),
    OPT_TEXT("document", struct hold_args, document_path),
    OPT_TEXT("as", struct hold_args, as_name),
    {0},
};

static int place_check(struct run *run)
{
    struct hold_args *a = run->args;
    a->place.campaign = run->name;
    if (a->place.region && a->place.recipient) {
        fail(run->cli, "give --region or --recipient, not both (neither: the whole campaign)");
        return EXIT_USAGE;
    }
    const struct {
        const char *what, *value;
    } required[] = {
        {"--authority AGENCY", a->place.authority}, {"--official NAME", a->place.official},
        {"--case REF", a->place.case_ref},          {"--form written|oral", a->place.form},
        {"--reason TEXT", a->place.reason},
    };
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (required[i].value == NULL) {
            fail(run->cli, "%s is required (see crier hold place --help)", required[i].what);
            return EXIT_USAGE;
        }
    }
    a->place.as_name = a->as_name;
    if (hold_options_check(&a->place, run->err, run->err_size) < 0) {
        fail(run->cli, "%s", run->err);
        return EXIT_DATAERR;
    }
    return hold_document_check(run);
}

static int place_call(struct run *run)
{
    struct hold_args *a = run->args;
    a->place.document = hold_json(run);
    /* a notice in flight outlives its lease only while its lane keeps extending it */
    long lease = run->cli->config->queue.lease_seconds;
    a->place.drain_seconds = lease * 2 > 60 ? (double)lease * 2 : 60.0;
    return hold_place(run->db, &a->place, stdout, run->out.json, run->err, run->err_size);
}

static const struct opt_row lift_options[] = {
    OPT_TEXT("evidence", struct hold_args, evidence),
    OPT_TEXT("document", struct hold_args, document_path),
    OPT_TEXT("as", struct hold_args, as_name),
    {0},
};

static int lift_check(struct run *run)
{
    if (((const struct hold_args *)run->args)->evidence == NULL) {
        fail(run->cli, "--evidence TEXT is required: what the agency said, and when");
        return EXIT_USAGE;
    }
    return hold_document_check(run);
}

static int lift_call(struct run *run)
{
    const struct hold_document *document = hold_json(run);
    const struct hold_args *a = run->args;
    return hold_lift(run->db, run->name, a->evidence, document, a->as_name, stdout, run->out.json,
                     run->err, run->err_size);
}

static const struct opt_row confirm_options[] = {
    OPT_FLAG("written", struct hold_args, written),
    OPT_TEXT("document", struct hold_args, document_path),
    OPT_TEXT("as", struct hold_args, as_name),
    {0},
};

static int confirm_check(struct run *run)
{
    const struct hold_args *a = run->args;
    if (!a->written || a->document_path == NULL) {
        fail(run->cli, "--written and --document FILE are required: an oral hold is confirmed "
                       "by the agency's written statement");
        return EXIT_USAGE;
    }
    return hold_document_check(run);
}

static int confirm_call(struct run *run)
{
    const struct hold_document *document = hold_json(run);
    return hold_confirm(run->db, run->name, document,
                        ((const struct hold_args *)run->args)->as_name, stdout, run->out.json,
                        run->err, run->err_size);
}

static const struct opt_row hold_list_options[] = {
    OPT_FLAG("active", struct hold_args, active),
    OPT_FLAG("json", struct hold_args, json),
    {0},
};

static int hold_list_call(struct run *run)
{
    const struct hold_args *a = run->args;
    const char *campaign = positional(run, 0);
    return hold_list(run->db, campaign, a->active, a->json, stdout, run->err, run->err_size);
}

static const struct opt_row hold_show_options[] = {OPT_FLAG("json", struct hold_args, json), {0}};

static int hold_show_call(struct run *run)
{
    const struct crier_config *config = run->cli->config;
    /* the rules table gives the deadlines that run from a lift; without it, none are shown */
    struct rules_table *rules = NULL;
    const char *rules_path =
        config->report.deadlines ? config->report.deadlines : rules_default_path();
    if (rules_load(rules_path, NULL, &rules, run->err, run->err_size) < 0)
        fprintf(stderr, "crier hold show: warning: no clearance deadlines: %s\n", run->err);
    int r = hold_show(run->db, run->name, ((const struct hold_args *)run->args)->json, rules,
                      stdout, run->err, run->err_size);
    rules_free(rules);
    return r;
}

struct hold_check_args {
    char *to[9]; /* --mail-to, NULL-terminated */
    int count;
};

/* hold_check_mail_to - --mail-to ADDRESS, repeatable (field: the whole hold_check_args). */
static int hold_check_mail_to(const char *arg, void *field, int tag)
{
    struct hold_check_args *a = field;
    if (a->count == (int)ARRAY_SIZE(a->to) - 1) {
        fprintf(stderr, "crier hold check: at most %zu --mail-to\n", ARRAY_SIZE(a->to) - 1);
        return -1;
    }
    a->to[a->count++] = (char *)arg;
    return 0;
}

static const struct opt_row hold_check_options[] = {
    OPT_WHOLE("mail-to", hold_check_mail_to, 0),
    {0},
};

/* hold_check_call - the report into run->text (mailed by say), the count into out.n[0] */
static int hold_check_call(struct run *run)
{
    size_t len = 0;
    FILE *report = open_memstream(&run->text, &len);
    int r = hold_check(run->db, report, &run->out.n[0]);
    fclose(report);
    json_t *alerts = NULL;
    if (r == 0 && run->cli->json && (r = hold_check_json(run->db, &alerts)) == 0)
        json_out(stdout, alerts);
    else if (!run->cli->json)
        fputs(run->text, stdout);
    if (r < 0)
        db_error(run);
    return r;
}

/* hold_check_say - --mail-to: legal hears of it through the configured relay
 * (crier-hold-check.timer); exit 1 when a hold needs attention */
static int hold_check_say(struct run *run, int r)
{
    const struct hold_check_args *a = run->args;
    long count = run->out.n[0];
    if (count > 0 && a->count > 0) {
        char *subject = xasprintf("crier: %ld law-enforcement hold%s need%s legal's attention",
                                  count, count == 1 ? "" : "s", count == 1 ? "s" : "");
        char *body = xasprintf("crier hold check found holds that lapsed or passed their review "
                               "date:\n\n%s\nEach needs a decision: confirm it in writing "
                               "(crier hold confirm), ask the agency again, or lift it (crier "
                               "hold lift).\n",
                               run->text);
        char sent[512];
        int m =
            channel_send_text(run->cli->config, (char **)a->to, subject, body, sent, sizeof(sent));
        free(subject);
        free(body);
        if (m < 0) {
            fail(run->cli, "mailing %s: %s", a->to[0], sent);
            return EXIT_UNAVAILABLE;
        }
        fprintf(stderr, "crier hold check: mailed to %d address%s, %s\n", a->count,
                a->count == 1 ? "" : "es", sent);
    }
    return count > 0 ? 1 : 0;
}

/* ---- batch (print batches of the mail channel: engine/core/batch.c) ----------------------- */

struct batch_args {
    bool json;
    const char *date, *evidence, *reason;
};

/* every batch command takes these, and refuses those of the others */
static const struct opt_row batch_options[] = {
    OPT_FLAG("json", struct batch_args, json),
    OPT_TEXT("date", struct batch_args, date),
    OPT_TEXT("evidence", struct batch_args, evidence),
    OPT_TEXT("reason", struct batch_args, reason),
    {0},
};

static int batch_check(struct run *run)
{
    const struct batch_args *a = run->args;
    const char *name = run->cli->current->name;
    bool mark = strcmp(name, "mark-mailed") == 0, void_batch = strcmp(name, "void") == 0;
    if ((a->date && !mark) || (a->evidence && !mark) || (a->reason && !void_batch)) {
        fail(run->cli, "an option this command does not take (see crier %s --help)",
             run->cli->command);
        return EXIT_USAGE;
    }
    if (mark && a->date == NULL) {
        fail(run->cli, "--date YYYY-MM-DD is required: the day the post office accepted the batch");
        return EXIT_USAGE;
    }
    if (void_batch && a->reason == NULL) {
        fail(run->cli, "--reason TEXT is required");
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int batch_list_call(struct run *run)
{
    return batch_list(run->db, run->cli->config, run->name,
                      ((const struct batch_args *)run->args)->json, stdout, run->err,
                      run->err_size);
}

static int batch_show_call(struct run *run)
{
    return batch_show(run->db, run->cli->config, run->name,
                      ((const struct batch_args *)run->args)->json, stdout, run->err,
                      run->err_size);
}

/* batch_json - --json of mark-mailed and void: the result in one object on stdout (say_json),
 * warnings on the way to stderr; returns where they go */
static FILE *batch_json(struct run *run)
{
    run->out.json = ((const struct batch_args *)run->args)->json ? json_object() : NULL;
    return run->out.json ? stderr : stdout;
}

static int batch_mark_call(struct run *run)
{
    const struct batch_args *a = run->args;
    FILE *out = batch_json(run);
    return batch_mark_mailed(run->db, run->cli->config, run->name, a->date, a->evidence, out,
                             run->out.json, run->err, run->err_size);
}

static int batch_void_call(struct run *run)
{
    FILE *out = batch_json(run);
    return batch_void(run->db, run->cli->config, run->name,
                      ((const struct batch_args *)run->args)->reason, out, run->out.json, run->err,
                      run->err_size);
}

static int batch_failed(struct run *run, int r)
{
    json_decref(run->out.json);
    fail(run->cli, "%s", run->err);
    return r == -EALREADY ? EXIT_DATAERR : exit_code(r);
}

/* failed_campaign - a module's error, said; an unknown campaign is bad data (65), as an
 * argument that names nothing, not a missing file. */
static int failed_campaign(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -ENOENT && strncmp(run->err, "no campaign", 11) == 0 ? EXIT_DATAERR : exit_code(r);
}

/* ---- audit report, regulators (engine/cmd/report.c, regulators.c) ------------------------ */

static const struct opt_row report_options[] = {
    OPT_FLAG("json", struct report_options, json),
    OPT_TEXT("html", struct report_options, html_path),
    OPT_TEXT("discovered", struct report_options, discovered),
    OPT_TEXT("framework", struct report_options, frameworks),
    {0},
};

static int report_call(struct run *run)
{
    struct report_options *o = run->args;
    o->campaign = run->name;
    report_options_configure(o, run->cli->config);
    o->progress = isatty(STDERR_FILENO) && !o->json;
    return report_run(run->db, o, stdout, run->err, run->err_size);
}

struct regulators_args {
    struct report_options report;
    struct regulators_filing filing;
    const char *out;
};

static const struct opt_row regulators_options[] = {
    OPT_TEXT("out", struct regulators_args, out),
    OPT_TEXT("discovered", struct regulators_args, report.discovered),
    OPT_TEXT("framework", struct regulators_args, report.frameworks),
    {0},
};

static int regulators_check(struct run *run)
{
    return need(run, ((const struct regulators_args *)run->args)->out, "--out DIR");
}

static int regulators_call(struct run *run)
{
    struct regulators_args *a = run->args;
    a->report.campaign = run->name;
    report_options_configure(&a->report, run->cli->config);
    return regulators_packet(run->db, run->cli->config, &a->report, a->out, stdout, run->err,
                             run->err_size);
}

static const struct opt_row filed_options[] = {
    OPT_TEXT("jurisdiction", struct regulators_args, filing.jurisdiction),
    OPT_TEXT("regulator", struct regulators_args, filing.regulator),
    OPT_TEXT("date", struct regulators_args, filing.date),
    OPT_TEXT("how", struct regulators_args, filing.how),
    OPT_TEXT("reference", struct regulators_args, filing.reference),
    {0},
};

static int filed_call(struct run *run)
{
    struct regulators_args *a = run->args;
    a->filing.campaign = run->name;
    return regulators_mark_filed(run->db, &a->filing, stdout, run->err, run->err_size);
}

static int filed_failed(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -EINVAL || r == -ENOENT ? EXIT_DATAERR : exit_code(r);
}

/* ---- serve (engine/cmd/serve.c) ---------------------------------------------------------- */

struct serve_args {
    const char *listen;
};

static const struct opt_row serve_options[] = {OPT_TEXT("listen", struct serve_args, listen), {0}};

/* serve_call - its own shape: the console until SIGTERM; an exit code */
static int serve_call(struct run *run)
{
    int code = config_ready(run->cli);
    return code ? code
                : serve_main(run->cli->config, ((const struct serve_args *)run->args)->listen);
}

/* ---- audit -------------------------------------------------------------------------- */

struct audit_args {
    struct audit_log_query query;
    const char *campaign;
    const char *file;
    const char *expect_head;
    const char *out;
    bool json;
};

/* audit_format_parse - --format table|csv|json of audit log. */
static int audit_format_parse(const char *arg, void *field, int tag)
{
    static const char *const names[] = {
        [AUDIT_TABLE] = "table", [AUDIT_CSV] = "csv", [AUDIT_JSON] = "json"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (names[i] && strcmp(arg, names[i]) == 0) {
            *(enum audit_format *)field = (enum audit_format)i;
            return 0;
        }
    }
    fprintf(stderr, "crier: --format must be table, csv or json, not '%s'\n", arg);
    return -1;
}

/* Every audit command takes these; each uses the ones its help names. */
static const struct opt_row audit_options[] = {
    OPT_TEXT("recipient", struct audit_args, query.recipient),
    OPT_TEXT("channel", struct audit_args, query.channel),
    OPT_TEXT("since", struct audit_args, query.since),
    OPT_TEXT("until", struct audit_args, query.until),
    OPT_PARSE("format", struct audit_args, query.format, audit_format_parse, 0),
    OPT_TEXT("campaign", struct audit_args, campaign),
    OPT_TEXT("file", struct audit_args, file),
    OPT_TEXT("expect-head", struct audit_args, expect_head),
    OPT_TEXT("out", struct audit_args, out),
    OPT_FLAG("json", struct audit_args, json),
    {0},
};
static const struct audit_args audit_defaults = {.query.format = AUDIT_TABLE};

/* failed_audit - a module's error, with the database's refusal named as such. */
static int failed_audit(struct run *run, int r)
{
    if (r == -EACCES)
        fail(run->cli, "%s (the database refused: your role may not do this)", run->err);
    else
        fail(run->cli, "%s", run->err);
    return exit_code(r);
}

/* say_flushed - what a call streamed to stdout reached it; what it was, in run->err */
static int say_flushed(struct run *run, const char *what)
{
    if (fflush(stdout) != 0) {
        fail(run->cli, "writing the %s: %s", what, strerror(errno));
        return EXIT_IOERR;
    }
    return 0;
}

static int log_call(struct run *run)
{
    struct audit_args *a = run->args;
    a->query.campaign = positional(run, 0);
    long rows = 0;
    return audit_log(run->db, &a->query, stdout, &rows, run->err, run->err_size);
}

static int log_say(struct run *run, int r)
{
    return say_flushed(run, "log");
}

static int show_check(struct run *run)
{
    if (run->argc - optind != 2) {
        fail(run->cli, "missing CAMPAIGN REF (see crier audit show --help)");
        return EXIT_USAGE;
    }
    return GO_ON;
}

/* show_call - 1 when a content did not verify (say_code) */
static int show_call(struct run *run)
{
    const struct audit_args *a = run->args;
    return audit_show(run->db, run->cli->config, positional(run, 0), positional(run, 1), a->json,
                      a->out, stdout, run->err, run->err_size);
}

/* verify_check - with --file, the export is verified here, with no database */
static int verify_check(struct run *run)
{
    const struct audit_args *a = run->args;
    /* a progress line on a terminal; never in JSON or a pipe */
    seal_progress(isatty(STDERR_FILENO) && !a->json);
    if (a->file == NULL)
        return GO_ON;
    if (a->campaign) {
        fail(run->cli, "--campaign and --file: an export is verified whole");
        return EXIT_USAGE;
    }
    int r = seal_verify_file(a->file, a->expect_head, a->json, stdout, run->err, run->err_size);
    if (r < 0) {
        fail(run->cli, "%s", run->err);
        return r == -EINVAL ? EXIT_DATAERR : exit_code(r);
    }
    return r;
}

/* the error of a seal call: its own word for an unknown campaign, else the database's */
static void seal_error(struct run *run, int r)
{
    snprintf(run->err, run->err_size, "%s", r == -ENOENT ? "no such campaign" : run->db->error);
}

static int verify_call(struct run *run)
{
    const struct audit_args *a = run->args;
    int r = seal_verify(run->db, a->campaign, a->expect_head, a->json, stdout);
    if (r < 0)
        seal_error(run, r);
    return r;
}

static int head_call(struct run *run)
{
    const struct audit_args *a = run->args;
    int r = seal_head(run->db, a->campaign, a->json, stdout);
    seal_error(run, r);
    return r;
}

static int export_check(struct run *run)
{
    if (((const struct audit_args *)run->args)->out == NULL) {
        fail(run->cli, "missing --out FILE.jsonl (see crier audit export --help)");
        return EXIT_USAGE;
    }
    return GO_ON;
}

/* export_call - its own shape: written beside its name and renamed when complete, never a
 * partial export; an exit code */
static int export_call(struct run *run)
{
    const struct audit_args *a = run->args;
    char *tmp = xasprintf("%s.tmp", a->out);
    FILE *out = fopen(tmp, "w");
    if (out == NULL) {
        fail(run->cli, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return EXIT_IOERR;
    }
    long rows = 0;
    seal_progress(isatty(STDERR_FILENO) && !a->json);
    int r = seal_export(run->db, a->campaign, out, &rows);
    seal_error(run, r);
    /* ferror: stdio drops a buffer it could not write (a full disk), and a later flush
     * that succeeds does not say so; the file would lack those rows */
    bool written = r == 0 && fflush(out) == 0 && !ferror(out) && fsync(fileno(out)) == 0;
    if (fclose(out) != 0)
        written = false;
    if (r == 0 && written && rename(tmp, a->out) == 0) {
        free(tmp);
        if (a->json)
            json_out(stdout, json_pack("{s:s, s:I}", "file", a->out, "rows", (json_int_t)rows));
        else
            fprintf(stderr, "crier: exported %ld log rows to %s\n", rows, a->out);
        return 0;
    }
    int saved = errno;
    unlink(tmp);
    free(tmp);
    if (r < 0)
        return failed_audit(run, r);
    fail(run->cli, "%s: %s", a->out, strerror(saved));
    return EXIT_IOERR;
}

static int seal_call(struct run *run)
{
    const struct crier_config *config = run->cli->config;
    int r = seal_run(run->db, SEAL_WAIT, config->audit.block_rows,
                     config->audit.seal_lock_timeout_ms, &run->out.n[0], &run->out.n[1]);
    snprintf(run->err, run->err_size, "%s",
             r == -EAGAIN ? "log writers did not finish in time: try again" : run->db->error);
    return r;
}

static int seal_say(struct run *run, int r)
{
    long rows = run->out.n[0], blocks = run->out.n[1];
    if (((const struct audit_args *)run->args)->json)
        json_out(stdout,
                 json_pack("{s:I, s:I}", "rows", (json_int_t)rows, "blocks", (json_int_t)blocks));
    else
        printf("sealed %ld log rows in %ld blocks\n", rows, blocks);
    return 0;
}

/* ---- reaching the unreached (docs/unreached.md) ------------------------------------------ */

struct unreached_args {
    struct amend_options amend;
    struct find_query find;
    int keys;
    const char *channel;
    enum unreached_format format;
};

/* unreached_key - --ref, --email, --fax, --name or --postal: what audit find looks up
 * (its field is the whole struct unreached_args, which counts them). */
static int unreached_key(const char *arg, void *field, int tag)
{
    struct unreached_args *a = field;
    a->find.key = (enum find_key)tag;
    a->find.value = arg;
    a->keys++;
    return 0;
}

/* unreached_format_parse - --format csv|json of audit unreached. */
static int unreached_format_parse(const char *arg, void *field, int tag)
{
    if (strcmp(arg, "csv") == 0 || strcmp(arg, "json") == 0) {
        *(enum unreached_format *)field = arg[0] == 'c' ? UNREACHED_CSV : UNREACHED_JSON;
        return 0;
    }
    fprintf(stderr, "crier: --format must be csv or json, not '%s'\n", arg);
    return -1;
}

static const struct opt_row unreached_options[] = {
    OPT_WHOLE("ref", unreached_key, FIND_REF),
    OPT_WHOLE("email", unreached_key, FIND_EMAIL),
    OPT_WHOLE("fax", unreached_key, FIND_FAX),
    OPT_WHOLE("name", unreached_key, FIND_NAME),
    OPT_WHOLE("postal", unreached_key, FIND_POSTAL),
    OPT_FLAG("json", struct unreached_args, find.json),
    OPT_TEXT("csv", struct unreached_args, amend.csv_path),
    OPT_TEXT("reject-file", struct unreached_args, amend.reject_path),
    OPT_TEXT("reason", struct unreached_args, amend.reason),
    OPT_FLAG("resend", struct unreached_args, amend.resend),
    OPT_TEXT("channel", struct unreached_args, channel),
    OPT_PARSE("format", struct unreached_args, format, unreached_format_parse, 0),
    {0},
};
static const struct unreached_args unreached_defaults = {.format = UNREACHED_CSV};

/* unreached_count - exactly min..max positional arguments; GO_ON, or EXIT_USAGE (said) */
static int unreached_count(struct run *run, int min, int max)
{
    int n = run->argc - optind;
    if (n < min || n > max) {
        fail(run->cli, "%s (see crier %s --help)",
             n < min ? "missing arguments" : "too many arguments", run->cli->command);
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int amend_check(struct run *run)
{
    struct unreached_args *a = run->args;
    int code = unreached_count(run, 1, 1);
    if (code != GO_ON)
        return code;
    if (a->amend.csv_path == NULL || a->amend.reason == NULL) {
        fail(run->cli, "--csv FILE and --reason TEXT are required");
        return EXIT_USAGE;
    }
    if (access(a->amend.csv_path, R_OK) != 0) {
        fail(run->cli, "%s: %s", a->amend.csv_path, strerror(errno));
        return EXIT_NOINPUT;
    }
    a->amend.campaign = positional(run, 0);
    return GO_ON;
}

static int amend_call(struct run *run)
{
    struct unreached_args *a = run->args;
    a->amend.actor = run->who;
    a->amend.progress = isatty(STDERR_FILENO) && !a->find.json;
    return amend_apply(run->db, run->cli->config, &a->amend, stderr, &run->out.amend, run->err,
                       run->err_size);
}

static int amend_failed(struct run *run, int r)
{
    const struct unreached_args *a = run->args;
    fail(run->cli, "%s", run->err);
    if (a->amend.reject_path && run->out.amend.rejected)
        fprintf(stderr, "crier: rejected rows: %s\n", a->amend.reject_path);
    return r == -EACCES ? EXIT_NOPERM : exit_code(r);
}

static int amend_say(struct run *run, int r)
{
    const struct unreached_args *a = run->args;
    const struct amend_result *result = &run->out.amend;
    if (a->find.json) {
        json_out(stdout,
                 json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "campaign",
                           a->amend.campaign, "rows", (json_int_t)result->rows, "amended",
                           (json_int_t)result->amended, "unchanged", (json_int_t)result->unchanged,
                           "requeued", (json_int_t)result->requeued, "reached",
                           (json_int_t)result->reached, "in_flight", (json_int_t)result->in_flight,
                           "no_channel", (json_int_t)result->no_channel));
        return 0;
    }
    printf("campaign %s: %ld rows, %ld amended, %ld unchanged; %ld queued again, %ld already "
           "reached (left alone), %ld in flight (left to that attempt), %ld still without a "
           "usable channel\n",
           a->amend.campaign, result->rows, result->amended, result->unchanged, result->requeued,
           result->reached, result->in_flight, result->no_channel);
    return 0;
}

static int resend_check(struct run *run)
{
    const struct unreached_args *a = run->args;
    int code = unreached_count(run, 2, 2);
    if (code != GO_ON)
        return code;
    if (a->channel == NULL || a->amend.reason == NULL) {
        fail(run->cli, "--channel C and --reason TEXT are required");
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int resend_call(struct run *run)
{
    const struct unreached_args *a = run->args;
    return notice_resend(run->db, positional(run, 0), positional(run, 1), a->channel,
                         a->amend.reason, run->who, run->err, run->err_size);
}

static int resend_failed(struct run *run, int r)
{
    fail(run->cli, "%s", run->err);
    return r == -EBUSY ? EXIT_TEMPFAIL : exit_code(r);
}

static int resend_say(struct run *run, int r)
{
    const struct unreached_args *a = run->args;
    const char *campaign = positional(run, 0), *ref = positional(run, 1);
    if (a->find.json)
        json_out(stdout, json_pack("{s:s, s:s, s:s}", "campaign", campaign, "ref", ref, "channel",
                                   a->channel));
    else
        printf("%s in %s: another copy queued on %s\n", ref, campaign, a->channel);
    return 0;
}

static int find_check(struct run *run)
{
    struct unreached_args *a = run->args;
    int code = unreached_count(run, 0, 1);
    if (code != GO_ON)
        return code;
    if (a->keys != 1) {
        fail(run->cli, "give exactly one of --ref, --email, --fax, --name, --postal");
        return EXIT_USAGE;
    }
    a->find.campaign = positional(run, 0);
    return GO_ON;
}

static int find_call(struct run *run)
{
    struct unreached_args *a = run->args;
    return audit_find(run->db, &a->find, stdout, &run->out.n[0], run->err, run->err_size);
}

/* find_say - exit 1 when nobody matched */
static int find_say(struct run *run, int r)
{
    if (!((const struct unreached_args *)run->args)->find.json)
        fprintf(stderr, "crier: %ld found\n", run->out.n[0]);
    return run->out.n[0] ? 0 : 1;
}

static int unreached_check(struct run *run)
{
    return unreached_count(run, 1, 1);
}

static int unreached_call(struct run *run)
{
    const struct unreached_args *a = run->args;
    return audit_unreached(run->db, positional(run, 0), a->format, stdout, &run->out.n[0], run->err,
                           run->err_size);
}

static int unreached_say(struct run *run, int r)
{
    int code = say_flushed(run, "list");
    if (code == 0)
        fprintf(stderr, "crier: %ld people not reached\n", run->out.n[0]);
    return code;
}

/* ---- substitute notice ------------------------------------------------------------------ */

struct substitute_args {
    struct substitute_options options;
    struct substitute_act act;
    const char *out;
};

static const struct opt_row substitute_options[] = {
    OPT_TEXT("framework", struct substitute_args, options.frameworks),
    OPT_TEXT("out", struct substitute_args, out),
    OPT_TEXT("url", struct substitute_args, act.url),
    OPT_TEXT("from", struct substitute_args, act.from),
    OPT_TEXT("until", struct substitute_args, act.until),
    OPT_TEXT("outlet", struct substitute_args, act.outlet),
    OPT_TEXT("date", struct substitute_args, act.date),
    OPT_TEXT("state", struct substitute_args, act.jurisdiction),
    {0},
};

/* substitute_ready - what every substitute command needs from its configuration */
static int substitute_ready(struct run *run)
{
    struct substitute_args *a = run->args;
    a->options.campaign = a->act.campaign = run->name;
    int code = config_ready(run->cli);
    if (code)
        return code;
    a->options.rules_path = run->cli->config->report.deadlines;
    a->options.postage = run->cli->config->substitute.postage_per_letter;
    a->options.print = run->cli->config->substitute.print_per_letter;
    return GO_ON;
}

static int assess_check(struct run *run)
{
    const struct substitute_args *a = run->args;
    int code = substitute_ready(run);
    if (code != GO_ON)
        return code;
    if (a->out || a->act.url || a->act.outlet || a->act.from || a->act.until || a->act.date ||
        a->act.jurisdiction) {
        fail(run->cli, "crier substitute CAMPAIGN takes only --framework and --json");
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int assess_call(struct run *run)
{
    const struct substitute_args *a = run->args;
    return substitute_assess(run->db, &a->options, &run->out.json, run->err, run->err_size);
}

static int assess_say(struct run *run, int r)
{
    if (run->cli->json)
        return say_json(run, r);
    substitute_print(run->out.json, stdout);
    json_decref(run->out.json);
    return 0;
}

static int write_check(struct run *run)
{
    int code = substitute_ready(run);
    return code != GO_ON ? code
                         : need(run, ((const struct substitute_args *)run->args)->out, "--out DIR");
}

static int write_call(struct run *run)
{
    const struct substitute_args *a = run->args;
    return substitute_write(run->db, run->cli->config, &a->options, a->out, run->who, start_check,
                            run->cli, &run->out.json, run->err, run->err_size);
}

static int write_say(struct run *run, int r)
{
    json_t *result = run->out.json;
    if (run->cli->json)
        return say_json(run, r);
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(result, "files"), i, f)
        printf("%s  %s\n", json_string_value(json_object_get(f, "sha256")),
               json_string_value(json_object_get(f, "path")));
    printf("substitute email: %lld more people queued in campaign %s (crier run sends it)\n",
           (long long)json_integer_value(json_object_get(result, "email_queued")),
           json_string_value(json_object_get(result, "email_campaign")));
    json_decref(result);
    return 0;
}

/* act_check - posted (tag 1) or media (tag 0): the options each requires */
static int act_check(struct run *run)
{
    const struct substitute_args *a = run->args;
    int code = substitute_ready(run);
    if (code != GO_ON)
        return code;
    bool posted = run->cli->current->tag;
    if (posted ? a->act.url == NULL || a->act.from == NULL || a->act.until == NULL
               : a->act.outlet == NULL || a->act.date == NULL || a->act.jurisdiction == NULL) {
        fail(run->cli, posted ? "--url, --from and --until are required"
                              : "--outlet, --date and --state are required");
        return EXIT_USAGE;
    }
    return GO_ON;
}

static int act_call(struct run *run)
{
    const struct substitute_args *a = run->args;
    return run->cli->current->tag ? substitute_posted(run->db, &a->act, run->err, run->err_size)
                                  : substitute_media(run->db, &a->act, run->err, run->err_size);
}

static int act_say(struct run *run, int r)
{
    const struct substitute_act *act = &((const struct substitute_args *)run->args)->act;
    bool posted = run->cli->current->tag;
    if (run->cli->json)
        json_out(stdout, posted ? json_pack("{s:s, s:s, s:s, s:s, s:s}", "campaign", act->campaign,
                                            "recorded", "posted", "url", act->url, "from",
                                            act->from, "until", act->until)
                                : json_pack("{s:s, s:s, s:s, s:s, s:s}", "campaign", act->campaign,
                                            "recorded", "media", "outlet", act->outlet, "date",
                                            act->date, "state", act->jurisdiction));
    else
        printf("%s: %s recorded (logged)\n", act->campaign,
               posted ? "website posting" : "media notice");
    return 0;
}

/* ---- the table --------------------------------------------------------------------- */

/* The argument structs, options and steps that several rows share. */
#define UNREACHED_ARGS                                                                             \
    ARGS(struct unreached_args, unreached_options), .defaults = &unreached_defaults, .max = ANY_ARGS
#define SUBSTITUTE_ARGS ARGS(struct substitute_args, substitute_options), .what = "CAMPAIGN"
#define BATCH_ARGS                                                                                 \
    ARGS(struct batch_args, batch_options), .check = batch_check, .failed = batch_failed,          \
                                            .say = say_json
#define BATCH_NUMBER "BATCH (crier batch list NAME)"
#define AUDIT_ARGS   ARGS(struct audit_args, audit_options), .defaults = &audit_defaults

static const struct command commands[] = {
    {"db", "migrate", "db migrate [--json]",
     "Create crier's schema in the database, or bring it up to date. Running it again is a\n"
     "no-op. The database is database.conninfo in the configuration, else libpq's PG*\n"
     "environment variables.\n"
     "  --json  one JSON object: from, to (schema versions), migrated (true or false)\n",
     .db = DB_OPEN, .call = migrate_call, .failed = migrate_failed, .say = migrate_say},
    {"db", "roles", "db roles [--json]",
     "What db migrate needs of the role that runs it, and whether the connected role has it:\n"
     "CREATE on the database (or to own schema crier), and CREATEROLE the first time in a\n"
     "cluster, when it creates crier_operator, crier_legal and crier_auditor. Then each of\n"
     "those roles: whether it exists, what it may do, its members. Exit 1 when db migrate\n"
     "could not run as this role.\n"
     "  --json  one JSON object: user, superuser, createrole, create_on_database,\n"
     "          schema_owner, migrate_can_run, migrate_why_not, user_add_can_run, roles\n",
     .db = DB_OPEN, .call = roles_call, .say = roles_say},
    {"user", "add", "user add NAME --role operator|legal|auditor [--password-file FILE]",
     "Create a login in one of crier's roles (CREATE ROLE NAME LOGIN IN ROLE crier_ROLE);\n"
     "needs CREATEROLE (crier db roles). The password is hashed here (SCRAM): the server\n"
     "never sees it in clear. Exit 65 when NAME exists, 77 when the database refuses.\n"
     "  --role ROLE          operator (runs campaigns), legal (holds) or auditor (reads)\n"
     "  --password-file FILE its first line is the password; FILE must be closed to group\n"
     "                       and others (0600). Without it, asked twice on the terminal.\n"
     "                       Never on the command line.\n",
     .db = DB_OPEN, ARGS(struct user_args, user_options), .what = "NAME (the new login)",
     .check = user_check, .call = user_call, .failed = user_failed, .say = user_say},
    {"config", "check", "config check [--connect] [FILE]",
     "Check a configuration file and print FILE:LINE:COL: message for every problem,\n"
     "then the files the channels need: the mail spool must exist, be writable and be\n"
     "closed to others (0700 or 0750); a file holding a secret that its group or others\n"
     "can read is refused, naming it and its mode, unless secrets.readable_by allows them.\n"
     "Exit 0 when it is valid, 78 when it is not.\n"
     "  --connect  also try each service it names, one line each: the database (and its\n"
     "             schema version), the SMTP relay (EHLO, STARTTLS as configured, AUTH;\n"
     "             nothing is sent), the fax gateway (an authenticated GET). Exit 69 when\n"
     "             one fails.\n",
     .db = DB_NONE, ARGS(struct config_check_args, config_check_options), .max = ANY_ARGS,
     .call = config_check_call, .say = say_code},
    {"campaign", "create",
     "campaign create NAME --incident REF [--policy email,fax,mail] [--templates DIR]\n"
     "                            [--meta FILE.yaml] [--json]",
     "Create a campaign in draft.\n"
     "  --incident REF   the incident it notifies about (required)\n"
     "  --policy LIST    channels in order of preference (default email,fax,mail): a notice\n"
     "                   starts on the first channel that can reach the person and falls\n"
     "                   back to the next on a permanent failure\n"
     "  --templates DIR  the notice templates\n"
     "  --meta FILE      incident metadata (a YAML mapping) kept with the campaign\n"
     "  --json           one JSON object: campaign, state, policy\n",
     .db = DB_SCHEMA, .actor = true, ARGS(struct create_args, create_options),
     .what = "campaign NAME", .check = create_check, .call = create_call, .say = create_say},
    {"campaign", "load",
     "campaign load NAME (--csv FILE | --table SCHEMA.TABLE | --query SQL)\n"
     "                          [--reject-file FILE] [--json]",
     "Load the affected individuals into a campaign, as a snapshot, in one transaction:\n"
     "every accepted row, or on any error nothing at all.\n"
     "Columns: ref, name, email, fax, address1, address2, city, region, postal_code,\n"
     "country (renamed with import.columns); any other column is kept for the templates.\n"
     "  --csv FILE          a CSV file with a header line (UTF-8, BOM allowed)\n"
     "  --table S.T         every row of a table\n"
     "  --query SQL         the rows of a query, run with your own database role\n"
     "  --reject-file FILE  write rejected rows and dropped contacts here, with reasons\n"
     "  --json              one JSON object: campaign, load, rows, loaded, rejected,\n"
     "                      contacts_dropped, undeliverable, reject_file\n",
     .db = DB_SCHEMA, .actor = true, ARGS(struct import_options, load_options),
     .what = "campaign NAME", .check = load_check, .call = load_call, .failed = load_failed,
     .say = load_say},
    {"campaign", "amend",
     "campaign amend NAME --csv FILE --reason TEXT [--reject-file FILE] [--resend] [--json]",
     "Correct the contacts of people already in the campaign, matched by ref: one\n"
     "transaction, each row validated as a load validates it. A column the file has replaces\n"
     "the value (empty clears it), a column it lacks keeps it. The loaded snapshot is kept:\n"
     "each correction is a new version, logged with the old and new values, who and why.\n"
     "A person not yet reached is queued again on the first channel the new contacts allow;\n"
     "one being sent or printed is left to that attempt. Any rejected row (unknown ref, a\n"
     "ref twice, an invalid contact) applies nothing and exits 65. docs/unreached.md.\n"
     "  --csv FILE          the corrections: a ref column and the contact columns to change\n"
     "  --reason TEXT       why (required), logged with each change\n"
     "  --reject-file FILE  every rejected row with its line and reason\n"
     "  --resend            also send again to people already reached\n"
     "  --json              one JSON object: campaign, rows, amended, unchanged, requeued,\n"
     "                      reached, in_flight, no_channel\n",
     .db = DB_SCHEMA, .actor = true, UNREACHED_ARGS, .check = amend_check, .call = amend_call,
     .failed = amend_failed, .say = amend_say},
    {"campaign", "proof", "campaign proof NAME --out DIR [--count N]",
     "Render sample notices for legal review, sending nothing: for each jurisdiction\n"
     "(region) in the list, up to N people (default 1), every channel of the policy that\n"
     "can reach them: DIR/REGION-REF-email.eml (the exact message),\n"
     "DIR/REGION-REF-letter.pdf (the letter as printed), DIR/REGION-REF-fax.pdf (the\n"
     "fax as transmitted) and DIR/REGION-REF-letter.md (the letter body).\n",
     .db = DB_SCHEMA, ARGS(struct proof_args, proof_options), .defaults = &proof_defaults,
     .what = "campaign NAME", .check = proof_check, .call = proof_call, .failed = proof_failed,
     .say = proof_say},
    {"campaign", "start", "campaign start NAME [--json]",
     "Start a draft campaign: `crier run` begins sending its notices. Warns about each\n"
     "channel of its policy that no live `crier run` serves: those notices wait.\n"
     "  --json  one JSON object: campaign, done (\"started\")\n",
     .db = DB_SCHEMA, .actor = true, .tag = CAMPAIGN_START, .what = "campaign NAME",
     .call = action_call, .failed = failed_data, .say = action_say},
    {"campaign", "pause", "campaign pause NAME [--json]",
     "Pause a running campaign: nothing more is claimed until it is resumed. Notices\n"
     "already handed to a channel finish.\n"
     "  --json  one JSON object: campaign, done (\"paused\")\n",
     .db = DB_SCHEMA, .actor = true, .tag = CAMPAIGN_PAUSE, .what = "campaign NAME",
     .call = action_call, .failed = failed_data, .say = action_say},
    {"campaign", "resume", "campaign resume NAME [--json]",
     "Resume a paused campaign.\n"
     "  --json  one JSON object: campaign, done (\"resumed\")\n",
     .db = DB_SCHEMA, .actor = true, .tag = CAMPAIGN_RESUME, .what = "campaign NAME",
     .call = action_call, .failed = failed_data, .say = action_say},
    {"campaign", "cancel", "campaign cancel NAME [--json]",
     "Cancel a campaign: every notice not yet handed to a channel becomes cancelled.\n"
     "  --json  one JSON object: campaign, done (\"cancelled\"), cancelled_notices\n",
     .db = DB_SCHEMA, .actor = true, .tag = CAMPAIGN_CANCEL, .what = "campaign NAME",
     .call = action_call, .failed = failed_data, .say = action_say},
    {"campaign", "list", "campaign list [--json]", "List the campaigns.\n", .db = DB_SCHEMA,
     ARGS(struct flag_args, list_options), .call = list_call},
    {"campaign", "reroute",
     "campaign reroute NAME --from CHANNEL --to CHANNEL --reason TEXT [--json]",
     "Move the notices waiting on one channel of a campaign to another channel of its\n"
     "policy: every notice ready on --from that --to can reach (notices in flight are not\n"
     "touched). crier never does this by itself: a notice whose channel no live worker\n"
     "serves waits (crier status says since when). Each move is a dispatch-log row naming\n"
     "you and the reason; the campaign gets one row for the command. One transaction.\n"
     "  --from CHANNEL  the channel the notices wait on\n"
     "  --to CHANNEL    where they go (it must be in the campaign's policy)\n"
     "  --reason TEXT   why (required), e.g. the email relay is blocklisted\n"
     "  --json          one JSON object: campaign, from, to, moved, left (on --from)\n",
     .db = DB_SCHEMA, .actor = true, ARGS(struct reroute_args, reroute_options), .what = "NAME",
     .check = reroute_check, .call = reroute_call, .failed = failed_refused, .say = reroute_say},
    {"regulators", "mark-filed",
     "regulators mark-filed CAMPAIGN --jurisdiction CODE --regulator NAME --date YYYY-MM-DD\n"
     "                                --how portal|mail|email|fax|other --reference TEXT",
     "Record that a regulator notice was filed (logged in the dispatch log).\n"
     "  --jurisdiction CODE  as in the packet: CA, HIPAA, GDPR\n"
     "  --regulator NAME     as in the packet: \"Attorney General\"\n"
     "  --date YYYY-MM-DD    the day it was filed\n"
     "  --how WAY            portal, mail, email, fax or other\n"
     "  --reference TEXT     the regulator's confirmation number, or the tracking number\n",
     .db = DB_SCHEMA, ARGS(struct regulators_args, filed_options), .what = "CAMPAIGN",
     .call = filed_call, .failed = filed_failed},
    {"regulators", NULL,
     "regulators CAMPAIGN --out DIR [--discovered YYYY-MM-DD] [--framework LIST]",
     "Write the regulator notice packet: a PDF letter for each regulator notice the rules\n"
     "table says is due (docs/jurisdictions.md), counts.csv with the figures regulators'\n"
     "forms ask for, and under HIPAA hhs-breach-portal.csv. Each file is logged in the\n"
     "dispatch log with its SHA-256. Nothing is sent: file them, then mark-filed.\n"
     "  --out DIR         where to write the files (created if missing)\n"
     "  --discovered D    the discovery date, as for audit report\n"
     "  --framework LIST  frameworks that apply, as for audit report\n",
     .db = DB_SCHEMA, ARGS(struct regulators_args, regulators_options), .what = "CAMPAIGN",
     .check = regulators_check, .call = regulators_call, .failed = failed_campaign},
    {"substitute", "write", "substitute write CAMPAIGN --out DIR [--framework LIST] [--json]",
     "Where the rules table requires substitute notice (crier substitute CAMPAIGN), write the\n"
     "set and queue the substitute email (docs/unreached.md): DIR/posting.html, the website\n"
     "posting (one self-contained page); DIR/media-XX.txt, the notice for each jurisdiction's\n"
     "media; and the email, once, to everyone not reached who has an address, as the campaign\n"
     "CAMPAIGN.substitute that crier run sends. Every file is logged with its SHA-256. Under\n"
     "HIPAA the campaign meta must have toll_free_number. Run again, it queues only people\n"
     "not yet queued. Exit 65 when nothing is required.\n"
     "  --out DIR         where to write the files (created if missing)\n"
     "  --framework LIST  frameworks that apply (default: the campaign meta's frameworks)\n"
     "  --json            one JSON object: files, their SHA-256, the email campaign, queued\n",
     .db = DB_SCHEMA, .actor = true, SUBSTITUTE_ARGS, .check = write_check, .call = write_call,
     .failed = failed_campaign, .say = write_say},
    {"substitute", "posted",
     "substitute posted CAMPAIGN --url URL --from YYYY-MM-DD --until YYYY-MM-DD [--json]",
     "Record that the substitute-notice posting is on the website (logged; operators only).\n"
     "  --url URL       where it is posted\n"
     "  --from DATE     the day it went up\n"
     "  --until DATE    the last day it stays up (HIPAA: 90 days at least)\n"
     "  --json          one JSON object: what was recorded\n",
     .db = DB_SCHEMA, SUBSTITUTE_ARGS, .tag = 1, .check = act_check, .call = act_call,
     .failed = failed_campaign, .say = act_say},
    {"substitute", "media",
     "substitute media CAMPAIGN --outlet NAME --date YYYY-MM-DD --state XX [--json]",
     "Record that a media notice ran (logged; operators only).\n"
     "  --outlet NAME   the newspaper, station or site\n"
     "  --date DATE     the day it ran\n"
     "  --state XX      the jurisdiction it was for (CA, DC, PR)\n"
     "  --json          one JSON object: what was recorded\n",
     .db = DB_SCHEMA, SUBSTITUTE_ARGS, .tag = 0, .check = act_check, .call = act_call,
     .failed = failed_campaign, .say = act_say},
    {"substitute", NULL, "substitute CAMPAIGN [--framework LIST] [--json]",
     "Whether substitute notice is required, per jurisdiction on its residents "
     "(docs/unreached.md):\n"
     "the estimated cost of the letters still to send (substitute.postage_per_letter and\n"
     "print_per_letter), the number of residents and those without sufficient contact,\n"
     "against the rules table's thresholds; each declared framework (HIPAA) on the whole\n"
     "campaign; and what was done (posting, media, email). Not legal advice.\n"
     "  --framework LIST  frameworks that apply (default: the campaign meta's frameworks)\n"
     "  --json            one JSON object instead of text\n",
     .db = DB_SCHEMA, SUBSTITUTE_ARGS, .check = assess_check, .call = assess_call,
     .failed = failed_campaign, .say = assess_say},
    {"run", NULL, "run [--until-idle] [--metrics HOST:PORT]",
     "Dispatch notices of running campaigns through the enabled channels. A notice whose\n"
     "channel no live worker serves waits for one (crier campaign reroute moves it); run\n"
     "warns at start about each running campaign's channel it does not serve. A channel\n"
     "that cannot open (a bad secret, a missing spool) is a start-up error (exit 78).\n"
     "SIGTERM or SIGINT: finish and record the batches in flight, then exit.\n"
     "SIGHUP: read the configuration again; if it is good, finish the batches in flight\n"
     "and restart the lanes with it; if not, say why and run on with the old one.\n"
     "Under systemd (Type=notify) it reports READY, STATUS and the watchdog.\n"
     "  --until-idle         exit once no running campaign has a notice ready or in flight\n"
     "  --metrics HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics (default:\n"
     "                       metrics.listen in the configuration, else none): per\n"
     "                       channel notices claimed, sent, failed, retried, lane busy time,\n"
     "                       claim and record latency; in flight; database reconnects;\n"
     "                       notices waiting for a channel nobody serves; each running\n"
     "                       campaign's notices by state and channel\n",
     .db = DB_NONE, ARGS(struct run_args, run_options), .call = run_call, .say = say_code},
    {"serve", NULL, "serve [--listen HOST:PORT]",
     "Serve the web console and its JSON API (docs/console.md) until SIGTERM. People log in\n"
     "with their own PostgreSQL login; what their role may not do, the database refuses.\n"
     "Plain HTTP only on loopback (behind a TLS reverse proxy), else serve.tls.cert and\n"
     "serve.tls.key.\n"
     "  --listen HOST:PORT  where to listen (default serve.listen, else 127.0.0.1:8470)\n",
     .db = DB_NONE, ARGS(struct serve_args, serve_options), .call = serve_call, .say = say_code},
    {"status", NULL, "status [NAME] [--json] [--watch]",
     "Where every notice stands, by state and by channel, and the notices that wait\n"
     "because no live worker serves their channel (\"no worker serves email since 12:01\n"
     "UTC\").\n"
     "  --json   one JSON object for NAME (an array without NAME); \"waiting\" lists the\n"
     "           waiting notices per channel; for NAME, \"progress\": the rate (the last\n"
     "           15 minutes, at most 2,000 notices), what is left, the ETA, and per day\n"
     "  --watch  refresh every 2 seconds until interrupted\n",
     .db = DB_SCHEMA, ARGS(struct flag_args, status_options), .max = 1, .call = status_call,
     .failed = failed_data},
    {"returns", "ingest", "returns ingest FILE [--campaign NAME] [--reject-file FILE] [--json]",
     "Record letters the post office brought back: FILE is a CSV with a 'ref' column and\n"
     "optional 'campaign', 'reason' and 'returned_on' columns. Each mailed letter named\n"
     "gets one 'returned' row in the dispatch log (the substitute-notice report counts\n"
     "them); ingesting the same file again records nothing new. One transaction.\n"
     "A row with a forwarding address (forward_address1, forward_address2, forward_city,\n"
     "forward_region, forward_postal_code, forward_country: the USPS label's new address)\n"
     "amends the person's address and mails the letter again, once per person, logged.\n"
     "  --campaign NAME     the campaign of rows without a 'campaign' column\n"
     "  --reject-file FILE  forwarding addresses that failed validation, with the reason\n"
     "  --json              one JSON object: rows, recorded, already, unknown, not_mailed,\n"
     "                      forwarded, forward_once, forward_rejected\n",
     .db = DB_SCHEMA, .actor = true, ARGS(struct returns_args, returns_options),
     .what = "FILE (a CSV of returned letters)", .check = returns_check, .call = returns_call,
     .failed = returns_failed, .say = returns_say},
    {"bounces", "ingest", "bounces ingest PATH [--json]",
     "Apply delivery status notifications (RFC 3464) from PATH: a message file, a Maildir\n"
     "(new/ and cur/) or an mbox. A permanent failure moves a notice still sent by email to\n"
     "the next channel of its policy; a delay is only logged; the same DSN twice changes\n"
     "nothing. Exit 66 when PATH cannot be read, 69 when the database cannot be reached.\n"
     "  --json  one JSON object: messages, permanent, delayed, unmatched, unparseable,\n"
     "          duplicate, ignored\n",
     .db = DB_SCHEMA, .actor = true, .what = "PATH (a message file, Maildir or mbox)",
     .check = bounces_check, .call = bounces_call, .failed = bounces_failed},
    {"notice", "resend",
     "notice resend CAMPAIGN REF --channel mail|email|fax --reason TEXT [--json]",
     "Send one person another copy (a paper copy they asked for, say) on a channel of the\n"
     "campaign's policy that their contacts allow. Logged as a resend, never as a retry.\n"
     "Exit 75 while their notice is queued or being sent.\n"
     "  --channel C    mail, email or fax (required)\n"
     "  --reason TEXT  why (required)\n"
     "  --json         one JSON object: campaign, ref, channel\n",
     .db = DB_SCHEMA, .actor = true, UNREACHED_ARGS, .check = resend_check, .call = resend_call,
     .failed = resend_failed, .say = resend_say},
    {"hold", "place",
     "hold place CAMPAIGN [--region XX | --recipient REF] --authority AGENCY\n"
     "                        --official NAME --case REF --form written|oral --reason TEXT\n"
     "                        [--review-by YYYY-MM-DD] [--document FILE] [--as NAME] [--json]",
     "Delay a campaign's notices at a law-enforcement agency's request: all of them (the\n"
     "default), one region's (case-insensitive), or one recipient's, including notices\n"
     "loaded later. Returns once no notice in scope is in flight, and says how many were\n"
     "handed to a channel before the hold took effect. Needs the role crier_legal.\n"
     "  --authority AGENCY    the agency that asked (\"FBI New York Field Office\")\n"
     "  --official NAME       who there asked\n"
     "  --case REF            the agency's case reference\n"
     "  --form written|oral   an oral hold lapses 30 days after it is placed unless\n"
     "                        confirmed in writing (crier hold confirm), in a campaign\n"
     "                        whose meta declares HIPAA (or with report.oral_lapse:\n"
     "                        everywhere); elsewhere it holds until lifted\n"
     "  --reason TEXT         why notice would impede the investigation\n"
     "  --review-by DATE      when to ask the agency again\n"
     "  --document FILE       the agency's request, kept with its SHA-256\n"
     "  --as NAME             the person placing it, recorded beside the database role\n"
     "  --json                one JSON object: hold, campaign, scope, form, review_by,\n"
     "                        placed_at, lapses_at, handed (the notices in flight: ref, state)\n"
     "Exit 77 when the database refuses the role, 75 when notices claimed before the hold\n"
     "are still in flight after twice queue.lease (the hold is in effect all the same).\n",
     .db = DB_SCHEMA, ARGS(struct hold_args, place_options), .what = "CAMPAIGN",
     .check = place_check, .call = place_call, .failed = failed_hold, .say = say_json,
     .err_size = 2048},
    {"hold", "lift", "hold lift HOLD --evidence TEXT [--document FILE] [--as NAME] [--json]",
     "End a hold: the agency says notice will no longer impede the investigation. Every\n"
     "notice it covered that no other active hold covers goes out, marked delayed for\n"
     "law enforcement.\n"
     "  --evidence TEXT   what the agency said, and when\n"
     "  --document FILE   its letter, kept with its SHA-256\n"
     "  --as NAME         the person lifting it, recorded beside the database role\n"
     "  --json            one JSON object: hold, campaign, scope, lifted_at, released\n",
     .db = DB_SCHEMA, ARGS(struct hold_args, lift_options), .what = HOLD_NUMBER,
     .check = lift_check, .call = lift_call, .failed = failed_hold, .say = say_json},
    {"hold", "confirm", "hold confirm HOLD --written --document FILE [--as NAME] [--json]",
     "Record the agency's written confirmation of an oral hold, within 30 days of its\n"
     "placement where the lapse applies (HIPAA), at any time before its lift elsewhere;\n"
     "it then no longer lapses.\n"
     "  --written         the confirmation is in writing (required)\n"
     "  --document FILE   the written statement, kept with its SHA-256 (required)\n"
     "  --as NAME         the person recording it\n"
     "  --json            one JSON object: hold, campaign, confirmed_at, document, bytes,\n"
     "                    sha256\n",
     .db = DB_SCHEMA, ARGS(struct hold_args, confirm_options), .what = HOLD_NUMBER,
     .check = confirm_check, .call = confirm_call, .failed = failed_hold, .say = say_json},
    {"hold", "list", "hold list [CAMPAIGN] [--active] [--json]",
     "List the holds, with lapsed and past-review ones flagged.\n"
     "  --active  only holds that hold notices now\n"
     "  --json    a JSON array\n",
     .db = DB_SCHEMA, ARGS(struct hold_args, hold_list_options), .max = 1, .call = hold_list_call,
     .failed = failed_hold},
    {"hold", "show", "hold show HOLD [--json]",
     "Everything recorded about a hold, and the notices it covers.\n", .db = DB_SCHEMA,
     ARGS(struct hold_args, hold_show_options), .what = HOLD_NUMBER, .call = hold_show_call,
     .failed = failed_hold},
    {"hold", "check", "hold check [--mail-to ADDRESS]... [--json]",
     "Exit 1, naming them, if any hold not lifted has lapsed (oral, not confirmed in\n"
     "writing within 30 days) or passed its review date; exit 0 otherwise.\n"
     "  --mail-to ADDRESS  also mail the list there (legal), from channels.email.from\n"
     "                     through the configured SMTP relay; exit 69 if that fails\n"
     "  --json             a JSON array of the holds: hold, campaign, scope, lapsed,\n"
     "                     past_review, holds_now, lapsed_at, review_by (exit 1 all the same)\n",
     .db = DB_SCHEMA, ARGS(struct hold_check_args, hold_check_options), .call = hold_check_call,
     .say = hold_check_say},
    {"batch", "list", "batch list NAME [--json]",
     "The print batches of a campaign: letters, pages, mailed, voided, and where their files\n"
     "are. First settles the spool: pending files of recorded batches become final, those\n"
     "of batches the database never recorded are renamed *.orphan (never to be printed).\n"
     "  --json  a JSON array\n",
     .db = DB_SCHEMA, BATCH_ARGS, .what = "NAME", .call = batch_list_call},
    {"batch", "show", "batch show BATCH [--json]",
     "One print batch: its PDF's SHA-256 and every letter in print order.\n"
     "  --json  one JSON object, the letters in letters_in_order\n",
     .db = DB_SCHEMA, BATCH_ARGS, .what = BATCH_NUMBER, .call = batch_show_call},
    {"batch", "mark-mailed", "batch mark-mailed BATCH --date YYYY-MM-DD [--evidence TEXT] [--json]",
     "The post office accepted the batch: its letters become mailed (logged).\n"
     "  --date YYYY-MM-DD  the day of acceptance (required)\n"
     "  --evidence TEXT    e.g. the PS Form 3602/3600 or receipt number\n"
     "  --json             one JSON object: batch, mailed, date, evidence\n",
     .db = DB_SCHEMA, BATCH_ARGS, .what = BATCH_NUMBER, .call = batch_mark_call},
    {"batch", "void", "batch void BATCH --reason TEXT [--json]",
     "A spoiled print run: its letters go back to ready (logged) and are printed again in a\n"
     "new batch; its files are renamed *.void.\n"
     "  --reason TEXT  why (required)\n"
     "  --json         one JSON object: batch, voided, reason, files_renamed\n",
     .db = DB_SCHEMA, BATCH_ARGS, .what = BATCH_NUMBER, .call = batch_void_call},
    {"audit", "log",
     "audit log [CAMPAIGN] [--recipient REF] [--channel C] [--since T] [--until T]\n"
     "                    [--format table|csv|json]",
     "The dispatch log, oldest first, streamed (any size, flat memory).\n"
     "  --recipient REF  one person's rows (needs CAMPAIGN)\n"
     "  --channel C      rows of one channel (used it, or moved to it)\n"
     "  --since T        rows at or after T (2026-11-01, 2026-11-01T12:00Z)\n"
     "  --until T        rows before T\n"
     "  --format F       table (default), csv (with a header line), json (one object per line)\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .max = 1, .call = log_call, .failed = failed_audit,
     .say = log_say},
    {"audit", "show", "audit show CAMPAIGN REF [--json] [--out DIR]",
     "One person's whole history: the recipient as loaded, every attempt, reply, fallback,\n"
     "bounce, the holds that delayed them and for how long, the batch and mailing, and for\n"
     "every message sent a re-render from the templates copied at start and the recorded\n"
     "render time, compared with the SHA-256 recorded when it was sent. Exit 1 when a\n"
     "content does not verify.\n"
     "  --json     one JSON object\n"
     "  --out DIR  write each re-rendered content to DIR (email .eml, fax .pdf, letter .md,\n"
     "             and the letter as printed alone, .pdf)\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .max = 2, .check = show_check, .call = show_call,
     .failed = failed_audit, .say = say_code},
    {"audit", "find",
     "audit find [CAMPAIGN] (--ref R | --email E | --fax F | --name TEXT | --postal ZIP)\n"
     "                    [--json]",
     "Find people by ref, by a contact they have or had (normalised as a load normalises\n"
     "it, then matched exactly; a 5-digit ZIP also finds its ZIP+4), or by the beginning of\n"
     "their name or last name (any case). Each is an index probe, whatever the campaign's\n"
     "size. Shows their current contacts, their notice and which versions matched. Exit 1\n"
     "when nobody matches, 65 when the value cannot be a stored contact.\n"
     "  --json  a JSON array\n",
     .db = DB_SCHEMA, UNREACHED_ARGS, .check = find_check, .call = find_call,
     .failed = failed_audit, .say = find_say},
    {"audit", "unreached", "audit unreached CAMPAIGN [--format csv|json]",
     "Everyone not reached: undeliverable (no channel of the policy could reach them, or\n"
     "none could be used), and letters returned; with the reason, the last attempt and the\n"
     "current contacts. The whole campaign, streamed (flat memory at any size).\n"
     "  --format F  csv (default: a header line; values a spreadsheet would run as a\n"
     "              formula get a leading apostrophe) or json (one object per line)\n",
     .db = DB_SCHEMA, UNREACHED_ARGS, .check = unreached_check, .call = unreached_call,
     .failed = failed_audit, .say = unreached_say},
    {"audit", "verify",
     "audit verify [--campaign NAME] [--file FILE.jsonl] [--expect-head SHA256] [--json]",
     "Recompute the sealed log's hash chains and report, per campaign, intact (with the\n"
     "head hash) or the first broken block and row. Exit 0 intact, 1 broken.\n"
     "  --campaign NAME       one campaign's chain\n"
     "  --file FILE.jsonl     verify an export (crier audit export) with no database\n"
     "  --expect-head SHA256  a head hash handed out earlier must be in the chain\n"
     "  --json                one JSON object\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .check = verify_check, .call = verify_call,
     .failed = failed_audit, .say = say_code},
    {"audit", "head", "audit head [--campaign NAME] [--json]",
     "The newest sealed block of each campaign's chain and its SHA-256: hand it to counsel\n"
     "or have it timestamped outside the system; `audit verify --expect-head` checks it.\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .call = head_call, .failed = failed_audit},
    {"audit", "export", "audit export [--campaign NAME] --out FILE.jsonl [--json]",
     "Write the log rows and seal blocks as JSON lines, streamed; `crier audit verify --file`\n"
     "checks the file with no database. The file appears only when complete.\n"
     "  --json  once written, one JSON object on stdout: file, rows\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .check = export_check, .call = export_call, .say = say_code},
    {"audit", "seal", "audit seal [--json]",
     "Seal every log row written so far (crier run also seals as it goes: audit.seal_interval).\n"
     "  --json  one JSON object: rows, blocks (sealed now)\n",
     .db = DB_SCHEMA, AUDIT_ARGS, .call = seal_call, .failed = failed_audit, .say = seal_say},
    {"audit", "report",
     "audit report CAMPAIGN [--json] [--html FILE] [--discovered YYYY-MM-DD]\n"
     "                          [--framework LIST]",
     "For auditors: counts by channel, state and jurisdiction; the people no channel reached\n"
     "and why; each person's days from discovery to notice against the deadline table\n"
     "(report.deadlines, default: the table shipped with crier), lawful hold periods not\n"
     "counted; the people late or not notified past their deadline; Attorney General,\n"
     "consumer reporting agency and substitute-notice flags. Reads one snapshot, writes\n"
     "nothing (a member of crier_auditor can run it). docs/audit-report.md explains each\n"
     "figure and the table's caveats.\n"
     "  --json              one JSON object instead of text tables\n"
     "  --html FILE         also write one self-contained HTML file with a chart\n"
     "  --discovered DATE   the day the breach was discovered (default: the campaign meta's\n"
     "                      discovered_date; without either no timeliness is measured)\n"
     "  --framework LIST    deadline frameworks that apply (\"HIPAA\"; default: the campaign\n"
     "                      meta's frameworks)\n",
     .db = DB_SCHEMA, ARGS(struct report_options, report_options), .what = "CAMPAIGN",
     .call = report_call, .failed = failed_campaign},
    {0},
};

static const struct command *command_find(const char *group, const char *name)
{
    for (const struct command *c = commands; c->group; c++)
        if (strcmp(c->group, group) == 0 &&
            (c->name == NULL || (name && strcmp(c->name, name) == 0)))
            return c;
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: crier [-c FILE] [--log-level LEVEL] COMMAND [ARGS]\n\n"
                 "  -c, --config FILE  configuration (default: $CRIER_CONFIG, ./crier.yaml,\n"
                 "                     /etc/crier/crier.yaml)\n"
                 "  --log-level LEVEL  debug, info, notice, warning or error (overrides\n"
                 "                     log.level)\n"
                 "  -h, --help         this help; COMMAND --help for a command's\n"
                 "  -V, --version      print the version\n\ncommands:\n");
    for (const struct command *c = commands; c->group; c++) {
        const char *nl = strchr(c->usage, '\n');
        fprintf(out, "  crier %.*s\n", nl ? (int)(nl - c->usage) : (int)strlen(c->usage), c->usage);
    }
}

/* global_options - -c, --log-level, --help and --version, before the command; GO_ON, or the
 * exit code to return now. */
static int global_options(struct cli *cli, int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"log-level", required_argument, NULL, 'L'},
        {0},
    };
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli->config_path = optarg;
            break;
        case 'L':
            if (log_level_from_name(optarg, &cli->log_level) < 0) {
                fprintf(stderr,
                        "crier: --log-level '%s': expected debug, info, notice, "
                        "warning or error\n",
                        optarg);
                return EXIT_USAGE;
            }
            cli->log_level_set = true;
            log_setup(LOG_FORMAT_AUTO, cli->log_level);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("crier %s\n", CRIER_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "crier: option '%s' needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "crier: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return GO_ON;
}

/* no_command - GROUP [NAME] names no command: a group's commands when it is asked for
 * help or given none (a usage error then), else "unknown command". The exit code. */
static int no_command(const char *group, const char *name)
{
    bool known_group = false; /* the command table's groups, never a list of its own */
    for (const struct command *k = commands; k->group && !known_group; k++)
        known_group = strcmp(k->group, group) == 0;
    if (known_group && (name == NULL || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
        FILE *out = name ? stdout : stderr; /* asked for help, or a usage error */
        fprintf(out, "crier %s commands:\n", group);
        for (const struct command *k = commands; k->group; k++)
            if (strcmp(k->group, group) == 0)
                fprintf(out, "  crier %s\n", k->usage);
        return name ? 0 : EXIT_USAGE;
    }
    fprintf(stderr, "crier: unknown command '%s%s%s' (see crier --help)\n", group,
            known_group && name ? " " : "", known_group && name ? name : "");
    return EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    struct cli cli = {.command = ""};
    log_setup(LOG_FORMAT_AUTO, LOG_INFO);
    int code = global_options(&cli, argc, argv);
    if (code != GO_ON)
        return code;
    const char *group = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    const struct command *c = command_find(group, name);
    if (c == NULL)
        return no_command(group, name);
    char command_name[64];
    snprintf(command_name, sizeof(command_name), "%s%s%s", c->group, c->name ? " " : "",
             c->name ? c->name : "");
    cli.command = command_name;
    cli.current = c;
    int skip = optind + (c->name ? 1 : 0);
    code = command_run(&cli, c, argc - skip, argv + skip);
    config_free(cli.config);
    config_free(cli.reloaded);
    return code;
}
