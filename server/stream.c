/*
 * stream.c -- streams: their input queue, their work on the thread pool, and
 * the fan-out of their predictions to subscribers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "server.h"

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % STREAM_BUCKETS;
}

stream *stream_find(server *s, const char *id)
{
    for (stream *st = s->by_id[hash_id(id)]; st; st = st->hnext)
        if (!strcmp(st->id, id))
            return st;
    return NULL;
}

static int valid_stream_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

int stream_open(server *s, conn *owner, const Snnd__V1__OpenStream *req, uint32_t req_id, stream **out)
{
    const char *R = "open_stream";
    *out = NULL;
    if (!valid_stream_id(req->stream_id)) {
        conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "stream_id \"%.80s\" is not valid (1 to 64 of A-Z a-z 0-9 . _ : -)", req->stream_id);
        return -1;
    }
    if (stream_find(s, req->stream_id)) {
        conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__STREAM_EXISTS,
                        "stream \"%s\" is already open", req->stream_id);
        return -1;
    }
    if (s->n_streams >= s->cfg.max_streams || owner->n_owned >= s->cfg.max_streams_per_connection) {
        conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__LIMIT,
                        "stream limit reached (max_streams %u, max_streams_per_connection %u)", s->cfg.max_streams,
                        s->cfg.max_streams_per_connection);
        return -1;
    }
    snn_session_cfg sc = {.input = (snn_input_kind)req->input_kind, .bin_us = req->bin_width_us};
    if ((unsigned)req->input_kind > SNN_INPUT_ANALOG) {
        conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "input_kind %d is not known", (int)req->input_kind);
        return -1;
    }
    for (size_t i = 0; i < req->n_options; i++) {
        const char *k = req->options[i]->key, *v = req->options[i]->value;
        char *end;
        snn_err le = {{0}};
        int lrc = snn_learn_option(&sc.learn, k, v, &le);
        if (lrc < 0) {
            conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST, "%s", le.msg);
            return -1;
        }
        if (lrc > 0)
            continue;
        if (!strcmp(k, "segment_silence_ms")) {
            double ms = strtod(v, &end);
            if (*end || !(ms >= 0 && ms <= 3600e3)) {
                conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                                "option segment_silence_ms=\"%.40s\": expected milliseconds in [0, 3600000]", v);
                return -1;
            }
            sc.segment_silence_us = (int64_t)(ms * 1000);
        } else if (!strcmp(k, "tactile_hold_ms")) {
            double ms = strtod(v, &end);
            if (*end || !(ms > 0 && ms <= 3600e3)) {
                conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                                "option tactile_hold_ms=\"%.40s\": expected milliseconds in (0, 3600000]", v);
                return -1;
            }
            sc.tactile_hold_us = (int64_t)(ms * 1000);
        } else {
            conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                            "unknown option \"%.60s\" (known: segment_silence_ms, tactile_hold_ms, learn, lr, optimizer, learn_weights, "
                            "feedback, update_interval, reg_rate_hz, reg_strength)", k);
            return -1;
        }
    }
    int code;
    char err[512];
    model_ref *ref = registry_open(&s->reg, req->model, &code, err, sizeof err);
    if (!ref) {
        conn_send_error(owner, req_id, R, req->stream_id, code, "%s", err);
        return -1;
    }
    stream *st = calloc(1, sizeof *st);
    snn_err e = {{0}};
    int rc = st ? snn_session_new(ref->m, &sc, NULL, &st->sess, &e) : -SNN_ENOMEM;
    if (rc < 0) {
        conn_send_error(owner, req_id, R, req->stream_id,
                        rc == -SNN_ENOTSUP ? SNND__V1__ERROR_CODE__MODEL_ERROR : SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "%s", st ? e.msg : "out of memory");
        free(st);
        registry_release(ref);
        return -1;
    }
    st->srv = s;
    st->fl = flow_new();
    if (!st->fl) {
        conn_send_error(owner, req_id, R, req->stream_id, SNND__V1__ERROR_CODE__INTERNAL, "out of memory");
        snn_session_free(st->sess);
        free(st);
        registry_release(ref);
        return -1;
    }
    snprintf(st->id, sizeof st->id, "%s", req->stream_id);
    st->model = ref;
    st->owner = owner;
    st->inbox_tail = &st->inbox;
    owner->n_owned++;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    uint32_t h = hash_id(st->id);
    st->hnext = s->by_id[h];
    s->by_id[h] = st;
    s->n_streams++;
    log_info("open stream %s model %s input %s bin %u us (conn %llu)", st->id, ref->m->name,
             snn_input_kind_name(snn_session_input(st->sess)), snn_session_bin_us(st->sess),
             (unsigned long long)owner->id);
    *out = st;
    return 0;
}

/* ---- worker side: only the stream's session, batch and output ------------ */

