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

typedef int (*command_fn)(struct cli *cli, int argc, char **argv);

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

struct command {
    const char *group; /* "campaign" */
    const char *name;  /* "load", or NULL for one-word commands */
    command_fn run;
    const char *usage; /* the synopsis after "crier " */
    const char *help;  /* what it does and its options */
};

static int cmd_db_migrate(struct cli *cli, int argc, char **argv);
static int cmd_db_roles(struct cli *cli, int argc, char **argv);
static int cmd_user_add(struct cli *cli, int argc, char **argv);
static int cmd_config_check(struct cli *cli, int argc, char **argv);
static int cmd_campaign_create(struct cli *cli, int argc, char **argv);
static int cmd_campaign_load(struct cli *cli, int argc, char **argv);
static int cmd_campaign_proof(struct cli *cli, int argc, char **argv);
static int cmd_campaign_start(struct cli *cli, int argc, char **argv);
static int cmd_campaign_pause(struct cli *cli, int argc, char **argv);
static int cmd_campaign_resume(struct cli *cli, int argc, char **argv);
static int cmd_campaign_cancel(struct cli *cli, int argc, char **argv);
static int cmd_campaign_list(struct cli *cli, int argc, char **argv);
static int cmd_campaign_reroute(struct cli *cli, int argc, char **argv);
static int cmd_run(struct cli *cli, int argc, char **argv);
static int cmd_status(struct cli *cli, int argc, char **argv);
static int cmd_bounces_ingest(struct cli *cli, int argc, char **argv);
static int cmd_returns_ingest(struct cli *cli, int argc, char **argv);
static int cmd_hold_place(struct cli *cli, int argc, char **argv);
static int cmd_hold_lift(struct cli *cli, int argc, char **argv);
static int cmd_hold_confirm(struct cli *cli, int argc, char **argv);
static int cmd_hold_list(struct cli *cli, int argc, char **argv);
static int cmd_hold_show(struct cli *cli, int argc, char **argv);
static int cmd_hold_check(struct cli *cli, int argc, char **argv);
static int cmd_batch(struct cli *cli, int argc, char **argv);
static int cmd_audit_log(struct cli *cli, int argc, char **argv);
static int cmd_audit_show(struct cli *cli, int argc, char **argv);
static int cmd_audit_verify(struct cli *cli, int argc, char **argv);
static int cmd_audit_head(struct cli *cli, int argc, char **argv);
static int cmd_audit_export(struct cli *cli, int argc, char **argv);
static int cmd_audit_seal(struct cli *cli, int argc, char **argv);
static int cmd_audit_report(struct cli *cli, int argc, char **argv);
static int cmd_regulators(struct cli *cli, int argc, char **argv);
static int cmd_regulators_mark_filed(struct cli *cli, int argc, char **argv);
static int cmd_campaign_amend(struct cli *cli, int argc, char **argv);
static int cmd_notice_resend(struct cli *cli, int argc, char **argv);
static int cmd_audit_find(struct cli *cli, int argc, char **argv);
static int cmd_audit_unreached(struct cli *cli, int argc, char **argv);
static int cmd_serve(struct cli *cli, int argc, char **argv);
static int cmd_substitute(struct cli *cli, int argc, char **argv);
static int cmd_substitute_write(struct cli *cli, int argc, char **argv);
static int cmd_substitute_posted(struct cli *cli, int argc, char **argv);
static int cmd_substitute_media(struct cli *cli, int argc, char **argv);

/* ---- the table --------------------------------------------------------------------- */

