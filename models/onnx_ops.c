/*
 * onnx_ops.c -- float32 kernels for the ONNX operators (equations in onnx_ops.h).
 */
#include "onnx_ops.h"

#include "amx.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* Hot loops written with vector extensions are compiled for several x86-64 levels and picked at
 * load time by the CPU (GCC/Clang function multi-versioning; elsewhere the plain build). */
#if defined(__x86_64__) && defined(__has_attribute)
/* Not with clang: clang 14 names the dispatcher "f.ifunc" instead of "f", so callers of a
 * multi-versioned function do not link (the fuzz build, tests/fuzz, uses clang). */
#if __has_attribute(target_clones) && defined(__ELF__) && !defined(__clang__)
#define SNN_MULTIVERSION \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef SNN_MULTIVERSION
#define SNN_MULTIVERSION
#endif

/* Eight floats: GCC/Clang vector extensions, compiled to whatever SIMD the target has. */
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* v = 8 floats from p (unaligned) */
#define LD8(v, p) memcpy(&(v), (p), sizeof(v8))

/* dst[0 .. n) = the first n (0 .. 8) lanes of v: unrolled stores, where a memcpy of a
 * variable size would be a libc call in the innermost loops. */
static inline void store_part(float *dst, const v8 *v, int64_t n)
{
    /* v by address: a v8 argument would change the ABI where AVX is off (-Wpsabi) */
    switch (n) {
    case 8: dst[7] = (*v)[7]; /* fall through */
    case 7: dst[6] = (*v)[6]; /* fall through */
    case 6: dst[5] = (*v)[5]; /* fall through */
    case 5: dst[4] = (*v)[4]; /* fall through */
    case 4: dst[3] = (*v)[3]; /* fall through */
    case 3: dst[2] = (*v)[2]; /* fall through */
    case 2: dst[1] = (*v)[1]; /* fall through */
    case 1: dst[0] = (*v)[0]; /* fall through */
    default: break;
    }
}

/* Output positions processed per im2col block: bounds the scratch buffer
 * (K x block floats) while keeping sgemm's N dimension large. */
#define CONV_BLOCK 2048

static int64_t xstride(const snn_conv2d *c) { return c->xcs ? c->xcs : c->H * c->W; }
static int64_t ystride(const snn_conv2d *c) { return c->ycs ? c->ycs : c->OH * c->OW; }

int snn_conv2d_init(snn_conv2d *c)
{
    if (c->C <= 0 || c->H <= 0 || c->W <= 0 || c->Co <= 0 || c->KH <= 0 ||
        c->KW <= 0 || c->sh <= 0 || c->sw <= 0 || c->dh <= 0 || c->dw <= 0 ||
        c->pt < 0 || c->pl < 0 || c->pb < 0 || c->pr < 0)
        return -1;
    int64_t eh = c->H + c->pt + c->pb - c->dh * (c->KH - 1) - 1;
    int64_t ew = c->W + c->pl + c->pr - c->dw * (c->KW - 1) - 1;
    if (eh < 0 || ew < 0)
        return -1;
    c->OH = eh / c->sh + 1;
    c->OW = ew / c->sw + 1;
    return 0;
}

static int conv_is_pointwise(const snn_conv2d *c)
{
    return xstride(c) == c->H * c->W && c->KH == 1 && c->KW == 1 && c->sh == 1 && c->sw == 1 &&
           c->pt == 0 &&
           c->pl == 0 && c->pb == 0 && c->pr == 0;
}

/* A 3x3 stride-1 convolution of one input channel runs directly (direct_1ch) on a zero-padded
 * copy of the image: [H + pt + pb][DW] floats, rows wide enough for 16-float loads past the end. */
static int conv_is_direct(const snn_conv2d *c)
{
    return c->C == 1 && c->KH == 3 && c->KW == 3 && c->sh == 1 && c->sw == 1 && c->dh == 1 &&
           c->dw == 1;
}
#define DIRECT_W(c) (((c)->OW + 15) / 16 * 16 + 16)

size_t snn_conv2d_scratch(const snn_conv2d *c)
{
    if (conv_is_pointwise(c))
        return 0;
    if (conv_is_direct(c))
        return (size_t)((c->H + c->pt + c->pb) * DIRECT_W(c));
    int64_t P = c->OH * c->OW;
    int64_t blk = P < CONV_BLOCK ? P : CONV_BLOCK;
    return (size_t)(c->C * c->KH * c->KW * blk);
}

/* Fills col[K][n] with the input under each tap for output positions
 * p0 .. p0+n-1 (row-major over OH x OW). */
static void im2col_block(const snn_conv2d *c, const float *x, int64_t p0, int64_t n,
                         float *col)
{
    int64_t k = 0;
    for (int64_t ci = 0; ci < c->C; ci++) {
        const float *xc = x + ci * xstride(c);
        for (int64_t ky = 0; ky < c->KH; ky++) {
            for (int64_t kx = 0; kx < c->KW; kx++, k++) {
                float *dst = col + k * n;
                int64_t p = p0, end = p0 + n;
                while (p < end) {
                    int64_t oy = p / c->OW, ox = p % c->OW;
                    int64_t run = c->OW - ox; /* rest of this output row */
                    if (run > end - p)
                        run = end - p;
                    int64_t iy = oy * c->sh - c->pt + ky * c->dh;
                    float *d = dst + (p - p0);
                    if (iy < 0 || iy >= c->H) {
                        memset(d, 0, (size_t)run * sizeof *d);
                    } else {
                        const float *row = xc + iy * c->W;
                        int64_t ix0 = ox * c->sw - c->pl + kx * c->dw;
                        if (c->sw == 1) {
                            /* contiguous: zeros, a copy, zeros */
                            int64_t a = ix0 < 0 ? -ix0 : 0;
                            if (a > run)
                                a = run;
                            int64_t b = c->W - ix0; /* first j with ix >= W */
                            if (b > run)
                                b = run;
                            if (b < a)
                                b = a;
                            memset(d, 0, (size_t)a * sizeof *d);
                            if (b > a)
                                memcpy(d + a, row + ix0 + a, (size_t)(b - a) * sizeof *d);
                            memset(d + b, 0, (size_t)(run - b) * sizeof *d);
                        } else {
                            for (int64_t j = 0; j < run; j++) {
                                int64_t ix = ix0 + j * c->sw;
                                d[j] = (ix >= 0 && ix < c->W) ? row[ix] : 0.0f;
                            }
                        }
                    }
                    p += run;
                }
            }
        }
    }
}

