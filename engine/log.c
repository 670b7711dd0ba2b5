/*
 * log.c - operator-facing log lines on stderr, text on a TTY and JSON lines otherwise.
 *
 * One write per line under the stream lock, so lines from lane threads never interleave.
 */
#include "crier/log.h"
#include "crier/crier.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static enum crier_log_format log_format = LOG_FORMAT_AUTO;
static int log_level = LOG_INFO;

static const char *level_name(int level)
{
    switch (level) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_NOTICE:
        return "notice";
    case LOG_WARNING:
        return "warning";
    default:
        return "error";
    }
}

void log_setup(enum crier_log_format format, int level)
{
    log_format = format;
    log_level = level;
}

static bool log_is_json(void)
{
    if (log_format == LOG_FORMAT_AUTO)
        return !isatty(STDERR_FILENO);
    return log_format == LOG_FORMAT_JSON;
}

static void timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void log_fields(int level, const char *message, const char *const *keys, const char *const *values,
                int count)
{
    if (level > log_level)
        return;
    char ts[40];
    timestamp(ts, sizeof(ts));
    if (log_is_json()) {
        json_t *obj = json_object();
        json_object_set_new(obj, "ts", json_string(ts));
        json_object_set_new(obj, "level", json_string(level_name(level)));
        json_object_set_new(obj, "msg", json_string(message));
        for (int i = 0; i < count; i++)
            json_object_set_new(obj, keys[i], values[i] ? json_string(values[i]) : json_null());
        char *line = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(obj);
        flockfile(stderr);
        fputs(line ? line : "{}", stderr);
        fputc('\n', stderr);
        funlockfile(stderr);
        free(line);
        return;
    }
    flockfile(stderr);
    fprintf(stderr, "%s crier %s: %s", ts, level_name(level), message);
    for (int i = 0; i < count; i++)
        fprintf(stderr, " %s=%s", keys[i], values[i] ? values[i] : "-");
    fputc('\n', stderr);
    funlockfile(stderr);
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    log_fields(level, message, NULL, NULL, 0);
    free(message);
}
