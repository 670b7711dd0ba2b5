/*
 * pages.c - the console's routes: each calls the core function the CLI calls (campaign
 * list and lifecycle, status, holds, seal verify/head/export, audit show, audit report,
 * print batches), on the session's own connection, and shows what it returns. The JSON API
 * (/api/v1/...) answers the same routes with the core's JSON, which is the CLI's --json
 * shape; the pages render that same JSON through html_json(). So the console adds no
 * second source of truth and no SQL of its own.
 *
 * Forms are shown by role (an operator sees no hold form), but that is a courtesy: the
 * database decides, and a form posted by hand by a role that may not is refused there
 * (403 with PostgreSQL's "permission denied").
 */
#include "crier/audit.h"
#include "crier/batch.h"
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/hold.h"
#include "crier/html.h"
#include "crier/log.h"
#include "crier/report.h"
#include "crier/seal.h"
#include "crier/status.h"
#include "crier/web.h"
#include "pages.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *page_field(const struct web_request *request, const char *name)
{
    const char *value = json_string_value(json_object_get(request->form, name));
    return str_empty(value) ? NULL : value;
}

/* ---- capturing what the core prints ------------------------------------------------ */

FILE *capture_start(struct capture *c)
{
    *c = (struct capture){0};
    c->out = open_memstream(&c->text, &c->length);
    if (c->out == NULL)
        abort();
    return c->out;
}

/* capture_json - the printed JSON, parsed (NULL with view->error set when it is not). */
json_t *capture_json(struct capture *c, struct view *view)
{
    fclose(c->out);
    json_error_t error;
    json_t *value = json_loadb(c->text, c->length, 0, &error);
    free(c->text);
    if (value == NULL && view->error == 0) {
        view->error = -EIO;
        snprintf(view->err, sizeof(view->err), "the core printed no JSON: %s", error.text);
    }
    return value;
}

char *capture_text(struct capture *c)
{
    fclose(c->out);
    return c->text;
}

/* acted - an action's end: what the core printed is the message, its error the view's. */
static void acted(struct view *view, struct capture *c, int r)
{
    view->message = capture_text(c);
    if (r < 0)
        view->error = r;
}

void view_fail(struct view *view, int error, const char *why)
{
    view->error = error;
    snprintf(view->err, sizeof(view->err), "%s", why);
}

void db_failed(struct view *view, const struct web_request *request, int r, const char *what)
{
    view->error = r;
    if (view->err[0] == '\0')
        snprintf(view->err, sizeof(view->err), "%s",
                 r == -ENOENT ? what : request->session->db->error);
}

/* ---- forms ---------------------------------------------------------------------------- */

void csrf_input(FILE *out, const struct web_request *request)
{
    fprintf(out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", request->session->csrf);
}

void page_input(FILE *out, const char *label, const char *name, const char *type, const char *value,
                bool required)
{
    fputs("<label>", out);
    html_escape(out, label);
    fprintf(out, " <input type=\"%s\" name=\"%s\"%s value=\"", type, name,
            required ? " required" : "");
    html_escape(out, value);
    fputs("\"></label>\n", out);
}

/* links - a link to each row's own page: href_prefix and the row's key, URL-encoded. */
static void links(FILE *out, const json_t *rows, const char *key, const char *href_prefix,
                  const char *label)
{
    size_t i;
    const json_t *row;
    if (!json_is_array(rows) || json_array_size(rows) == 0)
        return;
    fputs("<ul class=\"links\">", out);
    json_array_foreach(rows, i, row)
    {
        const json_t *value = json_object_get(row, key);
        char *text = json_is_string(value) ? xstrdup(json_string_value(value))
                     : json_is_integer(value)
                         ? xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(value))
                         : NULL;
        if (text == NULL)
            continue;
        fprintf(out, "<li><a href=\"%s", href_prefix);
        html_url(out, text);
        fprintf(out, "\">%s ", label);
        html_escape(out, text);
        fputs("</a></li>", out);
        free(text);
    }
    fputs("</ul>\n", out);
}

static void campaigns_links(FILE *out, const json_t *data)
{
    links(out, data, "name", "/campaign?name=", "campaign");
}