static const struct command commands[] = {
    {"db", "migrate", cmd_db_migrate, "db migrate [--json]",
     "Create crier's schema in the database, or bring it up to date. Running it again is a\n"
     "no-op. The database is database.conninfo in the configuration, else libpq's PG*\n"
     "environment variables.\n"
     "  --json  one JSON object: from, to (schema versions), migrated (true or false)\n"},
    {"db", "roles", cmd_db_roles, "db roles [--json]",
     "What db migrate needs of the role that runs it, and whether the connected role has it:\n"
     "CREATE on the database (or to own schema crier), and CREATEROLE the first time in a\n"
     "cluster, when it creates crier_operator, crier_legal and crier_auditor. Then each of\n"
     "those roles: whether it exists, what it may do, its members. Exit 1 when db migrate\n"
     "could not run as this role.\n"
     "  --json  one JSON object: user, superuser, createrole, create_on_database,\n"
     "          schema_owner, migrate_can_run, migrate_why_not, user_add_can_run, roles\n"},
    {"user", "add", cmd_user_add,
     "user add NAME --role operator|legal|auditor [--password-file FILE]",
     "Create a login in one of crier's roles (CREATE ROLE NAME LOGIN IN ROLE crier_ROLE);\n"
     "needs CREATEROLE (crier db roles). The password is hashed here (SCRAM): the server\n"
     "never sees it in clear. Exit 65 when NAME exists, 77 when the database refuses.\n"
     "  --role ROLE          operator (runs campaigns), legal (holds) or auditor (reads)\n"
     "  --password-file FILE its first line is the password; FILE must be closed to group\n"
     "                       and others (0600). Without it, asked twice on the terminal.\n"
     "                       Never on the command line.\n"},
    {"config", "check", cmd_config_check, "config check [--connect] [FILE]",
     "Check a configuration file and print FILE:LINE:COL: message for every problem,\n"
     "then the files the channels need: the mail spool must exist, be writable and be\n"
     "closed to others (0700 or 0750); a file holding a secret that its group or others\n"
     "can read is refused, naming it and its mode, unless secrets.readable_by allows them.\n"
     "Exit 0 when it is valid, 78 when it is not.\n"
     "  --connect  also try each service it names, one line each: the database (and its\n"
     "             schema version), the SMTP relay (EHLO, STARTTLS as configured, AUTH;\n"
     "             nothing is sent), the fax gateway (an authenticated GET). Exit 69 when\n"
     "             one fails.\n"},
    {"campaign", "create", cmd_campaign_create,
     "campaign create NAME --incident REF [--policy email,fax,mail] [--templates DIR]\n"
     "                            [--meta FILE.yaml] [--json]",
     "Create a campaign in draft.\n"
     "  --incident REF   the incident it notifies about (required)\n"
     "  --policy LIST    channels in order of preference (default email,fax,mail): a notice\n"
     "                   starts on the first channel that can reach the person and falls\n"
     "                   back to the next on a permanent failure\n"
     "  --templates DIR  the notice templates\n"
     "  --meta FILE      incident metadata (a YAML mapping) kept with the campaign\n"
     "  --json           one JSON object: campaign, state, policy\n"},
    {"campaign", "load", cmd_campaign_load,
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
     "                      contacts_dropped, undeliverable, reject_file\n"},
    {"campaign", "amend", cmd_campaign_amend,
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
     "                      reached, in_flight, no_channel\n"},
    {"campaign", "proof", cmd_campaign_proof, "campaign proof NAME --out DIR [--count N]",
     "Render sample notices for legal review, sending nothing: for each jurisdiction\n"
     "(region) in the list, up to N people (default 1), every channel of the policy that\n"
     "can reach them: DIR/REGION-REF-email.eml (the exact message),\n"
     "DIR/REGION-REF-letter.pdf (the letter as printed), DIR/REGION-REF-fax.pdf (the\n"
     "fax as transmitted) and DIR/REGION-REF-letter.md (the letter body).\n"},
    {"campaign", "start", cmd_campaign_start, "campaign start NAME [--json]",
     "Start a draft campaign: `crier run` begins sending its notices. Warns about each\n"
     "channel of its policy that no live `crier run` serves: those notices wait.\n"
     "  --json  one JSON object: campaign, done (\"started\")\n"},
    {"campaign", "pause", cmd_campaign_pause, "campaign pause NAME [--json]",
     "Pause a running campaign: nothing more is claimed until it is resumed. Notices\n"
     "already handed to a channel finish.\n"
     "  --json  one JSON object: campaign, done (\"paused\")\n"},
    {"campaign", "resume", cmd_campaign_resume, "campaign resume NAME [--json]",
     "Resume a paused campaign.\n"
     "  --json  one JSON object: campaign, done (\"resumed\")\n"},
    {"campaign", "cancel", cmd_campaign_cancel, "campaign cancel NAME [--json]",
     "Cancel a campaign: every notice not yet handed to a channel becomes cancelled.\n"
     "  --json  one JSON object: campaign, done (\"cancelled\"), cancelled_notices\n"},
    {"campaign", "list", cmd_campaign_list, "campaign list [--json]", "List the campaigns.\n"},
    {"campaign", "reroute", cmd_campaign_reroute,
     "campaign reroute NAME --from CHANNEL --to CHANNEL --reason TEXT [--json]",
     "Move the notices waiting on one channel of a campaign to another channel of its\n"
     "policy: every notice ready on --from that --to can reach (notices in flight are not\n"
     "touched). crier never does this by itself: a notice whose channel no live worker\n"
     "serves waits (crier status says since when). Each move is a dispatch-log row naming\n"
     "you and the reason; the campaign gets one row for the command. One transaction.\n"
     "  --from CHANNEL  the channel the notices wait on\n"
     "  --to CHANNEL    where they go (it must be in the campaign's policy)\n"
     "  --reason TEXT   why (required), e.g. the email relay is blocklisted\n"
     "  --json          one JSON object: campaign, from, to, moved, left (on --from)\n"},
    {"regulators", "mark-filed", cmd_regulators_mark_filed,
     "regulators mark-filed CAMPAIGN --jurisdiction CODE --regulator NAME --date YYYY-MM-DD\n"
     "                                --how portal|mail|email|fax|other --reference TEXT",
     "Record that a regulator notice was filed (logged in the dispatch log).\n"
     "  --jurisdiction CODE  as in the packet: CA, HIPAA, GDPR\n"
     "  --regulator NAME     as in the packet: \"Attorney General\"\n"
     "  --date YYYY-MM-DD    the day it was filed\n"
     "  --how WAY            portal, mail, email, fax or other\n"
     "  --reference TEXT     the regulator's confirmation number, or the tracking number\n"},
    {"regulators", NULL, cmd_regulators,
     "regulators CAMPAIGN --out DIR [--discovered YYYY-MM-DD] [--framework LIST]",
     "Write the regulator notice packet: a PDF letter for each regulator notice the rules\n"
     "table says is due (docs/jurisdictions.md), counts.csv with the figures regulators'\n"
     "forms ask for, and under HIPAA hhs-breach-portal.csv. Each file is logged in the\n"
     "dispatch log with its SHA-256. Nothing is sent: file them, then mark-filed.\n"
     "  --out DIR         where to write the files (created if missing)\n"
     "  --discovered D    the discovery date, as for audit report\n"
     "  --framework LIST  frameworks that apply, as for audit report\n"},
    {"substitute", "write", cmd_substitute_write,
     "substitute write CAMPAIGN --out DIR [--framework LIST] [--json]",
     "Where the rules table requires substitute notice (crier substitute CAMPAIGN), write the\n"
     "set and queue the substitute email (docs/unreached.md): DIR/posting.html, the website\n"
     "posting (one self-contained page); DIR/media-XX.txt, the notice for each jurisdiction's\n"
     "media; and the email, once, to everyone not reached who has an address, as the campaign\n"
     "CAMPAIGN.substitute that crier run sends. Every file is logged with its SHA-256. Under\n"
     "HIPAA the campaign meta must have toll_free_number. Run again, it queues only people\n"
     "not yet queued. Exit 65 when nothing is required.\n"
     "  --out DIR         where to write the files (created if missing)\n"
     "  --framework LIST  frameworks that apply (default: the campaign meta's frameworks)\n"
     "  --json            one JSON object: files, their SHA-256, the email campaign, queued\n"},
    {"substitute", "posted", cmd_substitute_posted,
     "substitute posted CAMPAIGN --url URL --from YYYY-MM-DD --until YYYY-MM-DD [--json]",
     "Record that the substitute-notice posting is on the website (logged; operators only).\n"
     "  --url URL       where it is posted\n"
     "  --from DATE     the day it went up\n"
     "  --until DATE    the last day it stays up (HIPAA: 90 days at least)\n"
     "  --json          one JSON object: what was recorded\n"},
    {"substitute", "media", cmd_substitute_media,
     "substitute media CAMPAIGN --outlet NAME --date YYYY-MM-DD --state XX [--json]",
     "Record that a media notice ran (logged; operators only).\n"
     "  --outlet NAME   the newspaper, station or site\n"
     "  --date DATE     the day it ran\n"
     "  --state XX      the jurisdiction it was for (CA, DC, PR)\n"
     "  --json          one JSON object: what was recorded\n"},
    {"substitute", NULL, cmd_substitute, "substitute CAMPAIGN [--framework LIST] [--json]",
     "Whether substitute notice is required, per jurisdiction on its residents "
     "(docs/unreached.md):\n"
     "the estimated cost of the letters still to send (substitute.postage_per_letter and\n"
     "print_per_letter), the number of residents and those without sufficient contact,\n"
     "against the rules table's thresholds; each declared framework (HIPAA) on the whole\n"
     "campaign; and what was done (posting, media, email). Not legal advice.\n"
     "  --framework LIST  frameworks that apply (default: the campaign meta's frameworks)\n"
     "  --json            one JSON object instead of text\n"},
    {"run", NULL, cmd_run, "run [--until-idle] [--metrics HOST:PORT]",
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
     "                       campaign's notices by state and channel\n"},
    {"serve", NULL, cmd_serve, "serve [--listen HOST:PORT]",
     "Serve the web console and its JSON API (docs/console.md) until SIGTERM. People log in\n"
     "with their own PostgreSQL login; what their role may not do, the database refuses.\n"
     "Plain HTTP only on loopback (behind a TLS reverse proxy), else serve.tls.cert and\n"
     "serve.tls.key.\n"
     "  --listen HOST:PORT  where to listen (default serve.listen, else 127.0.0.1:8470)\n"},
    {"status", NULL, cmd_status, "status [NAME] [--json] [--watch]",
     "Where every notice stands, by state and by channel, and the notices that wait\n"
     "because no live worker serves their channel (\"no worker serves email since 12:01\n"
     "UTC\").\n"
     "  --json   one JSON object for NAME (an array without NAME); \"waiting\" lists the\n"
     "           waiting notices per channel; for NAME, \"progress\": the rate (the last\n"
     "           15 minutes, at most 2,000 notices), what is left, the ETA, and per day\n"
     "  --watch  refresh every 2 seconds until interrupted\n"},
    {"returns", "ingest", cmd_returns_ingest,
     "returns ingest FILE [--campaign NAME] [--reject-file FILE] [--json]",
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
     "                      forwarded, forward_once, forward_rejected\n"},
    {"bounces", "ingest", cmd_bounces_ingest, "bounces ingest PATH [--json]",
     "Apply delivery status notifications (RFC 3464) from PATH: a message file, a Maildir\n"
     "(new/ and cur/) or an mbox. A permanent failure moves a notice still sent by email to\n"
     "the next channel of its policy; a delay is only logged; the same DSN twice changes\n"
     "nothing. Exit 66 when PATH cannot be read, 69 when the database cannot be reached.\n"
     "  --json  one JSON object: messages, permanent, delayed, unmatched, unparseable,\n"
     "          duplicate, ignored\n"},
    {"notice", "resend", cmd_notice_resend,
     "notice resend CAMPAIGN REF --channel mail|email|fax --reason TEXT [--json]",
     "Send one person another copy (a paper copy they asked for, say) on a channel of the\n"
     "campaign's policy that their contacts allow. Logged as a resend, never as a retry.\n"
     "Exit 75 while their notice is queued or being sent.\n"
     "  --channel C    mail, email or fax (required)\n"
     "  --reason TEXT  why (required)\n"
     "  --json         one JSON object: campaign, ref, channel\n"},
    {"hold", "place", cmd_hold_place,
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
     "are still in flight after twice queue.lease (the hold is in effect all the same).\n"},
    {"hold", "lift", cmd_hold_lift,
     "hold lift HOLD --evidence TEXT [--document FILE] [--as NAME] [--json]",
     "End a hold: the agency says notice will no longer impede the investigation. Every\n"
     "notice it covered that no other active hold covers goes out, marked delayed for\n"
     "law enforcement.\n"
     "  --evidence TEXT   what the agency said, and when\n"
     "  --document FILE   its letter, kept with its SHA-256\n"
     "  --as NAME         the person lifting it, recorded beside the database role\n"
     "  --json            one JSON object: hold, campaign, scope, lifted_at, released\n"},
    {"hold", "confirm", cmd_hold_confirm,
     "hold confirm HOLD --written --document FILE [--as NAME] [--json]",
     "Record the agency's written confirmation of an oral hold, within 30 days of its\n"
     "placement where the lapse applies (HIPAA), at any time before its lift elsewhere;\n"
     "it then no longer lapses.\n"
     "  --written         the confirmation is in writing (required)\n"
     "  --document FILE   the written statement, kept with its SHA-256 (required)\n"
     "  --as NAME         the person recording it\n"
     "  --json            one JSON object: hold, campaign, confirmed_at, document, bytes,\n"
     "                    sha256\n"},
    {"hold", "list", cmd_hold_list, "hold list [CAMPAIGN] [--active] [--json]",
     "List the holds, with lapsed and past-review ones flagged.\n"
     "  --active  only holds that hold notices now\n"
     "  --json    a JSON array\n"},
    {"hold", "show", cmd_hold_show, "hold show HOLD [--json]",
     "Everything recorded about a hold, and the notices it covers.\n"},
    {"hold", "check", cmd_hold_check, "hold check [--mail-to ADDRESS]... [--json]",
     "Exit 1, naming them, if any hold not lifted has lapsed (oral, not confirmed in\n"
     "writing within 30 days) or passed its review date; exit 0 otherwise.\n"
     "  --mail-to ADDRESS  also mail the list there (legal), from channels.email.from\n"
     "                     through the configured SMTP relay; exit 69 if that fails\n"
     "  --json             a JSON array of the holds: hold, campaign, scope, lapsed,\n"
     "                     past_review, holds_now, lapsed_at, review_by (exit 1 all the same)\n"},
    {"batch", "list", cmd_batch, "batch list NAME [--json]",
     "The print batches of a campaign: letters, pages, mailed, voided, and where their files\n"
     "are. First settles the spool: pending files of recorded batches become final, those\n"
     "of batches the database never recorded are renamed *.orphan (never to be printed).\n"
     "  --json  a JSON array\n"},
    {"batch", "show", cmd_batch, "batch show BATCH [--json]",
     "One print batch: its PDF's SHA-256 and every letter in print order.\n"
     "  --json  one JSON object, the letters in letters_in_order\n"},
    {"batch", "mark-mailed", cmd_batch,
     "batch mark-mailed BATCH --date YYYY-MM-DD [--evidence TEXT] [--json]",
     "The post office accepted the batch: its letters become mailed (logged).\n"
     "  --date YYYY-MM-DD  the day of acceptance (required)\n"
     "  --evidence TEXT    e.g. the PS Form 3602/3600 or receipt number\n"
     "  --json             one JSON object: batch, mailed, date, evidence\n"},
    {"batch", "void", cmd_batch, "batch void BATCH --reason TEXT [--json]",
     "A spoiled print run: its letters go back to ready (logged) and are printed again in a\n"
     "new batch; its files are renamed *.void.\n"
     "  --reason TEXT  why (required)\n"
     "  --json         one JSON object: batch, voided, reason, files_renamed\n"},
    {"audit", "log", cmd_audit_log,
     "audit log [CAMPAIGN] [--recipient REF] [--channel C] [--since T] [--until T]\n"
     "                    [--format table|csv|json]",
     "The dispatch log, oldest first, streamed (any size, flat memory).\n"
     "  --recipient REF  one person's rows (needs CAMPAIGN)\n"
     "  --channel C      rows of one channel (used it, or moved to it)\n"
     "  --since T        rows at or after T (2026-11-01, 2026-11-01T12:00Z)\n"
     "  --until T        rows before T\n"
     "  --format F       table (default), csv (with a header line), json (one object per line)\n"},
    {"audit", "show", cmd_audit_show, "audit show CAMPAIGN REF [--json] [--out DIR]",
     "One person's whole history: the recipient as loaded, every attempt, reply, fallback,\n"
     "bounce, the holds that delayed them and for how long, the batch and mailing, and for\n"
     "every message sent a re-render from the templates copied at start and the recorded\n"
     "render time, compared with the SHA-256 recorded when it was sent. Exit 1 when a\n"
     "content does not verify.\n"
     "  --json     one JSON object\n"
     "  --out DIR  write each re-rendered content to DIR (email .eml, fax .pdf, letter .md,\n"
     "             and the letter as printed alone, .pdf)\n"},
    {"audit", "find", cmd_audit_find,
     "audit find [CAMPAIGN] (--ref R | --email E | --fax F | --name TEXT | --postal ZIP)\n"
     "                    [--json]",
     "Find people by ref, by a contact they have or had (normalised as a load normalises\n"
     "it, then matched exactly; a 5-digit ZIP also finds its ZIP+4), or by the beginning of\n"
     "their name or last name (any case). Each is an index probe, whatever the campaign's\n"
     "size. Shows their current contacts, their notice and which versions matched. Exit 1\n"
     "when nobody matches, 65 when the value cannot be a stored contact.\n"
     "  --json  a JSON array\n"},
    {"audit", "unreached", cmd_audit_unreached, "audit unreached CAMPAIGN [--format csv|json]",
     "Everyone not reached: undeliverable (no channel of the policy could reach them, or\n"
     "none could be used), and letters returned; with the reason, the last attempt and the\n"
     "current contacts. The whole campaign, streamed (flat memory at any size).\n"
     "  --format F  csv (default: a header line; values a spreadsheet would run as a\n"
     "              formula get a leading apostrophe) or json (one object per line)\n"},
    {"audit", "verify", cmd_audit_verify,
     "audit verify [--campaign NAME] [--file FILE.jsonl] [--expect-head SHA256] [--json]",
     "Recompute the sealed log's hash chains and report, per campaign, intact (with the\n"
     "head hash) or the first broken block and row. Exit 0 intact, 1 broken.\n"
     "  --campaign NAME       one campaign's chain\n"
     "  --file FILE.jsonl     verify an export (crier audit export) with no database\n"
     "  --expect-head SHA256  a head hash handed out earlier must be in the chain\n"
     "  --json                one JSON object\n"},
    {"audit", "head", cmd_audit_head, "audit head [--campaign NAME] [--json]",
     "The newest sealed block of each campaign's chain and its SHA-256: hand it to counsel\n"
     "or have it timestamped outside the system; `audit verify --expect-head` checks it.\n"},
    {"audit", "export", cmd_audit_export,
     "audit export [--campaign NAME] --out FILE.jsonl [--json]",
     "Write the log rows and seal blocks as JSON lines, streamed; `crier audit verify --file`\n"
     "checks the file with no database. The file appears only when complete.\n"
     "  --json  once written, one JSON object on stdout: file, rows\n"},
    {"audit", "seal", cmd_audit_seal, "audit seal [--json]",
     "Seal every log row written so far (crier run also seals as it goes: audit.seal_interval).\n"
     "  --json  one JSON object: rows, blocks (sealed now)\n"},
    {"audit", "report", cmd_audit_report,
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
     "                      meta's frameworks)\n"},
    {0},
};

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

