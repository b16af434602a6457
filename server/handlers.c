/*
 * handlers.c -- one function per request message.
 *
 * Every handler answers with the reply its message promises or with an Error
 * naming what was wrong; a bad request never affects other requests, streams
 * or connections. Handlers own the Envelope they are given: event messages are
 * passed on to their stream's queue, everything else is freed here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "server.h"

const char *envelope_name(int c)
{
    switch (c) {
    case SNND__V1__ENVELOPE__MSG_HELLO: return "hello";
    case SNND__V1__ENVELOPE__MSG_OPEN_STREAM: return "open_stream";
    case SNND__V1__ENVELOPE__MSG_CLOSE_STREAM: return "close_stream";
    case SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS: return "spike_events";
    case SNND__V1__ENVELOPE__MSG_BINNED_COUNTS: return "binned_counts";
    case SNND__V1__ENVELOPE__MSG_TACTILE_FRAME: return "tactile_frame";
    case SNND__V1__ENVELOPE__MSG_AUDIO_CHUNK: return "audio_chunk";
    case SNND__V1__ENVELOPE__MSG_FLUSH: return "flush";
    case SNND__V1__ENVELOPE__MSG_SUBSCRIBE: return "subscribe";
    case SNND__V1__ENVELOPE__MSG_UNSUBSCRIBE: return "unsubscribe";
    case SNND__V1__ENVELOPE__MSG_STATS_REQUEST: return "stats_request";
    case SNND__V1__ENVELOPE__MSG_WELCOME: return "welcome";
    case SNND__V1__ENVELOPE__MSG_STREAM_OPENED: return "stream_opened";
    case SNND__V1__ENVELOPE__MSG_STREAM_CLOSED: return "stream_closed";
    case SNND__V1__ENVELOPE__MSG_PREDICTION: return "prediction";
    case SNND__V1__ENVELOPE__MSG_DECISION: return "decision";
    case SNND__V1__ENVELOPE__MSG_ERROR: return "error";
    case SNND__V1__ENVELOPE__MSG_STATS: return "stats";
    case SNND__V1__ENVELOPE__MSG_ACK: return "ack";
    case SNND__V1__ENVELOPE__MSG_TARGET: return "target";
    case SNND__V1__ENVELOPE__MSG_LABEL: return "label";
    case SNND__V1__ENVELOPE__MSG_SAVE_MODEL: return "save_model";
    case SNND__V1__ENVELOPE__MSG_MODEL_SAVED: return "model_saved";
    default: return "unknown";
    }
}

/* Fills info (strings borrowed from m). */
static void model_info(const snn_model *m, Snnd__V1__ModelInfo *info)
{
    snnd__v1__model_info__init(info);
    info->name = (char *)m->name;
    info->kind = (char *)m->ops->kind;
    info->n_inputs = m->n_in;
    info->n_outputs = m->n_out;
    info->n_output_names = m->out_names ? m->n_out : 0;
    info->output_names = m->out_names;
    info->input_kind = (char *)m->input_kind;
    info->dt = m->dt;
    info->footprint_bytes = m->footprint;
    info->n_labels = m->labels ? m->n_out : 0;
    info->labels = m->labels;
    info->frame_values = snn_frame_values(m, SNN_INPUT_DEFAULT);
}

static void send_ack(conn *c, uint32_t id, const char *stream_id)
{
    Snnd__V1__Ack a = SNND__V1__ACK__INIT;
    a.request_id = id;
    a.stream_id = (char *)stream_id;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_ACK;
    env.ack = &a;
    conn_send(c, &env);
}

/* Access control (config "tokens"). With no tokens configured every client
 * may do everything (snnd then relies on loopback and the socket's mode).
 * Otherwise a connection must present a token in Hello; each request is
 * checked against the token's actions and model/stream patterns, and refused
 * with Error PERMISSION, never answered with data. Returns 1 if allowed. */
