/*
 * csv.c - streaming reader for affected-individual lists, on top of libcsv.
 *
 * Input is read in fixed-size chunks and handed to libcsv one physical line at a time
 * (a line ends at LF, CR or CRLF), so the callbacks always know the current line and a
 * line can complete at most one record. Each record's fields are copied into buffers
 * that are reused, and grown geometrically, from record to record: no allocation per
 * field once the buffers have reached the size of the largest record.
 *
 * Unquoted fields lose leading and trailing spaces and tabs (libcsv's behaviour); a
 * line holding only spaces and tabs counts as blank. Quoted fields are kept verbatim.
 *
 * Must never hand out a field that is not UTF-8 or that holds a NUL byte, never count
 * a blank line as a record, and never hold more than one record plus one read chunk.
 *
 * SECURITY: parses untrusted files. The field size is capped inside libcsv's own
 * buffer (through its realloc hook) as well as in the field callback, and the number
 * of fields in one record is capped, so a hostile file cannot make memory grow without
 * bound.
 */
#include "crier/csv.h"
#include "crier/crier.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK        (128 * 1024) /* bytes read from the file at a time */
#define RECORD_FIELDS_MAX 10000        /* fields in one record; more is hostile, not data */
#define PARSER_BLOCK      (64 * 1024)  /* libcsv grows its field buffer by this much */
/* libcsv's field buffer also holds a closing quote, trailing blanks and the NUL. */
#define PARSER_BUFFER_MAX ((size_t)CSV_FIELD_MAX + PARSER_BLOCK)

struct csv_reader {
    FILE *file;
    bool owns_file; /* opened by csv_reader_open: closed by csv_reader_free */
    char *name;     /* for messages: the path, "stdin" or the caller's name */
    struct csv_parser parser;

    char *chunk;         /* READ_CHUNK bytes read from the file */
    size_t chunk_length; /* valid bytes in chunk */
    size_t chunk_offset; /* bytes of chunk already given to the parser */
    bool bom_checked;    /* the start of the input has been looked at for a BOM */
    bool finished;       /* end of input reached and the parser finalized */

    unsigned long line;   /* physical line being given to the parser (1-based) */
    bool previous_was_cr; /* the last byte given to the parser was CR: an LF now ends no line */
    bool row_open;        /* the parser is inside a record */
    unsigned long record_line; /* line on which the open record started */

    char *data;               /* the record's field values, each NUL-terminated */
    size_t data_length;       /* bytes used in data */
    size_t data_capacity;     /* bytes allocated for data */
    size_t *offsets;          /* where each field starts in data */
    size_t *lengths;          /* each field's length */
    char **fields;            /* pointers into data, set once the record is complete */
    size_t field_count;       /* fields collected for the record */
    size_t field_capacity;    /* entries allocated in offsets, lengths and fields */
    bool record_ready;        /* a complete record waits in data */
    struct csv_record record; /* what csv_reader_next hands out */

    int error;           /* 0, or the negative errno that stopped the reader (sticky) */
    char *error_message; /* "NAME:LINE: message" for error */

    size_t bytes_done;  /* bytes given to the parser, BOM included */
    size_t bytes_total; /* file size, 0 when not a regular file */
};

/* parser_realloc - libcsv's allocator: aborts on exhaustion, refuses to pass the cap. */
static void *parser_realloc(void *ptr, size_t size)
{
    if (size > PARSER_BUFFER_MAX)
        return NULL; /* libcsv then reports CSV_ENOMEM: the field is too long */
    return xrealloc(ptr, size);
}

static void reader_fail(struct csv_reader *reader, int error, unsigned long line, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* reader_fail - stop the reader with error; the first failure wins. */
static void reader_fail(struct csv_reader *reader, int error, unsigned long line, const char *fmt,
                        ...)
{
    if (reader->error != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    reader->error = error;
    reader->error_message = xasprintf("%s:%lu: %s", reader->name, line, message);
    free(message);
}

/* line_breaks_count - line ends (LF, CR or CRLF) in the len bytes at text. */
static unsigned long line_breaks_count(const char *text, size_t len)
{
    unsigned long breaks = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            if (i == 0 || text[i - 1] != '\r')
                breaks++;
        } else if (text[i] == '\r') {
            breaks++;
        }
    }
    return breaks;
}

