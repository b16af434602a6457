/*
 * dnsmos.c -- the "onnx" model kind: DNSMOS P.835 / P.808 windows over a
 * 16 kHz stream (segmentation and polynomials in dnsmos.h).
 */
#include "dnsmos.h"

#include <ctype.h>
#include <stdio.h>
#include <jansson.h>
#include <string.h>

#include "mel.h"
#include "onnx.h"

#define BUF_CAP (SNN_DNSMOS_WINDOW + 2 * SNN_DNSMOS_HOP) /* 11.01 s >= what a due window needs */
#define TILE_CAP (2 * SNN_DNSMOS_WINDOW)
#define MEL_SAMPLES (SNN_DNSMOS_WINDOW - 160)

typedef struct dnsmos_model {
    snn_model base;
    snn_onnx_graph *g;
    int p808;
    int personalized;
    snn_mel mel; /* P.808 only */
    size_t mel_frames;
} dnsmos_model;

struct snn_state {
    float *buf;       /* [BUF_CAP] the newest samples; buf[0] is sample buf_start */
    size_t have;      /* samples in buf */
    uint64_t buf_start, total, windows;
    float *tile;      /* [TILE_CAP] for finish() */
    void *work;       /* graph work buffer */
    double *mel_work; /* P.808: mel scratch */
    double *mel_pow;  /* P.808: [frames][120] */
    float *mel_in;    /* P.808: model input */
};

static const char *const p835_names[] = {"SIG", "BAK", "OVRL", "SIG_raw", "BAK_raw", "OVRL_raw"};
static const char *const p808_names[] = {"MOS"};

void snn_dnsmos_map(int personalized, const float raw[3], float mapped[3])
{
    /* coefficients lowest power first: c0 + c1 x + c2 x^2 + c3 x^3 */
    static const double reg[3][4] = {
        {0.0052439, 1.22083953, -0.08397278, 0},     /* SIG */
        {-0.39604546, 1.60915514, -0.13166888, 0},   /* BAK */
        {0.04602535, 1.11546468, -0.06766283, 0},    /* OVRL */
    };
    static const double pers[3][4] = {
        {-0.24348726, 1.19576786, 0.02751166, -0.01019296},
        {0.96883132, -0.1644611, 0.44276479, -0.04976499},
        {-0.11236046, 1.18058466, 0.005101, -0.00533021},
    };
    const double(*c)[4] = personalized ? pers : reg;
    for (int i = 0; i < 3; i++) {
        double x = raw[i];
        mapped[i] = (float)(c[i][0] + x * (c[i][1] + x * (c[i][2] + x * c[i][3])));
    }
}

int snn_dnsmos_is_p808(const snn_model *m) { return ((const dnsmos_model *)m)->p808; }

int snn_dnsmos_window(const snn_model *bm, snn_state *s, const float *x, float *out)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    if (m->p808) {
        snn_mel_power(&m->mel, x, MEL_SAMPLES, s->mel_pow, s->mel_work);
        snn_mel_dnsmos_norm(s->mel_pow, m->mel_frames * 120, s->mel_in);
        snn_onnx_run(m->g, s->mel_in, out, s->work);
        return 0;
    }
    float raw[3];
    snn_onnx_run(m->g, x, raw, s->work);
    snn_dnsmos_map(m->personalized, raw, out);
    memcpy(out + 3, raw, sizeof raw);
    return 0;
}

static void count_ops(const dnsmos_model *m, snn_step_info *info)
{
    uint64_t macs = snn_onnx_flops(m->g) / 2;
    info->dense_ops += macs;
    info->eff_macs += macs;
}

int snn_dnsmos_step_samples(const snn_model *bm, snn_state *s, const float *x, size_t n,
                            float *out, snn_step_info *info)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    memset(info, 0, sizeof *info);
    if (n > SNN_DNSMOS_HOP)
        return -SNN_EINVAL;
    if (s->have + n > BUF_CAP) { /* drop the oldest samples */
        size_t drop = s->have + n - BUF_CAP;
        memmove(s->buf, s->buf + drop, (s->have - drop) * sizeof *s->buf);
        s->have -= drop;
        s->buf_start += drop;
    }
    memcpy(s->buf + s->have, x, n * sizeof *x);
    s->have += n;
    s->total += n;
    /* window i is due once floor(total / hop) >= i + 10 */
    uint64_t secs = s->total / SNN_DNSMOS_HOP;
    if (secs >= 10 && s->windows <= secs - 10) {
        uint64_t start = s->windows * SNN_DNSMOS_HOP;
        if (start < s->buf_start) /* cannot happen with hops of <= 16000 samples */
            return -SNN_EINVAL;
        snn_dnsmos_window(bm, s, s->buf + (start - s->buf_start), out);
        s->windows++;
        info->has_output = 1;
        count_ops(m, info);
    }
    return 0;
}

