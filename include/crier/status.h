/*
 * status.h - `crier status`: where every notice of a campaign stands.
 */
#ifndef CRIER_STATUS_H
#define CRIER_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/db.h"
#include "crier/notice.h"

#include <jansson.h>

/*
 * status_print - counts by state and by channel for one campaign (name) or all (NULL).
 * json: one object for a named campaign (the documented contract), an array for all.
 * -ENOENT when the named campaign does not exist.
 */
int status_print(struct crier_db *db, const char *name, bool json, FILE *out);

/*
 * status_running - every running campaign's counts, as `crier status --json` prints them for
 * all campaigns (an array; no "progress"): the same statement, so the same cost (the
 * tallies, and the held notices where a hold is active). For /metrics (metrics.c).
 */
int status_running(struct crier_db *db, json_t **ret_array);

/* A channel's notices by state, as status and the audit report count them. */
struct channel_counts {
    char name[32];
    long by_state[STATE_COUNT];
};
#define CHANNEL_COUNTS_MAX 16

/* channel_counts_slot - the counts of channel name among the *count of list (room for
 * CHANNEL_COUNTS_MAX), added when new; NULL when the list is full. */
struct channel_counts *channel_counts_slot(struct channel_counts *list, size_t *count,
                                           const char *name);

/* states_json - {"state": count, ...} for every state, in the enum's order.
 * counts_json - "total", "by_state" and "by_channel" (a states_json of each channel) into
 * o: status --json and audit report --json print the same three keys. */
json_t *states_json(const long by_state[STATE_COUNT]);
void counts_json(json_t *o, long total, const long by_state[STATE_COUNT],
                 const struct channel_counts *channels, size_t channel_count);

#endif
