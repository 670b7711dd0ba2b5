/*
 * backoff.c - retry delays: exponential from a minimum to a maximum, with jitter.
 *
 * Pure: no clock, no randomness of its own, no state. The caller passes the attempt count
 * stored in the notice row and a random number.
 */
#include "crier/backoff.h"

long backoff_delay(long min_seconds, long max_seconds, double jitter, int attempt,
                   double random_unit)
{
    if (min_seconds < 0)
        min_seconds = 0;
    if (max_seconds < min_seconds)
        max_seconds = min_seconds;
    if (attempt < 1)
        attempt = 1;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    if (random_unit < 0 || random_unit >= 1)
        random_unit = 0;

    long base = min_seconds;
    for (int i = 1; i < attempt && base < max_seconds; i++)
        base = base > max_seconds / 2 ? max_seconds : base * 2;
    if (base > max_seconds)
        base = max_seconds;
    long shortened = (long)((double)base * jitter * random_unit);
    return base - shortened;
}