static void campaign_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    if (!request->session->operator_role)
        return;
    static const char *const actions[] = {"pause", "resume", "cancel"};
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        fprintf(out, "<form method=\"post\" action=\"/campaign/%s\" class=\"inline\">", actions[i]);
        csrf_input(out, request);
        fputs("<input type=\"hidden\" name=\"name\" value=\"", out);
        html_escape(out, page_field(request, "name"));
        fprintf(out, "\"><button type=\"submit\">%s</button></form>\n", actions[i]);
    }
}

static void hold_place_form(FILE *out, const struct web_request *request)
{
    fputs("<h2>Place a hold</h2><form method=\"post\" action=\"/hold/place\" "
          "enctype=\"multipart/form-data\">",
          out);
    csrf_input(out, request);
    page_input(out, "Campaign", "campaign", "text", page_field(request, "campaign"), true);
    page_input(out, "Region (optional)", "region", "text", NULL, false);
    page_input(out, "Recipient ref (optional)", "recipient", "text", NULL, false);
    page_input(out, "Agency", "authority", "text", NULL, true);
    page_input(out, "Official", "official", "text", NULL, true);
    page_input(out, "Case reference", "case", "text", NULL, true);
    fputs("<label>Form <select name=\"form\"><option>written</option><option>oral</option>"
          "</select></label>\n",
          out);
    page_input(out, "Reason", "reason", "text", NULL, true);
    page_input(out, "Review by (YYYY-MM-DD)", "review_by", "date", NULL, false);
    page_input(out, "Your name", "as", "text", NULL, false);
    fputs("<label>The agency's document <input type=\"file\" name=\"document\"></label>\n"
          "<button type=\"submit\">Place the hold</button></form>\n",
          out);
}

static void holds_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    fputs("<form method=\"get\" action=\"/holds\">", out);
    page_input(out, "Campaign", "campaign", "text", page_field(request, "campaign"), false);
    fputs("<button type=\"submit\">Show</button></form>\n", out);
    if (request->session->legal_role)
        hold_place_form(out, request);
    fputs("<h2>Holds</h2>", out);
    links(out, data, "id", "/hold?id=", "hold");
}

static void hold_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    if (!request->session->legal_role)
        return;
    const char *id = page_field(request, "id");
    fputs("<h2>Lift</h2><form method=\"post\" action=\"/hold/lift\" "
          "enctype=\"multipart/form-data\">",
          out);
    csrf_input(out, request);
    page_input(out, "Hold", "id", "hidden", id, true);
    page_input(out, "Evidence (what the agency said, and when)", "evidence", "text", NULL, true);
    page_input(out, "Your name", "as", "text", NULL, false);
    fputs("<label>Its letter <input type=\"file\" name=\"document\"></label>"
          "<button type=\"submit\">Lift the hold</button></form>\n"
          "<h2>Confirm in writing (oral holds)</h2><form method=\"post\" action=\"/hold/confirm\" "
          "enctype=\"multipart/form-data\">",
          out);
    csrf_input(out, request);
    page_input(out, "Hold", "id", "hidden", id, true);
    page_input(out, "Your name", "as", "text", NULL, false);
    fputs("<label>The written statement <input type=\"file\" name=\"document\" required></label>"
          "<button type=\"submit\">Record the confirmation</button></form>\n",
          out);
}

static void audit_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    const char *campaign = page_field(request, "campaign");
    fputs("<form method=\"get\" action=\"/audit\">", out);
    page_input(out, "Campaign", "campaign", "text", campaign, false);
    fputs("<button type=\"submit\">Verify</button></form>\n", out);
    if (campaign) {
        char *name = html_escaped(campaign);
        char *url = NULL;
        size_t length = 0;
        FILE *u = open_memstream(&url, &length);
        html_url(u, campaign);
        fclose(u);
        fprintf(out,
                "<p><a href=\"/audit/export?campaign=%s\" download>Download the export of %s "
                "(JSON lines)</a> &#183; <a href=\"/audit/report?campaign=%s\">The report</a> "
                "&#183; <a href=\"/audit/report?campaign=%s&amp;format=html\" download>The "
                "report as an HTML file</a></p>\n<p><a href=\"/audit/unreached?campaign=%s\">"
                "Everyone not reached</a> (<a href=\"/audit/unreached?campaign=%s&amp;"
                "format=csv\" download>CSV</a>) &#183; <a href=\"/audit/regulators?"
                "campaign=%s\">The regulator packet</a></p>\n",
                url, name, url, url, url, url, url);
        free(url);
        free(name);
    }
}