/*
 * field_line - the line on which byte offset of a field lies. The field ends on the
 * current line, so count back the line breaks after offset (a quoted field may span
 * lines, and the message should name the line holding the bad byte).
 */
static unsigned long field_line(const struct csv_reader *reader, const char *text, size_t len,
                                size_t offset)
{
    unsigned long breaks = line_breaks_count(text + offset, len - offset);
    return reader->line > breaks ? reader->line - breaks : 1;
}

/*
 * invalid_utf8_offset - start of the first line piece of text that is not UTF-8.
 * No UTF-8 sequence contains a CR or LF byte, so checking piece by piece is exact.
 */
static size_t invalid_utf8_offset(const char *text, size_t len)
{
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && text[end] != '\n' && text[end] != '\r')
            end++;
        if (!utf8_valid(text + start, end - start))
            return start;
        start = end + 1;
    }
    return 0;
}

static void record_reserve(struct csv_reader *reader, size_t value_length)
{
    size_t need = reader->data_length + value_length + 1;
    if (need > reader->data_capacity) {
        size_t capacity = reader->data_capacity ? reader->data_capacity * 2 : 4096;
        while (capacity < need)
            capacity *= 2;
        reader->data = xrealloc(reader->data, capacity);
        reader->data_capacity = capacity;
    }
    if (reader->field_count == reader->field_capacity) {
        size_t capacity = reader->field_capacity ? reader->field_capacity * 2 : 16;
        reader->offsets = xreallocarray(reader->offsets, capacity, sizeof(*reader->offsets));
        reader->lengths = xreallocarray(reader->lengths, capacity, sizeof(*reader->lengths));
        reader->fields = xreallocarray(reader->fields, capacity, sizeof(*reader->fields));
        reader->field_capacity = capacity;
    }
}

/*
 * ascii_without_nul - fast path for the common field: plain ASCII, hence UTF-8, and no
 * NUL. Eight bytes at a time: a high bit set, or a zero byte, sends the field to the
 * full checks.
 */
static bool ascii_without_nul(const char *text, size_t len)
{
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, text + i, sizeof(word));
        if (((word | ((word - ones) & ~word)) & highs) != 0)
            return false;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0 || c >= 0x80)
            return false;
    }
    return true;
}

/* field_end - libcsv callback: check one field's value and append it to the record. */
static void field_end(void *value, size_t len, void *context)
{
    struct csv_reader *reader = context;
    const char *text = value ? value : "";
    if (reader->error != 0)
        return;
    if (len > CSV_FIELD_MAX) {
        reader_fail(reader, -E2BIG, reader->line, "field longer than %d bytes", CSV_FIELD_MAX);
        return;
    }
    if (reader->field_count >= RECORD_FIELDS_MAX) {
        reader_fail(reader, -E2BIG, reader->record_line, "record has more than %d fields",
                    RECORD_FIELDS_MAX);
        return;
    }
    if (!ascii_without_nul(text, len)) {
        const char *nul = memchr(text, '\0', len);
        if (nul != NULL) {
            reader_fail(reader, -EILSEQ, field_line(reader, text, len, (size_t)(nul - text)),
                        "NUL byte in field");
            return;
        }
        if (!utf8_valid(text, len)) {
            reader_fail(reader, -EILSEQ,
                        field_line(reader, text, len, invalid_utf8_offset(text, len)),
                        "not valid UTF-8");
            return;
        }
    }
    record_reserve(reader, len);
    reader->offsets[reader->field_count] = reader->data_length;
    reader->lengths[reader->field_count] = len;
    memcpy(reader->data + reader->data_length, text, len);
    reader->data[reader->data_length + len] = '\0';
    reader->data_length += len + 1;
    reader->field_count++;
}