static const struct command *command_find(const char *group, const char *name)
{
    for (const struct command *c = commands; c->group; c++)
        if (strcmp(c->group, group) == 0 &&
            (c->name == NULL || (name && strcmp(c->name, name) == 0)))
            return c;
    return NULL;
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

/* ---- db, config -------------------------------------------------------------------- */

static int cmd_db_roles(struct cli *cli, int argc, char **argv)
{
    int r = begin_upto(cli, argc, argv, NULL, NULL, 0);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, false, &db);
    if (code)
        return code;
    char err[1024];
    bool migrate_ok = false;
    r = users_roles(db, cli->json, stdout, &migrate_ok, err, sizeof(err));
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return exit_code(r);
    }
    return migrate_ok ? 0 : 1;
}

struct user_args {
    const char *role, *password_file;
};

static int cmd_user_add(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("role", struct user_args, role),
        OPT_TEXT("password-file", struct user_args, password_file),
        {0},
    };
    struct user_args a = {0};
    const char *name = NULL;
    int r = begin(cli, argc, argv, options, &a, "NAME (the new login)", &name);
    if (r != GO_ON)
        return r;
    if (a.role == NULL) {
        fail(cli, "--role operator|legal|auditor is required");
        return EXIT_USAGE;
    }
    char err[1024];
    char *password = NULL;
    r = users_password(a.password_file, &password, err, sizeof(err));
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -ENOTTY || r == -EINVAL ? EXIT_USAGE : r == -EPERM ? EXIT_NOPERM : EXIT_NOINPUT;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, false, &db);
    if (code == 0) {
        r = users_add(db, name, a.role, password, err, sizeof(err));
        db_close(db);
        if (r < 0)
            fail(cli, "%s", err);
        else
            printf("login %s created in crier_%s\n", name, a.role);
        code = r == -EINVAL ? EXIT_USAGE : exit_code(r);
    }
    explicit_bzero(password, strlen(password));
    free(password);
    return code;
}

static int cmd_db_migrate(struct cli *cli, int argc, char **argv)
{
    int r = begin_upto(cli, argc, argv, NULL, NULL, 0);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, false, &db);
    if (code)
        return code;
    unsigned from = 0, to = 0;
    r = migrate_apply(db, &from, &to);
    if (r < 0) {
        fail(cli, "%s", db->error);
        db_close(db);
        return r == -EPROTO ? EXIT_CONFIG : exit_code(r);
    }
    /* the find indexes a load that was interrupted after its commit left missing */
    long built = 0;
    char err[1024] = "";
    r = find_index_build(db, cli->config->conninfo, FIND_INDEX_CONNECTIONS, 0, &built, err,
                         sizeof(err));
    db_close(db);
    if (r < 0) {
        fail(cli, "schema at version %u, but building the missing find indexes failed: %s", to,
             err);
        return exit_code(r);
    }
    if (cli->json)
        json_out(stdout,
                 json_pack("{s:i, s:i, s:b, s:I}", "from", (int)from, "to", (int)to, "migrated",
                           from != to, "find_indexes_built", (json_int_t)built));
    else if (from == to)
        printf("schema is at version %u: nothing to do\n", to);
    else
        printf("schema migrated from version %u to %u\n", from, to);
    if (!cli->json && built > 0)
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

