/*
 * conn.c -- one client connection: reading frames, writing with limits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

typedef struct write_req {
    uv_write_t req;
    conn *c;
    shared_buf *b;
} write_req;

uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

flow *flow_new(void)
{
    flow *fl = calloc(1, sizeof *fl);
    if (!fl)
        return NULL;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    fl->refs = 1;
    return fl;
}

void flow_release(flow *fl, size_t bytes)
{
    pthread_mutex_lock(&fl->mu);
    fl->inflight -= bytes;
    int last = --fl->refs == 0;
    pthread_cond_signal(&fl->cv);
    pthread_mutex_unlock(&fl->mu);
    if (last) {
        pthread_mutex_destroy(&fl->mu);
        pthread_cond_destroy(&fl->cv);
        free(fl);
    }
}

shared_buf *shared_buf_new(size_t len)
{
    shared_buf *b = malloc(sizeof *b + len);
    if (b) {
        b->refs = 1;
        b->len = len;
        b->fl = NULL;
    }
    return b;
}

void shared_buf_unref(shared_buf *b)
{
    if (!b || --b->refs > 0)
        return;
    if (b->fl)
        flow_release(b->fl, b->len);
    free(b);
}

shared_buf *envelope_frame(const Snnd__V1__Envelope *env)
{
    size_t n = snnd__v1__envelope__get_packed_size(env);
    shared_buf *b = shared_buf_new(n + 5);
    if (!b)
        return NULL;
    size_t k = snn_varint_put(b->data, (uint32_t)n);
    snnd__v1__envelope__pack(env, b->data + k);
    b->len = k + n;
    return b;
}

void conn_ref(conn *c) { c->refs++; }

void conn_unref(conn *c)
{
    if (--c->refs > 0)
        return;
    snn_framer_free(&c->framer);
    free(c->subs);
    free(c);
}

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    server *s = c->srv;
    conn_unref(c);
    server_maybe_exit(s);
}

static void on_timer_close(uv_handle_t *h)
{
    conn_unref(h->data);
}

void conn_close(conn *c, const char *why)
{
    if (c->closing)
        return;
    server *s = c->srv;
    c->closing = 1;
    log_info("close conn %llu (%s): %s", (unsigned long long)c->id, c->peer, why);
    /* Leave every subscription and finish the streams it owns. */
    while (c->n_subs)
        stream_unsubscribe(c->subs[c->n_subs - 1], c);
    for (stream *st = s->streams, *next; st; st = next) {
        next = st->next;
        if (st->owner == c)
            stream_owner_gone(st);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    uv_read_stop(&c->h.stream);
    if (c->drop_timer_used) {
        conn_ref(c);
        uv_close((uv_handle_t *)&c->drop_timer, on_timer_close);
    }
    uv_close(&c->h.handle, on_close);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;
    c->out_bytes -= w->b->len;
    if (c->out_bytes <= c->srv->cfg.subscriber_soft_bytes)
        c->soft_since = 0;
    shared_buf_unref(w->b);
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing)
        conn_close(c, uv_strerror(status));
    conn_unref(c);
}

/* Writes b without applying limits (used for the Error that drops a client). */
static void write_raw(conn *c, shared_buf *b)
{
    write_req *w = malloc(sizeof *w);
    if (!w) {
        conn_close(c, "out of memory");
        return;
    }
    w->c = c;
    w->b = b;
    b->refs++;
    conn_ref(c);
    c->out_bytes += b->len;
    c->srv->frames_out++;
    c->srv->bytes_out += b->len;
    uv_buf_t buf = uv_buf_init((char *)b->data, (unsigned)b->len);
    int rc = uv_write(&w->req, &c->h.stream, &buf, 1, on_write);
    if (rc < 0) {
        c->out_bytes -= b->len;
        shared_buf_unref(b);
        free(w);
        conn_unref(c);
        conn_close(c, uv_strerror(rc));
    }
}

static void on_drop_timeout(uv_timer_t *t)
{
    conn_close(t->data, "slow subscriber did not drain its output in time");
}