static int out_reserve(stream *st, size_t n)
{
    if (st->out_len + n <= st->out_cap)
        return 0;
    size_t cap = st->out_cap ? st->out_cap : 4096;
    while (cap < st->out_len + n)
        cap *= 2;
    uint8_t *b = realloc(st->out, cap);
    if (!b)
        return -1;
    st->out = b;
    st->out_cap = cap;
    return 0;
}

/* Output held by a running work item before it is handed to the loop, and
 * the most handed-over output of one stream whose writes may be pending. */
#define CHUNK_BYTES (256u << 10)
#define FLOW_LIMIT (2u << 20)

/* Worker: hands the output gathered so far to the loop (which writes it at
 * once), then waits while too much of this stream's output is unwritten. */
static void handoff(stream *st)
{
    server *s = st->srv;
    out_chunk *head = NULL, **tail = &head;
    size_t bytes = 0;
    for (size_t i = 0; i < st->n_recs; i++) {
        out_rec *r = &st->recs[i];
        out_chunk *c = malloc(sizeof *c);
        shared_buf *b = c ? shared_buf_new(r->len) : NULL;
        if (!b) {
            free(c);
            continue; /* out of memory: that output is lost, the stream goes on */
        }
        memcpy(b->data, st->out + r->off, r->len);
        b->fl = st->fl;
        bytes += r->len;
        *c = (out_chunk){.st = st, .to = r->to, .b = b};
        *tail = c;
        tail = &c->next;
    }
    st->out_len = 0;
    st->n_recs = 0;
    if (!head)
        return;
    pthread_mutex_lock(&st->fl->mu);
    for (out_chunk *c = head; c; c = c->next)
        st->fl->refs++;
    st->fl->inflight += bytes;
    pthread_mutex_unlock(&st->fl->mu);
    pthread_mutex_lock(&s->outq_mu);
    *s->outq_tail = head;
    s->outq_tail = tail;
    pthread_mutex_unlock(&s->outq_mu);
    uv_async_send(&s->out_async);
    if (st->on_loop)
        return; /* the loop delivers it before the batch's other output (run_inline) */
    /* Wait for the subscribers to take it (the loop drops those that do not,
     * which cancels their writes); give up waiting after 30 s in all. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&st->fl->mu);
    while (st->fl->inflight > FLOW_LIMIT)
        if (pthread_cond_timedwait(&st->fl->cv, &st->fl->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&st->fl->mu);
}

/* Appends env as a frame for `to` (NULL: the subscribers). */
static void out_frame(stream *st, conn *to, const Snnd__V1__Envelope *env)
{
    if (st->out_len >= CHUNK_BYTES)
        handoff(st);
    size_t n = snnd__v1__envelope__get_packed_size(env);
    if (out_reserve(st, n + 5) < 0)
        return;
    size_t off = st->out_len;
    size_t k = snn_varint_put(st->out + off, (uint32_t)n);
    snnd__v1__envelope__pack(env, st->out + off + k);
    st->out_len += k + n;
    if (st->n_recs && st->recs[st->n_recs - 1].to == to && st->recs[st->n_recs - 1].off +
                                                                   st->recs[st->n_recs - 1].len == off) {
        st->recs[st->n_recs - 1].len += k + n; /* one buffer for consecutive frames */
        return;
    }
    if (st->n_recs == st->cap_recs) {
        size_t cap = st->cap_recs ? st->cap_recs * 2 : 16;
        out_rec *r = realloc(st->recs, cap * sizeof *r);
        if (!r)
            return;
        st->recs = r;
        st->cap_recs = cap;
    }
    st->recs[st->n_recs++] = (out_rec){.to = to, .off = off, .len = k + n};
}

static void emit(void *ctx, const snn_output *o)
{
    stream *st = ctx;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    if (o->type == SNN_OUT_PREDICTION) {
        Snnd__V1__Prediction p = SNND__V1__PREDICTION__INIT;
        p.stream_id = st->id;
        p.step = o->step;
        p.t_us = (uint64_t)o->t_us;
        p.n_values = o->n;
        p.values = (float *)o->values;
        p.hidden_spikes = o->info.hidden_spikes;
        p.learning = o->learning != 0;
        p.loss = o->loss;
        p.outside_decision = o->info.outside_decision != 0;
        env.msg_case = SNND__V1__ENVELOPE__MSG_PREDICTION;
        env.prediction = &p;
        st->w_predictions++;
        out_frame(st, NULL, &env);
    } else {
        const snn_model *m = st->model->m;
        Snnd__V1__Decision d = SNND__V1__DECISION__INIT;
        d.stream_id = st->id;
        d.step = o->step;
        d.t_us = (uint64_t)o->t_us;
        d.label = (char *)(o->label ? o->label : "");
        d.index = o->index;
        d.n_values = o->n;
        d.values = (float *)o->values;
        d.n_names = m->out_names ? m->n_out : 0;
        d.names = m->out_names;
        d.final = o->final != 0;
        env.msg_case = SNND__V1__ENVELOPE__MSG_DECISION;
        env.decision = &d;
        out_frame(st, NULL, &env);
    }
}

static void item_error(stream *st, in_item *it, const char *req, int code, const char *msg)
{
    Snnd__V1__Error e = SNND__V1__ERROR__INIT;
    e.code = (Snnd__V1__ErrorCode)code;
    e.message = (char *)msg;
    e.request_id = it->env ? it->env->id : 0;
    e.request = (char *)req;
    e.stream_id = st->id;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = e.request_id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_ERROR;
    env.error = &e;
    out_frame(st, it->from, &env);
}

/* Converts PCM bytes (format PCM_S16LE or PCM_F32LE) to float samples in st->scratch; returns
 * the count, -1 when the bytes are not whole samples, -3 when out of memory. */
static long pcm_to_float(stream *st, const Snnd__V1__AudioChunk *a)
{
    size_t bps = a->format == SNND__V1__SAMPLE_FORMAT__PCM_F32LE ? 4 : 2;
    if (a->pcm.len % bps)
        return -1;
    size_t n = a->pcm.len / bps;
    if (n > st->scratch_cap) {
        float *f = realloc(st->scratch, n * sizeof *f);
        if (!f)
            return -3;
        st->scratch = f;
        st->scratch_cap = n;
    }
    const uint8_t *p = a->pcm.data;
    for (size_t i = 0; i < n; i++) {
        if (bps == 2) {
            int16_t v = (int16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            st->scratch[i] = (float)v / 32768.0f;
        } else {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&st->scratch[i], &u, 4);
        }
    }
    return (long)n;
}

static void process(stream *st, in_item *it)
{
    snn_session *ss = st->sess;
    snn_err e = {{0}};
    int rc = 0;
    const char *req = "";
    Snnd__V1__Envelope *env = it->env;
    if (!env) {
        rc = snn_session_finish(ss, emit, st, &e);
        st->finished = 1;
        req = "close_stream";
    } else {
        req = envelope_name(env->msg_case);
        switch (env->msg_case) {
        case SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS: {
            Snnd__V1__SpikeEvents *m = env->spike_events;
            if (m->n_channel != m->n_t_us)
                rc = snn_err_set(&e, SNN_ESHAPE, "spike_events: %zu channels but %zu timestamps", m->n_channel,
                                 m->n_t_us);
            else
                rc = snn_session_spikes(ss, m->channel, m->t_us, m->n_channel, emit, st, &e);
            break;
        }
        case SNND__V1__ENVELOPE__MSG_BINNED_COUNTS: {
            Snnd__V1__BinnedCounts *m = env->binned_counts;
            if (m->n_channels == 0 || m->n_counts % m->n_channels)
                rc = snn_err_set(&e, SNN_ESHAPE, "binned_counts: %zu counts is not a multiple of n_channels %u",
                                 m->n_counts, m->n_channels);
            else
                rc = snn_session_binned(ss, m->counts, m->n_channels, m->n_counts / m->n_channels, m->t_us, emit,
                                        st, &e);
            break;
        }
        case SNND__V1__ENVELOPE__MSG_TACTILE_FRAME: {
            Snnd__V1__TactileFrame *m = env->tactile_frame;
            rc = snn_session_frame(ss, m->t_us, m->values, (uint32_t)m->n_values, emit, st, &e);
            break;
        }
        case SNND__V1__ENVELOPE__MSG_AUDIO_CHUNK: {
            int fmt = (int)env->audio_chunk->format;
            long n = fmt == SNND__V1__SAMPLE_FORMAT__PCM_S16LE || fmt == SNND__V1__SAMPLE_FORMAT__PCM_F32LE
                         ? pcm_to_float(st, env->audio_chunk)
                         : -2;
            if (n == -2)
                rc = snn_err_set(&e, SNN_EINVAL, "audio_chunk: format %d is not a SampleFormat (0 PCM_S16LE, "
                                 "1 PCM_F32LE)", fmt);
            else if (n == -3)
                rc = snn_err_set(&e, SNN_ENOMEM, "audio_chunk: out of memory for %zu bytes of samples",
                                 env->audio_chunk->pcm.len);
            else if (n < 0)
                rc = snn_err_set(&e, SNN_EINVAL, "audio_chunk: %zu bytes is not a whole number of samples",
                                 env->audio_chunk->pcm.len);
            else
                rc = snn_session_audio(ss, st->scratch, (size_t)n, env->audio_chunk->sample_rate, emit, st, &e);
            break;
        }
        case SNND__V1__ENVELOPE__MSG_FLUSH:
            rc = snn_session_flush(ss, env->flush->t_us, emit, st, &e);
            break;
        case SNND__V1__ENVELOPE__MSG_TARGET: {
            Snnd__V1__Target *m = env->target;
            rc = snn_session_target(ss, m->t_us, m->values, (uint32_t)m->n_values, emit, st, &e);
            break;
        }
        case SNND__V1__ENVELOPE__MSG_LABEL:
            rc = snn_session_label(ss, env->label->t_us, env->label->index, emit, st, &e);
            break;
        case SNND__V1__ENVELOPE__MSG_SAVE_MODEL:
            rc = snn_session_save(ss, it->path, &e);
            if (rc < 0) {
                item_error(st, it, req, SNND__V1__ERROR_CODE__MODEL_ERROR, e.msg);
                rc = 0;
            }
            if (rc == 0) {
                Snnd__V1__ModelSaved ms = SNND__V1__MODEL_SAVED__INIT;
                ms.name = env->save_model->name;
                ms.path = it->path;
                ms.stream_id = st->id;
                ms.steps = snn_session_stats_get(ss)->steps;
                Snnd__V1__Envelope out = SNND__V1__ENVELOPE__INIT;
                out.id = env->id;
                out.msg_case = SNND__V1__ENVELOPE__MSG_MODEL_SAVED;
                out.model_saved = &ms;
                out_frame(st, it->from, &out);
            }
            break;
        default:
            rc = snn_err_set(&e, SNN_EINVAL, "unexpected message in stream queue");
        }
    }
    if (rc < 0) {
        int code = SNND__V1__ERROR_CODE__BAD_REQUEST;
        if (rc == -SNN_ESHAPE)
            code = SNND__V1__ERROR_CODE__BAD_SHAPE;
        else if (rc == -SNN_ETIME)
            code = SNND__V1__ERROR_CODE__BAD_TIME;
        item_error(st, it, req, code, e.msg);
    }
}

/* Worker: processes one stream's batch. */
static void work_one(stream *st)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (in_item *it = st->batch; it; it = it->next)
        process(st, it); /* the loop thread, which allocated the envelopes, frees them */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    st->w_busy_ns += t;
    st->w_cost_ns = t > 0.99 * st->w_cost_ns ? t : 0.99 * st->w_cost_ns;
    st->w_batches++;
}

