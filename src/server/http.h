/* http.h - the HTTP protocol of the server: one route table (method, path
 * pattern, handler) for every endpoint, the request's body, the answer's
 * writing, and the requests lws's parser gives up on. Cheap routes are
 * answered on the loop; render, batch and model loads become jobs (jobs.h)
 * handed to a worker (conn.h) and answered when they come back.
 *
 * Routes (every error is {"error": "<message>", "status": N}):
 *   GET  /health                 {"status":"ok", ...}; never needs the token;
 *                                503 {"status":"draining", ...} while draining
 *   GET  /metrics                Prometheus text format
 *   GET  /v1/models              {"models":[{id, state, ...}]}
 *   POST /v1/models/{id}/load    loads (or touches) a model          (job)
 *   DELETE /v1/models/{id}       unloads it (sessions keep it)       (job)
 *   POST /v1/render?model=ID&start_frame=N&output=mp4|mjpeg|jpeg-zip (job)
 *   POST /v1/batch?model=ID&batch_size=B&start_frame=G[&format=multipart] (job)
 *   GET  /v1/stream              426: the WebSocket upgrade is stream.h's
 *   POST /v1/webrtc?model=ID     SDP offer -> 201, SDP answer, Location (job)
 *   DELETE /v1/webrtc/{session}  ends a WebRTC session (webrtc.h)   (job)
 *   GET  /, /index.html, /app.js, /style.css   the browser client (web_root)
 * A path of the table with another method gets 405 with Allow from the
 * table; any other path 404. With a token configured, every route but
 * /health and the client's files wants "Authorization: Bearer TOKEN" or
 * "?token=TOKEN" (checked before 404 and 405, so a client without it learns
 * nothing of the routes). docs/server.md has the limits and bodies.
 *
 * Threads: every function here runs on the loop. A request object belongs
 * to the loop, but for its job (jobs.h) while that runs.
 */
#ifndef LS_SERVER_HTTP_H
#define LS_SERVER_HTTP_H

#include <libwebsockets.h>

#include "server/conn.h"
#include "server/env.h"
#include "server/jobs.h"

/* lws's HTTP callbacks, for the request on sock (ls_socket.conn). Each
 * returns what the lws callback returns: 0, or -1 to close. */
int ls_http_request(ls_env *env, struct lws *wsi, ls_socket *sock, const char *path);
int ls_http_body(ls_socket *sock, const void *in, size_t len);
int ls_http_body_done(struct lws *wsi, ls_socket *sock);
int ls_http_writable(struct lws *wsi, ls_socket *sock);
/* The request on sock is over (answered and closed, or its socket closed,
 * or upgraded): its object is let go. Nothing if sock holds none. */
void ls_http_release(ls_socket *sock);

/* LWS_CALLBACK_RAW_RX / _WRITEABLE on a socket lws fell back to: a first
 * line its HTTP parser refused (an unknown method, not HTTP, the HTTP/2
 * preface) or CONNECT. Answers 405 (with Allow), 505 or 400 in JSON and
 * closes. */
int ls_http_raw(ls_env *env, struct lws *wsi, int writable, ls_socket *sock, const void *in,
                size_t len);

/* Parsers of client input, apart from lws so that the fuzz targets
 * (tests/fuzz) can feed them from memory. */

/* The job a method and path route to, LS_JOB_NONE for any other route or
 * none; the {id} of /v1/models/{id}... into id (LS_MODEL_ID_MAX + 1 bytes),
 * *too_long set when only the id's length kept the path from a job route. */
ls_job_kind ls_http_job_route(const char *method, const char *path, char *id, int *too_long);

/* A query argument as lws gives it: copies the URL-decoded value of the
 * argument called name ("model=") into buf (cap bytes) and returns 1; 0
 * when absent, -1 when longer than buf. */
typedef int (*ls_http_arg_fn)(void *ctx, const char *name, char *buf, int cap);
/* The query of a render or batch job (job->kind): model, start_frame,
 * output (render), batch_size and format=multipart (batch). 0, or -1 with
 * the 400 answer's message in why. */
int ls_http_parse_job_args(ls_job *job, ls_http_arg_fn get, void *ctx, char *why, size_t cap);

#endif
