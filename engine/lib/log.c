/*
 * log.c - operator-facing log lines on stderr, text on a TTY and JSON lines otherwise.
 *
 * One write per line under the stream lock, so lines from lane threads never interleave.
 * When stderr is the journal (systemd sets JOURNAL_STREAM to its device and inode), each
 * line starts with its syslog priority, "<3>" for an error, which journald strips and
 * keeps as the entry's PRIORITY: `journalctl -u crier -p warning` then works.
 */
#include "crier/log.h"
#include "crier/crier.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum crier_log_format log_format = LOG_FORMAT_AUTO;
static int log_level = LOG_INFO;
static int log_journal = -1; /* stderr is the journal: -1 not checked yet, 0 no, 1 yes */

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
    log_journal = -1;
}

int log_level_from_name(const char *name, int *ret_level)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"debug", LOG_DEBUG},
                  {"info", LOG_INFO},
                  {"notice", LOG_NOTICE},
                  {"warning", LOG_WARNING},
                  {"error", LOG_ERR}};
    for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
        if (strcmp(name, levels[i].name) == 0) {
            *ret_level = levels[i].level;
            return 0;
        }
    return -EINVAL;
}

/* log_to_journal - JOURNAL_STREAM names stderr's device and inode (systemd.exec(5)). */
static bool log_to_journal(void)
{
    if (log_journal >= 0)
        return log_journal == 1;
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long device = 0, inode = 0;
    struct stat st;
    log_journal = stream && sscanf(stream, "%llu:%llu", &device, &inode) == 2 &&
                  fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == device &&
                  (unsigned long long)st.st_ino == inode;
    return log_journal == 1;
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
        if (log_to_journal())
            fprintf(stderr, "<%d>", level);
        fputs(line ? line : "{}", stderr);
        fputc('\n', stderr);
        funlockfile(stderr);
        free(line);
        return;
    }
    flockfile(stderr);
    if (log_to_journal())
        fprintf(stderr, "<%d>", level);
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
