/*
 * session.c -- one model run over one input stream in event time (session.h).
 */
#include "session.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "eprop.h"
#include "resample.h"
#include "rsnn_eprop.h"
#include "rsnn.h"
#include "sigmadelta.h"

/* Audio: resampled samples are produced in slices of at most this many. */
#define AUDIO_SLICE 8192

/* A gap larger than this many empty bins in one call is refused (BAD_TIME):
 * it would stall the worker for seconds. */
#define MAX_GAP_BINS (1u << 20)

struct snn_session {
    const snn_model *m;
    const snn_allocator *a;
    snn_state *st;
    snn_input_kind input;
    uint32_t bin_us;
    int64_t silence_us;

    int started;      /* t0 is known */
    int64_t t0;       /* start of bin 0 */
    uint64_t k;       /* index of the open bin */
    uint64_t step;    /* steps computed */
    float *x;         /* input of the open bin [n_in] */
    int x_dirty;      /* the open bin has input */
    float *held;      /* ANALOG: last frame's values */
    float *y;         /* model output [n_out] */
    snn_sigmadelta *enc; /* TACTILE: the model's encoder */
    uint32_t enc_in;     /* TACTILE: values per frame (taxels) */
    snn_event *ev;       /* TACTILE: events of one frame */
    size_t ev_cap;
    snn_resampler *rs;   /* AUDIO: to the model's rate (NULL when equal) */
    uint32_t audio_hz;   /* AUDIO: rate of the first chunk; must not change */
    float *abuf;         /* AUDIO: resampled slice [AUDIO_SLICE] */
    uint32_t afill;      /* AUDIO: samples in the open bin x[0..afill) */
    snn_eprop *ep;       /* LEARNING: the network that learns (own weights) */
    int ep_binary;       /* LEARNING: the model's input is binary */
    uint8_t *ep_x;       /* LEARNING: the bin's input as counts */
    double *ep_y;        /* LEARNING: readout outputs */
    double *ep_target;   /* LEARNING: current regression target */
    int ep_has_target;
    int ep_label;        /* LEARNING: current class label (-1: none) */
    double ep_loss;

    /* decision accumulators over the current segment */
    double *acc_sum;
    float *acc_max, *acc_last, *dec;
    uint64_t acc_n;
    int in_segment;      /* segment mode: events seen since the last decision */
    int64_t last_event_t;
    int64_t last_frame_t; /* TACTILE: time of the latest frame */

    snn_session_stats stats;
};

