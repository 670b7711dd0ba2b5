/*
 * proof.h - `crier campaign proof`: sample notices for legal review, nothing sent.
 */
#ifndef CRIER_PROOF_H
#define CRIER_PROOF_H

#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

/*
 * proof_write - render up to count sample notices per jurisdiction (region) present in
 * the campaign, for every channel of its policy that can reach them, into out_dir
 * (created if missing): REGION-REF-email.eml (the exact message), REGION-REF-letter.pdf
 * (the letter as the mail channel prints it), REGION-REF-fax.pdf (the fax as transmitted)
 * and REGION-REF-letter.md (its body).
 * Lists each file on report. -ENOENT: no such campaign; -EINVAL: templates fail.
 */
int proof_write(struct crier_db *db, const struct crier_config *config, const char *campaign,
                const char *out_dir, int count, FILE *report, FILE *diag);

#endif
