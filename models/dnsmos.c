/*
 * dnsmos.c -- the "onnx" model kind: DNSMOS P.835 / P.808 windows over a
 * 16 kHz stream (segmentation and polynomials in dnsmos.h).
 */
#include "dnsmos.h"

#include <cblas.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <jansson.h>
#include <string.h>

#include "bam.h"
#include "mel.h"
#include "onnx.h"

#define BUF_CAP (SNN_DNSMOS_WINDOW + 2 * SNN_DNSMOS_HOP) /* 11.01 s >= what a due window needs */
#define TILE_CAP (2 * SNN_DNSMOS_WINDOW)
#define MEL_SAMPLES (SNN_DNSMOS_WINDOW - 160)

/*
 * P.835 streaming without recomputation. The graph (keras2onnx of DNSMOS sig_bak_ovr, 48 nodes):
 *   frames: window sample x[160 t .. 160 t + 320) is frame t, t < 900 (two Slices, Concat)
 *   STFT:   two 1x1 Convs (real, imaginary kernels [161][320]); logpow = log(max(1e-12,
 *           sqrt(re^2 + im^2)^2)) / ln 10  -> [1][900 time][161 freq]
 *   convs:  four 3x3 Convs, padding 1, ReLU, 1 -> 128 -> 64 -> 64 -> 32 channels (35 of the
 *           39 GFLOP), then MaxPool 2x2 -> [32][450][80]                    (nodes 21 .. 29)
 *   tail:   Conv, MaxPool, Conv, MaxPool, Conv, global max over time and frequency, 3 dense
 *           layers (0.9 GFLOP)                                               (nodes 30 .. 47)
 * Nothing normalises over time before the global max. Window i's frame t is the stream's frame
 * F = 100 i + t (hop 16000 = 100 frames); the four convolutions each reach one frame either way
 * in time, so the window's output of conv l at frame t equals the stream's (computed with the
 * true neighbours) when l <= t <= 899 - l; only the window's first and last 4 frames of conv 4
 * see the zero padding at the window's edges. A stream state therefore computes each frame of
 * the four convolutions once (STREAM_ROWS at a time, with two frames of context per layer), pools
 * it (window offsets are even, so the 2x2 pooling pairs agree) into a ring of pooled frames
 * indexed by absolute pooled frame, and a window takes its pooled frames 2 .. 447 from the ring,
 * recomputes pooled frames 0, 1 and 448, 449 from its first and last EDGE frames, and runs the
 * tail from node 30 with the graph.
 * A window from scratch goes the same way by default (window_chunked): a fresh pass of the
 * chunks over its 900 frames, starting with the window's top padding, gives pooled frames
 * 0 .. 447, the bottom edge 448, 449. Its layers' chunks stay in cache, where the whole graph
 * writes and rereads 37 MB maps: 13-15 % less time per window on Zen 5 (paired runs).
 */
#define NFREQ 161
#define FRAME 320
#define FHOP 160
#define NCONV 4
#define STREAM_ROWS 16  /* frames per chunk (a 1 s hop brings 100): small enough for the
                           * layers' chunks to stay in cache (16: 28.9 ms per streamed score and
                           * 3.4 MB of layer buffers per stream; 104: 30.0 ms, 19.6 MB; Zen 5).
                           * Windows from scratch, paired against 16 on Zen 5: 8 the same, 12,
                           * 20 and 32 7-22 % slower */
#define RING 640        /* pooled frames kept: a window's 450 + the 50 a stream runs ahead + slack */
#define EDGE 8          /* frames an edge recomputes: conv 4's 4 edge frames need 4 more */
#define POOLED_T 450
#define POOLED_F 80
#define TAIL_NODE 30

typedef struct dnsmos_model {
    snn_model base;
    snn_onnx_graph *g;  /* NULL for dnsmos-bam */
    snn_bam *bam;       /* the binary-activation network (bam.h), or NULL */
    int p808;
    int personalized;
    snn_mel mel; /* P.808 only */
    size_t mel_frames;
    /* P.835 streaming (stream_ok when the graph has the layout above) */
    int stream_ok;
    const float *stft[2];             /* [161][320] real, imaginary */
    float c_floor, c_div;             /* the Max and Div constants */
    snn_onnx_conv_view conv[NCONV];   /* nodes 21, 23, 25, 27 */
    uint64_t tail_macs, window_macs;
} dnsmos_model;

