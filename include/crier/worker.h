/*
 * worker.h - `crier run`: lanes of threads that claim, send and record.
 */
#ifndef CRIER_WORKER_H
#define CRIER_WORKER_H

#include <stdbool.h>

#include "crier/config.h"

struct worker_options {
    bool until_idle; /* exit once no running campaign has work this worker can do */
};

/*
 * worker_run - run until SIGTERM/SIGINT (in-flight batches finish and are recorded first)
 * or, with until_idle, until idle. Returns 0, -EHOSTUNREACH when the database cannot be
 * reached at start, -ENOENT/-ESTALE when the schema is missing/old, -EINVAL when no
 * channel is enabled (message on stderr in each case).
 */
int worker_run(const struct crier_config *config, const struct worker_options *options);

#endif
