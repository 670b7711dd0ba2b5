/*
 * substitute_write.c - `crier substitute write`: the substitute-notice set of a campaign
 * whose rules call for it (substitute.c judges): the website posting (one self-contained,
 * accessible HTML page), the media notice text per jurisdiction, and the substitute email.
 *
 * The email is its own notice kind, sent by no path of its own: a campaign
 * CAMPAIGN.substitute (policy email, the substitute template set, the campaign's meta),
 * linked once in crier.substitute_email, loaded with everyone not reached who has an email
 * address and is in a jurisdiction that requires it, and started; crier run claims, sends
 * and records it like any notice. Run again, it adds only people not yet in it, so nobody
 * gets it twice.
 *
 * Must not write anything when a required part cannot be made (HIPAA's toll-free number):
 * every check comes before the first file. Nor leave half a set: the files are written into
 * a staging directory beside DIR and moved into DIR only once the database has the record
 * (stage_*); a failure before that removes the staging directory and writes nothing to DIR.
 *
 * SECURITY: meta values are the organisation's own text and are HTML-escaped on the page;
 * the page loads nothing (no script, stylesheet, font or image from anywhere).
 */
#include "crier/crier.h"
#include "crier/campaign.h"
#include "crier/html.h"
#include "crier/import.h"
#include "crier/substitute.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The advisory lock class (with the campaign id) a write holds for its whole run, and a
 * hold placement takes before it looks for the substitute email campaign (hold_follow in
 * 016_substitute_holds.sql): a hold placed meanwhile is either seen by the write, which
 * leaves its people out, or sees the email campaign and follows the campaign there. */
#define SUBSTITUTE_LOCK_CLASS "740120"

