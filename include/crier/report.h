/*
 * report.h - `crier audit report`: what an auditor needs to judge a campaign, read from the
 * database in one read-only snapshot (docs/audit-report.md).
 */
#ifndef CRIER_REPORT_H
#define CRIER_REPORT_H

#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>

#include "crier/db.h"

struct report_options {
    const char *campaign;       /* its name */
    const char *discovered;     /* --discovered YYYY-MM-DD; NULL = the campaign's meta */
    const char *frameworks;     /* --framework LIST (comma-separated); NULL = the campaign's meta */
    const char *deadlines;      /* the rules table (YAML, docs/jurisdictions.md); NULL = the one
                                 * shipped with crier */
    bool oral_lapse_everywhere; /* report.oral_lapse: everywhere; else only where a declared
                                 * framework has the rule (HIPAA) */
    long list_limit;            /* people listed per list; the rest are counted */
    bool json;                  /* one JSON object on out instead of text tables */
    const char *html_path;      /* also write one self-contained HTML file here; NULL = none */
    bool progress;              /* a progress line on stderr as the notices are read (a terminal) */
    double postage_per_letter;  /* substitute.*: the substitute-notice cost estimate */
    double print_per_letter;
};

struct crier_config;

/* report_options_configure - the options the configuration sets (report.deadlines,
 * report.oral_lapse, report.list_limit, substitute.*_per_letter), for every caller alike:
 * audit report, the regulator packet, and the console's pages. */
void report_options_configure(struct report_options *options, const struct crier_config *config);

/*
 * report_run - compute the report and print it on out (text or JSON), and write the HTML
 * file when asked. Reads only: one REPEATABLE READ READ ONLY transaction, rows streamed
 * through a cursor. Returns 0; -ENOENT (no such campaign), -EINVAL (a bad deadline
 * table or date, named in err), -EIO (the HTML file), or a database error code.
 */
int report_run(struct crier_db *db, const struct report_options *options, FILE *out, char *err,
               size_t err_size);

/* report_model - the report as the one JSON object report_run prints with --json (a new
 * reference in *ret_model): for the regulator packet, which acts on the same figures. */
int report_model(struct crier_db *db, const struct report_options *options, json_t **ret_model,
                 char *err, size_t err_size);

#endif
