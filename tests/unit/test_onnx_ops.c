/*
 * test_onnx_ops.c -- the ONNX operator kernels (onnx_ops.h) and the graph runner (onnx.h)
 * against values worked out by hand.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <unistd.h>

#include "dnsmos.h"
#include "onnx.h"
#include "onnx.pb-c.h"
#include "amx.h"
#include "onnx_ops.h"
#include "testutil.h"

static void assert_floats(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(got[i] - want[i]) > 1e-5f)
            fail_msg("element %zu: got %g, want %g", i, got[i], want[i]);
}

/* 3x3 image, 2x2 kernel, padding 1 on every side, bias 10: 4x4 output of corner sums. */
static void test_conv2d_padded(void **st)
{
    (void)st;
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[4] = {1, 0, 0, 1}; /* y = x[i][j] + x[i+1][j+1] (shifted by the padding) */
    const float b[1] = {10};
    snn_conv2d c = {.C = 1, .H = 3, .W = 3, .Co = 1, .KH = 2, .KW = 2, .sh = 1, .sw = 1,
                    .dh = 1, .dw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1};
    assert_int_equal(snn_conv2d_init(&c), 0);
    assert_int_equal(c.OH, 4);
    assert_int_equal(c.OW, 4);
    float y[16], scratch[64];
    assert_true(snn_conv2d_scratch(&c) <= 64);
    snn_conv2d_run(&c, x, w, b, 0, y, scratch);
    const float want[16] = {11, 12, 13, 10, 14, 16, 18, 13, 17, 22, 24, 16, 10, 17, 18, 19};
    assert_floats(y, want, 16);
}

/* Two input channels, two output channels, 3x3 kernel, stride 2, no padding. */
static void test_conv2d_stride_channels(void **st)
{
    (void)st;
    float x[2 * 5 * 5];
    for (int i = 0; i < 25; i++) {
        x[i] = (float)i;      /* channel 0: 0..24 */
        x[25 + i] = 1.0f;     /* channel 1: ones */
    }
    float w[2 * 2 * 9];
    for (int i = 0; i < 9; i++) {
        w[i] = 1; w[9 + i] = 0;        /* out 0: sum of channel 0 window */
        w[18 + i] = 0; w[27 + i] = 2;  /* out 1: 2 * sum of channel 1 window = 18 */
    }
    snn_conv2d c = {.C = 2, .H = 5, .W = 5, .Co = 2, .KH = 3, .KW = 3, .sh = 2, .sw = 2,
                    .dh = 1, .dw = 1};
    assert_int_equal(snn_conv2d_init(&c), 0);
    assert_int_equal(c.OH, 2);
    assert_int_equal(c.OW, 2);
    float y[8], scratch[256];
    snn_conv2d_run(&c, x, w, NULL, 0, y, scratch);
    /* window sums of 0..24 at (0,0),(0,2),(2,0),(2,2): 9*center = 54, 72, 144, 162 */
    const float want[8] = {54, 72, 144, 162, 18, 18, 18, 18};
    assert_floats(y, want, 8);
}

/* A 1-D pointwise Conv (H = 1, kernel 1) is a matrix product over channels; a fused Relu
 * zeroes the negative outputs. */
static void test_conv1d_pointwise(void **st)
{
    (void)st;
    const float x[2 * 3] = {1, 2, 30, 10, 20, 3}; /* C=2, L=3 */
    const float w[2] = {1, -1};
    snn_conv2d c = {.C = 2, .H = 1, .W = 3, .Co = 1, .KH = 1, .KW = 1, .sh = 1, .sw = 1,
                    .dh = 1, .dw = 1};
    assert_int_equal(snn_conv2d_init(&c), 0);
    assert_int_equal(snn_conv2d_scratch(&c), 0);
    float y[3];
    snn_conv2d_run(&c, x, w, NULL, 0, y, NULL);
    assert_floats(y, (const float[3]){-9, -18, 27}, 3);
    snn_conv2d_run(&c, x, w, NULL, 1, y, NULL);
    assert_floats(y, (const float[3]){0, 0, 27}, 3);
}

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* Winograd F(4x4,3x3) equals im2col + sgemm (within 1e-3 relative: F(4x4) rounds a little more) on random data, for sizes
 * that are not multiples of the 4x4 tile, with symmetric, asymmetric and no padding, bias and
 * Relu; the last case is wide (two 8-tile vectors per tile row) and deep enough to be cut into
 * two blocks of tile rows. */
