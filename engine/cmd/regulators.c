/*
 * regulators.c - `crier regulators CAMPAIGN --out DIR`: the regulator notice packet. For each
 * notice the rules table says is due (the report's flags.due: the same figures, the same
 * snapshot rules), a letter as a PDF through channels/letter.c, with the organisation, the
 * incident's dates, the residents affected, the dates the individual notices went out, the
 * contact, the rule it answers, and a sample of the individual notice as that
 * jurisdiction's residents received it (their region's template, personal data replaced by
 * placeholders); a CSV of the counts regulators' web forms ask for; under HIPAA, the fields
 * of the HHS breach portal. Every file is logged with its SHA-256 (event 'regulator',
 * to_state 'packet'), and `mark-filed` logs the filing itself, so the audit trail covers
 * regulators as it covers people.
 *
 * Must never decide what the law is (it acts on the rules table's verdicts) and never send
 * anything: filing is a person's act, recorded afterwards.
 *
 * SECURITY: the campaign meta and the templates are the organisation's; list values never
 * reach a regulator's letter (the sample uses placeholders). Meta values are escaped as
 * Markdown literals before letter.c turns Markdown into Pango markup.
 */
#include "crier/regulators.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/db.h"
#include "crier/letter.h"
#include "crier/render.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *jtext(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : NULL;
}

/* meta_md - a meta value as a Markdown literal, or a marked gap when the meta lacks it. */
static char *meta_md(const json_t *meta, const char *key)
{
    const char *v = jtext(meta, key);
    if (v == NULL || v[0] == '\0')
        return xasprintf("**(not in the campaign meta: %s)**", key);
    return render_markdown_literal(v);
}

static void md_line(FILE *f, const char *label, const char *value)
{
    char *literal = render_markdown_literal(value ? value : "-");
    fprintf(f, "**%s:** %s\n\n", label, literal);
    free(literal);
}

/* The list columns of one recipient of a region ($1 campaign id, $2 the region). */
static const char sample_vars_sql[] =
    "SELECT vars::text FROM crier.recipient WHERE campaign_id = $1"
    " AND upper(btrim(coalesce(region, ''))) = $2 ORDER BY seq LIMIT 1";

/* sample_notice - the individual notice as the residents of region received it: their
 * region's template, every list value a placeholder. Markdown in *ret_body. */
static int sample_notice(struct crier_db *db, const struct campaign *c,
                         const struct render_campaign *render, const char *region, char **ret_body,
                         char *err, size_t err_size)
{
    /* one recipient of the region gives the list's other columns (names only) */
    const char *params[] = {DB_NUM(c->id), region};
    PGresult *res = NULL;
    int r = db_query(db, sample_vars_sql, 2, params, &res);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    json_t *vars = PQntuples(res) && !PQgetisnull(res, 0, 0)
                       ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                       : NULL;
    PQclear(res);
    if (!json_is_object(vars)) {
        json_decref(vars);
        vars = json_object();
    }
    const char *key;
    json_t *value;
    json_object_foreach(vars, key, value)
    {
        char *placeholder = xasprintf("[%s]", key);
        json_object_set_new(vars, key, json_string(placeholder));
        free(placeholder);
    }
    char *vars_json = json_dumps(vars, JSON_COMPACT);
    json_decref(vars);
    struct crier_notice n = {
        .campaign_id = c->id,
        .campaign_name = c->name,
        .ref = "[ref]",
        .token = "0.sample",
        .name = "[Name of the resident]",
        .email = "resident@example.invalid",
        .address = {"[Street address]", NULL, "[City]", region, "[ZIP]"},
        .country = "US",
        .vars_json = vars_json,
        .attempt = 1,
        .channel_attempt = 1,
        .render = render,
    };
    size_t len = 0;
    char *text = NULL;
    if (render_has(&n, "letter.md")) {
        r = notice_render(&n, "letter.md", false, &text, &len, err, err_size);
        *ret_body = text;
    } else {
        r = notice_render(&n, "email.txt", false, &text, &len, err, err_size);
        if (r == 0) {
            *ret_body = render_markdown_literal(text); /* one paragraph: plain text */
            free(text);
        }
    }
    free(vars_json);
    return r;
}

/* meta_line - "**label:** " and the campaign meta's key, as Markdown literal text. */
static void meta_line(FILE *f, const char *label, const json_t *meta, const char *key)
{
    char *value = meta_md(meta, key);
    fprintf(f, "**%s:** %s\n\n", label, value);
    free(value);
}

