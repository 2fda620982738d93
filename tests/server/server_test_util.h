/* server_test_util.h - loopback HTTP over plain sockets and test audio, for
 * the server tests (the HTTP client side is deliberately simple: one
 * request per connection, read until the server closes). */
#ifndef LS_TEST_SERVER_UTIL_H
#define LS_TEST_SERVER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "server/outputs.h"

typedef struct http_resp {
    int status;
    char headers[4096];
    ls_buf body;
} http_resp;

/* Sends one request (raw bytes after the request line's headers are
 * built from method/path/headers/body) and reads the whole response.
 * Returns 0 or -1 on a socket error or timeout. */
int http_do(int port, const char *method, const char *path, const char *headers,
            const void *body, size_t len, http_resp *out);
/* Sends exactly `raw` bytes and reads the response (malformed requests). */
int http_raw(int port, const void *raw, size_t len, http_resp *out);
void http_resp_free(http_resp *r);

/* The pieces, for requests sent in parts (a head now, its body later):
 * a loopback connection with 180 s socket timeouts (or -1), a send of
 * every byte (0 or -1), and reading a response until the server closes. */
int http_connect(int port);
int http_send_all(int fd, const void *p, size_t n);
int http_read_response(int fd, http_resp *out);

/* A WebSocket over a plain socket, for clients that misbehave at the
 * socket level (never read, flood): the upgrade of path done, with
 * SO_RCVBUF / SO_SNDBUF set first when > 0. Returns the fd or -1. */
int ws_raw_connect(int port, const char *path, int rcvbuf, int sndbuf);
/* One masked client frame (opcode 1 text, 2 binary) of len payload bytes
 * into out (room for len + 14 bytes); returns its size. */
size_t ws_raw_frame(int opcode, const void *payload, size_t len, uint8_t *out);

/* Speech-like test audio: mono float at rate, seconds long, seed varies it. */
float *test_audio(int rate, double seconds, uint64_t seed, size_t *n);
/* A 16-bit PCM WAV file of interleaved stereo (both channels given). */
uint8_t *wav_s16(const int16_t *interleaved, size_t frames, int rate, int channels,
                 size_t *len);

#endif