static void test_winograd_matches_im2col(void **st)
{
    (void)st;
    const int64_t cfg[5][8] = {
        /* C, Co, H, W, pt, pl, pb, pr */
        {9, 5, 13, 11, 1, 1, 1, 1},
        {9, 5, 13, 11, 0, 0, 0, 0},
        {9, 5, 13, 11, 2, 0, 1, 1},
        {200, 150, 150, 37, 1, 1, 1, 1},
        {200, 150, 9, 100, 1, 1, 1, 1}, /* a tile row alone fills a block */
    };
    uint32_t seed = 42;
    for (int v = 0; v < 5; v++) {
        const int64_t *q = cfg[v];
        snn_conv2d c = {.C = q[0], .H = q[2], .W = q[3], .Co = q[1], .KH = 3, .KW = 3, .sh = 1,
                        .sw = 1, .dh = 1, .dw = 1, .pt = q[4], .pl = q[5], .pb = q[6], .pr = q[7]};
        assert_int_equal(snn_conv2d_init(&c), 0);
        assert_true(snn_winograd_ok(&c));
        size_t nx = (size_t)(c.C * c.H * c.W), nw = (size_t)(c.Co * c.C * 9);
        size_t ny = (size_t)(c.Co * c.OH * c.OW);
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)c.Co * 4);
        float *y1 = malloc(ny * 4), *y2 = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand(&seed);
        for (size_t i = 0; i < nw; i++)
            w[i] = frand(&seed);
        for (int64_t i = 0; i < c.Co; i++)
            b[i] = frand(&seed);
        float *u = malloc(snn_winograd_weights_size(&c) * 4);
        float *s1 = malloc((snn_conv2d_scratch(&c) + 1) * 4), *s2 = malloc(snn_winograd_scratch(&c) * 4);
        snn_winograd_weights(&c, w, u);
        float *y3 = malloc(ny * 4);
        for (int relu = 0; relu < 2; relu++) {
            snn_conv2d_run(&c, x, w, b, relu, y1, s1);
            snn_amx_set(0); /* Winograd itself */
            snn_winograd_set_wide(0); /* 8-tile vectors */
            snn_conv2d_winograd(&c, x, u, b, relu, y3, s2);
            snn_winograd_set_wide(1); /* 16 where the CPU has AVX-512: the same operations */
            snn_conv2d_winograd(&c, x, u, b, relu, y2, s2);
            for (size_t i = 0; i < ny; i++) {
                if (fabsf(y1[i] - y2[i]) > 1e-3f * (1.0f + fabsf(y1[i])))
                    fail_msg("pads %d relu %d element %zu: im2col %g, winograd %g", v, relu, i, y1[i],
                             y2[i]);
                if (y2[i] != y3[i])
                    fail_msg("pads %d relu %d element %zu: 16-tile %.9g, 8-tile %.9g", v, relu, i, y2[i],
                             y3[i]);
            }
            snn_amx_set(1);
            if (!snn_amx_use())
                continue;
            /* the direct split-bf16 convolution on AMX tiles (amx.h): ~2^-16 per product */
            for (size_t i = 0; i < ny; i++)
                y2[i] = NAN;
            snn_conv2d_winograd(&c, x, u, b, relu, y2, s2);
            /* each output sums 9 C products of |w x| <= 1 with ~2^-16 relative error each: a
             * bound per element, and the root mean square error against the float32 path as a
             * random walk of 9 C such errors; a dropped lo part (bf16's 2^-8) is ~100x that */
            double se = 0, tol = 2e-6 * 9 * (double)c.C;
            for (size_t i = 0; i < ny; i++) {
                double e = fabs((double)y1[i] - y2[i]);
                if (!(e <= tol + 1e-5 * fabs(y1[i])))
                    fail_msg("pads %d relu %d element %zu: im2col %g, amx %g", v, relu, i, y1[i], y2[i]);
                se += e * e;
            }
            print_message("C %lld: amx vs im2col rms %.3g\n", (long long)c.C, sqrt(se / (double)ny));
            assert_true(sqrt(se / (double)ny) < 4e-6 * sqrt(9 * (double)c.C));
        }
        free(x); free(w); free(b); free(y1); free(y2); free(y3); free(u); free(s1); free(s2);
    }
    snn_conv2d s2 = {.C = 1, .H = 5, .W = 5, .Co = 1, .KH = 3, .KW = 3, .sh = 2, .sw = 2, .dh = 1, .dw = 1};
    assert_false(snn_winograd_ok(&s2)); /* stride 2 is not Winograd's */
    if (!snn_amx_ok())
        print_message("no AMX-BF16 here (or SNN_AMX=0): the tile convolution was not tested\n");
}

/* The equation of onnx_ops.h for y[co][oy][ox], in double, from x with channel stride xcs. */
static double conv_ref(const snn_conv2d *c, const float *x, int64_t xcs, const float *w, const float *b,
                       int relu, int64_t co, int64_t oy, int64_t ox)
{
    double acc = b[co];
    for (int64_t ci = 0; ci < c->C; ci++)
        for (int64_t ky = 0; ky < c->KH; ky++)
            for (int64_t kx = 0; kx < c->KW; kx++) {
                int64_t iy = oy * c->sh - c->pt + ky * c->dh, ix = ox * c->sw - c->pl + kx * c->dw;
                if (iy >= 0 && iy < c->H && ix >= 0 && ix < c->W)
                    acc += (double)w[((co * c->C + ci) * c->KH + ky) * c->KW + kx] *
                           x[ci * xcs + iy * c->W + ix];
            }
    return relu && acc < 0 ? 0 : acc;
}

/* One input channel, 3x3 (the direct path) with widths not a multiple of 8 and uneven padding;
 * and channel strides (xcs, ycs) on every path (direct, Winograd, and the AMX tile convolution
 * where the CPU has it): outputs equal the equation, and the gaps between strided output
 * channels are left alone. */
