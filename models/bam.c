/*
 * bam.c -- the binary-activation DNSMOS network of bam.h.
 *
 * Maps are stored with a one-position zero border, so the 3x3 convolutions
 * need no bounds checks: map (t, k) of a layer with H x W positions and C
 * channels is at byte ((t + 1) (W + 2) + k + 1) C/8 and holds C bits, channel
 * c in bit c. A channel with dir = -1 has its weights negated at load, so every
 * channel fires when its integer sum S' > T with T = floor(dir thr).
 *
 * Binary layers whose sums fit LUT_BUDGET (up to 32 inputs and 32 outputs: layers 1 .. 5 of
 * the shipped widths) add, per tap and per group of 4 input channels (2 where 4 do not fit),
 * a precomputed sum of the weights of the set bits (16 patterns, int16 lanes; the load checks
 * no sum can leave int16). Wider binary layers (64 or 128 inputs, or any multiple of 4 inputs
 * and of 16 outputs whose sums do not fit, e.g. 48 -> 48) use the same nibble sums in passes of
 * 32 or 16 outputs (conv_rows*). The rest (the last layer) add int8 weight rows masked by each
 * input bit. None multiplies.
 *
 * Kernels, chosen at run time, all giving the same bits (snn_bam_set_simd()):
 * portable C; AVX2 + BMI2 (sums looked up per position in scalar code, outputs
 * in lanes); AVX-512 where the CPU has F, BW, VL and VNNI: VPDPWSSD for the
 * front end and conv 0 (the two integer-times-integer layers); for group-sum layers with 32
 * outputs, one position at a time with the 32 sums in one vector (one aligned 64-byte row
 * per tap and nibble); with 16 outputs, VPERMW table lookups with 32 positions in lanes.
 */
#include "bam.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT 900
#define NF 161
#define FRAME 320
#define FHOP 160
#define MAXC 128 /* DNSMOS's own widest layer (conv 0) */
#define NFC 3
#define MAXH 256 /* widest dense layer */
/* scratch for a whole layer's group sums (conv_lut*): at most a 32 -> 32 layer's nibble sums
 * (72 KiB); wider layers use pairs of bits, masked rows or the rows kernels, whose tables cover
 * 32 outputs at a time (rows_size()). */
#define LUT_BUDGET ((size_t)9 * 8 * 16 * 32 * 2)

#if defined(__has_attribute)
#if __has_attribute(target_clones) && defined(__x86_64__)
#define BAM_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef BAM_CLONES
#define BAM_CLONES
#endif

typedef struct bam_conv {
    int ci, co;        /* channels in, out */
    int H, W;          /* output positions (= input positions) */
    int pool;          /* a 2x2 pool follows */
    int lut;           /* 4 or 2: sums per group of that many input bits, int16; 0: masked rows */
    int safe16;        /* no sum can leave int16 */
    int8_t *w;         /* l = 0: [9][co]; else [9][ci][co] (dir folded in) */
    int32_t T[MAXC];   /* fire when S' > T */
    float thr[MAXC];   /* as stored (for describe / checks) */
    int8_t dir[MAXC];
} bam_conv;

/* What the head reads of the last convolution (metadata "readout"; bam.h). */
typedef enum { RO_RATE, RO_MAX, RO_RATE_MAX } bam_readout;
static const char *const readout_names[] = {"rate", "max", "rate+max"};

typedef struct bam_fc {
    int in, out;
    int8_t *w;       /* [out][in] */
    float *scale, *b;
} bam_fc;

struct snn_bam {
    const snn_allocator *a;
    int8_t *kre, *kim;           /* [161][320] */
    float re_scale[NF], im_scale[NF];
    float x_scale;
    float bound[255];            /* bound[j] = 10^((j - 127.5) / x_scale): q = #{bound < P} - 128 */
    bam_conv conv[SNN_BAM_NCONV];
    bam_fc fc[NFC];
    float out_mean[3], out_std[3];
    bam_readout readout;
    float ro_scale[MAXC], ro_bias[MAXC]; /* readout.scale, readout.bias */
    float ro_floor[MAXC];                /* readout.floor; -INFINITY without it */
    int has_floor;
    size_t feat_bytes, map_bytes, lut_bytes; /* work layout */
    uint64_t params;
};

/* ---- loading ------------------------------------------------------------ */

static int parse_ints(const char *s, int *v, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 4096)
            return -1;
        v[i] = (int)x;
        s = end;
        if (i < n - 1) {
            if (*s != ',')
                return -1;
            s++;
        }
    }
    return *s ? -1 : 0;
}

static int read_f32(snn_st *st, const char *name, uint64_t n, float *dst, snn_err *err)
{
    uint64_t shape[1] = {n};
    return snn_st_read(st, name, shape, 1, 0, dst, err);
}

/* Bytes of the sums of a layer with groups of b input bits. */
static size_t lut_size(int ci, int co, int b) { return (size_t)9 * (ci / b) * ((size_t)1 << b) * co * 2; }

/* Bytes of the work conv_rows_avx512() needs for a binary layer: the tables of one 32-output
 * pass (9 taps, ci / 4 nibbles, 16 patterns, 32 int16) and, for 64 or 128 inputs, a row of W
 * positions' 32 sums in int32; 0 where that kernel does not apply. */
static size_t rows_size(int ci, int co, int W)
{
    if (co % 32 || (ci != 16 && ci != 32 && ci != 64 && ci != 128))
        return 0;
    return (size_t)9 * ci * 256 + (ci >= 64 ? (size_t)W * 128 : 0);
}

/* Bytes of work the portable conv_rows() needs for binary layer C (its lut and W set), 0 where it
 * does not apply: 64 or 128 inputs and a multiple of 32 outputs, or a layer without whole-layer
 * nibble tables (lut 0) and a multiple of 16 outputs (every width is a multiple of 8, at most
 * MAXC: the load checks). The nine taps' tables for 32 outputs and a row's int32 sums. */
static size_t rows_c_size(const bam_conv *c)
{
    const int wide = (c->ci == 64 || c->ci == 128) && c->co % 32 == 0;
    if (!wide && (c->lut || c->co % 16))
        return 0;
    return (size_t)9 * c->ci * 256 + (size_t)c->W * 128;
}