/* letter_incident - the letter's "The incident": what the campaign's meta says of it. */
static void letter_incident(FILE *f, const json_t *model, const json_t *meta)
{
    fprintf(f, "## The incident\n\n");
    md_line(f, "Incident reference", jtext(model, "incident"));
    meta_line(f, "Dates of the breach", meta, "incident_date");
    md_line(f, "Discovered",
            jtext(model, "discovered_date") ? jtext(model, "discovered_date") : "not given");
    meta_line(f, "What happened", meta, "what_happened");
    meta_line(f, "Information involved", meta, "information_involved");
    meta_line(f, "What we are doing", meta, "what_we_are_doing");
}

/* letter_people - "People affected": the count the rule counts, and who was told when. */
static void letter_people(FILE *f, const json_t *model, const json_t *due,
                          const json_t *jurisdiction)
{
    fprintf(f, "## People affected\n\n");
    long long residents = json_integer_value(json_object_get(jurisdiction, "residents"));
    if (strcmp(jtext(due, "counted"), "campaign") == 0)
        fprintf(f, "**Individuals affected (all jurisdictions):** %lld\n\n",
                (long long)json_integer_value(json_object_get(model, "total")));
    else
        fprintf(f, "**Residents affected:** %lld\n\n", residents);
    long long notified = json_integer_value(json_object_get(
        json_is_object(jurisdiction) ? jurisdiction : json_object_get(model, "timeliness"),
        "notified"));
    fprintf(f, "**Notified so far:** %lld\n\n", notified);
    const char *first = jtext(jurisdiction, "first_notice_at");
    const char *last = jtext(jurisdiction, "last_notice_at");
    if (first) {
        char *dates_sent = xasprintf("from %.10s to %.10s", first, last);
        md_line(f, "Individual notices sent", dates_sent);
        free(dates_sent);
    } else if (jurisdiction == NULL) {
        md_line(f, "Individual notices sent", "by jurisdiction: see counts.csv");
    } else {
        md_line(f, "Individual notices sent", "none yet");
    }
}

/* letter_rule - "The rule this notice answers": threshold, deadline, and the rules table's
 * citation and source, flagged when counsel has not verified it. */
static void letter_rule(FILE *f, const json_t *due, const json_t *rules)
{
    fprintf(f, "## The rule this notice answers\n\n");
    char *rule =
        xasprintf("%s (%lld %s)", jtext(due, "threshold"),
                  (long long)json_integer_value(json_object_get(due, "count")),
                  strcmp(jtext(due, "counted"), "campaign") == 0 ? "in the campaign" : "residents");
    md_line(f, "Threshold", rule);
    free(rule);
    char *deadline = strcmp(jtext(due, "deadline"), "unknown") == 0
                         ? xstrdup("unknown to the rules table: check counsel")
                         : xasprintf("%s from %s%s%s", jtext(due, "deadline"), jtext(due, "from"),
                                     jtext(due, "due_by") ? ", due by " : "",
                                     jtext(due, "due_by") ? jtext(due, "due_by") : "");
    md_line(f, "Deadline", deadline);
    free(deadline);
    if (json_is_object(rules)) {
        md_line(f, "Citation", jtext(rules, "citation"));
        char *checked =
            xasprintf("%s, checked %s%s", jtext(rules, "source_kind"), jtext(rules, "checked"),
                      json_is_true(json_object_get(rules, "verified")) &&
                              json_is_true(json_object_get(due, "verified"))
                          ? ""
                          : "; NOT VERIFIED: counsel must confirm before filing");
        md_line(f, "Source of the rule", checked);
        free(checked);
    }
}

/* letter_body - the Markdown of one regulator's letter. */
static char *letter_body(const json_t *model, const json_t *meta, const json_t *due,
                         const json_t *jurisdiction, const json_t *rules,
                         const char *regulator_name, const char *sample, const char *sample_error)
{
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    const char *code = jtext(due, "jurisdiction");
    const char *name = json_is_object(rules) ? jtext(rules, "name") : code;
    char *organisation = meta_md(meta, "organisation");
    fprintf(f, "# Notice of a data breach\n\n");
    char *regulator = render_markdown_literal(regulator_name);
    char *where = render_markdown_literal(name ? name : code);
    fprintf(f, "To the %s, %s, from %s.\n\n", regulator, where, organisation);
    free(regulator);
    free(where);
    letter_incident(f, model, meta);
    letter_people(f, model, due, jurisdiction);
    letter_rule(f, due, rules);

    fprintf(f, "## Contact\n\n");
    char *phone = meta_md(meta, "contact_phone");
    char *email = meta_md(meta, "contact_email");
    fprintf(f, "%s: telephone %s, email %s\n\n", organisation, phone, email);
    free(phone);
    free(email);
    free(organisation);

    fprintf(f, "## Sample of the notice to residents\n\n");
    if (sample)
        fprintf(f, "%s\n", sample);
    else {
        char *why = render_markdown_literal(sample_error);
        fprintf(f, "**No sample could be rendered:** %s\n", why);
        free(why);
    }
    fclose(f);
    return body;
}