/* record_end - libcsv callback: the record is complete; point its fields into data. */
static void record_end(int terminator, void *context)
{
    struct csv_reader *reader = context;
    (void)terminator;
    reader->row_open = false;
    if (reader->error != 0)
        return;
    for (size_t i = 0; i < reader->field_count; i++)
        reader->fields[i] = reader->data + reader->offsets[i];
    reader->record.fields = reader->fields;
    reader->record.lengths = reader->lengths;
    reader->record.count = reader->field_count;
    reader->record.line = reader->record_line;
    reader->record_ready = true;
}

/* reader_fill - read the next chunk; false at end of input or on a read error. */
static bool reader_fill(struct csv_reader *reader)
{
    size_t got = fread(reader->chunk, 1, READ_CHUNK, reader->file);
    reader->chunk_length = got;
    reader->chunk_offset = 0;
    if (got == 0) {
        if (ferror(reader->file))
            reader_fail(reader, -EIO, reader->line, "read error");
        return false;
    }
    if (!reader->bom_checked) {
        reader->bom_checked = true;
        if (got >= 3 && memcmp(reader->chunk, "\xef\xbb\xbf", 3) == 0) {
            reader->chunk_offset = 3;
            reader->bytes_done += 3;
        }
    }
    return true;
}

/* reader_finish - end of input: let libcsv submit a last record with no line end. */
static void reader_finish(struct csv_reader *reader)
{
    reader->finished = true;
    if (csv_fini(&reader->parser, field_end, record_end, reader) != 0)
        reader_fail(reader, -EBADMSG, reader->record_line,
                    "malformed CSV (%s): quoted field not closed at end of file",
                    csv_strerror(csv_error(&reader->parser)));
}

/* segment_has_content - true if bytes other than blanks and line ends would start a record. */
static bool segment_has_content(const char *segment, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = segment[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return true;
    }
    return false;
}

/* reader_feed_line - give libcsv the chunk's bytes up to and including the next line end. */
static void reader_feed_line(struct csv_reader *reader)
{
    const char *start = reader->chunk + reader->chunk_offset;
    size_t available = reader->chunk_length - reader->chunk_offset;
    const char *lf = memchr(start, '\n', available);
    size_t limit = lf ? (size_t)(lf - start) + 1 : available;
    const char *cr = memchr(start, '\r', limit);
    size_t length = cr ? (size_t)(cr - start) + 1 : limit;
    char last = start[length - 1];
    bool ends_line = last == '\n' || last == '\r';
    bool ends_crlf = length == 1 && last == '\n' && reader->previous_was_cr;

    if (!reader->row_open && segment_has_content(start, length)) {
        reader->row_open = true;
        reader->record_line = reader->line;
    }

    size_t parsed = csv_parse(&reader->parser, start, length, field_end, record_end, reader);
    reader->chunk_offset += parsed;
    reader->bytes_done += parsed;
    if (parsed < length) {
        int status = csv_error(&reader->parser);
        if (status == CSV_EPARSE)
            reader_fail(reader, -EBADMSG, reader->line,
                        "malformed CSV (%s): stray or unescaped quote", csv_strerror(status));
        else
            reader_fail(reader, -E2BIG, reader->line, "field longer than %d bytes", CSV_FIELD_MAX);
    }
    if (reader->error != 0)
        return;
    if (ends_line && !ends_crlf)
        reader->line++;
    reader->previous_was_cr = last == '\r';
}