static int load_conv(snn_bam *n, snn_st *st, const char *path, int l, snn_err *err)
{
    bam_conv *c = &n->conv[l];
    const snn_allocator *a = n->a;
    char nm[32];
    uint64_t shape[4] = {(uint64_t)c->co, (uint64_t)c->ci, 3, 3};
    size_t nw = (size_t)c->co * c->ci * 9;
    int8_t *w = a->malloc(nw);
    c->w = a->malloc(nw);
    if (!w || !c->w) {
        a->free(w);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    snprintf(nm, sizeof nm, "conv%d.w", l);
    int rc = snn_st_read_i8(st, nm, shape, 4, w, err);
    if (rc == 0) {
        snprintf(nm, sizeof nm, "conv%d.thr", l);
        rc = read_f32(st, nm, (uint64_t)c->co, c->thr, err);
    }
    if (rc == 0) {
        snprintf(nm, sizeof nm, "conv%d.dir", l);
        rc = snn_st_read_i8(st, nm, shape, 1, c->dir, err);
    }
    for (int o = 0; rc == 0 && o < c->co; o++) {
        if (c->dir[o] != 1 && c->dir[o] != -1)
            rc = snn_err_set(err, SNN_EFORMAT, "%s: tensor conv%d.dir: element %d is %d (expected -1 or 1)",
                             path, l, o, c->dir[o]);
        for (size_t k = 0; rc == 0 && k < (size_t)c->ci * 9; k++)
            if (w[(size_t)o * c->ci * 9 + k] == -128)
                rc = snn_err_set(err, SNN_EFORMAT, "%s: tensor conv%d.w: -128 (weights are in [-127, 127])",
                                 path, l);
    }
    if (rc) {
        a->free(w);
        return rc;
    }
    /* reorder [co][ci][3][3] -> [tap][ci][co] with dir folded in; thresholds to integers */
    int32_t bound = 0;
    for (int o = 0; o < c->co; o++) {
        int32_t tot = 0;
        for (int i = 0; i < c->ci; i++)
            for (int t = 0; t < 9; t++) {
                int v = w[((size_t)o * c->ci + i) * 9 + t] * c->dir[o];
                c->w[((size_t)t * c->ci + i) * c->co + o] = (int8_t)v;
                tot += v < 0 ? -v : v;
            }
        if (tot > bound)
            bound = tot;
        double T = floor((double)c->dir[o] * (double)c->thr[o]);
        c->T[o] = T >= 2147483647.0 ? INT32_MAX : T <= -2147483648.0 ? INT32_MIN : (int32_t)T;
    }
    a->free(w);
    /* int16 lanes where no sum can overflow: binary layers only (layer 0's inputs reach 128) */
    c->safe16 = l >= 1 && bound <= 32767;
    c->lut = 0;
    for (int b = 4; c->safe16 && b >= 2 && !c->lut; b -= 2)
        if (c->ci % b == 0 && lut_size(c->ci, c->co, b) <= LUT_BUDGET)
            c->lut = b;
    if (c->safe16)
        for (int o = 0; o < c->co; o++)
            c->T[o] = c->T[o] > 32767 ? 32767 : c->T[o] < -32768 ? -32768 : c->T[o];
    n->params += nw + 2 * (uint64_t)c->co;
    return 0;
}

static int load_fc(snn_bam *n, snn_st *st, const char *path, int j, snn_err *err)
{
    bam_fc *f = &n->fc[j];
    const snn_allocator *a = n->a;
    char nm[32];
    f->w = a->malloc((size_t)f->out * f->in);
    f->scale = a->malloc((size_t)f->out * sizeof(float));
    f->b = a->malloc((size_t)f->out * sizeof(float));
    if (!f->w || !f->scale || !f->b)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    uint64_t shape[2] = {(uint64_t)f->out, (uint64_t)f->in};
    snprintf(nm, sizeof nm, "fc%d.w", j);
    int rc = snn_st_read_i8(st, nm, shape, 2, f->w, err);
    if (rc == 0) {
        snprintf(nm, sizeof nm, "fc%d.scale", j);
        rc = read_f32(st, nm, (uint64_t)f->out, f->scale, err);
    }
    if (rc == 0) {
        snprintf(nm, sizeof nm, "fc%d.b", j);
        rc = read_f32(st, nm, (uint64_t)f->out, f->b, err);
    }
    n->params += (uint64_t)f->out * f->in + 2 * (uint64_t)f->out;
    return rc;
}

static size_t padded(int H, int W, int C) { return (size_t)(H + 2) * (W + 2) * (C / 8); }

int snn_bam_load(snn_st *st, const char *path, const snn_allocator *a, snn_bam **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    const char *fmt = snn_st_meta(st, "format");
    if (!fmt || strcmp(fmt, "snnd-dnsmos-bam") != 0)
        return snn_err_set(err, SNN_EFORMAT, "%s: metadata format is not snnd-dnsmos-bam", path);
    const char *ver = snn_st_meta(st, "version");
    if (!ver || strcmp(ver, "1") != 0)
        return snn_err_set(err, SNN_ENOTSUP, "%s: dnsmos-bam version %s not supported (1)", path,
                           ver ? ver : "(missing)");
    int widths[SNN_BAM_NCONV], head[2];
    const char *ws = snn_st_meta(st, "widths"), *ps = snn_st_meta(st, "pool_after"),
               *hs = snn_st_meta(st, "head"), *xs = snn_st_meta(st, "x_scale");
    if (!ws || parse_ints(ws, widths, SNN_BAM_NCONV))
        return snn_err_set(err, SNN_EFORMAT, "%s: metadata widths must be %d integers", path, SNN_BAM_NCONV);
    for (int l = 0; l < SNN_BAM_NCONV; l++)
        if (widths[l] % 8 || widths[l] > MAXC)
            return snn_err_set(err, SNN_ENOTSUP, "%s: conv%d width %d: widths must be multiples of 8 up to %d",
                               path, l, widths[l], MAXC);
    if (!ps || strcmp(ps, "3,4,5") != 0)
        return snn_err_set(err, SNN_ENOTSUP, "%s: metadata pool_after must be 3,4,5 (DNSMOS's layout)", path);
    if (!hs || parse_ints(hs, head, 2) || head[0] > MAXH || head[1] > MAXH)
        return snn_err_set(err, SNN_EFORMAT, "%s: metadata head must be 2 integers from 1 to %d", path, MAXH);
    char *end = NULL;
    double xsc = xs ? strtod(xs, &end) : 0;
    if (!xs || end == xs || *end || !(xsc > 0 && xsc < 1e6))
        return snn_err_set(err, SNN_EFORMAT, "%s: metadata x_scale must be a positive number", path);

    const char *ro = snn_st_meta(st, "readout");
    bam_readout readout = RO_RATE;
    while (ro && strcmp(ro, readout_names[readout]) != 0)
        if (++readout > RO_RATE_MAX)
            return snn_err_set(err, SNN_EFORMAT, "%s: metadata readout \"%s\" (rate, max or rate+max)", path,
                               ro);
    snn_bam *n = a->calloc(1, sizeof *n);
    if (!n)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    n->a = a;
    n->readout = readout;
    n->x_scale = (float)xsc;
    for (int j = 0; j < 255; j++)
        n->bound[j] = (float)pow(10.0, ((double)j - 127.5) / xsc);
    int rc = 0;
    n->kre = a->malloc(NF * FRAME);
    n->kim = a->malloc(NF * FRAME);
    if (!n->kre || !n->kim)
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    uint64_t kshape[2] = {NF, FRAME};
    if (rc == 0)
        rc = snn_st_read_i8(st, "stft.re", kshape, 2, n->kre, err);
    if (rc == 0)
        rc = snn_st_read_i8(st, "stft.im", kshape, 2, n->kim, err);
    if (rc == 0)
        rc = read_f32(st, "stft.re_scale", NF, n->re_scale, err);
    if (rc == 0)
        rc = read_f32(st, "stft.im_scale", NF, n->im_scale, err);
    n->params = 2 * (uint64_t)NF * (FRAME + 1);
    int H = NT, W = NF, ci = 1;
    size_t map = 0;
    for (int l = 0; rc == 0 && l < SNN_BAM_NCONV; l++) {
        bam_conv *c = &n->conv[l];
        c->ci = ci;
        c->co = widths[l];
        c->H = H;
        c->W = W;
        c->pool = l >= 3 && l <= 5;
        rc = load_conv(n, st, path, l, err);
        if (l > 0 && padded(H, W, ci) > map)
            map = padded(H, W, ci);
        if (l < SNN_BAM_NCONV - 1 && padded(H, W, c->co) > map)
            map = padded(H, W, c->co);
        if (c->pool) {
            H /= 2;
            W /= 2;
        }
        if (c->lut && lut_size(c->ci, c->co, c->lut) > n->lut_bytes)
            n->lut_bytes = lut_size(c->ci, c->co, c->lut);
        if (l > 0 && l < SNN_BAM_NCONV - 1 && rows_size(c->ci, c->co, c->W) > n->lut_bytes)
            n->lut_bytes = rows_size(c->ci, c->co, c->W);
        if (l > 0 && l < SNN_BAM_NCONV - 1 && rows_c_size(c) > n->lut_bytes)
            n->lut_bytes = rows_c_size(c);
        ci = c->co;
    }
    int dims[NFC + 1] = {widths[SNN_BAM_NCONV - 1] * (readout == RO_RATE_MAX ? 2 : 1), head[0], head[1], 3};
    for (int j = 0; rc == 0 && j < NFC; j++) {
        n->fc[j].in = dims[j];
        n->fc[j].out = dims[j + 1];
        rc = load_fc(n, st, path, j, err);
    }
    if (rc == 0 && readout != RO_RATE) {
        rc = read_f32(st, "readout.scale", (uint64_t)widths[SNN_BAM_NCONV - 1], n->ro_scale, err);
        if (rc == 0)
            rc = read_f32(st, "readout.bias", (uint64_t)widths[SNN_BAM_NCONV - 1], n->ro_bias, err);
        for (int o = 0; rc == 0 && o < widths[SNN_BAM_NCONV - 1]; o++)
            if (!isfinite(n->ro_scale[o]) || !isfinite(n->ro_bias[o]))
                rc = snn_err_set(err, SNN_EFORMAT, "%s: tensor readout.%s: element %d is not finite", path,
                                 isfinite(n->ro_scale[o]) ? "bias" : "scale", o);
        n->params += 2 * (uint64_t)widths[SNN_BAM_NCONV - 1];
    }
    for (int o = 0; o < MAXC; o++)
        n->ro_floor[o] = -INFINITY;
    if (rc == 0 && snn_st_find(st, "readout.floor")) {
        if (readout == RO_RATE)
            rc = snn_err_set(err, SNN_EFORMAT, "%s: tensor readout.floor needs readout \"max\" or \"rate+max\"",
                             path);
        else
            rc = read_f32(st, "readout.floor", (uint64_t)widths[SNN_BAM_NCONV - 1], n->ro_floor, err);
        for (int o = 0; rc == 0 && o < widths[SNN_BAM_NCONV - 1]; o++)
            if (!isfinite(n->ro_floor[o]))
                rc = snn_err_set(err, SNN_EFORMAT, "%s: tensor readout.floor: element %d is not finite", path, o);
        n->has_floor = 1;
        n->params += (uint64_t)widths[SNN_BAM_NCONV - 1];
    }
    if (rc == 0)
        rc = read_f32(st, "out.mean", 3, n->out_mean, err);
    if (rc == 0)
        rc = read_f32(st, "out.std", 3, n->out_std, err);
    if (rc == 0)
        rc = snn_st_check_all_used(st, err);
    n->params += 6;
    n->feat_bytes = (padded(NT, NF, 8) + 63) & ~(size_t)63;
    n->map_bytes = (map + 63) & ~(size_t)63;
    if (rc) {
        snn_bam_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

void snn_bam_free(snn_bam *n)
{
    if (!n)
        return;
    const snn_allocator *a = n->a;
    a->free(n->kre);
    a->free(n->kim);
    for (int l = 0; l < SNN_BAM_NCONV; l++) {
        a->free(n->conv[l].w);
    }
    for (int j = 0; j < NFC; j++) {
        a->free(n->fc[j].w);
        a->free(n->fc[j].scale);
        a->free(n->fc[j].b);
    }
    a->free(n);
}

uint64_t snn_bam_params(const snn_bam *n) { return n->params; }

const char *snn_bam_readout(const snn_bam *n)
{
    return readout_names[n->readout];
}

int snn_bam_readout_floor(const snn_bam *n)
{
    return n->has_floor;
}

size_t snn_bam_work_size(const snn_bam *n) { return n->feat_bytes + 2 * n->map_bytes + n->lut_bytes + 64; }

/* ---- inference ---------------------------------------------------------- */

/* q = #{j : bound[j] < P} - 128 (bam.h's rounding of x_scale log10 P, clamped). P's exponent
 * bits give log2 P within 0.09, so i0 below is within one of the count: one branch-free
 * correction each way finds it. */
static inline int8_t quant_power(const snn_bam *n, float P)
{
    uint32_t u;
    memcpy(&u, &P, sizeof u);
    float l2 = (float)u * (1.0f / 8388608.0f) - 127.0f;
    float e = l2 * (n->x_scale * 0.30103f) + 128.5f;
    int i = e > 0.0f ? (e < 255.0f ? (int)e : 255) : 0; /* NaN: 0 */
    i += (i < 255) & (P > n->bound[i < 255 ? i : 254]);
    i -= (i > 0) & !(P > n->bound[i > 0 ? i - 1 : 0]);
    return (int8_t)(i - 128);
}

/* Integer dot product of 320 PCM samples with an int8 kernel row. */
static inline int32_t dot320(const int16_t *p, const int8_t *k)
{
    int32_t s = 0;
    for (int i = 0; i < FRAME; i++)
        s += (int32_t)p[i] * k[i];
    return s;
}

/* q[(t + 1) (NF + 2) + k + 1] = the features of frame t (bam.h). */
BAM_CLONES static void front_end(const snn_bam *n, const float *x, int8_t *q)
{
    int16_t p[FRAME];
    const int Wp = NF + 2;
    for (int t = 0; t < NT; t++) {
        for (int i = 0; i < FRAME; i++) {
            float v = nearbyintf(x[t * FHOP + i] * 32768.0f);
            p[i] = (int16_t)(!(v >= -32768.0f) ? -32768.0f : v > 32767.0f ? 32767.0f : v); /* NaN: -32768 */
        }
        int8_t *row = q + (size_t)(t + 1) * Wp + 1;
        for (int k = 0; k < NF; k++) {
            float re = (float)dot320(p, n->kre + (size_t)k * FRAME) * n->re_scale[k] / 32768.0f;
            float im = (float)dot320(p, n->kim + (size_t)k * FRAME) * n->im_scale[k] / 32768.0f;
            float pw = re * re + im * im;
            row[k] = quant_power(n, pw);
        }
    }
}

static inline __attribute__((always_inline)) uint64_t load_bits(const uint8_t *p, const int nb)
{
    switch (nb) { /* constant after inlining: one load; little-endian: channel c in bit c */
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 8: { uint64_t v; memcpy(&v, p, 8); return v; }
    default: { uint64_t v = 0; memcpy(&v, p, (size_t)nb); return v; }
    }
}

static inline __attribute__((always_inline)) void store_bits(uint8_t *p, uint64_t v, const int nb)
{
    switch (nb) {
    case 1: p[0] = (uint8_t)v; break;
    case 2: { uint16_t u = (uint16_t)v; memcpy(p, &u, 2); break; }
    case 4: { uint32_t u = (uint32_t)v; memcpy(p, &u, 4); break; }
    case 8: memcpy(p, &v, 8); break;
    default: memcpy(p, &v, (size_t)nb); break;
    }
}

/* The output bits of one position, co / 8 bytes at dst: bit o = acc[o] > T[o] (co is a
 * multiple of 8). The comparisons are bytes of 0 or 1; each 8 of them, read as a little-endian
 * word x, become 8 bits by one multiplication: x * sum_{j=1..8} 2^(7 j) puts byte i's bit at
 * bit 56 + i with no carries below it. */
#define FIRE(co, acc, T, dst)                                                                      \
    do {                                                                                           \
        uint8_t f_[MAXC];                                                                          \
        for (int o_ = 0; o_ < (co); o_++)                                                          \
            f_[o_] = (uint8_t)((acc)[o_] > (T)[o_]);                                               \
        for (int o_ = 0; o_ < (co); o_ += 8) {                                                     \
            uint64_t x_;                                                                           \
            memcpy(&x_, f_ + o_, 8);                                                               \
            (dst)[o_ / 8] = (uint8_t)((x_ * 0x0102040810204080ull) >> 56);                         \
        }                                                                                          \
    } while (0)

/* The pattern of input bits b g .. b g + b - 1 of a position (b = 2 or 4 divides 8, so a group
 * never straddles a byte); m holds the position's bits when it has at most 64 (nb <= 8). */
static inline __attribute__((always_inline)) unsigned group_bits(const uint8_t *p, uint64_t m, int nb,
                                                                int b, int g)
{
    if (nb <= 8)
        return (unsigned)(m >> (b * g)) & ((1u << b) - 1);
    return (unsigned)(p[(b * g) >> 3] >> ((b * g) & 7)) & ((1u << b) - 1);
}

/* Layer 0: int8 features times int8 weights (the one layer whose input is not binary). */
static inline __attribute__((always_inline)) void conv_first_body(const bam_conv *c, const int8_t *q,
                                                                  uint8_t *y, const int co)
{
    const int Wp = c->W + 2, nb = co / 8;
    int32_t acc[MAXC];
    for (int t = 0; t < c->H; t++)
        for (int k = 0; k < c->W; k++) {
            for (int o = 0; o < co; o++)
                acc[o] = 0;
            for (int dt = 0; dt < 3; dt++)
                for (int dk = 0; dk < 3; dk++) {
                    int32_t v = q[(size_t)(t + dt) * Wp + k + dk];
                    const int8_t *w = c->w + (size_t)(dt * 3 + dk) * co;
                    for (int o = 0; o < co; o++)
                        acc[o] += v * w[o];
                }
            FIRE(co, acc, c->T, y + ((size_t)(t + 1) * Wp + k + 1) * nb);
        }
}

BAM_CLONES static void conv_first(const bam_conv *c, const int8_t *q, uint8_t *y)
{
    switch (c->co) {
    case 16: conv_first_body(c, q, y, 16); break;
    case 32: conv_first_body(c, q, y, 32); break;
    default: conv_first_body(c, q, y, c->co); break;
    }
}

/* sums[tap][g][pat][o] (o < no) = sum of the weights into output o0 + o of input channels
 * b g + j, j in pat (groups of b bits; b = c->lut for the whole layer, 4 for a 32-output slice of
 * conv_rows_avx512()). |sum| <= 4 * 127: int16. */
static void build_sums(const bam_conv *c, int b, int o0, int no, int16_t *sums)
{
    const int G = c->ci / b, co = c->co, P = 1 << b;
    for (int t = 0; t < 9; t++)
        for (int g = 0; g < G; g++) {
            int16_t *s = sums + (size_t)(t * G + g) * P * no;
            const int8_t *w = c->w + ((size_t)t * c->ci + b * g) * co + o0;
            for (int o = 0; o < no; o++)
                s[o] = 0;
            for (int pat = 1; pat < P; pat++) {
                int low = pat & -pat, j = __builtin_ctz((unsigned)pat);
                for (int o = 0; o < no; o++)
                    s[(size_t)pat * no + o] = (int16_t)(s[(size_t)(pat ^ low) * no + o] + w[(size_t)j * co + o]);
            }
        }
}

/* Binary layer, int16 lanes: per tap and input nibble, add the precomputed sum
 * (pattern 0 adds zeros: no branch on the data). */
static inline __attribute__((always_inline)) void conv_lut_body(const bam_conv *c, const int16_t *sums,
                                                                const uint8_t *x, uint8_t *y,
                                                                const int ci, const int co, const int b)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = co / 8, G = ci / b, P = 1 << b;
    int16_t acc[MAXC], T[MAXC];
    for (int o = 0; o < co; o++)
        T[o] = (int16_t)c->T[o];
    for (int t = 0; t < c->H; t++)
        for (int k = 0; k < c->W; k++) {
            for (int o = 0; o < co; o++)
                acc[o] = 0;
#pragma GCC unroll 1
            for (int dt = 0; dt < 3; dt++)
#pragma GCC unroll 1
                for (int dk = 0; dk < 3; dk++) {
                    const uint8_t *xp = x + ((size_t)(t + dt) * Wp + k + dk) * nbi;
                    uint64_t m = nbi <= 8 ? load_bits(xp, nbi) : 0;
                    const int16_t *s = sums + (size_t)(dt * 3 + dk) * G * P * co;
#pragma GCC unroll 16
                    for (int g = 0; g < G; g++) {
                        const int16_t *r = s + ((size_t)g * P + group_bits(xp, m, nbi, b, g)) * co;
                        for (int o = 0; o < co; o++)
                            acc[o] = (int16_t)(acc[o] + r[o]);
                    }
                }
            FIRE(co, acc, T, y + ((size_t)(t + 1) * Wp + k + 1) * nbo);
        }
}

BAM_CLONES static void conv_lut(const bam_conv *c, const int16_t *sums, const uint8_t *x, uint8_t *y)
{
    if (c->lut == 4 && c->ci == 16 && c->co == 16)
        conv_lut_body(c, sums, x, y, 16, 16, 4);
    else if (c->lut == 4 && c->ci == 16 && c->co == 32)
        conv_lut_body(c, sums, x, y, 16, 32, 4);
    else if (c->lut == 4 && c->ci == 32 && c->co == 32)
        conv_lut_body(c, sums, x, y, 32, 32, 4);
    else if (c->lut == 2 && c->ci == 32 && c->co == 32)
        conv_lut_body(c, sums, x, y, 32, 32, 2);
    else
        conv_lut_body(c, sums, x, y, c->ci, c->co, c->lut);
}

/* Binary layer, int32 lanes: add each weight row masked by its input bit (no branch on the
 * data); counts != NULL: count the output bits, maxs != NULL: keep each channel's largest
 * sum S' over the positions (the max read-out); y != NULL: store the bits. */
static inline __attribute__((always_inline)) void conv_bits_body(const bam_conv *c, const uint8_t *x,
                                                                 uint8_t *y, uint32_t *counts, int32_t *maxs,
                                                                 const int ci, const int co)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = co / 8;
    int32_t acc[MAXC];
    for (int t = 0; t < c->H; t++)
        for (int k = 0; k < c->W; k++) {
            for (int o = 0; o < co; o++)
                acc[o] = 0;
            for (int dt = 0; dt < 3; dt++)
                for (int dk = 0; dk < 3; dk++) {
                    const uint8_t *xp = x + ((size_t)(t + dt) * Wp + k + dk) * nbi;
                    const int8_t *w = c->w + (size_t)(dt * 3 + dk) * ci * co;
                    for (int i0 = 0; i0 < ci; i0 += 64) { /* 64 input bits per word */
                        const int ni = ci - i0 < 64 ? ci - i0 : 64;
                        uint64_t m = load_bits(xp + i0 / 8, ni / 8);
                        for (int i = 0; i < ni; i++) {
                            int32_t on = -(int32_t)(m >> i & 1);
                            const int8_t *r = w + (size_t)(i0 + i) * co;
                            for (int o = 0; o < co; o++)
                                acc[o] += r[o] & on;
                        }
                    }
                }
            if (maxs)
                for (int o = 0; o < co; o++)
                    maxs[o] = acc[o] > maxs[o] ? acc[o] : maxs[o];
            if (counts)
                for (int o = 0; o < co; o++)
                    counts[o] += (uint32_t)(acc[o] > c->T[o]);
            if (y)
                FIRE(co, acc, c->T, y + ((size_t)(t + 1) * Wp + k + 1) * nbo);
        }
}

BAM_CLONES static void conv_bits(const bam_conv *c, const uint8_t *x, uint8_t *y, uint32_t *counts,
                                 int32_t *maxs)
{
    if (c->ci == 16 && c->co == 32)
        conv_bits_body(c, x, y, counts, maxs, 16, 32);
    else if (c->ci == 32 && c->co == 32)
        conv_bits_body(c, x, y, counts, maxs, 32, 32);
    else if (c->ci == 32 && c->co == 64)
        conv_bits_body(c, x, y, counts, maxs, 32, 64);
    else if (c->ci == 16 && c->co == 16)
        conv_bits_body(c, x, y, counts, maxs, 16, 16);
    else
        conv_bits_body(c, x, y, counts, maxs, c->ci, c->co);
}

/* Binary layer by nibble sums in passes of NO (32 or 16) outputs, the pass at O0: one output
 * row and one tap at a time (the tap's tables, ci / 4 groups of 16 rows of NO int16, stay in the
 * cache across the row), the tap's int16 sum (at most MAXC * 127 in magnitude) added to the
 * position's int32 sums in acc. work: rows_c_size() bytes, any alignment of int32. The loops
 * over NO outputs are what the compiler vectorises. */
static inline __attribute__((always_inline)) void conv_rows_body(const bam_conv *c, void *work, const uint8_t *x,
                                                                 uint8_t *y, const int ci, const int o0,
                                                                 const int no)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = c->co / 8, G = ci / 4;
    int16_t *tab = work;
    int32_t *acc = (int32_t *)(tab + (size_t)9 * G * 16 * 32);
    build_sums(c, 4, o0, no, tab);
    for (int t = 0; t < c->H; t++) {
        for (int tap = 0; tap < 9; tap++) {
            const uint8_t *r0 = x + ((size_t)(t + tap / 3) * Wp + tap % 3) * nbi;
            const int16_t *s = tab + (size_t)tap * G * 16 * no;
            for (int k = 0; k < c->W; k++) {
                const uint8_t *xp = r0 + (size_t)k * nbi;
                int16_t a[32] = {0};
                for (int g = 0; g < G; g++) {
                    const int16_t *r = s + ((size_t)g * 16 + (xp[g >> 1] >> (4 * (g & 1)) & 15)) * no;
                    for (int o = 0; o < no; o++)
                        a[o] = (int16_t)(a[o] + r[o]);
                }
                int32_t *ac = acc + (size_t)k * no;
                if (tap == 0)
                    for (int o = 0; o < no; o++)
                        ac[o] = a[o];
                else
                    for (int o = 0; o < no; o++)
                        ac[o] += a[o];
            }
        }
        uint8_t *dst = y + ((size_t)(t + 1) * Wp + 1) * nbo + o0 / 8;
        for (int k = 0; k < c->W; k++)
            FIRE(no, acc + (size_t)k * no, c->T + o0, dst + (size_t)k * nbo);
    }
}