static void relu_rows(float *y, int64_t rows, int64_t n, int64_t stride)
{
    for (int64_t r = 0; r < rows; r++) {
        float *p = y + r * stride;
        for (int64_t i = 0; i < n; i++)
            p[i] = p[i] > 0.0f ? p[i] : 0.0f;
    }
}

/* Sixteen floats, for kernels whose clones use one 512-bit register where the CPU has AVX-512
 * (two 256-bit or four 128-bit ones elsewhere: the same operations per lane). */
typedef float vf16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));

/* y[co][oy][ox] = b[co] + sum_{ky,kx} w[co][ky][kx] xp[oy + ky][ox + kx] for the padded copy xp
 * of a 1-channel image, sixteen outputs at a time: the nine shifted input vectors are loaded
 * once and serve every output channel (written once: no im2col, no second pass). */
SNN_MULTIVERSION
static void direct_1ch(const snn_conv2d *c, const float *x, const float *w, const float *b,
                       int relu, float *y, float *xp)
{
    const int64_t DW = DIRECT_W(c), HP = c->H + c->pt + c->pb, OW = c->OW, ys = ystride(c);
    memset(xp, 0, (size_t)(HP * DW) * sizeof *xp);
    for (int64_t iy = 0; iy < c->H; iy++)
        memcpy(xp + (iy + c->pt) * DW + c->pl, x + iy * c->W, (size_t)c->W * sizeof *x);
    for (int64_t oy = 0; oy < c->OH; oy++) {
        const float *r[3] = {xp + oy * DW, xp + (oy + 1) * DW, xp + (oy + 2) * DW};
        for (int64_t ox = 0; ox < OW; ox += 16) {
            vf16 t[9];
            for (int kk = 0; kk < 9; kk++)
                memcpy(&t[kk], r[kk / 3] + ox + kk % 3, sizeof t[kk]);
            int64_t n = OW - ox < 16 ? OW - ox : 16;
            for (int64_t co = 0; co < c->Co; co++) {
                const float *k = w + co * 9;
                vf16 acc = (vf16){0} + (b ? b[co] : 0.0f);
                for (int kk = 0; kk < 9; kk++)
                    acc += k[kk] * t[kk];
                if (relu)
                    acc = (vf16)((vi16)acc & (acc > (vf16){0}));
                float *yr = y + co * ys + oy * OW + ox;
                if (n == 16)
                    memcpy(yr, &acc, sizeof acc);
                else
                    for (int64_t i = 0; i < n; i++)
                        yr[i] = acc[i];
            }
        }
    }
}

void snn_conv2d_run(const snn_conv2d *c, const float *x, const float *w,
                    const float *b, int relu, float *y, float *scratch)
{
    if (conv_is_direct(c)) {
        direct_1ch(c, x, w, b, relu, y, scratch);
        return;
    }
    int64_t P = c->OH * c->OW, ys = ystride(c);
    int64_t K = c->C * c->KH * c->KW;
    for (int64_t co = 0; co < c->Co; co++) {
        float v = b ? b[co] : 0.0f;
        float *yc = y + co * ys;
        for (int64_t p = 0; p < P; p++)
            yc[p] = v;
    }
    if (conv_is_pointwise(c)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->Co, (int)P,
                    (int)K, 1.0f, w, (int)K, x, (int)P, 1.0f, y, (int)ys);
        if (relu)
            relu_rows(y, c->Co, P, ys);
        return;
    }
    for (int64_t p0 = 0; p0 < P; p0 += CONV_BLOCK) {
        int64_t n = P - p0 < CONV_BLOCK ? P - p0 : CONV_BLOCK;
        im2col_block(c, x, p0, n, scratch);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->Co, (int)n,
                    (int)K, 1.0f, w, (int)K, scratch, (int)n, 1.0f, y + p0, (int)ys);
        if (relu) /* while the block is in cache */
            relu_rows(y + p0, c->Co, n, ys);
    }
}

/* ---- Winograd F(4x4, 3x3) ---------------------------------------------- */

#define WM 4 /* output tile */
#define WA 6 /* input tile = WM + 3 - 1 */
#define WT (WA * WA)

/* B^T =  4  0 -5  0  1  0      A^T = 1  1  1  1  1  0
 *        0 -4 -4  1  1  0            0  1 -1  2 -2  0
 *        0  4 -4 -1  1  0            0  1  1  4  4  0
 *        0 -2 -1  2  1  0            0  1 -1  8 -8  1
 *        0  2 -1 -2  1  0
 *        0  4  0 -5  0  1   (applied by bt6() and at6() below; G is GM) */
