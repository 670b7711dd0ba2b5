/*
 * backoff.h - how long a notice waits before its next try on the same channel.
 *
 * A pure function of the row's retry state (Postfix qmgr, OpenSMTPD scheduler): nothing
 * about retries is kept in memory.
 */
#ifndef CRIER_BACKOFF_H
#define CRIER_BACKOFF_H

/*
 * backoff_delay - seconds to wait after failed attempt number attempt (1 = the first).
 * The base doubles from min_seconds with each attempt and stops at max_seconds; jitter
 * (0..1) then shortens it by up to that fraction, using random_unit in [0,1), so that
 * notices that failed together do not all come back together. Never exceeds max_seconds,
 * never negative.
 */
long backoff_delay(long min_seconds, long max_seconds, double jitter, int attempt,
                   double random_unit);

#endif