/* ---- loop side ------------------------------------------------------------ */

static void schedule(stream *st);

static void stream_destroy(stream *st)
{
    server *s = st->srv;
    Snnd__V1__StreamClosed sc = SNND__V1__STREAM_CLOSED__INIT;
    sc.stream_id = st->id;
    sc.steps = st->stats.steps;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STREAM_CLOSED;
    env.stream_closed = &sc;
    conn *req = st->close_req_from;
    while (st->n_subs) {
        conn *c = st->subs[st->n_subs - 1];
        if (c != req)
            conn_send(c, &env);
        stream_unsubscribe(st, c);
    }
    if (req) {
        env.id = st->close_req_id;
        conn_send(req, &env);
        conn_unref(req);
    }
    if (st->owner)
        st->owner->n_owned--;
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    stream **pp = &s->by_id[hash_id(st->id)];
    while (*pp != st)
        pp = &(*pp)->hnext;
    *pp = st->hnext;
    s->n_streams--;
    log_info("close stream %s: %llu steps, %llu predictions", st->id, (unsigned long long)st->stats.steps,
             (unsigned long long)st->predictions);
    snn_session_free(st->sess);
    registry_release(st->model);
    flow_release(st->fl, 0);
    free(st->out);
    free(st->recs);
    free(st->subs);
    free(st->scratch);
    free(st);
    server_maybe_exit(s);
}