static const double GM[WA][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};
/* Tile rows per block: V and M (36 (C + Co) floats per tile) of up to 4 MB stay in cache
 * between the transforms and the sgemm, and each of the 36 sgemms (Co x C times C x tiles)
 * keeps Co C tiles <= 10^6 multiply-adds, the bound under which OpenBLAS 0.3.21's SkylakeX
 * target uses its small-matrix kernel (no packing; sgemm_small_kernel_permit_skylakex.c).
 * Measured on Zen 5 (1 MB L2), P.835 windows, paired: 4 MB 7 % faster than 2 MB, 8 MB 8 %
 * slower; with the 10^6 bound, chunked windows (dnsmos.c) 110.5 instead of 123.5 ms (the
 * 128 -> 64 Conv's 164-tile blocks had gone through the packing kernel); bounds of 5e5 or 2e6
 * 7-9 % slower than 10^6. */
static int64_t wino_rows(const snn_conv2d *c)
{
    int64_t TW = (c->OW + WM - 1) / WM, TH = (c->OH + WM - 1) / WM;
    int64_t r = (int64_t)(1 << 20) / (WT * (c->C + c->Co) * TW);
    int64_t cap = (int64_t)1000000 / (c->Co * c->C * TW);
    if (cap >= 1 && r > cap)
        r = cap;
    if (r < 1)
        r = 1;
    return r < TH ? r : TH;
}

/* Row buffers of the input transform: 6 padded input rows and 6 transformed rows of
 * RW floats, and 6 x 4 phase rows of PW floats (sizes rounded up for 64-column passes and
 * 8- or 16-wide loads). */
#define WINO_RW(TW) ((4 * (TW) + 2 + 63) / 64 * 64 + 16)
#define WINO_PW(TW) ((TW) + 16)

int snn_winograd_ok(const snn_conv2d *c)
{
    return c->KH == 3 && c->KW == 3 && c->sh == 1 && c->sw == 1 && c->dh == 1 && c->dw == 1;
}

/* Where the process can use AMX (amx.h), u[36][Co][C] is followed by the weights packed for
 * snn_amx_conv3x3 (two bf16 per float) from the next 64-byte boundary on, and the scratch is
 * large enough for it too. */
size_t snn_winograd_weights_size(const snn_conv2d *c)
{
    size_t n = (size_t)(WT * c->Co * c->C);
    return snn_amx_ok() ? n + 16 + (snn_amx_conv_weights_size(c->Co, c->C) + 1) / 2 : n;
}

/* Where snn_winograd_weights put the packed weights in u. */
static const uint16_t *amx_weights(const snn_conv2d *c, const float *u)
{
    uintptr_t p = (uintptr_t)(u + WT * c->Co * c->C);
    return (const uint16_t *)((p + 63) & ~(uintptr_t)63);
}

size_t snn_winograd_scratch(const snn_conv2d *c)
{
    int64_t TW = (c->OW + WM - 1) / WM;
    size_t n = (size_t)(WT * (c->C + c->Co) * wino_rows(c) * TW + 12 * WINO_RW(TW) +
                        24 * WINO_PW(TW));
    size_t a = snn_amx_ok() ? (snn_amx_conv_scratch(c->C, c->OW) + 1) / 2 : 0;
    return a > n ? a : n;
}

void snn_winograd_weights(const snn_conv2d *c, const float *w, float *u)
{
    int64_t CC = c->Co * c->C;
    for (int64_t k = 0; k < CC; k++) {
        const float *g = w + k * 9;
        double t[WA][3]; /* G g */
        for (int i = 0; i < WA; i++)
            for (int j = 0; j < 3; j++)
                t[i][j] = GM[i][0] * g[j] + GM[i][1] * g[3 + j] + GM[i][2] * g[6 + j];
        for (int i = 0; i < WA; i++)
            for (int j = 0; j < WA; j++)
                u[(i * WA + j) * CC + k] =
                    (float)(t[i][0] * GM[j][0] + t[i][1] * GM[j][1] + t[i][2] * GM[j][2]);
    }
    if (snn_amx_ok())
        snn_amx_conv_weights(w, c->Co, c->C, (uint16_t *)amx_weights(c, u));
}

/* The transforms are B^T d B and A^T m A written out for these matrices' zeros, for vectors
 * of 8 or 16 tiles (the macros serve both widths). */

/* r = B^T column: r[i] = sum_k BT[i][k] d[k] */
#define BT6(d, r)                                                                                  \
    do {                                                                                           \
        (r)[0] = 4 * (d)[0] - 5 * (d)[2] + (d)[4];                                                 \
        (r)[1] = -4 * (d)[1] - 4 * (d)[2] + (d)[3] + (d)[4];                                       \
        (r)[2] = 4 * (d)[1] - 4 * (d)[2] - (d)[3] + (d)[4];                                        \
        (r)[3] = -2 * (d)[1] - (d)[2] + 2 * (d)[3] + (d)[4];                                       \
        (r)[4] = 2 * (d)[1] - (d)[2] - 2 * (d)[3] + (d)[4];                                        \
        (r)[5] = 4 * (d)[1] - 5 * (d)[3] + (d)[5];                                                 \
    } while (0)

/* o[i] = sum_k AT[i][k] m[k] */
#define AT6(m, o)                                                                                  \
    do {                                                                                           \
        __typeof__((m)[0]) a_ = (m)[1] + (m)[2], b_ = (m)[1] - (m)[2], c_ = (m)[3] + (m)[4],       \
                           d_ = (m)[3] - (m)[4];                                                   \
        (o)[0] = (m)[0] + a_ + c_;                                                                 \
        (o)[1] = b_ + 2 * d_;                                                                      \
        (o)[2] = a_ + 4 * c_;                                                                      \
        (o)[3] = b_ + 8 * d_ + (m)[5];                                                             \
    } while (0)