static void test_conv_direct_and_strides(void **st)
{
    (void)st;
    const int64_t cfg[5][9] = {
        /* C, Co, H, W, pt, pl, pb, pr, strided */
        {1, 5, 7, 19, 1, 1, 1, 1, 0},
        {1, 3, 6, 9, 1, 0, 0, 1, 0},
        {1, 4, 5, 17, 0, 1, 2, 1, 1},
        {9, 5, 9, 11, 1, 1, 1, 1, 1},
        {9, 5, 9, 11, 0, 1, 1, 1, 1},
    };
    uint32_t seed = 7;
    for (int v = 0; v < 5; v++) {
        const int64_t *q = cfg[v];
        snn_conv2d c = {.C = q[0], .H = q[2], .W = q[3], .Co = q[1], .KH = 3, .KW = 3, .sh = 1,
                        .sw = 1, .dh = 1, .dw = 1, .pt = q[4], .pl = q[5], .pb = q[6], .pr = q[7]};
        assert_int_equal(snn_conv2d_init(&c), 0);
        int64_t xcs = c.H * c.W + (q[8] ? 23 : 0), ycs = c.OH * c.OW + (q[8] ? 17 : 0);
        if (q[8]) {
            c.xcs = xcs;
            c.ycs = ycs;
        }
        size_t nx = (size_t)(c.C * xcs), nw = (size_t)(c.Co * c.C * 9), ny = (size_t)(c.Co * ycs);
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)c.Co * 4);
        float *y = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand(&seed);
        for (size_t i = 0; i < nw; i++)
            w[i] = frand(&seed);
        for (int64_t i = 0; i < c.Co; i++)
            b[i] = frand(&seed);
        size_t ns = snn_conv2d_scratch(&c) + 1;
        if (snn_winograd_scratch(&c) > ns)
            ns = snn_winograd_scratch(&c);
        float *s = malloc(ns * 4), *u = malloc(snn_winograd_weights_size(&c) * 4);
        snn_winograd_weights(&c, w, u);
        for (int path = 0; path < 3; path++) { /* direct, Winograd, AMX tiles (where there) */
            snn_amx_set(path == 2);
            if (path == 2 && !snn_amx_use())
                break;
            for (int relu = 0; relu < 2; relu++) {
                for (size_t i = 0; i < ny; i++)
                    y[i] = 1234.5f;
                if (path == 0)
                    snn_conv2d_run(&c, x, w, b, relu, y, s);
                else
                    snn_conv2d_winograd(&c, x, u, b, relu, y, s);
                for (int64_t co = 0; co < c.Co; co++) {
                    for (int64_t p = 0; p < ycs; p++) {
                        float got = y[co * ycs + p];
                        double want = p < c.OH * c.OW
                                          ? conv_ref(&c, x, xcs, w, b, relu, co, p / c.OW, p % c.OW)
                                          : 1234.5;
                        if (fabs(got - want) > 1e-4 * (1 + fabs(want)))
                            fail_msg("case %d path %d relu %d co %lld at %lld: got %g, want %g", v, path,
                                     relu, (long long)co, (long long)p, got, want);
                    }
                }
            }
        }
        free(x); free(w); free(b); free(y); free(s); free(u);
    }
    snn_amx_set(1);
}

/* 2x2 max pooling, stride 2, floor mode drops the odd last row/column. */
static void test_maxpool(void **st)
{
    (void)st;
    const float x[5 * 5] = {1, 2, 3, 4, 99, 5, 6, 7, 8, 99, -1, -2, -3, -4, 99,
                            -5, -6, -7, -8, 99, 99, 99, 99, 99, 99};
    float y[4];
    snn_maxpool2d(x, 1, 5, 5, 2, 2, 2, 2, y);
    const float want[4] = {6, 8, -1, -3};
    assert_floats(y, want, 4);
    /* wide rows (the eight-at-a-time path and its tail), a NaN propagating */
    enum { H = 4, W = 37, OW = 18 };
    float xs[2 * H * W], ys[2 * (H / 2) * OW];
    uint32_t seed = 3;
    for (int i = 0; i < 2 * H * W; i++)
        xs[i] = frand(&seed);
    xs[W + 9] = NAN; /* channel 0, row 1, column 9 -> output (0, 4) */
    snn_maxpool2d(xs, 2, H, W, 2, 2, 2, 2, ys);
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < H / 2; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const float *p = xs + (c * H + 2 * oy) * W + 2 * ox;
                float m = fmaxf(fmaxf(p[0], p[1]), fmaxf(p[W], p[W + 1]));
                float got = ys[(c * (H / 2) + oy) * OW + ox];
                if (c == 0 && oy == 0 && ox == 4)
                    assert_true(isnan(got));
                else if (got != m)
                    fail_msg("channel %d (%d, %d): got %g, want %g", c, oy, ox, got, m);
            }
}

/* Dense layer: [1,3] x [3,2]. */
static void test_matmul(void **st)
{
    (void)st;
    const float a[3] = {1, 2, 3}, b[6] = {1, 4, 2, 5, 3, 6};
    float y[2];
    snn_matmul(a, b, y, 1, 3, 2);
    const float want[2] = {14, 32};
    assert_floats(y, want, 2);
}

