/*
 * bench_dnsmos.c -- milliseconds per DNSMOS P.835 window, single-threaded.
 *
 * Usage: bench_dnsmos [model.onnx] [windows]   (default models/zoo/dnsmos-p835.onnx, 5)
 * Runs the graph on a deterministic noise window with 1 OpenBLAS thread, alternating the
 * Winograd and the im2col+sgemm convolution paths, and prints for each the median wall-clock
 * and thread-CPU milliseconds per window (CPU time is steadier on a shared machine) and the
 * effective GFLOP/s (direct-convolution FLOPs / time).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnx.h"

static double ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "models/zoo/dnsmos-p835.onnx";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 1000)
        reps = 5;
    openblas_set_num_threads(1);
    snn_onnx_graph *g;
    snn_err e;
    if (snn_onnx_load(path, NULL, &g, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    size_t n = snn_onnx_input_numel(g);
    float *x = malloc(n * sizeof *x), out[16];
    uint32_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * 0.2f;
    }
    void *work = malloc(snn_onnx_work_size(g));
    double *wall[2], *cpu[2];
    for (int k = 0; k < 2; k++) {
        wall[k] = calloc((size_t)reps, sizeof(double));
        cpu[k] = calloc((size_t)reps, sizeof(double));
    }
    snn_onnx_run(g, x, out, work); /* warm up */
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            snn_onnx_set_fast_conv(g, k == 0);
            double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_THREAD_CPUTIME_ID);
            snn_onnx_run(g, x, out, work);
            cpu[k][r] = ms(CLOCK_THREAD_CPUTIME_ID) - c0;
            wall[k][r] = ms(CLOCK_MONOTONIC) - w0;
        }
    }
    printf("%s: %.2f GFLOP per window (direct convolution), work buffer %zu MB\n", path,
           snn_onnx_flops(g) / 1e9, snn_onnx_work_size(g) >> 20);
    for (int k = 0; k < 2; k++) {
        qsort(wall[k], (size_t)reps, sizeof(double), cmp);
        qsort(cpu[k], (size_t)reps, sizeof(double), cmp);
        double c = cpu[k][reps / 2];
        printf("%-16s median of %d: %7.1f ms wall, %7.1f ms CPU per window (%.1f GFLOP/s effective)\n",
               k == 0 ? "winograd" : "im2col+sgemm", reps, wall[k][reps / 2], c,
               snn_onnx_flops(g) / 1e6 / c);
        free(wall[k]);
        free(cpu[k]);
    }
    free(x);
    free(work);
    snn_onnx_free(g);
    return 0;
}
