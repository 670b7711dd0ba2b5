/*
 * fuzz_rules.c - libFuzzer target: the jurisdiction rules table as rules_parse() reads it
 * (config/jurisdictions.yaml, docs/jurisdictions.md).
 *
 * Any bytes: a table, or FILE:LINE:COL errors, never a crash, a leak or a message without its
 * place; and a table that loads answers every question without crashing.
 */
#include "crier/rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *diag_text = NULL;
    size_t diag_len = 0;
    FILE *diag = open_memstream(&diag_text, &diag_len);
    if (diag == NULL)
        abort();
    struct rules_table *table = NULL;
    char err[1024] = "";
    int r = rules_parse((const char *)data, size, "fuzz.yaml", diag, &table, err, sizeof(err));
    fclose(diag);
    if (r == 0 && table == NULL)
        abort(); /* success must give a table */
    if (r < 0 && (diag_len == 0 || strncmp(diag_text, "fuzz.yaml:", 10) != 0 ||
                  strncmp(err, "fuzz.yaml:", 10) != 0))
        abort(); /* every error names its place */
    for (size_t i = 0; table && i < table->count; i++) {
        const struct rules_entry *e = &table->entries[i];
        for (size_t k = 0; k < e->regulator_count; k++) {
            rules_regulator_verdict(&e->regulators[k], 500);
            double end = 0;
            (void)rules_period_end(&e->regulators[k].deadline, 1.0e9, &end);
        }
        rules_threshold_verdict(&e->cra.threshold, 501);
    }
    rules_free(table);
    free(diag_text);
    return 0;
}