/* Broadcasting: [2,3] + [3], Max with a scalar, Pow 2, Div by a column [2,1]. */
static void test_binary_broadcast(void **st)
{
    (void)st;
    const float a[6] = {1, 2, 3, 4, 5, 6}, row[3] = {10, 20, 30}, s[1] = {3.5f}, col[2] = {2, 4};
    const int64_t da[2] = {2, 3}, dr[1] = {3}, ds[1] = {1}, dc[2] = {2, 1};
    int64_t dy[SNN_ONNX_MAX_RANK];
    int ry;
    float y[6];
    assert_int_equal(snn_broadcast_shape(da, 2, dr, 1, dy, &ry), 0);
    assert_int_equal(ry, 2);
    snn_binary(SNN_BIN_ADD, a, da, 2, row, dr, 1, y, dy, ry);
    assert_floats(y, (const float[6]){11, 22, 33, 14, 25, 36}, 6);
    snn_binary(SNN_BIN_MAX, s, ds, 1, a, da, 2, y, da, 2);
    assert_floats(y, (const float[6]){3.5f, 3.5f, 3.5f, 4, 5, 6}, 6);
    snn_binary(SNN_BIN_POW, a, da, 2, (const float[1]){2}, ds, 1, y, da, 2);
    assert_floats(y, (const float[6]){1, 4, 9, 16, 25, 36}, 6);
    snn_binary(SNN_BIN_DIV, a, da, 2, col, dc, 2, y, da, 2);
    assert_floats(y, (const float[6]){0.5f, 1, 1.5f, 1, 1.25f, 1.5f}, 6);
    const int64_t bad[1] = {2};
    assert_int_equal(snn_broadcast_shape(da, 2, bad, 1, dy, &ry), -1);
}

/* Relu, Sqrt, Log elementwise. */
static void test_unary(void **st)
{
    (void)st;
    const float x[4] = {-2, 0, 4, 1};
    float y[4];
    snn_unary(SNN_UN_RELU, x, y, 4);
    assert_floats(y, (const float[4]){0, 0, 4, 1}, 4);
    snn_unary(SNN_UN_SQRT, x + 2, y, 2);
    assert_floats(y, (const float[2]){2, 1}, 2);
    snn_unary(SNN_UN_LOG, (const float[2]){1, (float)M_E}, y, 2);
    assert_floats(y, (const float[2]){0, 1}, 2);
}

/* Transpose [2,3] -> [3,2] and [1,2,3] by (0,2,1); ReduceMax over axes 1,2 of [1,2,2,2]. */
static void test_transpose_reduce(void **st)
{
    (void)st;
    const float x[6] = {1, 2, 3, 4, 5, 6};
    float y[8];
    snn_transpose(x, (const int64_t[2]){2, 3}, 2, (const int64_t[2]){1, 0}, y, 4);
    assert_floats(y, (const float[6]){1, 4, 2, 5, 3, 6}, 6);
    snn_transpose(x, (const int64_t[3]){1, 2, 3}, 3, (const int64_t[3]){0, 2, 1}, y, 4);
    assert_floats(y, (const float[6]){1, 4, 2, 5, 3, 6}, 6);
    const float z[8] = {1, 9, 3, 4, 5, 6, 7, -8}; /* [1,2,2,2] */
    snn_reduce_max(z, (const int64_t[4]){1, 2, 2, 2}, 4, (const int[4]){0, 1, 1, 0}, y);
    assert_floats(y, (const float[2]){7, 9}, 2);
}

/* Slice with a step, Concat along the last axis (the framing DNSMOS does). */
static void test_slice_concat(void **st)
{
    (void)st;
    const float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* [2,4] */
    float y[4];
    snn_slice(x, (const int64_t[2]){2, 4}, 2, (const int64_t[2]){0, 1}, (const int64_t[2]){1, 2}, y,
              (const int64_t[2]){2, 2}, 4);
    assert_floats(y, (const float[4]){1, 3, 5, 7}, 4);
    const float a[2] = {1, 2}, b[4] = {3, 4, 5, 6};
    const void *xs[2] = {a, b};
    const int64_t da[2] = {2, 1}, db[2] = {2, 2};
    const int64_t *ds[2] = {da, db};
    float c[6];
    snn_concat(xs, ds, 2, 2, 1, c, 4);
    assert_floats(c, (const float[6]){1, 3, 4, 2, 5, 6}, 6);
}

/* ---- graphs built in memory with the generated protobuf-c code ---------------------------- */

typedef struct tiny {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto os, *osp[1];
    Onnx__NodeProto n[2], *np[2];
    Onnx__AttributeProto at[2], *atp[2];
    Onnx__TensorProto w, *wp[1];
    Onnx__ValueInfoProto in, out, *inp[1], *outp[1];
    Onnx__TypeProto ty;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sh;
    Onnx__TensorShapeProto__Dimension dim[4], *dimp[4];
    int64_t wdims[4], kshape[2];
    float wdata[4];
    char *n0in[2], *n0out[1], *n1in[1], *n1out[1];
} tiny;


/* m packed into a malloc'd buffer; *len gets its size. */
static uint8_t *pack_model(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(m, buf);
    return buf;
}