static void csv_field(FILE *f, const char *value, bool last)
{
    csv_write_field(f, value ? value : "");
    fputc(last ? '\n' : ',', f);
}

static void csv_number(FILE *f, long long n, bool last)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", n);
    csv_field(f, text, last);
}

/* hhs_fields - what the HHS breach portal asks for, filled from the campaign and its meta;
 * what crier cannot know says so. */
static int hhs_fields(const char *path, const json_t *model, const json_t *meta,
                      const json_t *hipaa)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -EIO;
    static const char *const unknown = "(not known to crier: fill in)";
    const json_t *sub = json_object_get(hipaa, "substitute_notice");
    long long media = 0;
    const char *key;
    json_t *g;
    json_object_foreach(json_object_get(model, "by_jurisdiction"), key, g)
    {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(g, "regulators"), i, r)
        {
            if (strncmp(jtext(r, "name"), "HIPAA: ", 7) == 0 &&
                strcmp(jtext(r, "due"), "required") == 0)
                media++;
        }
    }
    char *first = NULL, *last = NULL;
    json_object_foreach(json_object_get(model, "by_jurisdiction"), key, g)
    {
        const char *a = jtext(g, "first_notice_at"), *b = jtext(g, "last_notice_at");
        if (a && (first == NULL || strcmp(a, first) < 0)) {
            free(first);
            first = xstrdup(a);
        }
        if (b && (last == NULL || strcmp(b, last) > 0)) {
            free(last);
            last = xstrdup(b);
        }
    }
    char total[32], jurisdictions_media[32];
    snprintf(total, sizeof(total), "%lld",
             (long long)json_integer_value(json_object_get(model, "total")));
    snprintf(jurisdictions_media, sizeof(jurisdictions_media), "%lld", media);
    char *notice_dates = first ? xasprintf("%.10s to %.10s", first, last) : xstrdup("none yet");
    const char *rows[][2] = {
        {"name_of_covered_entity", jtext(meta, "organisation")},
        {"contact_phone", jtext(meta, "contact_phone")},
        {"contact_email", jtext(meta, "contact_email")},
        {"breach_dates", jtext(meta, "incident_date")},
        {"discovery_date", jtext(model, "discovered_date")},
        {"approximate_number_of_individuals_affected", total},
        {"type_of_breach", jtext(meta, "type_of_breach")},
        {"location_of_breached_information", jtext(meta, "location_of_information")},
        {"type_of_protected_health_information_involved", jtext(meta, "information_involved")},
        {"brief_description_of_the_breach", jtext(meta, "what_happened")},
        {"safeguards_in_place_prior_to_breach", jtext(meta, "safeguards")},
        {"individual_notice_provided_dates", notice_dates},
        {"substitute_notice_required", jtext(sub, "triggered")},
        {"media_notice_required_in_jurisdictions", jurisdictions_media},
        {"actions_taken_in_response", jtext(meta, "what_we_are_doing")},
    };
    fputs("\"field\",\"value\"\n", f);
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        csv_field(f, rows[i][0], false);
        csv_field(f, rows[i][1] && rows[i][1][0] ? rows[i][1] : unknown, true);
    }
    free(notice_dates);
    free(first);
    free(last);
    bool failed = ferror(f) != 0;
    return fclose(f) != 0 || failed ? -EIO : 0;
}

struct packet_file {
    char *path, *what;
    char sha256[65];
};

#define PACKET_FILES_MAX 256 /* 58 entries with at most a few notices each, and two CSVs */

/* packet_add - a written file (path and what taken over) with its SHA-256: of bytes when
 * given, else of the file. */
static void packet_add(struct packet_file *files, size_t *count, char *path, char *what,
                       const unsigned char *bytes, size_t len)
{
    struct packet_file *f = &files[(*count)++];
    f->path = path;
    f->what = what;
    if (bytes)
        sha256_hex(bytes, len, f->sha256);
    else if (sha256_file_hex(path, f->sha256) < 0)
        snprintf(f->sha256, sizeof(f->sha256), "unreadable");
}

