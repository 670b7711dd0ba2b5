/*
 * mime.c - GMime's one initialisation, the parse of a message held in memory, and the
 * quoted-printable text parts of the email channel, with a cache of the lines that are the
 * same in every message (see mime.h).
 *
 * bounces ingest, the console and the email channel each called g_mime_init() behind a
 * pthread_once of their own, and two of them wrote the stream-parser-message dance again.
 *
 * Why a cache of encoded lines. A notice's text is its template with a few per-person
 * values; most of its lines (the fixed paragraphs, the campaign's metadata) are the same
 * in every message of a template and jurisdiction, and quoted-printable encoding them again
 * for each message was the largest single cost of a message in crier's own CPU
 * (docs/benchmarks.md, "Fifth pass"). GMime's quoted-printable encoder keeps state only
 * within a line: at each line end it writes what is pending and starts again at column 0
 * with nothing pending, as when it starts. So a text's encoding is the encodings of its
 * lines, each encoded alone, one after the other, and the encoding of a line that recurs
 * can be kept. The cache is keyed by the line's own bytes, which holds everything that
 * could change it (template, jurisdiction, metadata, date); the part is then given to GMime
 * already encoded, and GMime writes it as it writes any other part. tests/unit/test_mime.c
 * compares the bytes with and without the cache.
 */
#include "crier/mime.h"
#include "crier/crier.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

void mime_ready(void)
{
    pthread_once(&mime_once, g_mime_init);
}

GMimeMessage *mime_message_parse(const void *data, size_t len)
{
    mime_ready();
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *message = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    return message;
}

/* part_with - a text/SUBTYPE; charset=utf-8 part whose content is stream, held in encoding
 * (DEFAULT: raw, for GMime to encode), sent quoted-printable. */
static GMimeObject *part_with(const char *subtype, GMimeStream *stream,
                              GMimeContentEncoding encoding)
{
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream, encoding);
    g_mime_part_set_content(GMIME_PART(part), content);
    g_object_unref(content);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
    g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    return GMIME_OBJECT(part);
}

GMimeObject *mime_text_part(const char *subtype, const char *text)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    GMimeObject *part = part_with(subtype, stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_object_unref(stream);
    return part;
}

/* ---- the cache of encoded lines ------------------------------------------------------- */

#define CACHE_SLOTS 4096 /* a power of two; at most half are used */
#define SEEN_BITS   65536

struct cached_line {
    uint64_t hash; /* 0: free slot */
    char *line;    /* the raw line, its '\n' included */
    size_t line_len;
    char *encoded;
    size_t encoded_len;
};

struct mime_qp_cache {
    struct cached_line slots[CACHE_SLOTS];
    size_t used;
    uint8_t seen[SEEN_BITS / 8]; /* lines met once, by hash: kept at their second meeting */
    struct mime_qp_stats stats;
};

struct mime_qp_cache *mime_qp_cache_new(void)
{
    return xcalloc(1, sizeof(struct mime_qp_cache));
}

static void cache_clear(struct mime_qp_cache *cache)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(cache->slots[i].line);
        free(cache->slots[i].encoded);
    }
    memset(cache->slots, 0, sizeof(cache->slots));
    memset(cache->seen, 0, sizeof(cache->seen));
    cache->used = 0;
}

void mime_qp_cache_free(struct mime_qp_cache *cache)
{
    if (cache == NULL)
        return;
    cache_clear(cache);
    free(cache);
}

struct mime_qp_stats mime_qp_cache_stats(const struct mime_qp_cache *cache)
{
    return cache->stats;
}

static char *memdup(const void *data, size_t len)
{
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    return copy;
}

/* line_hash - 8 bytes at a step (FNV-1a, a byte at a time, was most of the cache's own CPU);
 * never 0 (0 marks a free slot). Only a hint: a hit also compares the bytes. */
static uint64_t line_hash(const char *line, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, word;
    for (; len >= 8; line += 8, len -= 8) {
        memcpy(&word, line, 8);
        h = (h ^ word) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    word = 0;
    memcpy(&word, line, len);
    h = (h ^ word) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h ? h : 1;
}

/* encode - len bytes, quoted-printable, from a fresh encoder state, appended to out; flush
 * (the text's end) writes what the encoder still holds. */
static void encode(const char *in, size_t len, bool flush, GByteArray *out)
{
    GMimeEncoding encoder;
    g_mime_encoding_init_encode(&encoder, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    size_t at = out->len;
    g_byte_array_set_size(out, (guint)(at + g_mime_encoding_outlen(&encoder, len)));
    char *dst = (char *)out->data + at;
    size_t n = flush ? g_mime_encoding_flush(&encoder, in, len, dst)
                     : g_mime_encoding_step(&encoder, in, len, dst);
    g_byte_array_set_size(out, (guint)(at + n));
}

/* cache_line - line (its '\n' included) encoded onto out, from the cache when it is there;
 * kept when it was seen before. */
static void cache_line(struct mime_qp_cache *cache, const char *line, size_t len, GByteArray *out)
{
    uint64_t h = line_hash(line, len);
    size_t i = (size_t)h & (CACHE_SLOTS - 1);
    for (; cache->slots[i].hash; i = (i + 1) & (CACHE_SLOTS - 1)) {
        struct cached_line *c = &cache->slots[i];
        if (c->hash == h && c->line_len == len && memcmp(c->line, line, len) == 0) {
            g_byte_array_append(out, (const guint8 *)c->encoded, (guint)c->encoded_len);
            cache->stats.hits++;
            return;
        }
    }
    size_t at = out->len;
    encode(line, len, false, out);
    cache->stats.misses++;
    size_t bit = (size_t)(h >> 32) & (SEEN_BITS - 1);
    if (!(cache->seen[bit / 8] & (1u << (bit % 8)))) {
        cache->seen[bit / 8] |= (uint8_t)(1u << (bit % 8)); /* once: perhaps a person's */
        return;
    }
    if (cache->used >= CACHE_SLOTS / 2) { /* full: start again (a new template, say) */
        cache_clear(cache);
        cache->stats.clears++;
        return;
    }
    struct cached_line *c = &cache->slots[i];
    c->hash = h;
    c->line = memdup(line, len);
    c->line_len = len;
    c->encoded_len = out->len - at;
    c->encoded = memdup(out->data + at, c->encoded_len);
    cache->used++;
}

GMimeObject *mime_text_part_cached(struct mime_qp_cache *cache, const char *subtype,
                                   const char *text)
{
    if (cache == NULL)
        return mime_text_part(subtype, text);
    size_t len = strlen(text);
    GByteArray *encoded = g_byte_array_sized_new((guint)(len + len / 8 + 64));
    const char *p = text, *end = text + len;
    for (const char *nl; p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1)
        cache_line(cache, p, (size_t)(nl + 1 - p), encoded);
    encode(p, (size_t)(end - p), true, encoded); /* the last line, or nothing: the flush */
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(encoded); /* owns it */
    GMimeObject *part = part_with(subtype, stream, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    g_object_unref(stream);
    return part;
}