static const char *jtext(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is_required(const json_t *v)
{
    return strcmp(jtext(v, "verdict"), "required") == 0;
}

/* meta_read - the campaign's id, incident and meta. */
static int meta_read(struct crier_db *db, const char *name, char *id, size_t id_size,
                     char **ret_incident, json_t **ret_meta, char *err, size_t err_size)
{
    PGresult *res = NULL;
    int r = campaign_row(db,
                         "SELECT id, incident, coalesce(meta, '{}')::text, EXISTS (SELECT 1 FROM"
                         " crier.substitute_email s WHERE s.email_campaign_id = c.id)"
                         " FROM crier.campaign c WHERE name = $1",
                         name, NULL, &res, err, err_size);
    if (r < 0)
        return r;
    if (db_flag(res, 0, 3)) {
        PQclear(res);
        return error_set(err, err_size, -EPERM,
                         "'%s' is itself a substitute email campaign: run this on the campaign "
                         "it belongs to",
                         name);
    }
    snprintf(id, id_size, "%s", db_value(res, 0, 0));
    *ret_incident = xstrdup(db_value(res, 0, 1));
    *ret_meta = json_loads(db_value(res, 0, 2), 0, NULL);
    PQclear(res);
    return 0;
}

/* ---- the posting ------------------------------------------------------------------------ */

/* meta_value - the campaign meta's value of key, escaped; when it is missing, says so in
 * the posting (strong: in a section of its own, where the gap must catch the eye). */
static void meta_value(FILE *f, const json_t *meta, const char *key, bool strong)
{
    const char *v = jtext(meta, key);
    if (!str_empty(v)) {
        html_escape(f, v);
        return;
    }
    fputs(strong ? "<strong>(not in the campaign meta: " : "(not in the campaign meta: ", f);
    html_escape(f, key);
    fputs(strong ? ")</strong>" : ")", f);
}

static void section(FILE *f, const char *heading, const json_t *meta, const char *key)
{
    fprintf(f, "<h2>%s</h2>\n<p>", heading);
    meta_value(f, meta, key, true);
    fputs("</p>\n", f);
}

/* posting_html - the website posting: what happened and when, the information involved,
 * what is being done, what people can do, whom it concerns, and how to ask whether one is
 * affected (the toll-free number under HIPAA, for the 90 days it must be posted). */
static char *posting_html(const json_t *model, const json_t *meta, const json_t *hipaa,
                          size_t *ret_len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, ret_len);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>Notice of Data Breach</title>\n<style>\n"
          "body{margin:0;padding:1rem;font-family:Arial,Helvetica,sans-serif;font-size:1.1rem;"
          "line-height:1.5;color:#111;background:#fff}\n"
          "main{max-width:44rem;margin:0 auto}\nh1{font-size:1.8rem}h2{font-size:1.35rem;"
          "margin-top:1.6rem}\n.contact{border:2px solid #111;padding:0.8rem}\n"
          "a{color:#0b3d91}\n</style>\n</head>\n<body>\n<main>\n",
          f);
    fputs("<h1>Notice of Data Breach</h1>\n<p>", f);
    meta_value(f, meta, "organisation", false);
    fputs(" is posting this notice because it could not reach everyone affected directly. "
          "If you have been a customer, employee or member of ",
          f);
    meta_value(f, meta, "organisation", false);
    fputs(", your personal information may have been involved.</p>\n", f);
    section(f, "What happened", meta, "what_happened");
    fputs("<p>The incident took place ", f);
    meta_value(f, meta, "incident_date", false);
    fputs(". It was discovered on ", f);
    meta_value(f, meta, "discovered_date", false);
    fputs(".</p>\n", f);
    section(f, "What information was involved", meta, "information_involved");
    section(f, "What we are doing", meta, "what_we_are_doing");
    section(f, "What you can do", meta, "what_you_can_do");
    fputs("<p>You can get a free credit report from each national credit reporting agency at "
          "www.annualcreditreport.com or 1-877-322-8228, place a fraud alert or a free security "
          "freeze on your credit file, and report identity theft at www.identitytheft.gov.</p>\n",
          f);
    fputs("<h2>Who is concerned</h2>\n<p>This notice is given for people living in:", f);
    size_t i;
    const json_t *v;
    const char *sep = " ";
    json_array_foreach(json_object_get(model, "jurisdictions"), i, v)
    {
        if (!is_required(v) && hipaa == NULL)
            continue;
        fputs(sep, f);
        html_escape(f, jtext(v, "name"));
        sep = ", ";
    }
    fputs(".</p>\n<h2>For more information</h2>\n<div class=\"contact\">\n", f);
    if (hipaa) {
        fputs("<p>To learn whether your information was involved, call our toll-free number, "
              "<strong>",
              f);
        html_escape(f, jtext(meta, "toll_free_number"));
        fputs("</strong>, open for at least 90 days.</p>\n", f);
    }
    fputs("<p>Telephone: ", f);
    meta_value(f, meta, "contact_phone", false);
    fputs("<br>Email: ", f);
    meta_value(f, meta, "contact_email", false);
    fputs("</p>\n</div>\n", f);
    if (hipaa)
        fputs("<p>This notice stays posted on this website for at least 90 days.</p>\n", f);
    fputs("</main>\n</body>\n</html>\n", f);
    fclose(f);
    return text;
}

/* media_text - the notice for a jurisdiction's major media. */
static char *media_text(const json_t *v, const json_t *meta, const json_t *hipaa, size_t *ret_len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, ret_len);
    const char *org = jtext(meta, "organisation") ? jtext(meta, "organisation")
                                                  : "(not in the campaign meta: organisation)";
    fprintf(
        f,
        "FOR IMMEDIATE RELEASE\n\n%s gives notice of a data breach affecting residents of %s\n\n",
        org, jtext(v, "name"));
#define META(key) (jtext(meta, key) ? jtext(meta, key) : "(not in the campaign meta: " key ")")
    fprintf(f,
            "%s could not reach every person affected directly and gives this notice so "
            "that residents of %s learn of it.\n\n",
            org, jtext(v, "name"));
    fprintf(f, "What happened: %s The incident took place %s and was discovered on %s.\n\n",
            META("what_happened"), META("incident_date"), META("discovered_date"));
    fprintf(f, "Information involved: %s\n\n", META("information_involved"));
    fprintf(f, "What %s is doing: %s\n\n", org, META("what_we_are_doing"));
    fprintf(f, "What people can do: %s\n\n", META("what_you_can_do"));
    if (hipaa)
        fprintf(f,
                "To learn whether their information was involved, people can call %s "
                "toll-free, for at least 90 days.\n\n",
                jtext(meta, "toll_free_number"));
    fprintf(f, "For more information: %s, %s.\n", META("contact_phone"), META("contact_email"));