/* Writes one buffer to its connection or to the stream's subscribers. */
static void deliver(stream *st, conn *to, shared_buf *b)
{
    if (to) {
        if (!to->closing)
            conn_write_shared(to, b);
        return;
    }
    /* Copy the list: a write may drop a slow subscriber (and unsubscribe it). */
    uint32_t n = st->n_subs;
    if (n == 0)
        return; /* st->subs may be NULL: memcpy must not see it */
    conn *list[n];
    memcpy(list, st->subs, n * sizeof *list);
    for (uint32_t k = 0; k < n; k++)
        conn_write_shared(list[k], b);
}

void stream_drain_chunks(server *s)
{
    pthread_mutex_lock(&s->outq_mu);
    out_chunk *c = s->outq;
    s->outq = NULL;
    s->outq_tail = &s->outq;
    pthread_mutex_unlock(&s->outq_mu);
    while (c) {
        out_chunk *next = c->next;
        deliver(c->st, c->to, c->b);
        shared_buf_unref(c->b);
        free(c);
        c = next;
    }
}

/* Loop: delivers one stream's output, releases its batch, and destroys or
 * reschedules it. */
static void after_one(stream *st)
{
    server *s = st->srv;
    uint64_t before = st->stats.steps;
    st->stats = *snn_session_stats_get(st->sess);
    s->steps += st->stats.steps - before;
    s->predictions_sent += (st->w_predictions - st->predictions) * st->n_subs;
    st->predictions = st->w_predictions;
    st->busy_ns = st->w_busy_ns;
    for (size_t i = 0; i < st->n_recs; i++) {
        out_rec *r = &st->recs[i];
        if (r->to && r->to->closing)
            continue;
        if (!r->to && st->n_subs == 0)
            continue;
        shared_buf *b = shared_buf_new(r->len);
        if (!b)
            break;
        memcpy(b->data, st->out + r->off, r->len);
        deliver(st, r->to, b);
        shared_buf_unref(b);
    }
    st->out_len = 0;
    st->n_recs = 0;
    for (in_item *it = st->batch, *next; it; it = next) {
        next = it->next;
        s->queued_items--;
        if (it->from)
            conn_input_done(it->from, it->bytes);
        if (it->env)
            snnd__v1__envelope__free_unpacked(it->env, NULL);
        free(it->path);
        free(it);
    }
    st->batch = NULL;
    st->scheduled = 0;
    if (st->finished) {
        stream_destroy(st);
        return;
    }
    if (st->inbox)
        schedule(st);
}

