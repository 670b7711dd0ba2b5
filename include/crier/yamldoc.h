/*
 * yamldoc.h - a YAML document read with libyaml, its syntax errors as FILE:LINE:COL: the
 * one loader of the rules table (engine/core/rules.c) and of --meta (config/meta.c).
 * What the nodes mean is each caller's business.
 */
#ifndef CRIER_YAMLDOC_H
#define CRIER_YAMLDOC_H

#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

/* yaml_doc_from_file, yaml_doc_from_text - the first YAML document of an open file, or of
 * len bytes of text; name names it in messages. 0 (the caller yaml_document_delete()s
 * *ret_document), or -EINVAL with "NAME:LINE:COL: problem" in err. */
int yaml_doc_from_file(FILE *file, const char *name, yaml_document_t *ret_document, char *err,
                       size_t err_size);
int yaml_doc_from_text(const char *text, size_t len, const char *name,
                       yaml_document_t *ret_document, char *err, size_t err_size);

#endif
