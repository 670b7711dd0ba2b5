/*
 * spool.h - the mail channel's spool: the names of a print batch's files and their moves
 * from pending to final, orphaned or void, and the recovery after a crash (docs/mail.md).
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
 *
 * Knows no SQL: what the database recorded comes through struct channel_recovery.
 */
#ifndef CRIER_SPOOL_H
#define CRIER_SPOOL_H

#include <stdint.h>
#include <stdio.h>

#include "crier/channel.h"

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

/* spool_batch_state - where batch id's files are: "printable", "pending", "orphan", "void",
 * "missing" ("no spool" when spool is empty). */
const char *spool_batch_state(const char *spool, const char *id);

/*
 * spool_recover - settle the spool's *.pending batches of channel with what the engine
 * recorded: a batch whose letters are all recorded becomes final; one never recorded (no
 * letter accepted in it and none still being sent under that claim) becomes *.orphan,
 * never printed; one only partly recorded (leases lost meanwhile) becomes *.orphan and its
 * recorded letters are taken back, to be printed again in a new batch. A batch still being
 * assembled by a live lane is left alone. Then the half-written batches (.B<ID>.*.tmp,
 * left by a lane killed before its flush): removed once the notice that names the batch
 * is no longer being sent under that claim (never printed: nothing of them was handed
 * over). One line per settled or removed batch on report (may be NULL); *ret_orphaned
 * counts orphaned batches.
 */
int spool_recover(const char *spool, const char *channel, const struct channel_recovery *engine,
                  FILE *report, long *ret_orphaned);

#endif