static int cmd_config_check(struct cli *cli, int argc, char **argv)
{
    struct config_check_args {
        bool probe; /* --connect */
    } a = {0};
    static const struct opt_row options[] = {
        OPT_FLAG("connect", struct config_check_args, probe),
        {0},
    };
    int r = begin(cli, argc, argv, options, &a, NULL, NULL);
    if (r != GO_ON)
        return r;
    if (optind < argc)
        cli->config_path = argv[optind];
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
    int failed = a.probe ? config_probe(config) : 0;
    fflush(stdout);
    config_free(config);
    return failed ? EXIT_UNAVAILABLE : 0;
}

/* ---- campaign ------------------------------------------------------------------------ */

struct create_args {
    struct campaign_create_options options;
    const char *meta_path;
};

static int cmd_campaign_create(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("incident", struct create_args, options.incident),
        OPT_TEXT("policy", struct create_args, options.policy),
        OPT_TEXT("templates", struct create_args, options.templates),
        OPT_TEXT("meta", struct create_args, meta_path),
        {0},
    };
    struct create_args a = {.meta_path = NULL};
    int r = begin(cli, argc, argv, options, &a, "campaign NAME", &a.options.name);
    if (r != GO_ON)
        return r;
    if (a.options.incident == NULL) {
        fail(cli, "--incident REF is required (the incident this campaign notifies about)");
        return EXIT_USAGE;
    }
    char err[1024];
    char *meta = NULL;
    if (a.meta_path) {
        r = meta_yaml_to_json(a.meta_path, &meta, err, sizeof(err));
        if (r < 0) {
            fail(cli, "%s", err);
            return r == -ENOENT ? EXIT_NOINPUT : EXIT_DATAERR;
        }
        a.options.meta_json = meta;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code) {
        free(meta);
        return code;
    }
    char *who = actor(db);
    r = campaign_create(db, &a.options, who, err, sizeof(err));
    free(who);
    free(meta);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return exit_code(r);
    }
    const char *policy = a.options.policy ? a.options.policy : "email,fax,mail";
    if (cli->json)
        json_out(stdout, json_pack("{s:s, s:s, s:s}", "campaign", a.options.name, "state", "draft",
                                   "policy", policy));
    else
        printf("campaign %s created (draft, policy %s)\n", a.options.name, policy);
    return 0;
}

static int cmd_campaign_load(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("csv", struct import_options, csv_path),
        OPT_TEXT("table", struct import_options, table),
        OPT_TEXT("query", struct import_options, query),
        OPT_TEXT("reject-file", struct import_options, reject_path),
        {0},
    };
    struct import_options o = {0};
    int r = begin(cli, argc, argv, options, &o, "campaign NAME", &o.campaign);
    if (r != GO_ON)
        return r;
    int sources = (o.csv_path != NULL) + (o.table != NULL) + (o.query != NULL);
    if (sources != 1) {
        fail(cli, "give exactly one of --csv FILE, --table SCHEMA.TABLE, --query SQL");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char *who = actor(db);
    o.actor = who;
    o.progress = isatty(STDERR_FILENO);
    struct import_result result = {0};
    char err[1024] = "";
    r = import_load(db, cli->config, &o, stderr, &result, err, sizeof(err));
    free(who);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s; nothing was loaded", err);
        return r == -ENOENT && o.csv_path && access(o.csv_path, R_OK) != 0 ? EXIT_NOINPUT
                                                                           : exit_code(r);
    }
    if (cli->json) {
        json_out(stdout,
                 json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s?, s:I, s:I}", "campaign",
                           o.campaign, "load", (json_int_t)result.load_id, "rows",
                           (json_int_t)result.rows, "loaded", (json_int_t)result.loaded, "rejected",
                           (json_int_t)result.rejected, "contacts_dropped",
                           (json_int_t)result.contacts_dropped, "undeliverable",
                           (json_int_t)result.undeliverable, "reject_file", o.reject_path,
                           "find_indexes_built", (json_int_t)result.find_built,
                           "find_indexes_missing", (json_int_t)result.find_missing));
        return 0;
    }
    printf("campaign %s: %ld rows read, %ld loaded, %ld rejected, %ld with a contact dropped",
           o.campaign, result.rows, result.loaded, result.rejected, result.contacts_dropped);
    if (result.undeliverable)
        printf(", %ld with no channel of the policy (undeliverable)", result.undeliverable);
    printf(" (load %lld)\n", (long long)result.load_id);
    if (o.reject_path && (result.rejected || result.contacts_dropped))
        printf("rejected rows and dropped contacts: %s\n", o.reject_path);
    if (result.find_missing != 0) /* the rows are in; only `audit find` is slower */
        printf("find indexes still missing: %s (crier db migrate builds them)\n",
               result.find_missing < 0 ? "unknown" : "some");
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

static int cmd_campaign_action(struct cli *cli, int argc, char **argv, enum campaign_action action,
                               const char *verb)
{
    const char *name = NULL;
    int r = begin(cli, argc, argv, NULL, NULL, "campaign NAME", &name);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char *who = actor(db);
    char err[1024];
    long affected = 0;
    r = campaign_transition(db, name, action, who, start_check, cli, &affected, err, sizeof(err));
    free(who);
    /* said now, not discovered later: a channel nobody serves keeps its notices waiting */
    char **unserved = NULL;
    if (r == 0 && (action == CAMPAIGN_START || action == CAMPAIGN_RESUME) &&
        service_unserved(db, name, &unserved) == 0) {
        for (char **c = unserved; *c; c++)
            fprintf(stderr,
                    "crier %s: warning: no live crier run serves %s, in the policy of %s: its "
                    "notices wait until one does (or crier campaign reroute moves them)\n",
                    cli->command, *c, name);
        strv_free(unserved);
    }
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -ENOENT ? EXIT_DATAERR : exit_code(r);
    }
    static const char *const done[] = {"started", "paused", "resumed", "cancelled"};
    if (cli->json) {
        json_t *o = json_pack("{s:s, s:s}", "campaign", name, "done", done[action]);
        if (action == CAMPAIGN_CANCEL)
            json_object_set_new(o, "cancelled_notices", json_integer(affected));
        json_out(stdout, o);
        return 0;
    }
    printf("campaign %s %s", name, done[action]);
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

