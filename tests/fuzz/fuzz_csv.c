/*
 * fuzz_csv.c - libFuzzer target: an affected-individual list as `crier load` reads it,
 * without a database: the CSV reader (engine/lib/csv.c), the header row mapped to the standard
 * columns by name, and each row through validate_recipient() (engine/lib/validate.c).
 *
 * Checked besides memory safety: every field the reader yields is valid UTF-8 without NUL
 * and at most CSV_FIELD_MAX bytes; an error names the line; an accepted row's name carries
 * no CR or LF.
 */
#include "crier/config.h"
#include "crier/csv.h"
#include "crier/validate.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *in = fmemopen((void *)data, size, "r");
    if (in == NULL)
        abort();
    struct csv_reader *reader = NULL;
    if (csv_reader_from_file(in, "fuzz.csv", &reader) < 0)
        abort();
    int column_of[FIELD_COUNT];
    for (size_t f = 0; f < FIELD_COUNT; f++)
        column_of[f] = -1;
    bool header = true;
    for (;;) {
        const struct csv_record *record = NULL;
        char err[512] = "";
        int r = csv_reader_next(reader, &record, err, sizeof(err));
        if (r == 0)
            break;
        if (r < 0) {
            if (strncmp(err, "fuzz.csv:", 9) != 0)
                abort(); /* an error names the place */
            break;
        }
        for (size_t i = 0; i < record->count; i++) {
            if (record->lengths[i] > CSV_FIELD_MAX ||
                strlen(record->fields[i]) != record->lengths[i])
                abort(); /* a NUL inside, or over the limit */
        }
        if (header) {
            for (size_t f = 0; f < FIELD_COUNT; f++)
                for (size_t i = 0; i < record->count && column_of[f] < 0; i++)
                    if (strcasecmp(record->fields[i], field_name((enum crier_field)f)) == 0)
                        column_of[f] = (int)i;
            header = false;
            continue;
        }
        struct recipient_input row = {0};
        for (size_t f = 0; f < FIELD_COUNT; f++)
            if (column_of[f] >= 0 && (size_t)column_of[f] < record->count)
                row.field[f] = record->fields[column_of[f]];
        struct recipient_valid valid;
        int v = validate_recipient(&row, &valid);
        if (v == 0) {
            const char *name = valid.field[FIELD_NAME];
            if (name != NULL && strpbrk(name, "\r\n") != NULL)
                abort(); /* a name that could forge a header was accepted */
        } else if (v != -EINVAL || valid.reject_reason == NULL) {
            abort(); /* a rejection says why */
        }
        recipient_valid_clear(&valid);
    }
    csv_reader_free(reader);
    fclose(in);
    return 0;
}
