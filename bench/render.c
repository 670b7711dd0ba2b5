/*
 * render.c - the renderer alone, for bench/render.sh: N letters through one letter cache,
 * as the mail channel's lane renders them (one batch PDF, shared blocks as forms, an IMb
 * each), or N faxes as the fax channel's lane does (one PDF each, no windows, a cache
 * without forms). No database, no spool, no network: what is left is channels/letter.c
 * and the libraries under it, so that valgrind can count its instructions, which do not
 * depend on what else the machine is doing.
 *
 * usage: render-bench letter|fax BODY NAME REF N [OUT.pdf]
 *   OUT   the batch PDF, or the last fax
 *   BODY  a rendered letter.md (crier campaign proof writes one)
 *   NAME  the person's name as it stands in BODY; REF the same for the reference
 * Document i has NAME and REF replaced by "Bench Person <i>" and "B<i, 7 digits>", its
 * own street number and IMb serial. Prints the documents, pages and bytes made.
 */
#include "crier/crier.h"
#include "crier/letter.h"
#include <cairo-pdf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* replace_all - text with every `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), count = 0;
    for (const char *p = strstr(text, from); p != NULL; p = strstr(p + from_len, from))
        count++;
    char *out = xmalloc(strlen(text) + count * to_len + 1);
    char *w = out;
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        if (hit == NULL) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, to, to_len);
        w += to_len;
        p = hit + from_len;
    }
    return out;
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "render-bench: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t size = 0, capacity = 4096;
    char *text = xmalloc(capacity);
    size_t n;
    while ((n = fread(text + size, 1, capacity - size - 1, file)) > 0) {
        size += n;
        if (capacity - size < 2)
            text = xrealloc(text, capacity *= 2);
    }
    fclose(file);
    text[size] = '\0';
    return text;
}

/* write_file - data to path; false (said) when it cannot be written. */
static bool write_file(const char *path, const unsigned char *data, size_t len)
{
    FILE *file = fopen(path, "wb");
    if (file == NULL || fwrite(data, 1, len, file) != len || fclose(file) != 0) {
        fprintf(stderr, "render-bench: %s: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

/* The batch PDF's bytes: counted, and written to OUT when one is given. */
struct sink {
    FILE *out;
    size_t bytes;
};

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int length)
{
    struct sink *sink = closure;
    sink->bytes += length;
    if (sink->out != NULL && fwrite(data, 1, length, sink->out) != length)
        return CAIRO_STATUS_WRITE_ERROR;
    return CAIRO_STATUS_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "letter") != 0 && strcmp(argv[1], "fax") != 0)) {
        fprintf(stderr, "usage: render-bench letter|fax BODY NAME REF N [OUT.pdf]\n");
        return 2;
    }
    bool fax = strcmp(argv[1], "fax") == 0;
    char *body = read_file(argv[2]);
    const char *name = argv[3], *ref = argv[4];
    long n = strtol(argv[5], NULL, 10);
    if (n < 0 || strstr(body, name) == NULL || strstr(body, ref) == NULL) {
        fprintf(stderr, "render-bench: N must be >= 0, and NAME and REF must stand in BODY\n");
        return 2;
    }

    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.windows = !fax;
    layout.grid = !fax; /* as channels/fax.c */
    struct letter_cache *cache = letter_cache_new(&layout, !fax);
    const char *return_address[] = {"Example Corp Privacy Office", "100 Main Street",
                                    "Springfield, IL 62701", NULL};
    struct letter_imb imb = {"00", "270", "123456", NULL, ""};
    size_t bytes = 0; /* the faxes' */
    struct sink sink = {NULL, 0};
    long pages = 0;
    cairo_surface_t *surface = NULL;
    cairo_t *cr = NULL;
    if (!fax) {
        if (argc > 6 && (sink.out = fopen(argv[6], "wb")) == NULL) {
            fprintf(stderr, "render-bench: %s: %s\n", argv[6], strerror(errno));
            return 2;
        }
        surface = cairo_pdf_surface_create_for_stream(sink_write, &sink, layout.page_width,
                                                      layout.page_height);
        letter_pdf_metadata(surface, "2026-12-04");
        cr = cairo_create(surface);
    }
    for (long i = 0; i < n; i++) {
        char person[64], reference[32], serial[16], street[64];
        snprintf(person, sizeof(person), "Bench Person %ld", i + 1);
        snprintf(reference, sizeof(reference), "B%07ld", i + 1);
        snprintf(serial, sizeof(serial), "%09ld", i + 1);
        snprintf(street, sizeof(street), "%ld Elm Street", i % 9999 + 1);
        char *named = replace_all(body, name, person);
        char *text = replace_all(named, ref, reference);
        imb.serial = serial;
        struct letter_input in = {
            .return_address = return_address,
            .name = person,
            .address = {street, NULL, "Springfield", "IL", "62704"},
            .date = "2026-12-04",
            .body = text,
            .imb = fax ? NULL : &imb,
        };
        char err[256];
        int count = 0, r;
        if (fax) {
            unsigned char *pdf = NULL;
            size_t len = 0;
            r = letter_render_pdf_cached(cache, &in, &pdf, &len, &count, err, sizeof(err));
            bytes += len;
            if (r == 0 && i == n - 1 && argc > 6 && !write_file(argv[6], pdf, len))
                return 2;
            free(pdf);
        } else {
            r = letter_render_cached(cr, cache, &in, &count, err, sizeof(err));
        }
        if (r < 0) {
            fprintf(stderr, "render-bench: document %ld: %s\n", i + 1, err);
            return 1;
        }
        pages += count;
        free(named);
        free(text);
    }
    if (!fax) {
        cairo_destroy(cr);
        cairo_surface_finish(surface);
        if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
            fprintf(stderr, "render-bench: %s\n",
                    cairo_status_to_string(cairo_surface_status(surface)));
            return 1;
        }
        cairo_surface_destroy(surface);
        if (sink.out != NULL && fclose(sink.out) != 0) {
            fprintf(stderr, "render-bench: %s: %s\n", argv[6], strerror(errno));
            return 1;
        }
        bytes = sink.bytes;
    }
    letter_cache_free(cache);
    free(body);
    printf("%ld %s, %ld pages, %zu bytes\n", n, fax ? "faxes" : "letters", pages, bytes);
    return 0;
}