#undef META
    fclose(f);
    return text;
}

/* ---- the files -------------------------------------------------------------------------- */

struct written {
    char *path;
    char sha256[65];
};

static int file_put(const char *path, const char *bytes, size_t len, struct written *w, char *err,
                    size_t err_size)
{
    FILE *f = fopen(path, "we");
    bool ok = f && fwrite(bytes, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        return error_set(err, err_size, -EIO, "%s: cannot write", path);
    w->path = xstrdup(path);
    sha256_hex(bytes, len, w->sha256);
    return 0;
}

/* files_write - posting.html and a media text per jurisdiction (under HIPAA, every
 * jurisdiction with someone not reached); *ret_count files in w. */
static int files_write(const json_t *model, const json_t *meta, const json_t *hipaa,
                       const char *dir, struct written *w, size_t max, size_t *ret_count, char *err,
                       size_t err_size)
{
    size_t n = 0, len = 0;
    char *page = posting_html(model, meta, hipaa, &len);
    char *path = xasprintf("%s/posting.html", dir);
    int r = file_put(path, page, len, &w[n], err, err_size);
    free(page);
    free(path);
    if (r < 0)
        return r;
    n++;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(model, "jurisdictions"), i, v)
    {
        bool wanted =
            is_required(v) ||
            (hipaa && json_integer_value(json_object_get(v, "without_sufficient_contact")) > 0);
        if (!wanted || strcmp(jtext(v, "jurisdiction"), "unknown") == 0)
            continue;
        if (n == max)
            return error_set(err, err_size, -E2BIG, "more jurisdictions than one set holds");
        char safe[48];
        file_safe_name(jtext(v, "jurisdiction"), safe, sizeof(safe));
        char *text = media_text(v, meta, hipaa, &len);
        path = xasprintf("%s/media-%s.txt", dir, safe);
        r = file_put(path, text, len, &w[n], err, err_size);
        free(text);
        free(path);
        if (r < 0)
            break;
        n++;
    }
    *ret_count = n;
    return r;
}

/* ---- staging: the set appears in DIR whole, after the record, or not at all ------------- */

/* stage_open - a fresh directory beside dir (in its parent, so that rename() moves files
 * into dir without copying), after checking that dir can take them. */
static char *stage_open(const char *dir, char *err, size_t err_size)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0)) {
        error_set(err, err_size, -EIO, "%s: %s: nothing written", dir,
                  S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
        return NULL;
    }
    char *copy = xstrdup(dir), *copy2 = xstrdup(dir);
    char *stage = xasprintf("%s/.%s.tmp-XXXXXX", dirname(copy), basename(copy2));
    free(copy);
    free(copy2);
    if (mkdtemp(stage) == NULL) {
        error_set(err, err_size, -EIO, "%s: cannot make a staging directory beside it (%s): %s",
                  dir, stage, strerror(errno));
        free(stage);
        return NULL;
    }
    /* mkdtemp makes it 0700; it may become DIR itself, which a web server must read */
    chmod(stage, 0755);
    return stage;
}

/* stage_remove - the staging directory and the files written into it. */
static void stage_remove(char *stage, const struct written *w, size_t n)
{
    if (stage == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        unlink(w[i].path);
    /* a file that failed part-way is not in w: remove whatever is left */
    DIR *d = opendir(stage);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char *path = xasprintf("%s/%s", stage, e->d_name);
            unlink(path);
            free(path);
        }
    }
    if (d)
        closedir(d);
    rmdir(stage);
    free(stage);
}

/* stage_check - would each staged file move into dir? A directory (or anything not a
 * regular file) in the way would fail the rename after the record was committed. */
