/*
 * fuzz_fax.c - libFuzzer target: the fax gateway's JSON replies as channels/fax.c reads
 * them (fax_reply_outcomes): the reply to a submission, to a status request and to a list
 * request, for the Sinch v3 provider and for a generic provider described in YAML.
 *
 * The same body is also read as a status callback posted to crier serve's webhook (the
 * callback op).
 *
 * Input: byte 0 picks the HTTP status and the provider, the rest is the reply body.
 * Checked besides memory safety: every outcome's detail and transport id are
 * NUL-terminated, printable (no control characters reach a log line or the database) and
 * the outcome kinds are the ones each request can give.
 */
#include "crier/channel.h"
#include "crier/config.h"
#include "crier/fax.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sinch_yaml[] = "channels:\n"
                                 "  fax:\n"
                                 "    provider: sinch\n"
                                 "    base_url: http://127.0.0.1:9/\n"
                                 "    project_id: proj-test\n"
                                 "    auth: none\n";

static const char generic_yaml[] =
    "channels:\n"
    "  fax:\n"
    "    provider: generic\n"
    "    auth: none\n"
    "    generic:\n"
    "      send_url: \"http://127.0.0.1:9/v2/faxes\"\n"
    "      status_url: \"http://127.0.0.1:9/v2/faxes/{id}\"\n"
    "      list_url: \"http://127.0.0.1:9/v2/faxes?to={to}\"\n"
    "      response: {id: /data/id, status: /data/status, error: \"/data/error,/data/0/x~1y\"}\n"
    "      list: {items: /data, id: /id, token: /tags/crier_notice, attempt: "
    "/tags/crier_attempt, next: /paging/next, page_param: page}\n"
    "      statuses: {delivered: success, failed_permanent: failure, failed_temporary: "
    "retry, pending: \"queued, inprogress\"}\n";

static struct crier_config *configs[2];

static const long statuses[] = {200, 201, 202, 400, 404, 410, 422, 429, 500, 503};

static void check_text(const char *s, size_t size)
{
    size_t len = strnlen(s, size);
    if (len == size)
        abort(); /* not terminated */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            abort(); /* a control character from the reply reached a detail */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (configs[0] == NULL) {
        if (config_parse(sinch_yaml, strlen(sinch_yaml), "sinch.yaml", stderr, &configs[0]) < 0 ||
            config_parse(generic_yaml, strlen(generic_yaml), "generic.yaml", stderr, &configs[1]) <
                0)
            abort();
    }
    if (size < 1)
        return 0;
    long http = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    const struct crier_config *config = configs[(data[0] >> 4) & 1];
    struct crier_notice notice = {
        .id = 42,
        .token = "0123456789abcdef0123456789abcdef",
        .fax = "+12125550123",
        .attempt = 2,
    };
    struct crier_outcome outcomes[3];
    fax_reply_outcomes(config, (const char *)data + 1, size - 1, http, &notice, outcomes);
    for (size_t i = 0; i < 3; i++) {
        check_text(outcomes[i].detail, sizeof(outcomes[i].detail));
        check_text(outcomes[i].transport_id, sizeof(outcomes[i].transport_id));
    }
    if (outcomes[1].kind == OUTCOME_ACCEPTED)
        abort(); /* a status reply never says "accepted" */
    struct crier_callback callback;
    char err[512];
    int r = fax_channel_ops.callback(config, (const char *)data + 1, size - 1, &callback, err,
                                     sizeof(err));
    check_text(callback.event, sizeof(callback.event));
    check_text(callback.transport_id, sizeof(callback.transport_id));
    check_text(callback.token, sizeof(callback.token));
    check_text(callback.outcome.detail, sizeof(callback.outcome.detail));
    if (r < 0 && (callback.final_status || callback.notice_id != 0))
        abort(); /* a refused body leaves nothing to record */
    if ((callback.notice_id > 0) != (callback.token[0] != '\0'))
        abort(); /* a notice id only from a token */
    if (callback.final_status &&
        (callback.outcome.kind == OUTCOME_ACCEPTED || callback.outcome.kind == OUTCOME_NO_ADDRESS))
        abort(); /* a final status is delivered, failed or pending, as a poll's */
    return 0;
}
