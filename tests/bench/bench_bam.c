/*
 * bench_bam.c -- milliseconds per window of the binary-activation DNSMOS model (dnsmos-bam),
 * single-threaded, and its inference memory against the same network in float32.
 *
 * Usage: bench_bam [model.safetensors] [windows] [--lines]
 *        (default models/zoo/dnsmos-bam.safetensors, 5 windows)
 * Input: the noise stream of bench_dnsmos.c / ort_dnsmos.mjs; window i = samples
 * [16000 i, 16000 i + 144160). Per window it times, alternating:
 *   scratch    snn_dnsmos_window() with the widest kernels the CPU has (AVX-512: VNNI for the
 *              front end and conv 0, vector row sums or VPERMW lookups for the binary layers)
 *   avx2       the same with at most AVX2 (snn_bam_set_simd(1))
 *   portable   the same with the portable C kernels (snn_bam_set_simd(0))
 * and prints the median process-CPU and wall milliseconds with quartiles. --lines prints one
 * line per call for dnsmos_vs_ort.sh: snnd <mode> <window> <cpu_ms> <wall_ms> <SIG_raw> <BAK_raw>
 * <OVRL_raw>. Memory (bam.h's accounting): weights + the largest input + output maps of a stage.
 */
#include <cblas.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bam.h"
#include "dnsmos.h"
#include "dnsmos_bench.h"
#include "blas.h"

SNN_BLAS_PREINIT

int main(int argc, char **argv)
{
    const char *path = "models/zoo/dnsmos-bam.safetensors";
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
    openblas_set_num_threads(1); /* one thread, as bench_dnsmos */
    snn_model *m;
    snn_err e;
    if (snn_model_load(path, NULL, &m, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    if (strcmp(m->ops->kind, "dnsmos-bam") != 0) {
        fprintf(stderr, "%s: a dnsmos-bam model is needed (kind %s)\n", path, m->ops->kind);
        return 1;
    }
    size_t n = (size_t)(reps + 9) * SNN_DNSMOS_HOP + 1;
    float *x = bench_noise(n), out[6];
    snn_state *st;
    if (m->ops->state_new(m, &st, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    enum { NMODE = 3 };
    static const char *const mode[NMODE] = {"scratch", "avx2", "portable"};
    static const int level[NMODE] = {2, 1, 0};
    double *cpu[NMODE], *wall[NMODE];
    for (int k = 0; k < NMODE; k++) {
        cpu[k] = calloc((size_t)reps, sizeof(double));
        wall[k] = calloc((size_t)reps, sizeof(double));
    }
    snn_dnsmos_window(m, st, x, out); /* warm up */
    for (int w = 0; w < reps; w++)
        for (int k = 0; k < NMODE; k++) {
            snn_bam_set_simd(level[k]);
            double w0 = bench_ms(CLOCK_MONOTONIC), c0 = bench_ms(CLOCK_PROCESS_CPUTIME_ID);
            snn_dnsmos_window(m, st, x + (size_t)w * SNN_DNSMOS_HOP, out);
            cpu[k][w] = bench_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
            wall[k][w] = bench_ms(CLOCK_MONOTONIC) - w0;
            if (lines)
                printf("snnd %s %d %.3f %.3f %.6f %.6f %.6f\n", mode[k], w, cpu[k][w], wall[k][w], out[3],
                       out[4], out[5]);
        }
    snn_bam_set_simd(2);
    if (!lines) {
        json_t *o = json_object();
        m->ops->describe(m, o);
        json_int_t wb = json_integer_value(json_object_get(o, "weight_bytes")),
                   db = json_integer_value(json_object_get(o, "derived_bytes")),
                   pb = json_integer_value(json_object_get(o, "peak_activation_bytes")),
                   fw = json_integer_value(json_object_get(o, "float32_weight_bytes")),
                   fp = json_integer_value(json_object_get(o, "float32_peak_activation_bytes")),
                   fm = json_integer_value(json_object_get(o, "float_macs_per_window"));
        json_decref(o);
        printf("%s: %lld parameters, %.2f G multiply-adds per window in float, %d windows\n", path,
               (long long)m->n_params, fm / 1e9, reps);
        printf("memory: weights %lld B + nibble sums %lld B + peak activations %lld B = %lld B; "
               "float32: %lld + %lld = %lld B; %.1fx smaller (%.1fx without the nibble sums)\n",
               (long long)wb, (long long)db, (long long)pb, (long long)(wb + db + pb), (long long)fw,
               (long long)fp, (long long)(fw + fp), (double)(fw + fp) / (double)(wb + db + pb),
               (double)(fw + fp) / (double)(wb + pb));
        for (int k = 0; k < NMODE; k++) {
            qsort(cpu[k], (size_t)reps, sizeof(double), bench_cmp);
            qsort(wall[k], (size_t)reps, sizeof(double), bench_cmp);
            printf("%-9s median of %d: %6.2f ms CPU (q1 %.2f, q3 %.2f), %6.2f ms wall per window\n", mode[k],
                   reps, cpu[k][reps / 2], cpu[k][reps / 4], cpu[k][(3 * reps) / 4], wall[k][reps / 2]);
        }
    }
    for (int k = 0; k < NMODE; k++) {
        free(cpu[k]);
        free(wall[k]);
    }
    m->ops->state_free(m, st);
    snn_model_free(m);
    free(x);
    return 0;
}