int snn_input_kind_parse(const char *s)
{
    static const char *names[] = {"default", "spikes", "binned", "tactile", "audio", "analog"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *snn_input_kind_name(snn_input_kind k)
{
    static const char *names[] = {"default", "spikes", "binned", "tactile", "audio", "analog"};
    return (unsigned)k < 6 ? names[k] : "unknown";
}

void snn_session_free(snn_session *s)
{
    if (!s)
        return;
    const snn_allocator *a = s->a;
    if (s->st)
        s->m->ops->state_free(s->m, s->st);
    a->free(s->x);
    a->free(s->held);
    a->free(s->y);
    a->free(s->acc_sum);
    a->free(s->acc_max);
    a->free(s->acc_last);
    a->free(s->dec);
    snn_sigmadelta_free(s->enc);
    a->free(s->ev);
    snn_resampler_free(s->rs);
    a->free(s->abuf);
    snn_eprop_free(s->ep);
    a->free(s->ep_x);
    a->free(s->ep_y);
    a->free(s->ep_target);
    a->free(s);
}

static void acc_reset(snn_session *s)
{
    uint32_t n = s->m->n_out;
    memset(s->acc_sum, 0, n * sizeof *s->acc_sum);
    for (uint32_t i = 0; i < n; i++)
        s->acc_max[i] = -INFINITY;
    memset(s->acc_last, 0, n * sizeof *s->acc_last);
    s->acc_n = 0;
}

/* Builds the sigma-delta encoder described by the model's config "encoder":
 * {"type": "sigmadelta", "threshold": 1, "refractory_us": 0, "hold_us": 0,
 *  "merge_on_off": false, "invert": true, "channels": 12}; hold_us > 0 (the
 *  stream's option) replaces the model's hold_us. */
static int encoder_new(snn_session *s, int64_t hold_us, snn_err *err)
{
    const snn_model *m = s->m;
    const json_t *enc = strcmp(m->ops->kind, "rsnn") ? NULL : json_object_get(snn_rsnn_config(m), "encoder");
    if (!enc)
        return snn_err_set(err, SNN_EINVAL, "model %s has no encoder: input kind tactile is not possible "
                           "(use analog or spikes)", m->name);
    const char *type = json_string_value(json_object_get(enc, "type"));
    if (!type || strcmp(type, "sigmadelta"))
        return snn_err_set(err, SNN_ENOTSUP, "model %s: encoder type \"%s\" not supported (sigmadelta)", m->name,
                           type ? type : "(missing)");
    snn_sigmadelta_config c = {0};
    json_t *th = json_object_get(enc, "threshold"), *rf = json_object_get(enc, "refractory_us");
    json_t *ch = json_object_get(enc, "n_taxels");
    if (!ch)
        ch = json_object_get(enc, "channels");
    c.threshold = th ? json_number_value(th) : 1.0;
    c.refractory_us = rf ? (int64_t)json_number_value(rf) : 0;
    json_t *hold = json_object_get(enc, "hold_us");
    c.hold_us = hold_us > 0 ? hold_us : hold ? (int64_t)json_number_value(hold) : 0;
    c.merge_on_off = json_is_true(json_object_get(enc, "merge_on_off"));
    json_t *inv = json_object_get(enc, "invert");
    c.invert = inv ? json_is_true(inv) : 1;
    c.n_channels = ch ? (uint32_t)json_integer_value(ch) : (c.merge_on_off ? m->n_in : m->n_in / 2);
    s->enc_in = c.n_channels;
    int rc = snn_sigmadelta_new(&c, s->a, &s->enc, err);
    if (rc < 0)
        return rc;
    if (snn_sigmadelta_n_outputs(s->enc) != m->n_in)
        return snn_err_set(err, SNN_ESHAPE, "model %s: encoder gives %u channels, the model takes %u", m->name,
                           snn_sigmadelta_n_outputs(s->enc), m->n_in);
    size_t cap = snn_sigmadelta_max_events(s->enc, 0, 255);
    s->ev_cap = cap < 1024 ? 1024 : cap;
    s->ev = s->a->calloc(s->ev_cap, sizeof *s->ev);
    if (!s->ev)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for the encoder", m->name);
    return 0;
}

int snn_learn_option(snn_learn_cfg *c, const char *key, const char *v, snn_err *err)
{
    char *end;
    if (!strcmp(key, "learn")) {
        if (strcmp(v, "eprop"))
            return snn_err_set(err, SNN_EINVAL, "option learn=\"%.40s\": expected eprop", v);
        c->enabled = 1;
    } else if (!strcmp(key, "lr")) {
        c->lr = strtod(v, &end);
        if (*end || !(c->lr > 0 && c->lr < 10))
            return snn_err_set(err, SNN_EINVAL, "option lr=\"%.40s\": expected a number in (0, 10)", v);
    } else if (!strcmp(key, "optimizer")) {
        if (strcmp(v, "adam") && strcmp(v, "sgd"))
            return snn_err_set(err, SNN_EINVAL, "option optimizer=\"%.40s\": expected adam or sgd", v);
        c->sgd = !strcmp(v, "sgd");
    } else if (!strcmp(key, "learn_weights")) {
        c->learn_in = strstr(v, "in") != NULL;
        c->learn_rec = strstr(v, "rec") != NULL;
        c->learn_out = strstr(v, "out") != NULL;
        for (const char *p = v; *p; p++)
            if (!strchr("inrecout,", *p))
                return snn_err_set(err, SNN_EINVAL, "option learn_weights=\"%.40s\": expected a list of in, rec, out", v);
    } else if (!strcmp(key, "feedback")) {
        if (strcmp(v, "symmetric") && strcmp(v, "random"))
            return snn_err_set(err, SNN_EINVAL, "option feedback=\"%.40s\": expected symmetric or random", v);
        c->random_feedback = !strcmp(v, "random");
    } else if (!strcmp(key, "update_interval")) {
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 1000000)
            return snn_err_set(err, SNN_EINVAL, "option update_interval=\"%.40s\": expected steps in [1, 1000000]", v);
        c->update_interval = (uint32_t)n;
    } else if (!strcmp(key, "reg_rate_hz")) {
        c->reg_rate_hz = strtod(v, &end);
        if (*end || !(c->reg_rate_hz >= 0 && c->reg_rate_hz < 1000))
            return snn_err_set(err, SNN_EINVAL, "option reg_rate_hz=\"%.40s\": expected Hz in [0, 1000)", v);
    } else if (!strcmp(key, "reg_strength")) {
        c->reg_strength = strtod(v, &end);
        if (*end || !(c->reg_strength >= 0))
            return snn_err_set(err, SNN_EINVAL, "option reg_strength=\"%.40s\": expected a number >= 0", v);
    } else {
        return 0;
    }
    return 1;
}

/* Builds the e-prop network a learning session trains, from the model file. */
static int learn_new(snn_session *s, const snn_learn_cfg *lc, snn_err *err)
{
    const snn_model *m = s->m;
    if (strcmp(m->ops->kind, "rsnn"))
        return snn_err_set(err, SNN_ENOTSUP, "model %s (%s) cannot learn: e-prop needs an rsnn model", m->name,
                           m->ops->kind);
    if (s->input == SNN_INPUT_AUDIO)
        return snn_err_set(err, SNN_ENOTSUP, "model %s cannot learn from audio: e-prop needs spikes, binned, "
                           "tactile or analog input", m->name);
    snn_eprop_params p = snn_eprop_params_default();
    p.eta = lc->lr > 0 ? lc->lr : 1e-3;
    p.optimizer = lc->sgd ? SNN_EPROP_SGD : SNN_EPROP_ADAM;
    int any = lc->learn_in || lc->learn_rec || lc->learn_out;
    p.learn_in = any ? lc->learn_in : 1;
    p.learn_rec = any ? lc->learn_rec : 1;
    p.learn_out = any ? lc->learn_out : 1;
    p.feedback = lc->random_feedback ? SNN_EPROP_FEEDBACK_RANDOM : SNN_EPROP_FEEDBACK_SYMMETRIC;
    p.update_interval = p.learning_window = lc->update_interval ? lc->update_interval : 250;
    p.reset_on_update = 0; /* one continuous stream, as the engine runs it */
    p.f_target_hz = lc->reg_rate_hz;
    p.c_reg = lc->reg_rate_hz > 0 ? (lc->reg_strength > 0 ? lc->reg_strength : 1.0) : 0.0;
    int rc = snn_rsnn_eprop_params(m->path, &p, &s->ep_binary, err);
    if (rc < 0)
        return rc;
    if ((rc = snn_rsnn_eprop_new(m->path, &p, s->a, &s->ep, err)) < 0)
        return rc;
    s->ep_x = s->a->calloc(m->n_in ? m->n_in : 1, 1);
    s->ep_y = s->a->calloc(m->n_out, sizeof(double));
    s->ep_target = s->a->calloc(m->n_out, sizeof(double));
    if (!s->ep_x || !s->ep_y || !s->ep_target)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for learning", m->name);
    s->ep_label = -1;
    return 0;
}

int snn_session_learning(const snn_session *s) { return s->ep != NULL; }

uint32_t snn_frame_values(const snn_model *m, snn_input_kind k)
{
    if (k == SNN_INPUT_DEFAULT) {
        int d = snn_input_kind_parse(m->input_kind);
        k = d > 0 ? (snn_input_kind)d : SNN_INPUT_SPIKES;
    }
    if (k != SNN_INPUT_TACTILE || strcmp(m->ops->kind, "rsnn"))
        return m->n_in;
    const json_t *enc = json_object_get(snn_rsnn_config(m), "encoder");
    json_t *ch = json_object_get(enc, "n_taxels");
    if (!ch)
        ch = json_object_get(enc, "channels");
    if (ch)
        return (uint32_t)json_integer_value(ch);
    return json_is_true(json_object_get(enc, "merge_on_off")) ? m->n_in : m->n_in / 2;
}

int snn_session_save(const snn_session *s, const char *path, snn_err *err)
{
    if (!s->ep)
        return snn_err_set(err, SNN_EINVAL, "the stream does not learn: nothing to save (open it with learn=eprop)");
    return snn_rsnn_eprop_save(s->ep, s->m->path, path, err);
}

/* One learning step: e-prop's forward pass (and update) on the bin's input. */
static void learn_step(snn_session *s, const float *x, snn_step_info *info)
{
    const snn_model *m = s->m;
    snn_rsnn_eprop_input(x, m->n_in, s->ep_binary, s->ep_x);
    snn_eprop_step(s->ep, s->ep_x, s->ep_has_target ? s->ep_target : NULL, s->ep_has_target ? -1 : s->ep_label,
                   s->ep_y, &s->ep_loss);
    memset(info, 0, sizeof *info);
    info->has_output = 1;
    /* e-prop's outputs: readout y (MSE), or softmax(y) (cross-entropy), as the
     * engine's readout with "activation": "softmax" gives them. */
    for (uint32_t k = 0; k < m->n_out; k++)
        s->y[k] = (float)s->ep_y[k];
}

int snn_session_new(const snn_model *m, const snn_session_cfg *cfg, const snn_allocator *a, snn_session **out,
                    snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    snn_session_cfg dflt = {0};
    if (!cfg)
        cfg = &dflt;
    snn_session *s = a->calloc(1, sizeof *s);
    if (!s)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a session", m->name);
    s->m = m;
    s->a = a;
    s->input = cfg->input;
    if (s->input == SNN_INPUT_DEFAULT) {
        int k = snn_input_kind_parse(m->input_kind);
        s->input = k > 0 ? (snn_input_kind)k : SNN_INPUT_SPIKES;
    }
    double bin = cfg->bin_us ? cfg->bin_us : m->dt * 1e6;
    if (!(bin >= 1 && bin <= 60e6)) {
        snn_session_free(s);
        return snn_err_set(err, SNN_EINVAL, "bin width %.0f us out of range [1 us, 60 s]", bin);
    }
    s->bin_us = (uint32_t)llround(bin);
    s->silence_us = cfg->segment_silence_us;
    /* Audio in, audio model: the steps of one take hops of PCM samples, those of any other
     * counts or values. */
    int audio_model = !strcmp(m->input_kind, "audio");
    if ((s->input == SNN_INPUT_AUDIO) != audio_model) {
        snn_input_kind k = s->input;
        snn_session_free(s);
        if (audio_model)
            return snn_err_set(err, SNN_EINVAL, "model %s takes audio only (AudioChunk): input kind %s is not "
                               "possible", m->name, snn_input_kind_name(k));
        return snn_err_set(err, SNN_EINVAL, "model %s does not take audio (its input is %s)", m->name,
                           m->input_kind);
    }
    if (audio_model) {
        s->abuf = a->calloc(AUDIO_SLICE, sizeof(float));
        if (!s->abuf) {
            snn_session_free(s);
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a session", m->name);
        }
    }
    if (s->input == SNN_INPUT_TACTILE) {
        int rc = encoder_new(s, cfg->tactile_hold_us, err);
        if (rc < 0) {
            snn_session_free(s);
            return rc;
        }
    }
    uint32_t ni = m->n_in ? m->n_in : 1, no = m->n_out ? m->n_out : 1;
    s->x = a->calloc(ni, sizeof(float));
    s->held = a->calloc(ni, sizeof(float));
    s->y = a->calloc(no, sizeof(float));
    s->acc_sum = a->calloc(no, sizeof(double));
    s->acc_max = a->calloc(no, sizeof(float));
    s->acc_last = a->calloc(no, sizeof(float));
    s->dec = a->calloc(no, sizeof(float));
    if (!s->x || !s->held || !s->y || !s->acc_sum || !s->acc_max || !s->acc_last || !s->dec) {
        snn_session_free(s);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a session", m->name);
    }
    int rc = m->ops->state_new(m, &s->st, err);
    if (rc < 0) {
        s->st = NULL;
        snn_session_free(s);
        return rc;
    }
    if (cfg->learn.enabled && (rc = learn_new(s, &cfg->learn, err)) < 0) {
        snn_session_free(s);
        return rc;
    }
    acc_reset(s);
    *out = s;
    return 0;
}

snn_input_kind snn_session_input(const snn_session *s) { return s->input; }
uint32_t snn_session_bin_us(const snn_session *s) { return s->bin_us; }
const snn_session_stats *snn_session_stats_get(const snn_session *s) { return &s->stats; }

static int64_t bin_end(const snn_session *s, uint64_t k) { return s->t0 + (int64_t)(k + 1) * s->bin_us; }

/* Delivers the decision over the current segment (if the model decides and
 * the segment produced outputs), then clears the accumulators. */
static void decide(snn_session *s, int final, snn_emit_fn emit, void *ctx)
{
    const snn_model *m = s->m;
    if (m->decision == SNN_DECISION_NONE || s->acc_n == 0) {
        acc_reset(s);
        return;
    }
    uint32_t n = m->n_out;
    for (uint32_t i = 0; i < n; i++) {
        switch (m->decision) {
        case SNN_DECISION_ARGMAX_SUM: s->dec[i] = (float)s->acc_sum[i]; break;
        case SNN_DECISION_ARGMAX_LAST: s->dec[i] = s->acc_last[i]; break;
        case SNN_DECISION_ARGMAX_MAX: s->dec[i] = s->acc_max[i]; break;
        default: s->dec[i] = (float)(s->acc_sum[i] / (double)s->acc_n); break;
        }
    }
    snn_output o = {.type = SNN_OUT_DECISION, .step = s->step ? s->step - 1 : 0, .t_us = bin_end(s, s->k - 1),
                    .values = s->dec, .n = n, .index = -1, .final = final};
    if (m->decision != SNN_DECISION_MEAN) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (s->dec[i] > s->dec[best])
                best = i;
        o.index = (int32_t)best;
        o.label = m->labels ? m->labels[best] : (m->out_names ? m->out_names[best] : NULL);
        if (m->decision == SNN_DECISION_ARGMAX_SUM) /* report mean per-step score */
            for (uint32_t i = 0; i < n; i++)
                s->dec[i] = (float)(s->acc_sum[i] / (double)s->acc_n);
    }
    if (emit)
        emit(ctx, &o);
    acc_reset(s);
}