typedef struct p835_stream {
    int reuse;               /* 1: windows come from the stream (default); 0: from scratch */
    int broken;              /* samples went by uncomputed: windows from scratch until reset */
    float *frames, *re, *im; /* [STREAM_ROWS][320], [STREAM_ROWS][161] x 2 */
    float *lay[NCONV + 1];   /* lay[l] [C_l][LROWS][161]: layer l's 2 context + new frames;
                                lay[4] [32][1 + STREAM_ROWS][161]: conv 4 output after a carry row */
    uint64_t e[NCONV + 1];   /* frames of each layer computed so far */
    uint64_t pooled;         /* pooled frames computed so far */
    int carry;               /* lay[4] row 0 holds conv 4's unpaired frame 2 * pooled */
    float *ring;             /* [32][RING][80] pooled frame P at row P % RING */
    float *edge[2];          /* [128][EDGE][161] ping-pong buffers for the window edges */
    float *scratch;          /* convolution scratch */
    uint64_t macs;           /* multiply-adds since the last output */
} p835_stream;

struct snn_state {
    float *buf;       /* [BUF_CAP] the newest samples; buf[0] is sample buf_start */
    size_t have;      /* samples in buf */
    uint64_t buf_start, total, windows;
    float *tile;      /* [TILE_CAP] for finish() */
    void *work;       /* graph work buffer */
    double *mel_work; /* P.808: mel scratch */
    double *mel_pow;  /* P.808: [frames][120] */
    float *mel_in;    /* P.808: model input */
    p835_stream st;   /* P.835 streaming */
    p835_stream scr;  /* P.835 windows from scratch, chunked: own lay and ring, the rest
                         shared with st (scratch within one call) */
    int chunked;      /* 1: windows from scratch through scr (default where streaming works) */
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

snn_onnx_graph *snn_dnsmos_graph(const snn_model *m) { return ((const dnsmos_model *)m)->g; }

/* ---- P.835 streaming (layout and reasoning above) ----------------------- */

#define LROWS (2 + STREAM_ROWS)
static const int64_t layer_ch[NCONV + 1] = {1, 128, 64, 64, 32};

/* Channel stride (floats) of stream layer l's buffer. */
static int64_t lay_stride(int l) { return (l < NCONV ? LROWS : 1 + STREAM_ROWS) * NFREQ; }

/* out[t][161] = logpow of frame t = x[160 t .. 160 t + 320), t < n (n <= STREAM_ROWS): the
 * graph's nodes 0 .. 18 for those frames, in the same float operations. */
static uint64_t logpow_rows(const dnsmos_model *m, p835_stream *st, const float *x, size_t n,
                            float *out)
{
    for (size_t t = 0; t < n; t++)
        memcpy(st->frames + t * FRAME, x + t * FHOP, FRAME * sizeof *x);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, NFREQ, FRAME, 1.0f, st->frames,
                FRAME, m->stft[0], FRAME, 0.0f, st->re, NFREQ);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, NFREQ, FRAME, 1.0f, st->frames,
                FRAME, m->stft[1], FRAME, 0.0f, st->im, NFREQ);
    for (size_t k = 0; k < n * NFREQ; k++) {
        float a = st->re[k] * st->re[k] + st->im[k] * st->im[k];
        float r = sqrtf(a);
        r = r * r; /* Pow(., 2) */
        r = (m->c_floor > r || isnan(m->c_floor)) ? m->c_floor : r;
        out[k] = logf(r) / m->c_div;
    }
    return 2 * (uint64_t)n * NFREQ * FRAME;
}

/* Convolution l of the four on H input rows x (channel stride xcs) with time padding pt, pb
 * (frequency padding as in the graph) -> y (channel stride ycs). Returns the output rows. */
static int64_t conv_rows(const dnsmos_model *m, p835_stream *st, int l, const float *x,
                         int64_t xcs, int64_t H, int pt, int pb, float *y, int64_t ycs)
{
    const snn_onnx_conv_view *cv = &m->conv[l];
    snn_conv2d c = cv->geom;
    c.H = H;
    c.pt = pt;
    c.pb = pb;
    c.xcs = xcs;
    c.ycs = ycs;
    if (snn_conv2d_init(&c) != 0)
        return 0;
    if (cv->wino)
        snn_conv2d_winograd(&c, x, cv->wino, cv->b, cv->relu, y, st->scratch);
    else
        snn_conv2d_run(&c, x, cv->w, cv->b, cv->relu, y, st->scratch);
    st->macs += (uint64_t)(c.Co * c.C * c.KH * c.KW * c.OH * c.OW);
    return c.OH;
}

static inline float max_nan(float m, float v) { return (v > m || isnan(v)) ? v : m; }