static void batches_forms(FILE *out, const struct web_request *request, const json_t *data)
{
    fputs("<form method=\"get\" action=\"/batches\">", out);
    page_input(out, "Campaign", "campaign", "text", page_field(request, "campaign"), true);
    fputs("<button type=\"submit\">Show</button></form>\n", out);
    if (!request->session->operator_role)
        return;
    fputs("<h2>Mark a batch mailed</h2><form method=\"post\" action=\"/batch/mark-mailed\">", out);
    csrf_input(out, request);
    page_input(out, "Batch", "batch", "text", NULL, true);
    page_input(out, "Accepted on (YYYY-MM-DD)", "date", "date", NULL, true);
    page_input(out, "Evidence (PS Form 3602 number, receipt)", "evidence", "text", NULL, false);
    fputs("<button type=\"submit\">Mark mailed</button></form>\n", out);
    fputs("<h2>Void a spoiled batch</h2><form method=\"post\" action=\"/batch/void\">", out);
    csrf_input(out, request);
    page_input(out, "Batch", "batch", "text", NULL, true);
    page_input(out, "Reason", "reason", "text", NULL, true);
    fputs("<button type=\"submit\">Void (its letters are printed again)</button></form>\n", out);
}

/* ---- the routes ----------------------------------------------------------------------- */

/* live_api - the view's live_api: prefix and value, URL-encoded. */
static void live_api(struct view *view, const char *prefix, const char *value)
{
    FILE *out = fmemopen(view->live_api, sizeof(view->live_api), "w");
    if (out == NULL)
        abort();
    fputs(prefix, out);
    html_url(out, value);
    if (fclose(out) != 0 || strlen(view->live_api) >= sizeof(view->live_api) - 1)
        view->live_api[0] = '\0'; /* too long to be a campaign's: a static page */
}

/* running_read - the campaigns page's running and paused campaigns, each as status --json
 * prints it (what each one's page costs: the notice and progress tallies, a few dozen
 * rows each). The API's list stays campaign list --json; live.js asks
 * /api/v1/campaign for each of these. */
static void running_read(struct web_request *request, struct view *view)
{
    size_t i;
    const json_t *row;
    json_array_foreach(view->data, i, row)
    {
        const char *state = json_string_value(json_object_get(row, "state"));
        const char *name = json_string_value(json_object_get(row, "name"));
        if (name == NULL || state == NULL ||
            (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0))
            continue;
        struct capture c;
        struct view ignored = {.title = ""};
        int r = status_print(request->session->db, name, true, capture_start(&c));
        json_t *status = capture_json(&c, &ignored);
        if (r < 0 || status == NULL) {
            json_decref(status);
            continue; /* the list shows it; its own page says what failed */
        }
        if (view->running == NULL)
            view->running = json_array();
        json_array_append_new(view->running, status);
    }
}

static void route_campaigns(struct web_request *request, struct view *view)
{
    struct capture c;
    int r = campaign_list(request->session->db, true, capture_start(&c));
    view->title = "Campaigns";
    view->summary = campaigns_links;
    view->live_kind = "campaigns";
    snprintf(view->live_api, sizeof(view->live_api), "/api/v1/campaigns");
    if (r < 0)
        db_failed(view, request, r, "");
    view->data = capture_json(&c, view);
    if (!request->api && view->error == 0)
        running_read(request, view);
}

static void route_campaign(struct web_request *request, struct view *view)
{
    const char *name = page_field(request, "name");
    view->title = "Campaign";
    view->forms = campaign_forms;
    view->summary = progress_chart;
    if (name == NULL) {
        view_fail(view, -EINVAL, "which campaign? (name=...)");
        return;
    }
    live_api(view, "/api/v1/campaign?name=", name);
    view->live_kind = "campaign";
    struct capture c;
    int r = status_print(request->session->db, name, true, capture_start(&c));
    if (r < 0)
        db_failed(view, request, r, "no such campaign");
    view->data = capture_json(&c, view);
}

static void campaign_action(struct web_request *request, struct view *view,
                            enum campaign_action action, const char *done)
{
    const char *name = page_field(request, "name");
    view->title = "Campaign";
    if (name == NULL) {
        view_fail(view, -EINVAL, "which campaign? (name=...)");
        return;
    }
    long affected = 0;
    int r = campaign_transition(request->session->db, name, action, request->session->user, NULL,
                                NULL, &affected, view->err, sizeof(view->err));
    if (r < 0) {
        view->error = r;
        return;
    }
    view->message = action == CAMPAIGN_CANCEL
                        ? xasprintf("campaign %s %s: %ld notices not yet sent were cancelled", name,
                                    done, affected)
                        : xasprintf("campaign %s %s", name, done);
}