/* One packet being written. */
struct packet {
    struct crier_db *db;
    const json_t *model, *meta;
    struct campaign *c;
    struct render_campaign *render;
    const char *out_dir;
    struct letter_layout layout;
    char today[11];
    struct packet_file files[PACKET_FILES_MAX];
    size_t file_count;
    char *err;
    size_t err_size;
};

/* counts_row - one notice due as a row of counts.csv; a framework's campaign-wide notice
 * (g NULL: its name is in the regulator column) is counted over the whole campaign. */
static void counts_row(FILE *csv, const json_t *model, const json_t *due, const json_t *g)
{
    const char *code = jtext(due, "jurisdiction");
    const json_t *rules = json_object_get(g, "rules");
    csv_field(csv, code, false);
    csv_field(csv, json_is_object(rules) ? jtext(rules, "name") : code, false);
    csv_field(csv, jtext(due, "name"), false);
    csv_field(csv, jtext(due, "due"), false);
    csv_field(csv, jtext(due, "threshold"), false);
    csv_field(csv, jtext(due, "counted"), false);
    csv_number(csv, json_integer_value(json_object_get(due, "count")), false);
    const json_t *whole = json_object_get(model, "timeliness");
    csv_number(
        csv,
        json_integer_value(g ? json_object_get(g, "residents") : json_object_get(model, "total")),
        false);
    csv_number(
        csv,
        json_integer_value(g ? json_object_get(g, "notified") : json_object_get(whole, "notified")),
        false);
    csv_number(csv,
               json_integer_value(g ? json_object_get(g, "no_usable_contact")
                                    : json_object_get(model, "no_usable_contact")),
               false);
    csv_field(csv, g ? jtext(g, "first_notice_at") : NULL, false);
    csv_field(csv, g ? jtext(g, "last_notice_at") : NULL, false);
    csv_field(csv, jtext(due, "deadline"), false);
    csv_field(csv, jtext(due, "from"), false);
    csv_field(csv, jtext(due, "due_by"), false);
    csv_field(csv, json_is_object(rules) ? jtext(rules, "citation") : NULL, false);
    csv_field(csv, json_is_true(json_object_get(due, "verified")) ? "yes" : "no", true);
}

/* due_rules - the rules entry of a notice due: the jurisdiction's, or the declared
 * framework's. */
static const json_t *due_rules(const json_t *model, const json_t *g, const char *code)
{
    const json_t *jrules = json_object_get(g, "rules");
    size_t k;
    const json_t *fw;
    json_array_foreach(json_object_get(model, "frameworks"), k, fw)
    {
        if (!json_is_object(jrules) && strcmp(jtext(fw, "code"), code) == 0)
            jrules = fw;
    }
    return jrules;
}

/* packet_write_pdf - the letter's bytes into path; path is taken over (into the packet's
 * files, or freed). */
static int packet_write_pdf(struct packet *p, char *path, const unsigned char *pdf, size_t pdf_len,
                            char *what)
{
    FILE *f = fopen(path, "we");
    bool ok = f && fwrite(pdf, 1, pdf_len, f) == pdf_len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || p->file_count + 3 > ARRAY_SIZE(p->files)) {
        int r = error_set(p->err, p->err_size, -EIO, "%s: %s", path,
                          ok ? "more notices due than one packet holds" : "cannot write");
        free(path);
        free(what);
        return r;
    }
    packet_add(p->files, &p->file_count, path, what, pdf, pdf_len);
    return 0;
}

/* packet_letter - the letter for one notice due, as a PDF. The sample is rendered for the
 * jurisdiction's region (the campaign's own region override); a framework's campaign-wide
 * notice uses the default. */
