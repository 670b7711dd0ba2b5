/*
 * content.h - the content rules of the jurisdiction rules table (what a notice must and must
 * not say) checked against the templates a campaign will send, at `campaign start`
 * (docs/jurisdictions.md, "Content checks").
 */
#ifndef CRIER_CONTENT_H
#define CRIER_CONTENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "crier/channel.h"
#include "crier/config.h"
#include "crier/db.h"
#include "crier/rules.h"
#include "crier/template.h"

struct content_campaign {
    const struct template_set *templates;
    char *const *regions;    /* the jurisdictions of its people (codes), NULL-terminated */
    char *const *frameworks; /* declared (meta frameworks), NULL-terminated; may be NULL */
    const json_t *meta;      /* the incident meta: exposed, credit_monitoring_months */
    /* the templates the channels of its policy render (channel_templates_of): the bodies
     * among them are checked */
    const struct channel_template *const *renders;
    size_t render_count;
};

/*
 * content_check - every content rule of every jurisdiction the campaign reaches (and of its
 * declared frameworks, in every jurisdiction) against the template each jurisdiction's
 * people get. Each failure goes to diag as "FILE:LINE:COL: CODE: message". Returns the
 * number of failures.
 */
int content_check(const struct rules_table *rules, const struct content_campaign *campaign,
                  FILE *diag);

/* content_check_campaign - content_check for a campaign in the database, with the rules
 * table of the configuration. -EINVAL when a rule fails, -ENOENT (no such campaign). */
int content_check_campaign(struct crier_db *db, const struct crier_config *config,
                           const char *campaign_name, FILE *diag);

#endif
