/*
 * mime.h - GMime, set up once per process, and a message parsed from bytes in memory:
 * bounces ingest (DSNs), the console's view of a sent email, and the email channel.
 */
#ifndef CRIER_MIME_H
#define CRIER_MIME_H

#include <gmime/gmime.h>
#include <stddef.h>

/* mime_ready - g_mime_init() once for the process, whichever thread asks first. */
void mime_ready(void);

/* mime_message_parse - len bytes as one MIME message (the caller g_object_unref()s it),
 * or NULL when they are not one. Calls mime_ready(). */
GMimeMessage *mime_message_parse(const void *data, size_t len);

#endif