static int packet_letter(struct packet *p, const json_t *due, const json_t *g)
{
    const char *code = jtext(due, "jurisdiction");
    char *sample = NULL, sample_error[512] = "";
    if (sample_notice(p->db, p->c, p->render, g ? code : "", &sample, sample_error,
                      sizeof(sample_error)) < 0)
        sample = NULL;
    const json_t *jrules = due_rules(p->model, g, code);
    const char *regulator = jtext(due, "name"); /* "HIPAA: HHS": the code once in a name */
    size_t code_len = strlen(code);
    if (strncmp(regulator, code, code_len) == 0 && strncmp(regulator + code_len, ": ", 2) == 0)
        regulator += code_len + 2;
    char *body = letter_body(p->model, p->meta, due, g, jrules, regulator, sample, sample_error);
    free(sample);
    const char *return_address[] = {
        jtext(p->meta, "organisation") ? jtext(p->meta, "organisation") : "(organisation)", NULL};
    struct letter_input in = {
        .return_address = return_address,
        .name = regulator,
        .address = {json_is_object(jrules) ? jtext(jrules, "name") : code},
        .date = p->today,
        .body = body,
    };
    unsigned char *pdf = NULL;
    size_t pdf_len = 0;
    int pages = 0;
    char letter_err[512] = "";
    int r =
        letter_render_pdf(&p->layout, &in, &pdf, &pdf_len, &pages, letter_err, sizeof(letter_err));
    free(body);
    char safe_code[32], safe_name[96];
    file_safe_name(code, safe_code, sizeof(safe_code));
    file_safe_name(regulator, safe_name, sizeof(safe_name));
    char *path = xasprintf("%s/%s-%s.pdf", p->out_dir, safe_code, safe_name);
    if (r < 0) {
        error_set(p->err, p->err_size, r, "%s: %s", path, letter_err);
        free(path);
        return r;
    }
    r = packet_write_pdf(p, path, pdf, pdf_len, xasprintf("%s %s", code, jtext(due, "name")));
    free(pdf);
    return r;
}

/* packet_notices - counts.csv, one row per notice due, and each notice's letter. */
static int packet_notices(struct packet *p)
{
    char *csv_path = xasprintf("%s/counts.csv", p->out_dir);
    FILE *csv = fopen(csv_path, "we");
    if (csv == NULL) {
        int r = error_set(p->err, p->err_size, -EIO, "%s: %s", csv_path, strerror(errno));
        free(csv_path);
        return r;
    }
    fputs("\"jurisdiction\",\"jurisdiction_name\",\"regulator\",\"verdict\",\"threshold\","
          "\"counted\",\"count\",\"residents\",\"notified\",\"no_usable_contact\","
          "\"first_notice\",\"last_notice\",\"deadline\",\"from\",\"due_by\",\"citation\","
          "\"verified\"\n",
          csv);
    size_t i;
    const json_t *due;
    json_array_foreach(json_object_get(json_object_get(p->model, "flags"), "due"), i, due)
    {
        const json_t *g = json_object_get(json_object_get(p->model, "by_jurisdiction"),
                                          jtext(due, "jurisdiction"));
        counts_row(csv, p->model, due, g);
        int r = packet_letter(p, due, g);
        if (r < 0) {
            fclose(csv);
            free(csv_path);
            return r;
        }
    }
    bool failed = ferror(csv) != 0;
    if (fclose(csv) != 0 || failed) {
        int r = error_set(p->err, p->err_size, -EIO, "%s: cannot write", csv_path);
        free(csv_path);
        return r;
    }
    packet_add(p->files, &p->file_count, csv_path, xstrdup("counts"), NULL, 0);
    return 0;
}

/* packet_hhs - HIPAA declared: the HHS breach portal's fields. */
static int packet_hhs(struct packet *p)
{
    size_t i;
    const json_t *fw;
    json_array_foreach(json_object_get(p->model, "frameworks"), i, fw)
    {
        if (strcmp(jtext(fw, "code"), "HIPAA") != 0)
            continue;
        char *path = xasprintf("%s/hhs-breach-portal.csv", p->out_dir);
        if (hhs_fields(path, p->model, p->meta, fw) < 0) {
            int r = error_set(p->err, p->err_size, -EIO, "%s: cannot write", path);
            free(path);
            return r;
        }
        packet_add(p->files, &p->file_count, path, xstrdup("HIPAA HHS breach portal fields"), NULL,
                   0);
    }
    return 0;
}

/* packet_log - the audit trail: every file with its SHA-256, in one transaction. */
static int packet_log(struct packet *p)
{
    struct crier_db *db = p->db;
    int r = db_begin(db);
    for (size_t k = 0; r == 0 && k < p->file_count; k++) {
        const struct packet_file *f = &p->files[k];
        const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
        char *detail = xasprintf("packet %s: %s", base, f->what);
        const char *params[] = {DB_NUM(p->c->id), detail, f->sha256};
        r = db_exec(db,
                    "INSERT INTO crier.dispatch_log (campaign_id, event, to_state, actor, detail,"
                    " content_sha256) VALUES ($1, 'regulator', 'packet', session_user, $2, $3)",
                    3, params);
        free(detail);
    }
    r = db_end(db, r);
    if (r < 0) {
        error_set(p->err, p->err_size, r,
                  "logging the packet: %s (the files are written, not logged)", db->error);
        db_rollback(db);
    }
    return r;
}

