/*
 * bam.h -- a binary-activation, 8-bit-weight DNSMOS network (Nilsson, Miccini,
 * Laroche, Piechowiak, Zenke 2024), distilled from DNSMOS P.835 by
 * models/train/train_dnsmos_bam.py and run as the "dnsmos-bam" model (dnsmos.c
 * handles windows and streams; this file scores one window).
 *
 * File: safetensors, metadata "format": "snnd-dnsmos-bam", "version": "1",
 * "widths": "C0,...,C6" (multiples of 8 up to 128, DNSMOS's own widths being 128,64,64,32,32,32,64;
 * the AVX-512 kernels cover conv 0 with 16, 32, 64 or 128 outputs and binary layers with 16, 32,
 * 64 or 128 inputs and 16 or a multiple of 32 outputs; the AVX2 ones layers of up to 64
 * channels; binary layers with 64 or 128 inputs and a multiple of 32 outputs have a portable
 * nibble-sum kernel; other shapes run the plain portable C),
 * "pool_after": "3,4,5", "x_scale": "16", "head": "H0,H1", and optionally "readout": "rate"
 * (the default), "max" or "rate+max".
 * Tensors (I8 = int8, F32 = float32):
 *   stft.re, stft.im          I8  [161, 320]   the teacher's STFT kernels, per row
 *   stft.re_scale, im_scale   F32 [161]        K[k][n] ~= q[k][n] * scale[k]
 *   conv<l>.w                 I8  [C_l, C_{l-1}, 3, 3]   (C_{-1} = 1)
 *   conv<l>.thr               F32 [C_l]         batch norm folded into a threshold
 *   conv<l>.dir               I8  [C_l]         +1 or -1
 *   fc<j>.w                   I8  [out, in]     dense head: R -> H0 -> H1 -> 3, H <= 256,
 *                                               R = C6 (2 C6 for readout "rate+max")
 *   fc<j>.scale, fc<j>.b      F32 [out]
 *   out.mean, out.std         F32 [3]
 *   readout.scale, .bias      F32 [C_6]         only with readout "max" or "rate+max"
 *   readout.floor             F32 [C_6]         optional, only with those read-outs
 *
 * Inference, for a window x[144160] of samples in [-1, 1]:
 *   PCM       p[n] = clamp(round(32768 x[n]), -32768, 32767)
 *   frames    t = 0 .. 899 cover p[160 t .. 160 t + 320)
 *   STFT      R[t][k] = (float)(sum_n p[160 t + n] re[k][n]) * re_scale[k] / 32768   (k < 161;
 *             the sum is an exact integer), I[t][k] likewise, P = R^2 + I^2 (float32)
 *   features  q[t][k] = round(x_scale * log10 P) clamped to [-128, 127], computed exactly as
 *             q = #{j in 0..254 : P > bound_j} - 128, bound_j = (float)10^((j - 127.5) / x_scale)
 *   conv l    S_c(t, k) = sum_{i, dt, dk} w[c][i][dt][dk] a_i(t + dt - 1, k + dk - 1)
 *             (zero outside the map; a = q for l = 0, else the previous bit map):
 *             an integer; no multiplications for l >= 1, where a is 0 or 1
 *   bits      b_c(t, k) = [dir_c (S_c(t, k) - thr_c) > 0]
 *   pool      after conv 3, 4, 5: 2x2 max pooling, stride 2, odd edges dropped
 *             (of bits: OR); 900 x 161 -> 450 x 80 -> 225 x 40 -> 112 x 20
 *   read-out  readout "rate": r_c = (number of set b_c of the last conv) / (112 * 20);
 *             readout "max":  r_c = max over the 112 x 20 positions of dir_c S_c (the last
 *             conv's integer sums; its bits are not formed) * readout.scale_c + readout.bias_c,
 *             the teacher's own read-out, a global max over its last map; with readout.floor,
 *             r_c = max(that, readout.floor_c) (a floor of 0 is the max of a ReLU map, exactly the
 *             teacher's read-out: a channel silent over the whole window reads 0). An integer max and
 *             one multiply-add per channel: the last conv's map is never stored either way;
 *             readout "rate+max": both, r = (rates, maxima), 2 C6 values.
 *   head      h = relu(fc0.w r * fc0.scale + fc0.b), h' = relu(fc1 ...), y = fc2 ...
 *   raw       raw_j = y_j * out.std_j + out.mean_j      (SIG, BAK, OVRL before the
 *             P.835 polynomials of dnsmos.h)
 * The kernel keeps each bit map packed (C/8 bytes per position) and, on the binary layers,
 * adds precomputed sums of 4 weights per nibble of input bits (built per layer, for AVX-512 per
 * 32 outputs: at most 288 KiB of tables for 128 inputs).
 */
#ifndef SNN_BAM_H
#define SNN_BAM_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"
#include "safetensors.h"

#define SNN_BAM_NCONV 7

typedef struct snn_bam snn_bam;

/* What the network holds and needs, in bytes, against the same network in float32
 * (the paper's comparison: weights + the largest pair of maps a layer reads and writes). */
typedef struct snn_bam_memory {
    size_t weights;         /* int8 weights + float per-channel constants */
    size_t derived;         /* nibble sums built per layer in the work area */
    size_t peak_act;        /* largest input + output maps of one stage, packed */
    size_t f32_weights;     /* the same parameters as float32 */
    size_t f32_peak_act;    /* the same stage maps as float32 */
    uint64_t params;
    uint64_t f32_macs;      /* multiply-adds of the float network per window */
} snn_bam_memory;

/* Builds the network from an open safetensors file whose metadata format is
 * "snnd-dnsmos-bam". Every tensor is checked (shape, dtype, dir in {-1, 1}, no
 * NaN); errors name the file and the tensor. */
int snn_bam_load(snn_st *st, const char *path, const snn_allocator *a, snn_bam **out, snn_err *err);

void snn_bam_free(snn_bam *n);

/* Bytes of scratch snn_bam_run() needs. */
size_t snn_bam_work_size(const snn_bam *n);

/* Scores one window x[144160] (samples in [-1, 1]) into raw[3] (SIG, BAK, OVRL
 * raw) with the equations above; work has snn_bam_work_size() bytes (any
 * alignment). Allocates nothing. */
void snn_bam_run(const snn_bam *n, const float *x, float raw[3], void *work);

/* Fills m. */
void snn_bam_memory_of(const snn_bam *n, snn_bam_memory *m);

/* Which kernels snn_bam_run() may use, for tests and benchmarks (all give the same bits):
 * 0 the portable C, 1 up to AVX2 + BMI2, 2 (the default) also AVX-512 (F, BW, VL, VNNI) for
 * the front end and conv 0; each level picks by CPU and falls back to the one below. */
void snn_bam_set_simd(int on);

/* Parameters (weights, thresholds, scales, biases). */
uint64_t snn_bam_params(const snn_bam *n);

/* The head's read-out: "rate", "max" or "rate+max" (metadata "readout"). */
const char *snn_bam_readout(const snn_bam *n);

/* 1 when the file floors its maxima (tensor readout.floor), else 0. */
int snn_bam_readout_floor(const snn_bam *n);

#endif
