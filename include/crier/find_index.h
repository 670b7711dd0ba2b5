/*
 * find_index.h - the `audit find` indexes of each campaign's recipient partition, built
 * after a load commits rather than inside it (019_find_local.sql).
 *
 * A load's rows are committed first and the partition's five find indexes are built
 * afterwards, on more than one connection. Anything that interrupts that (a crash, a kill)
 * leaves the rows loaded and an index missing: `crier db migrate` and the next load build
 * what is missing, and `audit find` stays correct meanwhile, reading the partition instead.
 */
#ifndef CRIER_FIND_INDEX_H
#define CRIER_FIND_INDEX_H

#include <stdint.h>

#include "crier/db.h"

#ifndef FIND_INDEX_CONNECTIONS   /* -D for a benchmark build */
#define FIND_INDEX_CONNECTIONS 2 /* builds at once (docs/benchmarks.md, "Fourth round") */
#endif

/*
 * find_index_missing - how many find indexes one campaign's partition (campaign_id > 0) or
 * every campaign's (0) lacks, and how many of those a session is building right now.
 */
int find_index_missing(struct crier_db *db, int64_t campaign_id, long *ret_missing,
                       long *ret_building);

/*
 * find_index_build - build every missing find index of one campaign (campaign_id > 0) or of
 * all (0), up to connections at once: on db, and on more connections opened with conninfo
 * (NULL: libpq's PG* environment), or on db alone where they cannot be opened. db must not
 * be in a transaction. *ret_built says how many this call
 * built. An error leaves the ones built in place and the rest missing; err says what.
 */
int find_index_build(struct crier_db *db, const char *conninfo, int connections,
                     int64_t campaign_id, long *ret_built, char *err, size_t err_size);

#endif
