/*
 * template.h - notice templates: a campaign's directory of Mustache-subset files.
 *
 * Supported: {{var}}, {{#flag}}...{{/flag}}, {{^flag}}...{{/flag}}, and {{! comments }}.
 * A set is loaded and checked once; rendering is pure and deterministic (the same
 * template and variables always give the same bytes).
 *
 * SECURITY: variable values are untrusted (they come from the affected-individual list).
 * They are inserted as text, never interpreted as template syntax; in HTML output they
 * are HTML-escaped. Header-safety (CR/LF) is the email channel's job, not this module's.
 */
#ifndef CRIER_TEMPLATE_H
#define CRIER_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct template;
struct template_set;

/*
 * template_set_load - parse every regular file in dir whose name has the form
 * BASE[.REGION].EXT (email.subject, email.txt, email.CA.txt, email.html, letter.md,
 * letter.MA.md ...). Syntax errors (unclosed section, mismatched {{/x}}, unterminated
 * tag) are written to diag as "FILE:LINE:COL: message", all of them; returns -EINVAL then,
 * -ENOENT if dir cannot be read.
 */
int template_set_load(const char *dir, FILE *diag, struct template_set **ret_set);
struct template_set *template_set_free(struct template_set *set);

/*
 * template_set_from_memory - the same from count named sources (a campaign's templates as
 * copied into the database when it started); dir names them in messages.
 */
int template_set_from_memory(const char *dir, char *const *names, char *const *sources,
                             const size_t *lengths, size_t count, FILE *diag,
                             struct template_set **ret_set);

/* The templates of a set in name order, each with its file name and exact bytes (so that
 * a campaign's can be copied into the database). */
size_t template_set_count(const struct template_set *set);
const struct template *template_set_item(const struct template_set *set, size_t i);
const char *template_name(const struct template *template);
const char *template_source(const struct template *template, size_t *ret_length);

/*
 * template_find - the template to use for name ("email.txt") and the recipient's region
 * ("CA", may be NULL): "email.CA.txt" when the set has it, else "email.txt"; NULL when
 * neither exists.
 */
const struct template *template_find(const struct template_set *set, const char *name,
                                     const char *region);

/* template_path - the file a template came from, for messages. */
const char *template_path(const struct template *template);

/*
 * template_render - render with vars (a JSON object: strings, numbers, booleans, null,
 * arrays and nested objects are allowed; {{a.b}} reads nested keys). html: values are
 * HTML-escaped (& < > " '). A variable not present in vars is an error (-ENOENT, "FILE:LINE:COL:
 * unknown variable 'x'" in err), never an empty string in someone's notice. A section's
 * flag is true when present and not false, null, "", 0 or an empty array; a missing flag
 * is an error too. *ret_text is NUL-terminated, *ret_len excludes the NUL.
 */
int template_render(const struct template *template, const json_t *vars, bool html, char **ret_text,
                    size_t *ret_len, char *err, size_t err_size);

/* template_parse_text - one template from memory, checked as template_set_load checks a file
 * (name is used in messages); for tests and fuzzing. 0, -EILSEQ or -EINVAL (errors on diag).
 * Release with template_destroy(). */
int template_parse_text(const char *name, const char *text, size_t length, FILE *diag,
                        struct template **ret_template);
void template_destroy(struct template *template);

/*
 * template_set_check - every variable and flag used by every template in the set is a key
 * of known (a JSON object whose values are ignored; nested objects allow dotted names).
 * Writes "FILE:LINE:COL: unknown variable 'x'" to diag for each; returns -ENOENT if any.
 * This is what `crier campaign start` runs, so a typo stops the campaign, not a letter.
 */
int template_set_check(const struct template_set *set, const json_t *known, FILE *diag);

/* template_set_names - the file names in the set, sorted, NULL-terminated (for proofs);
 * the array is the caller's to free (not the strings). */
const char **template_set_names(const struct template_set *set);

#endif