static struct csv_reader *reader_new(FILE *file, const char *name, bool owns_file)
{
    struct csv_reader *reader = xcalloc(1, sizeof(*reader));
    reader->file = file;
    reader->owns_file = owns_file;
    reader->name = xstrdup(name ? name : "input");
    reader->chunk = xmalloc(READ_CHUNK);
    reader->line = 1;
    reader->record_line = 1;
    csv_init(&reader->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    csv_set_realloc_func(&reader->parser, parser_realloc);
    csv_set_blk_size(&reader->parser, PARSER_BLOCK);

    struct stat st;
    int fd = fileno(file);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        reader->bytes_total = (size_t)st.st_size;
    return reader;
}

int csv_reader_open(const char *path, struct csv_reader **ret_reader, char *err, size_t err_size)
{
    if (strcmp(path, "-") == 0) {
        *ret_reader = reader_new(stdin, "stdin", false);
        return 0;
    }
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        int error = errno;
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: %s", path, strerror(error));
        return -error;
    }
    struct stat st;
    if (fstat(fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(file);
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: %s", path, strerror(EISDIR));
        return -EISDIR;
    }
    *ret_reader = reader_new(file, path, true);
    return 0;
}

int csv_reader_from_file(FILE *file, const char *name, struct csv_reader **ret_reader)
{
    if (file == NULL)
        return -EINVAL;
    *ret_reader = reader_new(file, name, false);
    return 0;
}

int csv_reader_next(struct csv_reader *reader, const struct csv_record **ret_record, char *err,
                    size_t err_size)
{
    reader->record_ready = false;
    reader->field_count = 0;
    reader->data_length = 0;
    while (!reader->record_ready && reader->error == 0 && !reader->finished) {
        if (reader->chunk_offset == reader->chunk_length) {
            if (!reader_fill(reader) && reader->error == 0)
                reader_finish(reader);
            continue; /* a chunk that was only a BOM leaves nothing to feed yet */
        }
        reader_feed_line(reader);
    }
    if (reader->error != 0) {
        reader->record_ready = false;
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s", reader->error_message);
        return reader->error;
    }
    if (!reader->record_ready)
        return 0;
    *ret_record = &reader->record;
    return 1;
}

void csv_reader_progress(const struct csv_reader *reader, size_t *ret_done, size_t *ret_total)
{
    if (ret_done != NULL)
        *ret_done = reader->bytes_done;
    if (ret_total != NULL)
        *ret_total = reader->bytes_total;
}

struct csv_reader *csv_reader_free(struct csv_reader *reader)
{
    if (reader == NULL)
        return NULL;
    csv_free(&reader->parser);
    if (reader->owns_file)
        fclose(reader->file);
    FREE_MANY(reader->name, reader->chunk, reader->data, reader->offsets, reader->lengths,
              reader->fields, reader->error_message);
    free(reader);
    return NULL;
}

/* needs_quotes - RFC 4180 quoting, plus edge blanks that an unquoted field would lose. */
static bool needs_quotes(const char *value, size_t len)
{
    if (len == 0)
        return false;
    char first = value[0];
    char last = value[len - 1];
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t')
        return true;
    return strpbrk(value, ",\"\r\n") != NULL;
}

/* formula_lead - would a spreadsheet run a cell that starts like value (= + - @, or a tab
 * or CR before one)? Such a cell gets an apostrophe, which the spreadsheet shows as text. */
static bool formula_lead(const char *value)
{
    return value[0] != '\0' && strchr("=+-@\t\r", value[0]) != NULL;
}

/* write_field - one field: quoted when it must be or quote_all says so, guarded. */
static void write_field(FILE *out, const char *value, bool quote_all)
{
    size_t len = strlen(value);
    bool guard = formula_lead(value);
    if (!quote_all && !guard && !needs_quotes(value, len)) {
        fwrite(value, 1, len, out);
        return;
    }
    fputc('"', out);
    if (guard)
        fputc('\'', out);
    const char *rest = value;
    for (const char *quote = strchr(rest, '"'); quote != NULL; quote = strchr(rest, '"')) {
        fwrite(rest, 1, (size_t)(quote - rest) + 1, out);
        fputc('"', out);
        rest = quote + 1;
    }
    fputs(rest, out);
    fputc('"', out);
}

void csv_write_field(FILE *out, const char *value)
{
    if (out == NULL || value == NULL)
        return;
    write_field(out, value, false);
}

void csv_write_row(FILE *out, const char *const *values, size_t n, unsigned flags)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', out);
        if (values[i])
            write_field(out, values[i], (flags & CSV_QUOTE_ALL) != 0);
    }
    fputs(flags & CSV_CRLF ? "\r\n" : "\n", out);
}
