/*
 * audit_pages.c - the console's audit lists and files: the sealed log's export (`crier
 * audit export`, seal_export) and everyone not reached (`crier audit unreached`), both
 * streamed as the core writes them (a campaign of millions of rows needs no more memory
 * than one); and the regulator packet (`crier regulators`), built into the session's own
 * directory and offered file by file.
 *
 * The unreached page is the same list as the download: the core writes JSON lines, and a
 * stdio cookie turns each line into one escaped table row as it passes, so the page is
 * streamed too and shows exactly what the CSV holds.
 */
#include "crier/crier.h"
#include "crier/html.h"
#include "crier/regulators.h"
#include "crier/report.h"
#include "crier/seal.h"
#include "crier/strbuf.h"
#include "crier/unreached.h"
#include "pages.h"

#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void campaign_free(void *data)
{
    free(data);
}

/* stream_new - a stream of the request's session over campaign (copied). */
static struct web_stream *stream_new(const struct web_request *request, const char *campaign,
                                     int (*run)(struct web_stream *, struct web_session *, FILE *,
                                                char *, size_t))
{
    struct web_stream *stream = xcalloc(1, sizeof(*stream));
    stream->run = run;
    memcpy(stream->session_id, request->session->id, sizeof(stream->session_id));
    stream->config = request->config;
    stream->api = request->api;
    stream->data = campaign ? xstrdup(campaign) : NULL;
    stream->free_data = campaign_free;
    return stream;
}

static void attachment(struct web_reply *reply, const char *campaign, const char *what,
                       const char *extension, const char *type)
{
    char safe[128];
    file_safe_name(campaign ? campaign : "all", safe, sizeof(safe));
    reply->status = MHD_HTTP_OK;
    reply->content_type = type;
    reply->disposition =
        xasprintf("attachment; filename=\"crier-%s-%s.%s\"", what, safe, extension);
}

/* ---- the export ----------------------------------------------------------------------- */

static int export_run(struct web_stream *stream, struct web_session *session, FILE *out, char *err,
                      size_t err_size)
{
    long rows = 0;
    int r = seal_export(session->db, stream->data, out, &rows);
    if (r < 0)
        snprintf(err, err_size, "%s", r == -ENOENT ? "no such campaign" : session->db->error);
    return r;
}

/* audit_export_stream - GET /audit/export[?campaign=N]: JSON lines that `crier audit
 * verify --file` checks offline. */
void audit_export_stream(struct web_request *request, struct web_reply *reply)
{
    const char *campaign = page_field(request, "campaign");
    reply->stream = stream_new(request, campaign, export_run);
    attachment(reply, campaign, "audit", "jsonl", "application/x-ndjson");
}

/* ---- everyone not reached ---------------------------------------------------------------- */

/* The page's columns, from the list's (unreached.c's JSON keys). */
static const char *const unreached_shown[] = {
    "ref", "name", "why", "reason", "state", "channel", "attempts", "last_at", "last_outcome"};

/* What turns the list's JSON lines into table rows as the core writes them. */
struct rows_cookie {
    FILE *out;
    struct web_session *session;
    const char *campaign;
    struct strbuf line;
    bool started;
    long rows;
};

static void rows_start(struct rows_cookie *c)
{
    struct web_request frame = {.session = c->session};
    page_head(c->out, &frame, "Everyone not reached");
    fputs("<p>Campaign ", c->out);
    html_escape(c->out, c->campaign);
    fputs(" (<a href=\"/audit/unreached?campaign=", c->out);
    html_url(c->out, c->campaign);
    fputs("&amp;format=csv\" download>the same as CSV</a>)</p>\n<table><tr>", c->out);
    for (size_t i = 0; i < ARRAY_SIZE(unreached_shown); i++)
        fprintf(c->out, "<th>%s</th>", unreached_shown[i]);
    fputs("</tr>\n", c->out);
    c->started = true;
}

