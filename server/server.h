/*
 * server.h -- snnd's daemon: structures shared by the server's files.
 *
 * Data flow (one libuv loop thread does all I/O; model steps run on the libuv
 * thread pool, sized by "workers", or on the loop thread itself for streams
 * whose batches are cheap, "inline_step_us"):
 *
 *   socket -> conn.c (read, framing.h, unpack Envelope)
 *          -> handlers.c (one function per request)
 *          -> stream.c (inbox of input messages; one batch per stream at a
 *             time, on the pool or inline, so a stream's steps always run in order)
 *          -> session.h (bins, model steps) -> encoded Prediction frames
 *          -> pubsub.c (one shared buffer written to every subscriber, with
 *             per-subscriber output limits) -> socket
 *
 * Ownership: the loop thread owns everything except, while a stream's work
 * item is running, that stream's session, its batch and its output buffer,
 * which only the worker touches. A connection or stream that is closing is
 * only marked; it is freed when nothing refers to it any more (libuv close
 * callbacks, finished work items), never inside a callback that uses it.
 */
#ifndef SNND_SERVER_H
#define SNND_SERVER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "framing.h"
#include "registry.h"
#include "session.h"
#include "snnd.pb-c.h"

typedef struct server server;
typedef struct conn conn;
typedef struct stream stream;

/* Flow control between a stream's worker and the loop: bytes of the stream's
 * output handed to the loop whose writes have not completed. A worker that
 * produces a burst (one message closing a long gap) waits while this is over
 * FLOW_LIMIT, so prompt subscribers are never dropped for the burst's size and
 * the daemon never holds the whole burst. Shared by the stream and its buffers. */
typedef struct flow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t inflight;
    int refs;          /* the stream + each buffer counted in inflight (under mu) */
} flow;

/* A new flow with one reference (the stream's). */
flow *flow_new(void);
/* Drops one reference and bytes of inflight; frees the flow at the last. */
void flow_release(flow *fl, size_t bytes);

/* A buffer shared by several writes (fan-out); freed at refs == 0 (refs are
 * touched by the loop thread only). */
typedef struct shared_buf {
    int refs;
    size_t len;
    flow *fl;          /* counted in fl->inflight until freed, or NULL */
    uint8_t data[];
} shared_buf;

/* Output a worker hands to the loop in the middle of a work item. */
typedef struct out_chunk {
    stream *st;
    conn *to;          /* NULL: the subscribers */
    shared_buf *b;
    struct out_chunk *next;
} out_chunk;

struct conn {
    server *srv;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uint64_t id;
    char peer[64];
    snn_framer framer;
    int refs;              /* 1 while open + queued input items + pending writes */
    int closing;
    int read_paused;       /* back-pressure: too much queued input */
    int draining;          /* shutdown: output flushed, discarding input until the peer closes */
    uint64_t queued_in;    /* bytes of this connection's input waiting in streams */
    uint64_t frames_in;    /* frames this connection sent (BAD_FRAME names the bad one's number) */
    uint64_t out_bytes;    /* bytes written but not yet flushed to the socket */
    uint64_t soft_since;   /* ms timestamp when out_bytes went over the soft limit (0: under) */
    const snnd_token *token; /* from Hello; NULL: none given */
    int dropping;          /* slow subscriber: Error queued, closing after flush */
    uv_timer_t drop_timer; /* forces the close if the flush does not finish */
    int drop_timer_used;
    stream **subs;         /* streams this connection subscribes to */
    uint32_t n_subs, cap_subs;
    uint32_t n_owned;      /* streams this connection opened */
    conn *prev, *next;     /* server's list */
};

/* One queued input message (an unpacked Envelope) with its sender. */
typedef struct in_item {
    Snnd__V1__Envelope *env; /* NULL: the finish marker */
    conn *from;              /* referenced */
    size_t bytes;
    char *path;              /* save_model: the file to write */
    struct in_item *next;
} in_item;

/* One output of a work item: bytes for the subscribers or for one connection. */
typedef struct out_rec {
    conn *to;        /* NULL: every subscriber */
    size_t off, len; /* range in stream->out */
} out_rec;

struct stream {
    server *srv;
    char id[72];
    model_ref *model;
    snn_session *sess;
    conn *owner;            /* NULL once the owner is gone */
    in_item *inbox, **inbox_tail;  /* loop thread */
    in_item *batch;                /* worker, while scheduled */
    int scheduled;
    int finishing;          /* close requested: a finish marker is queued */
    int finished;           /* the worker ran the finish marker */
    uint32_t close_req_id;  /* Envelope.id of the CloseStream (0: none) */
    conn *close_req_from;
    /* output of the running work item (worker writes, loop reads after) */
    uint8_t *out;
    size_t out_len, out_cap;
    out_rec *recs;
    size_t n_recs, cap_recs;
    /* subscribers */
    conn **subs;
    uint32_t n_subs, cap_subs;
    /* stats, copied from the session after each work item (loop thread) */
    snn_session_stats stats;
    uint64_t predictions;   /* copies of the worker's counters (loop thread) */
    double busy_ns;
    uint64_t w_predictions; /* worker: predictions emitted */
    double w_busy_ns;       /* worker: time spent processing input */
    double w_cost_ns;       /* worker: the longest batch, decaying by 1 % a batch */
    uint64_t w_batches;     /* worker: batches processed */
    int on_loop;            /* the batch runs on the loop thread (inline_step_us) */
    flow *fl;
    float *scratch;         /* worker: decoded audio samples */
    size_t scratch_cap;
    stream *prev, *next;    /* server's list */
    stream *hnext;          /* hash chain */
    stream *rnext;          /* ready list (scheduled, waiting for a work item) */
};

