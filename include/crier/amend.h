/*
 * amend.h - reaching the unreached: correcting a person's contacts (`crier campaign
 * amend`) and sending one person another copy (`crier notice resend`).
 *
 * A correction never rewrites the recipient snapshot: it appends a version
 * (crier.recipient_version, 010_unreached.sql) that the claim then reads. Every change is
 * logged with its old and new values, who made it and why. docs/unreached.md.
 */
#ifndef CRIER_AMEND_H
#define CRIER_AMEND_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

struct amend_options {
    const char *campaign;
    const char *csv_path;    /* corrections: a ref column and the contact columns to change */
    const char *reject_path; /* every rejected row, with its line and reason; may be NULL */
    const char *reason;      /* why (required), logged with each change */
    bool resend;             /* also send again to people already reached */
    bool progress;           /* a progress line on stderr, row by row (a terminal) */
    const char *actor;
};

struct amend_result {
    long rows;       /* data rows read */
    long amended;    /* people whose contacts changed (one new version each) */
    long unchanged;  /* rows that changed nothing */
    long requeued;   /* notices queued again on the first channel the contacts allow */
    long reached;    /* already reached and left alone (no --resend) */
    long in_flight;  /* being sent, printed or awaiting a fax status: left to that attempt */
    long no_channel; /* still no channel of the policy can reach them */
    long rejected;   /* rows refused (then nothing at all is applied) */
};

/*
 * amend_apply - apply a corrections file in one transaction. Each row is validated as a
 * load validates it (validate.c), merged over the person's current contacts (a column
 * absent from the file keeps its value; an empty one clears it). A row naming an unknown
 * ref, a ref seen earlier in the file, or a contact that does not validate is rejected
 * with its line; any rejected row rolls the whole file back (-EINVAL). diag gets the
 * first rejections, the reject file all of them.
 */
int amend_apply(struct crier_db *db, const struct crier_config *config,
                const struct amend_options *options, FILE *diag, struct amend_result *ret_result,
                char *err, size_t err_size);

/* The contacts one person's correction sets (NULL: none), already validated. */
struct amend_contacts {
    const char *field[FIELD_COUNT];
    bool mailable;
};

/*
 * amend_forward - a forwarding address (returns ingest): a new version of the person's
 * postal address, and the letter queued again on mail, once per person. Called inside the
 * caller's transaction. *ret_done: 1 amended and queued, 0 already forwarded once (nothing
 * done), -1 not possible (why in err, nothing done).
 */
int amend_forward(struct crier_db *db, const char *campaign, const char *ref,
                  const struct amend_contacts *address, const char *source_row, const char *actor,
                  int *ret_done, char *err, size_t err_size);

/*
 * notice_resend - another copy to one person on channel (which the campaign's policy must
 * list and the person's current contacts must allow), logged as a resend (event 'resend'),
 * not as a retry. -EBUSY while the notice is queued or in flight; -ENOENT no such
 * campaign or ref; -EINVAL channel not usable. err says which.
 */
int notice_resend(struct crier_db *db, const char *campaign, const char *ref, const char *channel,
                  const char *reason, const char *actor, char *err, size_t err_size);

#endif