/* X [N,1,3,3] -> Conv(W [1,1,2,2] = [[1,0],[0,-1]], no padding) -> op1 -> Y [N,1,2,2]. */
static uint8_t *pack_tiny(const char *op1, size_t *len)
{
    tiny *t = calloc(1, sizeof *t);
    onnx__model_proto__init(&t->m);
    onnx__graph_proto__init(&t->g);
    onnx__operator_set_id_proto__init(&t->os);
    t->os.has_version = 1;
    t->os.version = 12;
    t->osp[0] = &t->os;
    t->m.n_opset_import = 1;
    t->m.opset_import = t->osp;
    t->m.has_ir_version = 1;
    t->m.ir_version = 7;
    t->m.graph = &t->g;
    onnx__tensor_proto__init(&t->w);
    t->w.name = "W";
    t->w.has_data_type = 1;
    t->w.data_type = 1;
    t->wdims[0] = t->wdims[1] = 1;
    t->wdims[2] = t->wdims[3] = 2;
    t->w.n_dims = 4;
    t->w.dims = t->wdims;
    t->wdata[0] = 1; t->wdata[3] = -1;
    t->w.n_float_data = 4;
    t->w.float_data = t->wdata;
    t->wp[0] = &t->w;
    t->g.n_initializer = 1;
    t->g.initializer = t->wp;
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&t->dim[i]);
        t->dimp[i] = &t->dim[i];
        if (i == 0) {
            t->dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            t->dim[i].dim_param = "N";
        } else {
            t->dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            t->dim[i].dim_value = i == 1 ? 1 : 3;
        }
    }
    onnx__tensor_shape_proto__init(&t->sh);
    t->sh.n_dim = 4;
    t->sh.dim = t->dimp;
    onnx__type_proto__tensor__init(&t->tt);
    t->tt.has_elem_type = 1;
    t->tt.elem_type = 1;
    t->tt.shape = &t->sh;
    onnx__type_proto__init(&t->ty);
    t->ty.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->ty.tensor_type = &t->tt;
    onnx__value_info_proto__init(&t->in);
    t->in.name = "X";
    t->in.type = &t->ty;
    onnx__value_info_proto__init(&t->out);
    t->out.name = "Y";
    t->inp[0] = &t->in;
    t->outp[0] = &t->out;
    t->g.n_input = 1;
    t->g.input = t->inp;
    t->g.n_output = 1;
    t->g.output = t->outp;
    onnx__attribute_proto__init(&t->at[0]);
    t->at[0].name = "kernel_shape";
    t->at[0].has_type = 1;
    t->at[0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    t->kshape[0] = t->kshape[1] = 2;
    t->at[0].n_ints = 2;
    t->at[0].ints = t->kshape;
    t->atp[0] = &t->at[0];
    for (int i = 0; i < 2; i++) {
        onnx__node_proto__init(&t->n[i]);
        t->np[i] = &t->n[i];
    }
    t->n0in[0] = "X"; t->n0in[1] = "W"; t->n0out[0] = "C";
    t->n1in[0] = "C"; t->n1out[0] = "Y";
    t->n[0].op_type = "Conv";
    t->n[0].name = "conv0";
    t->n[0].n_input = 2;
    t->n[0].input = t->n0in;
    t->n[0].n_output = 1;
    t->n[0].output = t->n0out;
    t->n[0].n_attribute = 1;
    t->n[0].attribute = t->atp;
    t->n[1].op_type = (char *)op1;
    t->n[1].name = "act1";
    t->n[1].n_input = 1;
    t->n[1].input = t->n1in;
    t->n[1].n_output = 1;
    t->n[1].output = t->n1out;
    t->g.n_node = 2;
    t->g.node = t->np;
    uint8_t *buf = pack_model(&t->m, len);
    free(t);
    return buf;
}

/* A Conv -> Relu graph loads with batch fixed to 1 and computes relu(x00 - x11). */
static void test_graph_runs(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Relu", &len);
    snn_onnx_graph *g;
    snn_err e = {{0}};
    assert_int_equal(snn_onnx_load_buffer(buf, len, "tiny.onnx", &snn_test_allocator, &g, &e), 0);
    assert_int_equal(snn_onnx_input_numel(g), 9);
    assert_int_equal(snn_onnx_output_numel(g), 4);
    assert_int_equal(snn_onnx_input_dims(g)[0], 1);
    assert_int_equal(snn_onnx_n_params(g), 4);
    const float x[9] = {5, 1, 0, 0, 2, 9, 1, 1, 1};
    float y[4];
    void *work = malloc(snn_onnx_work_size(g));
    snn_onnx_run(g, x, y, work);
    /* x00-x11 = 3, x01-x12 = -8 -> 0, x10-x21 = -1 -> 0, x11-x22 = 1 */
    assert_floats(y, (const float[4]){3, 0, 0, 1}, 4);
    /* parts of the graph: node 0 is the Conv (with the Relu fused), node 1 the Relu left as an
     * identity; running from node 1 takes what is written as its input */
    assert_string_equal(snn_onnx_node_op(g, 0), "Conv");
    assert_string_equal(snn_onnx_node_op(g, 1), "Relu");
    assert_null(snn_onnx_node_op(g, 2));
    snn_onnx_conv_view cv;
    assert_int_equal(snn_onnx_node_conv(g, 0, &cv), 0);
    assert_int_equal(cv.geom.KH, 2);
    assert_int_equal(cv.geom.OW, 2);
    assert_true(cv.relu);
    assert_floats(cv.w, (const float[4]){1, 0, 0, -1}, 4);
    assert_int_equal(snn_onnx_node_conv(g, 1, &cv), -1);
    size_t nc;
    assert_non_null(snn_onnx_node_const(g, 0, 1, &nc));
    assert_int_equal(nc, 4);
    assert_null(snn_onnx_node_const(g, 0, 0, &nc)); /* the graph input is no constant */
    assert_int_equal(snn_onnx_flops_from(g, 0), snn_onnx_flops(g));
    assert_true(snn_onnx_flops_from(g, 1) < snn_onnx_flops(g));
    const int64_t *d;
    int r;
    float *mid = snn_onnx_node_input(g, 1, work, &d, &r);
    assert_non_null(mid);
    assert_int_equal(r, 4);
    assert_int_equal(d[2] * d[3], 4);
    assert_floats(mid, (const float[4]){3, 0, 0, 1}, 4); /* the last run's Conv output */
    memcpy(mid, (const float[4]){-1, 2, -3, 4}, sizeof(float[4]));
    snn_onnx_run_from(g, 1, y, work);
    assert_floats(y, (const float[4]){-1, 2, -3, 4}, 4);
    free(work);
    snn_onnx_free(g);
    free(buf);
}