static int stage_check(const char *dir, const struct written *w, size_t n, char *err,
                       size_t err_size)
{
    for (size_t i = 0; i < n; i++) {
        char *target = xasprintf("%s/%s", dir, strrchr(w[i].path, '/') + 1);
        struct stat st;
        bool blocked = lstat(target, &st) == 0 && !S_ISREG(st.st_mode);
        int r = blocked ? error_set(err, err_size, -EIO,
                                    "%s: exists and is not a regular file: nothing written", target)
                        : 0;
        free(target);
        if (r < 0)
            return r;
    }
    return 0;
}

/* stage_publish - move the staged set into dir: the whole directory when dir does not exist
 * (one rename), else file by file. The record is committed by now: on a failure, err says
 * where the files are, and the dispatch log has each one's SHA-256 to check them by. */
static int stage_publish(char *stage, const char *dir, struct written *w, size_t n, char *err,
                         size_t err_size)
{
    if (rename(stage, dir) == 0) {
        for (size_t i = 0; i < n; i++) {
            char *path = xasprintf("%s/%s", dir, strrchr(w[i].path, '/') + 1);
            free(w[i].path);
            w[i].path = path;
        }
        free(stage);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, strrchr(w[i].path, '/') + 1);
        if (rename(w[i].path, path) < 0) {
            int e = errno;
            free(path);
            error_set(err, err_size, -EIO,
                      "the substitute notice is recorded, but moving %s into %s failed (%s): "
                      "the files not moved are in %s; move them into %s (the dispatch log has "
                      "each one's SHA-256)",
                      w[i].path, dir, strerror(e), stage, dir);
            free(stage);
            return -EIO;
        }
        free(w[i].path);
        w[i].path = path;
    }
    rmdir(stage);
    free(stage);
    return 0;
}

/* ---- the email -------------------------------------------------------------------------- */

/* email_campaign - the substitute email campaign of a campaign: created and linked the first
 * time. Its name in *ret_name. */
static int email_campaign(struct crier_db *db, const struct crier_config *config, const char *name,
                          const char *id, const char *incident, const json_t *meta,
                          const char *actor, char **ret_name, char *err, size_t err_size)
{
    char *child = xasprintf("%s.substitute", name);
    if (strlen(child) > 63) {
        free(child);
        return error_set(err, err_size, -EINVAL,
                         "the campaign name is too long for '%s.substitute' (63 characters)", name);
    }
    const char *params[] = {id, child};
    PGresult *res = NULL;
    int r = db_query(db,
                     "SELECT c.name FROM crier.substitute_email s JOIN crier.campaign c"
                     " ON c.id = s.email_campaign_id WHERE s.campaign_id = $1",
                     1, params, &res);
    if (r == 0 && PQntuples(res) == 1) {
        free(child);
        *ret_name = xstrdup(db_value(res, 0, 0));
        PQclear(res);
        return 0;
    }
    PQclear(res);
    char *meta_json = json_dumps(meta, JSON_COMPACT);
    struct campaign_create_options c = {
        .name = child,
        .incident = incident,
        .policy = "email",
        .templates = substitute_templates_dir(config),
        .meta_json = meta_json,
    };
    if (r == 0)
        r = campaign_create(db, &c, actor, err, err_size);
    free(meta_json);
    if (r == -EEXIST)
        error_set(err, err_size, r,
                  "a campaign named '%s' exists and is not this campaign's substitute email",
                  child);
    if (r == 0)
        r = db_exec(db,
                    "INSERT INTO crier.substitute_email (campaign_id, email_campaign_id)"
                    " SELECT $1, id FROM crier.campaign WHERE name = $2",
                    2, params);
    if (r < 0) {
        if (err[0] == '\0')
            error_set(err, err_size, r, "%s", db->error);
        free(child);
        return r;
    }
    *ret_name = child;
    return 0;
}

/* people_query - everyone of the campaign not reached, with an email address now, in a
 * jurisdiction that requires substitute notice (all, when a framework does), not held, and
 * not yet in the email campaign. Only numbers and quoted codes enter the text. */
