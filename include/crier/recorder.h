/*
 * recorder.h - a lane's second thread, which records outcomes while the lane goes on
 * sending (engine/core/recorder.c).
 */
#ifndef CRIER_RECORDER_H
#define CRIER_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

/* record_fn - store the outcomes of the batch's notices at indexes[0..n-1] (called in the
 * recorder's thread, with whatever has been pushed since the last call: group commit);
 * recorded[k] says which were stored. */
typedef void (*record_fn)(void *data, const size_t *indexes, size_t n, bool *recorded);

struct recorder;

/* recorder_start - a thread that calls fn(data, ...) for what recorder_push hands it. */
int recorder_start(record_fn fn, void *data, struct recorder **ret_recorder);
/* recorder_begin - a new batch of count notices: nothing of it is recorded yet. begin, drain
 * and recorded accept NULL (no recorder: nothing is recorded early). */
void recorder_begin(struct recorder *recorder, size_t count);
/* recorder_push - notice index of the batch has its final outcome: record it soon. Never
 * waits for the database (called while an SMTP session is open). */
void recorder_push(struct recorder *recorder, size_t index);
/* recorder_wait - wait until at most `most` pushed outcomes are still being recorded (the
 * thread gives up at once on what it cannot record when the worker stops meanwhile). */
void recorder_wait(struct recorder *recorder, size_t most);
/* recorder_drain - push what is left of the batch, and wait until all of it is recorded or
 * has failed; then recorder_recorded() tells which were stored. */
void recorder_drain(struct recorder *recorder);
bool recorder_recorded(const struct recorder *recorder, size_t index);
/* recorder_free - stop the thread (after what it is doing) and free; NULL-safe. */
struct recorder *recorder_free(struct recorder *recorder);

#endif
