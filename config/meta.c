/*
 * meta.c - a campaign's --meta FILE.yaml, turned into the JSON kept with the campaign.
 *
 * Incident metadata is free-form: any YAML mapping is accepted and every scalar is kept
 * as a string, so nothing is reinterpreted (a case number "0412" stays "0412").
 */
#include "crier/config.h"
#include "crier/crier.h"
#include "crier/yamldoc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static json_t *node_json(yaml_document_t *doc, yaml_node_t *node, int depth)
{
    if (node == NULL || depth > 64)
        return json_null();
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return json_stringn((const char *)node->data.scalar.value, node->data.scalar.length);
    case YAML_SEQUENCE_NODE: {
        json_t *array = json_array();
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++)
            json_array_append_new(array,
                                  node_json(doc, yaml_document_get_node(doc, *item), depth + 1));
        return array;
    }
    case YAML_MAPPING_NODE: {
        json_t *obj = json_object();
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node(doc, pair->key);
            if (key == NULL || key->type != YAML_SCALAR_NODE)
                continue;
            char *name = xstrndup((const char *)key->data.scalar.value, key->data.scalar.length);
            json_object_set_new(
                obj, name, node_json(doc, yaml_document_get_node(doc, pair->value), depth + 1));
            free(name);
        }
        return obj;
    }
    default:
        return json_null();
    }
}

int meta_yaml_to_json(const char *path, char **ret_json, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -ENOENT;
    }
    yaml_document_t doc;
    int r = yaml_doc_from_file(f, path, &doc, err, err_size);
    fclose(f);
    if (r < 0)
        return r;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL && root->type != YAML_MAPPING_NODE) {
        snprintf(err, err_size, "%s:%zu:%zu: the incident metadata must be a mapping", path,
                 root->start_mark.line + 1, root->start_mark.column + 1);
        r = -EINVAL;
    } else {
        json_t *obj = root ? node_json(&doc, root, 0) : json_object();
        char *text = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        if (text == NULL) {
            snprintf(err, err_size, "%s: metadata is not valid UTF-8", path);
            r = -EINVAL;
        } else {
            *ret_json = xstrdup(text);
            free(text);
        }
    }
    yaml_document_delete(&doc);
    return r;
}