static char *people_query(struct crier_db *db, const json_t *model, const char *id,
                          const char *child, bool everyone)
{
    json_t *codes = json_array();
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(model, "jurisdictions"), i, v)
    {
        if (is_required(v))
            json_array_append_new(codes, json_string(jtext(v, "jurisdiction")));
    }
    char *codes_json = json_dumps(codes, JSON_COMPACT);
    json_decref(codes);
    char *quoted = PQescapeLiteral(db->conn, codes_json, strlen(codes_json));
    char *child_quoted = PQescapeLiteral(db->conn, child, strlen(child));
    /* the jurisdiction as substitute.c's place_code() names it; abroad by country code */
    char *q = xasprintf(
        "SELECT v.ref, v.name, v.email, v.region, v.country"
        " FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id"
        "  AND r.seq = n.recipient_seq"
        " CROSS JOIN LATERAL (SELECT * FROM crier.recipient_now v WHERE v.campaign_id = %s"
        "  AND v.seq = n.recipient_seq OFFSET 0) v"
        " WHERE n.campaign_id = %s AND (n.state = 'undeliverable' OR (n.state = 'mailed' AND"
        "  EXISTS (SELECT 1 FROM crier.dispatch_log d WHERE d.campaign_id = %s"
        "  AND d.event = 'returned' AND d.notice_id = n.id AND d.attempt = n.attempt)))"
        " AND v.email IS NOT NULL"
        /* a law-enforcement hold of the campaign covers its substitute email too (an
         * unconfirmed oral hold still holds here, whatever holds.oral_lapse says) */
        " AND NOT crier.notice_held(n.campaign_id, n.recipient_seq, false)"
        " AND (%s OR (CASE WHEN coalesce(upper(btrim(r.country)), 'US') = 'US'"
        "  THEN upper(btrim(coalesce(r.region, ''))) ELSE upper(btrim(r.country)) END)"
        "  IN (SELECT jsonb_array_elements_text(%s::jsonb)))"
        " AND NOT EXISTS (SELECT 1 FROM crier.recipient c WHERE c.campaign_id ="
        "  (SELECT id FROM crier.campaign WHERE name = %s) AND c.ref = v.ref)"
        " ORDER BY n.id",
        id, id, id, everyone ? "true" : "false", quoted, child_quoted);
    PQfreemem(quoted);
    PQfreemem(child_quoted);
    free(codes_json);
    return q;
}

/* email_queue - load the people into the email campaign and start it (check: the same
 * checks as campaign start); *ret_queued people added. */
static int email_queue(struct crier_db *db, const struct crier_config *config, const json_t *model,
                       const char *id, const char *child, bool everyone, const char *actor,
                       campaign_start_check check, void *check_data, long *ret_queued, char *err,
                       size_t err_size)
{
    char *query = people_query(db, model, id, child, everyone);
    PGresult *res = NULL;
    char *count_sql = xasprintf("SELECT count(*) FROM (%s) q", query);
    int r = db_query(db, count_sql, 0, NULL, &res);
    free(count_sql);
    long people = r == 0 ? atol(db_value(res, 0, 0)) : 0;
    PQclear(res);
    struct campaign *c = NULL;
    if (r == 0)
        r = campaign_get(db, child, false, &c);
    if (r == 0 && people > 0 && strcmp(c->state, "completed") == 0)
        r = error_set(err, err_size, -EPERM,
                      "%ld more people are not reached, but the substitute email campaign '%s' "
                      "is completed: send them with crier notice resend or a campaign of your own",
                      people, child);
    if (r == 0 && people > 0) {
        /* The people are copied first: the load reads its source through a cursor, and a
         * cursor open on crier.recipient would stop the first load attaching the email
         * campaign's partitions (ALTER TABLE in the same session). */
        char *copy = xasprintf("CREATE TEMP TABLE crier_substitute_people AS %s", query);
        r = db_exec(db, "DROP TABLE IF EXISTS pg_temp.crier_substitute_people", 0, NULL);
        if (r == 0)
            r = db_exec(db, copy, 0, NULL);
        free(copy);
        /* the query names the standard columns, whatever import.columns renames */
        struct crier_config plain = *config;
        memset(plain.import.columns, 0, sizeof(plain.import.columns));
        struct import_options o = {
            .campaign = child,
            .query = "SELECT ref, name, email, region, country FROM"
                     " pg_temp.crier_substitute_people",
            .actor = actor,
        };
        struct import_result result = {0};
        if (r == 0)
            r = import_load(db, &plain, &o, stderr, &result, err, err_size);
        people = result.loaded;
        if (r == 0)
            r = db_exec(db, "DROP TABLE pg_temp.crier_substitute_people", 0, NULL);
    }
    if (r == 0 && strcmp(c->state, "draft") == 0)
        r = campaign_transition(db, child, CAMPAIGN_START, actor, check, check_data, NULL, err,
                                err_size);
    if (r < 0 && err[0] == '\0')
        error_set(err, err_size, r, "%s", db->error);
    campaign_free(c);
    free(query);
    *ret_queued = people;
    return r;
}

