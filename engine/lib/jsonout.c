/*
 * jsonout.c - the one way a --json answer is printed (see jsonout.h).
 *
 * Eleven commands wrote these three lines again, each after its own tables; scripts
 * read the output, so its shape (indent 2, one trailing newline) is kept in one place.
 */
#include "crier/jsonout.h"

void json_out(FILE *out, json_t *value)
{
    json_dumpf(value, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(value);
}