static inline void bt6(const v8 d[WA], v8 r[WA]) { BT6(d, r); }

/* Lane shuffles of two v8: result lane k = (a:b)[mask k] (lanes 8..15 are b's). */
#ifdef __clang__
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif

/* Splits 32 consecutive floats q[0..3] by index mod 4: p[j] lane l = element 4 l + j. */
static inline void deinterleave4(const v8 q[4], v8 p[4])
{
    v8 a = SHUF(q[0], q[1], 0, 4, 8, 12, 1, 5, 9, 13), b = SHUF(q[0], q[1], 2, 6, 10, 14, 3, 7, 11, 15);
    v8 c = SHUF(q[2], q[3], 0, 4, 8, 12, 1, 5, 9, 13), d = SHUF(q[2], q[3], 2, 6, 10, 14, 3, 7, 11, 15);
    p[0] = SHUF(a, c, 0, 1, 2, 3, 8, 9, 10, 11);
    p[1] = SHUF(a, c, 4, 5, 6, 7, 12, 13, 14, 15);
    p[2] = SHUF(b, d, 0, 1, 2, 3, 8, 9, 10, 11);
    p[3] = SHUF(b, d, 4, 5, 6, 7, 12, 13, 14, 15);
}

/* The inverse: q (32 floats) element 4 l + j = p[j] lane l. */
static inline void interleave4(const v8 p[4], v8 q[4])
{
    v8 a = SHUF(p[0], p[1], 0, 8, 1, 9, 2, 10, 3, 11), b = SHUF(p[2], p[3], 0, 8, 1, 9, 2, 10, 3, 11);
    v8 c = SHUF(p[0], p[1], 4, 12, 5, 13, 6, 14, 7, 15), d = SHUF(p[2], p[3], 4, 12, 5, 13, 6, 14, 7, 15);
    q[0] = SHUF(a, b, 0, 1, 8, 9, 2, 3, 10, 11);
    q[1] = SHUF(a, b, 4, 5, 12, 13, 6, 7, 14, 15);
    q[2] = SHUF(c, d, 0, 1, 8, 9, 2, 3, 10, 11);
    q[3] = SHUF(c, d, 4, 5, 12, 13, 6, 7, 14, 15);
}


/* The output transform, Y = A^T m A plus bias and relu, of tile rows ty0 .. ty0 + nr - 1 from
 * M[Co][36][nb] into y, N tiles per vector of type VT (integer twin VTI); INTERLEAVE turns the 4
 * column phases into 4 N tiles' consecutive columns, STORE_PART stores the first k of those
 * 4 N floats. Defines function NAME with attributes ATTR. */