/* An operator snnd does not run is rejected naming the file, node index, name and op. */
static void test_graph_unsupported_op(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Foo", &len);
    snn_onnx_graph *g = (snn_onnx_graph *)1;
    snn_err e = {{0}};
    assert_int_equal(snn_onnx_load_buffer(buf, len, "tiny.onnx", &snn_test_allocator, &g, &e),
                     -SNN_ENOTSUP);
    assert_null(g);
    assert_string_equal(e.msg, "tiny.onnx: node 1 (act1): unsupported operator 'Foo'");
    free(buf);
}

/* Bytes that are not a protobuf ModelProto are a format error. */
static void test_graph_garbage(void **st)
{
    (void)st;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34};
    snn_onnx_graph *g;
    snn_err e = {{0}};
    assert_int_equal(snn_onnx_load_buffer(junk, sizeof junk, "junk.onnx", &snn_test_allocator, &g, &e),
                     -SNN_EFORMAT);
    assert_non_null(strstr(e.msg, "junk.onnx: not an ONNX ModelProto"));
}

/* Every allocation failure during loading is reported and leaks nothing. */
static void test_graph_alloc_failures(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Relu", &len);
    for (int k = 1; k < 40; k++) {
        snn_onnx_graph *g;
        snn_err e;
        snn_test_fail_alloc_after(k);
        int rc = snn_onnx_load_buffer(buf, len, "tiny.onnx", &snn_test_allocator, &g, &e);
        snn_test_fail_alloc_after(0);
        if (rc == 0) {
            snn_onnx_free(g);
            break;
        }
        assert_int_equal(rc, -SNN_ENOMEM);
    }
    free(buf);
}

/* Loads buf (pack_tiny bytes, possibly edited) and runs it on the x of test_graph_runs; returns
 * the load's code, y[4] on success. */
static int load_run_tiny(const uint8_t *buf, size_t len, float y[4], snn_err *e)
{
    snn_onnx_graph *g;
    int rc = snn_onnx_load_buffer(buf, len, "tiny.onnx", &snn_test_allocator, &g, e);
    if (rc)
        return rc;
    const float x[9] = {5, 1, 0, 0, 2, 9, 1, 1, 1};
    void *work = malloc(snn_onnx_work_size(g));
    snn_onnx_run(g, x, y, work);
    free(work);
    snn_onnx_free(g);
    return 0;
}

/* Re-saved graphs put weights in Constant nodes (onnx's version converter to opset 13 turns
 * Unsqueeze axes into them; exporters write whole weights so): the tiny graph with W as a
 * Constant node before the Conv loads and computes what it does with W as an initializer, and
 * the Constant leaves no node (the Conv stays node 0). value_ints and value_float attributes are
 * constants too (an Unsqueeze axes input and a Mul factor). */
static void test_graph_constant_nodes(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Relu", &len);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    Onnx__GraphProto *gp = m->graph;
    /* node Constant(value = W) -> W; Conv; Relu */
    Onnx__AttributeProto av;
    onnx__attribute_proto__init(&av);
    av.name = "value";
    av.has_type = 1;
    av.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    av.t = gp->initializer[0];
    Onnx__AttributeProto *avp[1] = {&av};
    char *kout[1] = {"W"};
    Onnx__NodeProto kn;
    onnx__node_proto__init(&kn);
    kn.op_type = "Constant";
    kn.n_output = 1;
    kn.output = kout;
    kn.n_attribute = 1;
    kn.attribute = avp;
    Onnx__NodeProto *nodes[3] = {&kn, gp->node[0], gp->node[1]};
    size_t n_init = gp->n_initializer, n_node = gp->n_node;
    Onnx__NodeProto **old_nodes = gp->node;
    gp->n_initializer = 0;
    gp->n_node = 3;
    gp->node = nodes;
    size_t len2;
    uint8_t *buf2 = pack_model(m, &len2);
    float y[4];
    snn_err e = {{0}};
    assert_int_equal(load_run_tiny(buf2, len2, y, &e), 0);
    assert_floats(y, (const float[4]){3, 0, 0, 1}, 4);
    snn_onnx_graph *g;
    assert_int_equal(snn_onnx_load_buffer(buf2, len2, "tiny.onnx", &snn_test_allocator, &g, &e), 0);
    assert_int_equal(snn_onnx_n_nodes(g), 2);
    assert_string_equal(snn_onnx_node_op(g, 0), "Conv");
    size_t nc;
    assert_non_null(snn_onnx_node_const(g, 0, 1, &nc));
    assert_int_equal(nc, 4);
    snn_onnx_free(g);
    free(buf2);

    /* ... Conv -> Unsqueeze(axes from Constant value_ints [0]) -> Mul(Constant value_float 2):
     * Y [1,1,1,2,2] = 2 conv (no Relu) */
    Onnx__AttributeProto ai, af;
    onnx__attribute_proto__init(&ai);
    ai.name = "value_ints";
    ai.has_type = 1;
    ai.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    int64_t zero = 0;
    ai.n_ints = 1;
    ai.ints = &zero;
    onnx__attribute_proto__init(&af);
    af.name = "value_float";
    af.has_type = 1;
    af.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    af.has_f = 1;
    af.f = 2.0f;
    Onnx__AttributeProto *aip[1] = {&ai}, *afp[1] = {&af};
    char *aout[1] = {"axes"}, *fout[1] = {"two"};
    char *uin[2] = {"C", "axes"}, *uout[1] = {"U"}, *min[2] = {"U", "two"}, *mout[1] = {"Y"};
    Onnx__NodeProto ka, kf, un, mn;
    onnx__node_proto__init(&ka);
    ka.op_type = "Constant";
    ka.n_output = 1;
    ka.output = aout;
    ka.n_attribute = 1;
    ka.attribute = aip;
    kf = ka;
    kf.output = fout;
    kf.attribute = afp;
    onnx__node_proto__init(&un);
    un.op_type = "Unsqueeze";
    un.n_input = 2;
    un.input = uin;
    un.n_output = 1;
    un.output = uout;
    mn = un;
    mn.op_type = "Mul";
    mn.input = min;
    mn.output = mout;
    Onnx__NodeProto *nodes2[5] = {nodes[1], &ka, &un, &kf, &mn};
    gp->n_initializer = n_init;
    gp->n_node = 5;
    gp->node = nodes2;
    m->opset_import[0]->version = 13;
    buf2 = pack_model(m, &len2);
    assert_int_equal(load_run_tiny(buf2, len2, y, &e), 0);
    assert_floats(y, (const float[4]){6, -16, -2, 2}, 4);
    free(buf2);

    gp->n_node = n_node;
    gp->node = old_nodes;
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
}