/* Accumulates the step's output s->y for the decision (unless the model leaves it out) and
 * emits it. */
static void deliver(snn_session *s, const snn_step_info *info, snn_emit_fn emit, void *ctx)
{
    const snn_model *m = s->m;
    snn_output o = {.type = SNN_OUT_PREDICTION, .step = s->step, .t_us = bin_end(s, s->k), .values = s->y,
                    .n = m->n_out, .info = *info, .index = -1, .learning = s->ep != NULL,
                    .loss = (float)s->ep_loss};
    s->stats.outputs++;
    if (info->outside_decision) {
        if (emit)
            emit(ctx, &o);
        return;
    }
    for (uint32_t i = 0; i < m->n_out; i++) {
        s->acc_sum[i] += s->y[i];
        if (s->y[i] > s->acc_max[i])
            s->acc_max[i] = s->y[i];
        s->acc_last[i] = s->y[i];
    }
    s->acc_n++;
    if (emit)
        emit(ctx, &o);
}

/* Computes the open bin k with input x, emits its output, opens bin k + 1. */
static void close_bin(snn_session *s, const float *x, snn_emit_fn emit, void *ctx)
{
    const snn_model *m = s->m;
    int had_input = s->x_dirty;
    if (s->silence_us > 0) {
        /* Segment mode: idle bins (no events, no segment open) are skipped,
         * and a segment ends after silence_us without events. */
        if (!had_input && !s->in_segment) {
            s->k++;
            return;
        }
        if (had_input)
            s->in_segment = 1;
    }
    snn_step_info info;
    if (s->ep)
        learn_step(s, x, &info);
    else
        m->ops->step(m, s->st, x, s->y, &info);
    s->stats.steps++;
    s->stats.hidden_spikes += info.hidden_spikes;
    s->stats.hidden_neurons += info.hidden_neurons;
    s->stats.dense_ops += (double)info.dense_ops;
    s->stats.eff_macs += (double)info.eff_macs;
    s->stats.eff_acs += (double)info.eff_acs;
    s->stats.last_t_us = bin_end(s, s->k);
    if (info.has_output)
        deliver(s, &info, emit, ctx);
    s->step++;
    s->k++;
    if (had_input) { /* analog keeps its held values: only the new-frame mark goes */
        if (x == s->x)
            memset(s->x, 0, m->n_in * sizeof(float));
        s->x_dirty = 0;
    }
    if (s->silence_us > 0 && s->in_segment && bin_end(s, s->k - 1) - s->last_event_t >= s->silence_us) {
        decide(s, 0, emit, ctx);
        m->ops->state_reset(m, s->st);
        s->in_segment = 0;
    }
}

