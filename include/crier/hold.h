/*
 * hold.h - law-enforcement holds: legal delays a campaign's notices (all of them, one
 * region's, or one recipient's) at an agency's request, and releases them later, with a
 * record that stands up.
 *
 * A hold is rows in append-only tables (engine/core/sql/002_holds.sql); whether it is active is
 * computed, and the claim (queue.c) skips every notice an active hold covers, so placing
 * a hold never rewrites notices. docs/holds.md has the design and the guarantee.
 */
#ifndef CRIER_HOLD_H
#define CRIER_HOLD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "crier/channel.h"
#include "crier/config.h"
#include "crier/db.h"

/* The advisory lock class (with the campaign id) that claims and records take shared and
 * a hold placement exclusive (queue.c, engine/core/sql/002_holds.sql): unlike row locks, a
 * waiting exclusive request queues the shared ones behind it, so lanes cannot starve a
 * placement. */
#define CAMPAIGN_LOCK_CLASS "740119"

/* hold_policy_set - the configuration's holds.oral_lapse, for every question this process
 * asks about holds (set once, at start-up, before any thread starts). */
void hold_policy_set(enum crier_oral_lapse oral_lapse);
/* hold_release_lapsed_param - "t" when a lapsed oral hold stops holding, else "f": the
 * release_lapsed parameter of crier.hold_state() and of the claim. */
const char *hold_release_lapsed_param(void);

#define HOLD_DOCUMENT_MAX (16 * 1024 * 1024) /* a scanned letter; bigger is a mistake */

/* A document attached to a hold event (the agency's letter), exactly as given. */
struct hold_document {
    char *name;      /* the file's base name */
    char sha256[65]; /* hex SHA-256 of the bytes */
    char *bytea;     /* the bytes as a bytea parameter ("\x" and hex) */
    size_t size;
};

/* hold_document_read - a file to attach. -ENOENT or -EACCES when it cannot be read, -E2BIG
 * above HOLD_DOCUMENT_MAX, -EINVAL when empty; the message is in err. */
int hold_document_read(const char *path, struct hold_document *ret_document, char *err,
                       size_t err_size);
/* hold_document_from_memory - the same for bytes in hand (an upload to crier serve), under
 * the base name given. -E2BIG above HOLD_DOCUMENT_MAX, -EINVAL when empty. */
int hold_document_from_memory(const char *name, const void *data, size_t size,
                              struct hold_document *ret_document, char *err, size_t err_size);
void hold_document_clear(struct hold_document *document);

struct hold_place_options {
    const char *campaign;
    const char *region;    /* --region: the scope is one region (case-insensitive), or NULL */
    const char *recipient; /* --recipient REF: the scope is one recipient, or NULL */
    const char *authority; /* the agency */
    const char *official;  /* who at the agency asked */
    const char *case_ref;  /* the agency's case reference */
    const char *form;      /* "written" or "oral" */
    const char *reason;
    const char *review_by;                /* YYYY-MM-DD, or NULL */
    const struct hold_document *document; /* or NULL */
    const char *as_name;                  /* --as NAME: the person, beside the login; or NULL */
    double drain_seconds;                 /* how long to wait for notices already in flight */
};

/* hold_options_check - what the database will refuse, said plainly before connecting:
 * scope, form, date (YYYY-MM-DD, not in the past), text that must not be empty.
 * -EINVAL with the reason in err. */
int hold_options_check(const struct hold_place_options *options, char *err, size_t err_size);

/*
 * The place, lift and confirm commands report on out, or, given a JSON object in json
 * (--json), set the same facts as its fields instead.
 *
 * hold_place - record a hold, then wait (at most drain_seconds) until no notice in its
 * scope is in flight, and report on out how many had been handed to a channel before it
 * took effect. From its commit on, no notice in scope is claimed (queue.c).
 * -ENOENT: no such campaign; -EPERM: the campaign is finished; -EACCES: the database
 * refused (the role may not place holds); -ETIMEDOUT: the hold is in effect but notices
 * claimed before it are still in flight (err says which). Messages in err.
 */