/* packet_open - the campaign, its templates and meta, the output folder, the letter
 * layout (no envelope windows: the addresses at the top) and today's date. */
static int packet_open(struct packet *p, const struct crier_config *config, const char *name)
{
    int r = campaign_get(p->db, name, false, &p->c);
    if (r < 0)
        return error_set(p->err, p->err_size, r, "no campaign named '%s'", name);
    r = render_campaign_load(p->db, config, p->c->id, stderr, &p->render);
    if (r < 0) {
        error_set(p->err, p->err_size, -EINVAL, "the campaign's templates do not load");
        return r;
    }
    if (mkdir(p->out_dir, 0755) < 0 && errno != EEXIST)
        return error_set(p->err, p->err_size, -EIO, "%s: %s", p->out_dir, strerror(errno));
    p->meta = p->render->meta;
    letter_layout_default(&p->layout);
    p->layout.windows = false;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(p->today, sizeof(p->today), "%Y-%m-%d", &tm);
    return 0;
}

int regulators_packet(struct crier_db *db, const struct crier_config *config,
                      const struct report_options *options, const char *out_dir, FILE *out,
                      char *err, size_t err_size)
{
    json_t *model = NULL;
    int r = report_model(db, options, &model, err, err_size);
    if (r < 0)
        return r;
    struct packet *p = xcalloc(1, sizeof(*p));
    *p = (struct packet){
        .db = db, .model = model, .out_dir = out_dir, .err = err, .err_size = err_size};
    if ((r = packet_open(p, config, options->campaign)) == 0 && (r = packet_notices(p)) == 0 &&
        (r = packet_hhs(p)) == 0 && (r = packet_log(p)) == 0) {
        for (size_t k = 0; k < p->file_count; k++)
            fprintf(out, "%s  %s  (%s)\n", p->files[k].sha256, p->files[k].path, p->files[k].what);
        r = (int)p->file_count;
    }
    for (size_t k = 0; k < p->file_count; k++) {
        free(p->files[k].path);
        free(p->files[k].what);
    }
    render_campaign_free(p->render);
    campaign_free(p->c);
    free(p);
    json_decref(model);
    return r;
}

static bool one_line(const char *s)
{
    return s && s[0] != '\0' && strchr(s, '\n') == NULL && strchr(s, '\r') == NULL;
}

/* A filing as a log row ($1 campaign name, $2 the detail); no row: no such campaign. */
static const char filed_sql[] =
    "INSERT INTO crier.dispatch_log (campaign_id, event, to_state, actor, detail)"
    " SELECT id, 'regulator', 'filed', session_user, $2 FROM crier.campaign"
    " WHERE name = $1 RETURNING id";

int regulators_mark_filed(struct crier_db *db, const struct regulators_filing *filing, FILE *out,
                          char *err, size_t err_size)
{
    static const char *const ways[] = {"portal", "mail", "email", "fax", "other"};
    bool way = false;
    for (size_t i = 0; i < ARRAY_SIZE(ways) && filing->how; i++)
        way = way || strcmp(filing->how, ways[i]) == 0;
    if (!way)
        return error_set(err, err_size, -EINVAL,
                         "--how must be one of: portal, mail, email, fax, other");
    if (!one_line(filing->jurisdiction) || !one_line(filing->regulator) ||
        !one_line(filing->reference))
        return error_set(err, err_size, -EINVAL,
                         "--jurisdiction, --regulator and --reference are required, one line each");
    if (!date_valid_past(filing->date))
        return error_set(err, err_size, -EINVAL,
                         "--date must be the day it was filed, YYYY-MM-DD, not in the future");
    char *detail = xasprintf("filed %s %s on %s via %s, reference %s", filing->jurisdiction,
                             filing->regulator, filing->date, filing->how, filing->reference);
    const char *params[] = {filing->campaign, detail};
    int r = db_exists(db, filed_sql, 2, params);
    if (r < 0) {
        free(detail);
        return error_set(err, err_size, r, "%s", db->error);
    }
    if (r == 0) {
        free(detail);
        return error_set(err, err_size, -ENOENT, "no campaign named '%s'", filing->campaign);
    }
    fprintf(out, "%s: %s (logged)\n", filing->campaign, detail);
    free(detail);
    return 0;
}
