/*
 * util.c - allocation that aborts on exhaustion, and small helpers with no better home.
 *
 * Never touches the database; logs only the warning about a secret others can read.
 */
#include "crier/crier.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "crier: out of memory (allocating %zu bytes)\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *xreallocarray(void *ptr, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        out_of_memory(SIZE_MAX);
    return xrealloc(ptr, count * size);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int len = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (len < 0)
        abort(); /* only a bad format string gets here */
    char *p = xmalloc((size_t)len + 1);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

char **strv_free(char **strv)
{
    if (strv == NULL)
        return NULL;
    for (char **s = strv; *s; s++)
        free(*s);
    free(strv);
    return NULL;
}

void text_position(const char *text, size_t len, size_t offset, size_t *ret_line,
                   size_t *ret_column)
{
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    *ret_line = line;
    *ret_column = column;
}

void free_many(void *const *pointers, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(pointers[i]);
}

size_t strv_length(char *const *strv)
{
    size_t n = 0;
    while (strv && strv[n])
        n++;
    return n;
}

bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int parse_duration(const char *text, long *ret_seconds)
{
    if (str_empty(text))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || value < 0)
        return -EINVAL;
    long unit = 1;
    if (*end != '\0') {
        switch (*end) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -EINVAL;
        }
        if (end[1] != '\0')
            return -EINVAL;
    }
    if (value > LONG_MAX / unit)
        return -EINVAL;
    *ret_seconds = value * unit;
    return 0;
}

void hex_write(char *out, const void *bytes, size_t len)
{
    static const char digit[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digit[b[i] >> 4];
        out[2 * i + 1] = digit[b[i] & 15];
    }
    out[2 * len] = '\0';
}

int error_set(char *err, size_t err_size, int code, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        abort(); /* only a broken libcrypto gets here */
    hex_write(out, digest, digest_len);
}

int sha256_file_hex(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        abort(); /* only a broken libcrypto gets here */
    static const size_t chunk = 1 << 20;
    unsigned char *buf = xmalloc(chunk);
    size_t n;
    while ((n = fread(buf, 1, chunk, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int r = ferror(f) ? -EIO : 0;
    fclose(f);
    free(buf);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (r == 0)
        hex_write(out, digest, digest_len);
    return r;
}

static int secret_readable_by = SECRET_READABLE_OWNER;

void secret_readable_set(int readable_by)
{
    secret_readable_by = readable_by;
}

bool secret_mode_allowed(mode_t mode)
{
    if ((mode & (S_IRGRP | S_IROTH)) == 0)
        return true;
    return (mode & S_IROTH) ? secret_readable_by >= SECRET_READABLE_OTHERS
                            : secret_readable_by >= SECRET_READABLE_GROUP;
}

int secret_read(const char *env_name, const char *file_path, char **ret_secret)
{
    if (env_name) {
        const char *value = getenv(env_name);
        if (str_empty(value))
            return -ENOENT;
        *ret_secret = xstrdup(value);
        return 0;
    }
    if (file_path == NULL)
        return -ENOENT;
    FILE *f = fopen(file_path, "re");
    if (f == NULL)
        return -errno;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !secret_mode_allowed(st.st_mode)) {
        fclose(f); /* config_secrets_check named it and its mode at load */
        return -EACCES;
    }
    char line[4096];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok)
        return -ENOENT;
    line[strcspn(line, "\r\n")] = '\0';
    *ret_secret = xstrdup(line);
    explicit_bzero(line, sizeof(line));
    return 0;
}

char *secret_base64(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

void secret_redact(char *text, size_t size, const char *const *secrets, size_t count)
{
    static const char mark[] = "[redacted]";
    for (size_t k = 0; k < count; k++) {
        const char *secret = secrets[k];
        if (secret == NULL || strlen(secret) < 4)
            continue; /* "pw" would blot out words, and is no secret */
        size_t len = strlen(secret);
        char *from = text, *at;
        while ((at = strstr(from, secret)) != NULL) {
            size_t offset = (size_t)(at - text);
            char *rest = xstrdup(at + len);
            snprintf(at, size - offset, "%s%s", mark, rest);
            free(rest);
            size_t written = strlen(at);
            from = at + (written < sizeof(mark) - 1 ? written : sizeof(mark) - 1);
        }
    }
}

/* date_valid - YYYY-MM-DD naming a real day (from 1970 on: crier's dates are its own). */
bool date_valid(const char *text)
{
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)text[i]))
            return false;
    int year = atoi(text), month = atoi(text + 5), day = atoi(text + 8);
    if (year < 1970 || month < 1 || month > 12 || day < 1)
        return false;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days[month - 1] + (month == 2 && leap ? 1 : 0);
}

/* date_valid_past - date_valid, and not in the future (a day's slack for time zones): the
 * day a batch was mailed or a notice filed. */
bool date_valid_past(const char *date)
{
    if (!date_valid(date))
        return false;
    struct tm tm = {0};
    strptime(date, "%Y-%m-%d", &tm);
    return timegm(&tm) <= time(NULL) + 86400;
}

/* file_safe_name - in as a file-name part: letters, digits, '-' and '_', anything else '_';
 * "none" when empty. */
void file_safe_name(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; in && *in && n + 1 < size; in++)
        out[n++] = (isalnum((unsigned char)*in) || *in == '-' || *in == '_') ? *in : '_';
    out[n] = '\0';
    if (n == 0)
        snprintf(out, size, "none");
}