/* Closes every bin that ends at or before t (the open one first). */
static void advance_to(snn_session *s, int64_t t, snn_emit_fn emit, void *ctx)
{
    while (bin_end(s, s->k) <= t)
        close_bin(s, s->input == SNN_INPUT_ANALOG ? s->held : s->x, emit, ctx);
}

uint64_t snn_session_steps_to(const snn_session *s, uint64_t t_us)
{
    if (!s->started || s->input == SNN_INPUT_AUDIO || t_us > (uint64_t)INT64_MAX)
        return UINT64_MAX;
    int64_t t = (int64_t)t_us, e = bin_end(s, s->k);
    return t < e ? 0 : (uint64_t)((t - e) / s->bin_us) + 1;
}

/* Checks input at time t (what[i] in errors): not before the open bin, and at most
 * MAX_GAP_BINS bins after it. A stream without input yet has its bin 0 opened at `first`, the
 * time of the input that starts it. */
static int check_time(snn_session *s, int64_t t, int64_t first, const char *what, size_t i, snn_err *err)
{
    int64_t open = s->started ? s->t0 + (int64_t)s->k * s->bin_us : first;
    if (t < open)
        return snn_err_set(err, SNN_ETIME, "%s[%zu]: t_us %lld is before the open bin (starts at %lld)", what, i,
                           (long long)t, (long long)open);
    if ((t - (open + (int64_t)s->bin_us)) / (int64_t)s->bin_us > (int64_t)MAX_GAP_BINS)
        return snn_err_set(err, SNN_ETIME, "%s[%zu]: t_us %lld jumps more than %u bins ahead of the open bin "
                           "(starts at %lld)", what, i, (long long)t, MAX_GAP_BINS, (long long)open);
    return 0;
}

