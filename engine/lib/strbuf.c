/*
 * strbuf.c - the growable buffer (see strbuf.h).
 *
 * Three copies of this once lived in queue.c, poll.c and import.c, each with its own
 * start size and its own idea of whether the NUL counts; this is the one they use now.
 */
#include "crier/strbuf.h"
#include "crier/crier.h"

#include <stdlib.h>
#include <string.h>

#define STRBUF_MIN 256 /* first allocation: most array literals fit */

void strbuf_grow(struct strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : STRBUF_MIN;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void strbuf_add(struct strbuf *b, const void *bytes, size_t n)
{
    strbuf_grow(b, n);
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void strbuf_adds(struct strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

void strbuf_addc(struct strbuf *b, char c)
{
    strbuf_grow(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

const char *strbuf_str(const struct strbuf *b)
{
    return b->data ? b->data : "";
}

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
