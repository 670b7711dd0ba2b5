/*
 * progress.c - the campaign page's rate, ETA and per-day chart, and the campaigns page's
 * running campaigns (rate, ETA, notices by state and channel), drawn from what `crier
 * status NAME --json` prints ("progress", status.c): the page computes nothing of its own.
 * The chart is a table with a <progress> bar per day, so it needs no script and no inline
 * style (the console's Content-Security-Policy allows neither), reads as a table to a
 * screen reader, and prints.
 */
#include "crier/crier.h"
#include "crier/html.h"
#include "pages.h"

#include <stdio.h>

static json_int_t day_count(const json_t *day, const char *key)
{
    return json_integer_value(json_object_get(day, key));
}

/* progress_line - the rate, what is left and the ETA, in a sentence (live.js writes the
 * same). */
static void progress_line(FILE *out, const json_t *p)
{
    const char *eta = json_string_value(json_object_get(p, "eta"));
    fprintf(out,
            "<p class=\"progress\">%.1f notices a minute (the last "
            "%" JSON_INTEGER_FORMAT " s); %" JSON_INTEGER_FORMAT " to go; ",
            json_real_value(json_object_get(p, "rate_per_minute")),
            json_integer_value(json_object_get(p, "rate_seconds")),
            json_integer_value(json_object_get(p, "remaining")));
    if (eta) {
        html_wrap(out, "done at about ", eta, " at this rate");
    } else {
        fputs("no ETA (nothing moved in that window, or the campaign is not running)", out);
    }
    fputs(".</p>\n", out);
}

void progress_chart(FILE *out, const json_t *status)
{
    const json_t *p = json_object_get(status, "progress");
    if (!json_is_object(p))
        return;
    fputs("<h2>Progress</h2>", out);
    progress_line(out, p);
    const json_t *days = json_object_get(p, "per_day");
    json_int_t most = 1;
    size_t i;
    const json_t *day;
    json_array_foreach(days, i, day)
    {
        json_int_t n = day_count(day, "sent") + day_count(day, "undeliverable");
        most = n > most ? n : most;
    }
    if (json_array_size(days) == 0)
        return;
    fputs("<table class=\"chart\"><caption>Notices finished per day (UTC)</caption>"
          "<tr><th scope=\"col\">day</th><th scope=\"col\">sent</th>"
          "<th scope=\"col\">undeliverable</th><th scope=\"col\">chart</th></tr>\n",
          out);
    json_array_foreach(days, i, day)
    {
        const char *name = json_string_value(json_object_get(day, "day"));
        json_int_t sent = day_count(day, "sent"), failed = day_count(day, "undeliverable");
        fputs("<tr><th scope=\"row\">", out);
        html_escape(out, name);
        fprintf(out,
                "</th><td>%" JSON_INTEGER_FORMAT "</td><td>%" JSON_INTEGER_FORMAT "</td>"
                "<td><progress max=\"%" JSON_INTEGER_FORMAT "\" value=\"%" JSON_INTEGER_FORMAT
                "\" aria-label=\"finished on ",
                sent, failed, most, sent + failed);
        html_escape(out, name);
        fprintf(out, "\">%" JSON_INTEGER_FORMAT "</progress></td></tr>\n", sent + failed);
    }
    fputs("</table>\n", out);
}

/* state_table - a campaign's notices by state (rows) and channel (columns after "all"), as
 * `crier status` prints them. */
static void state_table(FILE *out, const json_t *status)
{
    const json_t *by_state = json_object_get(status, "by_state");
    const json_t *by_channel = json_object_get(status, "by_channel");
    const char *key, *channel;
    const json_t *value, *counts;
    fputs("<table class=\"counts\"><caption>Notices by state and channel</caption><tr>"
          "<th scope=\"col\">state</th><th scope=\"col\">all</th>",
          out);
    json_object_foreach((json_t *)by_channel, channel, counts)
        html_wrap(out, "<th scope=\"col\">", channel, "</th>");
    fputs("</tr>\n", out);
    json_object_foreach((json_t *)by_state, key, value)
    {
        html_wrap(out, "<tr><th scope=\"row\">", key, "</th>");
        fprintf(out, "<td>%" JSON_INTEGER_FORMAT "</td>", json_integer_value(value));
        json_object_foreach((json_t *)by_channel, channel, counts)
            fprintf(out, "<td>%" JSON_INTEGER_FORMAT "</td>",
                    json_integer_value(json_object_get(counts, key)));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

void progress_campaigns(FILE *out, const json_t *statuses)
{
    if (json_array_size(statuses) == 0)
        return;
    fputs("<h2>In progress</h2>\n", out);
    size_t i;
    const json_t *status;
    json_array_foreach(statuses, i, status)
    {
        html_wrap(out, "<section class=\"running\"><h3>",
                  json_string_value(json_object_get(status, "campaign")), " (");
        html_wrap(out, "", json_string_value(json_object_get(status, "state")), ")</h3>\n");
        const json_t *p = json_object_get(status, "progress");
        if (json_is_object(p))
            progress_line(out, p);
        state_table(out, status);
        fputs("</section>\n", out);
    }
}