/* ---- the log ---------------------------------------------------------------------------- */

static int log_all(struct crier_db *db, const char *id, const struct written *w, size_t n,
                   const char *email_detail, char *err, size_t err_size)
{
    int r = db_begin(db);
    for (size_t i = 0; r == 0 && i <= n; i++) {
        const char *base = i < n ? strrchr(w[i].path, '/') + 1 : NULL;
        char *detail = i < n ? xasprintf("wrote %s", base) : xstrdup(email_detail);
        const char *params[] = {id, i < n ? "written" : "queued", detail,
                                i < n ? w[i].sha256 : NULL};
        r = db_exec(db,
                    "WITH l AS (INSERT INTO crier.dispatch_log (campaign_id, event, to_state,"
                    " actor, detail, content_sha256) VALUES ($1, 'substitute', $2, session_user,"
                    " $3, $4))"
                    " INSERT INTO crier.substitute_record (campaign_id, kind, detail)"
                    " VALUES ($1, $2, $3)",
                    4, params);
        free(detail);
    }
    r = db_end(db, r);
    return r < 0 ? error_set(err, err_size, r, "logging the substitute notice: %s", db->error) : 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* hipaa_required - HIPAA's entry of the model when its substitute notice is required. */
static const json_t *hipaa_required(const json_t *model)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(model, "frameworks"), i, f)
    {
        if (strcmp(jtext(f, "jurisdiction"), "HIPAA") == 0 && is_required(f))
            return f;
    }
    return NULL;
}

#define SET_MAX 64 /* posting.html and a media text for each of 58 jurisdictions and more */

/* What substitute_write holds between its phases; write_end() releases it. */
struct write_run {
    struct crier_db *db;
    const struct substitute_options *o;
    char id[32];
    char *incident, *child, *stage;
    json_t *model, *meta;
    const json_t *hipaa; /* HIPAA's entry of the model when its substitute notice is required */
    bool locked;
    struct written w[SET_MAX];
    size_t n;
    long queued;
};

/* write_begin - the campaign's meta, the session lock, the assessment. */
static int write_begin(struct write_run *run, char *err, size_t err_size)
{
    int r = meta_read(run->db, run->o->campaign, run->id, sizeof(run->id), &run->incident,
                      &run->meta, err, err_size);
    if (r == 0) {
        /* held until the end, across the load's transactions (a session lock) */
        const char *params[] = {run->id};
        r = db_exec(run->db, "SELECT pg_advisory_lock(" SUBSTITUTE_LOCK_CLASS ", $1::integer)", 1,
                    params);
        run->locked = r == 0;
        if (r < 0)
            error_set(err, err_size, r, "%s", run->db->error);
    }
    if (r == 0)
        r = substitute_assess(run->db, run->o, &run->model, err, err_size);
    return r;
}

/* write_refused - what stops the notice before anything is written: no jurisdiction
 * requires it, or HIPAA does and the meta has no toll-free number. */
