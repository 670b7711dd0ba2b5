/*
 * mime.h - GMime, set up once per process, and a message parsed from bytes in memory:
 * bounces ingest (DSNs), the console's view of a sent email, and the email channel. Also
 * the email channel's text parts, with a cache of the quoted-printable encoding of the
 * lines that recur from message to message (mime.c says why the bytes stay the same).
 */
#ifndef CRIER_MIME_H
#define CRIER_MIME_H

#include <gmime/gmime.h>
#include <stddef.h>
#include <stdint.h>

/* mime_ready - g_mime_init() once for the process, whichever thread asks first. */
void mime_ready(void);

/* mime_message_parse - len bytes as one MIME message (the caller g_object_unref()s it),
 * or NULL when they are not one. Calls mime_ready(). */
GMimeMessage *mime_message_parse(const void *data, size_t len);

/* mime_text_part - text as a text/SUBTYPE; charset=utf-8 part, quoted-printable (so that it
 * passes relays without 8BITMIME; g_mime_text_part_set_text would pick the "smallest"
 * charset, e.g. ISO-8859-1). GMime encodes it when the message is written. */
GMimeObject *mime_text_part(const char *subtype, const char *text);

/* A cache of encoded lines, for one thread (an email lane): not locked. Bounded: it keeps
 * a line at its second meeting, at most 2,048, and starts again empty when full. */
struct mime_qp_cache;
struct mime_qp_stats {
    uint64_t hits, misses, clears; /* lines taken from the cache, encoded, times emptied */
};
struct mime_qp_cache *mime_qp_cache_new(void);
void mime_qp_cache_free(struct mime_qp_cache *cache);
struct mime_qp_stats mime_qp_cache_stats(const struct mime_qp_cache *cache);

/* mime_text_part_cached - the same part as mime_text_part(subtype, text), written to the
 * same bytes, its content encoded here line by line with the cache's help (cache NULL:
 * mime_text_part). */
GMimeObject *mime_text_part_cached(struct mime_qp_cache *cache, const char *subtype,
                                   const char *text);

#endif
