/*
 * bench_dnsmos.c -- milliseconds per DNSMOS P.835 window, single-threaded.
 *
 * Usage: bench_dnsmos [model.onnx] [windows] [--lines]
 *        (default models/zoo/dnsmos-p835.onnx, 5 windows)
 * Input: a deterministic noise stream (LCG, amplitude 0.1; ort_dnsmos.mjs makes the same one) of
 * windows + 9 seconds and one sample more; window i is samples [16000 i, 16000 i + 144160).
 * With 1 OpenBLAS thread it times, alternating, per window:
 *   winograd   the window from scratch (snn_dnsmos_window): the four full-resolution
 *              convolutions in chunks of frames (snn_dnsmos_set_chunked), Winograd 3x3, or
 *              where the CPU has AMX-BF16 the direct split-bf16 tile convolution (amx.h)
 *   noamx      (only where AMX is there) the same with snn_amx_set(0): Winograd on AVX-512
 *   graph      the same through the whole ONNX graph, node by node (not with --lines)
 *   im2col     the graph with im2col + sgemm convolutions (not with --lines)
 *   stream     the step() of a stream with reuse that outputs window i: one new second of
 *              convolutions, the window's edges and the tail (dnsmos.c); window 0's step also
 *              needs the 9 steps before it, reported apart as stream-warmup
 * and prints the median wall-clock and process-CPU milliseconds (CPU time is steadier on a
 * shared machine). --lines prints one line per timed call instead, for dnsmos_vs_ort.sh:
 *   snnd <mode> <window> <cpu_ms> <wall_ms> <SIG_raw> <BAK_raw> <OVRL_raw>
 * with mode scratch (winograd above), noamx or stream.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsmos.h"
#include "dnsmos_bench.h"
#include "onnx.h"
#include "amx.h"
#include "blas.h"

SNN_BLAS_PREINIT

enum { M_WINO, M_NOAMX, M_GRAPH, M_IM2COL, M_STREAM, NMODE };
static const char *const mode_name[NMODE] = {"winograd", "noamx", "graph", "im2col", "stream"};

int main(int argc, char **argv)
{
    const char *path = "models/zoo/dnsmos-p835.onnx";
    int reps = 5, lines = 0, npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lines") == 0)
            lines = 1;
        else if (npos++ == 0)
            path = argv[i];
        else
            reps = atoi(argv[i]);
    }
    if (reps < 1 || reps > 1000)
        reps = 5;
    openblas_set_num_threads(1);
    snn_model *m;
    snn_err e;
    if (snn_onnx_model_load(path, NULL, &m, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    if (snn_dnsmos_is_p808(m)) {
        fprintf(stderr, "%s: a P.835 model is needed\n", path);
        return 1;
    }
    size_t n = (size_t)(reps + 9) * SNN_DNSMOS_HOP + 1;
    float *x = bench_noise(n), out[6];
    snn_state *scratch_st, *stream_st;
    if (m->ops->state_new(m, &scratch_st, &e) || m->ops->state_new(m, &stream_st, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double *wall[NMODE], *cpu[NMODE];
    for (int k = 0; k < NMODE; k++) {
        wall[k] = calloc((size_t)reps, sizeof(double));
        cpu[k] = calloc((size_t)reps, sizeof(double));
    }
    snn_dnsmos_window(m, scratch_st, x, out); /* warm up */
    snn_onnx_graph *g = snn_dnsmos_graph(m);
    double warm_cpu = 0, warm_wall = 0;
    int w = 0;
    for (size_t at = 0; at + SNN_DNSMOS_HOP <= n && w < reps; at += SNN_DNSMOS_HOP) {
        snn_step_info info;
        double w0 = bench_ms(CLOCK_MONOTONIC), c0 = bench_ms(CLOCK_PROCESS_CPUTIME_ID);
        m->ops->step(m, stream_st, x + at, out, &info);
        double c = bench_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, wl = bench_ms(CLOCK_MONOTONIC) - w0;
        if (!info.has_output) {
            warm_cpu += c;
            warm_wall += wl;
            continue;
        }
        cpu[M_STREAM][w] = c;
        wall[M_STREAM][w] = wl;
        if (lines)
            printf("snnd stream %d %.3f %.3f %.6f %.6f %.6f\n", w, c, wl, out[3], out[4], out[5]);
        for (int k = M_WINO; k <= M_IM2COL; k++) {
            if (lines && k > M_NOAMX)
                break;
            if (k == M_NOAMX && !snn_amx_ok())
                continue;
            snn_amx_set(k != M_NOAMX);
            snn_onnx_set_fast_conv(g, k != M_IM2COL);
            snn_dnsmos_set_chunked(scratch_st, k <= M_NOAMX);
            w0 = bench_ms(CLOCK_MONOTONIC);
            c0 = bench_ms(CLOCK_PROCESS_CPUTIME_ID);
            snn_dnsmos_window(m, scratch_st, x + (size_t)w * SNN_DNSMOS_HOP, out);
            cpu[k][w] = bench_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
            wall[k][w] = bench_ms(CLOCK_MONOTONIC) - w0;
            if (lines)
                printf("snnd %s %d %.3f %.3f %.6f %.6f %.6f\n", k == M_WINO ? "scratch" : "noamx", w,
                       cpu[k][w], wall[k][w], out[3], out[4], out[5]);
        }
        snn_amx_set(1);
        snn_onnx_set_fast_conv(g, 1);
        w++;
    }
    if (lines) {
        printf("snnd stream-warmup 9 %.3f %.3f\n", warm_cpu, warm_wall);
    } else {
        printf("%s: %.2f GFLOP per window from scratch, %d windows\n", path,
               snn_onnx_flops(g) / 1e9, reps);
        for (int k = 0; k < NMODE; k++) {
            if (k == M_NOAMX && !snn_amx_ok())
                continue;
            qsort(wall[k], (size_t)reps, sizeof(double), bench_cmp);
            qsort(cpu[k], (size_t)reps, sizeof(double), bench_cmp);
            printf("%-10s median of %d: %7.1f ms wall, %7.1f ms CPU per window (min %.1f, max %.1f)\n",
                   mode_name[k], reps, wall[k][reps / 2], cpu[k][reps / 2], cpu[k][0],
                   cpu[k][reps - 1]);
        }
        printf("stream warm-up (9 steps before window 0): %.1f ms CPU\n", warm_cpu);
    }
    for (int k = 0; k < NMODE; k++) {
        free(wall[k]);
        free(cpu[k]);
    }
    m->ops->state_free(m, scratch_st);
    m->ops->state_free(m, stream_st);
    snn_model_free(m);
    free(x);
    return 0;
}