static void on_drop_flushed(uv_shutdown_t *req, int status)
{
    (void)status;
    conn *c = req->data;
    free(req);
    conn_close(c, "slow subscriber dropped");
    conn_unref(c);
}

/* Drops a subscriber over its output limit: it leaves every stream (so it
 * gets nothing more and its queue stops growing), is sent an Error after
 * what is already queued, and is closed once that is flushed or after 5 s. */
static void drop_slow(conn *c, const char *why)
{
    server *s = c->srv;
    if (c->dropping)
        return;
    c->dropping = 1;
    s->subs_dropped++;
    log_warn("drop conn %llu (%s): %s", (unsigned long long)c->id, c->peer, why);
    while (c->n_subs)
        stream_unsubscribe(c->subs[c->n_subs - 1], c);
    uv_read_stop(&c->h.stream);
    Snnd__V1__Error e = SNND__V1__ERROR__INIT;
    e.code = SNND__V1__ERROR_CODE__SLOW_SUBSCRIBER;
    e.message = (char *)why;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_ERROR;
    env.error = &e;
    shared_buf *b = envelope_frame(&env);
    if (b) {
        write_raw(c, b);
        shared_buf_unref(b);
        s->errors_sent++;
    }
    if (c->closing)
        return;
    uv_timer_init(s->loop, &c->drop_timer);
    c->drop_timer.data = c;
    c->drop_timer_used = 1;
    uv_timer_start(&c->drop_timer, on_drop_timeout, 5000, 0);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
        req->data = c;
        conn_ref(c);
        if (uv_shutdown(req, &c->h.stream, on_drop_flushed) < 0) {
            free(req);
            conn_unref(c);
        }
    }
}

void conn_write_shared(conn *c, shared_buf *b)
{
    if (c->closing || c->dropping)
        return;
    const snnd_config *cfg = &c->srv->cfg;
    write_raw(c, b);
    if (c->closing)
        return;
    /* Redis-style output limits on what the kernel has not taken yet. */
    size_t q = uv_stream_get_write_queue_size(&c->h.stream);
    char why[160];
    if (q > cfg->subscriber_hard_bytes) {
        snprintf(why, sizeof why, "output queue %zu bytes over the hard limit of %llu bytes", q,
                 (unsigned long long)cfg->subscriber_hard_bytes);
        drop_slow(c, why);
    } else if (q > cfg->subscriber_soft_bytes) {
        uint64_t t = now_ms();
        if (!c->soft_since)
            c->soft_since = t;
        else if ((double)(t - c->soft_since) >= cfg->subscriber_soft_seconds * 1000.0) {
            snprintf(why, sizeof why, "output queue over the soft limit of %llu bytes for %.0f s",
                     (unsigned long long)cfg->subscriber_soft_bytes, cfg->subscriber_soft_seconds);
            drop_slow(c, why);
        }
    } else {
        c->soft_since = 0;
    }
}

void conn_send(conn *c, const Snnd__V1__Envelope *env)
{
    if (c->closing)
        return;
    shared_buf *b = envelope_frame(env);
    if (!b) {
        conn_close(c, "out of memory");
        return;
    }
    conn_write_shared(c, b);
    shared_buf_unref(b);
}

void conn_send_error(conn *c, uint32_t req_id, const char *req, const char *stream_id, int code, const char *fmt,
                     ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Snnd__V1__Error e = SNND__V1__ERROR__INIT;
    e.code = (Snnd__V1__ErrorCode)code;
    e.message = msg;
    e.request_id = req_id;
    e.request = (char *)(req ? req : "");
    e.stream_id = (char *)(stream_id ? stream_id : "");
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = req_id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_ERROR;
    env.error = &e;
    log_debug("conn %llu: error %d answering %s: %s", (unsigned long long)c->id, code, req ? req : "-", msg);
    c->srv->errors_sent++;
    conn_send(c, &env);
}

