/* cmd_serve.c - `lipsync serve`: runs the HTTP + WebSocket server. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "server/config.h"
#include "server/server.h"

extern char **environ;

static void usage(FILE *out)
{
    char keys[4096];
    ls_server_config_describe(keys, sizeof keys);
    fprintf(out,
            "usage: lipsync serve [--config FILE] [--SETTING VALUE ...]\n"
            "\n"
            "Serves the lip-sync pipeline over HTTP and WebSocket (docs/server.md).\n"
            "SIGTERM or SIGINT drains: /health answers 503, new sessions are refused,\n"
            "running ones finish (up to drain_timeout_s), then it exits 0; a second\n"
            "signal exits at once (status 1).\n"
            "Settings come from defaults, then the JSON config FILE, then LS_<SETTING>\n"
            "environment variables (LS_MAX_SESSIONS=4), then flags (--max-sessions 4):\n"
            "%s"
            "web_root defaults to ../share/lipsync/web from the executable's folder (an\n"
            "installed lipsync), else to the source tree's web/ (a build tree's lipsync).\n",
            keys);
}

/* 1 if dir holds the browser client (its index.html). */
static int has_web_client(const char *dir)
{
    char index[2 * PATH_MAX];
    if (snprintf(index, sizeof index, "%s/index.html", dir) >= (int)sizeof index) return 0;
    return access(index, R_OK) == 0;
}

/* The browser client's folder when no setting names one (CMake defines both
 * places, src/cli/sources.cmake): an installed binary's, LS_INSTALLED_WEB_ROOT
 * (share/lipsync/web, relative to the folder of the executable, found through
 * /proc/self/exe), else the source tree's web/ (LS_SOURCE_WEB_ROOT: a binary
 * run from its build tree). Empty when neither holds the client. */
static void default_web_root(char *out, size_t cap)
{
    out[0] = '\0';
#ifdef LS_INSTALLED_WEB_ROOT
    char exe[PATH_MAX], dir[PATH_MAX + sizeof LS_INSTALLED_WEB_ROOT + 1], real[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = '\0';
    char *slash = n > 0 ? strrchr(exe, '/') : NULL;
    if (slash) {
        *slash = '\0'; /* exe: the executable's folder */
        if (LS_INSTALLED_WEB_ROOT[0] == '/')
            snprintf(dir, sizeof dir, "%s", LS_INSTALLED_WEB_ROOT);
        else
            snprintf(dir, sizeof dir, "%s/%s", exe, LS_INSTALLED_WEB_ROOT);
        if (has_web_client(dir) && realpath(dir, real) && strlen(real) < cap) {
            snprintf(out, cap, "%s", real);
            return;
        }
    }
#endif
#ifdef LS_SOURCE_WEB_ROOT
    if (has_web_client(LS_SOURCE_WEB_ROOT) && strlen(LS_SOURCE_WEB_ROOT) < cap)
        snprintf(out, cap, "%s", LS_SOURCE_WEB_ROOT);
#endif
}

typedef struct signal_waiter {
    sigset_t set;
    ls_server *srv;
    int forced; /* a second signal stopped the drain: read after the join */
} signal_waiter;

/* The stop signals (SIGTERM, SIGINT) are blocked in every thread and taken
 * here with sigwait, so no signal handler runs at all: draining and
 * stopping happen in normal thread context, where locks and lws calls are
 * allowed. The first signal drains (a load balancer's SIGTERM: finish the
 * running sessions, refuse new ones); a second one stops at once. SIGUSR1
 * only wakes this thread when the loop ended by itself. */
static void *wait_signals(void *arg)
{
    signal_waiter *w = arg;
    int sig, seen = 0;
    while (sigwait(&w->set, &sig) == 0 && sig != SIGUSR1) {
        if (!seen++) {
            fprintf(stderr,
                    "lipsync: signal %d, draining: new sessions refused, running ones "
                    "finish (at most drain_timeout_s); signal again to stop now\n",
                    sig);
            ls_server_drain(w->srv);
        } else {
            fprintf(stderr, "lipsync: signal %d again, stopping now\n", sig);
            w->forced = 1;
            ls_server_stop(w->srv);
            break;
        }
    }
    return NULL;
}

int cmd_serve(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    ls_server_config cfg;
    ls_server_config_defaults(&cfg);
    default_web_root(cfg.web_root, sizeof cfg.web_root);
    ls_error err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                usage(stderr);
                return 2;
            }
            if (ls_server_config_load_file(&cfg, argv[i + 1], &err)) return cli_fail("serve", &err);
        }
    }
    if (ls_server_config_apply_env(&cfg, environ, &err)) return cli_fail("serve", &err);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            fprintf(stderr, "lipsync: serve: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
        char key[64];
        const char *name = argv[i] + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (n >= sizeof key) n = sizeof key - 1;
        for (size_t k = 0; k < n; k++) key[k] = name[k] == '-' ? '_' : name[k];
        key[n] = '\0';
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!strcmp(key, "config")) continue;
        if (ls_server_config_set(&cfg, key, value, "flag", &err)) return cli_fail("serve", &err);
    }
    /* A folder named but not the client's fails here, not as a 404 on /. */
    if (ls_server_config_check_web_root(&cfg, &err)) return cli_fail("serve", &err);

    /* Block the stop signals before any thread starts, so all inherit it. */
    signal_waiter w;
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGTERM);
    sigaddset(&w.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &w.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ls_server *srv;
    if (ls_server_create(&cfg, &srv, &err)) return cli_fail("serve", &err);
    w.srv = srv;
    w.forced = 0;
    pthread_t waiter;
    pthread_create(&waiter, NULL, wait_signals, &w);
    printf("lipsync: serving http://%s:%d/ (models from %s)\n", cfg.host, ls_server_port(srv),
           cfg.models_root);
    if (cfg.web_root[0])
        printf("lipsync: browser client at / from %s\n", cfg.web_root);
    else
        printf("lipsync: no browser client (web_root is empty; --web-root DIR names one)\n");
    fflush(stdout);
    int rc = ls_server_run(srv);
    pthread_kill(waiter, SIGUSR1); /* wakes the waiter if the loop ended by itself */
    pthread_join(waiter, NULL);
    ls_server_destroy(srv);
    /* A drain that ran its course (sessions done, or closed at the deadline)
     * is a clean exit; one cut short by a second signal is not. */
    if (!rc && !w.forced) fprintf(stderr, "lipsync: drained, exiting\n");
    return rc || w.forced ? 1 : 0;
}
