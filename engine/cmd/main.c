/* main.c - crier's entry point; everything else is in libcrier (see engine/cmd/cli.c). */
#include "crier/cli.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/*
 * Keep up to TRIM_BYTES free at the top of each malloc arena instead of handing it back to
 * the kernel at every free. glibc trims with madvise(), which on a paravirtualised VM costs
 * a TLB shootdown across CPUs, and the next allocation faults the pages back in and zeroes
 * them. Two things churned an arena that way (docs/benchmarks.md, "glibc's trim" and "The
 * seal's own cost"):
 *   - a fax PDF opens several deflate streams and a batch PDF one per page (zlib: ~260 KiB
 *     of state each, through cairo): 2.49 against 2.80 ms of CPU per fax, 0.57 against
 *     0.71 ms per letter, by medians;
 *   - each cursor FETCH of the dispatch log, a PGresult freed before the next (seal.c
 *     fetches 1,000 rows, which stays under the threshold; 5,000 did not): `crier audit
 *     seal` over 600,000 rows took 0.51 s of crier's CPU with both against 0.85 s, and
 *     `verify` 0.43 s against 0.87 s; `crier run` seals the same way.
 * Set for every command: the cursors run in one-shot commands as in `crier run`. The cost
 * is at most this much more resident memory per arena (glibc makes up to 8 per core). An
 * operator's own threshold (GLIBC_TUNABLES, MALLOC_TRIM_THRESHOLD_) is left alone.
 */
#define TRIM_BYTES (1 << 20)

static void malloc_keep_free(void)
{
#ifdef M_TRIM_THRESHOLD
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL &&
        (tunables == NULL || strstr(tunables, "trim_threshold") == NULL))
        (void)mallopt(M_TRIM_THRESHOLD, TRIM_BYTES); /* ASan's allocator refuses: harmless */
#endif
}

int main(int argc, char **argv)
{
    malloc_keep_free();
    return cli_main(argc, argv);
}
