/*
 * person.c - the console's person pages: the search (`crier audit find`: by ref, email,
 * fax, name or ZIP, in one campaign or all), one person's whole history with the content
 * proof (`crier audit show`), and the notice as sent at one log row: re-rendered by
 * audit_show itself into a private temporary directory (its --out), then shown as text
 * (an email: its headers and decoded text part, HTML-escaped, never rendered as HTML) or
 * sent as a PDF attachment (the fax as transmitted, the letter as printed).
 *
 * SECURITY: a message body is list data and the organisation's templates: it is escaped
 * like every other value, and its HTML alternative is never shown. PDFs go out as
 * attachments with nosniff (server.c), so no browser runs them as a page. The temporary
 * directory is mode 0700 and removed before the reply is sent.
 */
#include "crier/audit.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/html.h"
#include "crier/mime.h"
#include "crier/unreached.h"
#include "pages.h"

#include <dirent.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The search keys, as the form and the API name them (audit find's options). */
static const struct find_by {
    const char *name, *label;
    enum find_key key;
} find_keys[] = {
    {"ref", "Ref", FIND_REF},
    {"email", "Email address", FIND_EMAIL},
    {"fax", "Fax number (E.164)", FIND_FAX},
    {"name", "Name (beginning of the name or last name)", FIND_NAME},
    {"postal", "ZIP or postal code", FIND_POSTAL},
};

static void search_form(FILE *out, const struct web_request *request)
{
    const char *by = page_field(request, "by");
    fputs("<h2>Find a person</h2><form method=\"get\" action=\"/find\">", out);
    page_input(out, "Campaign (empty: every campaign)", "campaign", "text",
               page_field(request, "campaign"), false);
    fputs("<label>By <select name=\"by\">", out);
    for (size_t i = 0; i < ARRAY_SIZE(find_keys); i++)
        fprintf(out, "<option value=\"%s\"%s>%s</option>", find_keys[i].name,
                by && strcmp(by, find_keys[i].name) == 0 ? " selected" : "", find_keys[i].label);
    fputs("</select></label>\n", out);
    page_input(out, "Value", "value", "text", page_field(request, "value"), true);
    fputs("<button type=\"submit\">Find</button></form>\n", out);
}

static void find_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    search_form(out, request);
    if (json_is_array(data))
        fprintf(out, "<h2>%zu found</h2>\n", json_array_size(data));
}

/* person_href - a page about one person (path: /person, /person/content), by campaign and
 * ref. */
static void person_href(FILE *out, const char *path, const char *campaign, const char *ref)
{
    fprintf(out, "%s?campaign=", path);
    html_url(out, campaign);
    fputs("&amp;ref=", out);
    html_url(out, ref);
}

static void find_after(FILE *out, const struct web_request *request, const json_t *data)
{
    size_t i;
    const json_t *row;
    if (!json_is_array(data) || json_array_size(data) == 0)
        return;
    fputs("<ul class=\"links\">", out);
    json_array_foreach(data, i, row)
    {
        const char *campaign = json_string_value(json_object_get(row, "campaign"));
        const char *ref = json_string_value(json_object_get(row, "ref"));
        if (campaign == NULL || ref == NULL)
            continue;
        fputs("<li><a href=\"", out);
        person_href(out, "/person", campaign, ref);
        fputs("\">", out);
        html_escape(out, campaign);
        fputs(" ", out);
        html_escape(out, ref);
        fputs(": ", out);
        html_escape(out, json_string_value(json_object_get(row, "name")));
        fputs("</a></li>", out);
    }
    fputs("</ul>\n", out);
}

void route_find(struct web_request *request, struct view *view)
{
    view->title = "Find a person";
    view->forms = find_forms;
    view->after = find_after;
    const char *by = page_field(request, "by"), *value = page_field(request, "value");
    if (by == NULL && value == NULL)
        return; /* the search form alone */
    const struct find_by *key = NULL;
    for (size_t i = 0; by && i < ARRAY_SIZE(find_keys); i++)
        if (strcmp(by, find_keys[i].name) == 0)
            key = &find_keys[i];
    if (key == NULL || value == NULL) {
        view_fail(view, -EINVAL, "give by= (ref, email, fax, name or postal) and value=");
        return;
    }
    struct find_query query = {
        .campaign = page_field(request, "campaign"),
        .key = key->key,
        .value = value,
        .json = true,
    };
    struct capture c;
    long found = 0;
    int r = audit_find(request->session->db, &query, capture_start(&c), &found, view->err,
                       sizeof(view->err));
    if (r < 0)
        db_failed(view, request, r, "no such campaign");
    view->data = capture_json(&c, view);
}

