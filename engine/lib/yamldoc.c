/*
 * yamldoc.c - one YAML document through libyaml, its syntax errors placed as FILE:LINE:COL
 * (see yamldoc.h). The rules table and --meta had a loader each, with the same parser set-up
 * and the same message written twice.
 */
#include "crier/yamldoc.h"
#include "crier/crier.h"

#include <errno.h>
#include <stdio.h>

/* load - the document from a parser set to its input. */
static int load(yaml_parser_t *parser, const char *name, yaml_document_t *ret_document, char *err,
                size_t err_size)
{
    if (yaml_parser_load(parser, ret_document))
        return 0;
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    if (parser->context)
        return error_set(err, err_size, -EINVAL, "%s:%zu:%zu: %s (%s at line %zu column %zu)", name,
                         parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem,
                         parser->context, parser->context_mark.line + 1,
                         parser->context_mark.column + 1);
    return error_set(err, err_size, -EINVAL, "%s:%zu:%zu: %s", name, parser->problem_mark.line + 1,
                     parser->problem_mark.column + 1, problem);
}

int yaml_doc_from_file(FILE *file, const char *name, yaml_document_t *ret_document, char *err,
                       size_t err_size)
{
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, file);
    int r = load(&parser, name, ret_document, err, err_size);
    yaml_parser_delete(&parser);
    return r;
}

int yaml_doc_from_text(const char *text, size_t len, const char *name,
                       yaml_document_t *ret_document, char *err, size_t err_size)
{
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int r = load(&parser, name, ret_document, err, err_size);
    yaml_parser_delete(&parser);
    return r;
}
