/*
 * onnx_ops.h -- the numeric kernels behind the ONNX operators snnd runs.
 *
 * The hot loops are compiled for x86-64-v4 (AVX-512), v3 (AVX2, FMA) and the baseline, and the
 * CPU picks one at load time (GCC/Clang target_clones; other targets get the baseline only).
 * Every kernel works on dense float32 tensors in C (row-major) order and
 * allocates nothing: callers pass the output buffer and, for convolution, a
 * scratch buffer. Shapes are given as int64 dims as in ONNX. Batch size N is
 * handled by the callers' loops where it matters (the DNSMOS graphs run N = 1).
 *
 * Equations (x input, y output, w weights, b bias):
 *
 *   Conv (2-D, NCHW, group 1):
 *     y[co][oy][ox] = b[co] + sum_{ci,ky,kx} w[co][ci][ky][kx]
 *                      * x[ci][oy*sh - pt + ky*dh][ox*sw - pl + kx*dw]
 *     (x outside the image is 0; pt/pl = top/left padding)
 *     OH = (H + pt + pb - dh*(KH-1) - 1) / sh + 1, likewise OW.
 *     Computed as im2col + sgemm: col[(ci*KH+ky)*KW+kx][p] is the input under
 *     tap (ci,ky,kx) for output position p; Y[Co][P] = W[Co][K] * col[K][P].
 *     A 1-D Conv (N,C,L) is the 2-D one with H = 1. A 3x3 stride-1 Conv of one input
 *     channel is computed directly (eight outputs at a time, no im2col).
 *   MaxPool (2-D, no padding): y[c][oy][ox] = max_{ky,kx} x[c][oy*sh+ky][ox*sw+kx]
 *   ReduceMax over a set of axes: max of x over those axes.
 *   MatMul (2-D): y[i][j] = sum_k a[i][k] b[k][j].
 *   Elementwise binary ops broadcast numpy-style (trailing dims aligned, a dim
 *   of 1 repeats): Add, Mul, Div, Max, Pow, Sub.
 *   Unary: Relu max(x, 0), Sqrt, Log (natural), Exp, Sigmoid 1/(1+e^-x), Tanh.
 *   Transpose: y[i_perm[0]]...[i_perm[r-1]] = x[i_0]...[i_{r-1}].
 */
#ifndef SNN_ONNX_OPS_H
#define SNN_ONNX_OPS_H

#include <stddef.h>
#include <stdint.h>

#define SNN_ONNX_MAX_RANK 8

/* Convolution geometry (2-D; a 1-D Conv uses H = KH = 1, sh = dh = 1, pads 0). */
typedef struct snn_conv2d {
    int64_t C, H, W;        /* input channels and size */
    int64_t Co, KH, KW;     /* output channels, kernel size */
    int64_t sh, sw, dh, dw; /* strides, dilations */
    int64_t pt, pl, pb, pr; /* padding: top, left, bottom, right */
    int64_t OH, OW;         /* output size (snn_conv2d_init fills them) */
    int64_t xcs, ycs;       /* channel strides of x and y in floats; 0 = dense (H*W, OH*OW) */
} snn_conv2d;

/* Fills c->OH and c->OW from the other fields. Returns 0, or -1 when the
 * geometry is impossible (non-positive sizes or strides, empty output). */
int snn_conv2d_init(snn_conv2d *c);

/* Floats of scratch snn_conv2d_run needs (0 when the kernel is 1x1 with
 * stride 1 and no padding: the input is then used as the column matrix). */
size_t snn_conv2d_scratch(const snn_conv2d *c);

/* One image: x[C][H][W], w[Co][C][KH][KW], b[Co] or NULL -> y[Co][OH][OW]
 * (channel ci of x at x + ci * xcs, channel co of y at y + co * ycs when those are set);
 * relu != 0 applies max(y, 0) (a fused Relu). scratch holds
 * snn_conv2d_scratch(c) floats. Uses cblas_sgemm. */
void snn_conv2d_run(const snn_conv2d *c, const float *x, const float *w,
                    const float *b, int relu, float *y, float *scratch);

/*
 * Winograd F(4x4, 3x3) for 3x3 convolutions with stride 1 and dilation 1
 * (Lavin & Gray 2016): the output is cut into 4x4 tiles; with the 6x6 input
 * patch d of a tile, per channel pair
 *     Y = A^T [ sum_ci (G g G^T) .* (B^T d B) ] A
 * where g is the 3x3 kernel and B^T (6x6), G (6x3), A^T (4x6) are the
 * matrices for interpolation points 0, +-1, +-2 and infinity (written out in
 * onnx_ops.c). The sum over input channels, for each of the 36 positions xi
 * of the 6x6 transformed tile, is one sgemm U[xi] (Co x C) * V[xi] (C x tiles):
 * 36 * Co * C multiply-adds per 16 outputs instead of 9 * 16 * Co * C.
 * Same result as snn_conv2d_run up to float rounding (~1e-6 relative). Where the CPU has
 * AVX-512 (GCC builds), the output transform and the last step of the input transform work on
 * 16 tiles per vector instead of 8: the same operations, so the same results
 * (snn_winograd_set_wide(0) keeps 8, for tests).
 */