/* ---- one person ------------------------------------------------------------------------ */

static void person_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    fputs("<form method=\"get\" action=\"/person\">", out);
    page_input(out, "Campaign", "campaign", "text", page_field(request, "campaign"), true);
    page_input(out, "Ref", "ref", "text", page_field(request, "ref"), true);
    fputs("<button type=\"submit\">Show</button></form>\n", out);
    if (data == NULL)
        search_form(out, request);
}

/* content_links - for each log row whose content was checked, links to the notice as sent:
 * as text (what compose made: the message, the letter's body) and, for channels that print
 * or transmit a PDF, that PDF. */
static void person_after(FILE *out, const struct web_request *request, const json_t *data)
{
    const char *campaign = page_field(request, "campaign"), *ref = page_field(request, "ref");
    const json_t *history = json_object_get(data, "history");
    size_t i;
    const json_t *row;
    bool any = false;
    json_array_foreach(history, i, row)
    {
        const char *channel = json_string_value(json_object_get(row, "channel"));
        const json_t *content = json_object_get(row, "content");
        const struct crier_channel_ops *ops = channel ? channel_ops_find(channel) : NULL;
        if (content == NULL || ops == NULL)
            continue;
        if (!any)
            fputs("<h2>The notice as sent</h2><ul class=\"links\">", out);
        any = true;
        json_int_t id = json_integer_value(json_object_get(row, "id"));
        fputs("<li>", out);
        html_escape(out, json_string_value(json_object_get(row, "at")));
        fputs(" ", out);
        html_escape(out, channel);
        fputs(" (", out);
        html_escape(out, json_string_value(json_object_get(content, "verdict")));
        fputs("): <a href=\"", out);
        person_href(out, "/person/content", campaign, ref);
        fprintf(out, "&amp;log=%" JSON_INTEGER_FORMAT "\">as text</a>", id);
        if (ops->proof_print) {
            fputs(" &#183; <a href=\"", out);
            person_href(out, "/person/content", campaign, ref);
            fprintf(out, "&amp;log=%" JSON_INTEGER_FORMAT "&amp;format=pdf\" download>PDF</a>", id);
        }
        fputs("</li>", out);
    }
    if (any)
        fputs("</ul>\n", out);
}

void route_person(struct web_request *request, struct view *view)
{
    view->title = "Person";
    view->forms = person_forms;
    view->after = person_after;
    const char *campaign = page_field(request, "campaign"), *ref = page_field(request, "ref");
    if (campaign == NULL || ref == NULL)
        return; /* the forms alone */
    struct capture c;
    int r = audit_show(request->session->db, request->config, campaign, ref, true, NULL,
                       capture_start(&c), view->err, sizeof(view->err));
    if (r < 0)
        db_failed(view, request, r, "no such person in this campaign");
    view->data = capture_json(&c, view);
}

/* ---- the notice as sent ----------------------------------------------------------------- */

/* content_file - the file audit_show wrote for log row id ("ID-CHANNEL.EXT"), the PDF one
 * when pdf; NULL when it wrote none. */
static char *content_file(const char *dir, long long id, bool pdf)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%lld-", id);
    DIR *d = opendir(dir);
    char *found = NULL;
    struct dirent *e;
    while (d && found == NULL && (e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || dot == NULL)
            continue;
        if ((strcmp(dot, ".pdf") == 0) == pdf)
            found = xasprintf("%s/%s", dir, e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

static int read_whole(const char *path, char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    char *text = NULL;
    size_t length = 0;
    FILE *m = open_memstream(&text, &length);
    char buffer[65536];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), f)) > 0)
        fwrite(buffer, 1, n, m);
    int failed = ferror(f);
    fclose(f);
    fclose(m);
    if (failed) {
        free(text);
        return -EIO;
    }
    *ret = text;
    *ret_len = length;
    return 0;
}

/* message_text - a MIME message as headers and its text part, decoded: what the person
 * read, never its HTML alternative. NULL when bytes is not a MIME message (a letter's
 * Markdown is shown as it is). */
