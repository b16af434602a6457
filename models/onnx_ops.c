/*
 * onnx_ops.c -- float32 kernels for the ONNX operators (equations in onnx_ops.h).
 */
#include "onnx_ops.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* Output positions processed per im2col block: bounds the scratch buffer
 * (K x block floats) while keeping sgemm's N dimension large. */
#define CONV_BLOCK 2048

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
    return c->KH == 1 && c->KW == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 &&
           c->pl == 0 && c->pb == 0 && c->pr == 0;
}

size_t snn_conv2d_scratch(const snn_conv2d *c)
{
    if (conv_is_pointwise(c))
        return 0;
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
        const float *xc = x + ci * c->H * c->W;
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

void snn_conv2d_run(const snn_conv2d *c, const float *x, const float *w,
                    const float *b, int relu, float *y, float *scratch)
{
    int64_t P = c->OH * c->OW;
    int64_t K = c->C * c->KH * c->KW;
    for (int64_t co = 0; co < c->Co; co++) {
        float v = b ? b[co] : 0.0f;
        float *yc = y + co * P;
        for (int64_t p = 0; p < P; p++)
            yc[p] = v;
    }
    if (conv_is_pointwise(c)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->Co, (int)P,
                    (int)K, 1.0f, w, (int)K, x, (int)P, 1.0f, y, (int)P);
        if (relu)
            relu_rows(y, c->Co, P, P);
        return;
    }
    for (int64_t p0 = 0; p0 < P; p0 += CONV_BLOCK) {
        int64_t n = P - p0 < CONV_BLOCK ? P - p0 : CONV_BLOCK;
        im2col_block(c, x, p0, n, scratch);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->Co, (int)n,
                    (int)K, 1.0f, w, (int)K, scratch, (int)n, 1.0f, y + p0, (int)P);
        if (relu) /* while the block is in cache */
            relu_rows(y + p0, c->Co, n, P);
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
/* Tiles per block: bounds the scratch (36 (C + Co) floats per tile) to ~16 MB. */
static int64_t wino_block(const snn_conv2d *c)
{
    int64_t tiles = ((c->OH + WM - 1) / WM) * ((c->OW + WM - 1) / WM);
    int64_t b = (int64_t)(4 << 20) / (WT * (c->C + c->Co));
    if (b < 16)
        b = 16;
    return b < tiles ? b : tiles;
}

int snn_winograd_ok(const snn_conv2d *c)
{
    return c->KH == 3 && c->KW == 3 && c->sh == 1 && c->sw == 1 && c->dh == 1 && c->dw == 1;
}

size_t snn_winograd_weights_size(const snn_conv2d *c) { return (size_t)(WT * c->Co * c->C); }

size_t snn_winograd_scratch(const snn_conv2d *c)
{
    return (size_t)(WT * (c->C + c->Co) * wino_block(c));
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
}

/* Eight tiles at a time: GCC/Clang vector extensions (compiled to whatever SIMD the target
 * has). The transforms are B^T d B and A^T m A written out for these matrices' zeros. */
typedef float v8 __attribute__((vector_size(32)));

/* r = B^T column: r[i] = sum_k BT[i][k] d[k] */
static inline void bt6(const v8 d[WA], v8 r[WA])
{
    r[0] = 4 * d[0] - 5 * d[2] + d[4];
    r[1] = -4 * d[1] - 4 * d[2] + d[3] + d[4];
    r[2] = 4 * d[1] - 4 * d[2] - d[3] + d[4];
    r[3] = -2 * d[1] - d[2] + 2 * d[3] + d[4];
    r[4] = 2 * d[1] - d[2] - 2 * d[3] + d[4];
    r[5] = 4 * d[1] - 5 * d[3] + d[5];
}

/* o[i] = sum_k AT[i][k] m[k] */
static inline void at6(const v8 m[WA], v8 o[WM])
{
    v8 a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    o[0] = m[0] + a + c;
    o[1] = b + 2 * d;
    o[2] = a + 4 * c;
    o[3] = b + 8 * d + m[5];
}

void snn_conv2d_winograd(const snn_conv2d *c, const float *x, const float *u,
                         const float *b, int relu, float *y, float *scratch)
{
    const int64_t C = c->C, Co = c->Co, H = c->H, W = c->W, OH = c->OH, OW = c->OW;
    const int64_t TW = (OW + WM - 1) / WM, TH = (OH + WM - 1) / WM, T = TW * TH;
    const int64_t nb = wino_block(c);
    float *V = scratch;               /* [36][C][nb] */
    float *M = scratch + WT * C * nb; /* [36][Co][nb] */
    for (int64_t t0 = 0; t0 < T; t0 += nb) {
        int64_t n = T - t0 < nb ? T - t0 : nb;
        /* input transform: V[xi][ci][t] = (B^T d B)[xi] */
        for (int64_t ci = 0; ci < C; ci++) {
            const float *xc = x + ci * H * W;
            for (int64_t t = 0; t < n; t += 8) {
                int nl = n - t < 8 ? (int)(n - t) : 8;
                v8 d[WA][WA], tmp[WA][WA], col[WA], r[WA];
                memset(d, 0, sizeof d);
                for (int l = 0; l < nl; l++) {
                    int64_t ty = (t0 + t + l) / TW, tx = (t0 + t + l) % TW;
                    int64_t iy0 = ty * WM - c->pt, ix0 = tx * WM - c->pl;
                    if (iy0 >= 0 && ix0 >= 0 && iy0 + WA <= H && ix0 + WA <= W) {
                        const float *p = xc + iy0 * W + ix0;
                        for (int i = 0; i < WA; i++, p += W)
                            for (int j = 0; j < WA; j++)
                                d[i][j][l] = p[j];
                    } else {
                        for (int i = 0; i < WA; i++)
                            for (int j = 0; j < WA; j++) {
                                int64_t iy = iy0 + i, ix = ix0 + j;
                                d[i][j][l] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix]
                                                                                      : 0.0f;
                            }
                    }
                }
                for (int j = 0; j < WA; j++) { /* tmp = B^T d, column by column */
                    for (int k = 0; k < WA; k++)
                        col[k] = d[k][j];
                    bt6(col, r);
                    for (int i = 0; i < WA; i++)
                        tmp[i][j] = r[i];
                }
                for (int i = 0; i < WA; i++) { /* (B^T d) B = rows through B^T */
                    bt6(tmp[i], r);
                    for (int j = 0; j < WA; j++)
                        memcpy(V + ((i * WA + j) * C + ci) * nb + t, &r[j], (size_t)nl * sizeof(float));
                }
            }
        }
        /* the channel sums: 36 matrix products */
        for (int xi = 0; xi < WT; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)n, (int)C, 1.0f,
                        u + xi * Co * C, (int)C, V + xi * C * nb, (int)nb, 0.0f, M + xi * Co * nb,
                        (int)nb);
        /* output transform: Y = A^T m A, plus bias, relu */
        for (int64_t co = 0; co < Co; co++) {
            float bias = b ? b[co] : 0.0f;
            float *yc = y + co * OH * OW;
            for (int64_t t = 0; t < n; t += 8) {
                int nl = n - t < 8 ? (int)(n - t) : 8;
                v8 m[WA][WA], tmp[WM][WA], col[WA], o[WM];
                for (int i = 0; i < WA; i++)
                    for (int j = 0; j < WA; j++) {
                        m[i][j] = (v8){0};
                        memcpy(&m[i][j], M + ((i * WA + j) * Co + co) * nb + t,
                               (size_t)nl * sizeof(float));
                    }
                for (int j = 0; j < WA; j++) { /* tmp = A^T m */
                    for (int k = 0; k < WA; k++)
                        col[k] = m[k][j];
                    at6(col, o);
                    for (int i = 0; i < WM; i++)
                        tmp[i][j] = o[i];
                }
                for (int i = 0; i < WM; i++) {
                    at6(tmp[i], o); /* row i of (A^T m) A */
                    for (int l = 0; l < nl; l++) {
                        int64_t ty = (t0 + t + l) / TW, tx = (t0 + t + l) % TW;
                        int64_t oy = ty * WM + i;
                        if (oy >= OH)
                            continue;
                        float *row = yc + oy * OW;
                        for (int j = 0; j < WM; j++) {
                            int64_t ox = tx * WM + j;
                            if (ox >= OW)
                                break;
                            float v = o[j][l] + bias;
                            row[ox] = relu && v < 0.0f ? 0.0f : v;
                        }
                    }
                }
            }
        }
    }
}

void snn_maxpool2d(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH,
                   int64_t KW, int64_t sh, int64_t sw, float *y)
{
    int64_t OH = (H - KH) / sh + 1, OW = (W - KW) / sw + 1;
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