#define WINO_OUTPUT_FN(NAME, ATTR, VT, VTI, N, INTERLEAVE, STORE_PART)                             \
    ATTR static void NAME(const snn_conv2d *c, const float *M, int64_t nb, int64_t ty0, int64_t nr,  \
                          const float *b, int relu, float *y)                                      \
    {                                                                                              \
        const int64_t OH = c->OH, OW = c->OW, TW = (OW + WM - 1) / WM;                             \
        for (int64_t co = 0; co < c->Co; co++) {                                                   \
            VT bias = (VT){0} + (b ? b[co] : 0.0f);                                                \
            float *yc = y + co * ystride(c);                                                       \
            for (int64_t ty = ty0; ty < ty0 + nr; ty++) {                                          \
                const float *mt = M + co * WT * nb + (ty - ty0) * TW;                              \
                for (int64_t tx = 0; tx < TW; tx += N) {                                           \
                    int nl = TW - tx < N ? (int)(TW - tx) : N;                                     \
                    VT m[WA][WA], tmp[WM][WA], col[WA], o[WM], q[4];                               \
                    for (int i = 0; i < WA; i++)                                                   \
                        for (int j = 0; j < WA; j++)                                               \
                            memcpy(&m[i][j], mt + (i * WA + j) * nb + tx, sizeof(VT));             \
                    for (int j = 0; j < WA; j++) { /* tmp = A^T m */                               \
                        for (int k = 0; k < WA; k++)                                               \
                            col[k] = m[k][j];                                                      \
                        AT6(col, o);                                                               \
                        for (int i = 0; i < WM; i++)                                               \
                            tmp[i][j] = o[i];                                                      \
                    }                                                                              \
                    for (int i = 0; i < WM; i++) {                                                 \
                        int64_t oy = ty * WM + i;                                                  \
                        if (oy >= OH)                                                              \
                            break;                                                                 \
                        AT6(tmp[i], o); /* row i of (A^T m) A */                                   \
                        float *row = yc + oy * OW + tx * WM;                                       \
                        int64_t left = OW - tx * WM; /* columns left in this output row */        \
                        for (int j = 0; j < WM; j++) {                                             \
                            o[j] += bias;                                                          \
                            if (relu)                                                              \
                                o[j] = (VT)((VTI)o[j] & (o[j] > (VT){0}));                         \
                        }                                                                          \
                        INTERLEAVE(o, q);                                                          \
                        int64_t k = left < 4 * nl ? left : 4 * nl;                                 \
                        if (k == 4 * N)                                                            \
                            memcpy(row, q, sizeof q);                                              \
                        else                                                                       \
                            STORE_PART(row, q, k);                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/* the first k of the 32 floats of q[4] */
#define STORE_PART8(row, q, k)                                                                     \
    for (int v_ = 0; v_ < 4 && 8 * v_ < (k); v_++)                                                 \
    store_part((row) + 8 * v_, &(q)[v_], (k) - 8 * v_ < 8 ? (k) - 8 * v_ : 8)

/* eight tiles per vector: inlined into each of snn_conv2d_winograd's clones (their targets) */
WINO_OUTPUT_FN(wino_output8, inline __attribute__((always_inline)), v8, v8i, 8, interleave4, STORE_PART8)

/* Sixteen tiles per vector in 512-bit registers, for the output transform and step (3) of the
 * input transform (the same operations: the same results). GCC/x86-64, chosen at run time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
typedef float v16 __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
#define SHUF16(a, b, ...) __builtin_shuffle(a, b, (v16i){__VA_ARGS__})

/* q (64 floats) element 4 l + j = p[j] lane l. */
__attribute__((target("avx512f"))) static inline void interleave4_16(const v16 p[4], v16 q[4])
{
    /* a: lanes (p0, p1) interleaved for tiles 0..7, b: (p2, p3); c, d: tiles 8..15 */
    v16 a = SHUF16(p[0], p[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v16 b = SHUF16(p[2], p[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v16 c = SHUF16(p[0], p[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v16 d = SHUF16(p[2], p[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    q[0] = SHUF16(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    q[1] = SHUF16(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    q[2] = SHUF16(c, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    q[3] = SHUF16(c, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/* the first k of the 64 floats of q[4], masked */
#define STORE_PART16(row, q, k)                                                                    \
    for (int v_ = 0; v_ < 4 && 16 * v_ < (k); v_++)                                                \
    _mm512_mask_storeu_ps((row) + 16 * v_,                                                         \
                          (__mmask16)((1u << ((k) - 16 * v_ < 16 ? (k) - 16 * v_ : 16)) - 1),      \
                          (__m512)(q)[v_])

WINO_OUTPUT_FN(wino_output16, __attribute__((target("avx512f"))), v16, v16i, 16, interleave4_16,
               STORE_PART16)

/* p[j] lane l = element 4 l + j of the 64 floats q[0..3] (the inverse of interleave4_16). */
__attribute__((target("avx512f"))) static inline void deinterleave4_16(const v16 q[4], v16 p[4])
{
    /* a: phases 0 and 1 of elements 0..31, b: phases 2 and 3; c, d: elements 32..63 */
    v16 a = SHUF16(q[0], q[1], 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    v16 b = SHUF16(q[0], q[1], 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    v16 c = SHUF16(q[2], q[3], 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    v16 d = SHUF16(q[2], q[3], 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    p[0] = SHUF16(a, c, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    p[1] = SHUF16(a, c, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    p[2] = SHUF16(b, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    p[3] = SHUF16(b, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
}

/* Steps (1) and (2) of the input transform in one pass, 64 columns at a time: B^T down the 6
 * padded input rows in (RW apart) and the result split into its 4 column phases in ph
 * ([6][4][PW]). The same operations per column as the 8-wide steps: the same results. */
__attribute__((target("avx512f"))) static void wino_bt_phases16(const float *in, int64_t RW,
                                                               int64_t TW, float *ph, int64_t PW)
{
    for (int64_t X = 0; X < 4 * TW + 2; X += 64) {
        v16 o[4][WA];
        for (int v = 0; v < 4; v++) {
            v16 d[WA];
            for (int i = 0; i < WA; i++)
                memcpy(&d[i], in + i * RW + X + 16 * v, sizeof(v16));
            BT6(d, o[v]);
        }
        for (int k = 0; k < WA; k++) {
            v16 q[4] = {o[0][k], o[1][k], o[2][k], o[3][k]}, p[4];
            deinterleave4_16(q, p);
            for (int j = 0; j < 4; j++)
                memcpy(ph + (k * 4 + j) * PW + (X >> 2), &p[j], sizeof p[j]);
        }
    }
}

/* Step (3) of the input transform, sixteen tiles per vector: B across each tile of the phases
 * ph ([6][4][PW], see snn_conv2d_winograd) into vt (the tile row's place in V, rows nb apart). */
__attribute__((target("avx512f"))) static void wino_btiles16(const float *ph, int64_t PW, int64_t TW,
                                                            float *vt, int64_t nb)
{
    for (int64_t tx = 0; tx < TW; tx += 16) {
        int64_t nl = TW - tx < 16 ? TW - tx : 16;
        __mmask16 live = (__mmask16)((1u << nl) - 1);
        for (int k = 0; k < WA; k++) {
            const float *p = ph + k * 4 * PW + tx;
            v16 e[WA], o[WA];
            memcpy(&e[0], p, sizeof(v16));
            memcpy(&e[1], p + PW, sizeof(v16));
            memcpy(&e[2], p + 2 * PW, sizeof(v16));
            memcpy(&e[3], p + 3 * PW, sizeof(v16));
            memcpy(&e[4], p + 1, sizeof(v16));
            memcpy(&e[5], p + PW + 1, sizeof(v16));
            BT6(e, o);
            float *dst = vt + k * WA * nb + tx;
            for (int j = 0; j < WA; j++)
                _mm512_mask_storeu_ps(dst + j * nb, live, (__m512)o[j]);
        }
    }
}

static int wide_on = 1;

void snn_winograd_set_wide(int on) { wide_on = on; }

static int wino_avx512(void) { return wide_on && __builtin_cpu_supports("avx512f"); }
#else
static void wino_bt_phases16(const float *in, int64_t RW, int64_t TW, float *ph, int64_t PW)
{
    (void)in, (void)RW, (void)TW, (void)ph, (void)PW;
}
static void wino_btiles16(const float *ph, int64_t PW, int64_t TW, float *vt, int64_t nb)
{
    (void)ph, (void)PW, (void)TW, (void)vt, (void)nb;
}
static void wino_output16(const snn_conv2d *c, const float *M, int64_t nb, int64_t ty0, int64_t nr,
                          const float *b, int relu, float *y)
{
    (void)c, (void)M, (void)nb, (void)ty0, (void)nr, (void)b, (void)relu, (void)y;
}
void snn_winograd_set_wide(int on) { (void)on; }

static int wino_avx512(void) { return 0; }
#endif

/* The input transform is done a tile row at a time so that every vector access is
 * contiguous: (1) B^T down the 6 input rows, for every column at once; (2) the result split
 * into 4 phases by column mod 4, so that column 4 tx + j of every tile tx is phase j % 4 at
 * index tx + j / 4; (3) B across each tile, 8 tiles per vector (where the CPU has AVX-512,
 * steps (1) and (2) in one pass and (3) 16 tiles per vector: wino_bt_phases16, wino_btiles16). */
SNN_MULTIVERSION
void snn_conv2d_winograd(const snn_conv2d *c, const float *x, const float *u,
                         const float *b, int relu, float *y, float *scratch)
{
    const int64_t C = c->C, Co = c->Co, H = c->H, W = c->W, OH = c->OH, OW = c->OW;
    const int64_t TW = (OW + WM - 1) / WM, TH = (OH + WM - 1) / WM;
    const int64_t rows = wino_rows(c), nb = rows * TW, RW = WINO_RW(TW), PW = WINO_PW(TW);
    float *V = scratch;                   /* [C][36][nb] */
    float *M = V + WT * C * nb;           /* [Co][36][nb] */
    float *in = M + WT * Co * nb;         /* [6][RW] padded input rows */
    float *r = in + 6 * RW;               /* [6][RW] B^T down the rows */
    float *ph = r + 6 * RW;               /* [6][4][PW] phases */
    const int avx512 = wino_avx512();     /* steps (3) and the output transform 16 tiles wide */
    if (snn_amx_use()) {
        snn_amx_conv3x3(x, xstride(c), C, H, W, c->pt, c->pl, amx_weights(c, u), b, relu, Co, OH,
                        OW, ystride(c), y, (uint16_t *)scratch);
        return;
    }
    memset(in, 0, (size_t)(12 * RW + 24 * PW) * sizeof *in);
    for (int64_t ty0 = 0; ty0 < TH; ty0 += rows) {
        int64_t nr = TH - ty0 < rows ? TH - ty0 : rows, n = nr * TW;
        for (int64_t ci = 0; ci < C; ci++) {
            const float *xc = x + ci * xstride(c);
            for (int64_t ty = ty0; ty < ty0 + nr; ty++) {
                int64_t iy0 = ty * WM - c->pt;
                /* column X of in[] is input column X - pl; columns outside [lo, hi) keep the
                 * zeros of the memset above, so only [lo, hi) is written per row */
                for (int i = 0; i < WA; i++) {
                    float *row = in + i * RW;
                    int64_t iy = iy0 + i;
                    int64_t lo = c->pl, hi = c->pl + W < 4 * TW + 2 ? c->pl + W : 4 * TW + 2;
                    if (hi <= lo)
                        continue;
                    if (iy >= 0 && iy < H)
                        memcpy(row + lo, xc + iy * W, (size_t)(hi - lo) * sizeof *row);
                    else
                        memset(row + lo, 0, (size_t)(hi - lo) * sizeof *row);
                }
                float *vt = V + ci * WT * nb + (ty - ty0) * TW;
                if (avx512) {
                    wino_bt_phases16(in, RW, TW, ph, PW);
                    wino_btiles16(ph, PW, TW, vt, nb);
                    continue;
                }
                for (int64_t X = 0; X < 4 * TW + 2; X += 8) {
                    v8 d[WA], o[WA];
                    for (int i = 0; i < WA; i++)
                        LD8(d[i], in + i * RW + X);
                    bt6(d, o);
                    for (int k = 0; k < WA; k++)
                        memcpy(r + k * RW + X, &o[k], sizeof o[k]);
                }
                for (int k = 0; k < WA; k++)
                    for (int64_t X = 0; X < 4 * TW + 2; X += 32) {
                        v8 q[4], p[4];
                        memcpy(q, r + k * RW + X, sizeof q);
                        deinterleave4(q, p);
                        for (int j = 0; j < 4; j++)
                            memcpy(ph + (k * 4 + j) * PW + (X >> 2), &p[j], sizeof p[j]);
                    }
                for (int64_t tx = 0; tx < TW; tx += 8) {
                    int nl = TW - tx < 8 ? (int)(TW - tx) : 8;
                    for (int k = 0; k < WA; k++) {
                        const float *p = ph + k * 4 * PW + tx;
                        v8 e[WA], o[WA];
                        LD8(e[0], p);
                        LD8(e[1], p + PW);
                        LD8(e[2], p + 2 * PW);
                        LD8(e[3], p + 3 * PW);
                        LD8(e[4], p + 1);
                        LD8(e[5], p + PW + 1);
                        bt6(e, o);
                        float *dst = vt + k * WA * nb + tx;
                        if (nl == 8) /* constant size: inlined vector stores */
                            for (int j = 0; j < WA; j++)
                                memcpy(dst + j * nb, &o[j], sizeof o[j]);
                        else
                            for (int j = 0; j < WA; j++)
                                store_part(dst + j * nb, &o[j], nl);
                    }
                }
            }
        }
        /* the channel sums: 36 matrix products */
        for (int xi = 0; xi < WT; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)n, (int)C, 1.0f,
                        u + xi * Co * C, (int)C, V + xi * nb, (int)(WT * nb), 0.0f, M + xi * nb,
                        (int)(WT * nb));
        /* output transform: Y = A^T m A, plus bias, relu */
        if (avx512)
            wino_output16(c, M, nb, ty0, nr, b, relu, y);
        else
            wino_output8(c, M, nb, ty0, nr, b, relu, y);
    }
}

/* NaN-propagating max of v8 m and r: r wins when it is larger or NaN. */
#define VMAX_NAN(m, r) \
    ((v8)(((v8i)(r) & (((r) > (m)) | ((r) != (r)))) | ((v8i)(m) & ~(((r) > (m)) | ((r) != (r))))))

/* 2x2 stride-2 pooling of rows r0, r1 into y[OW], eight outputs at a time. */
SNN_MULTIVERSION
static void maxpool_2x2_row(const float *r0, const float *r1, int64_t OW, float *y)
{
    int64_t ox = 0;
    for (; ox + 8 <= OW; ox += 8) {
        v8 a0, a1, b0, b1;
        LD8(a0, r0 + 2 * ox);
        LD8(a1, r0 + 2 * ox + 8);
        LD8(b0, r1 + 2 * ox);
        LD8(b1, r1 + 2 * ox + 8);
        /* lanes in the order kx, ky of the scalar loop: (0,0), (0,1), (1,0), (1,1) */
        v8 e0 = SHUF(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14), o0 = SHUF(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
        v8 e1 = SHUF(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14), o1 = SHUF(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15);
        v8 m = VMAX_NAN(e0, o0);
        m = VMAX_NAN(m, e1);
        m = VMAX_NAN(m, o1);
        memcpy(y + ox, &m, sizeof m);
    }
    for (; ox < OW; ox++) {
        float m = r0[2 * ox];
        const float v[3] = {r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        for (int k = 0; k < 3; k++)
            if (v[k] > m || isnan(v[k]))
                m = v[k];
        y[ox] = m;
    }
}

void snn_maxpool2d(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH,
                   int64_t KW, int64_t sh, int64_t sw, float *y)
{
    int64_t OH = (H - KH) / sh + 1, OW = (W - KW) / sw + 1;
    if (KH == 2 && KW == 2 && sh == 2 && sw == 2) {
        for (int64_t c = 0; c < C; c++)
            for (int64_t oy = 0; oy < OH; oy++)
                maxpool_2x2_row(x + (c * H + 2 * oy) * W, x + (c * H + 2 * oy + 1) * W, OW,
                                y + (c * OH + oy) * OW);
        return;
    }
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        for (int64_t oy = 0; oy < OH; oy++) {
            for (int64_t ox = 0; ox < OW; ox++) {
                float m = -FLT_MAX;
                for (int64_t ky = 0; ky < KH; ky++) {
                    const float *r = xc + (oy * sh + ky) * W + ox * sw;
                    for (int64_t kx = 0; kx < KW; kx++)
                        if (r[kx] > m || isnan(r[kx]))
                            m = r[kx];
                }
                *y++ = m;
            }
        }
    }
}

void snn_matmul(const float *a, const float *b, float *y, int64_t M, int64_t K,
                int64_t N)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, a, (int)K, b, (int)N, 0.0f, y, (int)N);
}

int snn_broadcast_shape(const int64_t *da, int ra, const int64_t *db, int rb,
                        int64_t *out, int *rout)
{
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t a = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
        int64_t b = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
        if (a != b && a != 1 && b != 1)
            return -1;
        out[i] = a == 1 ? b : a;
    }
    *rout = r;
    return 0;
}

static inline float binop(snn_binop op, float a, float b)
{
    switch (op) {
    case SNN_BIN_ADD: return a + b;
    case SNN_BIN_SUB: return a - b;
    case SNN_BIN_MUL: return a * b;
    case SNN_BIN_DIV: return a / b;
    case SNN_BIN_MAX: return (a > b || isnan(a)) ? a : b;
    case SNN_BIN_POW: return b == 2.0f ? a * a : powf(a, b);
    }
    return 0.0f;
}

void snn_binary(snn_binop op, const float *a, const int64_t *da, int ra,
                const float *b, const int64_t *db, int rb, float *y,
                const int64_t *dy, int ry)
{
    /* Strides of a and b in y's index space (0 along broadcast dims). */
    int64_t sa[SNN_ONNX_MAX_RANK], sb[SNN_ONNX_MAX_RANK], idx[SNN_ONNX_MAX_RANK];
    int64_t st = 1, n = 1;
    for (int i = ry - 1; i >= 0; i--) {
        int j = i - (ry - ra);
        int64_t d = j >= 0 ? da[j] : 1;
        sa[i] = d == 1 ? 0 : st;
        st *= d;
    }
    st = 1;
    for (int i = ry - 1; i >= 0; i--) {
        int j = i - (ry - rb);
        int64_t d = j >= 0 ? db[j] : 1;
        sb[i] = d == 1 ? 0 : st;
        st *= d;
    }
    for (int i = 0; i < ry; i++) {
        n *= dy[i];
        idx[i] = 0;
    }
    int64_t na = 1, nb = 1;
    for (int i = 0; i < ra; i++)
        na *= da[i];
    for (int i = 0; i < rb; i++)
        nb *= db[i];
    if (na == n && nb == n) { /* same shape */
        for (int64_t k = 0; k < n; k++)
            y[k] = binop(op, a[k], b[k]);
        return;
    }
    if (na == n && nb == 1) { /* tensor op scalar */
        for (int64_t k = 0; k < n; k++)
            y[k] = binop(op, a[k], b[0]);
        return;
    }
    if (na == 1 && nb == n) { /* scalar op tensor */
        for (int64_t k = 0; k < n; k++)
            y[k] = binop(op, a[0], b[k]);
        return;
    }
    int64_t oa = 0, ob = 0;
    for (int64_t k = 0; k < n; k++) {
        y[k] = binop(op, a[oa], b[ob]);
        for (int i = ry - 1; i >= 0; i--) {
            idx[i]++;
            oa += sa[i];
            ob += sb[i];
            if (idx[i] < dy[i])
                break;
            oa -= sa[i] * dy[i];
            ob -= sb[i] * dy[i];
            idx[i] = 0;
        }
    }
}

void snn_unary(snn_unop op, const float *x, float *y, size_t n)
{
    switch (op) {
    case SNN_UN_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case SNN_UN_SQRT:
        for (size_t i = 0; i < n; i++)
            y[i] = sqrtf(x[i]);
        break;
    case SNN_UN_LOG:
        for (size_t i = 0; i < n; i++)
            y[i] = logf(x[i]);
        break;
    case SNN_UN_EXP:
        for (size_t i = 0; i < n; i++)
            y[i] = expf(x[i]);
        break;
    case SNN_UN_SIGMOID:
        for (size_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case SNN_UN_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case SNN_UN_NEG:
        for (size_t i = 0; i < n; i++)
            y[i] = -x[i];
        break;
    case SNN_UN_ABS:
        for (size_t i = 0; i < n; i++)
            y[i] = fabsf(x[i]);
        break;
    }
}

void snn_transpose(const void *x, const int64_t *d, int r, const int64_t *perm,
                   void *y, size_t esize)
{
    int64_t xs[SNN_ONNX_MAX_RANK], s[SNN_ONNX_MAX_RANK], yd[SNN_ONNX_MAX_RANK];
    int64_t idx[SNN_ONNX_MAX_RANK];
    int64_t st = 1, n = 1;
    for (int i = r - 1; i >= 0; i--) {
        xs[i] = st;
        st *= d[i];
    }
    for (int i = 0; i < r; i++) {
        yd[i] = d[perm[i]];
        s[i] = xs[perm[i]]; /* x stride when y's index i advances */
        n *= yd[i];
        idx[i] = 0;
    }
    const char *xb = x;
    char *yb = y;
    int64_t off = 0;
    for (int64_t k = 0; k < n; k++) {
        memcpy(yb + (size_t)k * esize, xb + (size_t)off * esize, esize);
        for (int i = r - 1; i >= 0; i--) {
            idx[i]++;
            off += s[i];
            if (idx[i] < yd[i])
                break;
            off -= s[i] * yd[i];
            idx[i] = 0;
        }
    }
}

void snn_reduce_max(const float *x, const int64_t *d, int r, const int *reduce,
                    float *y)
{
    /* y index space = x's with reduced dims of extent 1. */
    int64_t ys[SNN_ONNX_MAX_RANK], idx[SNN_ONNX_MAX_RANK];
    int64_t st = 1, n = 1, ny = 1;
    for (int i = r - 1; i >= 0; i--) {
        ys[i] = reduce[i] ? 0 : st;
        if (!reduce[i])
            st *= d[i];
    }
    for (int i = 0; i < r; i++) {
        n *= d[i];
        idx[i] = 0;
        if (!reduce[i])
            ny *= d[i];
    }
    for (int64_t k = 0; k < ny; k++)
        y[k] = -FLT_MAX;
    int64_t off = 0;
    for (int64_t k = 0; k < n; k++) {
        if (x[k] > y[off] || isnan(x[k]))
            y[off] = x[k];
        for (int i = r - 1; i >= 0; i--) {
            idx[i]++;
            off += ys[i];
            if (idx[i] < d[i])
                break;
            off -= ys[i] * d[i];
            idx[i] = 0;
        }
    }
}

void snn_slice(const void *x, const int64_t *d, int r, const int64_t *start,
               const int64_t *step, void *y, const int64_t *yd, size_t esize)
{
    int64_t xs[SNN_ONNX_MAX_RANK], idx[SNN_ONNX_MAX_RANK];
    int64_t st = 1, n = 1, off = 0;
    for (int i = r - 1; i >= 0; i--) {
        xs[i] = st;
        st *= d[i];
    }
    for (int i = 0; i < r; i++) {
        n *= yd[i];
        idx[i] = 0;
        off += start[i] * xs[i];
    }
    const char *xb = x;
    char *yb = y;
    for (int64_t k = 0; k < n; k++) {
        memcpy(yb + (size_t)k * esize, xb + (size_t)off * esize, esize);
        for (int i = r - 1; i >= 0; i--) {
            idx[i]++;
            off += step[i] * xs[i];
            if (idx[i] < yd[i])
                break;
            off -= step[i] * xs[i] * yd[i];
            idx[i] = 0;
        }
    }
}

void snn_concat(const void *const *xs, const int64_t *const *ds, int n, int r,
                int axis, void *y, size_t esize)
{
    int64_t outer = 1, inner = 1, total = 0;
    for (int i = 0; i < axis; i++)
        outer *= ds[0][i];
    for (int i = axis + 1; i < r; i++)
        inner *= ds[0][i];
    for (int t = 0; t < n; t++)
        total += ds[t][axis];
    char *yb = y;
    for (int64_t o = 0; o < outer; o++) {
        int64_t at = 0;
        for (int t = 0; t < n; t++) {
            size_t len = (size_t)(ds[t][axis] * inner) * esize;
            memcpy(yb + (size_t)((o * total + at) * inner) * esize,
                   (const char *)xs[t] + (size_t)o * len, len);
            at += ds[t][axis];
        }
    }
}
