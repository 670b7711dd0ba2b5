/*
 * batch.h - print batches of the mail channel: their ids, their files in the spool, and
 * the database side of `crier batch list|show|mark-mailed|void` (docs/mail.md).
 *
 * A batch is named by the claim that made it: "<campaign>-<seq>-<attempt>" of the lowest
 * notice in it. A notice's attempt grows with every claim, so the name is unique without
 * asking the database, and the channel (which knows no SQL) can name its files before
 * anything is recorded.
 *
 * Files of batch ID in the spool: .B<ID>.{pdf,csv,sha256}.tmp while written,
 * B<ID>.*.pending once durable and before the database knows the batch, B<ID>.* once
 * recorded (printable), B<ID>.*.orphan when the database never recorded it (never to be
 * printed), B<ID>.*.void after `crier batch void`.
 */
#ifndef CRIER_BATCH_H
#define CRIER_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "crier/config.h"
#include "crier/db.h"

#define BATCH_ID_MAX 64

/* The kinds of file of one batch, in the order they are made final (csv last: the
 * presence of B<ID>.csv.pending alone means "not final yet"). */
extern const char *const batch_file_kinds[3]; /* "pdf", "sha256", "csv" */

/* batch_id_parse - "2-17-1" or "B2-17-1" into its parts and its canonical form. */
int batch_id_parse(const char *text, int64_t *ret_campaign, int64_t *ret_seq, int *ret_attempt,
                   char canonical[BATCH_ID_MAX]);

/* batch_files_rename - every B<ID>.<kind><from> that exists becomes B<ID>.<kind><to>, then
 * the directory is fsync'd. Suffixes are "", ".pending", ".orphan", ".void". *ret_renamed
 * counts the files moved (may be NULL). */
int batch_files_rename(const char *spool, const char *id, const char *from, const char *to,
                       int *ret_renamed);

/* batch_window_due - should the mail lane claim a batch of this campaign now? Yes when
 * letters_per_batch letters are ready, or the oldest ready one has waited batch_window. */
int batch_window_due(struct crier_db *db, const struct crier_config *config, int64_t campaign_id,
                     bool *ret_due);

/*
 * batch_reconcile - settle the spool's *.pending batches with the database: a batch whose
 * letters are all recorded becomes final; one the database never recorded (no letter
 * batched and none still being sent under that claim) becomes *.orphan, never printed;
 * one only partly recorded (leases lost meanwhile) becomes *.orphan and its recorded
 * letters go back to ready (logged), to be printed again in a new batch. A batch still
 * being assembled by a live lane is left alone. One line per settled batch on report
 * (may be NULL). *ret_orphaned counts orphaned batches (may be NULL).
 */
int batch_reconcile(struct crier_db *db, const struct crier_config *config, FILE *report,
                    long *ret_orphaned);

/* The commands; errors in err (-ENOENT: no such campaign or batch, -EINVAL: bad input,
 * -EALREADY: nothing left to change). */
int batch_list(struct crier_db *db, const struct crier_config *config, const char *campaign,
               bool json, FILE *out, char *err, size_t err_size);
int batch_show(struct crier_db *db, const struct crier_config *config, const char *batch, bool json,
               FILE *out, char *err, size_t err_size);
int batch_mark_mailed(struct crier_db *db, const struct crier_config *config, const char *batch,
                      const char *date, const char *evidence, FILE *out, char *err,
                      size_t err_size);
int batch_void(struct crier_db *db, const struct crier_config *config, const char *batch,
               const char *reason, FILE *out, char *err, size_t err_size);

#endif
