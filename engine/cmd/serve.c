/*
 * serve.c - `crier serve`: the web console and its JSON API (engine/web/, docs/console.md)
 * until SIGTERM or SIGINT. It needs no database login of its own: every session connects
 * with the person's own PostgreSQL login (engine/web/session.c). The one exception is the
 * fax status webhook (serve.fax_webhook, engine/web/hooks.c), which has no person behind
 * it: it logs in as a member of crier_fax_hook, a role that may record a fax's final
 * status and nothing more.
 *
 * SECURITY: the TLS key is read here, before any request, and handed to libmicrohttpd in
 * memory; a key file readable by others is warned about (config_secrets_check).
 */
#include "crier/serve.h"
#include "crier/crier.h"
#include "crier/log.h"
#include "crier/web.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8470"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

/* pem_read - a certificate or key file, whole (at most 1 MiB). */
static int pem_read(const char *path, const char *what, char **ret_text)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "crier serve: %s %s: %s\n", what, path, strerror(errno));
        return EX_NOINPUT;
    }
    char *text = xmalloc(1024 * 1024 + 1);
    size_t length = fread(text, 1, 1024 * 1024, f);
    bool failed = ferror(f) != 0 || !feof(f);
    fclose(f);
    text[length] = '\0';
    if (failed || length == 0) {
        fprintf(stderr, "crier serve: %s %s: empty, unreadable or larger than 1 MiB\n", what, path);
        free(text);
        return EX_CONFIG;
    }
    *ret_text = text;
    return 0;
}

static int tls_read(const struct crier_config *config, struct web_options *options)
{
    if (str_empty(config->serve.tls_cert) != str_empty(config->serve.tls_key)) {
        fprintf(stderr, "crier serve: serve.tls.cert and serve.tls.key go together\n");
        return EX_CONFIG;
    }
    if (str_empty(config->serve.tls_cert))
        return 0;
    int code = pem_read(config->serve.tls_cert, "serve.tls.cert", &options->tls_cert);
    if (code == 0)
        code = pem_read(config->serve.tls_key, "serve.tls.key", &options->tls_key);
    return code;
}

static void tls_clear(struct web_options *options)
{
    free(options->tls_cert);
    if (options->tls_key) {
        explicit_bzero(options->tls_key, strlen(options->tls_key));
        free(options->tls_key);
    }
}

int serve_main(const struct crier_config *config, const char *listen)
{
    struct web_options options = {
        .config = config,
        .listen = listen                 ? listen
                  : config->serve.listen ? config->serve.listen
                                         : SERVE_DEFAULT_LISTEN,
    };
    int code = tls_read(config, &options);
    if (code) {
        tls_clear(&options);
        return code;
    }
    if (config->serve.webhook.present) {
        char hook_err[1024];
        int r = hooks_open(config, &options.hooks, hook_err, sizeof(hook_err));
        if (r < 0) {
            fprintf(stderr, "crier serve: %s\n", hook_err);
            tls_clear(&options);
            return r == -EHOSTUNREACH ? EX_UNAVAILABLE : EX_CONFIG;
        }
    }
    session_setup(config);
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    struct web_server *server = NULL;
    int r = web_start(&options, &server, err, sizeof(err));
    tls_clear(&options); /* libmicrohttpd keeps its own copy */
    if (r < 0) {
        fprintf(stderr, "crier serve: %s\n", err);
        hooks_free(options.hooks);
        return r == -EINVAL ? EX_CONFIG : EX_UNAVAILABLE;
    }
    log_notice("crier serve: listening on %s (%s)%s", options.listen,
               options.tls_cert ? "HTTPS" : "HTTP, loopback only",
               options.hooks ? "; the fax status webhook is on" : "");
    /* stdout: the address, for scripts that start it (tests/integration/serve.sh) */
    printf("listening on %s\n", options.listen);
    fflush(stdout);
    for (unsigned tick = 0; !stop; tick++) {
        usleep(200 * 1000);
        if (tick % 300 == 299) /* each minute: expiries are recorded when they happen */
            sessions_sweep();
    }
    web_stop(server);
    hooks_free(options.hooks);
    scrape_end();
    sessions_end();
    log_notice("crier serve: stopped");
    return 0;
}
