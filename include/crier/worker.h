/*
 * worker.h - `crier run`: lanes of threads that claim, send and record.
 */
#ifndef CRIER_WORKER_H
#define CRIER_WORKER_H

#include <jansson.h>
#include <stdbool.h>

#include "crier/config.h"
#include "crier/db.h"

struct worker_options {
    bool until_idle; /* exit once no running campaign has work this worker can do */
    /* SIGHUP: read the configuration again; 0 when the new one is good (worker_run then
     * returns WORKER_RELOAD after the lanes finish their batches), < 0 to run on */
    int (*reload)(void *reload_data);
    void *reload_data;
    const char *metrics_address; /* --metrics HOST:PORT: serve /metrics (metrics.c), or NULL */
    /* with metrics_address: the running campaigns' counts for /metrics, every few seconds
     * (status_running, which lives with `crier status` in engine/cmd); NULL: none */
    int (*running_counts)(struct crier_db *db, json_t **ret_array);
};

/* worker_run's return after a SIGHUP with a good new configuration: call it again. */
#define WORKER_RELOAD 1

/*
 * worker_run - run until SIGTERM/SIGINT (in-flight batches finish and are recorded first)
 * or, with until_idle, until idle. Returns 0, -EHOSTUNREACH when the database cannot be
 * reached at start, -ENOENT/-ESTALE when the schema is missing/old, -EINVAL when no
 * channel is enabled or an enabled one cannot open (message on stderr in each case),
 * WORKER_RELOAD after SIGHUP reloaded the configuration. SIGHUP, SIGINT and SIGTERM stay
 * blocked in the calling thread.
 */
int worker_run(const struct crier_config *config, const struct worker_options *options);

#endif
