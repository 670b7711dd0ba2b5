/*
 * test_csv.c - the CSV reader against inputs written out byte for byte: BOM, quoting,
 * line ends, blank lines, and every error with the line it must name.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crier/crier.h"
#include "crier/csv.h"

#define RECORDS_MAX 8

/* One input: the records expected as "LINE:field|field", then the final return. */
struct reader_case {
    const char *title;
    const char *input;
    size_t input_length; /* 0 = strlen(input); set it when the input holds a NUL */
    const char *records[RECORDS_MAX];
    int final_rc;          /* 0 at a clean end, else the error */
    const char *final_err; /* substring the error message must hold */
};

static const struct reader_case reader_cases[] = {
    {"plain", "a,b,c\n1,2,3\n", 0, {"1:a|b|c", "2:1|2|3"}, 0, NULL},
    {"bom", "\xef\xbb\xbfref,name\nx,y\n", 0, {"1:ref|name", "2:x|y"}, 0, NULL},
    {"bom only", "\xef\xbb\xbf", 0, {NULL}, 0, NULL},
    {"empty input", "", 0, {NULL}, 0, NULL},
    {"quoted comma and newline",
     "h1,h2\n\"a,b\",\"line1\nline2\"\nnext,row\n",
     0,
     {"1:h1|h2", "2:a,b|line1\nline2", "4:next|row"},
     0,
     NULL},
    {"record spanning three lines", "\"x\n\ny\",z\nlast\n", 0, {"1:x\n\ny|z", "4:last"}, 0, NULL},
    {"doubled quotes", "\"say \"\"hi\"\"\",x\n", 0, {"1:say \"hi\"|x"}, 0, NULL},
    {"crlf", "a,b\r\nc,d\r\n", 0, {"1:a|b", "2:c|d"}, 0, NULL},
    {"crlf inside quotes kept", "\"x\r\ny\",z\r\nw\r\n", 0, {"1:x\r\ny|z", "3:w"}, 0, NULL},
    {"cr only line ends", "a\rb\rc", 0, {"1:a", "2:b", "3:c"}, 0, NULL},
    {"blank lines skipped", "\n\na,b\n\n\nc\n   \n\r\n", 0, {"3:a|b", "6:c"}, 0, NULL},
    {"no final newline", "a,b\nc,d", 0, {"1:a|b", "2:c|d"}, 0, NULL},
    {"empty fields", ",,\n\"\"\n", 0, {"1:||", "2:"}, 0, NULL},
    {"unquoted blanks trimmed, quoted kept", "  a  ,\" b \"\n", 0, {"1:a| b "}, 0, NULL},
    {"multibyte utf-8",
     "Zo\xc3\xab,\xe6\x97\xa5\xe6\x9c\xac,\xf0\x9f\x93\xa8\n",
     0,
     {"1:Zo\xc3\xab|\xe6\x97\xa5\xe6\x9c\xac|\xf0\x9f\x93\xa8"},
     0,
     NULL},
    {"invalid utf-8 on line 3",
     "a\nb\n\xff\n",
     0,
     {"1:a", "2:b"},
     -EILSEQ,
     "t.csv:3: not valid UTF-8"},
    {"overlong utf-8", "ok\n\xc0\xaf\n", 0, {"1:ok"}, -EILSEQ, "t.csv:2: not valid UTF-8"},
    {"surrogate", "\"\xed\xa0\x80\"\n", 0, {NULL}, -EILSEQ, "t.csv:1: not valid UTF-8"},
    {"invalid utf-8 inside multi-line field",
     "a\n\"ok\n\xc3\x28\nok\",z\n",
     0,
     {"1:a"},
     -EILSEQ,
     "t.csv:3: not valid UTF-8"},
    {"nul byte", "a,b\nc,d\0e\n", 11, {"1:a|b"}, -EILSEQ, "t.csv:2: NUL byte in field"},
    {"unterminated quote", "a\n\"open,\nmore\n", 0, {"1:a"}, -EBADMSG, "t.csv:2: malformed CSV"},
    {"stray quote in unquoted field", "a\nb\"c\n", 0, {"1:a"}, -EBADMSG, "t.csv:2: malformed CSV"},
    {"text after closing quote",
     "x\ny\n\"a\"b\n",
     0,
     {"1:x", "2:y"},
     -EBADMSG,
     "t.csv:3: malformed CSV"},
};

/* record_format - "LINE:field|field" for comparison with a case. */
static char *record_format(const struct csv_record *record)
{
    char *text = xasprintf("%lu:", record->line);
    for (size_t i = 0; i < record->count; i++) {
        assert_int_equal(strlen(record->fields[i]), record->lengths[i]);
        char *longer = xasprintf("%s%s%s", text, i == 0 ? "" : "|", record->fields[i]);
        free(text);
        text = longer;
    }
    return text;
}

