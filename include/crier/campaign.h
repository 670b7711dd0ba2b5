/*
 * campaign.h - a campaign: one incident's notices, its channel policy and its lifecycle
 * (draft -> running <-> paused -> completed, or cancelled).
 */
#ifndef CRIER_CAMPAIGN_H
#define CRIER_CAMPAIGN_H

#include <stdint.h>
#include <stdio.h>

#include "crier/db.h"

struct campaign {
    int64_t id;
    char *name;
    char *incident;
    char **policy; /* channel names in order, NULL-terminated */
    char *state;   /* draft, running, paused, cancelled, completed */
    char *templates;
};

struct campaign_create_options {
    const char *name;
    const char *incident;
    const char *policy;    /* "email,fax,mail"; NULL = that default */
    const char *templates; /* directory, may be NULL */
    const char *meta_json; /* --meta FILE.yaml converted to JSON, may be NULL */
};

/* campaign_create - a new campaign in draft. -EEXIST if the name is taken, -EINVAL with
 * the reason in err for a bad name or policy. */
int campaign_create(struct crier_db *db, const struct campaign_create_options *options,
                    const char *actor, char *err, size_t err_size);

/* The frameworks the campaign meta declares, as one comma-separated text: the meta holds a
 * string ("HIPAA, GLBA") or an array of them. A select-list expression over crier.campaign. */
#define CAMPAIGN_FRAMEWORKS_SQL                                                                    \
    "CASE jsonb_typeof(meta->'frameworks') WHEN 'array' THEN (SELECT"                              \
    " string_agg(f, ',') FROM jsonb_array_elements_text(meta->'frameworks') f)"                    \
    " ELSE meta->>'frameworks' END"

/* campaign_row - run sql, whose $1 is a campaign's name, for that campaign's row: 0 (the
 * caller PQclear()s *ret_result), -ENOENT with "no campaign named 'NAME'" in err, or a
 * database error with db->error in err, after "DOING: " when doing is not NULL (err may
 * be NULL: only the code). */
int campaign_row(struct crier_db *db, const char *sql, const char *name, const char *doing,
                 PGresult **ret_result, char *err, size_t err_size);

/* campaign_get - by name; -ENOENT if there is none. lock: SELECT ... FOR UPDATE (inside a
 * transaction the caller opened). */
int campaign_get(struct crier_db *db, const char *name, bool lock, struct campaign **ret_campaign);
struct campaign *campaign_free(struct campaign *campaign);

enum campaign_action {
    CAMPAIGN_START,
    CAMPAIGN_PAUSE,
    CAMPAIGN_RESUME,
    CAMPAIGN_CANCEL,
};

/*
 * campaign_transition - apply an action, in one transaction with its dispatch-log row.
 * -EPERM (message in err) when the action is not allowed from the current state.
 * Cancel turns every notice not yet handed to a channel into cancelled, each logged;
 * *ret_affected says how many.
 */
/* A check run inside the start's transaction, after the state checks: < 0 stops it. */
typedef int (*campaign_start_check)(struct crier_db *db, const char *name, void *data);

int campaign_transition(struct crier_db *db, const char *name, enum campaign_action action,
                        const char *actor, campaign_start_check check, void *check_data,
                        long *ret_affected, char *err, size_t err_size);

/* campaign_list - print every campaign, as a table or one JSON array. */
int campaign_list(struct crier_db *db, bool json, FILE *out);

/* campaign_complete_finished - mark running campaigns with nothing left to do completed;
 * returns how many. */
int campaign_complete_finished(struct crier_db *db, const char *actor, long *ret_count);

/* campaign_policy_from_array - parse a text[] value ("{email,fax}") into a strv. */
char **campaign_policy_from_array(const char *array_text);

#endif
