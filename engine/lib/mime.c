/*
 * mime.c - GMime's one initialisation and the parse of a message held in memory (see
 * mime.h).
 *
 * bounces ingest, the console and the email channel each called g_mime_init() behind a
 * pthread_once of their own, and two of them wrote the stream-parser-message dance again.
 */
#include "crier/mime.h"

#include <pthread.h>

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