static int permit(conn *c, Snnd__V1__Envelope *env, unsigned action, const char *model, const char *stream)
{
    static const char *names[] = {"stream", "subscribe", "learn", "save", "admin"};
    const snnd_config *cfg = &c->srv->cfg;
    if (cfg->n_tokens == 0)
        return 1;
    const char *req = envelope_name(env->msg_case);
    if (!c->token) {
        conn_send_error(c, env->id, req, stream, SNND__V1__ERROR_CODE__PERMISSION,
                        "this server requires a token: send Hello with a token first");
        return 0;
    }
    if (snnd_token_allows(c->token, action, model, stream))
        return 1;
    const char *an = "?";
    for (int b = 0; b < 5; b++)
        if (action == 1u << b)
            an = names[b];
    conn_send_error(c, env->id, req, stream, SNND__V1__ERROR_CODE__PERMISSION,
                    "token does not allow %s%s%s%s%s", an, model ? " on model " : "", model ? model : "",
                    stream ? " on stream " : "", stream ? stream : "");
    return 0;
}

static void on_hello(conn *c, Snnd__V1__Envelope *env)
{
    server *s = c->srv;
    Snnd__V1__Hello *h = env->hello;
    if (h->token && *h->token) {
        const snnd_token *t = snnd_config_token(&s->cfg, h->token);
        if (!t) {
            conn_send_error(c, env->id, "hello", "", SNND__V1__ERROR_CODE__PERMISSION, "unknown token");
            return;
        }
        c->token = t;
    }
    if (h->protocol_version != 0 && h->protocol_version != 1) {
        conn_send_error(c, env->id, "hello", "", SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "protocol_version %u is not supported (this server speaks 1)", h->protocol_version);
        return;
    }
    /* New files in the model directory show up within a second (and at once
     * on SIGHUP or when a stream opens them). */
    if (now_ms() - s->last_scan_ms >= 1000) {
        registry_scan(&s->reg);
        s->last_scan_ms = now_ms();
    }
    size_t n = registry_count(&s->reg), i = 0;
    Snnd__V1__ModelInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Snnd__V1__ModelInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        conn_send_error(c, env->id, "hello", "", SNND__V1__ERROR_CODE__INTERNAL, "out of memory");
        return;
    }
    for (model_ref *r = s->reg.head; r && i < n; r = r->next, i++) {
        model_info(r->m, &infos[i]);
        ptrs[i] = &infos[i];
    }
    Snnd__V1__Welcome w = SNND__V1__WELCOME__INIT;
    w.protocol_version = 1;
    w.server_version = (char *)SNND_VERSION;
    w.n_models = i;
    w.models = ptrs;
    Snnd__V1__Envelope out = SNND__V1__ENVELOPE__INIT;
    out.id = env->id;
    out.msg_case = SNND__V1__ENVELOPE__MSG_WELCOME;
    out.welcome = &w;
    conn_send(c, &out);
    log_debug("conn %llu hello from \"%.64s\"", (unsigned long long)c->id, h->client_name);
    free(infos);
    free(ptrs);
}

static void on_open(conn *c, Snnd__V1__Envelope *env)
{
    server *s = c->srv;
    if (s->shutting_down) {
        conn_send_error(c, env->id, "open_stream", env->open_stream->stream_id,
                        SNND__V1__ERROR_CODE__SHUTTING_DOWN, "snnd is shutting down");
        return;
    }
    if (!permit(c, env, SNND_ACT_STREAM, env->open_stream->model, env->open_stream->stream_id))
        return;
    for (size_t i = 0; i < env->open_stream->n_options; i++)
        if (!strcmp(env->open_stream->options[i]->key, "learn") &&
            !permit(c, env, SNND_ACT_LEARN, env->open_stream->model, env->open_stream->stream_id))
            return;
    stream *st;
    if (stream_open(s, c, env->open_stream, env->id, &st) < 0)
        return;
    if (env->open_stream->subscribe && stream_subscribe(st, c) < 0)
        conn_send_error(c, env->id, "open_stream", st->id, SNND__V1__ERROR_CODE__LIMIT,
                        "subscription limit reached (max_subscriptions_per_connection %u)",
                        s->cfg.max_subscriptions_per_connection);
    Snnd__V1__ModelInfo info;
    model_info(st->model->m, &info);
    Snnd__V1__StreamOpened so = SNND__V1__STREAM_OPENED__INIT;
    so.stream_id = st->id;
    so.model = &info;
    so.bin_width_us = snn_session_bin_us(st->sess);
    so.input_kind = (Snnd__V1__InputKind)snn_session_input(st->sess);
    Snnd__V1__Envelope out = SNND__V1__ENVELOPE__INIT;
    out.id = env->id;
    out.msg_case = SNND__V1__ENVELOPE__MSG_STREAM_OPENED;
    out.stream_opened = &so;
    conn_send(c, &out);
}

