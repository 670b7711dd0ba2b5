/*
 * fuzz_bounce.c - libFuzzer target: one message as `crier bounces ingest` parses it
 * (bounce_parse, engine/cmd/bounce.c: GMime, multipart/report, RFC 3464 fields, VERP and
 * X-Crier-Notice references).
 *
 * Checked besides memory safety: every string of the report is NUL-terminated and on one
 * line, tokens are lower-case hex, and a parse error is reported as BOUNCE_UNPARSEABLE.
 */
#include "crier/bounce.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *s, size_t size)
{
    size_t len = strnlen(s, size);
    if (len == size || memchr(s, '\n', len) != NULL || memchr(s, '\r', len) != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bounce_report report;
    int r = bounce_parse(data, size, &report);
    if (r < 0 && (r != -EBADMSG || report.kind != BOUNCE_UNPARSEABLE))
        abort();
    check_line(report.action, sizeof(report.action));
    check_line(report.status, sizeof(report.status));
    check_line(report.recipient, sizeof(report.recipient));
    check_line(report.diagnostic, sizeof(report.diagnostic));
    check_line(report.message_id, sizeof(report.message_id));
    if (strnlen(report.sha256, sizeof(report.sha256)) == sizeof(report.sha256))
        abort();
    if (report.candidate_count > BOUNCE_CANDIDATES_MAX)
        abort();
    for (size_t i = 0; i < report.candidate_count; i++) {
        const char *token = report.candidates[i].token;
        if (strnlen(token, sizeof(report.candidates[i].token)) ==
                sizeof(report.candidates[i].token) ||
            strspn(token, "0123456789abcdef") != strlen(token))
            abort();
    }
    return 0;
}