/* Runs conv_rows_body() over a binary layer's outputs where rows_c_size() says it applies (e.g.
 * 64 -> 64, or 48 -> 48, whose whole table of nibble sums does not fit LUT_BUDGET), -1 if not. */
BAM_CLONES static int conv_rows(const bam_conv *c, void *work, const uint8_t *x, uint8_t *y)
{
    if (!rows_c_size(c))
        return -1;
    for (int o0 = 0; o0 < c->co; o0 += 32) {
        const int no = c->co - o0 >= 32 ? 32 : 16;
        if (c->ci == 64 && no == 32)
            conv_rows_body(c, work, x, y, 64, o0, 32);
        else if (c->ci == 128 && no == 32)
            conv_rows_body(c, work, x, y, 128, o0, 32);
        else if (no == 32)
            conv_rows_body(c, work, x, y, c->ci, o0, 32);
        else
            conv_rows_body(c, work, x, y, c->ci, o0, 16);
    }
    return 0;
}

/* ---- x86-64 AVX2 + BMI2 kernels (chosen at run time; same results as the C above) ---- */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BAM_AVX2 __attribute__((target("avx2,bmi2")))

static int simd_on = 2;

void snn_bam_set_simd(int on) { simd_on = on; }

/* libgcc fills the CPU model before main(): no lazy state shared by the worker threads. */
static int have_avx2(void)
{
    return simd_on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
}

