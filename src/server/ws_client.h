/* ws_client.h - a blocking WebSocket client (libwebsockets) for the tests
 * and `lipsync bench serve`: connect, send text or binary messages, receive
 * whole messages with their arrival time.
 *
 * Each client runs its own lws context on its own service thread, so
 * arrival times are taken when the bytes arrive, not when the caller gets
 * around to reading them. All calls are for one caller thread.
 */
#ifndef LS_SERVER_WS_CLIENT_H
#define LS_SERVER_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_ws_client ls_ws_client;

typedef struct ls_ws_message {
    int binary;
    uint8_t *data; /* owned; NUL-terminated for convenience */
    size_t len;
    double t_recv; /* ls_now() when the last byte arrived */
} ls_ws_message;

/* path includes the query, e.g. "/v1/stream?model=m&token=t". */
int ls_ws_client_connect(const char *host, int port, const char *path, double timeout_s,
                         ls_ws_client **out, ls_error *err);

/* Queues a message; returns at once (the service thread sends it). */
int ls_ws_client_send(ls_ws_client *c, int binary, const void *data, size_t len, ls_error *err);

/* Next message: 1 when *m was filled, 0 on timeout, LS_ERR_IO once the
 * connection is closed and every message before the close was taken. */
int ls_ws_client_recv(ls_ws_client *c, ls_ws_message *m, double timeout_s);
void ls_ws_message_free(ls_ws_message *m);

/* Messages queued for sending and not yet written. */
int ls_ws_client_pending_sends(ls_ws_client *c);

/* Closes (if open) and frees. */
void ls_ws_client_destroy(ls_ws_client *c);

#endif
