#include "server/ws_client.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

typedef struct out_msg {
    struct out_msg *next;
    int binary;
    size_t len;
    unsigned char *buf; /* LWS_PRE headroom */
} out_msg;

typedef struct in_msg {
    struct in_msg *next;
    ls_ws_message m;
} in_msg;

struct ls_ws_client {
    struct lws_context *ctx;
    struct lws *wsi;          /* service thread only */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int stop;
    int state;                /* [lock] 0 connecting, 1 open, -1 closed/failed */
    char error[256];          /* [lock] */
    out_msg *out_head, *out_tail; /* [lock] */
    int out_count;
    in_msg *in_head, *in_tail;    /* [lock] */
    int want_close;           /* [lock] */
    /* [service thread] message being reassembled */
    unsigned char *rx;
    size_t rx_len, rx_cap;
};

static void set_state(ls_ws_client *c, int state, const char *why)
{
    pthread_mutex_lock(&c->lock);
    if (c->state != -1) c->state = state;
    if (why && !c->error[0]) snprintf(c->error, sizeof c->error, "%s", why);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    (void)user;
    ls_ws_client *c = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        set_state(c, 1, NULL);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        set_state(c, -1, in ? (const char *)in : "connection failed");
        c->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        set_state(c, -1, "closed");
        c->wsi = NULL;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (c->wsi) lws_callback_on_writable(c->wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (c->rx_len + len + 1 > c->rx_cap) {
            size_t cap = (c->rx_len + len + 1) * 2;
            unsigned char *b = realloc(c->rx, cap);
            if (!b) return -1;
            c->rx = b;
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
        in_msg *m = calloc(1, sizeof *m);
        if (!m) return -1;
        m->m.binary = lws_frame_is_binary(wsi);
        m->m.len = c->rx_len;
        m->m.t_recv = ls_now();
        m->m.data = malloc(c->rx_len + 1);
        if (!m->m.data) {
            free(m);
            return -1;
        }
        memcpy(m->m.data, c->rx, c->rx_len);
        m->m.data[c->rx_len] = 0;
        c->rx_len = 0;
        pthread_mutex_lock(&c->lock);
        if (c->in_tail)
            c->in_tail->next = m;
        else
            c->in_head = m;
        c->in_tail = m;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        pthread_mutex_lock(&c->lock);
        out_msg *m = c->out_head;
        if (m) {
            c->out_head = m->next;
            if (!c->out_head) c->out_tail = NULL;
        }
        int close = !m && c->want_close;
        pthread_mutex_unlock(&c->lock);
        if (close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (!m) return 0;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(m->buf);
        free(m);
        pthread_mutex_lock(&c->lock);
        c->out_count--;
        int more = c->out_head != NULL || c->want_close;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        if (n < 0) return -1;
        if (more) lws_callback_on_writable(wsi);
        return 0;
    }
    default:
        return 0;
    }
}

static const struct lws_protocols client_protocols[] = {
    {"lipsync-client", client_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    ls_ws_client *c = arg;
    while (!atomic_load(&c->stop))
        if (lws_service(c->ctx, 0) < 0) break;
    return NULL;
}

static void abs_deadline(struct timespec *ts, double timeout_s)
{
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + ts->tv_nsec * 1e-9 + timeout_s;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
}

int ls_ws_client_connect(const char *host, int port, const char *path, double timeout_s,
                         ls_ws_client **out, ls_error *err)
{
    *out = NULL;
    ls_ws_client *c = calloc(1, sizeof *c);
    if (!c) return ls_error_set(err, LS_ERR_NOMEM, "ws client: out of memory");
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_protocols;
    info.user = c;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        ls_ws_client_destroy(c);
        return ls_error_set(err, LS_ERR_INTERNAL, "ws client: cannot create lws context");
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = NULL; /* the server's default protocol */
    ci.local_protocol_name = "lipsync-client";
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        ls_ws_client_destroy(c);
        return ls_error_set(err, LS_ERR_IO, "ws client: cannot connect to %s:%d", host, port);
    }
    if (pthread_create(&c->thread, NULL, service_main, c) != 0) {
        ls_ws_client_destroy(c);
        return ls_error_set(err, LS_ERR_INTERNAL, "ws client: cannot start its thread");
    }
    c->thread_started = 1;
    struct timespec ts;
    abs_deadline(&ts, timeout_s);
    pthread_mutex_lock(&c->lock);
    while (c->state == 0)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts)) break;
    int state = c->state;
    char why[256];
    snprintf(why, sizeof why, "%s", c->error);
    pthread_mutex_unlock(&c->lock);
    if (state != 1) {
        ls_ws_client_destroy(c);
        return ls_error_set(err, LS_ERR_IO, "ws connect to %s:%d%s: %s", host, port, path,
                            state == 0 ? "timed out" : why);
    }
    *out = c;
    return LS_OK;
}

