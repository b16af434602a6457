/*
 * test_dnsmos_windows.c -- which DNSMOS windows make a clip's score (dnsmos.h): every window is
 * pushed, but the clip mean, like dnsmos_local.py's, leaves out the windows whose cut
 * audio[int(i * 16000) : int((i + 9.01) * 16000)] rounds to one sample short.
 *
 * The list of skipped windows below was printed by CPython 3.11 (IEEE doubles, as numpy's
 * dnsmos_local.py computes them):
 *   [i for i in range(400) if int((i + 9.01) * 16000) - int(i * 16000) < int(9.01 * 16000)]
 * The model is the shipped dnsmos-bam (models/zoo; its windows and clip means are those of every
 * DNSMOS model, dnsmos.c) on synthetic audio, so no reference data is needed.
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

#include "dnsmos.h"
#include "model.h"
#include "session.h"
#include "testutil.h"

static const int py_skipped[] = {7,  8,  9,  10, 11, 12, 13,  14,  15,  16,  17,
                                 18, 19, 20, 21, 22, 23, 119, 120, 121, 122};

static snn_model *bam;

static int setup(void **st)
{
    (void)st;
    snn_err e;
    if (snn_model_load(snn_test_src("models/zoo/dnsmos-bam.safetensors"), NULL, &bam, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    snn_model_free(bam);
    return 0;
}

/* Speech-like test audio: a few tones whose loudness and pitch change every 0.3 s, plus noise
 * (deterministic), so that windows differ from one another. */
static float *make_audio(size_t n, uint32_t seed)
{
    float *x = malloc(n * sizeof *x);
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        size_t seg = i / 4800;
        double f = 120.0 + 40.0 * (double)(seg % 7);
        double amp = 0.05 + 0.04 * (double)((seg * 5) % 9);
        s = s * 1664525u + 1013904223u;
        double noise = ((double)(s >> 8) / (double)(1u << 24) - 0.5) * 0.02;
        double t = (double)i / 16000.0;
        x[i] = (float)(amp * (sin(2 * M_PI * f * t) + 0.5 * sin(2 * M_PI * 3 * f * t)) + noise);
    }
    return x;
}

/* The predicate agrees with Python on the first 400 windows. */
static void test_skipped_windows_match_python(void **st)
{
    (void)st;
    size_t k = 0, n = sizeof py_skipped / sizeof *py_skipped;
    for (int i = 0; i < 400; i++) {
        int skipped = k < n && py_skipped[k] == i;
        if (skipped)
            k++;
        if (snn_dnsmos_local_scores((uint64_t)i) == skipped)
            fail_msg("window %d: snnd says %s, dnsmos_local.py %s", i, skipped ? "scored" : "skipped",
                     skipped ? "skipped" : "scored");
    }
    assert_int_equal(k, n);
}

typedef struct {
    float v[32][6];
    int outside[32];
    int n;
    float dec[6];
    int n_dec;
} outs;

static void collect(void *ctx, const snn_output *o)
{
    outs *c = ctx;
    if (o->type == SNN_OUT_PREDICTION && c->n < 32) {
        memcpy(c->v[c->n], o->values, 6 * sizeof(float));
        c->outside[c->n] = o->info.outside_decision;
        c->n++;
    } else if (o->type == SNN_OUT_DECISION) {
        memcpy(c->dec, o->values, 6 * sizeof(float));
        c->n_dec++;
    }
}

/* A 20.5 s stream pushes windows 0..10, one per second; 7..10 are marked outside the decision,
 * and the decision at close is the mean of windows 0..6 (dnsmos_local.py's clip score), not of
 * all eleven. */
static void test_stream_mean_leaves_out_skipped_windows(void **st)
{
    (void)st;
    size_t n = 328000;
    float *x = make_audio(n, 7);
    snn_session *s;
    snn_err e;
    assert_int_equal(snn_session_new(bam, NULL, NULL, &s, &e), 0);
    static outs got;
    memset(&got, 0, sizeof got);
    for (size_t off = 0; off < n; off += 320)
        assert_int_equal(snn_session_audio(s, x + off, n - off < 320 ? n - off : 320, 16000, collect, &got, &e), 0);
    assert_int_equal(snn_session_finish(s, collect, &got, &e), 0);
    snn_session_free(s);
    assert_int_equal(got.n, 11);
    assert_int_equal(got.n_dec, 1);
    double in[6] = {0}, all[6] = {0};
    for (int w = 0; w < 11; w++) {
        assert_int_equal(got.outside[w], w >= 7);
        for (int k = 0; k < 6; k++) {
            all[k] += got.v[w][k] / 11.0;
            if (w < 7)
                in[k] += got.v[w][k] / 7.0;
        }
    }
    double apart = 0;
    for (int k = 0; k < 6; k++) {
        if (fabs(got.dec[k] - in[k]) > 1e-5)
            fail_msg("decision output %d: %.6f, mean of windows 0..6 %.6f", k, got.dec[k], in[k]);
        apart = fmax(apart, fabs(in[k] - all[k]));
    }
    /* the audio makes the two means differ, so the check above tells them apart */
    printf("# mean of windows 0..6 vs 0..10: up to %.4f apart\n", apart);
    assert_true(apart > 1e-3);
    free(x);
}

/* A 0.55 s clip is tiled to 281600 samples: dnsmos_local.py's num_hops is 8 but it skips window
 * 7, so finish() gives the mean of windows 0..6 of the tiled clip. */
static void test_tiled_clip_leaves_out_skipped_windows(void **st)
{
    (void)st;
    size_t n = 8800, L = n;
    float *tile = malloc(2 * SNN_DNSMOS_WINDOW * sizeof *tile);
    float *x = make_audio(n, 11);
    memcpy(tile, x, n * sizeof *x);
    while (L < SNN_DNSMOS_WINDOW) {
        memcpy(tile + L, tile, L * sizeof *tile);
        L *= 2;
    }
    assert_int_equal(L, 281600);
    snn_state *s;
    snn_err e;
    assert_int_equal(bam->ops->state_new(bam, &s, &e), 0);
    double want[6] = {0}, with7[6] = {0};
    float o[6];
    for (int w = 0; w < 8; w++) {
        assert_int_equal(snn_dnsmos_window(bam, s, tile + (size_t)w * 16000, o), 0);
        for (int k = 0; k < 6; k++) {
            with7[k] += o[k] / 8.0;
            if (w < 7)
                want[k] += o[k] / 7.0;
        }
    }
    bam->ops->state_reset(bam, s);
    snn_step_info info;
    assert_int_equal(snn_dnsmos_step_samples(bam, s, x, n, o, &info), 0);
    assert_false(info.has_output);
    assert_int_equal(bam->ops->finish(bam, s, o, &info), 0);
    assert_true(info.has_output);
    double apart = 0;
    for (int k = 0; k < 6; k++) {
        if (fabs(o[k] - want[k]) > 1e-5)
            fail_msg("tiled clip output %d: %.6f, mean of windows 0..6 %.6f", k, o[k], want[k]);
        apart = fmax(apart, fabs(want[k] - with7[k]));
    }
    printf("# tiled 0.55 s clip: mean of windows 0..6 vs 0..7 up to %.4f apart\n", apart);
    assert_true(apart > 1e-4);
    bam->ops->state_free(bam, s);
    free(x);
    free(tile);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skipped_windows_match_python),
        cmocka_unit_test(test_stream_mean_leaves_out_skipped_windows),
        cmocka_unit_test(test_tiled_clip_leaves_out_skipped_windows),
    };
    return cmocka_run_group_tests_name("dnsmos_windows", tests, setup, teardown);
}
