/*
 * fax.h - the pure parts of the fax channel (channels/fax.c), exposed for unit tests:
 * RFC 6901 JSON pointers over jansson values, the mapping of a gateway's status words,
 * and the verdict on a submission from what libcurl and the gateway said.
 *
 * The channel itself is fax_channel_ops (channel.h); docs/fax.md describes it.
 */
#ifndef CRIER_FAX_H
#define CRIER_FAX_H

#include <jansson.h>
#include <stdbool.h>

/*
 * fax_json_pointer - the value at pointer (RFC 6901: "" is the whole document, "/a/0/b~1c"
 * is member "a", element 0, member "b/c") in root; a borrowed reference. -EINVAL for a
 * malformed pointer (not "" and not starting with '/', or a '~' not followed by 0 or 1),
 * -ENOENT when the value is not there.
 */
int fax_json_pointer(json_t *root, const char *pointer, json_t **ret_value);

/* fax_json_pointer_text - the value at pointer as text: a string as it is, an integer in
 * decimal; NULL for anything else or when absent. Valid while root lives (integers are
 * written into buffer). */
const char *fax_json_pointer_text(json_t *root, const char *pointer, char *buffer,
                                  size_t buffer_size);

/* What a gateway's status word means for the notice. */
enum fax_status_class {
    FAX_STATUS_UNKNOWN,          /* a word the configuration does not name */
    FAX_STATUS_PENDING,          /* still queued or being sent */
    FAX_STATUS_DELIVERED,        /* sent: the final success */
    FAX_STATUS_FAILED_PERMANENT, /* the gateway gave up (busy, no answer...): fall back */
    FAX_STATUS_FAILED_TEMPORARY, /* failed, and worth sending again on the fax channel */
};

/* The status words of a gateway, each list NULL-terminated. */
struct fax_status_map {
    char **delivered;
    char **failed_permanent;
    char **failed_temporary;
    char **pending;
};

/* fax_status_words - "a, b,c" into a NULL-terminated list (blanks trimmed, empties
 * dropped); NULL text gives an empty list. Free with strv_free. */
char **fax_status_words(const char *text);

/* fax_status_class - the class of word (compared exactly; NULL is unknown). */
enum fax_status_class fax_status_classify(const struct fax_status_map *map, const char *word);

/* What a submission's result means. */
enum fax_verdict {
    FAX_VERDICT_ACCEPTED, /* 2xx: look for the fax id in the reply */
    FAX_VERDICT_REFUSED,  /* the gateway refused this fax for good (4xx): fall back */
    FAX_VERDICT_RETRY,    /* nothing was accepted: send again later */
    FAX_VERDICT_UNKNOWN,  /* the gateway may have the fax: never resend before asking it */
};

/*
 * fax_send_verdict - the verdict on one POST. curl_result is libcurl's CURLcode, http the
 * status code (0 = none), request_complete whether every byte of the request was written
 * (and no resend of it was attempted). See docs/fax.md, "Outcomes".
 */
enum fax_verdict fax_send_verdict(int curl_result, long http, bool request_complete);

struct crier_config;
struct crier_notice;
struct crier_outcome;

/*
 * fax_reply_outcomes - what the channel makes of one gateway reply body with HTTP status
 * http, read as the reply to a submission (outcomes[0]), to a status request (outcomes[1])
 * and to a list request for notice (outcomes[2]; untouched when the gateway cannot list),
 * with the gateway config describes (outcomes has 3 elements). No network: for tests and
 * fuzzing.
 */
void fax_reply_outcomes(const struct crier_config *config, const char *reply, size_t len, long http,
                        const struct crier_notice *notice, struct crier_outcome *outcomes);

#endif