static void route_pause(struct web_request *request, struct view *view)
{
    campaign_action(request, view, CAMPAIGN_PAUSE, "paused");
}

static void route_resume(struct web_request *request, struct view *view)
{
    campaign_action(request, view, CAMPAIGN_RESUME, "resumed");
}

static void route_cancel(struct web_request *request, struct view *view)
{
    campaign_action(request, view, CAMPAIGN_CANCEL, "cancelled");
}

static void route_holds(struct web_request *request, struct view *view)
{
    struct capture c;
    view->title = "Holds";
    view->forms = holds_forms;
    int r = hold_list(request->session->db, page_field(request, "campaign"), false, true,
                      capture_start(&c), view->err, sizeof(view->err));
    if (r < 0)
        db_failed(view, request, r, "no such campaign");
    view->data = capture_json(&c, view);
}

static void route_hold(struct web_request *request, struct view *view)
{
    struct capture c;
    view->title = "Hold";
    view->forms = hold_forms;
    const char *id = page_field(request, "id");
    int r = hold_show(request->session->db, id ? id : "", true, NULL, capture_start(&c), view->err,
                      sizeof(view->err));
    if (r < 0)
        db_failed(view, request, r, "no such hold");
    view->data = capture_json(&c, view);
}

/* upload - the request's document, if any; false with the view's error when it is bad. */
static bool upload(const struct web_request *request, struct hold_document *document,
                   bool *ret_present, struct view *view)
{
    *ret_present = request->upload_name != NULL;
    if (!*ret_present)
        return true;
    int r = hold_document_from_memory(request->upload_name, request->upload, request->upload_size,
                                      document, view->err, sizeof(view->err));
    if (r < 0)
        view->error = r;
    return r == 0;
}

static void route_hold_place(struct web_request *request, struct view *view)
{
    view->title = "Place a hold";
    struct hold_place_options o = {
        .campaign = page_field(request, "campaign"),
        .region = page_field(request, "region"),
        .recipient = page_field(request, "recipient"),
        .authority = page_field(request, "authority"),
        .official = page_field(request, "official"),
        .case_ref = page_field(request, "case"),
        .form = page_field(request, "form"),
        .reason = page_field(request, "reason"),
        .review_by = page_field(request, "review_by"),
        .as_name = page_field(request, "as"),
    };
    long lease = request->config->queue.lease_seconds;
    o.drain_seconds = lease * 2 > 60 ? (double)lease * 2 : 60.0;
    const char *required[] = {o.campaign, o.authority, o.official, o.case_ref, o.form, o.reason};
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        if (required[i] == NULL) {
            view_fail(view, -EINVAL,
                      "campaign, authority, official, case, form and reason are required");
            return;
        }
    }
    if (o.region && o.recipient) {
        view_fail(view, -EINVAL, "give a region or a recipient, not both");
        return;
    }
    int r = hold_options_check(&o, view->err, sizeof(view->err));
    struct hold_document document = {0};
    bool present = false;
    if (r < 0) {
        view->error = r;
        return;
    }
    if (!upload(request, &document, &present, view))
        return;
    o.document = present ? &document : NULL;
    struct capture c;
    r = hold_place(request->session->db, &o, capture_start(&c), NULL, view->err, sizeof(view->err));
    hold_document_clear(&document);
    acted(view, &c, r);
}

static void route_hold_lift(struct web_request *request, struct view *view)
{
    view->title = "Lift a hold";
    const char *id = page_field(request, "id"), *evidence = page_field(request, "evidence");
    if (id == NULL || evidence == NULL) {
        view_fail(view, -EINVAL, "the hold (id) and the evidence are required");
        return;
    }
    struct hold_document document = {0};
    bool present = false;
    if (!upload(request, &document, &present, view))
        return;
    struct capture c;
    int r =
        hold_lift(request->session->db, id, evidence, present ? &document : NULL,
                  page_field(request, "as"), capture_start(&c), NULL, view->err, sizeof(view->err));
    hold_document_clear(&document);
    acted(view, &c, r);
}