static int want_kind(const snn_session *s, snn_input_kind k1, snn_input_kind k2, const char *msg, snn_err *err)
{
    if (s->input != k1 && s->input != k2)
        return snn_err_set(err, SNN_EINVAL, "%s sent to a stream whose input kind is %s", msg,
                           snn_input_kind_name(s->input));
    return 0;
}

int snn_session_spikes(snn_session *s, const uint32_t *ch, const uint64_t *t_us, size_t n, snn_emit_fn emit,
                       void *ctx, snn_err *err)
{
    int rc = want_kind(s, SNN_INPUT_SPIKES, SNN_INPUT_SPIKES, "spike events", err);
    if (rc < 0)
        return rc;
    /* Validate the whole batch first: a rejected batch changes nothing. */
    for (size_t i = 0; i < n; i++) {
        if (ch[i] >= s->m->n_in)
            return snn_err_set(err, SNN_ESHAPE, "channel[%zu] = %u out of range (model %s has %u input channels)", i,
                               ch[i], s->m->name, s->m->n_in);
        if (t_us[i] > (uint64_t)INT64_MAX / 2)
            return snn_err_set(err, SNN_ETIME, "t_us[%zu] = %llu out of range", i, (unsigned long long)t_us[i]);
        if (i > 0 && t_us[i] < t_us[i - 1])
            return snn_err_set(err, SNN_ETIME, "t_us[%zu] = %llu goes backwards (previous %llu)", i,
                               (unsigned long long)t_us[i], (unsigned long long)t_us[i - 1]);
        if (i == 0 && (rc = check_time(s, (int64_t)t_us[0], (int64_t)t_us[0], "t_us", 0, err)) < 0)
            return rc;
    }
    if (n > 0 && (rc = check_time(s, (int64_t)t_us[n - 1], (int64_t)t_us[0], "t_us", n - 1, err)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int64_t t = (int64_t)t_us[i];
        if (!s->started) {
            s->started = 1;
            s->t0 = t;
        }
        advance_to(s, t, emit, ctx);
        s->x[ch[i]] += 1.0f;
        s->x_dirty = 1;
        s->last_event_t = t;
        s->stats.events++;
    }
    return 0;
}

int snn_session_binned(snn_session *s, const float *counts, uint32_t n_ch, size_t n_bins, uint64_t t_us,
                       snn_emit_fn emit, void *ctx, snn_err *err)
{
    int rc = want_kind(s, SNN_INPUT_BINNED, SNN_INPUT_SPIKES, "binned counts", err);
    if (rc < 0)
        return rc;
    if (n_ch != s->m->n_in)
        return snn_err_set(err, SNN_ESHAPE, "n_channels = %u, but model %s has %u input channels", n_ch, s->m->name,
                           s->m->n_in);
    for (size_t i = 0; i < n_bins * n_ch; i++)
        if (!isfinite(counts[i]))
            return snn_err_set(err, SNN_EINVAL, "counts[%zu] (bin %zu, channel %zu) is not a finite number", i,
                               i / n_ch, i % n_ch);
    if (t_us > (uint64_t)INT64_MAX / 2)
        return snn_err_set(err, SNN_ETIME, "t_us = %llu out of range", (unsigned long long)t_us);
    if (s->started && t_us && (rc = check_time(s, (int64_t)t_us, (int64_t)t_us, "t_us", 0, err)) < 0)
        return rc;
    if (!s->started) {
        s->started = 1;
        s->t0 = (int64_t)t_us;
    } else if (t_us) {
        advance_to(s, (int64_t)t_us, emit, ctx);
    }
    if (s->x_dirty) /* spike events were binned in the open bin: close it first */
        close_bin(s, s->x, emit, ctx);
    for (size_t b = 0; b < n_bins; b++) {
        const float *v = counts + b * n_ch;
        int any = 0;
        for (uint32_t c = 0; c < n_ch && !any; c++)
            any = v[c] != 0.0f;
        if (any) {
            s->x_dirty = 1; /* marks the bin as having input (segment mode) */
            s->last_event_t = s->t0 + (int64_t)s->k * s->bin_us;
        }
        s->stats.events++;
        close_bin(s, v, emit, ctx);
        s->x_dirty = 0;
    }
    return 0;
}

/* Most encoder events one tactile frame may give (all channels together): 12
 * taxels may each cross 21845 levels, far beyond 8-bit values (at most 3072
 * events at θ = 1). A frame past it is refused instead of growing the array. */
#define MAX_FRAME_EVENTS (1u << 18)

/* Grows the encoder's event array to hold need events (the count a push that
 * did not fit reported). Returns 0, or -SNN_EINVAL above MAX_FRAME_EVENTS /
 * -SNN_ENOMEM; the session is unchanged on error. */
static int grow_events(snn_session *s, uint64_t t_us, size_t need, snn_err *err)
{
    if (need > MAX_FRAME_EVENTS)
        return snn_err_set(err, SNN_EINVAL, "frame at t_us %llu gives %zu encoder events, at most %u per frame "
                           "(values far outside the model's range? %s expects raw 8-bit taxel values)",
                           (unsigned long long)t_us, need, MAX_FRAME_EVENTS, s->m->name);
    snn_event *ev = s->a->calloc(need, sizeof *ev);
    if (!ev)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for %zu encoder events", s->m->name, need);
    s->a->free(s->ev);
    s->ev = ev;
    s->ev_cap = need;
    return 0;
}

int snn_session_frame(snn_session *s, uint64_t t_us, const float *values, uint32_t n, snn_emit_fn emit, void *ctx,
                      snn_err *err)
{
    int rc = want_kind(s, SNN_INPUT_ANALOG, SNN_INPUT_TACTILE, "a frame", err);
    if (rc < 0)
        return rc;
    uint32_t want = s->enc ? s->enc_in : s->m->n_in;
    if (n != want)
        return snn_err_set(err, SNN_ESHAPE, "frame has %u values, but model %s takes %u per frame", n, s->m->name,
                           want);
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return snn_err_set(err, SNN_EINVAL, "values[%u] is not a finite number", i);
    if (t_us > (uint64_t)INT64_MAX / 2 || (rc = check_time(s, (int64_t)t_us, (int64_t)t_us, "t_us", 0, err)) < 0)
        return rc < 0 ? rc : snn_err_set(err, SNN_ETIME, "t_us = %llu out of range", (unsigned long long)t_us);
    int64_t t = (int64_t)t_us;
    if (s->enc) {
        size_t ne = 0;
        /* The array is sized for the model's raw range; a frame that crosses more levels (a
         * sensor with a wider range) grows it once and is pushed again (the push that did not
         * fit changed nothing). */
        rc = snn_sigmadelta_push(s->enc, t, values, s->ev, s->ev_cap, &ne, err);
        if (rc == -SNN_ESHAPE && (rc = grow_events(s, t_us, ne, err)) == 0)
            rc = snn_sigmadelta_push(s->enc, t, values, s->ev, s->ev_cap, &ne, err);
        if (rc < 0)
            return rc;
        if (!s->started) {
            s->started = 1;
            s->t0 = t;
        }
        for (size_t i = 0; i < ne; i++) {
            advance_to(s, s->ev[i].t_us, emit, ctx);
            s->x[s->ev[i].channel] += 1.0f;
            s->x_dirty = 1;
            s->last_event_t = s->ev[i].t_us;
        }
        s->stats.events += ne;
        s->last_frame_t = t;
        advance_to(s, t, emit, ctx);
        return 0;
    }
    if (!s->started) {
        s->started = 1;
        s->t0 = t;
    }
    advance_to(s, t, emit, ctx);
    memcpy(s->held, values, n * sizeof(float));
    s->x_dirty = 1;
    s->last_event_t = t;
    s->stats.events++;
    return 0;
}

/* Appends resampled samples to the open bin; a full bin (one hop) is a step. */
static void audio_take(snn_session *s, const float *y, size_t n, snn_emit_fn emit, void *ctx)
{
    while (n > 0) {
        size_t k = s->m->n_in - s->afill;
        if (k > n)
            k = n;
        memcpy(s->x + s->afill, y, k * sizeof(float));
        s->afill += (uint32_t)k;
        y += k;
        n -= k;
        s->stats.events += k;
        if (s->afill == s->m->n_in) {
            s->x_dirty = 1;
            close_bin(s, s->x, emit, ctx);
            s->afill = 0;
        }
    }
}

int snn_session_audio(snn_session *s, const float *samples, size_t n, uint32_t hz, snn_emit_fn emit, void *ctx,
                      snn_err *err)
{
    int rc = want_kind(s, SNN_INPUT_AUDIO, SNN_INPUT_AUDIO, "audio", err);
    if (rc < 0)
        return rc;
    if (hz < SNN_AUDIO_MIN_HZ || hz > SNN_AUDIO_MAX_HZ)
        return snn_err_set(err, SNN_EINVAL, "sample_rate %u Hz outside %u..%u", hz, SNN_AUDIO_MIN_HZ,
                           SNN_AUDIO_MAX_HZ);
    if (s->audio_hz && hz != s->audio_hz)
        return snn_err_set(err, SNN_EINVAL, "sample_rate %u differs from the stream's %u", hz, s->audio_hz);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(samples[i]))
            return snn_err_set(err, SNN_EINVAL, "pcm sample %zu is not a finite number", i);
    double model_hz = (double)s->m->n_in / s->m->dt;
    if (!s->audio_hz) {
        s->audio_hz = hz;
        s->started = 1;
        s->t0 = 0;
        if (fabs(model_hz - hz) > 0.5 && (rc = snn_resampler_new(hz, model_hz, s->a, &s->rs, err)) < 0)
            return rc;
    }
    if (!s->rs) {
        audio_take(s, samples, n, emit, ctx);
        return 0;
    }
    /* Feed slices small enough that their output fits in abuf. */
    size_t slice = (size_t)((double)AUDIO_SLICE / 2 * hz / model_hz);
    if (slice < 1)
        slice = 1;
    for (size_t off = 0; off < n; off += slice) {
        size_t k = n - off < slice ? n - off : slice, ny = 0;
        if ((rc = snn_resampler_process(s->rs, samples + off, k, s->abuf, AUDIO_SLICE, &ny, err)) < 0)
            return rc;
        audio_take(s, s->abuf, ny, emit, ctx);
    }
    return 0;
}

