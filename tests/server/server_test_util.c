#include "server_test_util.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "support/test_util.h"

/* A loopback connection with 180 s socket timeouts, the buffer sizes set
 * first where > 0; -1 on failure. */
static int loopback_connect(int port, int rcvbuf, int sndbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    /* bounded: a hung server fails the test (generous: a TSan build on
     * two shared cores takes over a minute for a batch call) */
    struct timeval tv = {180, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int http_connect(int port)
{
    return loopback_connect(port, 0, 0);
}

int http_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int http_read_response(int fd, http_resp *out)
{
    ls_buf all = {0};
    uint8_t chunk[65536];
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r == 0) break;
        if (r < 0) {
            /* A reset after a complete answer (server closed with unread
             * request bytes) still leaves the answer we read. */
            if (all.len) break;
            ls_buf_free(&all);
            return -1;
        }
        ls_buf_append(&all, chunk, (size_t)r);
    }
    memset(out, 0, sizeof *out);
    if (!all.len) return -1;
    const char *text = (const char *)all.data;
    const char *sep = strstr(text, "\r\n\r\n");
    if (!sep || sscanf(text, "HTTP/1.%*d %d", &out->status) != 1) {
        ls_buf_free(&all);
        return -1;
    }
    size_t hl = (size_t)(sep - text);
    snprintf(out->headers, sizeof out->headers, "%.*s", (int)hl, text);
    ls_buf_append(&out->body, sep + 4, all.len - hl - 4);
    ls_buf_free(&all);
    return 0;
}

int http_do(int port, const char *method, const char *path, const char *headers,
            const void *body, size_t len, http_resp *out)
{
    int fd = http_connect(port);
    if (fd < 0) return -1;
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s",
                     method, path, headers ? headers : "", body ? "" : "\r\n");
    if (body) n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n\r\n", len);
    int rc = http_send_all(fd, head, (size_t)n);
    if (!rc && body && len) rc = http_send_all(fd, body, len);
    if (!rc) rc = http_read_response(fd, out);
    close(fd);
    return rc;
}

int http_raw(int port, const void *raw, size_t len, http_resp *out)
{
    int fd = http_connect(port);
    if (fd < 0) return -1;
    int rc = http_send_all(fd, raw, len);
    shutdown(fd, SHUT_WR);
    if (!rc) rc = http_read_response(fd, out);
    close(fd);
    return rc;
}

void http_resp_free(http_resp *r)
{
    ls_buf_free(&r->body);
}

float *test_audio(int rate, double seconds, uint64_t seed, size_t *n)
{
    *n = (size_t)(rate * seconds);
    float *x = malloc(*n * sizeof *x);
    uint64_t st = seed;
    double f0 = 120 + 80 * test_rand_uniform(&st);
    for (size_t i = 0; i < *n; i++) {
        double t = (double)i / rate;
        /* syllables: a 4 Hz envelope over a voiced tone plus a little noise */
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4 * t);
        double v = env * (0.3 * sin(2 * M_PI * f0 * t) + 0.1 * sin(2 * M_PI * 3 * f0 * t)) +
                   0.01 * (test_rand_uniform(&st) - 0.5);
        x[i] = (float)v;
    }
    return x;
}

static void put_le(uint8_t *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t *wav_s16(const int16_t *interleaved, size_t frames, int rate, int channels, size_t *len)
{
    size_t data = frames * (size_t)channels * 2;
    *len = 44 + data;
    uint8_t *w = malloc(*len);
    memcpy(w, "RIFF", 4);
    put_le(w + 4, (uint32_t)(36 + data), 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    put_le(w + 16, 16, 4);
    put_le(w + 20, 1, 2);
    put_le(w + 22, (uint32_t)channels, 2);
    put_le(w + 24, (uint32_t)rate, 4);
    put_le(w + 28, (uint32_t)(rate * channels * 2), 4);
    put_le(w + 32, (uint32_t)(channels * 2), 2);
    put_le(w + 34, 16, 2);
    memcpy(w + 36, "data", 4);
    put_le(w + 40, (uint32_t)data, 4);
    for (size_t i = 0; i < frames * (size_t)channels; i++)
        put_le(w + 44 + 2 * i, (uint16_t)interleaved[i], 2);
    return w;
}

int ws_raw_connect(int port, const char *path, int rcvbuf, int sndbuf)
{
    int fd = loopback_connect(port, rcvbuf, sndbuf);
    if (fd < 0) return -1;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path);
    if (n <= 0 || (size_t)n >= sizeof req || http_send_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    /* The 101 head, byte by byte so nothing after it is consumed. */
    char head[1024];
    size_t got = 0;
    while (got < sizeof head - 1) {
        if (recv(fd, head + got, 1, 0) != 1) break;
        got++;
        if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4)) break;
    }
    head[got] = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

size_t ws_raw_frame(int opcode, const void *payload, size_t len, uint8_t *out)
{
    static const uint8_t mask[4] = {0x5a, 0x13, 0xc7, 0x80};
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(out + h, mask, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++) out[h + i] = p[i] ^ mask[i & 3];
    return h + len;
}