static char *message_text(const char *bytes, size_t len)
{
    GMimeMessage *message = mime_message_parse(bytes, len);
    if (message == NULL)
        return NULL;
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    static const char *const headers[] = {"From", "To", "Subject", "Date", "Message-ID"};
    GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(message));
    for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
        char *value = g_mime_header_list_get_header(list, headers[i])
                          ? g_mime_utils_header_decode_text(
                                NULL, g_mime_object_get_header(GMIME_OBJECT(message), headers[i]))
                          : NULL;
        if (value)
            fprintf(out, "%s: %s\n", headers[i], value);
        g_free(value);
    }
    GMimeTextPart *part = NULL;
    GMimeObject *body = g_mime_message_get_body(message);
    if (GMIME_IS_MULTIPART(body)) {
        GMimeMultipart *multi = GMIME_MULTIPART(body);
        for (int i = 0; part == NULL && i < g_mime_multipart_get_count(multi); i++) {
            GMimeObject *p = g_mime_multipart_get_part(multi, i);
            if (GMIME_IS_TEXT_PART(p) &&
                g_mime_content_type_is_type(g_mime_object_get_content_type(p), "text", "plain"))
                part = GMIME_TEXT_PART(p);
        }
    } else if (GMIME_IS_TEXT_PART(body)) {
        part = GMIME_TEXT_PART(body);
    }
    char *decoded = part ? g_mime_text_part_get_text(part) : NULL;
    fprintf(out, "\n%s", decoded ? decoded : "(no text part)\n");
    g_free(decoded);
    fclose(out);
    g_object_unref(message);
    return text;
}

/* content_reply - the file as the reply: a PDF attachment, or a page with the text. */
static void content_reply(struct web_request *request, struct web_reply *reply, const char *path,
                          const char *ref, long long id)
{
    char *bytes = NULL;
    size_t len = 0;
    struct view view = {.title = "The notice as sent"};
    int r = read_whole(path, &bytes, &len);
    if (r < 0) {
        view.error = r;
        snprintf(view.err, sizeof(view.err), "cannot read the re-rendered content");
        page_error(request, &view, reply);
        return;
    }
    const char *dot = strrchr(path, '.');
    if (dot && strcmp(dot, ".pdf") == 0) {
        char safe[128];
        file_safe_name(ref, safe, sizeof(safe));
        reply->status = MHD_HTTP_OK;
        reply->content_type = "application/pdf";
        reply->disposition = xasprintf("attachment; filename=\"crier-%s-%lld.pdf\"", safe, id);
        reply->body = bytes;
        reply->length = len;
        return;
    }
    char *text = dot && strcmp(dot, ".eml") == 0 ? message_text(bytes, len) : NULL;
    /* as text: the decoded message, else the bytes as they are (a letter's Markdown) */
    view.message = text ? text : xstrndup(bytes, len);
    free(bytes);
    if (request->api) {
        view.data = json_pack("{s:I, s:s}", "log", (json_int_t)id, "text", view.message);
        if (view.data == NULL) { /* not UTF-8: json_pack refuses it */
            view_fail(&view, -EILSEQ, "the content is not UTF-8 text");
        }
    }
    page_view_reply(request, &view, reply);
}

/* person_content - GET /person/content?campaign=C&ref=R&log=ID[&format=pdf]: audit_show
 * renders the person's notices again (and checks them) into a temporary directory; the
 * reply is the one of log row ID. */
void person_content(struct web_request *request, struct web_reply *reply)
{
    struct view view = {.title = "The notice as sent"};
    const char *campaign = page_field(request, "campaign"), *ref = page_field(request, "ref");
    const char *log = page_field(request, "log"), *format = page_field(request, "format");
    char *end = NULL;
    long long id = log ? strtoll(log, &end, 10) : 0;
    if (campaign == NULL || ref == NULL || log == NULL || *end != '\0' || id <= 0) {
        view_fail(&view, -EINVAL, "give campaign=, ref= and log= (a log row's id)");
        page_error(request, &view, reply);
        return;
    }
    char dir[] = "/tmp/crier-content-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        view_fail(&view, -EIO, "cannot make a temporary directory");
        page_error(request, &view, reply);
        return;
    }
    struct capture c;
    int r = audit_show(request->session->db, request->config, campaign, ref, true, dir,
                       capture_start(&c), view.err, sizeof(view.err));
    free(capture_text(&c));
    char *path = r < 0 ? NULL : content_file(dir, id, format && strcmp(format, "pdf") == 0);
    if (r < 0)
        db_failed(&view, request, r, "no such person in this campaign");
    else if (path == NULL) {
        view.error = -ENOENT;
        snprintf(view.err, sizeof(view.err),
                 "log row %lld of %s has no %scontent that can be rendered again", id, ref,
                 format && strcmp(format, "pdf") == 0 ? "PDF " : "");
    }
    if (path)
        content_reply(request, reply, path, ref, id);
    else
        page_error(request, &view, reply);
    free(path);
    web_dir_remove(dir);
}