/* End of an audio stream: the resampler's tail, then the partial last hop
 * (stepped by the kind's step_partial, or dropped when it has none). */
static int audio_finish(snn_session *s, snn_emit_fn emit, void *ctx, snn_err *err)
{
    int rc;
    if (s->rs) {
        size_t ny = 0;
        do {
            if ((rc = snn_resampler_process(s->rs, NULL, 0, s->abuf, AUDIO_SLICE, &ny, err)) < 0)
                return rc;
            audio_take(s, s->abuf, ny, emit, ctx);
        } while (ny == AUDIO_SLICE);
    }
    if (s->afill > 0 && s->m->ops->step_partial) {
        snn_step_info info;
        memset(&info, 0, sizeof info);
        s->m->ops->step_partial(s->m, s->st, s->x, s->afill, s->y, &info);
        s->stats.steps++;
        if (info.has_output)
            deliver(s, &info, emit, ctx);
        s->step++;
        s->k++;
    }
    s->afill = 0; /* stepped, or dropped: the kind has no use for a partial hop */
    return 0;
}

/* Closes the bins before t (with the current target) so that what follows
 * applies from the bin containing t on. */
static int learn_advance(snn_session *s, uint64_t t_us, const char *what, snn_err *err)
{
    if (!s->ep)
        return snn_err_set(err, SNN_EINVAL, "%s sent to a stream that does not learn (open it with learn=eprop)", what);
    int rc;
    if (t_us > (uint64_t)INT64_MAX / 2)
        return snn_err_set(err, SNN_ETIME, "t_us = %llu out of range", (unsigned long long)t_us);
    if ((rc = check_time(s, (int64_t)t_us, (int64_t)t_us, "t_us", 0, err)) < 0)
        return rc;
    if (!s->started) {
        s->started = 1;
        s->t0 = (int64_t)t_us;
    }
    return 0;
}