static int dnsmos_step(const snn_model *m, snn_state *s, const float *in, float *out,
                       snn_step_info *info)
{
    return snn_dnsmos_step_samples(m, s, in, SNN_DNSMOS_HOP, out, info);
}

static int dnsmos_finish(const snn_model *bm, snn_state *s, float *out, snn_step_info *info)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    memset(info, 0, sizeof *info);
    if (s->windows > 0 || s->total == 0)
        return 0;
    if (s->total >= SNN_DNSMOS_WINDOW) { /* 9.01 .. 10 s: the one window */
        snn_dnsmos_window(bm, s, s->buf, out);
        s->windows++;
        info->has_output = 1;
        count_ops(m, info);
        return 0;
    }
    /* tile as dnsmos_local.py: audio = append(audio, audio) until long enough */
    size_t L = s->have;
    memcpy(s->tile, s->buf, L * sizeof *s->tile);
    while (L < SNN_DNSMOS_WINDOW) {
        memcpy(s->tile + L, s->tile, L * sizeof *s->tile);
        L *= 2;
    }
    /* num_hops = int(floor(L / fs) - 9.01) + 1, int() truncating toward 0 */
    int hops = (int)((double)(L / SNN_DNSMOS_SR) - 9.01) + 1;
    double acc[6] = {0};
    float o[6];
    int used = 0;
    for (int i = 0; i < hops; i++) {
        if ((size_t)i * SNN_DNSMOS_HOP + SNN_DNSMOS_WINDOW > L)
            continue;
        snn_dnsmos_window(bm, s, s->tile + (size_t)i * SNN_DNSMOS_HOP, o);
        for (uint32_t k = 0; k < bm->n_out; k++)
            acc[k] += o[k];
        used++;
        count_ops(m, info);
    }
    for (uint32_t k = 0; k < bm->n_out; k++)
        out[k] = (float)(acc[k] / used);
    s->windows += (uint64_t)used;
    info->has_output = used > 0;
    return 0;
}

static void dnsmos_state_reset(const snn_model *m, snn_state *s)
{
    (void)m;
    s->have = 0;
    s->buf_start = s->total = s->windows = 0;
}

static void dnsmos_state_free(const snn_model *bm, snn_state *s)
{
    if (!s)
        return;
    const snn_allocator *a = bm->alloc;
    a->free(s->buf);
    a->free(s->tile);
    a->free(s->work);
    a->free(s->mel_work);
    a->free(s->mel_pow);
    a->free(s->mel_in);
    a->free(s);
}

static int dnsmos_state_new(const snn_model *bm, snn_state **out, snn_err *err)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    const snn_allocator *a = bm->alloc;
    *out = NULL;
    snn_state *s = a->calloc(1, sizeof *s);
    if (!s)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a stream state", bm->name);
    s->buf = a->calloc(BUF_CAP, sizeof *s->buf);
    s->tile = a->calloc(TILE_CAP, sizeof *s->tile);
    s->work = a->malloc(snn_onnx_work_size(m->g));
    int ok = s->buf && s->tile && s->work;
    if (ok && m->p808) {
        s->mel_work = a->malloc(snn_mel_work_size(&m->mel, MEL_SAMPLES) * sizeof(double));
        s->mel_pow = a->malloc(m->mel_frames * 120 * sizeof(double));
        s->mel_in = a->malloc(m->mel_frames * 120 * sizeof(float));
        ok = s->mel_work && s->mel_pow && s->mel_in;
    }
    if (!ok) {
        dnsmos_state_free(bm, s);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a stream state (%zu MB)", bm->name,
                           snn_onnx_work_size(m->g) >> 20);
    }
    *out = s;
    return 0;
}