int ls_ws_client_send(ls_ws_client *c, int binary, const void *data, size_t len, ls_error *err)
{
    out_msg *m = calloc(1, sizeof *m);
    if (m) m->buf = malloc(LWS_PRE + len + 1);
    if (!m || !m->buf) {
        free(m);
        return ls_error_set(err, LS_ERR_NOMEM, "ws client: out of memory");
    }
    memcpy(m->buf + LWS_PRE, data, len);
    m->binary = binary;
    m->len = len;
    pthread_mutex_lock(&c->lock);
    int open = c->state == 1;
    if (open) {
        if (c->out_tail)
            c->out_tail->next = m;
        else
            c->out_head = m;
        c->out_tail = m;
        c->out_count++;
    }
    pthread_mutex_unlock(&c->lock);
    if (!open) {
        free(m->buf);
        free(m);
        return ls_error_set(err, LS_ERR_IO, "ws client: connection closed");
    }
    lws_cancel_service(c->ctx);
    return LS_OK;
}

int ls_ws_client_recv(ls_ws_client *c, ls_ws_message *m, double timeout_s)
{
    struct timespec ts;
    abs_deadline(&ts, timeout_s);
    pthread_mutex_lock(&c->lock);
    while (!c->in_head && c->state == 1)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts)) break;
    in_msg *im = c->in_head;
    if (im) {
        c->in_head = im->next;
        if (!c->in_head) c->in_tail = NULL;
    }
    int closed = c->state != 1;
    pthread_mutex_unlock(&c->lock);
    if (!im) return closed ? LS_ERR_IO : 0;
    *m = im->m;
    free(im);
    return 1;
}

void ls_ws_message_free(ls_ws_message *m)
{
    free(m->data);
    m->data = NULL;
}

int ls_ws_client_pending_sends(ls_ws_client *c)
{
    pthread_mutex_lock(&c->lock);
    int n = c->out_count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void ls_ws_client_destroy(ls_ws_client *c)
{
    if (!c) return;
    if (c->ctx && c->thread_started) {
        pthread_mutex_lock(&c->lock);
        c->want_close = 1;
        int open = c->state == 1;
        pthread_mutex_unlock(&c->lock);
        if (open) {
            /* Let the close frame go out, briefly. */
            lws_cancel_service(c->ctx);
            struct timespec ts;
            abs_deadline(&ts, 1.0);
            pthread_mutex_lock(&c->lock);
            while (c->state == 1)
                if (pthread_cond_timedwait(&c->cond, &c->lock, &ts)) break;
            pthread_mutex_unlock(&c->lock);
        }
        atomic_store(&c->stop, 1);
        lws_cancel_service(c->ctx);
        pthread_join(c->thread, NULL);
    }
    if (c->ctx) lws_context_destroy(c->ctx);
    for (out_msg *m = c->out_head, *n; m; m = n) {
        n = m->next;
        free(m->buf);
        free(m);
    }
    for (in_msg *m = c->in_head, *n; m; m = n) {
        n = m->next;
        free(m->m.data);
        free(m);
    }
    free(c->rx);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