static int cmd_campaign_proof(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("out", struct proof_args, out),
        OPT_PARSE("count", struct proof_args, count, proof_count, 0),
        {0},
    };
    struct proof_args a = {.count = 1};
    const char *name = NULL;
    int r = begin(cli, argc, argv, options, &a, "campaign NAME", &name);
    if (r != GO_ON)
        return r;
    if (a.out == NULL) {
        fail(cli, "--out DIR is required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    r = proof_write(db, cli->config, name, a.out, a.count, stdout, stderr);
    if (r == -ENOENT)
        fail(cli, "no campaign named '%s'", name);
    else if (r == -EINVAL)
        fail(cli, "some proofs could not be rendered (above)");
    else if (r >= 0)
        fprintf(stderr, "crier campaign proof: %d files in %s; nothing was sent\n", r, a.out);
    db_close(db);
    return r == -ENOENT ? EXIT_DATAERR : exit_code(r < 0 ? r : 0);
}

static int cmd_campaign_start(struct cli *cli, int argc, char **argv)
{
    return cmd_campaign_action(cli, argc, argv, CAMPAIGN_START, "start");
}

static int cmd_campaign_pause(struct cli *cli, int argc, char **argv)
{
    return cmd_campaign_action(cli, argc, argv, CAMPAIGN_PAUSE, "pause");
}

static int cmd_campaign_resume(struct cli *cli, int argc, char **argv)
{
    return cmd_campaign_action(cli, argc, argv, CAMPAIGN_RESUME, "resume");
}

static int cmd_campaign_cancel(struct cli *cli, int argc, char **argv)
{
    return cmd_campaign_action(cli, argc, argv, CAMPAIGN_CANCEL, "cancel");
}

/* The flags of campaign list and status. */
struct flag_args {
    bool json, watch;
};

static int cmd_campaign_list(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {OPT_FLAG("json", struct flag_args, json), {0}};
    struct flag_args a = {0};
    int r = begin_upto(cli, argc, argv, options, &a, 0);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    r = campaign_list(db, a.json, stdout);
    if (r < 0)
        fail(cli, "%s", db->error);
    db_close(db);
    return exit_code(r);
}

struct reroute_args {
    const char *from, *to, *reason;
};

static int cmd_campaign_reroute(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("from", struct reroute_args, from),
        OPT_TEXT("to", struct reroute_args, to),
        OPT_TEXT("reason", struct reroute_args, reason),
        {0},
    };
    struct reroute_args a = {0};
    const char *name = NULL;
    int r = begin(cli, argc, argv, options, &a, "NAME", &name);
    if (r != GO_ON)
        return r;
    const char *missing = a.from == NULL        ? "--from CHANNEL"
                          : a.to == NULL        ? "--to CHANNEL"
                          : str_empty(a.reason) ? "--reason TEXT"
                                                : NULL;
    if (missing) {
        fail(cli, "missing %s (see crier campaign reroute --help)", missing);
        return EXIT_USAGE;
    }
    enum crier_channel_id id;
    const char *unknown = channel_id_from_name(a.from, &id) < 0 ? a.from
                          : channel_id_from_name(a.to, &id) < 0 ? a.to
                                                                : NULL;
    if (unknown) {
        fail(cli, "unknown channel '%s' (email, fax, mail, null, test)", unknown);
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char *who = actor(db);
    char err[1024];
    long moved = 0, left = 0;
    r = service_reroute(db, name, a.from, a.to, a.reason, who, &moved, &left, err, sizeof(err));
    free(who);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -EINVAL || r == -EPERM ? EXIT_DATAERR : exit_code(r);
    }
    if (cli->json) {
        json_out(stdout,
                 json_pack("{s:s, s:s, s:s, s:I, s:I}", "campaign", name, "from", a.from, "to",
                           a.to, "moved", (json_int_t)moved, "left", (json_int_t)left));
        return 0;
    }
    printf("%ld notice%s moved from %s to %s", moved, moved == 1 ? "" : "s", a.from, a.to);
    if (left > 0)
        printf("; %ld left waiting on %s: %s cannot reach them", left, a.from, a.to);
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

static int cmd_run(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("until-idle", struct run_args, until_idle),
        OPT_TEXT("metrics", struct run_args, metrics),
        {0},
    };
    struct run_args a = {0};
    int r = begin_upto(cli, argc, argv, options, &a, 0);
    if (r != GO_ON)
        return r;
    int code = config_ready(cli);
    if (code)
        return code;
    /* --metrics, else metrics.listen of the first configuration: a reload keeps the port */
    const char *listen = a.metrics ? a.metrics : cli->config->metrics.listen;
    char *metrics = listen ? xstrdup(listen) : NULL;
    struct worker_options o = {.until_idle = a.until_idle,
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

static int cmd_status(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("json", struct flag_args, json),
        OPT_FLAG("watch", struct flag_args, watch),
        {0},
    };
    struct flag_args a = {0};
    int r = begin_upto(cli, argc, argv, options, &a, 1);
    if (r != GO_ON)
        return r;
    const char *name = optind < argc ? argv[optind] : NULL;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    bool watch = a.watch;
    bool tty = isatty(STDOUT_FILENO);
    if (watch) {
        signal(SIGINT, watch_signal);
        signal(SIGTERM, watch_signal);
    }
    do {
        if (watch && tty && !a.json)
            fputs("\033[H\033[2J", stdout);
        r = status_with_waiting(db, name, a.json, stdout);
        if (r < 0) {
            fail(cli, "%s", db->error);
            break;
        }
        for (int i = 0; watch && i < 20 && !watch_stop; i++)
            usleep(100000);
    } while (watch && !watch_stop);
    db_close(db);
    return r == -ENOENT ? EXIT_DATAERR : exit_code(r);
}

/* ---- returns ------------------------------------------------------------------------- */

struct returns_args {
    const char *campaign, *reject_path;
};

static int cmd_returns_ingest(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("campaign", struct returns_args, campaign),
        OPT_TEXT("reject-file", struct returns_args, reject_path),
        {0},
    };
    struct returns_args a = {0};
    int r = begin(cli, argc, argv, options, &a, NULL, NULL);
    if (r != GO_ON)
        return r;
    const char *path = one_name(cli, argc, argv, "FILE (a CSV of returned letters)");
    if (path == NULL)
        return EXIT_USAGE;
    if (access(path, R_OK) != 0) {
        fail(cli, "%s: %s", path, strerror(errno));
        return EXIT_NOINPUT;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char *who = actor(db);
    char err[1024] = "";
    struct returns_result result = {0};
    r = returns_ingest(db, path, a.campaign, who, a.reject_path, stderr, &result, err, sizeof(err));
    free(who);
    if (r < 0) {
        fail(cli, "%s; nothing was recorded", err[0] ? err : db->error);
        code = db_lost(db) ? EXIT_UNAVAILABLE : exit_code(r);
    } else if (cli->json) {
        json_out(stdout,
                 json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows",
                           (json_int_t)result.rows, "recorded", (json_int_t)result.recorded,
                           "already", (json_int_t)result.already, "unknown",
                           (json_int_t)result.unknown, "not_mailed", (json_int_t)result.not_mailed,
                           "forwarded", (json_int_t)result.forwarded, "forward_once",
                           (json_int_t)result.forward_once, "forward_rejected",
                           (json_int_t)result.forward_rejected));
    } else {
        printf("%ld rows: %ld returns recorded, %ld already recorded, %ld unknown, %ld not "
               "mailed\n",
               result.rows, result.recorded, result.already, result.unknown, result.not_mailed);
        if (result.forwarded || result.forward_once || result.forward_rejected)
            printf("forwarding addresses: %ld amended and mailed again, %ld already forwarded "
                   "once, %ld rejected\n",
                   result.forwarded, result.forward_once, result.forward_rejected);
    }
    db_close(db);
    return code;
}

/* ---- bounces ------------------------------------------------------------------------- */

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

static int cmd_bounces_ingest(struct cli *cli, int argc, char **argv)
{
    const char *path = NULL;
    int r = begin(cli, argc, argv, NULL, NULL, "PATH (a message file, Maildir or mbox)", &path);
    if (r != GO_ON)
        return r;
    char err[1024];
    struct bounce_reader *reader = NULL;
    r = bounce_reader_open(path, &reader, err, sizeof(err));
    if (r < 0) {
        fail(cli, "%s", err);
        return EXIT_NOINPUT;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code) {
        bounce_reader_free(reader);
        return code;
    }
    char *who = actor(db);
    struct bounce_counts c = {0};
    r = bounce_ingest(db, cli->config, reader, who, &c);
    free(who);
    bounce_reader_free(reader);
    bounce_counts_print(cli, &c);
    if (r < 0) {
        fail(cli, "stopped: %s", db->error);
        code = db_lost(db) ? EXIT_UNAVAILABLE : exit_code(r);
    }
    db_close(db);
    return code;
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

/* hold_exit - the exit code for a hold module error (its message is already in err). */
static int hold_exit(int r)
{
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

/* hold_done - a hold command's end: its error, or its --json object; the exit code. */
static int hold_done(struct cli *cli, int r, const char *err, json_t *json)
{
    if (r < 0) {
        json_decref(json);
        fail(cli, "%s", err);
        return hold_exit(r);
    }
    if (json)
        json_out(stdout, json);
    return 0;
}

/* hold_document - read --document FILE when given; returns an exit code. */
static int hold_document(struct cli *cli, const char *path, struct hold_document *document)
{
    if (path == NULL)
        return 0;
    char err[1024];
    int r = hold_document_read(path, document, err, sizeof(err));
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -ENOENT || r == -EACCES ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    return 0;
}

/* A hold action, once its --document is read and the database open: place, lift or
 * confirm. document is NULL without --document. */
typedef int (*hold_action)(struct cli *cli, struct crier_db *db, struct hold_args *a,
                           const char *hold, const struct hold_document *document, json_t *json,
                           char *err, size_t err_size);

/*
 * hold_run - what place, lift and confirm share once their arguments are checked: read
 * --document, connect, act, and say how it went (--json or the error). err_size: each
 * action's message limit, as it was when each wrote this itself.
 */
static int hold_run(struct cli *cli, struct hold_args *a, const char *hold, hold_action act,
                    size_t err_size)
{
    struct hold_document document = {0};
    int code = hold_document(cli, a->document_path, &document);
    if (code)
        return code;
    struct crier_db *db = NULL;
    code = connect(cli, true, &db);
    if (code) {
        hold_document_clear(&document);
        return code;
    }
    char err[2048];
    json_t *json = cli->json ? json_object() : NULL;
    int r = act(cli, db, a, hold, a->document_path ? &document : NULL, json, err,
                err_size < sizeof(err) ? err_size : sizeof(err));
    hold_document_clear(&document);
    db_close(db);
    return hold_done(cli, r, err, json);
}

static int place_act(struct cli *cli, struct crier_db *db, struct hold_args *a, const char *hold,
                     const struct hold_document *document, json_t *json, char *err, size_t err_size)
{
    a->place.document = document;
    /* a notice in flight outlives its lease only while its lane keeps extending it */
    long lease = cli->config->queue.lease_seconds;
    a->place.drain_seconds = lease * 2 > 60 ? (double)lease * 2 : 60.0;
    return hold_place(db, &a->place, stdout, json, err, err_size);
}

static int lift_act(struct cli *cli, struct crier_db *db, struct hold_args *a, const char *hold,
                    const struct hold_document *document, json_t *json, char *err, size_t err_size)
{
    return hold_lift(db, hold, a->evidence, document, a->as_name, stdout, json, err, err_size);
}

static int confirm_act(struct cli *cli, struct crier_db *db, struct hold_args *a, const char *hold,
                       const struct hold_document *document, json_t *json, char *err,
                       size_t err_size)
{
    return hold_confirm(db, hold, document, a->as_name, stdout, json, err, err_size);
}

static int cmd_hold_place(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
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
    struct hold_args a = {.document_path = NULL};
    int r = begin(cli, argc, argv, options, &a, "CAMPAIGN", &a.place.campaign);
    if (r != GO_ON)
        return r;
    if (a.place.region && a.place.recipient) {
        fail(cli, "give --region or --recipient, not both (neither: the whole campaign)");
        return EXIT_USAGE;
    }
    const struct {
        const char *what, *value;
    } required[] = {
        {"--authority AGENCY", a.place.authority}, {"--official NAME", a.place.official},
        {"--case REF", a.place.case_ref},          {"--form written|oral", a.place.form},
        {"--reason TEXT", a.place.reason},
    };
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (required[i].value == NULL) {
            fail(cli, "%s is required (see crier hold place --help)", required[i].what);
            return EXIT_USAGE;
        }
    }
    a.place.as_name = a.as_name;
    char err[2048];
    r = hold_options_check(&a.place, err, sizeof(err));
    if (r < 0) {
        fail(cli, "%s", err);
        return EXIT_DATAERR;
    }
    return hold_run(cli, &a, NULL, place_act, sizeof(err));
}

static int cmd_hold_lift(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("evidence", struct hold_args, evidence),
        OPT_TEXT("document", struct hold_args, document_path),
        OPT_TEXT("as", struct hold_args, as_name),
        {0},
    };
    struct hold_args a = {.document_path = NULL};
    const char *hold = NULL;
    int r = begin(cli, argc, argv, options, &a, HOLD_NUMBER, &hold);
    if (r != GO_ON)
        return r;
    if (a.evidence == NULL) {
        fail(cli, "--evidence TEXT is required: what the agency said, and when");
        return EXIT_USAGE;
    }
    return hold_run(cli, &a, hold, lift_act, 1024);
}