/* dst[80] = 2x2 max pooling of rows r0, r1 (161 wide; the last column is dropped). */
static void pool_pair(const float *r0, const float *r1, float *dst)
{
    for (int f = 0; f < POOLED_F; f++) {
        float v = -FLT_MAX;
        v = max_nan(v, r0[2 * f]);
        v = max_nan(v, r0[2 * f + 1]);
        v = max_nan(v, r1[2 * f]);
        v = max_nan(v, r1[2 * f + 1]);
        dst[f] = v;
    }
}

/* Computes the next n (<= STREAM_ROWS) frames of the logpow from xs (the samples from frame
 * st->e[0] on) and every frame of the four convolutions and the pooling they make computable. */
static void stream_chunk(const dnsmos_model *m, p835_stream *st, const float *xs, uint64_t n)
{
    uint64_t eo[NCONV], nin = n;
    st->macs += logpow_rows(m, st, xs, n, st->lay[0] + 2 * NFREQ);
    /* frame r of layer l is at row r + 2 - eo[l] of lay[l] */
    for (int l = 0; l < NCONV; l++) {
        eo[l] = st->e[l];
        uint64_t en = eo[l] + nin, f0 = st->e[l + 1], f1 = en ? en - 1 : 0;
        st->e[l] = en;
        nin = 0;
        if (f1 <= f0)
            continue;
        int pt = f0 == 0;
        uint64_t r0 = f0 + (uint64_t)pt - 1; /* first input frame */
        float *x = st->lay[l] + (int64_t)(r0 + 2 - eo[l]) * NFREQ;
        float *y = st->lay[l + 1] + (l + 1 < NCONV ? 2 : 1) * NFREQ;
        nin = (uint64_t)conv_rows(m, st, l, x, lay_stride(l), (int64_t)(en - r0), pt, 0, y,
                                  lay_stride(l + 1));
    }
    st->e[NCONV] += nin;
    /* 2x2 pooling of conv 4's frames into the ring; an odd frame waits in row 0 */
    uint64_t cnt = nin + (uint64_t)st->carry, start = st->carry ? 0 : 1, pairs = cnt / 2;
    int64_t s4 = lay_stride(NCONV);
    for (int64_t c = 0; c < 32; c++) {
        const float *lc = st->lay[NCONV] + c * s4;
        for (uint64_t j = 0; j < pairs; j++) {
            const float *r = lc + (start + 2 * j) * NFREQ;
            int64_t row = (int64_t)((st->pooled + j) % RING);
            pool_pair(r, r + NFREQ, st->ring + (c * RING + row) * POOLED_F);
        }
        if (cnt % 2)
            memmove(st->lay[NCONV] + c * s4, lc + (start + cnt - 1) * NFREQ, NFREQ * sizeof(float));
    }
    st->carry = (int)(cnt % 2);
    st->pooled += pairs;
    /* keep each layer's last two frames as the next chunk's context (rows 0, 1) */
    for (int l = 0; l < NCONV; l++) {
        uint64_t added = st->e[l] - eo[l];
        if (added == 0)
            continue;
        for (int64_t c = 0; c < layer_ch[l]; c++) {
            float *lc = st->lay[l] + c * lay_stride(l);
            memmove(lc, lc + added * NFREQ, 2 * NFREQ * sizeof(float));
        }
    }
}

/* Brings the stream's layers up to every frame the samples received so far allow. */
static void stream_advance(const dnsmos_model *m, snn_state *s)
{
    p835_stream *st = &s->st;
    if (!m->stream_ok || !st->reuse || st->broken)
        return;
    uint64_t avail = s->total >= FRAME ? (s->total - FRAME) / FHOP + 1 : 0;
    while (st->e[0] < avail) {
        if (FHOP * st->e[0] < s->buf_start) { /* samples gone before they were used */
            st->broken = 1;
            return;
        }
        uint64_t n = avail - st->e[0] < STREAM_ROWS ? avail - st->e[0] : STREAM_ROWS;
        stream_chunk(m, st, s->buf + (FHOP * st->e[0] - s->buf_start), n);
    }
}

/* Forgets every frame st computed (the buffers stay): the next chunk is frame 0 of a stream. */
static void stream_reset(p835_stream *st)
{
    memset(st->e, 0, sizeof st->e);
    st->pooled = 0;
    st->carry = 0;
    st->broken = 0;
    st->macs = 0;
}

/* Pooled frames u0, u0 + 1 of a window's edge: the four convolutions on EDGE logpow frames
 * starting at x (frame offset t0 in the window), padded on top (first edge) or at the bottom. */
