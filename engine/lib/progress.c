/*
 * progress.c - the progress line of progress.h: stderr only, and only when asked.
 */
#include "crier/progress.h"
#include "crier/crier.h"

#include <stdio.h>

void progress_start(struct progress *p, bool on, const char *what)
{
    *p = (struct progress){.on = on, .what = what, .last = monotonic_seconds()};
}

static void draw(struct progress *p, const char *end)
{
    fprintf(stderr, "\r%s: %ld rows%s", p->what, p->count, end);
    fflush(stderr);
    p->drawn = true;
}

void progress_add(struct progress *p, long n)
{
    p->count += n;
    if (!p->on)
        return;
    double now = monotonic_seconds();
    if (now - p->last < 0.2)
        return;
    p->last = now;
    draw(p, "");
}

void progress_clear(struct progress *p)
{
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr); /* to the start, and erase to the end of the line */
        fflush(stderr);
        p->drawn = false;
    }
}

void progress_end(struct progress *p)
{
    if (p->on)
        draw(p, ", done\n");
    p->on = false;
}