/* A work item: several ready streams, processed one after the other by one
 * worker (a stream is in at most one item at a time, so its steps stay in order). */
typedef struct work_group {
    uv_work_t work;
    uint32_t n;
    stream *v[];
} work_group;

static void group_work(uv_work_t *w)
{
    work_group *g = w->data;
    for (uint32_t i = 0; i < g->n; i++)
        work_one(g->v[i]);
}

static void group_after(uv_work_t *w, int status)
{
    (void)status;
    work_group *g = w->data;
    if (g->n)
        stream_drain_chunks(g->v[0]->srv); /* what the workers handed over comes first */
    for (uint32_t i = 0; i < g->n; i++)
        after_one(g->v[i]);
    free(g);
}

/* Loop time that inline batches may take per loop iteration, and the share of its time the
 * loop may be busy (server_busy) for them to run at all; the rest go to the workers, so a loop
 * that cannot keep up shares the work with them again. */
#define INLINE_BUDGET_NS 1e6
#define INLINE_MAX_BUSY 0.95
#define INLINE_MAX_STEPS 256 /* and the steps one batch may close (a Flush after an hour's
                              * silence closes ~10^6: the workers wait for slow readers) */

/* An upper bound on the steps item `it` will close in st's session (UINT64_MAX: unknown). */
static uint64_t item_steps(const stream *st, const in_item *it)
{
    const snn_session *ss = st->sess;
    const Snnd__V1__Envelope *env = it->env;
    if (!env)
        return 1; /* the finish marker closes the open bin */
    switch (env->msg_case) {
    case SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS: {
        const Snnd__V1__SpikeEvents *m = env->spike_events;
        return m->n_t_us ? snn_session_steps_to(ss, m->t_us[m->n_t_us - 1]) : 0;
    }
    case SNND__V1__ENVELOPE__MSG_BINNED_COUNTS: {
        const Snnd__V1__BinnedCounts *m = env->binned_counts;
        uint64_t gap = m->t_us ? snn_session_steps_to(ss, m->t_us) : 0;
        size_t bins = m->n_channels ? m->n_counts / m->n_channels : 0;
        return gap == UINT64_MAX ? gap : gap + bins;
    }
    case SNND__V1__ENVELOPE__MSG_TACTILE_FRAME:
        return snn_session_steps_to(ss, env->tactile_frame->t_us);
    case SNND__V1__ENVELOPE__MSG_FLUSH: { /* the open bin in any case */
        uint64_t k = env->flush->t_us ? snn_session_steps_to(ss, env->flush->t_us) : 1;
        return k ? k : 1;
    }
    case SNND__V1__ENVELOPE__MSG_TARGET:
        return snn_session_steps_to(ss, env->target->t_us);
    case SNND__V1__ENVELOPE__MSG_LABEL:
        return snn_session_steps_to(ss, env->label->t_us);
    default:
        return UINT64_MAX; /* audio, SaveModel: never inline */
    }
}

