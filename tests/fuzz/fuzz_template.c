/*
 * fuzz_template.c - libFuzzer target: one template parsed (engine/lib/template.c) and, when it
 * parses, rendered as text and as HTML with a fixed set of variables, some of whose values
 * look like template syntax or markup themselves.
 *
 * Checked besides memory safety: an error names the template; a render either succeeds
 * with exactly as many bytes as it says, or fails with a message.
 */
#include "crier/template.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *vars;

static const char vars_json[] =
    "{\"ref\": \"R-1\", \"name\": \"{{meta.organisation}} <b>&amp;</b> {{#x}}\","
    " \"email\": \"a@example.com\", \"fax\": null, \"city\": \"Montr\\u00e9al\","
    " \"delayed_for_law_enforcement\": false, \"count\": 3, \"ratio\": 0.5,"
    " \"empty\": \"\", \"list\": [1, 2], \"none\": [],"
    " \"meta\": {\"organisation\": \"Example Corp\", \"contact\": {\"phone\": \"+1 800\"}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (vars == NULL) {
        vars = json_loads(vars_json, 0, NULL);
        if (vars == NULL)
            abort();
    }
    char *diag_text = NULL;
    size_t diag_len = 0;
    FILE *diag = open_memstream(&diag_text, &diag_len);
    if (diag == NULL)
        abort();
    struct template *template = NULL;
    int r = template_parse_text("fuzz.txt", (const char *)data, size, diag, &template);
    fclose(diag);
    if (r < 0 && (diag_len == 0 || strncmp(diag_text, "fuzz.txt", 8) != 0))
        abort();
    free(diag_text);
    if (r < 0)
        return 0;
    for (int html = 0; html <= 1; html++) {
        char *text = NULL;
        size_t len = 0;
        char err[512] = "";
        int rr = template_render(template, vars, html, &text, &len, err, sizeof(err));
        if (rr == 0 && (text == NULL || text[len] != '\0'))
            abort();
        if (rr < 0 && err[0] == '\0')
            abort();
        free(text);
    }
    template_destroy(template);
    return 0;
}