static void dnsmos_free(snn_model *bm)
{
    if (!bm)
        return;
    dnsmos_model *m = (dnsmos_model *)bm;
    snn_onnx_free(m->g);
    snn_mel_free(&m->mel);
    snn_model_free_common(bm);
    bm->alloc->free(m);
}

static int dnsmos_describe(const snn_model *bm, json_t *o)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    json_object_set_new(o, "standard", json_string(m->p808 ? "ITU-T P.808" : "ITU-T P.835"));
    json_object_set_new(o, "personalized", json_boolean(m->personalized));
    json_object_set_new(o, "sample_rate", json_integer(SNN_DNSMOS_SR));
    json_object_set_new(o, "window_samples", json_integer(SNN_DNSMOS_WINDOW));
    json_object_set_new(o, "hop_samples", json_integer(SNN_DNSMOS_HOP));
    json_object_set_new(o, "flops_per_window", json_integer((json_int_t)snn_onnx_flops(m->g)));
    json_object_set_new(o, "onnx_nodes", json_integer((json_int_t)snn_onnx_n_nodes(m->g)));
    json_object_set_new(o, "work_bytes", json_integer((json_int_t)snn_onnx_work_size(m->g)));
    return 0;
}

static const snn_model_ops dnsmos_ops = {
    .kind = "onnx",
    .free = dnsmos_free,
    .state_new = dnsmos_state_new,
    .state_free = dnsmos_state_free,
    .state_reset = dnsmos_state_reset,
    .step = dnsmos_step,
    .finish = dnsmos_finish,
    .describe = dnsmos_describe,
};

static int starts_with_ci(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (tolower((unsigned char)*s) != *p)
            return 0;
    return 1;
}

int snn_onnx_model_load(const char *path, const snn_allocator *a, snn_model **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    dnsmos_model *m = a->calloc(1, sizeof *m);
    if (!m)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    snn_model *b = &m->base;
    b->ops = &dnsmos_ops;
    b->alloc = a;
    int rc = snn_model_set_path(b, path);
    if (rc) {
        a->free(m);
        return snn_err_set(err, SNN_EINVAL, "%s: path too long", path);
    }
    rc = snn_onnx_load(path, a, &m->g, err);
    if (rc) {
        a->free(m);
        return rc;
    }
    const int64_t *d = snn_onnx_input_dims(m->g);
    int r = snn_onnx_input_rank(m->g);
    size_t nout = snn_onnx_output_numel(m->g);
    if (r == 2 && d[0] == 1 && d[1] == SNN_DNSMOS_WINDOW && nout == 3) {
        m->p808 = 0;
    } else if (r == 3 && d[0] == 1 && d[1] == 900 && d[2] == 120 && nout == 1) {
        m->p808 = 1;
    } else {
        snn_onnx_free(m->g);
        a->free(m);
        return snn_err_set(err, SNN_ENOTSUP,
                           "%s: graph input has rank %d and %zu outputs: neither DNSMOS P.835 "
                           "([N,144160] -> 3) nor P.808 ([N,900,120] -> 1)",
                           path, r, nout);
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    m->personalized = !m->p808 && starts_with_ci(base, "pdnsmos");
    if (m->p808) {
        rc = snn_mel_init(&m->mel, SNN_DNSMOS_SR, 321, 160, 120, a, err);
        m->mel_frames = rc ? 0 : snn_mel_frames(&m->mel, MEL_SAMPLES);
        if (rc == 0 && m->mel_frames != 900)
            rc = snn_err_set(err, SNN_ESHAPE, "%s: mel front end gives %zu frames, model wants 900", path,
                             m->mel_frames);
        if (rc) {
            snn_onnx_free(m->g);
            snn_mel_free(&m->mel);
            a->free(m);
            return rc;
        }
    }
    b->n_in = SNN_DNSMOS_HOP;
    b->n_out = m->p808 ? 1 : 6;
    b->dt = (double)SNN_DNSMOS_HOP / SNN_DNSMOS_SR;
    snprintf(b->input_kind, sizeof b->input_kind, "audio");
    b->decision = SNN_DECISION_MEAN;
    b->footprint = snn_onnx_footprint(m->g);
    b->n_params = snn_onnx_n_params(m->g);
    rc = snn_model_set_names(b, &b->out_names, m->p808 ? p808_names : p835_names, b->n_out);
    if (rc) {
        dnsmos_free(b);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    *out = b;
    return 0;
}