/* 0: the Winograd transforms use 8-tile vectors even where AVX-512 is there; 1 (default): 16. */
void snn_winograd_set_wide(int on);

/* 1 if c is a 3x3, stride-1, dilation-1 convolution Winograd applies to. */
int snn_winograd_ok(const snn_conv2d *c);

/* Floats of transformed weights: 36 * Co * C, and where snn_amx_ok() the weights packed for
 * the tiles after them (snn_amx_conv_weights_size / 2 + 16). */
size_t snn_winograd_weights_size(const snn_conv2d *c);

/* Transforms w[Co][C][3][3] into u[36][Co][C] (done once at load time). */
void snn_winograd_weights(const snn_conv2d *c, const float *w, float *u);

/* Floats of scratch snn_conv2d_winograd needs. */
size_t snn_winograd_scratch(const snn_conv2d *c);

/* As snn_conv2d_run, with weights transformed by snn_winograd_weights. Where the process can
 * use AMX tiles (snn_amx_use(), amx.h: Intel CPUs with AMX-BF16, e.g. Sapphire Rapids), the
 * convolution runs there instead, direct (not Winograd) in split bfloat16: ~2^-16 relative
 * per product, DNSMOS P.835's outputs within ~1e-5 of ONNX Runtime's; about twice as fast as
 * Winograd on AVX-512 on such a CPU (tests/bench/README.md). */
void snn_conv2d_winograd(const snn_conv2d *c, const float *x, const float *u,
                         const float *b, int relu, float *y, float *scratch);

/* Max pooling of one image x[C][H][W] -> y[C][OH][OW], kernel KH x KW,
 * strides sh, sw, no padding, floor mode: OH = (H - KH) / sh + 1. */
void snn_maxpool2d(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH,
                   int64_t KW, int64_t sh, int64_t sw, float *y);

/* y[M][N] = a[M][K] * b[K][N] (cblas_sgemm). */
void snn_matmul(const float *a, const float *b, float *y, int64_t M, int64_t K,
                int64_t N);

/* Elementwise binary operators. */
typedef enum snn_binop {
    SNN_BIN_ADD, SNN_BIN_SUB, SNN_BIN_MUL, SNN_BIN_DIV, SNN_BIN_MAX, SNN_BIN_POW,
} snn_binop;

/* Computes the broadcast shape of a (ra dims) and b (rb dims) into out
 * (rank max(ra, rb), written to *rout). Returns 0, or -1 if they do not
 * broadcast. */
int snn_broadcast_shape(const int64_t *da, int ra, const int64_t *db, int rb,
                        int64_t *out, int *rout);

/* y = a op b with numpy broadcasting; y has shape dy (rank ry) as computed by
 * snn_broadcast_shape. y may alias a or b when it has the same shape. */
void snn_binary(snn_binop op, const float *a, const int64_t *da, int ra,
                const float *b, const int64_t *db, int rb, float *y,
                const int64_t *dy, int ry);

typedef enum snn_unop {
    SNN_UN_RELU, SNN_UN_SQRT, SNN_UN_LOG, SNN_UN_EXP, SNN_UN_SIGMOID, SNN_UN_TANH,
    SNN_UN_NEG, SNN_UN_ABS,
} snn_unop;

/* y[i] = op(x[i]) for n elements; y may alias x. */
void snn_unary(snn_unop op, const float *x, float *y, size_t n);

/* Transposes x (shape d, rank r) by perm into y (shape d[perm[i]]). The
 * element size is esize bytes (4 for float, 8 for int64). */
void snn_transpose(const void *x, const int64_t *d, int r, const int64_t *perm,
                   void *y, size_t esize);

/* Max of x (shape d, rank r) over the axes with reduce[axis] != 0; y has the
 * shape of x with those axes removed (or kept as 1: same element order). */
void snn_reduce_max(const float *x, const int64_t *d, int r, const int *reduce,
                    float *y);

/* Strided slice: for each axis, y takes x indices start[a], start[a]+step[a],
 * ... (count yd[a] of them; step may be negative). */
void snn_slice(const void *x, const int64_t *d, int r, const int64_t *start,
               const int64_t *step, void *y, const int64_t *yd, size_t esize);

/* Concatenates n tensors of rank r along axis: shapes ds[i] differ only on
 * that axis; y has the summed extent. */
void snn_concat(const void *const *xs, const int64_t *const *ds, int n, int r,
                int axis, void *y, size_t esize);

#endif
