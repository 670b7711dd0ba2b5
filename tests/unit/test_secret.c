/* test_secret.c - secret_redact: every occurrence, forms too short to redact, a detail cut
 * at its buffer's end, a secret that is a part of "[redacted]"; secret_base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crier/crier.h"

struct redact_case {
    const char *text;
    const char *secrets[3];
    size_t size; /* of the buffer; 0: large */
    const char *expected;
};

static const struct redact_case cases[] = {
    {"530 auth failed: pw S3cr3t!", {"S3cr3t!", NULL, NULL}, 0, "530 auth failed: pw [redacted]"},
    {"S3cr3t! and S3cr3t!", {"S3cr3t!", NULL, NULL}, 0, "[redacted] and [redacted]"},
    {"S3cr3t!S3cr3t!", {"S3cr3t!", NULL, NULL}, 0, "[redacted][redacted]"},
    /* every form: clear and base64 */
    {"user x pass hunter22 (AGNyaWVyAGh1bnRlcjIy)",
     {"hunter22", "AGNyaWVyAGh1bnRlcjIy", NULL},
     0,
     "user x pass [redacted] ([redacted])"},
    /* under 4 bytes: no secret, and it would blot out words */
    {"a pw in a word", {"pw", NULL, NULL}, 0, "a pw in a word"},
    {"nothing here", {NULL, NULL, NULL}, 0, "nothing here"},
    {"", {"hunter22", NULL, NULL}, 0, ""},
    /* the mark itself holds the secret: no endless loop, the text after is still seen */
    {"dacted x dacted", {"dacted", NULL, NULL}, 0, "[redacted] x [redacted]"},
    {"redacted", {"redacted", NULL, NULL}, 0, "[redacted]"},
    /* a small buffer: cut, never overrun, and nothing of the secret left */
    {"key hunter22", {"hunter22", NULL, NULL}, 13, "key [redacte"},
};

static void test_redact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct redact_case *c = &cases[i];
        size_t size = c->size ? c->size : 256;
        char *buffer = calloc(1, size);
        snprintf(buffer, size, "%s", c->text);
        secret_redact(buffer, size, c->secrets, 3);
        if (strcmp(buffer, c->expected) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, buffer, c->expected);
        free(buffer);
    }
}

static void test_base64(void **state)
{
    (void)state;
    char *b = secret_base64("\0crier\0hunter22", 15);
    assert_string_equal(b, "AGNyaWVyAGh1bnRlcjIy");
    free(b);
    b = secret_base64("key-test:abc", 12);
    assert_string_equal(b, "a2V5LXRlc3Q6YWJj");
    free(b);
    b = secret_base64("", 0);
    assert_string_equal(b, "");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
