/*
 * html.c - HTML output: the one escaping function (the console's pages, `audit report`
 * --html), and the core's JSON rendered through it for the console.
 *
 * SECURITY: every value a page shows comes from a recipient list, a campaign's metadata,
 * a hold's text or the database, all of it someone else's input. Pages never write such a
 * value themselves: they hand it to html_escape() (or html_json(), which calls it), the
 * one place that decides what is safe. It escapes for both character data and quoted
 * attribute values, so a caller cannot pick the wrong variant.
 */
#include "crier/html.h"
#include "crier/crier.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* utf8_length - the length of the sequence a lead byte starts, 0 for a byte that cannot
 * start one. */
static size_t utf8_length(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

void html_escape(FILE *out, const char *text)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    /* the characters that would end a text or an attribute value, as entities */
    static const char *const entity[128] = {
        ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
    };
    for (const char *p = text; p && *p;) {
        unsigned char c = (unsigned char)*p;
        size_t n = utf8_length(c);
        if (n > 1) {
            if (strnlen(p, n) == n && utf8_valid(p, n))
                fwrite(p, 1, n, out);
            else {
                fputs(replacement, out);
                n = 1;
            }
            p += n;
            continue;
        }
        p++;
        if (c < ARRAY_SIZE(entity) && entity[c])
            fputs(entity[c], out);
        else if (n == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            fputs(replacement, out);
        else
            fputc(c, out);
    }
}

void html_wrap(FILE *out, const char *open, const char *text, const char *close)
{
    fputs(open, out);
    html_escape(out, text);
    fputs(close, out);
}

char *html_escaped(const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        abort();
    html_escape(out, text);
    fclose(out);
    return buf;
}

void html_url(FILE *out, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            fputc(*p, out);
        else
            fprintf(out, "%%%c%c", hex[*p >> 4], hex[*p & 0xf]);
    }
}

static void scalar(FILE *out, const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_STRING:
        html_escape(out, json_string_value(value));
        break;
    case JSON_INTEGER:
        fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_REAL:
        fprintf(out, "%g", json_real_value(value));
        break;
    case JSON_TRUE:
        fputs("yes", out);
        break;
    case JSON_FALSE:
        fputs("no", out);
        break;
    default:
        fputs("<span class=\"none\">&#8212;</span>", out);
        break;
    }
}

/* alert_row - a row the reader must not miss: a lapsed hold, one past review, a broken
 * chain. */
static bool alert_row(const json_t *row)
{
    static const char *const keys[] = {"lapsed", "past_review", "broken"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (json_is_true(json_object_get(row, keys[i])))
            return true;
    return false;
}

static void table(FILE *out, const json_t *rows)
{
    const json_t *first = json_array_get(rows, 0);
    const char *key;
    const json_t *value;
    size_t i;
    const json_t *row;
    fputs("<table><thead><tr>", out);
    json_object_foreach((json_t *)first, key, value) html_wrap(out, "<th>", key, "</th>");
    fputs("</tr></thead><tbody>\n", out);
    json_array_foreach(rows, i, row)
    {
        fputs(alert_row(row) ? "<tr class=\"alert\">" : "<tr>", out);
        json_object_foreach((json_t *)first, key, value)
        {
            fputs("<td>", out);
            html_json(out, json_object_get(row, key));
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

void html_json(FILE *out, const json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        const json_t *member;
        fputs("<dl>", out);
        json_object_foreach((json_t *)value, key, member)
        {
            html_wrap(out, "<dt>", key, "</dt><dd>");
            html_json(out, member);
            fputs("</dd>\n", out);
        }
        fputs("</dl>\n", out);
    } else if (json_is_array(value) && json_array_size(value) > 0 &&
               json_is_object(json_array_get(value, 0))) {
        table(out, value);
    } else if (json_is_array(value) && json_array_size(value) == 0) {
        fputs("<span class=\"none\">none</span>", out);
    } else if (json_is_array(value)) {
        size_t i;
        const json_t *item;
        fputs("<ul>", out);
        json_array_foreach(value, i, item)
        {
            fputs("<li>", out);
            html_json(out, item);
            fputs("</li>", out);
        }
        fputs("</ul>", out);
    } else {
        scalar(out, value);
    }
}
