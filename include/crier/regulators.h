/*
 * regulators.h - `crier regulators`: the regulator notice packet of a campaign (a PDF letter
 * per regulator notice due, a CSV of the counts regulators' forms ask for, the HHS breach
 * portal's fields under HIPAA), every file logged with its SHA-256; and `crier regulators
 * mark-filed`, the logged record that a notice was filed (docs/jurisdictions.md).
 */
#ifndef CRIER_REGULATORS_H
#define CRIER_REGULATORS_H

#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"
#include "crier/report.h"

/*
 * regulators_packet - write the packet of the notices the rules table says are due (the
 * report's flags.due, required or conditional) into out_dir, then log each file (event
 * 'regulator', to_state 'packet', its SHA-256) in one transaction. Lists the files on out.
 * Returns the number of files, or -ENOENT (no campaign), -EINVAL (why in err), -EIO.
 */
int regulators_packet(struct crier_db *db, const struct crier_config *config,
                      const struct report_options *options, const char *out_dir, FILE *out,
                      char *err, size_t err_size);

/* One filing, as `crier regulators mark-filed` records it. */
struct regulators_filing {
    const char *campaign;
    const char *jurisdiction; /* "CA", "HIPAA" */
    const char *regulator;    /* as the packet names it: "Attorney General" */
    const char *date;         /* YYYY-MM-DD, not in the future */
    const char *how;          /* portal | mail | email | fax | other */
    const char *reference;    /* the regulator's confirmation number, or a tracking number */
};

/* regulators_mark_filed - log the filing (event 'regulator', to_state 'filed'). -ENOENT (no
 * campaign), -EINVAL (a bad field, why in err). */
int regulators_mark_filed(struct crier_db *db, const struct regulators_filing *filing, FILE *out,
                          char *err, size_t err_size);

#endif
