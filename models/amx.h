/*
 * amx.h -- float32 matrix products on Intel AMX tiles, in split bfloat16.
 *
 * C (M x N) = A (M x K) B (K x N), all float32 in memory (here: the channel sums of a
 * convolution). Each operand is split into two
 * bfloat16 parts (round to nearest even):
 *     x = x_h + x_l + r,   x_h = bf16(x),  x_l = bf16(x - x_h),  |r| <= 2^-17 |x|
 * and the product is the sum of three tile products,
 *     C = A_h B_h + A_h B_l + A_l B_h
 * each product of bf16 parts exact in float32, the sums in float32 (TDPBF16PS; denormal
 * inputs and outputs flush to zero). Dropping A_l B_l and r leaves a relative error of about
 * 2^-16 per product, where plain bf16 operands (A_h B_h alone) leave 2^-8: the DNSMOS P.835
 * Winograd channel sums in plain bf16 moved the network's outputs by 2e-2, over the 1e-2
 * conformance tolerance (tests/bench/README.md).
 * Three bf16 tile products per multiply-add still run several times faster than one float32
 * FMA on AVX-512 (Sapphire Rapids: 16 x 16 x 32 bf16 multiply-adds per tile instruction).
 *
 * A (weights) is packed once, at load time, as tiles [M/16][K/32] of 16 rows x 32 columns
 * (uint16_t bf16 values; the hi parts, then the lo parts), M rounded up to 16 and K to 32,
 * the padding zero. B is converted as it is used (see snn_amx_conv3x3).
 * Only GCC builds for x86-64 Linux have the tile code; elsewhere snn_amx_ok() is 0.
 */
#ifndef SNN_AMX_H
#define SNN_AMX_H

#include <stddef.h>
#include <stdint.h>

/* 1 if this process can run the tile code: the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16,
 * Linux granted the tile state (arch_prctl ARCH_REQ_XCOMP_PERM) and the environment does not
 * set SNN_AMX=0 (for tools that do not know the tile instructions, e.g. valgrind). Asked once
 * per process, thread-safe; the answer must not change after weights were packed. */
int snn_amx_ok(void);

/* 0: snn_amx_use() answers 0 even where the CPU has AMX (tests and benchmarks compare both
 * paths); 1: the default. Process-wide; set it before the calls it should affect. */
void snn_amx_set(int on);

/* snn_amx_ok() and not switched off by snn_amx_set(0). */
int snn_amx_use(void);

/*
 * 3x3 convolution, stride 1, no dilation, of x[C][H][W] (channel stride xcs floats) into
 * y[Co][OH][OW] (channel stride ycs floats), top and left padding pt, pl (zeros):
 *     y[co][oy][ox] = b[co] + sum_c sum_{dy,dx in 0..2} w[co][c][dy][dx] x[c][oy-pt+dy][ox-pl+dx]
 * then max(., 0) if relu; b may be NULL (0). Direct, not Winograd: per tap (dy, dx) one
 * product of the tap's weights (Co x C, split as above) with the input channels at the tap's
 * shifted columns, accumulated in the tiles over all 9 taps and all channels, each sum split
 * as in the equation at the top. Each input row is converted once to split bf16, channel
 * pairs interleaved, into a ring of the 3 rows an output row reads, as 3 copies shifted by
 * 0, 1, 2 columns so that every tile row starts on a 64-byte line.
 */

/* uint16_t elements of packed weights: 9 x 2 round16(Co) round32(C). */
size_t snn_amx_conv_weights_size(int64_t Co, int64_t C);

/* Packs w[Co][C][3][3] for snn_amx_conv3x3 (portable C, any CPU). */
void snn_amx_conv_weights(const float *w, int64_t Co, int64_t C, uint16_t *pw);

/* uint16_t elements of scratch snn_amx_conv3x3 needs: 3 rows x 3 shifts x (hi, lo) of
 * round32(C) / 2 x round16(OW) pairs, and 64 bytes to align. */
size_t snn_amx_conv_scratch(int64_t C, int64_t OW);

/* The convolution above, with weights packed by snn_amx_conv_weights. Only when
 * snn_amx_ok(); allocates nothing. */
void snn_amx_conv3x3(const float *x, int64_t xcs, int64_t C, int64_t H, int64_t W, int64_t pt,
                     int64_t pl, const uint16_t *pw, const float *b, int relu, int64_t Co,
                     int64_t OH, int64_t OW, int64_t ycs, float *y, uint16_t *scratch);

#endif