int snn_session_target(snn_session *s, uint64_t t_us, const float *values, uint32_t n, snn_emit_fn emit,
                       void *ctx, snn_err *err)
{
    int rc = learn_advance(s, t_us, "a target", err);
    if (rc < 0)
        return rc;
    if (n != s->m->n_out)
        return snn_err_set(err, SNN_ESHAPE, "target has %u values, but model %s has %u outputs", n, s->m->name,
                           s->m->n_out);
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return snn_err_set(err, SNN_EINVAL, "target values[%u] is not a finite number", i);
    advance_to(s, (int64_t)t_us - 1, emit, ctx); /* bins ending at or before t: old target */
    for (uint32_t i = 0; i < n; i++)
        s->ep_target[i] = values[i];
    s->ep_has_target = 1;
    return 0;
}

int snn_session_label(snn_session *s, uint64_t t_us, int32_t index, snn_emit_fn emit, void *ctx, snn_err *err)
{
    int rc = learn_advance(s, t_us, "a label", err);
    if (rc < 0)
        return rc;
    if (s->m->decision == SNN_DECISION_NONE && index >= 0) /* softmax over regression outputs means nothing */
        return snn_err_set(err, SNN_EINVAL, "model %s is a regression model (no classes): send Target values, "
                           "not a Label", s->m->name);
    if (index < -1 || index >= (int32_t)s->m->n_out)
        return snn_err_set(err, SNN_EINVAL, "label index %d out of range (-1 or 0..%u)", index, s->m->n_out - 1);
    advance_to(s, (int64_t)t_us - 1, emit, ctx);
    s->ep_label = index;
    s->ep_has_target = 0;
    return 0;
}