static void route_hold_confirm(struct web_request *request, struct view *view)
{
    view->title = "Confirm a hold";
    const char *id = page_field(request, "id");
    struct hold_document document = {0};
    bool present = false;
    if (!upload(request, &document, &present, view))
        return;
    if (id == NULL || !present) {
        view_fail(view, -EINVAL,
                  "the hold (id) and the agency's written statement (document) are required");
        hold_document_clear(&document);
        return;
    }
    struct capture c;
    int r = hold_confirm(request->session->db, id, &document, page_field(request, "as"),
                         capture_start(&c), NULL, view->err, sizeof(view->err));
    hold_document_clear(&document);
    acted(view, &c, r);
}

static void route_audit(struct web_request *request, struct view *view)
{
    view->title = "Audit";
    view->forms = audit_forms;
    const char *campaign = page_field(request, "campaign");
    struct capture c;
    int r = seal_verify(request->session->db, campaign, NULL, true, capture_start(&c));
    if (r < 0)
        db_failed(view, request, r, "no such campaign");
    json_t *verify = capture_json(&c, view);
    r = view->error ? view->error
                    : seal_head(request->session->db, campaign, true, capture_start(&c));
    json_t *head = NULL;
    if (!view->error) {
        if (r < 0)
            db_failed(view, request, r, "no such campaign");
        head = capture_json(&c, view);
    }
    if (verify && head)
        view->data = json_pack("{s:o, s:o}", "verify", verify, "head", head);
    else {
        json_decref(verify);
        json_decref(head);
    }
}

static void route_batches(struct web_request *request, struct view *view)
{
    view->title = "Print batches";
    view->forms = batches_forms;
    const char *campaign = page_field(request, "campaign");
    if (campaign == NULL)
        return;
    struct capture c;
    int r = batch_list(request->session->db, request->config, campaign, true, capture_start(&c),
                       view->err, sizeof(view->err));
    if (r < 0)
        db_failed(view, request, r, "no such campaign");
    view->data = capture_json(&c, view);
}

static void route_mark_mailed(struct web_request *request, struct view *view)
{
    view->title = "Mark a batch mailed";
    const char *batch = page_field(request, "batch"), *date = page_field(request, "date");
    if (batch == NULL || date == NULL) {
        view_fail(view, -EINVAL, "the batch and the date are required");
        return;
    }
    struct capture c;
    int r = batch_mark_mailed(request->session->db, request->config, batch, date,
                              page_field(request, "evidence"), capture_start(&c), NULL, view->err,
                              sizeof(view->err));
    acted(view, &c, r);
}

static void route_void(struct web_request *request, struct view *view)
{
    view->title = "Void a batch";
    const char *batch = page_field(request, "batch"), *reason = page_field(request, "reason");
    if (batch == NULL || reason == NULL) {
        view_fail(view, -EINVAL, "the batch and the reason are required");
        return;
    }
    struct capture c;
    int r = batch_void(request->session->db, request->config, batch, reason, capture_start(&c),
                       NULL, view->err, sizeof(view->err));
    acted(view, &c, r);
}

static const struct route {
    const char *path; /* under / for pages, under /api/v1/ for the API */
    bool post;
    route_fn run;
} routes[] = {
    {"campaigns", false, route_campaigns},
    {"campaign", false, route_campaign},
    {"campaign/pause", true, route_pause},
    {"campaign/resume", true, route_resume},
    {"campaign/cancel", true, route_cancel},
    {"holds", false, route_holds},
    {"hold", false, route_hold},
    {"hold/place", true, route_hold_place},
    {"hold/lift", true, route_hold_lift},
    {"hold/confirm", true, route_hold_confirm},
    {"audit", false, route_audit},
    {"person", false, route_person},
    {"find", false, route_find},
    {"audit/regulators", false, route_regulators},
    {"audit/regulators/build", true, route_regulators_build},
    {"batches", false, route_batches},
    {"batch/mark-mailed", true, route_mark_mailed},
    {"batch/void", true, route_void},
};

/* ---- replies ---------------------------------------------------------------------------- */