/* Opsets up to 21 load (none changes a supported operator on float tensors); ReduceMax takes
 * its axes as an int64 initializer input as opset 18 writes it. The tiny graph with
 * Relu -> ReduceMax(axes input [2, 3], keepdims 0) at opset 18 gives max(relu(conv)) = 3; opset
 * 22 is refused naming the supported range. */
static void test_graph_newer_opsets(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Relu", &len);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    Onnx__GraphProto *gp = m->graph;
    float y[4];
    snn_err e = {{0}};
    for (int64_t v = 14; v <= 21; v++) {
        m->opset_import[0]->version = v;
        size_t l2;
        uint8_t *b2 = pack_model(m, &l2);
        assert_int_equal(load_run_tiny(b2, l2, y, &e), 0);
        assert_floats(y, (const float[4]){3, 0, 0, 1}, 4);
        free(b2);
    }
    /* ReduceMax with axes as an input */
    Onnx__TensorProto ax;
    onnx__tensor_proto__init(&ax);
    ax.name = "rax";
    ax.has_data_type = 1;
    ax.data_type = 7;
    int64_t axd[1] = {2}, axv[2] = {2, 3};
    ax.n_dims = 1;
    ax.dims = axd;
    ax.n_int64_data = 2;
    ax.int64_data = axv;
    Onnx__TensorProto *inits[2] = {gp->initializer[0], &ax};
    Onnx__AttributeProto kd;
    onnx__attribute_proto__init(&kd);
    kd.name = "keepdims";
    kd.has_type = 1;
    kd.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    kd.has_i = 1;
    kd.i = 0;
    Onnx__AttributeProto *kdp[1] = {&kd};
    char *rin[2] = {"Y", "rax"}, *rout[1] = {"R"};
    Onnx__NodeProto rn;
    onnx__node_proto__init(&rn);
    rn.op_type = "ReduceMax";
    rn.n_input = 2;
    rn.input = rin;
    rn.n_output = 1;
    rn.output = rout;
    rn.n_attribute = 1;
    rn.attribute = kdp;
    Onnx__NodeProto *nodes[3] = {gp->node[0], gp->node[1], &rn};
    Onnx__TensorProto **old_init = gp->initializer;
    Onnx__NodeProto **old_nodes = gp->node;
    char *old_out = gp->output[0]->name;
    gp->n_initializer = 2;
    gp->initializer = inits;
    gp->n_node = 3;
    gp->node = nodes;
    gp->output[0]->name = "R";
    m->opset_import[0]->version = 18;
    size_t l2;
    uint8_t *b2 = pack_model(m, &l2);
    snn_onnx_graph *g;
    assert_int_equal(snn_onnx_load_buffer(b2, l2, "tiny.onnx", &snn_test_allocator, &g, &e), 0);
    assert_int_equal(snn_onnx_output_numel(g), 1);
    assert_int_equal(snn_onnx_output_rank(g), 2);
    const float x[9] = {5, 1, 0, 0, 2, 9, 1, 1, 1};
    void *work = malloc(snn_onnx_work_size(g));
    snn_onnx_run(g, x, y, work);
    assert_float_equal(y[0], 3.0f, 0.0f);
    free(work);
    snn_onnx_free(g);
    free(b2);
    m->opset_import[0]->version = 22;
    b2 = pack_model(m, &l2);
    assert_int_equal(snn_onnx_load_buffer(b2, l2, "tiny.onnx", &snn_test_allocator, &g, &e),
                     -SNN_ENOTSUP);
    assert_string_equal(e.msg, "tiny.onnx: opset_import: opset 22 (supported 7..21)");
    free(b2);
    gp->n_initializer = 1;
    gp->initializer = old_init;
    gp->n_node = 2;
    gp->node = old_nodes;
    gp->output[0]->name = old_out;
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
}