static int cmd_hold_confirm(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("written", struct hold_args, written),
        OPT_TEXT("document", struct hold_args, document_path),
        OPT_TEXT("as", struct hold_args, as_name),
        {0},
    };
    struct hold_args a = {.document_path = NULL};
    const char *hold = NULL;
    int r = begin(cli, argc, argv, options, &a, HOLD_NUMBER, &hold);
    if (r != GO_ON)
        return r;
    if (!a.written || a.document_path == NULL) {
        fail(cli, "--written and --document FILE are required: an oral hold is confirmed by the "
                  "agency's written statement");
        return EXIT_USAGE;
    }
    return hold_run(cli, &a, hold, confirm_act, 1024);
}

static int cmd_hold_list(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("active", struct hold_args, active),
        OPT_FLAG("json", struct hold_args, json),
        {0},
    };
    struct hold_args a = {.document_path = NULL};
    int r = begin_upto(cli, argc, argv, options, &a, 1);
    if (r != GO_ON)
        return r;
    const char *campaign = optind < argc ? argv[optind] : NULL;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char err[1024];
    r = hold_list(db, campaign, a.active, a.json, stdout, err, sizeof(err));
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return hold_exit(r);
    }
    return 0;
}

static int cmd_hold_show(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {OPT_FLAG("json", struct hold_args, json), {0}};
    struct hold_args a = {.document_path = NULL};
    const char *hold = NULL;
    int r = begin(cli, argc, argv, options, &a, HOLD_NUMBER, &hold);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char err[1024];
    /* the rules table gives the deadlines that run from a lift; without it, none are shown */
    struct rules_table *rules = NULL;
    const char *rules_path =
        cli->config->report.deadlines ? cli->config->report.deadlines : rules_default_path();
    if (rules_load(rules_path, NULL, &rules, err, sizeof(err)) < 0)
        fprintf(stderr, "crier hold show: warning: no clearance deadlines: %s\n", err);
    r = hold_show(db, hold, a.json, rules, stdout, err, sizeof(err));
    rules_free(rules);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return hold_exit(r);
    }
    return 0;
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

static int cmd_hold_check(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_WHOLE("mail-to", hold_check_mail_to, 0),
        {0},
    };
    struct hold_check_args a = {0};
    int r = begin_upto(cli, argc, argv, options, &a, 0);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    long count = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *report = open_memstream(&text, &len);
    r = hold_check(db, report, &count);
    fclose(report);
    json_t *alerts = NULL;
    if (r == 0 && cli->json && (r = hold_check_json(db, &alerts)) == 0)
        json_out(stdout, alerts);
    else if (!cli->json)
        fputs(text, stdout);
    if (r < 0)
        fail(cli, "%s", db->error);
    db_close(db);
    if (r < 0) {
        free(text);
        return exit_code(r);
    }
    /* --mail-to: legal hears of it through the configured relay (crier-hold-check.timer) */
    if (count > 0 && a.count > 0) {
        char *subject = xasprintf("crier: %ld law-enforcement hold%s need%s legal's attention",
                                  count, count == 1 ? "" : "s", count == 1 ? "s" : "");
        char *body = xasprintf("crier hold check found holds that lapsed or passed their review "
                               "date:\n\n%s\nEach needs a decision: confirm it in writing "
                               "(crier hold confirm), ask the agency again, or lift it (crier "
                               "hold lift).\n",
                               text);
        char sent[512];
        int m = email_send_text(cli->config, a.to, subject, body, sent, sizeof(sent));
        free(subject);
        free(body);
        if (m < 0) {
            fail(cli, "mailing %s: %s", a.to[0], sent);
            free(text);
            return EXIT_UNAVAILABLE;
        }
        fprintf(stderr, "crier hold check: mailed to %d address%s, %s\n", a.count,
                a.count == 1 ? "" : "es", sent);
    }
    free(text);
    return count > 0 ? 1 : 0;
}

/* ---- batch (print batches of the mail channel: engine/core/batch.c) ----------------------- */

struct batch_args {
    bool json;
    const char *date, *evidence, *reason;
};

static int cmd_batch(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("json", struct batch_args, json),
        OPT_TEXT("date", struct batch_args, date),
        OPT_TEXT("evidence", struct batch_args, evidence),
        OPT_TEXT("reason", struct batch_args, reason),
        {0},
    };
    const char *name = strchr(cli->command, ' ') + 1; /* "list", "show", ... */
    struct batch_args a = {0};
    int r = begin(cli, argc, argv, options, &a, NULL, NULL);
    if (r != GO_ON)
        return r;
    bool list = strcmp(name, "list") == 0, mark = strcmp(name, "mark-mailed") == 0;
    bool void_batch = strcmp(name, "void") == 0;
    const char *what = one_name(cli, argc, argv, list ? "NAME" : "BATCH (crier batch list NAME)");
    if (what == NULL)
        return EXIT_USAGE;
    if ((a.date && !mark) || (a.evidence && !mark) || (a.reason && !void_batch)) {
        fail(cli, "an option this command does not take (see crier %s --help)", cli->command);
        return EXIT_USAGE;
    }
    if (mark && a.date == NULL) {
        fail(cli, "--date YYYY-MM-DD is required: the day the post office accepted the batch");
        return EXIT_USAGE;
    }
    if (void_batch && a.reason == NULL) {
        fail(cli, "--reason TEXT is required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char err[1024] = "";
    /* --json: the result in one object on stdout; warnings on the way go to stderr */
    json_t *result = a.json && (mark || void_batch) ? json_object() : NULL;
    FILE *out = result ? stderr : stdout;
    if (list)
        r = batch_list(db, cli->config, what, a.json, stdout, err, sizeof(err));
    else if (mark)
        r = batch_mark_mailed(db, cli->config, what, a.date, a.evidence, out, result, err,
                              sizeof(err));
    else if (void_batch)
        r = batch_void(db, cli->config, what, a.reason, out, result, err, sizeof(err));
    else
        r = batch_show(db, cli->config, what, a.json, stdout, err, sizeof(err));
    db_close(db);
    if (r < 0) {
        json_decref(result);
        fail(cli, "%s", err);
        return r == -EALREADY ? EXIT_DATAERR : exit_code(r);
    }
    if (result)
        json_out(stdout, result);
    return 0;
}

/* campaign_fail - a module's error, said; an unknown campaign is bad data (65), as an
 * argument that names nothing, not a missing file. */
static int campaign_fail(struct cli *cli, int r, const char *err)
{
    fail(cli, "%s", err);
    return r == -ENOENT && strncmp(err, "no campaign", 11) == 0 ? EXIT_DATAERR : exit_code(r);
}

/* ---- audit report (engine/cmd/report.c) ---------------------------------------------------- */

static int cmd_audit_report(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_FLAG("json", struct report_options, json),
        OPT_TEXT("html", struct report_options, html_path),
        OPT_TEXT("discovered", struct report_options, discovered),
        OPT_TEXT("framework", struct report_options, frameworks),
        {0},
    };
    struct report_options o = {.json = false};
    int r = begin(cli, argc, argv, options, &o, "CAMPAIGN", &o.campaign);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    report_options_configure(&o, cli->config);
    o.progress = isatty(STDERR_FILENO) && !o.json;
    char err[1024] = "";
    r = report_run(db, &o, stdout, err, sizeof(err));
    db_close(db);
    return r < 0 ? campaign_fail(cli, r, err) : 0;
}

