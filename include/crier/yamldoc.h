/*
 * yamldoc.h - YAML read with libyaml, its syntax errors as FILE:LINE:COL: the one loader
 * of crier.yaml (config/config.c), the rules table (engine/core/rules.c) and --meta
 * (config/meta.c). What the nodes mean is each caller's business.
 */
#ifndef CRIER_YAMLDOC_H
#define CRIER_YAMLDOC_H

#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

/*
 * A stream read a document at a time, from len bytes of text the caller keeps until
 * yaml_stream_close. A syntax error is "NAME:LINE:COL: problem": libyaml places its
 * scanner's and parser's errors with marks, and its reader's (a byte that is not UTF-8)
 * with a byte offset, which is turned into a line and column here.
 */
struct yaml_stream {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *name;
};
/* yaml_stream_open - 0, or -ENOMEM with "NAME: out of memory" in err (nothing to close). */
int yaml_stream_open(struct yaml_stream *stream, const char *text, size_t len, const char *name,
                     char *err, size_t err_size);
/* yaml_stream_next - the next document into *ret_document (the caller yaml_document_delete()s
 * it; one without a root node means the stream has ended), or -EINVAL / -ENOMEM with the
 * message in err. */
int yaml_stream_next(struct yaml_stream *stream, yaml_document_t *ret_document, char *err,
                     size_t err_size);
void yaml_stream_close(struct yaml_stream *stream);

/* yaml_doc_from_file, yaml_doc_from_text - the first YAML document of an open file, or of
 * len bytes of text; name names it in messages. 0 (the caller yaml_document_delete()s
 * *ret_document), or < 0 with "NAME:LINE:COL: problem" (or "NAME: ...") in err. */
int yaml_doc_from_file(FILE *file, const char *name, yaml_document_t *ret_document, char *err,
                       size_t err_size);
int yaml_doc_from_text(const char *text, size_t len, const char *name,
                       yaml_document_t *ret_document, char *err, size_t err_size);

#endif
