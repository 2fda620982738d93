/* server.h - `lipsync serve`: the HTTP + WebSocket API over the pipeline.
 *
 * One libwebsockets event loop thread owns every socket and never computes;
 * a fixed set of workers (workq.h) runs model loads, render and batch jobs
 * and drives streaming sessions (one worker at a time per session, as
 * session.h requires), with the shared ls_pool under them for the parallel
 * image work. Streams go ahead of jobs, and jobs hold at most max_jobs
 * workers (fewer than all), so a job never keeps a stream waiting. Work is
 * handed to a worker and its results handed back to the loop (conn.h).
 *
 * The endpoints are documented in http.h, the stream protocol in stream.h,
 * next to the code that implements them; docs/server.md has the whole API.
 */
#ifndef LS_SERVER_SERVER_H
#define LS_SERVER_SERVER_H

#include "core/error.h"
#include "server/config.h"
#include "server/registry.h"

typedef struct ls_server ls_server;

/* Binds the listening socket (so the port is known at return), creates the
 * registry and workers and preloads config->preload. */
int ls_server_create(const ls_server_config *config, ls_server **out, ls_error *err);

/* Serves until ls_server_stop, or until a drain (ls_server_drain) has
 * ended; returns LS_OK or an error from the loop. */
int ls_server_run(ls_server *s);

/* Asks ls_server_run to return at once; sessions still running are cut
 * when ls_server_destroy closes their sockets. Safe from any thread (not
 * from a signal handler: use a thread that waits for signals). */
void ls_server_stop(ls_server *s);

/* Graceful drain (what `lipsync serve` does on SIGTERM/SIGINT), for taking
 * an instance out from behind a load balancer: from then on /health
 * answers 503 {"status":"draining",...} and new streams, render and batch
 * calls get 503, while the streams and jobs already running go on. When
 * none is left, or after drain_timeout_s, ls_server_run returns LS_OK;
 * at the deadline the streams still open first get an error event and a
 * WebSocket close 1001 (going away), and jobs still running are cut.
 * Idempotent; safe from any thread (not from a signal handler). */
void ls_server_drain(ls_server *s);

/* The port actually bound (config port 0 picks a free one). */
int ls_server_port(const ls_server *s);

void ls_server_destroy(ls_server *s);

#endif
