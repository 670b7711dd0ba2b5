/*
 * test_recorder.c - the process's recorder thread (engine/core/recorder.c): what lanes push
 * while a statement is on its way goes out together in the next call, one take per lane;
 * a wait returns only once the lane's outcomes are stored; what the function did not store
 * stays unrecorded after a drain; a lingering lane's outcomes wait for company until a lane
 * waits for its own or a lane that may not linger pushes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "crier/recorder.h"

#define LANES 3
#define CALLS 16

/* What the record function saw, and a gate that holds its first call. */
struct log {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool hold_first; /* the first call waits until released */
    bool entered, released;
    size_t calls;
    size_t takes[CALLS];           /* takes per call */
    size_t seen[CALLS][LANES];     /* per call: indexes per lane */
    int lane_of[LANES];            /* data pointers are &lane_of[i] */
    int refuse_lane, refuse_index; /* not stored (-1: none) */
};

static void record(void *data, struct recorder_take *takes, size_t n)
{
    struct log *log = data;
    pthread_mutex_lock(&log->lock);
    size_t call = log->calls++;
    if (call == 0 && log->hold_first) {
        log->entered = true;
        pthread_cond_broadcast(&log->changed);
        while (!log->released)
            pthread_cond_wait(&log->changed, &log->lock);
    }
    if (call < CALLS)
        log->takes[call] = n;
    for (size_t k = 0; k < n; k++) {
        int lane = *(int *)takes[k].data;
        if (call < CALLS)
            log->seen[call][lane] += takes[k].n;
        for (size_t j = 0; j < takes[k].n; j++)
            takes[k].recorded[j] =
                !(lane == log->refuse_lane && (int)takes[k].indexes[j] == log->refuse_index);
    }
    pthread_cond_broadcast(&log->changed); /* calls_reach */
    pthread_mutex_unlock(&log->lock);
}

static struct log *log_new(bool hold_first, int refuse_lane, int refuse_index)
{
    struct log *log = test_calloc(1, sizeof(*log));
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->changed, NULL);
    log->hold_first = hold_first;
    log->refuse_lane = refuse_lane;
    log->refuse_index = refuse_index;
    for (int i = 0; i < LANES; i++)
        log->lane_of[i] = i;
    return log;
}

static void log_free(struct log *log)
{
    pthread_cond_destroy(&log->changed);
    pthread_mutex_destroy(&log->lock);
    test_free(log);
}

/* group_start - a recorder thread for log, and LANES lanes in it, each with a batch of
 * count notices. */
static struct recorder_group *group_start(struct log *log, struct recorder *lane[LANES],
                                          size_t count)
{
    struct recorder_group *group = NULL;
    assert_int_equal(recorder_group_start(record, log, &group), 0);
    for (int i = 0; i < LANES; i++) {
        lane[i] = recorder_join(group, &log->lane_of[i]);
        recorder_begin(lane[i], count);
    }
    return group;
}

/* While the first statement is on its way, three lanes push: the next call carries all
 * three, one take each, and each lane's wait returns once its own are stored. */
static void test_group_commit(void **state)
{
    (void)state;
    struct log *log = log_new(true, -1, -1);
    struct recorder *lane[LANES];
    struct recorder_group *group = group_start(log, lane, 4);
    recorder_push(lane[0], 0);
    pthread_mutex_lock(&log->lock);
    while (!log->entered)
        pthread_cond_wait(&log->changed, &log->lock);
    pthread_mutex_unlock(&log->lock);
    recorder_push(lane[0], 1);
    recorder_push(lane[1], 0);
    recorder_push(lane[2], 3);
    recorder_push(lane[2], 3); /* twice: once is recorded */
    pthread_mutex_lock(&log->lock);
    log->released = true;
    pthread_cond_broadcast(&log->changed);
    pthread_mutex_unlock(&log->lock);
    for (int i = 0; i < LANES; i++)
        recorder_wait(lane[i], 0);
    assert_true(recorder_recorded(lane[0], 0));
    assert_true(recorder_recorded(lane[0], 1));
    assert_true(recorder_recorded(lane[1], 0));
    assert_true(recorder_recorded(lane[2], 3));
    assert_false(recorder_recorded(lane[1], 1));
    pthread_mutex_lock(&log->lock);
    assert_int_equal(log->calls, 2);
    assert_int_equal(log->takes[0], 1);
    assert_int_equal(log->seen[0][0], 1);
    assert_int_equal(log->takes[1], LANES);
    assert_int_equal(log->seen[1][0], 1);
    assert_int_equal(log->seen[1][1], 1);
    assert_int_equal(log->seen[1][2], 1);
    pthread_mutex_unlock(&log->lock);
    group = recorder_group_free(group);
    assert_null(group);
    log_free(log);
}