/* Sum of the 8 int32 lanes of each of a, b, c, d -> the 4 lanes of the result. */
BAM_AVX2 static inline __m128i hsum4(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d);
    __m256i abcd = _mm256_hadd_epi32(ab, cd);
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

/* x[0..n) * 32768, rounded to nearest even and saturated to int16 (n a multiple of 16). */
BAM_AVX2 static void to_pcm16(const float *x, int n, int16_t *p)
{
    const __m256 k = _mm256_set1_ps(32768.0f), lo = _mm256_set1_ps(-32768.0f), hi = _mm256_set1_ps(32767.0f);
    for (int i = 0; i < n; i += 16) {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(x + i), k), b = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), k);
        a = _mm256_min_ps(_mm256_max_ps(a, lo), hi); /* NaN -> -32768 */
        b = _mm256_min_ps(_mm256_max_ps(b, lo), hi);
        __m256i v = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));
        _mm256_storeu_si256((__m256i *)(p + i), _mm256_permute4x64_epi64(v, 0xd8));
    }
}

/* quant_power() of 8 powers at once: the same guess and the same two corrections. */
BAM_AVX2 static void quant8_avx2(const snn_bam *n, const float *P, int8_t *q)
{
    __m256 p = _mm256_loadu_ps(P);
    __m256 l2 = _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(p)),
                                            _mm256_set1_ps(1.0f / 8388608.0f)),
                              _mm256_set1_ps(127.0f));
    __m256 e = _mm256_add_ps(_mm256_mul_ps(l2, _mm256_set1_ps(n->x_scale * 0.30103f)), _mm256_set1_ps(128.5f));
    e = _mm256_min_ps(_mm256_max_ps(e, _mm256_setzero_ps()), _mm256_set1_ps(255.0f)); /* NaN -> 0 */
    __m256i i = _mm256_cvttps_epi32(e);
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1), top = _mm256_set1_epi32(254);
    /* i += i < 255 && P > bound[min(i, 254)] */
    __m256 b = _mm256_i32gather_ps(n->bound, _mm256_min_epi32(i, top), 4);
    __m256i up = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(p, b, _CMP_GT_OQ)),
                                  _mm256_cmpgt_epi32(_mm256_set1_epi32(255), i));
    i = _mm256_sub_epi32(i, up); /* up is -1 where true */
    /* i -= i > 0 && !(P > bound[max(i - 1, 0)]) */
    b = _mm256_i32gather_ps(n->bound, _mm256_max_epi32(_mm256_sub_epi32(i, one), zero), 4);
    __m256i down = _mm256_andnot_si256(_mm256_castps_si256(_mm256_cmp_ps(p, b, _CMP_GT_OQ)),
                                       _mm256_cmpgt_epi32(i, zero));
    i = _mm256_add_epi32(i, down);
    i = _mm256_sub_epi32(i, _mm256_set1_epi32(128));
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)q, _mm_packs_epi16(w, w));
}

/* Two frames at a time (t, t + 1 share 160 samples): each kernel row is widened once for both. */
BAM_AVX2 static int front_end_avx2(const snn_bam *n, const float *x, int8_t *q)
{
    if (!have_avx2())
        return -1;
    int16_t p[FRAME + FHOP] __attribute__((aligned(32)));
    float P[2][NF + 7];
    const int Wp = NF + 2;
    for (int t = 0; t < NT; t += 2) {
        to_pcm16(x + (size_t)t * FHOP, FRAME + FHOP, p);
        int8_t *row0 = q + (size_t)(t + 1) * Wp + 1, *row1 = row0 + Wp;
        for (int k = 0; k < NF; k++) {
            const int8_t *kr = n->kre + (size_t)k * FRAME, *ki = n->kim + (size_t)k * FRAME;
            __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0;
            for (int j = 0; j < FRAME; j += 16) {
                __m256i p0 = _mm256_load_si256((const __m256i *)(p + j));
                __m256i p1 = _mm256_load_si256((const __m256i *)(p + FHOP + j));
                __m256i wr = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(kr + j)));
                __m256i wi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(ki + j)));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(p0, wr));
                b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(p0, wi));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(p1, wr));
                b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(p1, wi));
            }
            int32_t S[4];
            _mm_storeu_si128((__m128i *)S, hsum4(a0, b0, a1, b1));
            float re = (float)S[0] * n->re_scale[k] / 32768.0f, im = (float)S[1] * n->im_scale[k] / 32768.0f;
            P[0][k] = re * re + im * im;
            re = (float)S[2] * n->re_scale[k] / 32768.0f;
            im = (float)S[3] * n->im_scale[k] / 32768.0f;
            P[1][k] = re * re + im * im;
        }
        for (int h = 0; h < 2; h++) {
            int8_t *row = h ? row1 : row0;
            int k = 0;
            for (; k + 8 <= NF; k += 8)
                quant8_avx2(n, P[h] + k, row + k);
            for (; k < NF; k++)
                row[k] = quant_power(n, P[h][k]);
        }
    }
    return 0;
}

/* conv 0 with 16 or 32 outputs: taps in pairs through madd (int16 x int16 -> int32), 8
 * outputs per vector. */
BAM_AVX2 static inline __attribute__((always_inline)) void conv_first_avx2_body(
    const bam_conv *c, const int8_t *q, uint8_t *y, const int co)
{
    const int Wp = c->W + 2, NV = co / 8;
    __m256i W[5][4], T[4];
    for (int p = 0; p < 5; p++)
        for (int h = 0; h < NV; h++) {
            int32_t v[8];
            for (int o = 0; o < 8; o++) {
                int a = c->w[(size_t)(2 * p) * co + 8 * h + o];
                int b = 2 * p + 1 < 9 ? c->w[(size_t)(2 * p + 1) * co + 8 * h + o] : 0;
                v[o] = (int32_t)((uint32_t)(uint16_t)(int16_t)a | (uint32_t)(uint16_t)(int16_t)b << 16);
            }
            W[p][h] = _mm256_loadu_si256((const __m256i *)v);
        }
    for (int h = 0; h < NV; h++)
        T[h] = _mm256_loadu_si256((const __m256i *)(c->T + 8 * h));
    for (int t = 0; t < c->H; t++) {
        const int8_t *r0 = q + (size_t)t * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
        for (int k = 0; k < c->W; k++) {
            int16_t v[10] = {r0[k], r0[k + 1], r0[k + 2], r1[k], r1[k + 1], r1[k + 2],
                             r2[k], r2[k + 1], r2[k + 2], 0};
            __m256i a[4];
            for (int h = 0; h < NV; h++)
                a[h] = _mm256_setzero_si256();
            for (int p = 0; p < 5; p++) {
                __m256i b = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)v[2 * p] |
                                                        (uint32_t)(uint16_t)v[2 * p + 1] << 16));
                for (int h = 0; h < NV; h++)
                    a[h] = _mm256_add_epi32(a[h], _mm256_madd_epi16(b, W[p][h]));
            }
            uint64_t bits = 0;
            for (int h = 0; h < NV; h++)
                bits |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a[h], T[h])))
                        << (8 * h);
            store_bits(y + ((size_t)(t + 1) * Wp + k + 1) * (co / 8), bits, co / 8);
        }
    }
}

