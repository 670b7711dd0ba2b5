/*
 * strbuf.h - the one growable byte buffer: array literals, COPY rows, JSON built by hand.
 *
 * The data is always NUL-terminated (the NUL is not counted in len), so a buffer of text
 * can be handed to libpq or printf as it is. Growth doubles, so appending byte by byte
 * costs amortised O(1). Allocation failure aborts, as xrealloc does everywhere in crier.
 */
#ifndef CRIER_STRBUF_H
#define CRIER_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *data; /* NULL until the first append */
    size_t len; /* bytes used, the terminating NUL not counted */
    size_t cap; /* bytes allocated */
};

/* strbuf_grow - make room for extra more bytes (and the NUL) without moving len. */
void strbuf_grow(struct strbuf *b, size_t extra);
/* strbuf_add - append n bytes. */
void strbuf_add(struct strbuf *b, const void *bytes, size_t n);
/* strbuf_adds - append a NUL-terminated string. */
void strbuf_adds(struct strbuf *b, const char *s);
/* strbuf_addc - append one byte. */
void strbuf_addc(struct strbuf *b, char c);
/* strbuf_str - the text so far; "" (never NULL) for a buffer never appended to. */
const char *strbuf_str(const struct strbuf *b);
/* strbuf_free - release the memory; the buffer is empty and usable again. */
void strbuf_free(struct strbuf *b);

#endif
