/*
 * fuzz_letter.c - libFuzzer target: a letter body in crier's Markdown subset, as
 * letter_render reads it (channels/letter.c): blocks, inline **bold**, escaping, and the
 * Pango markup parsed. Layout itself is not reached (fonts make it slow); the markup that
 * would be laid out is exactly what is checked here.
 *
 * Checked besides memory safety: valid UTF-8 always gives markup that Pango accepts (the
 * escaping works for any text), and the text never grows beyond the input.
 */
#include "crier/crier.h"
#include "crier/letter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    if (body == NULL)
        abort();
    memcpy(body, data, size);
    body[size] = '\0';
    size_t blocks = 0, text_bytes = 0;
    char err[512] = "";
    int r = letter_markup_parse(body, &blocks, &text_bytes, err, sizeof(err));
    size_t len = strlen(body);
    if (r == 0 && text_bytes > len)
        abort();
    if (r < 0 && err[0] == '\0')
        abort();
    if (r < 0 && utf8_valid(body, len))
        abort(); /* valid text must always make valid markup */
    free(body);
    return 0;
}
