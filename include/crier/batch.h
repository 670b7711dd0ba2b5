/*
 * batch.h - print batches of the mail channel in the database: the batching window, the
 * engine's side of the spool's recovery after a crash, and `crier batch list|show|
 * mark-mailed|void` (docs/mail.md). Batch ids and the spool's files are spool.h's.
 */
#ifndef CRIER_BATCH_H
#define CRIER_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "crier/config.h"
#include "crier/db.h"
#include "crier/spool.h"

/* batch_window_due - should a lane of channel (one whose claim has a window: struct
 * channel_claim) claim for this campaign now? Yes when limit notices are ready, or the
 * oldest ready one has waited window_seconds. */
int batch_window_due(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                     long window_seconds, bool *ret_due);

/*
 * batch_reconcile - every enabled channel's recover op (channel_recover_all) with this
 * database as the engine's side: the mail channel's *.pending batches are settled with
 * what was recorded (spool_recover says how). One line per settled batch on report (may
 * be NULL), a warning in the log per orphaned one. *ret_orphaned counts orphaned batches
 * (may be NULL).
 */
int batch_reconcile(struct crier_db *db, const struct crier_config *config, FILE *report,
                    long *ret_orphaned);

/* The commands; errors in err (-ENOENT: no such campaign or batch, -EINVAL: bad input,
 * -EALREADY: nothing left to change). mark_mailed and void print their one-line result on
 * out, or, given a JSON object in json (--json), set its fields there instead. */
int batch_list(struct crier_db *db, const struct crier_config *config, const char *campaign,
               bool json, FILE *out, char *err, size_t err_size);
int batch_show(struct crier_db *db, const struct crier_config *config, const char *batch, bool json,
               FILE *out, char *err, size_t err_size);
int batch_mark_mailed(struct crier_db *db, const struct crier_config *config, const char *batch,
                      const char *date, const char *evidence, FILE *out, json_t *json, char *err,
                      size_t err_size);
int batch_void(struct crier_db *db, const struct crier_config *config, const char *batch,
               const char *reason, FILE *out, json_t *json, char *err, size_t err_size);

#endif