/* Whether st's batch may run on the loop thread: its batches have been measured (the first
 * one runs on a worker), none took inline_step_us lately (w_cost_ns), it is not audio (a
 * DNSMOS window every second takes tens of milliseconds) and it closes at most
 * INLINE_MAX_STEPS bins (item_steps; a SaveModel, which writes a file, counts as unknown). */
static int inline_ok(const server *s, const stream *st)
{
    if (s->cfg.inline_step_us <= 0 || st->w_batches == 0 ||
        st->w_cost_ns >= s->cfg.inline_step_us * 1e3 || snn_session_input(st->sess) == SNN_INPUT_AUDIO)
        return 0;
    uint64_t steps = 0;
    for (const in_item *it = st->batch; it && steps <= INLINE_MAX_STEPS; it = it->next) {
        uint64_t k = item_steps(st, it);
        steps = k > INLINE_MAX_STEPS ? k : steps + k;
    }
    return steps <= INLINE_MAX_STEPS;
}

/* Runs st's batch on the loop thread: what a worker and group_after would do, without the
 * hand-off between threads (the lowest latency for small networks). Returns the nanoseconds
 * it took. st may be destroyed or scheduled again when it returns. */
static double run_inline(server *s, stream *st)
{
    double busy = st->w_busy_ns;
    s->batches_inline++;
    st->on_loop = 1;
    work_one(st);
    st->on_loop = 0;
    double t = st->w_busy_ns - busy;
    stream_drain_chunks(s); /* output handed over during the batch comes first */
    after_one(st);
    return t;
}