#define STREAM_BUCKETS 4096

struct server {
    uv_loop_t *loop;
    snnd_config cfg;
    const char *config_path;
    int models_from_cli;   /* --models given: SIGHUP keeps it */
    uint64_t last_scan_ms; /* last model-directory scan for a Welcome */
    registry reg;
    uv_handle_t *listeners[SNND_MAX_LISTEN];
    int n_listeners;
    uv_signal_t sig_int, sig_term, sig_hup, sig_pipe;
    uv_timer_t shutdown_timer;
    uv_timer_t trim_timer;     /* malloc_trim() every cfg.trim_interval_seconds */
    conn *conns;
    uint32_t n_conns;
    uint64_t next_conn_id;
    stream *streams;
    uint32_t n_streams;
    stream *by_id[STREAM_BUCKETS];
    int shutting_down;
    uint64_t start_ms;
    /* streams with a batch ready, submitted together once per loop iteration */
    stream *ready, **ready_tail;
    uint32_t n_ready;
    uv_check_t sched_check;  /* submits at the end of the iteration that queued */
    double loop_busy;        /* share of recent wall time the loop thread worked (server_busy) */
    uint64_t busy_t0, busy_idle0; /* uv_hrtime() and uv_metrics_idle_time() at the last sample */
    uv_idle_t sched_idle;    /* ... and keeps poll from sleeping when queued from a timer */
    /* output handed over by workers mid-item (stream.c) */
    uv_async_t out_async;
    pthread_mutex_t outq_mu;
    out_chunk *outq, **outq_tail;
    /* counters */
    uint64_t frames_in, frames_out, bytes_in, bytes_out, steps, predictions_sent, subs_dropped, errors_sent;
    uint64_t batches_inline, batches_workers; /* stream batches run on the loop / on the workers */
    uint32_t queued_items;
};

/* server.c */
int server_init(server *s, uv_loop_t *loop, const snnd_config *cfg, const char *config_path);
int server_listen(server *s);
void server_shutdown(server *s, const char *why);
void server_maybe_exit(server *s);
void server_free(server *s);

/* conn.c */
void conn_accept(server *s, uv_stream_t *listener);
void conn_close(conn *c, const char *why);
/* Shutdown: discards further input and closes when the peer does. */
void conn_drain(conn *c);
void conn_ref(conn *c);
void conn_unref(conn *c);
/* Queues a shared buffer for writing; applies the output limits. */
void conn_write_shared(conn *c, shared_buf *b);
/* Encodes env into a new frame and queues it. */
void conn_send(conn *c, const Snnd__V1__Envelope *env);
/* Sends Error (code, message) answering request id/name (stream may be NULL). */
void conn_send_error(conn *c, uint32_t req_id, const char *req, const char *stream_id, int code, const char *fmt,
                     ...) __attribute__((format(printf, 6, 7)));
void conn_input_done(conn *c, size_t bytes);
uint64_t now_ms(void);

/* handlers.c */
void handle_envelope(conn *c, Snnd__V1__Envelope *env, size_t bytes);
const char *envelope_name(int msg_case);

/* stream.c */
stream *stream_find(server *s, const char *id);
int stream_open(server *s, conn *owner, const Snnd__V1__OpenStream *req, uint32_t req_id, stream **out);
void stream_enqueue(stream *st, conn *from, Snnd__V1__Envelope *env, size_t bytes);
/* Queues a SaveModel request (written by the worker, in order with the input). */
void stream_enqueue_save(stream *st, conn *from, Snnd__V1__Envelope *env, const char *path);
void stream_close(stream *st, conn *from, uint32_t req_id);
void stream_owner_gone(stream *st);
int stream_subscribe(stream *st, conn *c);
void stream_unsubscribe(stream *st, conn *c);
void stream_fill_stats(const stream *st, Snnd__V1__StreamStats *out);
/* Loop thread: writes the output workers handed over (in order). */
void stream_drain_chunks(server *s);
/* Loop thread, once per iteration: submits the ready streams to the workers,
 * several streams per work item (one wake-up instead of one per stream). */
void stream_submit_ready(server *s);

/* Updates s->loop_busy, the share of the last tens of milliseconds the loop thread spent
 * working rather than waiting for events (a moving average of 10 ms samples), and returns it. */
double server_busy(server *s);

/* shared buffers */
shared_buf *shared_buf_new(size_t len);
void shared_buf_unref(shared_buf *b);
/* Packs env into a new shared buffer with its varint length prefix. */
shared_buf *envelope_frame(const Snnd__V1__Envelope *env);

#endif
