/*
 * import.h - loading an affected-individual list into a campaign.
 *
 * A load is one transaction: it either adds every accepted row (recipient snapshot plus a
 * ready notice each) or, on any error, nothing at all. Once it has committed, the
 * campaign's `audit find` indexes are built before import_load returns (find_index.h). Rows that
 * fail validation are rejected with their source row and reason; the rest load.
 */
#ifndef CRIER_IMPORT_H
#define CRIER_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

struct import_options {
    const char *campaign;
    const char *csv_path;    /* exactly one of csv_path, table, query */
    const char *table;       /* SCHEMA.TABLE */
    const char *query;       /* SQL run with the operator's own database role */
    const char *reject_path; /* CSV of rejected rows and dropped contacts, may be NULL */
    bool progress;           /* draw a progress line on stderr */
    const char *actor;
};

struct import_result {
    int64_t load_id;
    long rows;             /* data rows read */
    long loaded;           /* notices created */
    long rejected;         /* rows not loaded */
    long contacts_dropped; /* rows loaded with a contact dropped */
    long undeliverable;    /* loaded, but no channel of the policy can reach them */
    long find_built;       /* `audit find` indexes it built (find_index.h) */
    long find_missing;     /* ... and still missing for this campaign when the load returns */
};

/*
 * import_load - load a list. Every rejected row is written to diag (the first few) and to
 * the reject file (all). Returns 0, or: -ENOENT no such campaign, -EPERM campaign not
 * loadable, -EINVAL/-EILSEQ/-EBADMSG bad input (nothing loaded), -EIO file errors, or a
 * database error. err says what and where.
 */
int import_load(struct crier_db *db, const struct crier_config *config,
                const struct import_options *options, FILE *diag, struct import_result *ret_result,
                char *err, size_t err_size);

#endif