void stream_submit_ready(server *s)
{
    if (!s->ready)
        return;
    stream *st = s->ready;
    s->ready = NULL;
    s->ready_tail = &s->ready;
    s->n_ready = 0;
    /* streams cheap enough run here, until the budget is spent; the others wait in `rest` */
    stream *rest = NULL, **rest_tail = &rest;
    uint32_t n = 0;
    double spent = server_busy(s) < INLINE_MAX_BUSY ? 0 : INLINE_BUDGET_NS;
    while (st) {
        stream *next = st->rnext;
        st->rnext = NULL;
        if (spent < INLINE_BUDGET_NS && inline_ok(s, st)) {
            spent += run_inline(s, st);
        } else {
            *rest_tail = st;
            rest_tail = &st->rnext;
            n++;
        }
        st = next;
    }
    if (!rest)
        return;
    uint32_t groups = (uint32_t)s->cfg.workers;
    if (groups > n)
        groups = n;
    uint32_t per = (n + groups - 1) / groups;
    if (per > 64)
        per = 64; /* bounds the wait of the last stream in an item */
    st = rest;
    while (st) {
        work_group *g = malloc(sizeof *g + per * sizeof(stream *));
        if (!g) { /* out of memory: try again next iteration */
            while (st) {
                stream *next = st->rnext;
                st->rnext = NULL;
                *s->ready_tail = st;
                s->ready_tail = &st->rnext;
                s->n_ready++;
                st = next;
            }
            return;
        }
        g->n = 0;
        while (st && g->n < per) {
            g->v[g->n++] = st;
            stream *next = st->rnext;
            st->rnext = NULL;
            st = next;
        }
        g->work.data = g;
        s->batches_workers += g->n;
        uv_queue_work(s->loop, &g->work, group_work, group_after);
    }
}

static void on_idle_submit(uv_idle_t *h)
{
    uv_idle_stop(h); /* first: a stream run inline and scheduled again starts it anew */
    stream_submit_ready(h->data);
}

static void schedule(stream *st)
{
    server *s = st->srv;
    st->batch = st->inbox;
    st->inbox = NULL;
    st->inbox_tail = &st->inbox;
    st->scheduled = 1;
    st->rnext = NULL;
    *s->ready_tail = st;
    s->ready_tail = &st->rnext;
    if (s->n_ready++ == 0 && !uv_is_closing((uv_handle_t *)&s->sched_idle))
        uv_idle_start(&s->sched_idle, on_idle_submit);
}