/* Finds the stream a request names, answering UNKNOWN_STREAM if there is none. */
static stream *need_stream(conn *c, Snnd__V1__Envelope *env, const char *id)
{
    stream *st = stream_find(c->srv, id);
    if (c->srv->shutting_down) {
        conn_send_error(c, env->id, envelope_name(env->msg_case), id, SNND__V1__ERROR_CODE__SHUTTING_DOWN,
                        "snnd is shutting down: stream \"%.80s\" is finishing", id);
        return NULL;
    }
    if (!st || st->finishing) {
        conn_send_error(c, env->id, envelope_name(env->msg_case), id, SNND__V1__ERROR_CODE__UNKNOWN_STREAM,
                        "no open stream \"%.80s\"", id);
        return NULL;
    }
    return st;
}

/* Event messages: only the owner may feed its stream. Returns 1 if queued. */
static int on_input(conn *c, Snnd__V1__Envelope *env, const char *id, size_t bytes)
{
    stream *st = need_stream(c, env, id);
    if (!st)
        return 0;
    if (st->owner != c) {
        conn_send_error(c, env->id, envelope_name(env->msg_case), id, SNND__V1__ERROR_CODE__PERMISSION,
                        "stream \"%s\" is fed by the connection that opened it", id);
        return 0;
    }
    stream_enqueue(st, c, env, bytes);
    return 1;
}

static void on_stats(conn *c, Snnd__V1__Envelope *env)
{
    server *s = c->srv;
    const char *id = env->stats_request->stream_id;
    if (*id) {
        stream *one = stream_find(s, id);
        if (one && c->srv->cfg.n_tokens && !snnd_token_allows(c->token, SNND_ACT_ADMIN, NULL, NULL) &&
            !permit(c, env, SNND_ACT_SUBSCRIBE, one->model->m->name, id))
            return;
    } else if (!permit(c, env, SNND_ACT_ADMIN, NULL, NULL)) {
        return;
    }
    Snnd__V1__ServerStats ss = SNND__V1__SERVER_STATS__INIT;
    ss.uptime_s = (double)(now_ms() - s->start_ms) / 1000.0;
    ss.connections = s->n_conns;
    ss.streams = s->n_streams;
    ss.frames_in = s->frames_in;
    ss.frames_out = s->frames_out;
    ss.bytes_in = s->bytes_in;
    ss.bytes_out = s->bytes_out;
    ss.steps = s->steps;
    ss.predictions_sent = s->predictions_sent;
    ss.subscribers_dropped = s->subs_dropped;
    ss.errors_sent = s->errors_sent;
    ss.workers = (uint32_t)s->cfg.workers;
    ss.queued_steps = s->queued_items;
    ss.batches_inline = s->batches_inline;
    ss.batches_workers = s->batches_workers;
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2)
            rss_pages = 0;
        fclose(f);
    }
    ss.rss_bytes = (uint64_t)rss_pages * 4096u;
    uint32_t n = 0;
    for (stream *st = s->streams; st; st = st->next)
        n += !*id || !strcmp(st->id, id);
    if (*id && n == 0) {
        conn_send_error(c, env->id, "stats_request", id, SNND__V1__ERROR_CODE__UNKNOWN_STREAM,
                        "no open stream \"%.80s\"", id);
        return;
    }
    Snnd__V1__StreamStats *v = calloc(n ? n : 1, sizeof *v);
    Snnd__V1__StreamStats **p = calloc(n ? n : 1, sizeof *p);
    if (!v || !p) {
        free(v);
        free(p);
        conn_send_error(c, env->id, "stats_request", id, SNND__V1__ERROR_CODE__INTERNAL, "out of memory");
        return;
    }
    uint32_t i = 0;
    for (stream *st = s->streams; st && i < n; st = st->next) {
        if (*id && strcmp(st->id, id))
            continue;
        snnd__v1__stream_stats__init(&v[i]);
        stream_fill_stats(st, &v[i]);
        p[i] = &v[i];
        i++;
    }
    Snnd__V1__Stats st = SNND__V1__STATS__INIT;
    st.server = &ss;
    st.n_streams = i;
    st.streams = p;
    Snnd__V1__Envelope out = SNND__V1__ENVELOPE__INIT;
    out.id = env->id;
    out.msg_case = SNND__V1__ENVELOPE__MSG_STATS;
    out.stats = &st;
    conn_send(c, &out);
    free(v);
    free(p);
}