static int write_refused(struct write_run *run, char *err, size_t err_size)
{
    run->hipaa = hipaa_required(run->model);
    if (json_array_size(json_object_get(run->model, "required")) == 0)
        return error_set(err, err_size, -EPERM,
                         "substitute notice is required in no jurisdiction of '%s' by the rules "
                         "table (see crier substitute %s): nothing written",
                         run->o->campaign, run->o->campaign);
    if (run->hipaa && str_empty(jtext(run->meta, "toll_free_number")))
        return error_set(err, err_size, -EINVAL,
                         "the campaign meta has no toll_free_number: HIPAA's substitute notice "
                         "needs a toll-free number, active for 90 days, on the posting and in "
                         "the media notice (45 CFR 164.404(d)(2)): nothing written");
    return 0;
}

/* write_stage - the files, written into a staging directory beside dir and checked. */
static int write_stage(struct write_run *run, const char *dir, char *err, size_t err_size)
{
    run->stage = stage_open(dir, err, err_size);
    if (run->stage == NULL)
        return -EIO;
    int r = files_write(run->model, run->meta, run->hipaa, run->stage, run->w, SET_MAX, &run->n,
                        err, err_size);
    return r == 0 ? stage_check(dir, run->w, run->n, err, err_size) : r;
}

/* write_email - the email campaign of the notice, and the people queued on it. */
static int write_email(struct write_run *run, const struct crier_config *config, const char *actor,
                       campaign_start_check check, void *check_data, char *err, size_t err_size)
{
    int r = email_campaign(run->db, config, run->o->campaign, run->id, run->incident, run->meta,
                           actor, &run->child, err, err_size);
    if (r == 0)
        r = email_queue(run->db, config, run->model, run->id, run->child, run->hipaa != NULL, actor,
                        check, check_data, &run->queued, err, err_size);
    return r;
}

/* write_record - the log rows, then the staged files moved into dir. */
static int write_record(struct write_run *run, const char *dir, char *err, size_t err_size)
{
    char *detail = xasprintf("substitute email queued for %ld more people in campaign %s",
                             run->queued, run->child);
    int r = log_all(run->db, run->id, run->w, run->n, detail, err, err_size);
    free(detail);
    if (r < 0)
        return r; /* nothing recorded: the staging directory goes */
    r = stage_publish(run->stage, dir, run->w, run->n, err, err_size);
    run->stage = NULL; /* moved, or kept for the user (err says where) */
    return r;
}

static json_t *write_result(const struct write_run *run)
{
    json_t *files = json_array();
    for (size_t i = 0; i < run->n; i++)
        json_array_append_new(
            files, json_pack("{s:s, s:s}", "path", run->w[i].path, "sha256", run->w[i].sha256));
    return json_pack("{s:s, s:O, s:o, s:s, s:I}", "campaign", run->o->campaign, "required",
                     json_object_get(run->model, "required"), "files", files, "email_campaign",
                     run->child, "email_queued", (json_int_t)run->queued);
}

/* write_end - a staging directory left removed, the lock released, the memory freed. */
static void write_end(struct write_run *run)
{
    stage_remove(run->stage, run->w, run->n);
    for (size_t i = 0; i < run->n; i++)
        free(run->w[i].path);
    if (run->locked) {
        const char *params[] = {run->id};
        db_exec(run->db, "SELECT pg_advisory_unlock(" SUBSTITUTE_LOCK_CLASS ", $1::integer)", 1,
                params);
    }
    free(run->child);
    free(run->incident);
    json_decref(run->meta);
    json_decref(run->model);
}

int substitute_write(struct crier_db *db, const struct crier_config *config,
                     const struct substitute_options *o, const char *dir, const char *actor,
                     campaign_start_check check, void *check_data, json_t **ret_result, char *err,
                     size_t err_size)
{
    struct write_run run = {.db = db, .o = o};
    int r = write_begin(&run, err, err_size);
    if (r == 0)
        r = write_refused(&run, err, err_size);
    if (r == 0)
        r = write_stage(&run, dir, err, err_size);
    if (r == 0)
        r = write_email(&run, config, actor, check, check_data, err, err_size);
    if (r == 0)
        r = write_record(&run, dir, err, err_size);
    if (r == 0)
        *ret_result = write_result(&run);
    write_end(&run);
    return r;
}
