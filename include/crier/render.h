/*
 * render.h - what a notice says: a campaign's templates and the variables of one notice.
 *
 * The engine loads a campaign's render context once (templates, metadata) and hangs it on
 * each notice with render_attach(), together with the functions below as a struct
 * notice_renderer (channel.h): channels call those through channel_render() with a
 * template name and get bytes back, knowing nothing of where the templates or the data
 * came from, and never include this header.
 */
#ifndef CRIER_RENDER_H
#define CRIER_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crier/channel.h"
#include "crier/config.h"
#include "crier/db.h"

struct template_set;

/* One campaign's rendering context, shared read-only by the notices of a batch. */
struct render_campaign {
    int64_t id;
    char *name;
    char *incident;
    char *templates_dir;
    json_t *meta; /* --meta, as a JSON object */
    struct template_set *templates;
};

/* render_templates_dir - the template directory of a campaign: its own, else the config's
 * templates key, else the set installed with crier (or the source tree's, uninstalled). */
const char *render_templates_dir(const struct crier_config *config, const char *campaign_dir);

/* render_campaign_load - read a campaign's metadata and load its templates (errors on diag
 * as FILE:LINE:COL). */
int render_campaign_load(struct crier_db *db, const struct crier_config *config,
                         int64_t campaign_id, FILE *diag, struct render_campaign **ret);
struct render_campaign *render_campaign_free(struct render_campaign *campaign);

/*
 * render_templates_record - copy the campaign's templates into the database (at `campaign
 * start`, in its transaction), once: from then on its notices are rendered from the copy
 * (render_campaign_load prefers it), and `crier audit show` renders them again from it.
 */
int render_templates_record(struct crier_db *db, const struct crier_config *config,
                            int64_t campaign_id, FILE *diag);

/* render_vars - every variable a template may use for this notice (a new reference). */
json_t *render_vars(const struct crier_notice *notice, const char *notice_date);

/* render_known - the variable names a campaign's notices will have (values are samples),
 * for template_set_check at `campaign start`; extra_columns are the list's other columns. */
json_t *render_known(const struct render_campaign *campaign, char *const *extra_columns);

/*
 * notice_render - render template name ("email.txt") for a notice, choosing the override
 * for its region when there is one. -ENOENT when the campaign has no such template or a
 * variable is missing (message in err).
 */
int notice_render(const struct crier_notice *notice, const char *name, bool html, char **ret_text,
                  size_t *ret_len, char *err, size_t err_size);

/*
 * render_check_campaign - before a campaign starts: the templates its channels need exist,
 * parse, and use no variable its notices will not have. Every problem goes to diag as
 * FILE:LINE:COL: message; returns -EINVAL if there was any (-ENOENT: no such campaign).
 */
int render_check_campaign(struct crier_db *db, const struct crier_config *config,
                          const char *campaign_name, FILE *diag);

/* render_needs_templates - do the channels of policy render templates? */
bool render_needs_templates(char *const *policy);

/* render_markdown_literal - value as Markdown that letter.c prints exactly as written
 * (backslashes before * and \, and before a leading # or -; line ends as spaces). Malloc'd. */
char *render_markdown_literal(const char *value);

/* render_attach - campaign's templates and the renderer on notice, for its channel
 * (campaign NULL: none). */
void render_attach(struct crier_notice *notice, const struct render_campaign *campaign);

/* render_has - does the campaign have template name (for any region)? */
bool render_has(const struct crier_notice *notice, const char *name);

#endif