/* SaveModel: any connection that may save NAME (and read the stream) may ask;
 * the worker writes the file in order with the stream's input. Returns 1 if
 * queued (the envelope is then owned by the stream). */
static int on_save(conn *c, Snnd__V1__Envelope *env)
{
    Snnd__V1__SaveModel *sm = env->save_model;
    stream *st = need_stream(c, env, sm->stream_id);
    if (!st || !permit(c, env, SNND_ACT_SAVE, sm->name, st->id))
        return 0;
    const char *n = sm->name;
    size_t len = strlen(n);
    int ok = len > 0 && len <= 100 && n[0] != '.';
    for (size_t i = 0; ok && i < len; i++)
        ok = (n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') ||
             n[i] == '.' || n[i] == '_' || n[i] == '-';
    if (!ok) {
        conn_send_error(c, env->id, "save_model", st->id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "model name \"%.100s\" is not valid (letters, digits, . _ -; no leading dot)", n);
        return 0;
    }
    if (!snn_session_learning(st->sess)) {
        conn_send_error(c, env->id, "save_model", st->id, SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "stream \"%s\" does not learn: nothing to save (open it with option learn=eprop)", st->id);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", c->srv->reg.dir, n);
    stream_enqueue_save(st, c, env, path);
    return 1;
}

void handle_envelope(conn *c, Snnd__V1__Envelope *env, size_t bytes)
{
    const char *name = envelope_name(env->msg_case);
    switch (env->msg_case) {
    case SNND__V1__ENVELOPE__MSG_HELLO:
        on_hello(c, env);
        break;
    case SNND__V1__ENVELOPE__MSG_OPEN_STREAM:
        on_open(c, env);
        break;
    case SNND__V1__ENVELOPE__MSG_CLOSE_STREAM: {
        stream *st = need_stream(c, env, env->close_stream->stream_id);
        if (!st)
            break;
        if (st->owner != c) {
            conn_send_error(c, env->id, name, st->id, SNND__V1__ERROR_CODE__PERMISSION,
                            "stream \"%s\" can only be closed by the connection that opened it", st->id);
            break;
        }
        stream_close(st, c, env->id);
        break;
    }
    case SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS:
        if (on_input(c, env, env->spike_events->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_BINNED_COUNTS:
        if (on_input(c, env, env->binned_counts->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_TACTILE_FRAME:
        if (on_input(c, env, env->tactile_frame->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_AUDIO_CHUNK:
        if (on_input(c, env, env->audio_chunk->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_FLUSH:
        if (on_input(c, env, env->flush->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_TARGET:
        if (on_input(c, env, env->target->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_LABEL:
        if (on_input(c, env, env->label->stream_id, bytes))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_SAVE_MODEL:
        if (on_save(c, env))
            return;
        break;
    case SNND__V1__ENVELOPE__MSG_SUBSCRIBE: {
        stream *st = need_stream(c, env, env->subscribe->stream_id);
        if (!st || !permit(c, env, SNND_ACT_SUBSCRIBE, st->model->m->name, st->id))
            break;
        if (stream_subscribe(st, c) < 0)
            conn_send_error(c, env->id, name, st->id, SNND__V1__ERROR_CODE__LIMIT,
                            "subscription limit reached (max_subscriptions_per_connection %u)",
                            c->srv->cfg.max_subscriptions_per_connection);
        else
            send_ack(c, env->id, st->id);
        break;
    }
    case SNND__V1__ENVELOPE__MSG_UNSUBSCRIBE: {
        stream *st = need_stream(c, env, env->unsubscribe->stream_id);
        if (!st)
            break;
        stream_unsubscribe(st, c);
        send_ack(c, env->id, st->id);
        break;
    }
    case SNND__V1__ENVELOPE__MSG_STATS_REQUEST:
        on_stats(c, env);
        break;
    case SNND__V1__ENVELOPE__MSG__NOT_SET:
        conn_send_error(c, env->id, "", "", SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "envelope carries no message (unknown or missing field)");
        break;
    default:
        conn_send_error(c, env->id, name, "", SNND__V1__ERROR_CODE__BAD_REQUEST,
                        "%s is sent by the server, not to it", name);
        break;
    }
    snnd__v1__envelope__free_unpacked(env, NULL);
}
