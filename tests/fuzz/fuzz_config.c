/*
 * fuzz_config.c - libFuzzer target: crier.yaml as config_parse() reads it.
 *
 * Any bytes: a config or a list of FILE:LINE:COL errors, never a crash, a leak or a
 * message without its place.
 */
#include "crier/config.h"

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
    struct crier_config *config = NULL;
    int r = config_parse((const char *)data, size, "fuzz.yaml", diag, &config);
    fclose(diag);
    if (r == 0 && config == NULL)
        abort(); /* success must give a config */
    if (r < 0 && (diag_len == 0 || strncmp(diag_text, "fuzz.yaml", 9) != 0))
        abort(); /* every error names the file */
    config_free(config);
    free(diag_text);
    return 0;
}