BAM_AVX2 static int conv_first_avx2(const bam_conv *c, const int8_t *q, uint8_t *y)
{
    if (!have_avx2())
        return -1;
    if (c->co == 16)
        conv_first_avx2_body(c, q, y, 16);
    else if (c->co == 32)
        conv_first_avx2_body(c, q, y, 32);
    else
        return -1;
    return 0;
}

/* Group-sum layer (groups of b = 4 or 2 bits) with 16 or 32 inputs and outputs, int16 lanes,
 * four independent add chains; aligned row loads (sums 64-byte aligned). */
BAM_AVX2 static inline __attribute__((always_inline)) void conv_lut_avx2_body(
    const bam_conv *c, const int16_t *sums, const uint8_t *x, uint8_t *y, const int ci, const int co,
    const int b)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = co / 8, G = ci / b, NV = co / 16, P = 1 << b;
    const int sh = co == 32 ? 6 : 5; /* log2 of a row's bytes */
    int16_t t16[MAXC];
    for (int o = 0; o < co; o++)
        t16[o] = (int16_t)c->T[o];
    __m256i T0 = _mm256_loadu_si256((const __m256i *)t16);
    __m256i T1 = NV > 1 ? _mm256_loadu_si256((const __m256i *)(t16 + 16)) : T0;
    for (int t = 0; t < c->H; t++) {
        const uint8_t *r0 = x + (size_t)t * Wp * nbi;
        uint8_t *dst = y + ((size_t)(t + 1) * Wp + 1) * nbo;
        for (int k = 0; k < c->W; k++) {
            /* named accumulators: GCC keeps an array of them in memory */
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            /* one tap per iteration: fully unrolled, GCC computes all 9 G row addresses first
             * and spills them */
            const char *s = (const char *)sums;
#pragma GCC unroll 1
            for (int dt = 0; dt < 3; dt++)
#pragma GCC unroll 1
            for (int dk = 0; dk < 3; dk++, s += (size_t)G * P * co * 2) {
                /* the byte offset of group g's row: its bits shifted and masked out of m << sh */
                const uint64_t ms = load_bits(r0 + ((size_t)dt * Wp + k + dk) * nbi, nbi) << sh;
#pragma GCC unroll 16
                for (int g = 0; g < G; g++) {
                    const char *r = s + (size_t)g * P * co * 2 + (ms >> (b * g) & ((uint64_t)(P - 1) << sh));
                    __m256i v = _mm256_load_si256((const __m256i *)r);
                    __m256i w = NV > 1 ? _mm256_load_si256((const __m256i *)(r + 32)) : v;
                    switch (g & 3) {
                    case 0: a0 = _mm256_add_epi16(a0, v); b0 = _mm256_add_epi16(b0, w); break;
                    case 1: a1 = _mm256_add_epi16(a1, v); b1 = _mm256_add_epi16(b1, w); break;
                    case 2: a2 = _mm256_add_epi16(a2, v); b2 = _mm256_add_epi16(b2, w); break;
                    default: a3 = _mm256_add_epi16(a3, v); b3 = _mm256_add_epi16(b3, w); break;
                    }
                }
            }
            __m256i s0 = _mm256_add_epi16(_mm256_add_epi16(a0, a1), _mm256_add_epi16(a2, a3));
            uint64_t bits = _pext_u32((unsigned)_mm256_movemask_epi8(_mm256_cmpgt_epi16(s0, T0)), 0x55555555u);
            if (NV > 1) {
                __m256i s1 = _mm256_add_epi16(_mm256_add_epi16(b0, b1), _mm256_add_epi16(b2, b3));
                bits |= (uint64_t)_pext_u32((unsigned)_mm256_movemask_epi8(_mm256_cmpgt_epi16(s1, T1)),
                                            0x55555555u) << 16;
            }
            store_bits(dst + (size_t)k * nbo, bits, nbo);
        }
    }
}

BAM_AVX2 static int conv_lut_avx2(const bam_conv *c, const int16_t *sums, const uint8_t *x, uint8_t *y)
{
    if (!have_avx2())
        return -1;
    if (c->lut == 4 && c->ci == 16 && c->co == 16)
        conv_lut_avx2_body(c, sums, x, y, 16, 16, 4);
    else if (c->lut == 4 && c->ci == 16 && c->co == 32)
        conv_lut_avx2_body(c, sums, x, y, 16, 32, 4);
    else if (c->lut == 4 && c->ci == 32 && c->co == 32)
        conv_lut_avx2_body(c, sums, x, y, 32, 32, 4);
    else if (c->lut == 4 && c->ci == 32 && c->co == 16)
        conv_lut_avx2_body(c, sums, x, y, 32, 16, 4);
    else if (c->lut == 2 && c->ci == 32 && c->co == 32)
        conv_lut_avx2_body(c, sums, x, y, 32, 32, 2);
    else if (c->lut == 2 && c->ci == 32 && c->co == 16)
        conv_lut_avx2_body(c, sums, x, y, 32, 16, 2);
    else
        return -1;
    return 0;
}

/* Binary layer with int16 lanes: each input bit masks its widened weight row (no branch on
 * the data); co = 16, 32 or 64; counts != NULL: count the output bits; maxs != NULL: keep
 * each channel's largest sum S'; y != NULL: store the bits. */
BAM_AVX2 static inline __attribute__((always_inline)) void conv_mask_avx2_body(
    const bam_conv *c, const uint8_t *x, uint8_t *y, uint32_t *counts, int32_t *maxs, const int ci,
    const int co)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = co / 8, NV = co / 16;
    int16_t t16[MAXC];
    for (int o = 0; o < co; o++)
        t16[o] = (int16_t)c->T[o];
    __m256i vmax[4];
    for (int v = 0; v < 4; v++)
        vmax[v] = _mm256_set1_epi16(INT16_MIN);
    for (int t = 0; t < c->H; t++)
        for (int k = 0; k < c->W; k++) {
            __m256i acc[4][2];
            for (int v = 0; v < NV; v++)
                acc[v][0] = acc[v][1] = _mm256_setzero_si256();
            for (int tap = 0; tap < 9; tap++) {
                int dt = tap / 3, dk = tap % 3;
                uint64_t m = load_bits(x + ((size_t)(t + dt) * Wp + k + dk) * nbi, nbi);
                const int8_t *w = c->w + (size_t)tap * ci * co;
#pragma GCC unroll 4
                for (int i = 0; i < ci; i++) {
                    __m256i on = _mm256_set1_epi16((short)-(int)(m >> i & 1));
                    const int8_t *r = w + (size_t)i * co;
                    for (int v = 0; v < NV; v++) {
                        __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r + 16 * v)));
                        acc[v][i & 1] = _mm256_add_epi16(acc[v][i & 1], _mm256_and_si256(wv, on));
                    }
                }
            }
            if (maxs)
                for (int v = 0; v < NV; v++)
                    vmax[v] = _mm256_max_epi16(vmax[v], _mm256_add_epi16(acc[v][0], acc[v][1]));
            if (!counts && !y)
                continue;
            uint64_t bits = 0;
            for (int v = 0; v < NV; v++) {
                __m256i a = _mm256_add_epi16(acc[v][0], acc[v][1]);
                __m256i T = _mm256_loadu_si256((const __m256i *)(t16 + 16 * v));
                bits |= (uint64_t)_pext_u32((unsigned)_mm256_movemask_epi8(_mm256_cmpgt_epi16(a, T)),
                                            0x55555555u) << (16 * v);
            }
            if (counts)
                for (int o = 0; o < co; o++)
                    counts[o] += (uint32_t)(bits >> o & 1);
            if (y)
                store_bits(y + ((size_t)(t + 1) * Wp + k + 1) * nbo, bits, nbo);
        }
    if (maxs)
        for (int v = 0; v < NV; v++) {
            int16_t m[16];
            _mm256_storeu_si256((__m256i *)m, vmax[v]);
            for (int o = 0; o < 16; o++)
                maxs[16 * v + o] = m[o];
        }
}

BAM_AVX2 static int conv_mask_avx2(const bam_conv *c, const uint8_t *x, uint8_t *y, uint32_t *counts,
                                   int32_t *maxs)
{
    if (!have_avx2() || !c->safe16)
        return -1;
    if (c->ci == 16 && c->co == 32)
        conv_mask_avx2_body(c, x, y, counts, maxs, 16, 32);
    else if (c->ci == 32 && c->co == 32)
        conv_mask_avx2_body(c, x, y, counts, maxs, 32, 32);
    else if (c->ci == 32 && c->co == 64)
        conv_mask_avx2_body(c, x, y, counts, maxs, 32, 64);
    else if (c->ci == 16 && c->co == 16)
        conv_mask_avx2_body(c, x, y, counts, maxs, 16, 16);
    else if (c->ci == 64 && c->co == 64)
        conv_mask_avx2_body(c, x, y, counts, maxs, 64, 64);
    else
        return -1;
    return 0;
}

/* ---- x86-64 AVX-512 (F, BW, VL, VNNI) kernels for the two layers whose input is not binary:
 * the STFT front end and conv 0 multiply int16 by int8, which VPDPWSSD does 32 pairs at a time
 * into exact int32 sums (the same sums as the C above, so the same bits). ---- */
#define BAM_AVX512 __attribute__((target("avx2,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")))

static int have_avx512(void)
{
    return simd_on >= 2 && have_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}