static void window_edge(const dnsmos_model *m, p835_stream *st, const float *x, int bottom,
                        float *tin, int u0)
{
    float *a = st->edge[0], *b = st->edge[1];
    st->macs += logpow_rows(m, st, x, EDGE, a);
    int64_t H = EDGE;
    for (int l = 0; l < NCONV; l++) {
        H = conv_rows(m, st, l, a, 0, H, !bottom, bottom, b, 0);
        float *t = a;
        a = b;
        b = t;
    }
    /* a = conv 4's [32][4][161] */
    for (int64_t c = 0; c < 32; c++)
        for (int j = 0; j < 2; j++) {
            const float *r = a + (c * H + 2 * j) * NFREQ;
            pool_pair(r, r + NFREQ, tin + (c * POOLED_T + u0 + j) * POOLED_F);
        }
}

/* The tail's input from st's pooled frames P0 + u0 .. P0 + 447 (u0 = 0 or 2; with 2, pooled
 * frames 0, 1 are recomputed from the window's first EDGE frames) and pooled frames 448, 449
 * from its last EDGE frames (x = the window's samples), then the tail: raw[3]. */
static void window_assemble(const dnsmos_model *m, p835_stream *st, uint64_t P0, int u0,
                            const float *x, void *work, float *raw)
{
    const int64_t *d;
    int r;
    float *tin = snn_onnx_node_input(m->g, TAIL_NODE, work, &d, &r);
    for (int64_t c = 0; c < 32; c++)
        for (uint64_t u = (uint64_t)u0; u < POOLED_T - 2; u++)
            memcpy(tin + (c * POOLED_T + (int64_t)u) * POOLED_F,
                   st->ring + (c * RING + (int64_t)((P0 + u) % RING)) * POOLED_F,
                   POOLED_F * sizeof(float));
    if (u0 > 0)
        window_edge(m, st, x, 0, tin, 0);
    window_edge(m, st, x + (900 - EDGE) * FHOP, 1, tin, POOLED_T - 2);
    snn_onnx_run_from(m->g, TAIL_NODE, raw, work);
    st->macs += m->tail_macs;
}

/* Scores window i = samples x[0 .. 144160) = stream samples from 16000 i through the stream's
 * pooled frames: raw[3]. Returns 0, or -1 when the stream does not hold the frames. */
static int window_from_stream(const dnsmos_model *m, snn_state *s, uint64_t i, const float *x,
                              float *raw)
{
    p835_stream *st = &s->st;
    uint64_t P0 = 50 * i;
    if (!m->stream_ok || !st->reuse || st->broken || st->pooled < P0 + POOLED_T - 2 ||
        P0 + 2 + RING < st->pooled)
        return -1;
    window_assemble(m, st, P0, 2, x, s->work, raw);
    return 0;
}

/* Scores the window x[0 .. 144160) from scratch the way a stream computes it: a fresh pass of
 * the chunked convolutions over the window's 900 frames (the pass starts with the window's top
 * padding), its pooled frames 0 .. 447 from the pass and 448, 449 from its last EDGE frames:
 * raw[3]. The same operations as the streamed scores, each frame once, and the layers' chunks
 * stay in cache (the whole-graph run writes and rereads 37 MB full-resolution maps). */
static void window_chunked(const dnsmos_model *m, snn_state *s, const float *x, float *raw)
{
    p835_stream *sc = &s->scr;
    stream_reset(sc);
    while (sc->e[0] < 900) {
        uint64_t n = 900 - sc->e[0] < STREAM_ROWS ? 900 - sc->e[0] : STREAM_ROWS;
        stream_chunk(m, sc, x + FHOP * sc->e[0], n);
    }
    window_assemble(m, sc, 0, 0, x, s->work, raw);
}

