/*
 * csv.h - streaming reader for affected-individual lists (RFC 4180 via libcsv).
 *
 * Knows nothing of recipients or SQL: it yields records of UTF-8 fields with the line
 * each record started on. A UTF-8 BOM is skipped; quoted fields may hold commas and
 * newlines; a byte sequence that is not UTF-8, or a NUL byte, is an error naming the line.
 *
 * SECURITY: input is untrusted; field sizes are bounded (CSV_FIELD_MAX) so that a
 * hostile file cannot make the reader hold more than one record's worth of memory.
 */
#ifndef CRIER_CSV_H
#define CRIER_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_FIELD_MAX (1024 * 1024) /* longest field accepted, in bytes */

struct csv_reader;

struct csv_record {
    char **fields;      /* NUL-terminated UTF-8 values, owned by the reader */
    size_t *lengths;    /* byte length of each field */
    size_t count;       /* number of fields */
    unsigned long line; /* line (1-based) on which the record starts */
};

/* csv_reader_open - open path ("-" is stdin). -errno on failure, message in err. */
int csv_reader_open(const char *path, struct csv_reader **ret_reader, char *err, size_t err_size);
/* csv_reader_from_file - read from an already open stream (not closed by the reader). */
int csv_reader_from_file(FILE *file, const char *name, struct csv_reader **ret_reader);

/*
 * csv_reader_next - the next record, valid until the next call.
 * Returns 1 with *ret_record set, 0 at end of input, -EILSEQ for invalid UTF-8 or NUL,
 * -E2BIG for a field over CSV_FIELD_MAX, -EBADMSG for malformed CSV, -EIO on a read
 * error; on error, err holds "NAME:LINE: message". Blank lines are skipped.
 */
int csv_reader_next(struct csv_reader *reader, const struct csv_record **ret_record, char *err,
                    size_t err_size);

/* csv_reader_progress - bytes consumed and total size (0 when unknown, e.g. a pipe). */
void csv_reader_progress(const struct csv_reader *reader, size_t *ret_done, size_t *ret_total);

struct csv_reader *csv_reader_free(struct csv_reader *reader);

/*
 * csv_write_field - value as one RFC 4180 field, quoted only when it must be. The one CSV
 * writer of crier (reject files, manifests, the audit log, the regulator packet): people
 * open these in spreadsheets, so a value that starts with = + - @, a tab or a CR, which a
 * spreadsheet would run as a formula, is written with an apostrophe before it.
 */
void csv_write_field(FILE *out, const char *value);

#define CSV_QUOTE_ALL 1u /* every field quoted */
#define CSV_CRLF      2u /* lines end in CRLF, as RFC 4180 says; else LF */

/* csv_write_row - n fields as one line (csv_write_field's rules); a NULL value is an empty
 * field, never quoted, so that it differs from "" under CSV_QUOTE_ALL. */
void csv_write_row(FILE *out, const char *const *values, size_t n, unsigned flags);

#endif