static void run_reader_case(const struct reader_case *c)
{
    size_t length = c->input_length ? c->input_length : strlen(c->input);
    char *copy = xmalloc(length + 1);
    memcpy(copy, c->input, length);
    copy[length] = '\0';
    FILE *file = fmemopen(copy, length ? length : 1, "r");
    assert_non_null(file);
    if (length == 0)
        fgetc(file); /* fmemopen cannot make an empty stream: read its one byte */

    struct csv_reader *reader = NULL;
    assert_int_equal(csv_reader_from_file(file, "t.csv", &reader), 0);
    const struct csv_record *record = NULL;
    char err[256] = "";
    size_t n = 0;
    int rc;
    for (;;) {
        rc = csv_reader_next(reader, &record, err, sizeof(err));
        if (rc != 1)
            break;
        assert_true(n < RECORDS_MAX);
        assert_non_null(c->records[n]);
        char *got = record_format(record);
        if (strcmp(got, c->records[n]) != 0)
            fail_msg("%s: record %zu: got '%s', want '%s'", c->title, n, got, c->records[n]);
        free(got);
        n++;
    }
    if (n < RECORDS_MAX && c->records[n] != NULL)
        fail_msg("%s: record %zu missing (rc %d, %s)", c->title, n, rc, err);
    if (rc != c->final_rc)
        fail_msg("%s: rc %d, want %d (%s)", c->title, rc, c->final_rc, err);
    if (c->final_err != NULL && strstr(err, c->final_err) == NULL)
        fail_msg("%s: error '%s' lacks '%s'", c->title, err, c->final_err);
    /* end and errors are sticky */
    assert_int_equal(csv_reader_next(reader, &record, err, sizeof(err)), c->final_rc);

    csv_reader_free(reader);
    fclose(file);
    free(copy);
}

static void test_reader_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(reader_cases); i++)
        run_reader_case(&reader_cases[i]);
}

/* temp_file_write - a file under /tmp holding len bytes of data; caller unlinks it. */
static char *temp_file_write(const char *data, size_t len)
{
    char *path = xstrdup("/tmp/crier-test-csv-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *file = fdopen(fd, "w");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
    return path;
}

/* read_all - read every record of path; the final csv_reader_next result, err its message. */
static int read_all(const char *path, size_t *ret_count, char *err, size_t err_size)
{
    struct csv_reader *reader = NULL;
    int rc = csv_reader_open(path, &reader, err, err_size);
    if (rc < 0)
        return rc;
    const struct csv_record *record;
    size_t count = 0;
    for (;;) {
        rc = csv_reader_next(reader, &record, err, err_size);
        if (rc != 1)
            break;
        count++;
    }
    csv_reader_free(reader);
    *ret_count = count;
    return rc;
}

static void test_field_limit(void **state)
{
    (void)state;
    struct {
        size_t length; /* field length */
        bool quoted;
        int rc;
    } cases[] = {
        {CSV_FIELD_MAX, false, 0},
        {CSV_FIELD_MAX, true, 0},
        {CSV_FIELD_MAX + 1, false, -E2BIG},
        {CSV_FIELD_MAX + 1, true, -E2BIG},
        {(size_t)CSV_FIELD_MAX * 3, true, -E2BIG}, /* stopped before libcsv buffers it all */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t len = cases[i].length;
        char *data = xmalloc(len + 16);
        size_t n = 0;
        memcpy(data, "ok\n", 3);
        n += 3;
        if (cases[i].quoted)
            data[n++] = '"';
        memset(data + n, 'x', len);
        n += len;
        if (cases[i].quoted)
            data[n++] = '"';
        memcpy(data + n, ",y\n", 3);
        n += 3;
        char *path = temp_file_write(data, n);
        char err[256] = "";
        size_t count = 0;
        int rc = read_all(path, &count, err, sizeof(err));
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(count, 2);
        } else {
            assert_non_null(strstr(err, ":2: field longer than"));
        }
        unlink(path);
        free(path);
        free(data);
    }
}

static void test_too_many_fields(void **state)
{
    (void)state;
    size_t commas = 20000;
    char *data = xmalloc(commas + 2);
    memset(data, ',', commas);
    data[commas] = '\n';
    char *path = temp_file_write(data, commas + 1);
    char err[256] = "";
    size_t count = 0;
    assert_int_equal(read_all(path, &count, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, ":1: record has more than"));
    unlink(path);
    free(path);
    free(data);
}