unsigned web_status(int error)
{
    switch (error) {
    case 0:
        return MHD_HTTP_OK;
    case -EACCES:
        return MHD_HTTP_FORBIDDEN;
    case -ENOENT:
        return MHD_HTTP_NOT_FOUND;
    case -EINVAL:
    case -EILSEQ:
        return MHD_HTTP_BAD_REQUEST;
    case -E2BIG:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case -EPERM:
    case -EEXIST:
    case -EALREADY:
    case -EAGAIN:
        return MHD_HTTP_CONFLICT;
    case -ETIMEDOUT:
        return MHD_HTTP_ACCEPTED; /* the hold is in effect; notices are still in flight */
    case -EHOSTUNREACH:
    case -ECONNRESET:
    case -EBUSY:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

static void reply_json(struct web_reply *reply, unsigned status, json_t *body)
{
    reply->status = status;
    reply->content_type = "application/json";
    reply->body = json_dumps(body, JSON_INDENT(2));
    reply->length = strlen(reply->body);
    json_decref(body);
}

static void api_reply(struct view *view, struct web_reply *reply)
{
    if (view->error < 0 && view->error != -ETIMEDOUT)
        reply_json(reply, web_status(view->error), json_pack("{s:s}", "error", view->err));
    else if (view->data)
        reply_json(reply, MHD_HTTP_OK, json_incref(view->data));
    else
        reply_json(reply, web_status(view->error),
                   json_pack("{s:b, s:s}", "ok", 1, "message", view->message ? view->message : ""));
}

static void nav(FILE *out, const struct web_request *request)
{
    fputs("<nav><a href=\"/campaigns\">Campaigns</a> <a href=\"/holds\">Holds</a> "
          "<a href=\"/audit\">Audit</a> <a href=\"/find\">Find a person</a> "
          "<a href=\"/batches\">Print batches</a>",
          out);
    if (request->session) {
        fputs("<span class=\"who\">", out);
        html_escape(out, request->session->user);
        fprintf(out, "%s%s%s</span>", request->session->operator_role ? " operator" : "",
                request->session->legal_role ? " legal" : "",
                request->session->auditor_role ? " auditor" : "");
        fputs("<form method=\"post\" action=\"/logout\" class=\"inline\">", out);
        csrf_input(out, request);
        fputs("<button type=\"submit\">Log out</button></form>", out);
    }
    fputs("</nav>\n", out);
}

void page_head(FILE *out, const struct web_request *request, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width\">"
          "<link rel=\"stylesheet\" href=\"/static/console.css\"><title>crier: ",
          out);
    html_escape(out, title);
    fputs("</title></head><body>\n", out);
    nav(out, request);
    fputs("<main><h1>", out);
    html_escape(out, title);
    fputs("</h1>\n", out);
}

void page_foot(FILE *out)
{
    fputs("</main></body></html>\n", out);
}

static FILE *page_start(struct web_reply *reply, const struct web_request *request,
                        const char *title)
{
    FILE *out = open_memstream(&reply->body, &reply->length);
    if (out == NULL)
        abort();
    reply->content_type = "text/html; charset=utf-8";
    page_head(out, request, title);
    return out;
}

static void page_end(FILE *out)
{
    page_foot(out);
    fclose(out);
}

/* live_region - the view's summary and data; on a live page, in the region live.js draws
 * again (id="live"), followed by the script, which the page does not need: without it the
 * region is what the server drew, as fresh as the last load. */
static void live_region(FILE *out, const struct view *view)
{
    bool live = view->live_api[0] && view->live_kind && view->data && view->error == 0;
    if (live) {
        fprintf(out, "<div id=\"live\" data-kind=\"%s\" data-api=\"", view->live_kind);
        html_escape(out, view->live_api);
        fputs("\">\n", out);
    }
    if (view->summary && view->data)
        view->summary(out, view->data);
    if (view->running)
        progress_campaigns(out, view->running);
    if (view->data)
        html_json(out, view->data);
    if (live)
        fputs("</div>\n<script src=\"/static/live.js\"></script>\n", out);
}

static void page_reply(const struct web_request *request, struct view *view,
                       struct web_reply *reply)
{
    reply->status = web_status(view->error);
    FILE *out = page_start(reply, request, view->title);
    if (view->error < 0) {
        fputs("<p class=\"error\" role=\"alert\">", out);
        html_escape(out, view->err);
        fputs("</p>\n", out);
    }
    if (view->message && view->message[0]) {
        fputs("<pre class=\"message\">", out);
        html_escape(out, view->message);
        fputs("</pre>\n", out);
    }
    if (view->forms && request->session)
        view->forms(out, request, view->data);
    live_region(out, view);
    if (view->after && request->session)
        view->after(out, request, view->data);
    page_end(out);
}

void page_view_reply(struct web_request *request, struct view *view, struct web_reply *reply)
{
    request->api ? api_reply(view, reply) : page_reply(request, view, reply);
    json_decref(view->data);
    view->data = NULL;
    json_decref(view->running);
    view->running = NULL;
    free(view->message);
    view->message = NULL;
}

void page_error(struct web_request *request, struct view *view, struct web_reply *reply)
{
    page_view_reply(request, view, reply);
}

/* ---- login, logout, downloads ------------------------------------------------------------- */

static void login_page(struct web_request *request, struct web_reply *reply, unsigned status,
                       const char *error)
{
    reply->status = status;
    FILE *out = page_start(reply, request, "Log in");
    if (error) {
        fputs("<p class=\"error\" role=\"alert\">", out);
        html_escape(out, error);
        fputs("</p>\n", out);
    }
    fputs("<form method=\"post\" action=\"/login\">"
          "<label>PostgreSQL user <input name=\"user\" autocomplete=\"username\" required>"
          "</label>\n<label>Password <input type=\"password\" name=\"password\" "
          "autocomplete=\"current-password\" required></label>\n"
          "<button type=\"submit\">Log in</button></form>\n",
          out);
    page_end(out);
}

static void login(struct web_request *request, struct web_reply *reply)
{
    const char *user = page_field(request, "user"), *password = page_field(request, "password");
    char err[1024] = "";
    long retry_after = 0;
    struct web_session *session = NULL;
    int r = user && password
                ? session_login(user, password, request->client, &session, &retry_after, err,
                                sizeof(err))
                : (snprintf(err, sizeof(err), "user and password are required"), -EACCES);
    /* the form's copy of the password is gone before anything else happens */
    if (password)
        json_object_del(request->form, "password");
    if (r < 0) {
        unsigned status = r == -EAGAIN                  ? MHD_HTTP_TOO_MANY_REQUESTS
                          : r == -EACCES || r == -EPERM ? MHD_HTTP_UNAUTHORIZED
                                                        : MHD_HTTP_SERVICE_UNAVAILABLE;
        if (request->api)
            reply_json(reply, status, json_pack("{s:s}", "error", err));
        else
            login_page(request, reply, status, err);
        return;
    }
    reply->cookie = xasprintf("crier_session=%s", session->id);
    request->session = session; /* released by the server after the reply */
    if (request->api) {
        reply_json(reply, MHD_HTTP_OK,
                   json_pack("{s:s, s:s, s:b, s:b, s:b}", "user", session->user, "csrf",
                             session->csrf, "operator", session->operator_role, "legal",
                             session->legal_role, "auditor", session->auditor_role));
        return;
    }
    reply->status = MHD_HTTP_SEE_OTHER;
    reply->location = xstrdup("/campaigns");
    reply->body = xstrdup("");
}

static void logout(struct web_request *request, struct web_reply *reply)
{
    session_logout(request->session);
    reply->cookie = xstrdup("crier_session=; Max-Age=0");
    if (request->api) {
        reply_json(reply, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
        return;
    }
    reply->status = MHD_HTTP_SEE_OTHER;
    reply->location = xstrdup("/login");
    reply->body = xstrdup("");
}

/* report - audit report: on the page its JSON; format=html the self-contained HTML file as
 * a download (never shown inline: its chart's style would need the CSP relaxed). */
static void report(struct web_request *request, struct web_reply *reply)
{
    struct view view = {.title = "Audit report", .forms = audit_forms};
    const char *format = page_field(request, "format");
    bool html = format && strcmp(format, "html") == 0;
    char path[] = "/tmp/crier-report-XXXXXX";
    int fd = html ? mkstemp(path) : -1;
    struct report_options o = {
        .campaign = page_field(request, "campaign"),
        .json = true,
        .html_path = fd >= 0 ? path : NULL,
    };
    report_options_configure(&o, request->config);
    struct capture c;
    int r =
        o.campaign
            ? report_run(request->session->db, &o, capture_start(&c), view.err, sizeof(view.err))
            : (capture_start(&c),
               snprintf(view.err, sizeof(view.err), "which campaign? (campaign=...)"), -EINVAL);
    view.data = capture_json(&c, &view);
    if (r < 0)
        view.error = r;
    if (html && r == 0) {
        char *text = NULL;
        size_t length = 0;
        FILE *f = fdopen(fd, "r");
        fd = -1;
        if (f && (text = xmalloc(WEB_BODY_MAX)) != NULL)
            length = fread(text, 1, WEB_BODY_MAX, f);
        if (f)
            fclose(f);
        char safe[128];
        file_safe_name(o.campaign, safe, sizeof(safe));
        reply->status = MHD_HTTP_OK;
        reply->content_type = "application/octet-stream";
        reply->disposition = xasprintf("attachment; filename=\"crier-report-%s.html\"", safe);
        reply->body = text;
        reply->length = length;
    } else {
        request->api ? api_reply(&view, reply) : page_reply(request, &view, reply);
    }
    if (fd >= 0)
        close(fd);
    if (html)
        unlink(path);
    json_decref(view.data);
}

void pages_answer(struct web_request *request, struct web_reply *reply)
{
    bool post = strcmp(request->method, "POST") == 0;
    const char *path = request->api ? request->path + strlen("/api/v1/") : request->path + 1;
    if (strcmp(path, "login") == 0) {
        if (post)
            login(request, reply);
        else if (request->session) {
            reply->status = MHD_HTTP_SEE_OTHER;
            reply->location = xstrdup("/campaigns");
            reply->body = xstrdup("");
        } else
            login_page(request, reply, MHD_HTTP_OK, NULL);
        return;
    }
    if (post && strcmp(path, "logout") == 0) {
        logout(request, reply);
        return;
    }
    static const struct {
        const char *path;
        void (*answer)(struct web_request *request, struct web_reply *reply);
    } downloads[] = {
        {"audit/export", audit_export_stream},
        {"audit/unreached", audit_unreached_stream},
        {"audit/regulators/file", regulators_file},
        {"person/content", person_content},
    };
    for (size_t i = 0; !post && i < ARRAY_SIZE(downloads); i++) {
        if (strcmp(path, downloads[i].path) == 0) {
            downloads[i].answer(request, reply);
            return;
        }
    }
    if (!post && strcmp(path, "audit/report") == 0) {
        report(request, reply);
        return;
    }
    if (!post && !request->api && strcmp(path, "metrics") == 0) {
        scrape_answer(request, reply);
        return;
    }
    if (!post && !request->api && path[0] == '\0') {
        reply->status = MHD_HTTP_SEE_OTHER;
        reply->location = xstrdup("/campaigns");
        reply->body = xstrdup("");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        if (routes[i].post != post)
            break;
        struct view view = {.title = ""};
        routes[i].run(request, &view);
        if (view.error < 0)
            log_notice("console: %s: %s %s: %s", request->session->user, request->method,
                       request->path, view.err);
        request->api ? api_reply(&view, reply) : page_reply(request, &view, reply);
        json_decref(view.data);
        json_decref(view.running);
        free(view.message);
        return;
    }
    struct view view = {.title = "Not found", .error = -ENOENT};
    snprintf(view.err, sizeof(view.err), "no such page (or not with %s)", request->method);
    request->api ? api_reply(&view, reply) : page_reply(request, &view, reply);
}

extern const char live_js[]; /* live_js.c, made from live.js by embed.py */

const char *pages_live_js(void)
{
    return live_js;
}

const char *pages_css(void)
{
    return "body{font-family:sans-serif;margin:0;color:#111;background:#fff}"
           "nav{background:#1d3557;padding:.5em 1em}nav a{color:#fff;margin-right:1em}"
           "nav .who{color:#ddd;margin:0 1em}main{padding:1em}"
           "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;"
           "padding:.2em .5em;text-align:left;vertical-align:top}"
           "tr.alert{background:#fde2e2;font-weight:bold}.error{color:#9b1c1c;font-weight:bold}"
           "dl{margin:.3em 0}dt{font-weight:bold}dd{margin:0 0 .3em 1.5em}"
           "form{margin:.5em 0}form.inline{display:inline}label{display:block;margin:.3em 0}"
           "pre.message{background:#eef;padding:.5em;white-space:pre-wrap}"
           "table.chart progress{width:20em}caption{text-align:left;font-weight:bold}"
           "section.running{margin:.5em 0 1em}table.counts td{text-align:right}"
           ".live-note{color:#444;font-size:.9em}\n";
}
