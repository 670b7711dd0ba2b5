/*
 * parallel.h - a list of statements run side by side on several connections.
 *
 * Index builds are independent sorts, so crier runs them on more than one backend: one
 * sorting while another writes its index. A load's staging tables (import.c) and the
 * `audit find` indexes after it (find_index.c) both hand a list of rows to the connections
 * they have; each connection takes the next row until none is left, and the first failure
 * stops the others from taking more. What a row means, and what of it is counted, is the
 * caller's callback.
 */
#ifndef CRIER_PARALLEL_H
#define CRIER_PARALLEL_H

#include "crier/db.h"

/*
 * parallel_row_fn - one row's work on db: a negative errno where it failed (db->error and
 * db->sqlstate say why), else how many of it the caller counts (0 or more).
 */
typedef int parallel_row_fn(struct crier_db *db, PGresult *rows, int row, void *data);

/*
 * parallel_rows - each over every row of rows, on the count connections of dbs side by
 * side: dbs[0] in the calling thread, each other one on a thread of its own (where a thread
 * cannot be had, that connection takes what is left after dbs[0]). A row under way when
 * another fails is finished; none is started after. Returns 0, or the first failure's
 * error with *ret_failed the connection it failed on (NULL when none failed). *ret_counted
 * is the sum of the callbacks' counts.
 */
int parallel_rows(struct crier_db *const *dbs, int count, PGresult *rows, parallel_row_fn *each,
                  void *data, long *ret_counted, struct crier_db **ret_failed);

#endif
