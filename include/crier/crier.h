/*
 * crier.h - what every crier module shares: exit codes, allocation, small string helpers.
 *
 * Functions return 0 or a negative errno-style code; results go out through ret_
 * parameters that are left untouched on failure. Out-of-memory is handled once, here:
 * the x* allocators abort, so no caller checks for NULL.
 */
#ifndef CRIER_CRIER_H
#define CRIER_CRIER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CRIER_VERSION is meson.build's project() version, passed with -D: written in one place. */
#ifndef CRIER_VERSION
#error "CRIER_VERSION comes from meson.build (-DCRIER_VERSION)"
#endif

/* Exit codes, as sysexits.h defines them. */
#define EXIT_USAGE       64 /* command line usage error */
#define EXIT_DATAERR     65 /* bad input data (CSV, arguments naming data) */
#define EXIT_NOINPUT     66 /* input file missing or unreadable */
#define EXIT_UNAVAILABLE 69 /* database or another service unreachable */
#define EXIT_SOFTWARE    70 /* internal error */
#define EXIT_IOERR       74 /* I/O error on an output file */
#define EXIT_TEMPFAIL    75 /* try again later */
#define EXIT_NOPERM      77 /* the database role may not do this */
#define EXIT_CONFIG      78 /* configuration error */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* xmalloc - malloc that aborts on exhaustion; never returns NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xreallocarray - grow an array of count items of size bytes, checking the product. */
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xasprintf - allocate and format; aborts on exhaustion. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* strv_free - free a NULL-terminated array of strings and the array; returns NULL. */
char **strv_free(char **strv);
size_t strv_length(char *const *strv);
/*
 * free_many - free() each of count pointers. FREE_MANY(a, b, c) names every pointer a
 * struct owns on one line, as systemd's free_many() does: a destructor lists its fields,
 * and what is not plain free() (a strv, a JSON value, a libcurl handle) keeps its own call.
 */
void free_many(void *const *pointers, size_t count);
#define FREE_MANY(...)                                                                             \
    free_many((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* str_empty - true for NULL or "". */
static inline bool str_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* text_position - the 1-based line and column (in bytes) of byte offset in len bytes of
 * text: where a message places what a parser found by its offset. */
void text_position(const char *text, size_t len, size_t offset, size_t *ret_line,
                   size_t *ret_column);

/* utf8_valid - true if the len bytes at s are well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t len);

/* now_seconds - CLOCK_REALTIME as a double, for rates and timing. */
double now_seconds(void);
/* monotonic_seconds - CLOCK_MONOTONIC as a double, for intervals. */
double monotonic_seconds(void);

/* error_set - format a message into err (when err is not NULL) and return code: the
 * "return error_set(err, size, -EINVAL, ...)" of functions that explain their failures. */
int error_set(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* date_valid - "YYYY-MM-DD" naming a real day, 1970 or later. */
bool date_valid(const char *date);
/* date_valid_past - date_valid, and not in the future (a day's slack). */
bool date_valid_past(const char *date);

/* file_safe_name - in as a file-name part ([A-Za-z0-9_-], others '_'); "none" if empty. */
void file_safe_name(const char *in, char *out, size_t size);

/* hex_write - len bytes as 2 * len lowercase hex digits and a NUL, into out. */
void hex_write(char *out, const void *bytes, size_t len);

/* sha256_hex - hex SHA-256 of len bytes at data into out (65 bytes, NUL-terminated). */
void sha256_hex(const void *data, size_t len, char out[65]);

/* sha256_file_hex - hex SHA-256 of a file's bytes, read in chunks; -errno on failure. */
int sha256_file_hex(const char *path, char out[65]);

/*
 * secret_read - a password or key: the value of environment variable env_name when given,
 * else the first line of file_path. -ENOENT when neither yields one. The caller wipes and
 * frees *ret_secret. SECURITY: never logged; the config names where it is, never what.
 * Silent, so that channels may call it (log.h): a file its group or others can read is
 * refused with -EACCES unless secrets.readable_by allows it (secret_mode_allowed); the
 * configuration's load names the file and its mode (config_secrets_check).
 */
int secret_read(const char *env_name, const char *file_path, char **ret_secret);

/* Who besides its owner may read a file holding a secret (secrets.readable_by). */
enum {
    SECRET_READABLE_OWNER,  /* no one: the default */
    SECRET_READABLE_GROUP,  /* its group too (a service user's group, say) */
    SECRET_READABLE_OTHERS, /* anyone: only a warning */
};
/* secret_readable_set - the rule for this process, set once from the configuration. */
void secret_readable_set(int readable_by);
/* secret_mode_allowed - may a secret live in a file of this mode, under that rule? */
bool secret_mode_allowed(mode_t mode);

/* secret_base64 - the base64 of len bytes (a secret as a protocol sends it); free() it. */
char *secret_base64(const void *data, size_t len);

/*
 * secret_redact - replace every occurrence of each of the count strings in secrets (NULL
 * entries and strings under 4 bytes are skipped) in text (a NUL-terminated buffer of size
 * bytes) with "[redacted]": a peer's words may repeat what it was sent.
 */
void secret_redact(char *text, size_t size, const char *const *secrets, size_t count);

/* parse_duration - "90", "30s", "5m", "2h", "3d" into seconds; -EINVAL on anything else. */
int parse_duration(const char *text, long *ret_seconds);

#endif
