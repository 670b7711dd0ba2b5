/*
 * service.h - which channels the deployment's live workers serve, the notices that wait
 * for a channel nobody serves, and the operator's explicit reroute of them.
 *
 * A notice never leaves its channel because no worker serves it: it waits, `crier status`
 * says so and since when, and only `crier campaign reroute` (logged) moves it on.
 */
#ifndef CRIER_SERVICE_H
#define CRIER_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "crier/db.h"

/* A worker is live while its heartbeat (once a second) is younger than this. */
#define SERVICE_LIVE_SECONDS "10"

/*
 * service_waiting - the ready notices of running campaigns (one campaign when name is not
 * NULL) whose channel no live worker serves, per campaign and channel, as a JSON array of
 * {"campaign", "channel", "notices", "since" (ISO time or null: never served), "reason"}.
 * Notices an active law-enforcement hold keeps are not counted: they wait for the hold.
 */
int service_waiting(struct crier_db *db, const char *name, json_t **ret_waiting);

/* service_waiting_text - the lines `crier status` prints under its table. */
void service_waiting_text(const json_t *waiting, FILE *out);

/*
 * service_warn_unserved - log a warning for each channel that a running campaign's policy
 * names and that served (the channels this process runs, NULL-terminated) lacks, saying
 * whether another live worker serves it. Sets *ret_count to the warnings logged.
 */
int service_warn_unserved(struct crier_db *db, const char *const *served, long *ret_count);

/* service_unserved - the channels of campaign name's policy that no live worker serves,
 * in policy order (a NULL-terminated strv, empty when all are served). */
int service_unserved(struct crier_db *db, const char *name, char ***ret_channels);

/*
 * service_reroute - move the ready notices of campaign name on channel from to channel to
 * (which must be in the campaign's policy and reach the person), in one transaction: each
 * move is one dispatch-log row naming actor and reason, and the campaign gets one row for
 * the whole command. Notices in flight are not touched. *ret_moved: moved; *ret_left: ready
 * on from that to cannot reach (they stay). -ENOENT: no such campaign; -EINVAL: a channel
 * not in the policy or the same twice; -EPERM: the campaign is finished (message in err).
 */
int service_reroute(struct crier_db *db, const char *name, const char *from, const char *to,
                    const char *reason, const char *actor, long *ret_moved, long *ret_left,
                    char *err, size_t err_size);

#endif
