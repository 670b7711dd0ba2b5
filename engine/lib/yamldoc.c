/*
 * yamldoc.c - YAML documents through libyaml, their syntax errors placed as FILE:LINE:COL
 * (see yamldoc.h). crier.yaml, the rules table and --meta each had a loader, with the same
 * parser set-up and the same message written again; the rules table's and --meta's placed
 * a byte that is not UTF-8 at 1:1.
 */
#include "crier/yamldoc.h"
#include "crier/crier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int yaml_stream_open(struct yaml_stream *stream, const char *text, size_t len, const char *name,
                     char *err, size_t err_size)
{
    memset(stream, 0, sizeof(*stream));
    if (!yaml_parser_initialize(&stream->parser))
        return error_set(err, err_size, -ENOMEM, "%s: out of memory", name);
    stream->text = text != NULL ? text : "";
    stream->len = text != NULL ? len : 0;
    stream->name = name;
    yaml_parser_set_input_string(&stream->parser, (const unsigned char *)stream->text, stream->len);
    return 0;
}

int yaml_stream_next(struct yaml_stream *stream, yaml_document_t *ret_document, char *err,
                     size_t err_size)
{
    yaml_parser_t *parser = &stream->parser;
    if (yaml_parser_load(parser, ret_document))
        return 0;
    const char *name = stream->name;
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    if (parser->error == YAML_MEMORY_ERROR)
        return error_set(err, err_size, -ENOMEM, "%s: out of memory", name);
    if (parser->error == YAML_READER_ERROR) {
        size_t line, column;
        text_position(stream->text, stream->len, parser->problem_offset, &line, &column);
        return error_set(err, err_size, -EINVAL, "%s:%zu:%zu: %s", name, line, column, problem);
    }
    if (parser->context)
        return error_set(err, err_size, -EINVAL, "%s:%zu:%zu: %s (%s at line %zu column %zu)", name,
                         parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem,
                         parser->context, parser->context_mark.line + 1,
                         parser->context_mark.column + 1);
    return error_set(err, err_size, -EINVAL, "%s:%zu:%zu: %s", name, parser->problem_mark.line + 1,
                     parser->problem_mark.column + 1, problem);
}

void yaml_stream_close(struct yaml_stream *stream)
{
    yaml_parser_delete(&stream->parser);
}

int yaml_doc_from_text(const char *text, size_t len, const char *name,
                       yaml_document_t *ret_document, char *err, size_t err_size)
{
    struct yaml_stream stream;
    int r = yaml_stream_open(&stream, text, len, name, err, err_size);
    if (r < 0)
        return r;
    r = yaml_stream_next(&stream, ret_document, err, err_size);
    yaml_stream_close(&stream);
    return r;
}

int yaml_doc_from_file(FILE *file, const char *name, yaml_document_t *ret_document, char *err,
                       size_t err_size)
{
    /* read whole, so that a reader error's byte offset can be placed on its line */
    char *text = NULL;
    size_t len = 0;
    FILE *buffer = open_memstream(&text, &len);
    if (buffer == NULL)
        return error_set(err, err_size, -ENOMEM, "%s: out of memory", name);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0)
        fwrite(chunk, 1, n, buffer);
    int code = ferror(file) ? (errno != 0 ? errno : EIO) : 0;
    if (fclose(buffer) != 0 && code == 0)
        code = ENOMEM;
    int r = code != 0 ? error_set(err, err_size, -code, "%s: cannot read: %s", name, strerror(code))
                      : yaml_doc_from_text(text, len, name, ret_document, err, err_size);
    free(text);
    return r;
}