int snn_session_flush(snn_session *s, uint64_t t_us, snn_emit_fn emit, void *ctx, snn_err *err)
{
    if (s->input == SNN_INPUT_AUDIO) { /* its bins are hops of samples: time moves with them */
        if (t_us)
            return snn_err_set(err, SNN_EINVAL, "flush t_us = %llu on an audio stream: its time is its samples "
                               "(a hop steps when its samples arrive, closing the stream scores the rest)",
                               (unsigned long long)t_us);
        return 0;
    }
    if (!s->started)
        return 0;
    int rc;
    if (t_us && (rc = check_time(s, (int64_t)t_us, (int64_t)t_us, "t_us", 0, err)) < 0)
        return rc;
    if (s->x_dirty)
        close_bin(s, s->input == SNN_INPUT_ANALOG ? s->held : s->x, emit, ctx);
    if (t_us)
        advance_to(s, (int64_t)t_us, emit, ctx);
    return 0;
}

int snn_session_finish(snn_session *s, snn_emit_fn emit, void *ctx, snn_err *err)
{
    int rc = s->input == SNN_INPUT_AUDIO ? audio_finish(s, emit, ctx, err) : snn_session_flush(s, 0, emit, ctx, err);
    if (rc < 0)
        return rc;
    /* The last frame's time lies in the open bin unless the flush closed it: step it even
     * without events, so a recording has floor((t_last - t_first) / dt) + 1 steps, the binning
     * the tactile models were trained and scored with (models/zoo/README.md). */
    if (s->enc && s->started && s->last_frame_t >= s->t0 + (int64_t)s->k * s->bin_us)
        close_bin(s, s->x, emit, ctx);
    const snn_model *m = s->m;
    if (m->ops->finish) {
        snn_step_info info;
        memset(&info, 0, sizeof info);
        if ((rc = m->ops->finish(m, s->st, s->y, &info)) < 0)
            return snn_err_set(err, SNN_EINVAL, "%s: finishing the stream failed", m->name);
        if (info.has_output) {
            s->k--; /* the output belongs to the last bin */
            deliver(s, &info, emit, ctx);
            s->k++;
            s->step++;
        }
    }
    if (s->silence_us <= 0 || s->in_segment)
        decide(s, 1, emit, ctx);
    return 0;
}
