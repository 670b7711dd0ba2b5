/*
 * pages.h - what the console's route files share (engine/web/ only, not a module header):
 * a route's view (the core's JSON, a message or an error), capturing what a core function
 * prints, and the form helpers. pages.c holds the route table and the page frame;
 * person.c the person search and the notice as sent; audit_pages.c the unreached list and
 * the regulator packet; progress.c the campaign's rate, ETA and per-day chart; scrape.c
 * GET /metrics.
 */
#ifndef CRIER_WEB_PAGES_H
#define CRIER_WEB_PAGES_H

#include <jansson.h>
#include <stdio.h>

#include "crier/web.h"

/* What a route produced: data in the CLI's --json shape, or a message, or an error. */
struct view {
    const char *title;
    json_t *data;
    char *message; /* what the core printed for an action */
    int error;     /* < 0: failed, err says why */
    char err[2048];
    void (*forms)(FILE *out, const struct web_request *request, const json_t *data);
    /* after: drawn after data (html_json), e.g. links under a table; may be NULL */
    void (*after)(FILE *out, const struct web_request *request, const json_t *data);
    /* summary: drawn before data, from it alone (links, the progress chart); may be NULL */
    void (*summary)(FILE *out, const json_t *data);
    /* live_api: the API route (this origin's /api/v1/...) whose JSON live.js draws again,
     * every few seconds, into the region of summary and data; "" for a static page.
     * live_kind says how: "campaign" (status) or "campaigns" (campaign list). */
    char live_api[256];
    const char *live_kind;
    /* running: the campaigns page's running and paused campaigns, each as `crier status
     * NAME --json` prints it (progress included); drawn after summary. Pages only. */
    json_t *running;
};

typedef void (*route_fn)(struct web_request *request, struct view *view);

/* page_field - a form or query field, NULL when absent or empty. */
const char *page_field(const struct web_request *request, const char *name);

/* What a core function prints, captured in memory (its output is small: one person, one
 * campaign's counts); long lists are streamed instead (web_stream). */
struct capture {
    char *text;
    size_t length;
    FILE *out;
};
FILE *capture_start(struct capture *c);
/* capture_json - the printed JSON, parsed (NULL with view->error set when it is not). */
json_t *capture_json(struct capture *c, struct view *view);
char *capture_text(struct capture *c);

/* view_fail - the view's error: error (< 0) and why, a request the page cannot act on
 * ("which campaign? (name=...)"). */
void view_fail(struct view *view, int error, const char *why);

/* db_failed - the view's error: what (for -ENOENT) or the session's database error. */
void db_failed(struct view *view, const struct web_request *request, int r, const char *what);

void csrf_input(FILE *out, const struct web_request *request);
void page_input(FILE *out, const char *label, const char *name, const char *type, const char *value,
                bool required);

/* page_head, page_foot - a page's frame (head, navigation, title; the end), for pages that
 * are streamed. */
void page_head(FILE *out, const struct web_request *request, const char *title);
void page_foot(FILE *out);

/* page_view_reply - the view as the reply (JSON for the API, a page otherwise); frees its
 * data and message. */
void page_view_reply(struct web_request *request, struct view *view, struct web_reply *reply);
/* page_error - an error reply (JSON for the API, a page otherwise) for view's error. */
void page_error(struct web_request *request, struct view *view, struct web_reply *reply);

/* ---- person.c ------------------------------------------------------------------------ */
void route_find(struct web_request *request, struct view *view);
void route_person(struct web_request *request, struct view *view);
/* person_content - GET /person/content: the notice as sent at one log row. */
void person_content(struct web_request *request, struct web_reply *reply);

/* ---- audit_pages.c --------------------------------------------------------------------- */
/* audit_export, audit_unreached_list - streamed downloads (and the unreached page). */
void audit_export_stream(struct web_request *request, struct web_reply *reply);
void audit_unreached_stream(struct web_request *request, struct web_reply *reply);
void route_regulators(struct web_request *request, struct view *view);
void route_regulators_build(struct web_request *request, struct view *view);
void regulators_file(struct web_request *request, struct web_reply *reply);

/* ---- progress.c ------------------------------------------------------------------------ */
/* progress_chart - the campaign's per-day chart and its rate and ETA, from status --json's
 * "progress", as a table of bars drawn by the stylesheet (no inline style, no script). */
void progress_chart(FILE *out, const json_t *status);
/* progress_campaigns - for the campaigns page: each of statuses (status --json objects)
 * with its rate and ETA and a table of its notices by state and channel. */
void progress_campaigns(FILE *out, const json_t *statuses);

/* ---- scrape.c -------------------------------------------------------------------------- */
/* scrape_answer - GET /metrics: the running campaigns' gauges (Prometheus text). */
void scrape_answer(struct web_request *request, struct web_reply *reply);

#endif