static void row_write(struct rows_cookie *c, const char *text)
{
    json_t *row = json_loads(text, 0, NULL);
    if (!json_is_object(row)) {
        json_decref(row);
        return;
    }
    if (!c->started)
        rows_start(c);
    fputs("<tr>", c->out);
    for (size_t i = 0; i < ARRAY_SIZE(unreached_shown); i++) {
        const json_t *v = json_object_get(row, unreached_shown[i]);
        fputs("<td>", c->out);
        if (i == 0) {
            fputs("<a href=\"/person?campaign=", c->out);
            html_url(c->out, c->campaign);
            fputs("&amp;ref=", c->out);
            html_url(c->out, json_string_value(v));
            fputs("\">", c->out);
        }
        if (json_is_integer(v))
            fprintf(c->out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else
            html_escape(c->out, json_string_value(v));
        fputs(i == 0 ? "</a></td>" : "</td>", c->out);
    }
    fputs("</tr>\n", c->out);
    c->rows++;
    json_decref(row);
}

static ssize_t rows_cookie_write(void *cls, const char *buf, size_t size)
{
    struct rows_cookie *c = cls;
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != '\n') {
            strbuf_addc(&c->line, buf[i]);
            continue;
        }
        strbuf_addc(&c->line, '\0'); /* a blank line: data exists to reset */
        row_write(c, strbuf_str(&c->line));
        c->line.len = 0;
        c->line.data[0] = '\0';
    }
    return ferror(c->out) ? -1 : (ssize_t)size;
}

static int unreached_page_run(struct web_stream *stream, struct web_session *session, FILE *out,
                              char *err, size_t err_size)
{
    struct rows_cookie cookie = {.out = out, .session = session, .campaign = stream->data};
    FILE *rows = fopencookie(&cookie, "w", (cookie_io_functions_t){.write = rows_cookie_write});
    if (rows == NULL) {
        strbuf_free(&cookie.line);
        snprintf(err, err_size, "cannot stream the list");
        return -EIO;
    }
    long count = 0;
    int r = audit_unreached(session->db, stream->data, UNREACHED_JSON, rows, &count, err, err_size);
    fclose(rows);
    strbuf_free(&cookie.line);
    if (r < 0 && !cookie.started)
        return r; /* nothing written: the error is the reply */
    if (!cookie.started)
        rows_start(&cookie);
    fprintf(out, "</table>\n<p>%ld %s not reached.</p>\n", cookie.rows,
            cookie.rows == 1 ? "person" : "people");
    if (r < 0) {
        fputs("<p class=\"error\" role=\"alert\">", out);
        html_escape(out, err);
        fputs("</p>\n", out);
    }
    page_foot(out);
    return r;
}

static int unreached_run(struct web_stream *stream, struct web_session *session, FILE *out,
                         char *err, size_t err_size, enum unreached_format format)
{
    long rows = 0;
    return audit_unreached(session->db, stream->data, format, out, &rows, err, err_size);
}

static int unreached_csv_run(struct web_stream *stream, struct web_session *session, FILE *out,
                             char *err, size_t err_size)
{
    return unreached_run(stream, session, out, err, err_size, UNREACHED_CSV);
}

static int unreached_json_run(struct web_stream *stream, struct web_session *session, FILE *out,
                              char *err, size_t err_size)
{
    return unreached_run(stream, session, out, err, err_size, UNREACHED_JSON);
}

/* audit_unreached_stream - GET /audit/unreached?campaign=N[&format=csv|json]: the page, or
 * the list as `crier audit unreached --format csv|json` prints it (the API: JSON lines). */
void audit_unreached_stream(struct web_request *request, struct web_reply *reply)
{
    const char *campaign = page_field(request, "campaign");
    const char *format = page_field(request, "format");
    if (campaign == NULL) {
        struct view view = {.title = "Everyone not reached", .error = -EINVAL};
        snprintf(view.err, sizeof(view.err), "which campaign? (campaign=...)");
        page_error(request, &view, reply);
        return;
    }
    if (format && strcmp(format, "csv") == 0) {
        reply->stream = stream_new(request, campaign, unreached_csv_run);
        attachment(reply, campaign, "unreached", "csv", "text/csv; charset=utf-8");
    } else if (request->api || (format && strcmp(format, "json") == 0)) {
        reply->stream = stream_new(request, campaign, unreached_json_run);
        attachment(reply, campaign, "unreached", "jsonl", "application/x-ndjson");
    } else {
        reply->stream = stream_new(request, campaign, unreached_page_run);
        reply->status = MHD_HTTP_OK;
        reply->content_type = "text/html; charset=utf-8";
    }
}

/* ---- the regulator packet ------------------------------------------------------------------ */

