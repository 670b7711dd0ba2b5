/*
 * jsonout.h - a --json answer as every command prints it: indented by two, one newline
 * after it, the value then released.
 */
#ifndef CRIER_JSONOUT_H
#define CRIER_JSONOUT_H

#include <jansson.h>
#include <stdio.h>

/* json_out - print value to out as above and json_decref() it. */
void json_out(FILE *out, json_t *value);

#endif
