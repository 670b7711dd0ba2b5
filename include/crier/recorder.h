/*
 * recorder.h - one thread per process that records the lanes' outcomes while they go on
 * sending, all lanes' pending outcomes in one transaction (engine/core/recorder.c).
 */
#ifndef CRIER_RECORDER_H
#define CRIER_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

struct recorder;

/* What one lane has to record: the outcomes of its batch's notices at indexes[0..n-1];
 * the function sets recorded[k] for those it stored. data is the lane's (recorder_join). */
struct recorder_take {
    void *data;
    const size_t *indexes;
    size_t n;
    bool *recorded;
    struct recorder *recorder; /* the lane's place (recorder.c's) */
};

/* record_group_fn - store takes[0..n-1], one per lane with something pending, together
 * (called in the recorder's thread with whatever has been pushed since the last call:
 * group commit). */
typedef void (*record_group_fn)(void *data, struct recorder_take *takes, size_t n);

struct recorder_group;

/* recorder_group_start - a thread that calls fn(data, ...) for what its lanes push. */
int recorder_group_start(record_group_fn fn, void *data, struct recorder_group **ret_group);
/* recorder_join - a lane's place in the group, data its own (NULL for a NULL group); the
 * group owns it and frees it. */
struct recorder *recorder_join(struct recorder_group *group, void *data);
/* recorder_linger - let this lane's outcomes wait up to ms for others before the thread's
 * transaction (0, the default: record at once), unless a lane is waiting for its own
 * records. Only for a lane whose lost record cannot send anything twice (recorder.c). */
void recorder_linger(struct recorder *recorder, long ms);
/* recorder_begin - a new batch of count notices: nothing of it is recorded yet. begin, drain,
 * wait and recorded accept NULL (no recorder: nothing is recorded early). */
void recorder_begin(struct recorder *recorder, size_t count);
/* recorder_push - notice index of the batch has its final outcome: record it soon. Never
 * waits for the database (called while an SMTP session is open). */
void recorder_push(struct recorder *recorder, size_t index);
/* recorder_wait - wait until at most `most` of this lane's pushed outcomes are still being
 * recorded (the thread gives up at once on what it cannot record when the worker stops
 * meanwhile). */
void recorder_wait(struct recorder *recorder, size_t most);
/* recorder_drain - push what is left of the batch, and wait until all of it is recorded or
 * has failed; then recorder_recorded() tells which were stored. */
void recorder_drain(struct recorder *recorder);
bool recorder_recorded(const struct recorder *recorder, size_t index);
/* recorder_group_free - stop the thread (after what is pending: call it once every lane
 * has drained and stopped) and free it and its lanes' places; NULL-safe. */
struct recorder_group *recorder_group_free(struct recorder_group *group);

#endif
