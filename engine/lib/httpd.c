/*
 * httpd.c - the one way crier starts a libmicrohttpd daemon: a HOST:PORT parsed into a
 * socket address (so a host name is never resolved: a listen address is an address), and
 * the daemon started on it with its own polling thread. metrics.c and engine/web/server.c
 * both start theirs here, each adding its own options.
 */
#include "crier/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int httpd_address(const char *listen, const char *what, const char *example,
                  struct httpd_address *ret, char *err, size_t err_size)
{
    *ret = (struct httpd_address){0};
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || end == colon + 1 || *end != '\0' || port < 1 || port > 65535 ||
        (size_t)(colon - listen) >= sizeof(ret->host)) {
        snprintf(err, err_size, "%s %s: expected HOST:PORT, e.g. %s", what, listen, example);
        return -EINVAL;
    }
    char *host = ret->host;
    snprintf(host, sizeof(ret->host), "%.*s", (int)(colon - listen), listen);
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        memmove(host, host + 1, len - 2);
        host[len - 2] = '\0';
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ret->storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ret->storage;
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        ret->v6 = true;
    } else {
        snprintf(err, err_size, "%s %s: '%s' is not an IP address", what, listen, host);
        return -EINVAL;
    }
    ret->port = (unsigned)port;
    return 0;
}

struct MHD_Daemon *httpd_start(const struct httpd_address *address, unsigned flags,
                               MHD_AccessHandlerCallback answer, void *cls,
                               const struct MHD_OptionItem *options)
{
    static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    flags |= MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (address->v6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, (uint16_t)address->port, NULL, NULL, answer, cls,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&address->storage,
                            MHD_OPTION_ARRAY, options ? options : none, MHD_OPTION_END);
}
