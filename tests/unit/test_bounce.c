/*
 * test_bounce.c - DSN parsing: the real Postfix notifications in tests/data/dsn/ (made by
 * tests/peers/make_dsn.sh) field by field, an mbox and a Maildir of them, and hand-written
 * extra cases (labelled as such) for what Postfix does not produce: several recipient
 * groups, an encoded status part, malformed references, garbage. Every prefix and many
 * corruptions of every fixture are parsed too: whatever the input, no crash.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crier/bounce.h"
#include "crier/crier.h"

/* the notice every fixture names (tests/peers/make_dsn.sh) */
#define FIXTURE_ID    INT64_C(4294967297)
#define FIXTURE_TOKEN "0123456789abcdef0123456789abcdef"

static char *fixture_path(const char *name)
{
    const char *dir = getenv("CRIER_TEST_DATA");
    return xasprintf("%s/dsn/%s", dir ? dir : "tests/data", name);
}

static char *read_all(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, len = 0;
    char *data = xmalloc(cap);
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            data = xrealloc(data, cap);
        }
    }
    fclose(f);
    *ret_len = len;
    return data;
}

static char *fixture(const char *name, size_t *ret_len)
{
    char *path = fixture_path(name);
    char *data = read_all(path, ret_len);
    free(path);
    return data;
}

/* has_candidate - is there a candidate of this source naming the fixture's notice? */
static bool has_candidate(const struct bounce_report *r, enum bounce_source source)
{
    for (size_t i = 0; i < r->candidate_count; i++) {
        const struct bounce_candidate *c = &r->candidates[i];
        if (c->source != source || c->notice_id != FIXTURE_ID)
            continue;
        if (source == BOUNCE_BY_MESSAGE_ID)
            return c->attempt == 1 && c->token[0] == '\0';
        return strcmp(c->token, FIXTURE_TOKEN) == 0;
    }
    return false;
}

struct fixture_case {
    const char *file;
    enum bounce_kind kind;
    const char *action;
    const char *status;
    const char *recipient;
    const char *diagnostic; /* exact, after unfolding */
    bool verp, header, message_id;
};

static const struct fixture_case fixture_cases[] = {
    {"permanent-local.eml", BOUNCE_FAILED, "failed", "5.1.1", "nosuchuser@mta.crier.test",
     "X-Postfix; unknown user: \"nosuchuser\"", true, true, true},
    {"permanent-remote.eml", BOUNCE_FAILED, "failed", "5.1.1", "nobody@remote.crier.test",
     "smtp; 550 5.1.1 <nobody@remote.crier.test>: Recipient address rejected: User unknown in "
     "virtual mailbox table",
     true, true, true},
    {"delayed.eml", BOUNCE_DELAYED, "delayed", "4.4.1", "somebody@delay.crier.test",
     "X-Postfix; connect to 127.0.0.1[127.0.0.1]:10589: Connection refused", true, true, true},
    {"expired.eml", BOUNCE_FAILED, "failed", "4.4.1", "somebody@delay.crier.test",
     "X-Postfix; connect to 127.0.0.1[127.0.0.1]:10589: Connection refused", true, true, true},
    /* the envelope sender was not a VERP address: only the returned original names it */
    {"msgid-only.eml", BOUNCE_FAILED, "failed", "5.1.1", "nosuchuser@mta.crier.test",
     "X-Postfix; unknown user: \"nosuchuser\"", false, true, true},
    {"delivered.eml", BOUNCE_OTHER, "delivered", "2.0.0", "someone@localhost",
     "X-Postfix; delivery via virtual: delivered to maildir", true, true, true},
    /* the notice itself, delivered: VERP Return-Path and all, but not a DSN */
    {"notice.eml", BOUNCE_NOT_DSN, "", "", "", "", false, false, false},
};

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(fixture_cases); i++) {
        const struct fixture_case *c = &fixture_cases[i];
        print_message("%s\n", c->file);
        size_t len;
        char *data = fixture(c->file, &len);
        struct bounce_report r;
        assert_int_equal(bounce_parse(data, len, &r), 0);
        assert_int_equal(r.kind, c->kind);
        assert_string_equal(r.action, c->action);
        assert_string_equal(r.status, c->status);
        assert_string_equal(r.recipient, c->recipient);
        assert_string_equal(r.diagnostic, c->diagnostic);
        assert_true(r.message_id[0] != '\0');
        assert_int_equal(strlen(r.sha256), 64);
        assert_int_equal(has_candidate(&r, BOUNCE_BY_VERP), c->verp);
        assert_int_equal(has_candidate(&r, BOUNCE_BY_HEADER), c->header);
        assert_int_equal(has_candidate(&r, BOUNCE_BY_MESSAGE_ID), c->message_id);
        if (c->kind == BOUNCE_NOT_DSN)
            assert_int_equal(r.candidate_count, 0);
        free(data);
    }
}

