/*
 * render.c - a notice's variables and its campaign's templates, for the channels.
 *
 * The variables are the recipient's fields, the list's other columns, the campaign's
 * metadata under "meta", and campaign, incident, notice_date and
 * delayed_for_law_enforcement. Standard names win over a list column of the same name.
 */
#include "crier/render.h"
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CRIER_TEMPLATES_DIR
#define CRIER_TEMPLATES_DIR "/usr/local/share/crier/templates/default"
#endif
#ifndef CRIER_SOURCE_TEMPLATES_DIR
#define CRIER_SOURCE_TEMPLATES_DIR CRIER_TEMPLATES_DIR
#endif

const char *render_templates_dir(const struct crier_config *config, const char *campaign_dir)
{
    if (!str_empty(campaign_dir))
        return campaign_dir;
    if (config && !str_empty(config->templates_dir))
        return config->templates_dir;
    if (access(CRIER_TEMPLATES_DIR, R_OK) == 0)
        return CRIER_TEMPLATES_DIR;
    return CRIER_SOURCE_TEMPLATES_DIR; /* an uninstalled build runs from its source tree */
}

/* hex_decode - len hex digits into len/2 bytes at out. */
static void hex_decode(const char *hex, size_t len, char *out)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        char pair[3] = {hex[i], hex[i + 1], '\0'};
        out[i / 2] = (char)strtoul(pair, NULL, 16);
    }
}

/*
 * templates_copied - the campaign's templates as copied into the database when it started
 * (render_templates_record): what it sends, whatever became of the files since. -ENOENT
 * when there is no copy.
 */
static const char templates_sql[] =
    "SELECT name, encode(body, 'hex'), copied_from FROM crier.campaign_template"
    " WHERE campaign_id = $1 ORDER BY name";

static int templates_copied(struct crier_db *db, struct render_campaign *c, FILE *diag)
{
    const char *params[] = {DB_NUM(c->id)};
    PGresult *result = NULL;
    int r = db_query(db, templates_sql, 1, params, &result);
    if (r < 0)
        return r;
    size_t count = (size_t)PQntuples(result);
    if (count == 0) {
        PQclear(result);
        return -ENOENT;
    }
    char **names = xcalloc(count, sizeof(char *));
    char **sources = xcalloc(count, sizeof(char *));
    size_t *lengths = xcalloc(count, sizeof(size_t));
    for (size_t i = 0; i < count; i++) {
        names[i] = PQgetvalue(result, (int)i, 0);
        size_t hex_length = (size_t)PQgetlength(result, (int)i, 1);
        lengths[i] = hex_length / 2;
        sources[i] = xmalloc(lengths[i] + 1);
        hex_decode(PQgetvalue(result, (int)i, 1), hex_length, sources[i]);
    }
    free(c->templates_dir);
    c->templates_dir =
        xasprintf("%s (as copied when the campaign started)", PQgetvalue(result, 0, 2));
    r = template_set_from_memory(c->templates_dir, names, sources, lengths, count, diag,
                                 &c->templates);
    for (size_t i = 0; i < count; i++)
        free(sources[i]);
    free(sources);
    free(names);
    free(lengths);
    PQclear(result);
    return r == -ENOENT ? -EINVAL : r;
}

int render_templates_record(struct crier_db *db, const struct crier_config *config,
                            int64_t campaign_id, FILE *diag)
{
    const char *id_param[] = {DB_NUM(campaign_id)};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT 1 FROM crier.campaign_template WHERE campaign_id = $1 LIMIT 1", 1,
                     id_param, &result);
    if (r < 0)
        return r;
    bool copied = PQntuples(result) > 0;
    PQclear(result);
    if (copied)
        return 0;
    struct render_campaign *c = NULL;
    r = render_campaign_load(db, config, campaign_id, diag, &c);
    if (r < 0)
        return r;
    for (size_t i = 0; r == 0 && i < template_set_count(c->templates); i++) {
        const struct template *t = template_set_item(c->templates, i);
        size_t length;
        const char *source = template_source(t, &length);
        char *hex = xmalloc(2 * length + 1);
        hex_write(hex, source, length);
        const char *params[] = {DB_NUM(campaign_id), template_name(t), hex, c->templates_dir};
        r = db_exec(db,
                    "INSERT INTO crier.campaign_template (campaign_id, name, body, sha256,"
                    " copied_from) SELECT $1, $2, b, encode(sha256(b), 'hex'), $4"
                    " FROM decode($3, 'hex') b",
                    4, params);
        free(hex);
    }
    render_campaign_free(c);
    return r;
}

/* The campaign's name, incident, template names and meta ($1 its id). */
static const char campaign_sql[] =
    "SELECT name, incident, templates, meta::text FROM crier.campaign WHERE id = $1";

