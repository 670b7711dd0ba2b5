/*
 * bounce.h - `crier bounces ingest`: delivery status notifications (RFC 3464) back to the
 * notices they name.
 *
 * Two halves: parsing (no database: a message in, what it says out) and ingesting (the
 * notice found, its token checked, the policy's decision stored with its dispatch-log row
 * in one transaction). A permanent failure moves a notice that is still 'sent' on email to
 * the next usable channel of its policy; a delay is only logged; the same DSN ingested twice
 * changes nothing.
 */
#ifndef CRIER_BOUNCE_H
#define CRIER_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "crier/config.h"
#include "crier/db.h"

#define BOUNCE_CANDIDATES_MAX 8
#define BOUNCE_TOKEN_MAX      64 /* hex digits in a notice token (the loader writes 32) */

/* What a message says, as far as crier cares. */
enum bounce_kind {
    BOUNCE_UNPARSEABLE, /* not a message at all, or a delivery-status report without a
                           usable per-recipient group */
    BOUNCE_NOT_DSN,     /* a message, but not a multipart/report of delivery-status */
    BOUNCE_FAILED,      /* Action: failed; the MTA gave up (5.x.x, or 4.x.x once it expired) */
    BOUNCE_DELAYED,     /* Action: delayed; the MTA is still retrying */
    BOUNCE_OTHER,       /* delivered, relayed, expanded: nothing went wrong */
};

/* Where a candidate notice reference came from, strongest first. */
enum bounce_source {
    BOUNCE_BY_VERP,       /* bounce+<id>.<token>@ in the DSN's recipient headers or the
                             original's Return-Path: the token is checked */
    BOUNCE_BY_HEADER,     /* X-Crier-Notice: <id>.<token> of the returned original: checked */
    BOUNCE_BY_MESSAGE_ID, /* <crier.<id>.<attempt>@...> of the returned original: carries no
                             secret, so it is used only when the DSN carries no token */
};

struct bounce_candidate {
    enum bounce_source source;
    int64_t notice_id;
    char token[BOUNCE_TOKEN_MAX + 1]; /* lower-case hex; "" for BOUNCE_BY_MESSAGE_ID */
    int attempt;                      /* BOUNCE_BY_MESSAGE_ID: the attempt it names, else 0 */
};

/* One parsed message. Strings are "" when absent; all are single-line and truncated. */
struct bounce_report {
    enum bounce_kind kind;
    char action[32];      /* of the per-recipient group chosen (the most severe) */
    char status[32];      /* "5.1.1" */
    char recipient[256];  /* Final-Recipient, without its "rfc822;" type */
    char diagnostic[400]; /* Diagnostic-Code, unfolded, type kept ("smtp; 550 5.1.1 ...") */
    char message_id[256]; /* the DSN's own Message-ID, without <> */
    char sha256[65];      /* of the message as GMime writes it back: dedupe without a
                             Message-ID */
    struct bounce_candidate candidates[BOUNCE_CANDIDATES_MAX];
    size_t candidate_count;
};

/* bounce_parse - one message's bytes. Always fills *ret_report; returns 0, or -EBADMSG
 * when the message is unparseable (ret_report->kind is then BOUNCE_UNPARSEABLE). */
int bounce_parse(const void *data, size_t len, struct bounce_report *ret_report);

/* A message file, a Maildir (new/ then cur/) or an mbox, read one message at a time. */
struct bounce_reader;

/*
 * bounce_reader_open - PATH is a directory with new/ or cur/ (a Maildir), a file starting
 * with an mbox "From " line (an mbox), or any other file (one message). Returns -errno
 * when it cannot be read, with a message in err.
 */
int bounce_reader_open(const char *path, struct bounce_reader **ret_reader, char *err,
                       size_t err_size);
/* bounce_reader_next - parse the next message into *ret_report and name it in *ret_where
 * ("FILE" or "FILE, message N"; valid until the next call). Returns 1 when a message was
 * read, 0 at the end. */
int bounce_reader_next(struct bounce_reader *reader, struct bounce_report *ret_report,
                       const char **ret_where);
struct bounce_reader *bounce_reader_free(struct bounce_reader *reader);

/* What an ingest did; each message counts in exactly one of the last six. */
struct bounce_counts {
    long messages;
    long permanent;   /* failures applied: the notice moved on (or became undeliverable) */
    long delayed;     /* delays logged */
    long unmatched;   /* not a DSN, or names no notice crier sent */
    long unparseable; /* not a message, or a DSN without a usable status */
    long duplicate;   /* this DSN was already ingested for this notice */
    long ignored;     /* names a notice, but nothing to do: the notice is no longer 'sent'
                         on email, or the DSN reports a success */
};

/*
 * bounce_ingest - apply every message of reader. Each message is its own transaction.
 * Channels are usable as for `crier run` (enabled in config and able to reach the person).
 * Returns 0, or the database's error (the counts so far are still filled): < 0 with
 * db_lost(db) when the server went away.
 */
int bounce_ingest(struct crier_db *db, const struct crier_config *config,
                  struct bounce_reader *reader, const char *actor,
                  struct bounce_counts *ret_counts);

/* bounce_kind_name - "failed", "delayed", ...; for messages. */
const char *bounce_kind_name(enum bounce_kind kind);

#endif