/* The 16 int32 lanes of each of a[0..7] summed -> s[0..7]. */
BAM_AVX512 static inline void hsum8_512(const __m512i a[8], int32_t s[8])
{
    __m256i h[8];
    for (int i = 0; i < 8; i++)
        h[i] = _mm256_add_epi32(_mm512_castsi512_si256(a[i]), _mm512_extracti64x4_epi64(a[i], 1));
    _mm_storeu_si128((__m128i *)s, hsum4(h[0], h[1], h[2], h[3]));
    _mm_storeu_si128((__m128i *)(s + 4), hsum4(h[4], h[5], h[6], h[7]));
}

/* Four frames at a time (t .. t + 3 span 800 samples): each kernel row is widened once for
 * all four; re and im of every frame are 10 VPDPWSSD each. */
BAM_AVX512 static int front_end_avx512(const snn_bam *n, const float *x, int8_t *q)
{
    if (!have_avx512())
        return -1;
    enum { NFR = 4, SPAN = FRAME + (NFR - 1) * FHOP };
    int16_t p[SPAN] __attribute__((aligned(64)));
    float P[NFR][NF + 7];
    const int Wp = NF + 2;
    for (int t = 0; t < NT; t += NFR) {
        to_pcm16(x + (size_t)t * FHOP, SPAN, p);
        for (int k = 0; k < NF; k++) {
            const int8_t *kr = n->kre + (size_t)k * FRAME, *ki = n->kim + (size_t)k * FRAME;
            /* named accumulators: GCC keeps an array of them in memory */
            __m512i a0 = _mm512_setzero_si512(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            for (int j = 0; j < FRAME; j += 32) {
                __m512i wr = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(kr + j)));
                __m512i wi = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(ki + j)));
                __m512i p0 = _mm512_load_si512((const void *)(p + j));
                __m512i p1 = _mm512_load_si512((const void *)(p + FHOP + j));
                __m512i p2 = _mm512_load_si512((const void *)(p + 2 * FHOP + j));
                __m512i p3 = _mm512_load_si512((const void *)(p + 3 * FHOP + j));
                a0 = _mm512_dpwssd_epi32(a0, p0, wr);
                b0 = _mm512_dpwssd_epi32(b0, p0, wi);
                a1 = _mm512_dpwssd_epi32(a1, p1, wr);
                b1 = _mm512_dpwssd_epi32(b1, p1, wi);
                a2 = _mm512_dpwssd_epi32(a2, p2, wr);
                b2 = _mm512_dpwssd_epi32(b2, p2, wi);
                a3 = _mm512_dpwssd_epi32(a3, p3, wr);
                b3 = _mm512_dpwssd_epi32(b3, p3, wi);
            }
            const __m512i acc[2 * NFR] = {a0, b0, a1, b1, a2, b2, a3, b3};
            int32_t S[2 * NFR];
            hsum8_512(acc, S);
            for (int f = 0; f < NFR; f++) {
                float re = (float)S[2 * f] * n->re_scale[k] / 32768.0f;
                float im = (float)S[2 * f + 1] * n->im_scale[k] / 32768.0f;
                P[f][k] = re * re + im * im;
            }
        }
        for (int f = 0; f < NFR; f++) {
            int8_t *row = q + (size_t)(t + f + 1) * Wp + 1;
            int k = 0;
            for (; k + 8 <= NF; k += 8)
                quant8_avx2(n, P[f] + k, row + k);
            for (; k < NF; k++)
                row[k] = quant_power(n, P[f][k]);
        }
    }
    return 0;
}

/* conv 0 with 16, 32, 64 or 128 outputs, one int32 lane each: the 9 taps as 5 int16 pairs, each pair
 * one VPDPWSSD per 16 outputs with its inputs broadcast. The pairs (input row r, column
 * offset): (r0 +0, r0 +1), (r1 +0, r1 +1), (r2 +0, r2 +1), (r0 +2, r1 +2), (r2 +2, none), read
 * as 32-bit words from per-row int16 copies: the three rows themselves, r0 and r1
 * interleaved, r2 widened. */
BAM_AVX512 static inline __attribute__((always_inline)) void conv_first_avx512_body(
    const bam_conv *c, const int8_t *q, uint8_t *y, const int co)
{
    const int Wp = c->W + 2, NV = co / 16;
    int16_t r16[3][NF + 2 + 2];
    int32_t r01[NF + 2], r2w[NF + 2];
    static const int pair[5][2] = {{0, 1}, {3, 4}, {6, 7}, {2, 5}, {8, -1}}; /* taps dt * 3 + dk */
    __m512i W[5][MAXC / 16], T[MAXC / 16];
    for (int v = 0; v < NV; v++) {
        for (int p = 0; p < 5; p++) {
            int32_t wv[16];
            for (int o = 0; o < 16; o++) {
                int a = c->w[(size_t)pair[p][0] * co + 16 * v + o];
                int b = pair[p][1] >= 0 ? c->w[(size_t)pair[p][1] * co + 16 * v + o] : 0;
                wv[o] = (int32_t)((uint32_t)(uint16_t)(int16_t)a | (uint32_t)(uint16_t)(int16_t)b << 16);
            }
            W[p][v] = _mm512_loadu_si512((const void *)wv);
        }
        T[v] = _mm512_loadu_si512((const void *)(c->T + 16 * v));
    }
    for (int t = 0; t < c->H; t++) {
        for (int r = 0; r < 3; r++) {
            const int8_t *src = q + (size_t)(t + r) * Wp;
            for (int k = 0; k < Wp; k++)
                r16[r][k] = src[k];
            r16[r][Wp] = 0;
        }
        for (int k = 0; k < Wp; k++) {
            r01[k] = (int32_t)((uint32_t)(uint16_t)r16[0][k] | (uint32_t)(uint16_t)r16[1][k] << 16);
            r2w[k] = (int32_t)(uint32_t)(uint16_t)r16[2][k];
        }
        for (int k = 0; k < c->W; k++) {
            int32_t b[5];
            memcpy(&b[0], &r16[0][k], 4);
            memcpy(&b[1], &r16[1][k], 4);
            memcpy(&b[2], &r16[2][k], 4);
            b[3] = r01[k + 2];
            b[4] = r2w[k + 2];
            uint8_t *dst = y + ((size_t)(t + 1) * Wp + k + 1) * (co / 8);
            for (int v = 0; v < NV; v++) {
                __m512i acc = _mm512_setzero_si512();
                for (int p = 0; p < 5; p++)
                    acc = _mm512_dpwssd_epi32(acc, _mm512_set1_epi32(b[p]), W[p][v]);
                uint16_t bits = (uint16_t)_mm512_cmpgt_epi32_mask(acc, T[v]);
                memcpy(dst + 2 * v, &bits, 2);
            }
        }
    }
}

BAM_AVX512 static int conv_first_avx512(const bam_conv *c, const int8_t *q, uint8_t *y)
{
    if (!have_avx512() || c->W + 2 > NF + 2)
        return -1;
    switch (c->co) {
    case 16: conv_first_avx512_body(c, q, y, 16); break;
    case 32: conv_first_avx512_body(c, q, y, 32); break;
    case 64: conv_first_avx512_body(c, q, y, 64); break;
    case 128: conv_first_avx512_body(c, q, y, 128); break;
    default: return -1;
    }
    return 0;
}

/* A group-sum layer with 16 or 32 inputs in groups of 4 bits and 16 outputs (32 outputs go
 * through conv_rows_avx512), 32 positions per vector: VPERMW looks up each position's nibble
 * in a tap's sums for one output channel (two groups per 32-entry table: the odd group's
 * nibbles index entries 16 .. 31), so nothing is decoded in scalar code; each output's
 * comparisons are then gathered into the positions' 16-bit output words. With 32 inputs, the positions' 32-bit words are split into their
 * low and high halves first (inputs 0-15 and 16-31, one 16-bit lane per position each).
 * tab[tap][group pair][output][32] (the sums of build_sums() in another order: the same bytes)
 * is built here from the weights. */
BAM_AVX512 static inline __attribute__((always_inline)) void conv_lut16_avx512_body(
    const bam_conv *c, const int16_t *tab, const uint8_t *x, uint8_t *y, const int ci)
{
    enum { co = 16 };
    const int Wp = c->W + 2, nbi = ci / 8, GP = ci / 8;
    const __m512i nib = _mm512_set1_epi16(15), hi = _mm512_set1_epi16(16);
    /* word 2 j (even) and 2 j + 1 (odd) of two vectors: the halves of 32 positions' inputs */
    const __m512i even = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                                          30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi16(even, _mm512_set1_epi16(1));
    for (int t = 0; t < c->H; t++)
        for (int k0 = 0; k0 < c->W; k0 += 32) {
            int nk = c->W - k0 < 32 ? c->W - k0 : 32;
            __mmask32 live = nk == 32 ? ~(__mmask32)0 : ((__mmask32)1 << nk) - 1;
            __mmask16 live0 = (__mmask16)(live & 0xffff), live1 = (__mmask16)(live >> 16);
            __m512i out = _mm512_setzero_si512();
            for (int o0 = 0; o0 < co; o0 += 8) { /* 8 outputs per pass: no register spills */
                __m512i acc[8];
#pragma GCC unroll 8
                for (int o = 0; o < 8; o++)
                    acc[o] = _mm512_setzero_si512();
                for (int tap = 0; tap < 9; tap++) {
                    const uint8_t *src = x + ((size_t)(t + tap / 3) * Wp + k0 + tap % 3) * nbi;
                    __m512i v[2], idx[8];
                    if (ci == 16) {
                        v[0] = _mm512_maskz_loadu_epi16(live, src);
                    } else {
                        __m512i a = _mm512_maskz_loadu_epi32(live0, src);
                        __m512i b = _mm512_maskz_loadu_epi32(live1, src + 64);
                        v[0] = _mm512_permutex2var_epi16(a, even, b);
                        v[1] = _mm512_permutex2var_epi16(a, odd, b);
                    }
#pragma GCC unroll 2
                    for (int h = 0; h < ci / 16; h++) {
                        idx[4 * h + 0] = _mm512_and_si512(v[h], nib);
                        idx[4 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v[h], 4), nib), hi);
                        idx[4 * h + 2] = _mm512_and_si512(_mm512_srli_epi16(v[h], 8), nib);
                        idx[4 * h + 3] = _mm512_or_si512(_mm512_srli_epi16(v[h], 12), hi);
                    }
                    const int16_t *tb = tab + ((size_t)tap * GP * co + o0) * 32;
#pragma GCC unroll 8
                    for (int o = 0; o < 8; o++) {
#pragma GCC unroll 4
                        for (int gp = 0; gp < GP; gp++) {
                            __m512i tv = _mm512_loadu_si512((const void *)(tb + ((size_t)gp * co + o) * 32));
                            __m512i s = _mm512_add_epi16(_mm512_permutexvar_epi16(idx[2 * gp], tv),
                                                         _mm512_permutexvar_epi16(idx[2 * gp + 1], tv));
                            acc[o] = _mm512_add_epi16(acc[o], s);
                        }
                    }
                }
#pragma GCC unroll 8
                for (int o = 0; o < 8; o++)
                    out = _mm512_mask_add_epi16(out, _mm512_cmpgt_epi16_mask(acc[o], _mm512_set1_epi16((short)c->T[o0 + o])),
                                                out, _mm512_set1_epi16((short)(1 << (o0 + o))));
            }
            _mm512_mask_storeu_epi16(y + ((size_t)(t + 1) * Wp + k0 + 1) * 2, live, out);
        }
}