static void packet_files(FILE *out, const struct web_request *request)
{
    const char *dir = request->session->packet_dir;
    if (dir == NULL)
        return;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    fputs("<h2>The packet built last in this session</h2><ul class=\"links\">", out);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            fputs("<li><a href=\"/audit/regulators/file?name=", out);
            html_url(out, names[i]->d_name);
            fputs("\" download>", out);
            html_escape(out, names[i]->d_name);
            fputs("</a></li>", out);
        }
        free(names[i]);
    }
    free(names);
    fputs("</ul>\n", out);
}

static void regulators_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    fputs("<p>The packet holds a letter (PDF) for each regulator notice the rules table says "
          "is due, the counts regulators' forms ask for (CSV) and, under HIPAA, the HHS "
          "breach portal's fields. Building it logs every file with its SHA-256.</p>"
          "<form method=\"post\" action=\"/audit/regulators/build\">",
          out);
    csrf_input(out, request);
    page_input(out, "Campaign", "campaign", "text", page_field(request, "campaign"), true);
    page_input(out, "Discovered on (YYYY-MM-DD; empty: the campaign's meta)", "discovered", "date",
               NULL, false);
    page_input(out, "Frameworks (e.g. HIPAA; empty: the campaign's meta)", "framework", "text",
               NULL, false);
    fputs("<button type=\"submit\">Build the packet</button></form>\n", out);
    packet_files(out, request);
}

void route_regulators(struct web_request *request, struct view *view)
{
    view->title = "The regulator packet";
    view->forms = regulators_forms;
}

/* route_regulators_build - POST /audit/regulators/build: regulators_packet into a new
 * directory of the session (the one before it is removed). */
void route_regulators_build(struct web_request *request, struct view *view)
{
    view->title = "The regulator packet";
    view->forms = regulators_forms;
    struct report_options o = {
        .campaign = page_field(request, "campaign"),
        .discovered = page_field(request, "discovered"),
        .frameworks = page_field(request, "framework"),
        .json = true,
    };
    report_options_configure(&o, request->config);
    if (o.campaign == NULL) {
        view_fail(view, -EINVAL, "which campaign? (campaign=...)");
        return;
    }
    char dir[] = "/tmp/crier-packet-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        view_fail(view, -EIO, "cannot make a directory for the packet");
        return;
    }
    struct capture c;
    int r = regulators_packet(request->session->db, request->config, &o, dir, capture_start(&c),
                              view->err, sizeof(view->err));
    char *listing = capture_text(&c);
    if (r < 0) {
        free(listing);
        web_dir_remove(dir);
        view->error = r;
        return;
    }
    struct web_session *session = request->session;
    if (session->packet_dir) {
        web_dir_remove(session->packet_dir);
        free(session->packet_dir);
    }
    session->packet_dir = xstrdup(dir);
    view->message = xasprintf("%d files, each logged with its SHA-256:\n%s", r, listing);
    free(listing);
}

/* regulators_file - GET /audit/regulators/file?name=F: one file of the session's packet, as
 * an attachment (a PDF letter, a CSV). Only a plain name in that directory is served. */
void regulators_file(struct web_request *request, struct web_reply *reply)
{
    const char *name = page_field(request, "name");
    const char *dir = request->session->packet_dir;
    struct view view = {.title = "The regulator packet", .error = -ENOENT};
    struct stat st;
    char *path = dir && name && name[0] != '.' && strchr(name, '/') == NULL
                     ? xasprintf("%s/%s", dir, name)
                     : NULL;
    FILE *f = path && stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
    free(path);
    if (f == NULL) {
        snprintf(view.err, sizeof(view.err),
                 "no such file in the packet built last in this session (build it first)");
        page_error(request, &view, reply);
        return;
    }
    reply->body = xmalloc((size_t)st.st_size + 1);
    reply->length = fread(reply->body, 1, (size_t)st.st_size, f);
    fclose(f);
    const char *dot = strrchr(name, '.');
    bool pdf = dot && strcmp(dot, ".pdf") == 0;
    reply->status = MHD_HTTP_OK;
    reply->content_type = pdf ? "application/pdf" : "text/csv; charset=utf-8";
    char safe[128];
    char *stem = dot ? xstrndup(name, (size_t)(dot - name)) : xstrdup(name);
    file_safe_name(stem, safe, sizeof(safe));
    free(stem);
    reply->disposition = xasprintf("attachment; filename=\"%s.%s\"", safe, pdf ? "pdf" : "csv");
}