/* ---- regulators ---------------------------------------------------------------------- */

struct regulators_args {
    struct report_options report;
    struct regulators_filing filing;
    const char *out;
};

static int cmd_regulators(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("out", struct regulators_args, out),
        OPT_TEXT("discovered", struct regulators_args, report.discovered),
        OPT_TEXT("framework", struct regulators_args, report.frameworks),
        {0},
    };
    struct regulators_args a = {0};
    int r = begin(cli, argc, argv, options, &a, "CAMPAIGN", &a.report.campaign);
    if (r != GO_ON)
        return r;
    if (a.out == NULL) {
        fail(cli, "--out DIR is required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    report_options_configure(&a.report, cli->config);
    char err[1024] = "";
    r = regulators_packet(db, cli->config, &a.report, a.out, stdout, err, sizeof(err));
    db_close(db);
    return r < 0 ? campaign_fail(cli, r, err) : 0;
}

static int cmd_regulators_mark_filed(struct cli *cli, int argc, char **argv)
{
    static const struct opt_row options[] = {
        OPT_TEXT("jurisdiction", struct regulators_args, filing.jurisdiction),
        OPT_TEXT("regulator", struct regulators_args, filing.regulator),
        OPT_TEXT("date", struct regulators_args, filing.date),
        OPT_TEXT("how", struct regulators_args, filing.how),
        OPT_TEXT("reference", struct regulators_args, filing.reference),
        {0},
    };
    struct regulators_args a = {0};
    int r = begin(cli, argc, argv, options, &a, "CAMPAIGN", &a.filing.campaign);
    if (r != GO_ON)
        return r;
    struct crier_db *db = NULL;
    int code = connect(cli, true, &db);
    if (code)
        return code;
    char err[1024] = "";
    r = regulators_mark_filed(db, &a.filing, stdout, err, sizeof(err));
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -EINVAL || r == -ENOENT ? EXIT_DATAERR : exit_code(r);
    }
    return 0;
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

int cli_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"log-level", required_argument, NULL, 'L'},
        {0},
    };
    struct cli cli = {.command = ""};
    log_setup(LOG_FORMAT_AUTO, LOG_INFO);
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli.config_path = optarg;
            break;
        case 'L':
            if (log_level_from_name(optarg, &cli.log_level) < 0) {
                fprintf(stderr,
                        "crier: --log-level '%s': expected debug, info, notice, "
                        "warning or error\n",
                        optarg);
                return EXIT_USAGE;
            }
            cli.log_level_set = true;
            log_setup(LOG_FORMAT_AUTO, cli.log_level);
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
    const char *group = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    const struct command *c = command_find(group, name);
    if (c == NULL) {
        bool known_group = command_find(group, NULL) || strcmp(group, "db") == 0 ||
                           strcmp(group, "config") == 0 || strcmp(group, "campaign") == 0 ||
                           strcmp(group, "bounces") == 0 || strcmp(group, "hold") == 0 ||
                           strcmp(group, "returns") == 0 || strcmp(group, "batch") == 0 ||
                           strcmp(group, "audit") == 0 || strcmp(group, "notice") == 0;
        if (known_group &&
            (name == NULL || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
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
    char command_name[64];
    snprintf(command_name, sizeof(command_name), "%s%s%s", c->group, c->name ? " " : "",
             c->name ? c->name : "");
    cli.command = command_name;
    cli.current = c;
    int skip = optind + (c->name ? 1 : 0);
    int code = c->run(&cli, argc - skip, argv + skip);
    config_free(cli.config);
    config_free(cli.reloaded);
    return code;
}

/* ---- serve (engine/cmd/serve.c) ---------------------------------------------------------- */

static int cmd_serve(struct cli *cli, int argc, char **argv)
{
    struct serve_args {
        const char *listen;
    } a = {0};
    static const struct opt_row options[] = {OPT_TEXT("listen", struct serve_args, listen), {0}};
    int r = begin_upto(cli, argc, argv, options, &a, 0);
    if (r != GO_ON)
        return r;
    int code = config_ready(cli);
    return code ? code : serve_main(cli->config, a.listen);
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

/* audit_fail - a module's error, with the database's refusal named as such. */
static int audit_fail(struct cli *cli, int r, const char *err)
{
    if (r == -EACCES)
        fail(cli, "%s (the database refused: your role may not do this)", err);
    else
        fail(cli, "%s", err);
    return exit_code(r);
}

static int cmd_audit_log(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {.query.format = AUDIT_TABLE};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 1);
    if (code >= 0)
        return code;
    a.query.campaign = optind < argc ? argv[optind] : NULL;
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024];
    long rows = 0;
    int r = audit_log(db, &a.query, stdout, &rows, err, sizeof(err));
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    if (fflush(stdout) != 0) {
        fail(cli, "writing the log: %s", strerror(errno));
        return EXIT_IOERR;
    }
    return 0;
}

static int cmd_audit_show(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {0};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 2);
    if (code >= 0)
        return code;
    if (argc - optind != 2) {
        fail(cli, "missing CAMPAIGN REF (see crier audit show --help)");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024];
    int r = audit_show(db, cli->config, argv[optind], argv[optind + 1], a.json, a.out, stdout, err,
                       sizeof(err));
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    return r; /* 1: a content did not verify */
}

static int cmd_audit_verify(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {0};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 0);
    if (code >= 0)
        return code;
    char err[1024];
    int r;
    /* a progress line on a terminal; never in JSON or a pipe */
    seal_progress(isatty(STDERR_FILENO) && !a.json);
    if (a.file) {
        if (a.campaign) {
            fail(cli, "--campaign and --file: an export is verified whole");
            return EXIT_USAGE;
        }
        r = seal_verify_file(a.file, a.expect_head, a.json, stdout, err, sizeof(err));
        if (r < 0) {
            fail(cli, "%s", err);
            return r == -EINVAL ? EXIT_DATAERR : exit_code(r);
        }
        return r;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    r = seal_verify(db, a.campaign, a.expect_head, a.json, stdout);
    if (r < 0)
        snprintf(err, sizeof(err), "%s", r == -ENOENT ? "no such campaign" : db->error);
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    return r;
}

static int cmd_audit_head(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {0};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 0);
    if (code >= 0)
        return code;
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    int r = seal_head(db, a.campaign, a.json, stdout);
    char err[1024];
    snprintf(err, sizeof(err), "%s", r == -ENOENT ? "no such campaign" : db->error);
    db_close(db);
    return r < 0 ? audit_fail(cli, r, err) : 0;
}

static int cmd_audit_export(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {0};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 0);
    if (code >= 0)
        return code;
    if (a.out == NULL) {
        fail(cli, "missing --out FILE.jsonl (see crier audit export --help)");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    /* written beside its name and renamed when complete: never a partial export */
    char *tmp = xasprintf("%s.tmp", a.out);
    FILE *out = fopen(tmp, "w");
    if (out == NULL) {
        fail(cli, "%s: %s", tmp, strerror(errno));
        free(tmp);
        db_close(db);
        return EXIT_IOERR;
    }
    long rows = 0;
    seal_progress(isatty(STDERR_FILENO) && !a.json);
    int r = seal_export(db, a.campaign, out, &rows);
    char err[1024];
    snprintf(err, sizeof(err), "%s", r == -ENOENT ? "no such campaign" : db->error);
    db_close(db);
    bool written = r == 0 && fflush(out) == 0 && fsync(fileno(out)) == 0;
    if (fclose(out) != 0)
        written = false;
    if (r == 0 && written && rename(tmp, a.out) == 0) {
        free(tmp);
        if (a.json)
            json_out(stdout, json_pack("{s:s, s:I}", "file", a.out, "rows", (json_int_t)rows));
        else
            fprintf(stderr, "crier: exported %ld log rows to %s\n", rows, a.out);
        return 0;
    }
    int saved = errno;
    unlink(tmp);
    free(tmp);
    if (r < 0)
        return audit_fail(cli, r, err);
    fail(cli, "%s: %s", a.out, strerror(saved));
    return EXIT_IOERR;
}

