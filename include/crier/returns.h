/*
 * returns.h - `crier returns ingest`: letters the post office brought back.
 */
#ifndef CRIER_RETURNS_H
#define CRIER_RETURNS_H

#include <stdio.h>

#include "crier/db.h"

struct returns_result {
    long rows;             /* data rows read */
    long recorded;         /* new 'returned' log rows */
    long already;          /* returns recorded by an earlier ingest */
    long unknown;          /* no such campaign or ref */
    long not_mailed;       /* the person's letter is not (yet) marked mailed */
    long forwarded;        /* returned with a forwarding address: amended and mailed again */
    long forward_once;     /* a forwarding address for someone already forwarded once */
    long forward_rejected; /* a forwarding address that failed validation (reject file) */
};

/*
 * returns_ingest - read a CSV with a `ref` column (and optional `campaign`, `reason`,
 * `returned_on` columns; campaign defaults to the campaign argument) and log one
 * 'returned' row per mailed letter named, once: ingesting a file twice records nothing
 * new. The notice stays `mailed` (it was mailed); the row is what the substitute-notice
 * report counts. Unknown refs and letters not mailed are counted and written to diag.
 * -EINVAL with err for a file that cannot be read as such a CSV (nothing recorded).
 *
 * Forwarding addresses (the USPS yellow label's new address, as the print house reports
 * it): columns forward_address1, forward_address2, forward_city, forward_region,
 * forward_postal_code, forward_country. A row with one is validated as a load validates an
 * address; a valid one becomes a new version of the person's address and their letter is
 * mailed again, once per person (amend.h, amend_forward), logged; an invalid one goes to
 * the reject file (reject_path, may be NULL) and to diag, and the return is still recorded.
 */
int returns_ingest(struct crier_db *db, const char *path, const char *campaign, const char *actor,
                   const char *reject_path, FILE *diag, struct returns_result *ret_result,
                   char *err, size_t err_size);

#endif
