/*
 * html.h - HTML output (engine/lib/html.c): the one escaping function every
 * value goes through, and a renderer of the core's JSON (the CLI's --json shapes) as
 * escaped HTML tables, so that no page formats a value by hand.
 */
#ifndef CRIER_HTML_H
#define CRIER_HTML_H

#include <jansson.h>
#include <stdio.h>

/*
 * html_escape - text as HTML character data or a quoted attribute value: & < > " ' are
 * written as entities; control characters other than tab, newline and carriage return,
 * and bytes that are not UTF-8, become U+FFFD. NULL writes nothing.
 */
void html_escape(FILE *out, const char *text);

/* html_wrap - html_escape(text) between open and close, markup written as it is: a cell,
 * a heading, a term ("<th>", key, "</th>"). */
void html_wrap(FILE *out, const char *open, const char *text, const char *close);

/* html_escaped - the same into a new string (the caller frees it). */
char *html_escaped(const char *text);

/* html_url - text as a URL query component: every byte but A-Z a-z 0-9 - _ . ~ written as
 * %XX, so the result is also safe inside a quoted attribute. */
void html_url(FILE *out, const char *text);

/*
 * html_json - a JSON value as HTML: an object as a definition list, an array of objects
 * as a table (columns from the first object's keys; a row whose "lapsed", "past_review" or
 * "broken" is true gets class="alert"), other arrays as lists, scalars as escaped text.
 */
void html_json(FILE *out, const json_t *value);

#endif