/* The DSN's own Message-ID is what dedupes it: the Maildir and mbox copies agree. */
static void test_message_id(void **state)
{
    (void)state;
    size_t len;
    char *data = fixture("permanent-local.eml", &len);
    struct bounce_report r;
    assert_int_equal(bounce_parse(data, len, &r), 0);
    assert_non_null(strstr(r.message_id, "@mta.crier.test"));
    assert_null(strchr(r.message_id, '<'));
    free(data);
}

/* Postfix's own mbox of the notifications sent to the VERP address. */
static void test_mbox(void **state)
{
    (void)state;
    char *path = fixture_path("bounces.mbox");
    struct bounce_reader *reader = NULL;
    char err[256];
    assert_int_equal(bounce_reader_open(path, &reader, err, sizeof(err)), 0);
    static const enum bounce_kind expected[] = {BOUNCE_FAILED, BOUNCE_FAILED, BOUNCE_DELAYED,
                                                BOUNCE_OTHER, BOUNCE_FAILED};
    struct bounce_report r;
    const char *where = NULL;
    size_t n = 0;
    while (bounce_reader_next(reader, &r, &where) > 0) {
        assert_true(n < ARRAY_SIZE(expected));
        assert_int_equal(r.kind, expected[n]);
        assert_true(has_candidate(&r, BOUNCE_BY_VERP));
        assert_non_null(strstr(where, "message"));
        n++;
    }
    assert_int_equal(n, ARRAY_SIZE(expected));
    bounce_reader_free(reader);
    free(path);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = read_all(from, &len);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

/* A Maildir: new/ then cur/, dot files and subdirectories skipped. */
static void test_maildir(void **state)
{
    (void)state;
    char dir[] = "/tmp/crier-test-maildir.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *sub[3] = {xasprintf("%s/new", dir), xasprintf("%s/cur", dir), xasprintf("%s/tmp", dir)};
    for (int i = 0; i < 3; i++)
        assert_int_equal(mkdir(sub[i], 0700), 0);
    char *files[] = {
        fixture_path("delayed.eml"),
        fixture_path("permanent-local.eml"),
        fixture_path("notice.eml"),
    };
    char *targets[] = {
        xasprintf("%s/1.a:2,S", sub[1]), /* cur/ */
        xasprintf("%s/2.b", sub[0]),     /* new/ */
        xasprintf("%s/3.c", sub[2]),     /* tmp/: never read */
    };
    for (int i = 0; i < 3; i++)
        copy_file(files[i], targets[i]);
    char *dot = xasprintf("%s/.hidden", sub[0]);
    copy_file(files[0], dot);

    struct bounce_reader *reader = NULL;
    char err[256];
    assert_int_equal(bounce_reader_open(dir, &reader, err, sizeof(err)), 0);
    struct bounce_report r;
    const char *where = NULL;
    assert_int_equal(bounce_reader_next(reader, &r, &where), 1);
    assert_int_equal(r.kind, BOUNCE_FAILED); /* new/ first */
    assert_string_equal(where, targets[1]);
    assert_int_equal(bounce_reader_next(reader, &r, &where), 1);
    assert_int_equal(r.kind, BOUNCE_DELAYED);
    assert_int_equal(bounce_reader_next(reader, &r, &where), 0);
    bounce_reader_free(reader);

    unlink(dot);
    free(dot);
    for (int i = 0; i < 3; i++) {
        unlink(targets[i]);
        free(targets[i]);
        free(files[i]);
    }
    for (int i = 0; i < 3; i++) {
        rmdir(sub[i]);
        free(sub[i]);
    }
    rmdir(dir);
}

static void test_reader_errors(void **state)
{
    (void)state;
    struct bounce_reader *reader = NULL;
    char err[256];
    assert_int_equal(bounce_reader_open("/nonexistent/crier/bounces", &reader, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/crier/bounces"));
    char dir[] = "/tmp/crier-test-notmaildir.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(bounce_reader_open(dir, &reader, err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, "not a Maildir"));
    rmdir(dir);
    assert_null(reader);
}

/* ---- hand-written extra cases (not from an MTA) ------------------------------------------ */

#define DSN_HEAD(to)                                                                               \
    "From: MAILER-DAEMON@mx.example\n"                                                             \
    "To: " to "\n"                                                                                 \
    "Message-ID: <dsn.1@mx.example>\n"                                                             \
    "MIME-Version: 1.0\n"                                                                          \
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"              \
    "--b\nContent-Type: text/plain\n\nsorry\n"

#define VERP "bounce+4294967297.0123456789abcdef0123456789abcdef@bounces.example"

struct handmade_case {
    const char *title;
    const char *input;
    size_t input_length; /* 0 = strlen(input) */
    int rc;
    enum bounce_kind kind;
    const char *status;
    const char *diagnostic;
    size_t candidates;
};

static const struct handmade_case handmade_cases[] = {
    {"empty", "", 0, -EBADMSG, BOUNCE_UNPARSEABLE, "", "", 0},
    {"binary", "\x00\x01\x02\xff\xfe garbage", 13, -EBADMSG, BOUNCE_UNPARSEABLE, "", "", 0},
    {"text without headers", "hello world, this is not mail\n", 0, -EBADMSG, BOUNCE_UNPARSEABLE, "",
     "", 0},
    {"plain message", "From: a@b\nSubject: hi\n\nbody\n", 0, 0, BOUNCE_NOT_DSN, "", "", 0},
    {"multipart/report of another type",
     "From: a@b\nContent-Type: multipart/report; report-type=disposition-notification;"
     " boundary=b\n\n--b\nContent-Type: message/disposition-notification\n\nx: y\n--b--\n",
     0, 0, BOUNCE_NOT_DSN, "", "", 0},
    {"report without a status part", DSN_HEAD(VERP) "--b--\n", 0, -EBADMSG, BOUNCE_UNPARSEABLE, "",
     "", 0},
    {"status part without Action or Status",
     DSN_HEAD(VERP) "--b\nContent-Type: message/delivery-status\n\n"
                    "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@b\n--b--\n",
     0, -EBADMSG, BOUNCE_UNPARSEABLE, "", "", 0},
    {"two recipients: failed wins over delayed",
     DSN_HEAD(VERP) "--b\nContent-Type: message/delivery-status\n\n"
                    "Reporting-MTA: dns; mx.example\n\n"
                    "Final-Recipient: rfc822; a@b\nAction: delayed\nStatus: 4.2.2\n\n\n"
                    "Final-Recipient: rfc822; c@d\nAction: failed (gave up)\nStatus: 5.2.1 (full)\n"
                    "Diagnostic-Code: smtp; 552 5.2.1\n  mailbox full\n--b--\n",
     0, 0, BOUNCE_FAILED, "5.2.1", "smtp; 552 5.2.1 mailbox full", 1},
    {"base64 status part, CRLF lines",
     "From: m@x\r\nTo: " VERP "\r\nContent-Type: multipart/report; report-type=delivery-status;"
     " boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n"
     /* "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n
      *  Status: 5.1.1\r\n" */
     "UmVwb3J0aW5nLU1UQTogZG5zOyB4DQoNCkZpbmFsLVJlY2lwaWVudDogcmZjODIyOyBhQGINCkFjdGlvbjogZmFp\r\n"
     "bGVkDQpTdGF0dXM6IDUuMS4xDQo=\r\n--b--\r\n",
     0, 0, BOUNCE_FAILED, "5.1.1", "", 1},
    {"no Action: the Status class decides",
     DSN_HEAD(VERP) "--b\nContent-Type: message/delivery-status\n\nX: y\n\nStatus: 4.4.7\n--b--\n",
     0, 0, BOUNCE_DELAYED, "4.4.7", "", 1},
    {"upper-case VERP token is the same token",
     DSN_HEAD(
         "bounce+4294967297.0123456789ABCDEF0123456789ABCDEF@bounces.example") "--b\nContent-Type: "
                                                                               "message/"
                                                                               "delivery-"
                                                                               "status\n\nX: "
                                                                               "y\n\nAction: "
                                                                               "failed\nStatus: "
                                                                               "5.1.1\n--b--\n",
     0, 0, BOUNCE_FAILED, "5.1.1", "", 1},
    {"malformed VERP addresses name nothing",
     DSN_HEAD(
         "bounce+abc.0123@x, bounce+4294967297.xyz@x, bounce+12.00ff@x, "
         "bounce+4294967297@x, bounce+4294967297.@x, bounce+99999999999999999999.ab@x") "--"
                                                                                        "b\nContent"
                                                                                        "-Type: "
                                                                                        "message/"
                                                                                        "delivery-"
                                                                                        "status\n\n"
                                                                                        "X: "
                                                                                        "y\n\nActio"
                                                                                        "n: "
                                                                                        "failed\nSt"
                                                                                        "atus: "
                                                                                        "5.1.1\n--"
                                                                                        "b--\n",
     0, 0, BOUNCE_FAILED, "5.1.1", "", 0},
    {"report nested in multipart/mixed, original's Message-ID only",
     "From: m@x\nTo: someone@else\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
     "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
     "--b\nContent-Type: message/delivery-status\n\nX: y\n\nAction: failed\nStatus: 5.0.0\n"
     "--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <crier.4294967297.3@x>\n--b--\n"
     "--o--\n",
     0, 0, BOUNCE_FAILED, "5.0.0", "", 1},
    {"invalid UTF-8 in the diagnostic is replaced",
     DSN_HEAD(VERP) "--b\nContent-Type: message/delivery-status\n\nX: y\n\nAction: failed\n"
                    "Status: 5.1.1\nDiagnostic-Code: smtp; 550 \xff\xfe bad\n--b--\n",
     0, 0, BOUNCE_FAILED, "5.1.1", NULL, 1},
};

static void test_handmade(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(handmade_cases); i++) {
        const struct handmade_case *c = &handmade_cases[i];
        print_message("%s\n", c->title);
        size_t len = c->input_length ? c->input_length : strlen(c->input);
        struct bounce_report r;
        assert_int_equal(bounce_parse(c->input, len, &r), c->rc);
        assert_int_equal(r.kind, c->kind);
        assert_string_equal(r.status, c->status);
        if (c->diagnostic)
            assert_string_equal(r.diagnostic, c->diagnostic);
        else
            assert_true(utf8_valid(r.diagnostic, strlen(r.diagnostic)));
        assert_int_equal(r.candidate_count, c->candidates);
        for (size_t k = 0; k < r.candidate_count; k++)
            assert_int_equal(r.candidates[k].notice_id, FIXTURE_ID);
    }
}

/* check_sane - whatever came in, what comes out is bounded, valid UTF-8, one line. */
static void check_sane(const struct bounce_report *r)
{
    assert_true(r->kind >= BOUNCE_UNPARSEABLE && r->kind <= BOUNCE_OTHER);
    assert_true(r->candidate_count <= BOUNCE_CANDIDATES_MAX);
    const char *fields[] = {r->action, r->status, r->recipient, r->diagnostic, r->message_id};
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        assert_true(utf8_valid(fields[i], strlen(fields[i])));
        assert_null(strpbrk(fields[i], "\r\n"));
    }
}

/* Prefixes of every fixture (every 5th length, so that a sanitizer build stays quick), and
 * seeded corruptions of each: never a crash. */
static void test_never_crash(void **state)
{
    (void)state;
    unsigned short seed[3] = {0x1234, 0x5678, 0x9abc};
    for (size_t i = 0; i < ARRAY_SIZE(fixture_cases); i++) {
        size_t len;
        char *data = fixture(fixture_cases[i].file, &len);
        struct bounce_report r;
        for (size_t cut = 0; cut <= len; cut += cut < len && cut + 5 > len ? len - cut : 5) {
            bounce_parse(data, cut, &r);
            check_sane(&r);
        }
        char *copy = xmalloc(len);
        for (int round = 0; round < 150; round++) {
            memcpy(copy, data, len);
            int flips = 1 + (int)(erand48(seed) * 8);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t)(erand48(seed) * (double)len);
                static const char nasty[] = {'\0', '\n', '\r', ':',    ';',    '-', '"', '<',
                                             '@',  '.',  ' ',  '\xff', '\x80', '=', '+', 'b'};
                copy[at] = erand48(seed) < 0.5 ? nasty[(int)(erand48(seed) * sizeof(nasty))]
                                               : (char)(erand48(seed) * 256);
            }
            bounce_parse(copy, len, &r);
            check_sane(&r);
        }
        free(copy);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),      cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_mbox),          cmocka_unit_test(test_maildir),
        cmocka_unit_test(test_reader_errors), cmocka_unit_test(test_handmade),
        cmocka_unit_test(test_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
