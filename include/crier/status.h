/*
 * status.h - `crier status`: where every notice of a campaign stands.
 */
#ifndef CRIER_STATUS_H
#define CRIER_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/db.h"

/*
 * status_print - counts by state and by channel for one campaign (name) or all (NULL).
 * json: one object for a named campaign (the documented contract), an array for all.
 * -ENOENT when the named campaign does not exist.
 */
int status_print(struct crier_db *db, const char *name, bool json, FILE *out);

#endif
