/*
 * progress.h - a progress line on the terminal for commands that stream many rows (audit
 * export, audit verify, audit report, campaign amend): redrawn in place on stderr at most
 * five times a second, ended with the final count. Off unless the caller turns it on,
 * which it does only when stderr is a terminal and the output is not JSON: a pipe or a log
 * never gets carriage returns.
 */
#ifndef CRIER_PROGRESS_H
#define CRIER_PROGRESS_H

#include <stdbool.h>

struct progress {
    bool on;
    bool drawn;       /* a line is on the screen */
    const char *what; /* "audit export" */
    long count;       /* rows so far */
    double last;      /* when it was last drawn (monotonic seconds) */
};

void progress_start(struct progress *p, bool on, const char *what);
/* progress_add - n rows more; redraws when 0.2 s have passed since the last time. */
void progress_add(struct progress *p, long n);
/* progress_clear - erase the line before other output to the terminal; the next redraw
 * brings it back. */
void progress_clear(struct progress *p);
/* progress_end - the final count on its own line (only if something was on). */
void progress_end(struct progress *p);

#endif