/* Checks the P.835 graph has the layout streaming assumes; fills m's streaming fields. */
static void stream_probe(dnsmos_model *m)
{
    static const char *const ops[] = {
        "Slice", "Slice", "Reshape", "Reshape", "Concat", "Transpose", "Transpose", "Conv", "Conv",
        "Transpose", "Transpose", "Mul", "Mul", "Add", "Sqrt", "Pow", "Max", "Log", "Div",
        "Unsqueeze", "Transpose", "Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "Conv", "Relu",
        "MaxPool", "Conv"};
    m->stream_ok = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const char *op = snn_onnx_node_op(m->g, k);
        if (!op || strcmp(op, ops[k]) != 0)
            return;
    }
    for (int j = 0; j < 2; j++) {
        snn_onnx_conv_view cv;
        if (snn_onnx_node_conv(m->g, 7 + (size_t)j, &cv) || cv.geom.C != FRAME ||
            cv.geom.Co != NFREQ || cv.geom.KW != 1 || cv.geom.KH != 1 || cv.b || cv.relu)
            return;
        m->stft[j] = cv.w;
    }
    size_t n;
    const float *pw = snn_onnx_node_const(m->g, 15, 1, &n);
    if (!pw || n != 1 || pw[0] != 2.0f)
        return;
    const float *fl = snn_onnx_node_const(m->g, 16, 0, &n);
    if (!fl || n != 1)
        return;
    m->c_floor = fl[0];
    const float *dv = snn_onnx_node_const(m->g, 18, 1, &n);
    if (!dv || n != 1)
        return;
    m->c_div = dv[0];
    for (int l = 0; l < NCONV; l++) {
        snn_onnx_conv_view *cv = &m->conv[l];
        if (snn_onnx_node_conv(m->g, 21 + 2 * (size_t)l, cv))
            return;
        const snn_conv2d *c = &cv->geom;
        if (c->C != layer_ch[l] || c->Co != layer_ch[l + 1] || c->H != 900 || c->W != NFREQ ||
            c->KH != 3 || c->KW != 3 || c->sh != 1 || c->sw != 1 || c->dh != 1 || c->dw != 1 ||
            c->pt != 1 || c->pb != 1 || c->pl != 1 || c->pr != 1 || !cv->relu)
            return;
    }
    m->tail_macs = snn_onnx_flops_from(m->g, TAIL_NODE) / 2;
    m->stream_ok = 1;
}

/* Allocates s's streaming buffers (P.835 with stream_ok). Returns 0 or -1. */
static int stream_alloc(const dnsmos_model *m, snn_state *s)
{
    const snn_allocator *a = m->base.alloc;
    p835_stream *st = &s->st;
    st->reuse = 1;
    if (!m->stream_ok)
        return 0;
    const int64_t *d;
    int r;
    if (!snn_onnx_node_input(m->g, TAIL_NODE, s->work, &d, &r) || r != 4 || d[0] != 1 ||
        d[1] != 32 || d[2] != POOLED_T || d[3] != POOLED_F) {
        st->reuse = 0;
        return 0;
    }
    size_t scr = 0;
    for (int l = 0; l < NCONV; l++) {
        int64_t hs[2] = {LROWS, EDGE};
        for (int k = 0; k < 2; k++) {
            snn_conv2d c = m->conv[l].geom;
            c.H = hs[k];
            c.pt = c.pb = 0;
            if (snn_conv2d_init(&c) != 0)
                continue;
            size_t x = m->conv[l].wino ? snn_winograd_scratch(&c) : snn_conv2d_scratch(&c);
            c.pt = 1; /* with the edges' padding */
            snn_conv2d_init(&c);
            size_t y = m->conv[l].wino ? snn_winograd_scratch(&c) : snn_conv2d_scratch(&c);
            scr = scr > x ? scr : x;
            scr = scr > y ? scr : y;
        }
    }
    st->frames = a->malloc(STREAM_ROWS * FRAME * sizeof(float));
    st->re = a->malloc(STREAM_ROWS * NFREQ * sizeof(float));
    st->im = a->malloc(STREAM_ROWS * NFREQ * sizeof(float));
    int ok = st->frames && st->re && st->im;
    for (int l = 0; l <= NCONV; l++) {
        st->lay[l] = a->calloc((size_t)(layer_ch[l] * lay_stride(l)), sizeof(float));
        ok = ok && st->lay[l];
    }
    st->ring = a->malloc((size_t)32 * RING * POOLED_F * sizeof(float));
    st->edge[0] = a->malloc((size_t)128 * EDGE * NFREQ * sizeof(float));
    st->edge[1] = a->malloc((size_t)128 * EDGE * NFREQ * sizeof(float));
    st->scratch = a->malloc((scr + 16) * sizeof(float));
    ok = ok && st->ring && st->edge[0] && st->edge[1] && st->scratch;
    /* the chunked pass for windows from scratch: its own layers and ring */
    p835_stream *sc = &s->scr;
    *sc = *st;
    for (int l = 0; l <= NCONV; l++) {
        sc->lay[l] = a->calloc((size_t)(layer_ch[l] * lay_stride(l)), sizeof(float));
        ok = ok && sc->lay[l];
    }
    sc->ring = a->malloc((size_t)32 * RING * POOLED_F * sizeof(float));
    ok = ok && sc->ring;
    s->chunked = ok;
    return ok ? 0 : -1;
}