int render_campaign_load(struct crier_db *db, const struct crier_config *config,
                         int64_t campaign_id, FILE *diag, struct render_campaign **ret)
{
    const char *params[] = {DB_NUM(campaign_id)};
    PGresult *result = NULL;
    int r = db_query(db, campaign_sql, 1, params, &result);
    if (r < 0)
        return r;
    if (PQntuples(result) == 0) {
        PQclear(result);
        return -ENOENT;
    }
    struct render_campaign *c = xcalloc(1, sizeof(*c));
    c->id = campaign_id;
    c->name = xstrdup(PQgetvalue(result, 0, 0));
    c->incident = xstrdup(PQgetvalue(result, 0, 1));
    c->templates_dir = xstrdup(render_templates_dir(config, db_value(result, 0, 2)));
    c->meta = json_loads(PQgetvalue(result, 0, 3), 0, NULL);
    if (!json_is_object(c->meta)) {
        json_decref(c->meta);
        c->meta = json_object();
    }
    PQclear(result);
    r = templates_copied(db, c, diag);
    if (r == -ENOENT) /* not started yet (or before 004): the directory */
        r = template_set_load(c->templates_dir, diag, &c->templates);
    if (r < 0) {
        render_campaign_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

struct render_campaign *render_campaign_free(struct render_campaign *c)
{
    if (c == NULL)
        return NULL;
    FREE_MANY(c->name, c->incident, c->templates_dir);
    json_decref(c->meta);
    template_set_free(c->templates);
    free(c);
    return NULL;
}

static void set_string(json_t *obj, const char *key, const char *value)
{
    json_object_set_new(obj, key, value ? json_string(value) : json_null());
}

json_t *render_vars(const struct crier_notice *n, const char *notice_date)
{
    json_t *vars = NULL;
    if (n->vars_json)
        vars = json_loads(n->vars_json, 0, NULL);
    if (!json_is_object(vars)) {
        json_decref(vars);
        vars = json_object();
    }
    static const char *const address_names[] = {"address1", "address2", "city", "region",
                                                "postal_code"};
    set_string(vars, "ref", n->ref);
    set_string(vars, "name", n->name);
    set_string(vars, "email", n->email);
    set_string(vars, "fax", n->fax);
    for (size_t i = 0; i < ARRAY_SIZE(address_names); i++)
        set_string(vars, address_names[i], n->address[i]);
    set_string(vars, "country", n->country);
    set_string(vars, "notice_date", notice_date);
    json_object_set_new(vars, "delayed_for_law_enforcement", json_boolean(n->delayed));
    if (n->render) {
        set_string(vars, "campaign", n->render->name);
        set_string(vars, "incident", n->render->incident);
        json_object_set(vars, "meta", n->render->meta);
    } else {
        set_string(vars, "campaign", n->campaign_name);
        json_object_set_new(vars, "incident", json_null());
        json_object_set_new(vars, "meta", json_object());
    }
    return vars;
}

json_t *render_known(const struct render_campaign *campaign, char *const *extra_columns)
{
    struct crier_notice sample = {
        .ref = "",
        .name = "",
        .email = "",
        .fax = "",
        .country = "",
        .render = campaign,
    };
    for (size_t i = 0; i < ARRAY_SIZE(sample.address); i++)
        sample.address[i] = "";
    json_t *known = render_vars(&sample, "1970-01-01");
    for (size_t i = 0; extra_columns && extra_columns[i]; i++)
        if (json_object_get(known, extra_columns[i]) == NULL)
            json_object_set_new(known, extra_columns[i], json_string(""));
    return known;
}

/* notice_date - the date (UTC) the notice's content is rendered at, as templates print it:
 * its content_time (the one recorded, when `crier audit show` renders it again), else
 * today. */
static void notice_date(const struct crier_notice *notice, char out[11])
{
    time_t at = notice->content_time ? (time_t)notice->content_time : time(NULL);
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/*
 * render_markdown_literal - value as Markdown that prints it as written: backslash before \ and *
 * and before a # or - that starts it (after blanks), line ends as spaces (a value never
 * starts a block). Returns a malloc'd string.
 */
char *render_markdown_literal(const char *value)
{
    size_t len = strlen(value);
    char *out = xmalloc(2 * len + 1);
    size_t n = 0;
    bool leading = true; /* still in the value's leading blanks */
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (c == '\r' || c == '\n')
            c = ' ';
        if (c == '\\' || c == '*' || (leading && (c == '#' || c == '-')))
            out[n++] = '\\';
        if (c != ' ' && c != '\t')
            leading = false;
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

/* markdown_vars - the values from the list (not meta, campaign, incident, date or flag,
 * which the organisation wrote) as Markdown literals, for letter.md. */
static void markdown_vars(json_t *vars)
{
    static const char *const trusted[] = {"meta", "campaign", "incident", "notice_date",
                                          "delayed_for_law_enforcement"};
    const char *key;
    json_t *value;
    json_object_foreach(vars, key, value)
    {
        bool skip = !json_is_string(value);
        for (size_t i = 0; i < ARRAY_SIZE(trusted) && !skip; i++)
            skip = strcmp(key, trusted[i]) == 0;
        if (skip)
            continue;
        char *literal = render_markdown_literal(json_string_value(value));
        json_string_set(value, literal);
        free(literal);
    }
}

int notice_render(const struct crier_notice *notice, const char *name, bool html, char **ret_text,
                  size_t *ret_len, char *err, size_t err_size)
{
    if (notice->render == NULL || notice->render->templates == NULL) {
        snprintf(err, err_size, "no templates loaded for campaign %s", notice->campaign_name);
        return -ENOENT;
    }
    const struct template *t = template_find(notice->render->templates, name, notice->address[3]);
    if (t == NULL) {
        snprintf(err, err_size, "%s: no template %s", notice->render->templates_dir, name);
        return -ENOENT;
    }
    char date[11];
    notice_date(notice, date);
    json_t *vars = render_vars(notice, date);
    size_t name_len = strlen(name);
    if (name_len > 3 && strcmp(name + name_len - 3, ".md") == 0)
        markdown_vars(vars); /* list values print as written in a letter */
    int r = template_render(t, vars, html, ret_text, ret_len, err, err_size);
    json_decref(vars);
    return r;
}

bool render_has(const struct crier_notice *notice, const char *name)
{
    return notice->render && notice->render->templates &&
           template_find(notice->render->templates, name, notice->address[3]) != NULL;
}

/* needed_templates - the templates a policy's channels cannot do without. */
static void needed_templates(char *const *policy, const char **needed, size_t max, size_t *count)
{
    const struct channel_template *all[16];
    size_t n = channel_templates_of(policy, all, ARRAY_SIZE(all));
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i]->required && *count < max)
            needed[(*count)++] = all[i]->name;
}

bool render_needs_templates(char *const *policy)
{
    const struct channel_template *all[16];
    return channel_templates_of(policy, all, ARRAY_SIZE(all)) > 0;
}

/* meta_string - the renderer's meta: a string of the campaign's --meta. */
static const char *meta_string(const struct crier_notice *notice, const char *key)
{
    if (notice->render == NULL || notice->render->meta == NULL)
        return NULL;
    return json_string_value(json_object_get(notice->render->meta, key));
}

static const struct notice_renderer renderer = {
    .render = notice_render,
    .has = render_has,
    .meta = meta_string,
};

void render_attach(struct crier_notice *notice, const struct render_campaign *campaign)
{
    notice->render = campaign;
    notice->renderer = campaign ? &renderer : NULL;
}

/* Campaign $1's id, policy and the extra list columns of its loads. */
static const char campaign_columns_sql[] =
    "SELECT c.id, c.policy,"
    " (SELECT coalesce(array_agg(DISTINCT x), '{}') FROM crier.list_load l,"
    "  unnest(l.extra_columns) x WHERE l.campaign_id = c.id)"
    " FROM crier.campaign c WHERE c.name = $1";

int render_check_campaign(struct crier_db *db, const struct crier_config *config,
                          const char *campaign_name, FILE *diag)
{
    PGresult *result = NULL;
    int r = campaign_row(db, campaign_columns_sql, campaign_name, NULL, &result, NULL, 0);
    if (r < 0)
        return r;
    int64_t id = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    char **policy = db_array_parse(PQgetvalue(result, 0, 1));
    char **extra = db_array_parse(PQgetvalue(result, 0, 2));
    PQclear(result);
    const char *needed[16];
    size_t needed_count;
    needed_templates(policy, needed, ARRAY_SIZE(needed), &needed_count);
    struct render_campaign *campaign = NULL;
    if (needed_count > 0) {
        r = render_campaign_load(db, config, id, diag, &campaign);
        if (r == -ENOENT)
            fprintf(diag, "%s: cannot read the template directory\n",
                    render_templates_dir(config, NULL));
        if (r < 0)
            r = -EINVAL;
    }
    for (size_t i = 0; r == 0 && i < needed_count; i++) {
        if (template_find(campaign->templates, needed[i], NULL) == NULL) {
            fprintf(diag, "%s: no %s, which the campaign's policy needs\n", campaign->templates_dir,
                    needed[i]);
            r = -EINVAL;
        }
    }
    if (campaign && r == 0) {
        json_t *known = render_known(campaign, extra);
        if (template_set_check(campaign->templates, known, diag) < 0)
            r = -EINVAL;
        json_decref(known);
    }
    render_campaign_free(campaign);
    strv_free(policy);
    strv_free(extra);
    return r;
}
