/*
 * seal.h - the sealed dispatch log: blocks of log rows whose SHA-256 hashes chain, one
 * chain per campaign, so that any edit, deletion, insertion or reordering of a sealed row
 * is detected, even one made by a superuser who bypasses the append-only triggers.
 *
 * A block's hash (encoding version 1; docs/audit.md gives it byte for byte):
 *
 *   SHA-256( row_hash(1) || ... || row_hash(n) ||
 *            "crier-seal v1\ncampaign C\nseq S\nlo L\nhi H\nrows N\nprev P\n" )
 *
 * where row_hash is the SHA-256 of the row's canonical encoding: each of SEAL_FIELDS in
 * order, "~" when NULL, else its decimal byte length, ':' and its text (timestamps in UTC
 * as YYYY-MM-DDTHH:MM:SS.ffffffZ), then '\n'. The block covers the campaign's rows with
 * L < id <= H, in id order; P is the previous block's hash (64 zeros for the first).
 * Each block also keeps a locator (per row: its id and the first 8 bytes of its hash) so
 * that a broken block can name the row that changed; the locator is not trusted, only used
 * to point.
 */
#ifndef CRIER_SEAL_H
#define CRIER_SEAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "crier/db.h"

/* The dispatch log's columns in canonical order (version 1). */
#define SEAL_FIELDS 18
extern const char *const seal_field_names[SEAL_FIELDS];

/*
 * seal_run - seal every log row written so far, in all campaigns: waits (at most
 * lock_timeout_ms) until no transaction that wrote the log is still open, then hashes the
 * unsealed rows into blocks of at most block_rows rows. -EAGAIN when the wait timed out
 * (nothing sealed: try again later). One sealer hashes at a time: with SEAL_WAIT a second
 * one waits its turn (`crier audit seal`); with SEAL_SKIP it returns -EBUSY at once, as
 * `crier run` does (another process is sealing: this round is its). *ret_rows and
 * *ret_blocks: what was sealed.
 */
enum seal_turn { SEAL_WAIT, SEAL_SKIP };
int seal_run(struct crier_db *db, enum seal_turn turn, long block_rows, long lock_timeout_ms,
             long *ret_rows, long *ret_blocks);

/*
 * seal_verify - recompute every chain (or campaign's) from the database and write a report
 * to out: per campaign, intact with its head hash, or the first broken block and row.
 * expect_head (may be NULL): a head hash handed out earlier, which must be one of the
 * chain's blocks (it finds a removed newest block). Returns 0 when everything is intact,
 * 1 when something is broken, < 0 on errors (-ENOENT: no such campaign).
 */
int seal_verify(struct crier_db *db, const char *campaign, const char *expect_head, bool json,
                FILE *out);

/* seal_verify_file - the same for an export (seal_export), with no database at all;
 * -EINVAL with FILE:LINE: why in err when the file is not a whole export. */
int seal_verify_file(const char *path, const char *expect_head, bool json, FILE *out, char *err,
                     size_t err_size);

/* seal_progress - draw a progress line on stderr during export and verify (the caller
 * asks only when stderr is a terminal and the output is not JSON). */
void seal_progress(bool on);

/* seal_head - the newest block of each chain (or campaign's): its number and hash. */
int seal_head(struct crier_db *db, const char *campaign, bool json, FILE *out);

/*
 * seal_export - write the campaign's (or every campaign's) log rows and seal blocks to out
 * as JSON lines, in chain order, streamed with a cursor. *ret_rows: rows written.
 */
int seal_export(struct crier_db *db, const char *campaign, FILE *out, long *ret_rows);

#endif