/* Frees what stream_alloc gave scr of its own: the layers and the ring. */
static void scratch_pass_free(const snn_allocator *a, p835_stream *sc)
{
    for (int l = 0; l <= NCONV; l++)
        a->free(sc->lay[l]);
    a->free(sc->ring);
}

static void stream_free(const snn_allocator *a, p835_stream *st)
{
    a->free(st->frames);
    a->free(st->re);
    a->free(st->im);
    for (int l = 0; l <= NCONV; l++)
        a->free(st->lay[l]);
    a->free(st->ring);
    a->free(st->edge[0]);
    a->free(st->edge[1]);
    a->free(st->scratch);
}

void snn_dnsmos_set_reuse(snn_state *s, int on)
{
    if (on && !s->st.reuse && s->total > 0)
        s->st.broken = 1; /* the stream skipped samples while off */
    s->st.reuse = on && s->st.scratch != NULL;
}

int snn_dnsmos_set_chunked(snn_state *s, int on)
{
    s->chunked = on && s->scr.ring != NULL;
    return s->chunked;
}

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
    if (m->bam)
        snn_bam_run(m->bam, x, raw, s->work);
    else if (s->chunked)
        window_chunked(m, s, x, raw);
    else
        snn_onnx_run(m->g, x, raw, s->work);
    snn_dnsmos_map(m->personalized, raw, out);
    memcpy(out + 3, raw, sizeof raw);
    return 0;
}

/* Multiply-adds of a window computed from scratch (for dnsmos-bam: of the same network in
 * float; its binary layers add instead). */
static uint64_t window_macs(const dnsmos_model *m)
{
    if (m->bam) {
        snn_bam_memory mem;
        snn_bam_memory_of(m->bam, &mem);
        return mem.f32_macs;
    }
    return snn_onnx_flops(m->g) / 2;
}

int snn_dnsmos_local_hops(size_t n)
{
    size_t L = n;
    while (L > 0 && L < SNN_DNSMOS_WINDOW)
        L *= 2;
    return (int)((double)(L / SNN_DNSMOS_SR) - 9.01) + 1;
}

int snn_dnsmos_local_scores(uint64_t i)
{
    /* Python: int(idx * hop_len_samples), int((idx + INPUT_LENGTH) * hop_len_samples); the
     * same two IEEE double operations here (an FMA cannot contract them) */
    double end = ((double)i + 9.01) * (double)SNN_DNSMOS_HOP;
    return (int64_t)end - (int64_t)(i * SNN_DNSMOS_HOP) >= SNN_DNSMOS_WINDOW;
}