static void enqueue(stream *st, conn *from, Snnd__V1__Envelope *env, size_t bytes, const char *path)
{
    in_item *it = calloc(1, sizeof *it);
    if (!it || (path && !(it->path = strdup(path)))) {
        free(it);
        if (env)
            snnd__v1__envelope__free_unpacked(env, NULL);
        return;
    }
    it->env = env;
    it->from = from;
    it->bytes = bytes;
    if (from) {
        conn_ref(from);
        from->queued_in += bytes;
    }
    *st->inbox_tail = it;
    st->inbox_tail = &it->next;
    st->srv->queued_items++;
    if (!st->scheduled)
        schedule(st);
}

void stream_enqueue(stream *st, conn *from, Snnd__V1__Envelope *env, size_t bytes)
{
    enqueue(st, from, env, bytes, NULL);
}

void stream_enqueue_save(stream *st, conn *from, Snnd__V1__Envelope *env, const char *path)
{
    enqueue(st, from, env, 0, path);
}

void stream_close(stream *st, conn *from, uint32_t req_id)
{
    if (st->finishing)
        return;
    st->finishing = 1;
    if (from) {
        st->close_req_from = from;
        st->close_req_id = req_id;
        conn_ref(from);
    }
    enqueue(st, NULL, NULL, 0, NULL);
}

void stream_owner_gone(stream *st)
{
    if (st->owner)
        st->owner->n_owned--;
    st->owner = NULL;
    stream_close(st, NULL, 0);
}

int stream_subscribe(stream *st, conn *c)
{
    for (uint32_t i = 0; i < st->n_subs; i++)
        if (st->subs[i] == c)
            return 0;
    if (c->n_subs >= c->srv->cfg.max_subscriptions_per_connection)
        return -1;
    if (st->n_subs == st->cap_subs) {
        uint32_t cap = st->cap_subs ? st->cap_subs * 2 : 4;
        conn **v = realloc(st->subs, cap * sizeof *v);
        if (!v)
            return -1;
        st->subs = v;
        st->cap_subs = cap;
    }
    if (c->n_subs == c->cap_subs) {
        uint32_t cap = c->cap_subs ? c->cap_subs * 2 : 4;
        stream **v = realloc(c->subs, cap * sizeof *v);
        if (!v)
            return -1;
        c->subs = v;
        c->cap_subs = cap;
    }
    st->subs[st->n_subs++] = c;
    c->subs[c->n_subs++] = st;
    return 0;
}

void stream_unsubscribe(stream *st, conn *c)
{
    for (uint32_t i = 0; i < st->n_subs; i++)
        if (st->subs[i] == c) {
            st->subs[i] = st->subs[--st->n_subs];
            break;
        }
    for (uint32_t i = 0; i < c->n_subs; i++)
        if (c->subs[i] == st) {
            c->subs[i] = c->subs[--c->n_subs];
            break;
        }
}

void stream_fill_stats(const stream *st, Snnd__V1__StreamStats *o)
{
    const snn_model *m = st->model->m;
    const snn_session_stats *ss = &st->stats;
    double n = ss->steps ? (double)ss->steps : 1.0;
    o->stream_id = (char *)st->id;
    o->model = (char *)m->name;
    o->steps = ss->steps;
    o->events = ss->events;
    o->subscribers = st->n_subs;
    o->footprint_bytes = m->footprint;
    json_t *d = json_object();
    snn_model_describe(m, d);
    o->connection_sparsity = json_number_value(json_object_get(d, "connection_sparsity"));
    json_decref(d);
    o->activation_sparsity = ss->hidden_neurons > 0 ? 1.0 - ss->hidden_spikes / ss->hidden_neurons : 0.0;
    o->dense_synops_per_step = ss->dense_ops / n;
    o->effective_macs_per_step = ss->eff_macs / n;
    o->effective_acs_per_step = ss->eff_acs / n;
    o->mean_step_us = ss->steps ? st->busy_ns / 1e3 / n : 0.0;
    o->last_t_us = (uint64_t)ss->last_t_us;
    o->predictions = st->predictions;
}
