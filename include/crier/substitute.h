/*
 * substitute.h - substitute notice (docs/unreached.md): when a jurisdiction's rules say its
 * residents cannot all be reached at reasonable cost or by their contacts, the website
 * posting, the media notice and the substitute email; what was done, recorded.
 */
#ifndef CRIER_SUBSTITUTE_H
#define CRIER_SUBSTITUTE_H

#include <jansson.h>
#include <stdio.h>

#include "crier/campaign.h"
#include "crier/config.h"
#include "crier/db.h"
#include "crier/rules.h"

struct substitute_options {
    const char *campaign;   /* its name */
    const char *rules_path; /* the rules table; NULL = the one shipped with crier */
    const char *frameworks; /* --framework LIST; NULL = the campaign meta's frameworks */
    double postage;         /* substitute.postage_per_letter, USD */
    double print;           /* substitute.print_per_letter, USD */
};

/*
 * substitute_model - the substitute-notice test of every jurisdiction of a campaign on its
 * residents (cost, count, people without sufficient contact against the rules table), of
 * each declared framework on the whole campaign, and what was done: a new JSON object in
 * *ret. Reads only, inside the caller's transaction (the report's snapshot).
 */
int substitute_model(struct crier_db *db, const struct rules_table *table,
                     const struct substitute_options *options, json_t **ret, char *err,
                     size_t err_size);

/* substitute_assess - substitute_model with the table loaded and a read-only snapshot of
 * its own. -ENOENT for an unknown campaign, -EINVAL for a bad table. */
int substitute_assess(struct crier_db *db, const struct substitute_options *options, json_t **ret,
                      char *err, size_t err_size);

/* substitute_print - the model as text. */
void substitute_print(const json_t *model, FILE *out);

/*
 * substitute_write - the substitute-notice set into out_dir (posting.html, media-XX.txt per
 * jurisdiction) and the substitute email queued, once, to everyone not reached who has an
 * address: a campaign of its own (CAMPAIGN.substitute, policy email, the templates of
 * substitute.templates) started through check, sent by crier run as any campaign. Every
 * file and the queueing are logged. -EPERM when nothing is required, -EINVAL for a meta key
 * a required notice needs (named in err). *ret_result: what was done (JSON).
 */
int substitute_write(struct crier_db *db, const struct crier_config *config,
                     const struct substitute_options *options, const char *out_dir,
                     const char *actor, campaign_start_check check, void *check_data,
                     json_t **ret_result, char *err, size_t err_size);

struct substitute_act {
    const char *campaign;
    const char *url, *from, *until;           /* posted */
    const char *outlet, *date, *jurisdiction; /* media */
};

/* substitute_posted, substitute_media - record that the posting went up, or that a media
 * notice ran: a substitute_record row and its dispatch-log row, one transaction. -EINVAL
 * for bad input (named in err), -ENOENT for an unknown campaign, -EACCES for a role that
 * may not. */
int substitute_posted(struct crier_db *db, const struct substitute_act *act, char *err,
                      size_t err_size);
int substitute_media(struct crier_db *db, const struct substitute_act *act, char *err,
                     size_t err_size);

/* substitute_templates_dir - the substitute email's template set (config, else installed). */
const char *substitute_templates_dir(const struct crier_config *config);

#endif
