/*
 * log.h - what an operator sees on stderr: one JSON object per line when stderr is not a
 * TTY (or log.format: json), a plain line otherwise.
 *
 * Only the engine logs above debug (STYLE.md 9); channels report through outcomes.
 * SECURITY: never pass a secret to these functions.
 */
#ifndef CRIER_LOG_H
#define CRIER_LOG_H

#include <syslog.h>

#include "crier/config.h"

/* log_setup - choose format and threshold; safe to call again after the config loads. */
void log_setup(enum crier_log_format format, int level);

/* log_level_from_name - "warning" -> LOG_WARNING (debug, info, notice, warning, error);
 * -EINVAL for another name. */
int log_level_from_name(const char *name, int *ret_level);

/* log_msg - one line at a syslog level; use log_fields when a script must read the values. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_fields - one line with a message and key=value string pairs (keys[i], values[i]). */
void log_fields(int level, const char *message, const char *const *keys, const char *const *values,
                int count);

#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)

#endif