static void test_open_and_progress(void **state)
{
    (void)state;
    const char text[] = "ref,name\r\n1,\"A, B\"\r\n2,C\r\n";
    char *path = temp_file_write(text, sizeof(text) - 1);
    struct csv_reader *reader = NULL;
    char err[256] = "";
    assert_int_equal(csv_reader_open(path, &reader, err, sizeof(err)), 0);
    size_t done = 99, total = 0;
    csv_reader_progress(reader, &done, &total);
    assert_int_equal(done, 0);
    assert_int_equal(total, sizeof(text) - 1);
    const struct csv_record *record = NULL;
    int records = 0;
    while (csv_reader_next(reader, &record, err, sizeof(err)) == 1) {
        records++;
        assert_int_equal(record->line, (unsigned long)records);
        csv_reader_progress(reader, &done, &total);
        assert_true(done > 0 && done <= total);
    }
    assert_int_equal(records, 3);
    csv_reader_progress(reader, &done, &total);
    assert_int_equal(done, total);
    csv_reader_free(reader);
    unlink(path);
    free(path);

    /* a missing file and a directory are errors naming the path */
    assert_int_equal(csv_reader_open("/nonexistent/crier.csv", &reader, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/crier.csv: "));
    assert_int_equal(csv_reader_open("/tmp", &reader, err, sizeof(err)), -EISDIR);
    assert_null(csv_reader_free(NULL));
}

static void test_write_field(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *written;
        const char *read_back; /* NULL: value itself; a guarded formula keeps its apostrophe */
    } cases[] = {
        {"plain", "plain", NULL},
        {"", "", NULL},
        {"a,b", "\"a,b\"", NULL},
        {"say \"hi\"", "\"say \"\"hi\"\"\"", NULL},
        {"\"", "\"\"\"\"", NULL},
        {"line\nbreak", "\"line\nbreak\"", NULL},
        {"cr\rx", "\"cr\rx\"", NULL},
        {"crlf\r\nx", "\"crlf\r\nx\"", NULL},
        {" lead", "\" lead\"", NULL},
        {"trail ", "\"trail \"", NULL},
        {"\ttab", "\"'\ttab\"", "'\ttab"},
        /* a spreadsheet would run these: an apostrophe makes them text */
        {"=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\"", "'=HYPERLINK(\"x\")"},
        {"+1", "\"'+1\"", "'+1"},
        {"-2", "\"'-2\"", "'-2"},
        {"@SUM(A1)", "\"'@SUM(A1)\"", "'@SUM(A1)"},
        {"\r=1", "\"'\r=1\"", "'\r=1"},
        {"a=b", "a=b", NULL},
        {"in side", "in side", NULL},
        {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac", NULL},
        {"Mallory\r\nBcc: x@evil.example", "\"Mallory\r\nBcc: x@evil.example\"", NULL},
    };

    /* each value alone, exactly as written */
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *buffer = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&buffer, &size);
        csv_write_field(out, cases[i].value);
        fclose(out);
        assert_string_equal(buffer, cases[i].written);
        free(buffer);
    }
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buffer, &size);
    csv_write_field(out, NULL);
    fclose(out);
    assert_int_equal(size, 0);
    free(buffer);

    /* all of them as one record, read back */
    out = open_memstream(&buffer, &size);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        if (i > 0)
            fputc(',', out);
        csv_write_field(out, cases[i].value);
    }
    fputs("\r\nnext\r\n", out);
    fclose(out);
    FILE *in = fmemopen(buffer, size, "r");
    struct csv_reader *reader = NULL;
    assert_int_equal(csv_reader_from_file(in, "round-trip", &reader), 0);
    const struct csv_record *record = NULL;
    char err[256] = "";
    assert_int_equal(csv_reader_next(reader, &record, err, sizeof(err)), 1);
    assert_int_equal(record->count, ARRAY_SIZE(cases));
    assert_int_equal(record->line, 1);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_string_equal(record->fields[i],
                            cases[i].read_back ? cases[i].read_back : cases[i].value);
    assert_int_equal(csv_reader_next(reader, &record, err, sizeof(err)), 1);
    assert_int_equal(record->line, 7); /* five line breaks inside the first record */
    assert_string_equal(record->fields[0], "next");
    assert_int_equal(csv_reader_next(reader, &record, err, sizeof(err)), 0);
    csv_reader_free(reader);
    fclose(in);
    free(buffer);
}

/* csv_write_row: a NULL is an empty field never quoted, "" is quoted under CSV_QUOTE_ALL;
 * line ends as asked; formulas guarded either way */
static void test_write_row(void **state)
{
    (void)state;
    const char *values[] = {"a", NULL, "", "=x", "b,c"};
    static const struct {
        unsigned flags;
        const char *written;
    } cases[] = {
        {0, "a,,,\"'=x\",\"b,c\"\n"},
        {CSV_QUOTE_ALL | CSV_CRLF, "\"a\",,\"\",\"'=x\",\"b,c\"\r\n"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *buffer = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&buffer, &size);
        csv_write_row(out, values, ARRAY_SIZE(values), cases[i].flags);
        fclose(out);
        assert_string_equal(buffer, cases[i].written);
        free(buffer);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_cases),    cmocka_unit_test(test_field_limit),
        cmocka_unit_test(test_too_many_fields), cmocka_unit_test(test_open_and_progress),
        cmocka_unit_test(test_write_field),     cmocka_unit_test(test_write_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
