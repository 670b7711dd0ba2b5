/*
 * httpd.h - starting a libmicrohttpd daemon on a HOST:PORT (engine/lib/httpd.c), the one
 * start that `crier run --metrics` (metrics.c) and `crier serve` (engine/web/server.c)
 * share: the address parsed the same way, IPv6 in brackets, errors worded alike.
 */
#ifndef CRIER_HTTPD_H
#define CRIER_HTTPD_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A listen address, parsed. */
struct httpd_address {
    struct sockaddr_storage storage;
    bool v6;
    char host[128]; /* as given, without IPv6's brackets; "" = every address */
    unsigned port;
};

/*
 * httpd_address - parse listen ("127.0.0.1:9464", "[::1]:8470", ":8470"). what names the
 * setting in errors ("--metrics", "serve.listen"), example is a good value. -EINVAL with
 * "WHAT LISTEN: ..." in err.
 */
int httpd_address(const char *listen, const char *what, const char *example,
                  struct httpd_address *ret, char *err, size_t err_size);

/*
 * httpd_start - a daemon on its own polling thread (and errors logged by libmicrohttpd)
 * answering on address with answer(cls, ...); flags are added to that (MHD_USE_TLS), and
 * options (ending with MHD_OPTION_END; may be NULL) to the address. NULL when it cannot
 * listen.
 */
struct MHD_Daemon *httpd_start(const struct httpd_address *address, unsigned flags,
                               MHD_AccessHandlerCallback answer, void *cls,
                               const struct MHD_OptionItem *options);

#endif