/* A group-sum layer with 16 or 32 inputs in groups of 4 bits and a multiple of 32 outputs, in
 * passes of 32 outputs, one position at a time with the pass's 32 int16 sums in one vector (the
 * nine taps' tables, 9 * ci * 256 bytes, fit the L1 and L2 caches): per tap and group, one
 * aligned vector add of the 64-byte row of build_sums() that the group's nibble selects (its
 * byte offset is the nibble shifted and masked out of the input word); four independent add
 * chains. When the layer is not int16-safe (sum32 = 1), a tap's sum (at most 32 * 127 in
 * magnitude) is widened to int32 before the taps are added. tab: 64-byte aligned, rows_size()
 * bytes. */
BAM_AVX512 static inline __attribute__((always_inline)) void conv_rows_avx512_body(
    const bam_conv *c, int16_t *tab, const uint8_t *x, uint8_t *y, const int ci, const int sum32)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = c->co / 8, G = ci / 4;
    const size_t row = 32 * sizeof(int16_t), tapb = (size_t)G * 16 * row;
    const char *S = (const char *)tab;
    for (int o0 = 0; o0 < c->co; o0 += 32) {
        build_sums(c, 4, o0, 32, tab);
        int16_t t16[32];
        for (int o = 0; o < 32; o++) /* int16-safe layers: T was clamped to int16 at load */
            t16[o] = (int16_t)c->T[o0 + o];
        const __m512i T = _mm512_loadu_si512((const void *)t16);
        const __m512i TL = _mm512_loadu_si512((const void *)(c->T + o0));
        const __m512i TH = _mm512_loadu_si512((const void *)(c->T + o0 + 16));
        for (int t = 0; t < c->H; t++) {
            const uint8_t *r0 = x + (size_t)t * Wp * nbi;
            uint8_t *dst = y + ((size_t)(t + 1) * Wp + 1) * nbo + o0 / 8;
            for (int k = 0; k < c->W; k++) {
                __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, lo = a0, hi = a0;
#pragma GCC unroll 9
                for (int tap = 0; tap < 9; tap++) {
                    uint32_t w32 = 0;
                    memcpy(&w32, r0 + ((size_t)(tap / 3) * Wp + k + tap % 3) * nbi, (size_t)nbi);
                    const uint64_t m6 = (uint64_t)w32 << 6;
                    const char *s = S + tap * tapb;
#pragma GCC unroll 8
                    for (int g = 0; g < G; g++) {
                        __m512i v =
                            _mm512_load_si512((const void *)(s + (size_t)g * 16 * row + (m6 >> (4 * g) & 0x3c0)));
                        switch (g & 3) {
                        case 0: a0 = _mm512_add_epi16(a0, v); break;
                        case 1: a1 = _mm512_add_epi16(a1, v); break;
                        case 2: a2 = _mm512_add_epi16(a2, v); break;
                        default: a3 = _mm512_add_epi16(a3, v); break;
                        }
                    }
                    if (sum32) {
                        __m512i a = _mm512_add_epi16(_mm512_add_epi16(a0, a1), _mm512_add_epi16(a2, a3));
                        lo = _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(a)));
                        hi = _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a, 1)));
                        a0 = a1 = a2 = a3 = _mm512_setzero_si512();
                    }
                }
                uint32_t bits;
                if (sum32) {
                    bits = (uint32_t)_mm512_cmpgt_epi32_mask(lo, TL) |
                           (uint32_t)_mm512_cmpgt_epi32_mask(hi, TH) << 16;
                } else {
                    __m512i a = _mm512_add_epi16(_mm512_add_epi16(a0, a1), _mm512_add_epi16(a2, a3));
                    bits = (uint32_t)_mm512_cmpgt_epi16_mask(a, T);
                }
                memcpy(dst + (size_t)k * nbo, &bits, 4);
            }
        }
    }
}

/* A group-sum layer with 64 or 128 inputs in groups of 4 bits and a multiple of 32
 * outputs, in passes of 32 outputs, one output row at a time and one tap at a time over the row,
 * so that the tap's tables (ci / 4 groups of 16 64-byte rows of build_sums(): 32 KiB for 128
 * inputs) stay in the L1 cache across the row (position by position, the nine taps' 288 KiB
 * would be read from L2). Per position and tap, one aligned vector add per group of the row its
 * nibble selects (the byte offset: the nibble shifted and masked out of the input bits, 32 at a
 * time), four independent add chains; the tap's int16 sum (at most 128 * 127 in magnitude) is
 * added to the position's int32 sums in acc, compared with the thresholds after the ninth tap.
 * work: 64-byte aligned, rows_size() bytes. */
BAM_AVX512 static inline __attribute__((always_inline)) void conv_rows_bytap_avx512_body(
    const bam_conv *c, void *work, const uint8_t *x, uint8_t *y, const int ci)
{
    const int Wp = c->W + 2, nbi = ci / 8, nbo = c->co / 8, G = ci / 4;
    const size_t row = 32 * sizeof(int16_t), tapb = (size_t)G * 16 * row;
    int16_t *tab = work;
    __m512i *acc = (__m512i *)((char *)work + 9 * tapb); /* [W][2]: outputs 0-15, 16-31 */
    const char *S = (const char *)tab;
    for (int o0 = 0; o0 < c->co; o0 += 32) {
        build_sums(c, 4, o0, 32, tab);
        const __m512i TL = _mm512_loadu_si512((const void *)(c->T + o0));
        const __m512i TH = _mm512_loadu_si512((const void *)(c->T + o0 + 16));
        for (int t = 0; t < c->H; t++) {
#pragma GCC unroll 1
            for (int tap = 0; tap < 9; tap++) {
                const uint8_t *r0 = x + ((size_t)(t + tap / 3) * Wp + tap % 3) * nbi;
                const char *s = S + tap * tapb;
                for (int k = 0; k < c->W; k++) {
                    const uint8_t *xp = r0 + (size_t)k * nbi;
                    uint64_t m6[4]; /* 32 input bits each, shifted to byte offsets of 64-byte rows */
#pragma GCC unroll 4
                    for (int h = 0; h < ci / 32; h++) {
                        uint32_t w32;
                        memcpy(&w32, xp + 4 * h, 4);
                        m6[h] = (uint64_t)w32 << 6;
                    }
                    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
#pragma GCC unroll 32
                    for (int g = 0; g < G; g++) {
                        __m512i v = _mm512_load_si512((const void *)(s + (size_t)g * 16 * row +
                                                                     (m6[g / 8] >> (4 * (g % 8)) & 0x3c0)));
                        switch (g & 3) {
                        case 0: a0 = _mm512_add_epi16(a0, v); break;
                        case 1: a1 = _mm512_add_epi16(a1, v); break;
                        case 2: a2 = _mm512_add_epi16(a2, v); break;
                        default: a3 = _mm512_add_epi16(a3, v); break;
                        }
                    }
                    __m512i a = _mm512_add_epi16(_mm512_add_epi16(a0, a1), _mm512_add_epi16(a2, a3));
                    __m512i lo = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(a));
                    __m512i hi = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a, 1));
                    if (tap) {
                        lo = _mm512_add_epi32(lo, _mm512_load_si512((const void *)&acc[2 * k]));
                        hi = _mm512_add_epi32(hi, _mm512_load_si512((const void *)&acc[2 * k + 1]));
                    }
                    _mm512_store_si512((void *)&acc[2 * k], lo);
                    _mm512_store_si512((void *)&acc[2 * k + 1], hi);
                }
            }
            uint8_t *dst = y + ((size_t)(t + 1) * Wp + 1) * nbo + o0 / 8;
            for (int k = 0; k < c->W; k++) {
                uint32_t bits = (uint32_t)_mm512_cmpgt_epi32_mask(acc[2 * k], TL) |
                                (uint32_t)_mm512_cmpgt_epi32_mask(acc[2 * k + 1], TH) << 16;
                memcpy(dst + (size_t)k * nbo, &bits, 4);
            }
        }
    }
}

/* Runs conv_rows_avx512_body() or, for 64 or 128 inputs, conv_rows_bytap_avx512_body() where one
 * applies (a binary layer with 16, 32, 64 or 128 inputs and 32, 64, 96 or 128 outputs); work
 * as there. */
BAM_AVX512 static int conv_rows_avx512(const bam_conv *c, void *work, const uint8_t *x, uint8_t *y)
{
    if (!have_avx512() || !rows_size(c->ci, c->co, c->W))
        return -1;
    const int sum32 = !c->safe16;
    switch (c->ci * 2 + sum32) {
    case 32: conv_rows_avx512_body(c, work, x, y, 16, 0); break;
    case 33: conv_rows_avx512_body(c, work, x, y, 16, 1); break;
    case 64: conv_rows_avx512_body(c, work, x, y, 32, 0); break;
    case 65: conv_rows_avx512_body(c, work, x, y, 32, 1); break;
    case 128: case 129: conv_rows_bytap_avx512_body(c, work, x, y, 64); break;
    default: conv_rows_bytap_avx512_body(c, work, x, y, 128); break;
    }
    return 0;
}