/* A drain pushes the rest of the batch and waits; what the function refused is left
 * unrecorded; a new batch starts with nothing recorded. */
static void test_drain_and_refusal(void **state)
{
    (void)state;
    struct log *log = log_new(false, 1, 2);
    struct recorder *lane[LANES];
    struct recorder_group *group = group_start(log, lane, 5);
    for (int i = 0; i < LANES; i++)
        recorder_push(lane[i], 4);
    for (int i = 0; i < LANES; i++)
        recorder_drain(lane[i]);
    for (int i = 0; i < LANES; i++)
        for (size_t j = 0; j < 5; j++)
            assert_int_equal(recorder_recorded(lane[i], j), !(i == 1 && j == 2));
    recorder_begin(lane[1], 7);
    assert_false(recorder_recorded(lane[1], 0));
    recorder_drain(lane[1]);
    assert_true(recorder_recorded(lane[1], 6));
    assert_false(recorder_recorded(lane[1], 2));
    recorder_group_free(group);
    log_free(log);
}

#define LONG_LINGER_MS 600000 /* ten minutes: only what the test does can end it */

/* calls_reach - wait up to 10 s for the record function's calls to reach want. */
static bool calls_reach(struct log *log, size_t want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&log->lock);
    int e = 0;
    while (log->calls < want && e == 0)
        e = pthread_cond_timedwait(&log->changed, &log->lock, &until);
    bool reached = log->calls >= want;
    pthread_mutex_unlock(&log->lock);
    return reached;
}

/* A lingering lane's pushes gather into one call, which its drain starts at once; a push by
 * a lane that may not linger ends the linger of what is pending with it. */
static void test_linger(void **state)
{
    (void)state;
    struct log *log = log_new(false, -1, -1);
    struct recorder *lane[LANES];
    struct recorder_group *group = group_start(log, lane, 4);
    recorder_linger(lane[0], LONG_LINGER_MS);
    recorder_linger(lane[1], LONG_LINGER_MS);
    recorder_push(lane[0], 0);
    recorder_push(lane[0], 2);
    recorder_push(lane[1], 1);
    /* they linger: without it the thread records at once (a loaded machine could delay
     * that past 0.3 s, which would let this pass without a linger, never fail with one) */
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300000000L};
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&log->lock);
    assert_int_equal(log->calls, 0);
    pthread_mutex_unlock(&log->lock);
    recorder_drain(lane[0]); /* a lane waits for its own: the linger ends for all of them */
    assert_true(recorder_recorded(lane[0], 3));
    assert_true(calls_reach(log, 1));
    pthread_mutex_lock(&log->lock);
    assert_int_equal(log->takes[0], 2);
    assert_int_equal(log->seen[0][0], 4); /* 0 and 2 pushed, 1 and 3 by the drain */
    assert_int_equal(log->seen[0][1], 1);
    pthread_mutex_unlock(&log->lock);

    /* a lingering push waits; one from a lane that may not linger takes it along */
    recorder_push(lane[1], 3);
    recorder_push(lane[2], 0);
    assert_true(calls_reach(log, 2));
    pthread_mutex_lock(&log->lock);
    assert_int_equal(log->takes[1], 2);
    assert_int_equal(log->seen[1][1], 1);
    assert_int_equal(log->seen[1][2], 1);
    pthread_mutex_unlock(&log->lock);
    recorder_drain(lane[1]);
    recorder_drain(lane[2]);
    recorder_group_free(group);
    log_free(log);
}

/* No group: a lane has no recorder, and the calls a lane makes on it do nothing. */
static void test_null(void **state)
{
    (void)state;
    struct recorder *none = recorder_join(NULL, NULL);
    assert_null(none);
    recorder_begin(none, 3);
    recorder_wait(none, 0);
    recorder_drain(none);
    assert_false(recorder_recorded(none, 0));
    assert_null(recorder_group_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_drain_and_refusal),
        cmocka_unit_test(test_linger),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
