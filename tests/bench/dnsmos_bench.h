/*
 * dnsmos_bench.h -- what bench_dnsmos.c and bench_bam.c share: clocks, sorting, and the
 * noise stream that ort_dnsmos.mjs reproduces (same LCG, same float rounding).
 */
#ifndef SNN_DNSMOS_BENCH_H
#define SNN_DNSMOS_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Milliseconds on clock id. */
static inline double bench_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* qsort comparator for doubles. */
static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A malloc'd stream of n samples: ((s >> 8) / 2^24 - 0.5) * 0.2 of the LCG s = 1664525 s +
 * 1013904223 from s = 1, each step rounded to float (ort_dnsmos.mjs makes the same). */
static inline float *bench_noise(size_t n)
{
    float *x = malloc(n * sizeof *x);
    uint32_t s = 1;
    for (size_t i = 0; x && i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * 0.2f;
    }
    return x;
}

#endif