int hold_place(struct crier_db *db, const struct hold_place_options *options, FILE *out,
               json_t *json, char *err, size_t err_size);

/* hold_region_index_build - build the claim's region index (022_region_index_lazy.sql) of
 * every campaign that has a region hold not lifted and lacks it: the hold's campaign and
 * its companion's (hold given), or every campaign (hold NULL: a load of campaign_id, with
 * campaign_id given, or `db migrate`, with neither). One statement of its own, never inside
 * another transaction: the lanes' writes to the partition wait for the build. Sets
 * *ret_built to how many were built; errors leave the claim correct, walking held notices
 * (queue.c), and the next placement, load or `db migrate` builds them. */
int hold_region_index_build(struct crier_db *db, const char *hold, const char *campaign_id,
                            long *ret_built);

/* hold_lift - record that the hold ends, on what evidence; report how many notices it
 * released (those no other active hold covers). -ENOENT: no such hold; -EEXIST: already
 * lifted; -EACCES: refused. */
int hold_lift(struct crier_db *db, const char *hold, const char *evidence,
              const struct hold_document *document, const char *as_name, FILE *out, json_t *json,
              char *err, size_t err_size);

/* hold_confirm - record the written confirmation of an oral hold. -ENOENT: no such hold;
 * -EEXIST: already confirmed; -EINVAL: written, lifted or lapsed (err says which). */
int hold_confirm(struct crier_db *db, const char *hold, const struct hold_document *document,
                 const char *as_name, FILE *out, json_t *json, char *err, size_t err_size);

/* hold_list - the holds (of one campaign, or all; only active ones if asked), as a table
 * or a JSON array; lapsed and past-review holds are flagged. -ENOENT: no such campaign. */
int hold_list(struct crier_db *db, const char *campaign, bool active_only, bool json, FILE *out,
              char *err, size_t err_size);

struct rules_table;

/* hold_show - everything recorded about one hold and the notices it covers; once lifted,
 * the notice deadlines that run from the clearance in the jurisdictions it covered (the
 * rules table's law_enforcement_delay.after_clearance: MD 7 days, ME 7 business days).
 * rules may be NULL (no such deadlines shown). */
int hold_show(struct crier_db *db, const char *hold, bool json, const struct rules_table *rules,
              FILE *out, char *err, size_t err_size);

/* hold_check - print each hold not lifted that has lapsed or is past its review date;
 * *ret_count says how many (0: nothing to do). */
int hold_check(struct crier_db *db, FILE *out, long *ret_count);

/* hold_check_json - the same holds as a JSON array of objects (hold, campaign, scope,
 * lapsed, past_review, holds_now, lapsed_at, review_by), for hold check --json. */
int hold_check_json(struct crier_db *db, json_t **ret_alerts);

/* hold_alerts_log - the same, as one warning log line each (crier run, at start). */
int hold_alerts_log(struct crier_db *db, long *ret_count);

/* hold_held_by_channel - for status: per channel, the campaign's ready notices an active
 * hold covers, as rows (channel, count). The caller PQclears. */
int hold_held_by_channel(struct crier_db *db, const char *campaign_id, PGresult **ret_result);

/* hold_status_json - for status: {"active": n, "alerts": ["...", ...]} of a campaign. */
int hold_status_json(struct crier_db *db, const char *campaign_id, json_t **ret_holds);
/* hold_status_text - the same object as lines under a status table (nothing when empty). */
void hold_status_text(const json_t *holds, FILE *out);

/* hold_covers_notice - is a claimed notice covered by an active hold now? For channels
 * that wait before handing a notice off (crier_channel.may_hand_off). */
int hold_covers_notice(struct crier_db *db, const struct crier_notice *notice, bool *ret_held);

#endif
