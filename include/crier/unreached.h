/*
 * unreached.h - finding people (`crier audit find`) and listing everyone not reached
 * (`crier audit unreached`). Read-only: crier_auditor may run both. docs/unreached.md.
 */
#ifndef CRIER_UNREACHED_H
#define CRIER_UNREACHED_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/db.h"

enum find_key {
    FIND_REF,    /* exact */
    FIND_EMAIL,  /* exact, normalised as a load normalises (domain in lower case) */
    FIND_FAX,    /* exact, in E.164 */
    FIND_NAME,   /* case-insensitive prefix of the name or of its last word */
    FIND_POSTAL, /* a US ZIP matches its ZIP+4 too; other codes exactly */
};

struct find_query {
    const char *campaign; /* NULL: every campaign */
    enum find_key key;
    const char *value;
    bool json; /* a JSON array instead of a table */
};

/*
 * audit_find - the people whose current or earlier contacts match, each with their
 * current contacts, their notice's state and which versions matched. Index probes only
 * (010_unreached.sql). *ret_found: people printed. -EINVAL: a value that cannot be any
 * stored contact (why in err); -ENOENT: no such campaign.
 */
int audit_find(struct crier_db *db, const struct find_query *query, FILE *out, long *ret_found,
               char *err, size_t err_size);

enum unreached_format {
    UNREACHED_CSV,  /* RFC 4180 with a header line, formula-like values neutralised */
    UNREACHED_JSON, /* one JSON object per line */
};

/*
 * audit_unreached - everyone in the campaign not reached: undeliverable (with or without a
 * usable contact) and letters returned, each with the reason and their last attempt,
 * streamed through a cursor (memory stays flat at any size). *ret_rows: people written.
 */
int audit_unreached(struct crier_db *db, const char *campaign, enum unreached_format format,
                    FILE *out, long *ret_rows, char *err, size_t err_size);

/* csv_guarded - value as one RFC 4180 field; a value a spreadsheet would run as a formula
 * (starting with = + - @, a tab or a carriage return) gets a leading apostrophe. */
void csv_guarded(FILE *out, const char *value);

#endif
