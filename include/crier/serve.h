/*
 * serve.h - `crier serve`, the web console's command (engine/cmd/serve.c).
 */
#ifndef CRIER_SERVE_H
#define CRIER_SERVE_H

#include "crier/config.h"

/* serve_main - serve on listen (NULL: serve.listen, else 127.0.0.1:8470) until SIGTERM or
 * SIGINT; returns a sysexits.h code. */
int serve_main(const struct crier_config *config, const char *listen);

#endif
