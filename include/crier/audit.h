/*
 * audit.h - what auditors read: the dispatch log (filtered, streamed) and one person's
 * whole history with the proof of what they were sent. Read-only: crier_auditor may run
 * all of it. The sealing and verification of the log are seal.h's; the report is
 * report.h's.
 */
#ifndef CRIER_AUDIT_H
#define CRIER_AUDIT_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

enum audit_format {
    AUDIT_TABLE, /* aligned text, one line per row */
    AUDIT_CSV,   /* RFC 4180 with a header line */
    AUDIT_JSON,  /* one JSON object per line */
};

/* What `crier audit log` selects; NULL members do not filter. */
struct audit_log_query {
    const char *campaign;  /* name */
    const char *recipient; /* ref (needs campaign) */
    const char *channel;
    const char *since; /* a timestamp PostgreSQL reads (2026-11-01, 2026-11-01T12:00Z) */
    const char *until; /* exclusive */
    enum audit_format format;
};

/*
 * audit_log - stream the matching dispatch-log rows to out in log order with a cursor
 * (memory stays flat however many there are). *ret_rows: rows written. -ENOENT: no such
 * campaign; -EINVAL (why in err): a bad filter.
 */
int audit_log(struct crier_db *db, const struct audit_log_query *query, FILE *out, long *ret_rows,
              char *err, size_t err_size);

/*
 * audit_show - one person's history in a campaign: the recipient as loaded, every log row
 * about their notice, the holds that covered them and for how long, their print batch,
 * and for each message sent a re-render (from the templates copied at start, the recorded
 * render time and this configuration's channel settings) compared with the SHA-256
 * recorded when it was sent. out_dir (may be NULL): write each re-rendered content there.
 * Returns 0 when every sent content verified, 1 when one did not, < 0 on errors.
 */
int audit_show(struct crier_db *db, const struct crier_config *config, const char *campaign,
               const char *ref, bool json, const char *out_dir, FILE *out, char *err,
               size_t err_size);

#endif