void conn_drain(conn *c)
{
    c->draining = 1;
    c->read_paused = 0;
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

void conn_input_done(conn *c, size_t bytes)
{
    c->queued_in -= bytes;
    if (c->read_paused && !c->closing && !c->draining && !c->dropping &&
        c->queued_in <= c->srv->cfg.input_queue_bytes / 2) {
        c->read_paused = 0;
        uv_read_start(&c->h.stream, on_alloc, on_read);
    }
    conn_unref(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char slab[65536]; /* one loop thread: read_cb copies it out at once */
    *buf = uv_buf_init(slab, sizeof slab);
}

static void bad_frame(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_frame(conn *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_send_error(c, 0, "", "", SNND__V1__ERROR_CODE__BAD_FRAME, "%s", msg);
    conn_close(c, msg);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = h->data;
    if (nread < 0) {
        if (snn_framer_pending(&c->framer) > 0)
            conn_close(c, "disconnected in the middle of a frame");
        else
            conn_close(c, nread == UV_EOF ? "disconnected" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing || c->draining || c->dropping)
        return; /* draining or dropped: the peer's late input is discarded */
    server *s = c->srv;
    s->bytes_in += (uint64_t)nread;
    if (snn_framer_feed(&c->framer, (const uint8_t *)buf->base, (size_t)nread) < 0) {
        conn_close(c, "out of memory");
        return;
    }
    conn_ref(c); /* handlers may close c */
    while (!c->closing) {
        const uint8_t *f;
        size_t len;
        snn_frame_status st = snn_framer_next(&c->framer, &f, &len);
        if (st == SNN_FRAME_NEED_MORE)
            break;
        if (st == SNN_FRAME_TOO_BIG) {
            bad_frame(c, "frame of %u bytes exceeds max_frame_bytes (%u)", c->framer.last_len,
                      c->framer.max_frame);
            break;
        }
        if (st == SNN_FRAME_BAD) {
            bad_frame(c, "malformed frame length prefix (not a varint32)");
            break;
        }
        s->frames_in++;
        c->frames_in++;
        Snnd__V1__Envelope *env = snnd__v1__envelope__unpack(NULL, len, f);
        if (!env) {
            bad_frame(c, "frame %llu of this connection (%zu bytes) does not decode as snnd.v1.Envelope",
                      (unsigned long long)c->frames_in, len);
            break;
        }
        handle_envelope(c, env, len);
    }
    if (!c->closing && !c->read_paused && c->queued_in > s->cfg.input_queue_bytes) {
        c->read_paused = 1; /* back-pressure: resumes when the streams catch up */
        uv_read_stop(&c->h.stream);
        log_debug("conn %llu: paused reading (%llu bytes queued)", (unsigned long long)c->id,
                  (unsigned long long)c->queued_in);
    }
    conn_unref(c);
}

void conn_accept(server *s, uv_stream_t *listener)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    c->refs = 1;
    c->id = ++s->next_conn_id;
    int rc;
    if (listener->type == UV_TCP)
        rc = uv_tcp_init(s->loop, &c->h.tcp);
    else
        rc = uv_pipe_init(s->loop, &c->h.pipe, 0);
    if (rc < 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    snn_framer_init(&c->framer, s->cfg.max_frame_bytes);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if ((rc = uv_accept(listener, &c->h.stream)) < 0) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    if (listener->type == UV_TCP) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char host[48] = "?";
        uv_tcp_nodelay(&c->h.tcp, 1);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET6) {
                uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
                snprintf(c->peer, sizeof c->peer, "[%s]:%d", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
            } else {
                uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
                snprintf(c->peer, sizeof c->peer, "%s:%d", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
            }
        }
    } else {
        snprintf(c->peer, sizeof c->peer, "unix");
    }
    if (s->shutting_down) {
        conn_send_error(c, 0, "", "", SNND__V1__ERROR_CODE__SHUTTING_DOWN, "snnd is shutting down");
        conn_close(c, "shutting down");
        return;
    }
    if (s->n_conns > s->cfg.max_connections) {
        conn_send_error(c, 0, "", "", SNND__V1__ERROR_CODE__LIMIT, "connection limit reached (max_connections %u)",
                        s->cfg.max_connections);
        conn_close(c, "over max_connections");
        return;
    }
    log_debug("accept conn %llu (%s)", (unsigned long long)c->id, c->peer);
    uv_read_start(&c->h.stream, on_alloc, on_read);
}
