/*
 * migrate.h - the schema, versioned and embedded in the binary.
 */
#ifndef CRIER_MIGRATE_H
#define CRIER_MIGRATE_H

#include "crier/db.h"

/* migrate_latest - the newest schema version this binary knows. */
unsigned migrate_latest(void);

/*
 * migrate_apply - bring the schema up to date in one transaction (serialized by an advisory
 * lock, so two concurrent runs are safe). *ret_from and *ret_to are the versions before and
 * after; equal when there was nothing to do.
 */
int migrate_apply(struct crier_db *db, unsigned *ret_from, unsigned *ret_to);

/*
 * migrate_check - 0 if the schema is at the version this binary expects, -ENOENT if it was
 * never migrated, -ESTALE if it is older, -EPROTO if it is newer than this binary.
 */
int migrate_check(struct crier_db *db, unsigned *ret_version);

#endif