static int cmd_audit_seal(struct cli *cli, int argc, char **argv)
{
    struct audit_args a = {0};
    int code = begin_upto(cli, argc, argv, audit_options, &a, 0);
    if (code >= 0)
        return code;
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    long rows = 0, blocks = 0;
    int r = seal_run(db, cli->config->audit.block_rows, cli->config->audit.seal_lock_timeout_ms,
                     &rows, &blocks);
    char err[1024];
    snprintf(err, sizeof(err), "%s",
             r == -EAGAIN ? "log writers did not finish in time: try again" : db->error);
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    if (a.json)
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

/* unreached_parse - options and exactly min..max positional arguments; -1 to go on. */
static int unreached_parse(struct cli *cli, const char *group, const char *name, int argc,
                           char **argv, int min, int max, struct unreached_args *a)
{
    int r = begin(cli, argc, argv, unreached_options, a, NULL, NULL);
    if (r != GO_ON)
        return r;
    if (argc - optind < min || argc - optind > max) {
        fail(cli, "%s (see crier %s --help)",
             argc - optind < min ? "missing arguments" : "too many arguments", cli->command);
        return EXIT_USAGE;
    }
    return -1;
}

static int cmd_campaign_amend(struct cli *cli, int argc, char **argv)
{
    struct unreached_args a = {0};
    int code = unreached_parse(cli, "campaign", "amend", argc, argv, 1, 1, &a);
    if (code >= 0)
        return code;
    if (a.amend.csv_path == NULL || a.amend.reason == NULL) {
        fail(cli, "--csv FILE and --reason TEXT are required");
        return EXIT_USAGE;
    }
    if (access(a.amend.csv_path, R_OK) != 0) {
        fail(cli, "%s: %s", a.amend.csv_path, strerror(errno));
        return EXIT_NOINPUT;
    }
    a.amend.campaign = argv[optind];
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char *who = actor(db);
    a.amend.actor = who;
    a.amend.progress = isatty(STDERR_FILENO) && !a.find.json;
    struct amend_result result = {0};
    char err[1024] = "";
    int r = amend_apply(db, cli->config, &a.amend, stderr, &result, err, sizeof(err));
    free(who);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        if (a.amend.reject_path && result.rejected)
            fprintf(stderr, "crier: rejected rows: %s\n", a.amend.reject_path);
        return r == -EACCES ? EXIT_NOPERM : exit_code(r);
    }
    if (a.find.json) {
        json_out(stdout,
                 json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "campaign", a.amend.campaign,
                           "rows", (json_int_t)result.rows, "amended", (json_int_t)result.amended,
                           "unchanged", (json_int_t)result.unchanged, "requeued",
                           (json_int_t)result.requeued, "reached", (json_int_t)result.reached,
                           "in_flight", (json_int_t)result.in_flight, "no_channel",
                           (json_int_t)result.no_channel));
        return 0;
    }
    printf("campaign %s: %ld rows, %ld amended, %ld unchanged; %ld queued again, %ld already "
           "reached (left alone), %ld in flight (left to that attempt), %ld still without a "
           "usable channel\n",
           a.amend.campaign, result.rows, result.amended, result.unchanged, result.requeued,
           result.reached, result.in_flight, result.no_channel);
    return 0;
}

static int cmd_notice_resend(struct cli *cli, int argc, char **argv)
{
    struct unreached_args a = {0};
    int code = unreached_parse(cli, "notice", "resend", argc, argv, 2, 2, &a);
    if (code >= 0)
        return code;
    if (a.channel == NULL || a.amend.reason == NULL) {
        fail(cli, "--channel C and --reason TEXT are required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char *who = actor(db);
    char err[1024] = "";
    int r = notice_resend(db, argv[optind], argv[optind + 1], a.channel, a.amend.reason, who, err,
                          sizeof(err));
    free(who);
    db_close(db);
    if (r < 0) {
        fail(cli, "%s", err);
        return r == -EBUSY ? EXIT_TEMPFAIL : exit_code(r);
    }
    if (a.find.json)
        json_out(stdout, json_pack("{s:s, s:s, s:s}", "campaign", argv[optind], "ref",
                                   argv[optind + 1], "channel", a.channel));
    else
        printf("%s in %s: another copy queued on %s\n", argv[optind + 1], argv[optind], a.channel);
    return 0;
}

static int cmd_audit_find(struct cli *cli, int argc, char **argv)
{
    struct unreached_args a = {0};
    int code = unreached_parse(cli, "audit", "find", argc, argv, 0, 1, &a);
    if (code >= 0)
        return code;
    if (a.keys != 1) {
        fail(cli, "give exactly one of --ref, --email, --fax, --name, --postal");
        return EXIT_USAGE;
    }
    a.find.campaign = optind < argc ? argv[optind] : NULL;
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024] = "";
    long found = 0;
    int r = audit_find(db, &a.find, stdout, &found, err, sizeof(err));
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    if (!a.find.json)
        fprintf(stderr, "crier: %ld found\n", found);
    return found ? 0 : 1;
}

static int cmd_audit_unreached(struct cli *cli, int argc, char **argv)
{
    struct unreached_args a = {.format = UNREACHED_CSV};
    int code = unreached_parse(cli, "audit", "unreached", argc, argv, 1, 1, &a);
    if (code >= 0)
        return code;
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024] = "";
    long rows = 0;
    int r = audit_unreached(db, argv[optind], a.format, stdout, &rows, err, sizeof(err));
    db_close(db);
    if (r < 0)
        return audit_fail(cli, r, err);
    if (fflush(stdout) != 0) {
        fail(cli, "writing the list: %s", strerror(errno));
        return EXIT_IOERR;
    }
    fprintf(stderr, "crier: %ld people not reached\n", rows);
    return 0;
}

/* ---- substitute notice ------------------------------------------------------------------ */

struct substitute_args {
    struct substitute_options options;
    struct substitute_act act;
    const char *out;
};

/* substitute_parse - options and the one CAMPAIGN; < 0 to go on, else the exit code. */
static int substitute_parse(struct cli *cli, const char *verb, int argc, char **argv,
                            struct substitute_args *a)
{
    static const struct opt_row options[] = {
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
    const char *name = NULL;
    int r = begin(cli, argc, argv, options, a, "CAMPAIGN", &name);
    if (r != GO_ON)
        return r;
    a->options.campaign = a->act.campaign = name;
    int code = config_ready(cli);
    if (code)
        return code;
    a->options.rules_path = cli->config->report.deadlines;
    a->options.postage = cli->config->substitute.postage_per_letter;
    a->options.print = cli->config->substitute.print_per_letter;
    return -1;
}

static int cmd_substitute(struct cli *cli, int argc, char **argv)
{
    struct substitute_args a = {0};
    int code = substitute_parse(cli, NULL, argc, argv, &a);
    if (code >= 0)
        return code;
    if (a.out || a.act.url || a.act.outlet || a.act.from || a.act.until || a.act.date ||
        a.act.jurisdiction) {
        fail(cli, "crier substitute CAMPAIGN takes only --framework and --json");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024] = "";
    json_t *model = NULL;
    int r = substitute_assess(db, &a.options, &model, err, sizeof(err));
    db_close(db);
    if (r < 0)
        return campaign_fail(cli, r, err);
    if (cli->json)
        json_out(stdout, model);
    else {
        substitute_print(model, stdout);
        json_decref(model);
    }
    return 0;
}

static int cmd_substitute_write(struct cli *cli, int argc, char **argv)
{
    struct substitute_args a = {0};
    int code = substitute_parse(cli, "write", argc, argv, &a);
    if (code >= 0)
        return code;
    if (a.out == NULL) {
        fail(cli, "--out DIR is required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char *who = actor(db);
    char err[1024] = "";
    json_t *result = NULL;
    int r = substitute_write(db, cli->config, &a.options, a.out, who, start_check, cli, &result,
                             err, sizeof(err));
    free(who);
    db_close(db);
    if (r < 0)
        return campaign_fail(cli, r, err);
    if (cli->json) {
        json_out(stdout, result);
        return 0;
    }
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

/* substitute_act_run - posted or media: record, then say what was recorded. */
static int substitute_act_run(struct cli *cli, int argc, char **argv, const char *verb)
{
    struct substitute_args a = {0};
    int code = substitute_parse(cli, verb, argc, argv, &a);
    if (code >= 0)
        return code;
    bool posted = strcmp(verb, "posted") == 0;
    if (posted ? a.act.url == NULL || a.act.from == NULL || a.act.until == NULL
               : a.act.outlet == NULL || a.act.date == NULL || a.act.jurisdiction == NULL) {
        fail(cli, posted ? "--url, --from and --until are required"
                         : "--outlet, --date and --state are required");
        return EXIT_USAGE;
    }
    struct crier_db *db = NULL;
    if ((code = connect(cli, true, &db)))
        return code;
    char err[1024] = "";
    int r = posted ? substitute_posted(db, &a.act, err, sizeof(err))
                   : substitute_media(db, &a.act, err, sizeof(err));
    db_close(db);
    if (r < 0)
        return campaign_fail(cli, r, err);
    if (cli->json)
        json_out(stdout, posted ? json_pack("{s:s, s:s, s:s, s:s, s:s}", "campaign", a.act.campaign,
                                            "recorded", "posted", "url", a.act.url, "from",
                                            a.act.from, "until", a.act.until)
                                : json_pack("{s:s, s:s, s:s, s:s, s:s}", "campaign", a.act.campaign,
                                            "recorded", "media", "outlet", a.act.outlet, "date",
                                            a.act.date, "state", a.act.jurisdiction));
    else
        printf("%s: %s recorded (logged)\n", a.act.campaign,
               posted ? "website posting" : "media notice");
    return 0;
}

static int cmd_substitute_posted(struct cli *cli, int argc, char **argv)
{
    return substitute_act_run(cli, argc, argv, "posted");
}

static int cmd_substitute_media(struct cli *cli, int argc, char **argv)
{
    return substitute_act_run(cli, argc, argv, "media");
}