/* Only the batch dim may be dynamic: a symbolic dim elsewhere (a re-save with a dynamic time
 * axis) is refused naming it, not fixed to 1 (which failed later at some node with a shape
 * error that did not say why). */
static void test_graph_dynamic_inner_dim(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = pack_tiny("Relu", &len);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    assert_non_null(m);
    Onnx__TensorShapeProto__Dimension *dm = m->graph->input[0]->type->tensor_type->shape->dim[2];
    dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    dm->dim_param = "T"; /* the unpacked dim_value 3 has no string to free */
    size_t l2;
    uint8_t *b2 = pack_model(m, &l2);
    dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    dm->dim_value = 3;
    onnx__model_proto__free_unpacked(m, NULL);
    snn_onnx_graph *g = (snn_onnx_graph *)1;
    snn_err e = {{0}};
    assert_int_equal(snn_onnx_load_buffer(b2, l2, "tiny.onnx", &snn_test_allocator, &g, &e),
                     -SNN_ENOTSUP);
    assert_null(g);
    assert_string_equal(e.msg, "tiny.onnx: graph.input 'X': dim 2 is dynamic ('T'); only dim 0 "
                               "(the batch) may be, and it is fixed to 1");
    free(b2);
    free(buf);
}

static int describe_personalized(const char *path)
{
    snn_model *md;
    snn_err e = {{0}};
    int rc = snn_onnx_model_load(path, NULL, &md, &e);
    if (rc)
        fail_msg("%s", e.msg);
    json_t *o = json_object();
    assert_int_equal(snn_model_describe(md, o), 0);
    int p = json_is_true(json_object_get(o, "personalized"));
    json_decref(o);
    snn_model_free(md);
    return p;
}

/* The personalized pDNSMOS is recognised by its weights, not only by a file name starting with
 * "pdnsmos": DNS-Challenge publishes it as DNSMOS/pDNSMOS/sig_bak_ovr.onnx, which got the
 * regular polynomials (silently wrong SIG/BAK/OVRL); and the regular model named pdnsmos*.onnx
 * keeps the regular ones. Other P.835 graphs still go by name. */
static void test_dnsmos_personalized_by_weights(void **st)
{
    (void)st;
    char pd[4096], rd[4096]; /* absolute: the links below point there */
    const char *pdata = snn_test_data_opt("dnsmos/models/pDNSMOS_sig_bak_ovr.onnx");
    if (!pdata)
        skip();
    assert_non_null(realpath(pdata, pd));
    assert_non_null(realpath(snn_test_src("models/zoo/dnsmos-p835.onnx"), rd)); /* the regular one */
    char dir[] = "/tmp/test_onnx_ops_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "%s/sig_bak_ovr.onnx", dir);
    snprintf(p2, sizeof p2, "%s/pdnsmos_regular.onnx", dir);
    assert_int_equal(symlink(pd, p1), 0);
    assert_int_equal(symlink(rd, p2), 0);
    assert_true(describe_personalized(pd));
    assert_true(describe_personalized(p1));
    assert_false(describe_personalized(rd));
    assert_false(describe_personalized(p2));
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* A graph of another DNSMOS input is refused naming its shapes: the 2022 sig.onnx / bak_ovr.onnx
 * take [N,901,161] log-power spectra; the message used to give only the rank and output count. */
static void test_dnsmos_refusal_names_shapes(void **st)
{
    (void)st;
    const char *p = snn_test_data_opt("dnsmos/models/DNSMOS_bak_ovr.onnx");
    if (!p)
        skip();
    snn_model *md = (snn_model *)1;
    snn_err e = {{0}};
    assert_int_equal(snn_onnx_model_load(p, NULL, &md, &e), -SNN_ENOTSUP);
    assert_null(md);
    char want[320];
    snprintf(want, sizeof want, "%s: graph [N,901,161] -> [N,3] is neither DNSMOS P.835 ([N,144160] "
             "-> [N,3]) nor P.808 ([N,900,120] -> [N,1]); 2022 sig/bak_ovr.onnx (log-power input): "
             "use sig_bak_ovr.onnx", p);
    assert_string_equal(e.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_padded),
        cmocka_unit_test(test_conv2d_stride_channels),
        cmocka_unit_test(test_conv1d_pointwise),
        cmocka_unit_test(test_winograd_matches_im2col),
        cmocka_unit_test(test_conv_direct_and_strides),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_transpose_reduce),
        cmocka_unit_test(test_slice_concat),
        cmocka_unit_test(test_graph_runs),
        cmocka_unit_test(test_graph_unsupported_op),
        cmocka_unit_test(test_graph_garbage),
        cmocka_unit_test(test_graph_alloc_failures),
        cmocka_unit_test(test_graph_constant_nodes),
        cmocka_unit_test(test_graph_newer_opsets),
        cmocka_unit_test(test_graph_dynamic_inner_dim),
        cmocka_unit_test(test_dnsmos_personalized_by_weights),
        cmocka_unit_test(test_dnsmos_refusal_names_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