static void count_ops(const dnsmos_model *m, snn_step_info *info)
{
    uint64_t macs = window_macs(m);
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
    stream_advance(m, s);
    /* window i is due once floor(total / hop) >= i + 10 */
    uint64_t secs = s->total / SNN_DNSMOS_HOP;
    if (secs >= 10 && s->windows <= secs - 10) {
        uint64_t start = s->windows * SNN_DNSMOS_HOP;
        if (start < s->buf_start) /* cannot happen with hops of <= 16000 samples */
            return -SNN_EINVAL;
        const float *w = s->buf + (start - s->buf_start);
        float raw[3];
        if (!m->p808 && window_from_stream(m, s, s->windows, w, raw) == 0) {
            snn_dnsmos_map(m->personalized, raw, out);
            memcpy(out + 3, raw, sizeof raw);
            info->dense_ops += window_macs(m);
            info->eff_macs += s->st.macs;
        } else {
            snn_dnsmos_window(bm, s, w, out);
            count_ops(m, info);
        }
        s->st.macs = 0;
        info->outside_decision = !snn_dnsmos_local_scores(s->windows);
        s->windows++;
        info->has_output = 1;
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
    int hops = snn_dnsmos_local_hops(s->have);
    double acc[6] = {0};
    float o[6];
    int used = 0;
    for (int i = 0; i < hops; i++) {
        if ((size_t)i * SNN_DNSMOS_HOP + SNN_DNSMOS_WINDOW > L || !snn_dnsmos_local_scores((uint64_t)i))
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
    stream_reset(&s->st);
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
    scratch_pass_free(a, &s->scr);
    stream_free(a, &s->st);
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
    size_t work = m->bam ? snn_bam_work_size(m->bam) : snn_onnx_work_size(m->g);
    s->work = a->malloc(work);
    int ok = s->buf && s->tile && s->work;
    if (ok && m->p808) {
        s->mel_work = a->malloc(snn_mel_work_size(&m->mel, MEL_SAMPLES) * sizeof(double));
        s->mel_pow = a->malloc(m->mel_frames * 120 * sizeof(double));
        s->mel_in = a->malloc(m->mel_frames * 120 * sizeof(float));
        ok = s->mel_work && s->mel_pow && s->mel_in;
    }
    if (ok && !m->p808)
        ok = stream_alloc(m, s) == 0;
    if (!ok) {
        dnsmos_state_free(bm, s);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a stream state (%zu MB)", bm->name,
                           work >> 20);
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
    snn_bam_free(m->bam);
    snn_mel_free(&m->mel);
    snn_model_free_common(bm);
    bm->alloc->free(m);
}

static int dnsmos_describe(const snn_model *bm, json_t *o)
{
    const dnsmos_model *m = (const dnsmos_model *)bm;
    json_object_set_new(o, "standard", json_string(m->p808 ? "ITU-T P.808" : "ITU-T P.835"));
    if (m->bam) {
        snn_bam_memory mem;
        snn_bam_memory_of(m->bam, &mem);
        json_object_set_new(o, "sample_rate", json_integer(SNN_DNSMOS_SR));
        json_object_set_new(o, "window_samples", json_integer(SNN_DNSMOS_WINDOW));
        json_object_set_new(o, "hop_samples", json_integer(SNN_DNSMOS_HOP));
        json_object_set_new(o, "activations", json_string("binary"));
        json_object_set_new(o, "readout", json_string(snn_bam_readout(m->bam)));
        json_object_set_new(o, "readout_floor", json_boolean(snn_bam_readout_floor(m->bam)));
        json_object_set_new(o, "weight_bits", json_integer(8));
        json_object_set_new(o, "float_macs_per_window", json_integer((json_int_t)mem.f32_macs));
        json_object_set_new(o, "weight_bytes", json_integer((json_int_t)mem.weights));
        json_object_set_new(o, "derived_bytes", json_integer((json_int_t)mem.derived));
        json_object_set_new(o, "peak_activation_bytes", json_integer((json_int_t)mem.peak_act));
        json_object_set_new(o, "float32_weight_bytes", json_integer((json_int_t)mem.f32_weights));
        json_object_set_new(o, "float32_peak_activation_bytes", json_integer((json_int_t)mem.f32_peak_act));
        json_object_set_new(o, "work_bytes", json_integer((json_int_t)snn_bam_work_size(m->bam)));
        return 0;
    }
    json_object_set_new(o, "personalized", json_boolean(m->personalized));
    json_object_set_new(o, "sample_rate", json_integer(SNN_DNSMOS_SR));
    json_object_set_new(o, "window_samples", json_integer(SNN_DNSMOS_WINDOW));
    json_object_set_new(o, "hop_samples", json_integer(SNN_DNSMOS_HOP));
    json_object_set_new(o, "flops_per_window", json_integer((json_int_t)snn_onnx_flops(m->g)));
    json_object_set_new(o, "onnx_nodes", json_integer((json_int_t)snn_onnx_n_nodes(m->g)));
    json_object_set_new(o, "work_bytes", json_integer((json_int_t)snn_onnx_work_size(m->g)));
    json_object_set_new(o, "streaming_reuse", json_boolean(m->stream_ok));
    return 0;
}

static const snn_model_ops dnsmos_ops = {
    .kind = "onnx",
    .free = dnsmos_free,
    .state_new = dnsmos_state_new,
    .state_free = dnsmos_state_free,
    .state_reset = dnsmos_state_reset,
    .step = dnsmos_step,
    .step_partial = snn_dnsmos_step_samples,
    .finish = dnsmos_finish,
    .describe = dnsmos_describe,
};

static const snn_model_ops bam_ops = {
    .kind = "dnsmos-bam",
    .free = dnsmos_free,
    .state_new = dnsmos_state_new,
    .state_free = dnsmos_state_free,
    .state_reset = dnsmos_state_reset,
    .step = dnsmos_step,
    .step_partial = snn_dnsmos_step_samples,
    .finish = dnsmos_finish,
    .describe = dnsmos_describe,
};

/* The interface both kinds share: 1 s hops of 16 kHz audio in, the clip's mean as decision. */
static int set_window_io(snn_model *b, uint32_t n_out)
{
    b->n_in = SNN_DNSMOS_HOP;
    b->n_out = n_out;
    b->dt = (double)SNN_DNSMOS_HOP / SNN_DNSMOS_SR;
    snprintf(b->input_kind, sizeof b->input_kind, "audio");
    b->decision = SNN_DECISION_MEAN;
    return snn_model_set_names(b, &b->out_names, n_out == 6 ? p835_names : p808_names, n_out);
}

int snn_dnsmos_bam_model_load(snn_st *st, const char *path, const snn_allocator *a, snn_model **out,
                              snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    dnsmos_model *m = a->calloc(1, sizeof *m);
    if (!m)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    snn_model *b = &m->base;
    b->ops = &bam_ops;
    b->alloc = a;
    if (snn_model_set_path(b, path)) {
        a->free(m);
        return snn_err_set(err, SNN_EINVAL, "%s: path too long", path);
    }
    int rc = snn_bam_load(st, path, a, &m->bam, err);
    if (rc) {
        a->free(m);
        return rc;
    }
    snn_bam_memory mem;
    snn_bam_memory_of(m->bam, &mem);
    b->footprint = mem.weights;
    b->n_params = snn_bam_params(m->bam);
    if (set_window_io(b, 6)) {
        dnsmos_free(b);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    *out = b;
    return 0;
}

static int starts_with_ci(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (tolower((unsigned char)*s) != *p)
            return 0;
    return 1;
}

/* Output-layer biases (the last node, an Add of 3 constants) of the two public P.835 releases
 * (microsoft/DNS-Challenge DNSMOS/DNSMOS/sig_bak_ovr.onnx and DNSMOS/pDNSMOS/sig_bak_ovr.onnx), as
 * float bit patterns: they tell the releases apart whatever the file is called or however it was
 * re-saved. */
static const uint32_t bias_dnsmos[3] = {0x3ead7d5b, 0x3ed0d8c7, 0x3ea6c3f3};
static const uint32_t bias_pdnsmos[3] = {0x3eb24c6a, 0x3ed2c762, 0x3ea7172e};

/* 1 if P.835 graph g is the personalized release, 0 if it is the regular one, -1 if its output
 * bias is neither's (another training). */
static int p835_release(const snn_onnx_graph *g)
{
    size_t nn = snn_onnx_n_nodes(g), n = 0;
    const char *op = nn ? snn_onnx_node_op(g, nn - 1) : NULL;
    if (!op || strcmp(op, "Add") != 0)
        return -1;
    const float *b = snn_onnx_node_const(g, nn - 1, 1, &n);
    if (!b || n != 3)
        b = snn_onnx_node_const(g, nn - 1, 0, &n);
    if (!b || n != 3)
        return -1;
    uint32_t u[3];
    memcpy(u, b, sizeof u);
    if (memcmp(u, bias_pdnsmos, sizeof u) == 0)
        return 1;
    if (memcmp(u, bias_dnsmos, sizeof u) == 0)
        return 0;
    return -1;
}

/* "[N,d1,...]" for shape d[0..r) whose dim 0 is the batch (fixed to 1 by the loader). */
static void batch_shape_str(const int64_t *d, int r, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < r && k < n; i++) {
        if (i == 0 && d[0] == 1)
            k += (size_t)snprintf(buf + k, n - k, "N");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)d[i]);
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
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
        char sin[96], sout[96];
        batch_shape_str(d, r, sin, sizeof sin);
        batch_shape_str(snn_onnx_output_dims(m->g), snn_onnx_output_rank(m->g), sout, sizeof sout);
        const char *hint = r == 3 && d[1] == 901 && d[2] == 161
                               ? "; 2022 sig/bak_ovr.onnx (log-power input): use sig_bak_ovr.onnx"
                           : r > 0 && d[0] != 1 ? "; a fixed batch must be 1"
                                                : "";
        snn_onnx_free(m->g); /* d points into it */
        a->free(m);
        return snn_err_set(err, SNN_ENOTSUP,
                           "%s: graph %s -> %s is neither DNSMOS P.835 ([N,144160] -> [N,3]) nor "
                           "P.808 ([N,900,120] -> [N,1])%s",
                           path, sin, sout, hint);
    }
    const char *base = strrchr(path, '/'), *dir = path;
    base = base ? base + 1 : path;
    for (const char *q = path; q + 1 < base; q++) /* the directory's name starts after its last '/' */
        if (*q == '/')
            dir = q + 1;
    /* the known releases by their weights; else by the file's or its directory's name */
    int rel = m->p808 ? 0 : p835_release(m->g);
    m->personalized = rel >= 0 ? rel
                               : !m->p808 && (starts_with_ci(base, "pdnsmos") ||
                                              (base > path && dir < base && starts_with_ci(dir, "pdnsmos")));
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
    if (!m->p808)
        stream_probe(m);
    b->footprint = snn_onnx_footprint(m->g);
    b->n_params = snn_onnx_n_params(m->g);
    rc = set_window_io(b, m->p808 ? 1 : 6);
    if (rc) {
        dnsmos_free(b);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    *out = b;
    return 0;
}