BAM_AVX512 static int conv_lut16_avx512(const bam_conv *c, int16_t *tab, const uint8_t *x, uint8_t *y)
{
    if (!have_avx512() || c->lut != 4 || (c->ci != 16 && c->ci != 32) || c->co != 16)
        return -1;
    const int ci = c->ci, co = 16, GP = ci / 8;
    for (int tap = 0; tap < 9; tap++)
        for (int gp = 0; gp < GP; gp++)
            for (int o = 0; o < co; o++)
                for (int e = 0; e < 32; e++) {
                    int g = 2 * gp + (e >> 4), pat = e & 15, sum = 0;
                    for (int j = 0; j < 4; j++)
                        if (pat >> j & 1)
                            sum += c->w[((size_t)tap * ci + 4 * g + j) * co + o];
                    tab[(((size_t)tap * GP + gp) * co + o) * 32 + e] = (int16_t)sum;
                }
    if (ci == 16)
        conv_lut16_avx512_body(c, tab, x, y, 16);
    else
        conv_lut16_avx512_body(c, tab, x, y, 32);
    return 0;
}

#else /* no AVX2 kernels: the portable ones run */
void snn_bam_set_simd(int on) { (void)on; }
static int front_end_avx2(const snn_bam *n, const float *x, int8_t *q) { (void)n, (void)x, (void)q; return -1; }
static int conv_first_avx2(const bam_conv *c, const int8_t *q, uint8_t *y) { (void)c, (void)q, (void)y; return -1; }
static int front_end_avx512(const snn_bam *n, const float *x, int8_t *q) { (void)n, (void)x, (void)q; return -1; }
static int conv_first_avx512(const bam_conv *c, const int8_t *q, uint8_t *y) { (void)c, (void)q, (void)y; return -1; }
static int conv_lut16_avx512(const bam_conv *c, int16_t *tab, const uint8_t *x, uint8_t *y)
{
    (void)c, (void)tab, (void)x, (void)y;
    return -1;
}
static int conv_lut_avx2(const bam_conv *c, const int16_t *sums, const uint8_t *x, uint8_t *y)
{
    (void)c, (void)sums, (void)x, (void)y;
    return -1;
}
static int conv_rows_avx512(const bam_conv *c, void *work, const uint8_t *x, uint8_t *y)
{
    (void)c, (void)work, (void)x, (void)y;
    return -1;
}
static int conv_mask_avx2(const bam_conv *c, const uint8_t *x, uint8_t *y, uint32_t *counts, int32_t *maxs)
{
    (void)c, (void)x, (void)y, (void)counts, (void)maxs;
    return -1;
}
#endif

/* 2x2 OR pooling of an H x W map (padded) into an H/2 x W/2 map (padded, border zeroed). */
static void pool_or(const uint8_t *x, int H, int W, int nb, uint8_t *y)
{
    const int Wp = W + 2, H2 = H / 2, W2 = W / 2, Wp2 = W2 + 2;
    memset(y, 0, padded(H2, W2, nb * 8));
    for (int t = 0; t < H2; t++)
        for (int k = 0; k < W2; k++) {
            const uint8_t *r0 = x + ((size_t)(2 * t + 1) * Wp + 2 * k + 1) * nb;
            const uint8_t *r1 = r0 + (size_t)Wp * nb;
            for (int j = 0; j < nb; j += 8) { /* 64 channels per word */
                const int n8 = nb - j < 8 ? nb - j : 8;
                uint64_t v = load_bits(r0 + j, n8) | load_bits(r0 + nb + j, n8) | load_bits(r1 + j, n8) |
                             load_bits(r1 + nb + j, n8);
                store_bits(y + ((size_t)(t + 1) * Wp2 + k + 1) * nb + j, v, n8);
            }
        }
}

void snn_bam_run(const snn_bam *n, const float *x, float raw[3], void *work)
{
    int8_t *q = work;
    uint8_t *A = (uint8_t *)work + n->feat_bytes, *B = A + n->map_bytes;
    /* the sums' rows are 64-byte vectors: aligned, no load spans two cache lines */
    int16_t *sums = (int16_t *)(((uintptr_t)(B + n->map_bytes) + 63) & ~(uintptr_t)63);
    memset(q, 0, padded(NT, NF, 8));
    /* each *_avx512 / *_avx2 kernel returns -1 where it does not apply (CPU, widths): then the
     * next narrower one, down to the portable C */
    if (front_end_avx512(n, x, q) && front_end_avx2(n, x, q))
        front_end(n, x, q);
    memset(A, 0, padded(NT, NF, n->conv[0].co));
    if (conv_first_avx512(&n->conv[0], q, A) && conv_first_avx2(&n->conv[0], q, A))
        conv_first(&n->conv[0], q, A);
    uint32_t counts[MAXC] = {0};
    int32_t maxs[MAXC];
    for (int o = 0; o < MAXC; o++)
        maxs[o] = INT32_MIN;
    int32_t *mx = n->readout != RO_RATE ? maxs : NULL;
    uint32_t *cnt = n->readout != RO_MAX ? counts : NULL;
    for (int l = 1; l < SNN_BAM_NCONV; l++) {
        const bam_conv *c = &n->conv[l];
        if (l == SNN_BAM_NCONV - 1) {
            if (conv_mask_avx2(c, A, NULL, cnt, mx))
                conv_bits(c, A, NULL, cnt, mx);
            break;
        }
        memset(B, 0, padded(c->H, c->W, c->co));
        /* AVX-512: 16 outputs by VPERMW, multiples of 32 by the rows kernels; else 64 or 128
         * inputs by the portable rows kernel, each building its tables in the sums' place; else
         * the layer's sums and the widest kernel that applies */
        if (conv_lut16_avx512(c, sums, A, B) && conv_rows_avx512(c, sums, A, B) && conv_rows(c, sums, A, B)) {
            if (c->lut) {
                build_sums(c, c->lut, 0, c->co, sums);
                if (conv_lut_avx2(c, sums, A, B))
                    conv_lut(c, sums, A, B);
            } else if (conv_mask_avx2(c, A, B, NULL, NULL)) {
                conv_bits(c, A, B, NULL, NULL);
            }
        }
        if (c->pool) {
            pool_or(B, c->H, c->W, c->co / 8, A);
        } else {
            uint8_t *t = A;
            A = B;
            B = t;
        }
    }
    const bam_conv *last = &n->conv[SNN_BAM_NCONV - 1];
    float h[2][MAXH > MAXC ? MAXH : MAXC];
    float positions = (float)(last->H * last->W);
    const int off = n->readout == RO_RATE_MAX ? last->co : 0; /* rate+max: the rates first */
    for (int c = 0; c < last->co; c++) {
        if (cnt)
            h[0][c] = (float)counts[c] / positions;
        if (mx)
            h[0][off + c] = fmaxf((float)maxs[c] * n->ro_scale[c] + n->ro_bias[c], n->ro_floor[c]);
    }
    int cur = 0;
    for (int j = 0; j < NFC; j++) {
        const bam_fc *f = &n->fc[j];
        for (int o = 0; o < f->out; o++) {
            float s = 0;
            for (int i = 0; i < f->in; i++)
                s += (float)f->w[(size_t)o * f->in + i] * h[cur][i];
            s = s * f->scale[o] + f->b[o];
            h[!cur][o] = (j < NFC - 1 && s < 0) ? 0 : s;
        }
        cur = !cur;
    }
    for (int j = 0; j < 3; j++)
        raw[j] = h[cur][j] * n->out_std[j] + n->out_mean[j];
}

void snn_bam_memory_of(const snn_bam *n, snn_bam_memory *m)
{
    memset(m, 0, sizeof *m);
    m->params = n->params;
    /* weights: int8 tensors as 1 byte, float per-channel constants as 4 */
    size_t w8 = 2 * (size_t)NF * FRAME, f32 = 2 * NF;
    uint64_t macs = 2 * (uint64_t)NT * NF * FRAME;
    for (int l = 0; l < SNN_BAM_NCONV; l++) {
        const bam_conv *c = &n->conv[l];
        w8 += (size_t)c->ci * c->co * 9;
        f32 += (size_t)c->co;                    /* thresholds (dir: 1 byte) */
        w8 += (size_t)c->co;
        macs += (uint64_t)c->H * c->W * c->ci * c->co * 9;
    }
    for (int j = 0; j < NFC; j++) {
        w8 += (size_t)n->fc[j].in * n->fc[j].out;
        f32 += 2 * (size_t)n->fc[j].out;
        macs += (uint64_t)n->fc[j].in * n->fc[j].out;
    }
    f32 += 6;
    if (n->readout != RO_RATE)
        f32 += (size_t)(2 + n->has_floor) * n->conv[SNN_BAM_NCONV - 1].co; /* readout.scale, .bias, .floor */
    m->weights = w8 + 4 * f32;
    m->f32_weights = 4 * (size_t)n->params;
    m->f32_macs = macs;
    /* stages: front end (16-bit PCM in, features out), then each conv (input and output maps) */
    size_t in_pcm = (size_t)NT * FHOP + FHOP;
    size_t peak = in_pcm * 2 + (size_t)NT * NF, fpeak = in_pcm * 4 + (size_t)NT * NF * 4;
    size_t in_bits = (size_t)NT * NF * 8, in_f = (size_t)NT * NF * 4; /* features: int8 / float */
    for (int l = 0; l < SNN_BAM_NCONV; l++) {
        const bam_conv *c = &n->conv[l];
        size_t out_bits = (size_t)c->H * c->W * c->co, out_f = (size_t)c->H * c->W * c->co * 4;
        if (l == SNN_BAM_NCONV - 1) {
            out_bits = (size_t)c->co * 32; /* counts */
            out_f = (size_t)c->co * 4;
        }
        if ((in_bits + out_bits + 7) / 8 > peak)
            peak = (in_bits + out_bits + 7) / 8;
        if (in_f + out_f > fpeak)
            fpeak = in_f + out_f;
        in_bits = out_bits;
        in_f = out_f;
        if (c->pool) {
            in_bits = (size_t)(c->H / 2) * (c->W / 2) * c->co;
            in_f = in_bits * 4;
        }
    }
    m->derived = n->lut_bytes;
    m->peak_act = peak;
    m->f32_peak_act = fpeak;
}
