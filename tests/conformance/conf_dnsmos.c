/*
 * conf_dnsmos.c -- DNSMOS run by snnd from the ONNX files agrees with ONNX Runtime.
 *
 * Reference: ../shared/data/dnsmos/reference/ort_outputs.json (onnxruntime-node 1.30.0, CPU):
 * raw outputs of DNSMOS_sig_bak_ovr (= models/zoo/dnsmos-p835.onnx), pDNSMOS_sig_bak_ovr and
 * model_v8 (= models/zoo/dnsmos-p808.onnx) for every 9.01 s segment of the 16 kHz clips in
 * ../shared/data/dnsmos/clips (segmented and tiled as dnsmos_local.py does), the polynomial-mapped
 * SIG/BAK/OVRL per segment, and per-clip means.
 *
 * What must hold (|snnd - ORT| <= 0.01 everywhere; the maxima are printed):
 *   - per segment: raw SIG/BAK/OVRL, mapped SIG/BAK/OVRL (DNSMOS and personalized pDNSMOS) and the
 *     P.808 MOS (snnd computes the mel input itself from the audio);
 *   - per clip: streaming the clip in 1 s hops through step() (a partial last hop through
 *     snn_dnsmos_step_samples) and finish(), the mean of the outputs equals the clip summary,
 *     for P.835 and P.808 (the personalized clip means are checked from its segments).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <cmocka.h>
#include <jansson.h>

#include "dnsmos.h"
#include "model.h"
#include "testutil.h"
#include "wav.h"

#define TOL 0.01

static json_t *ref;
static snn_model *p835, *pp835, *p808;
static double max_raw, max_mapped, max_p808, max_clip;
static double ms_total;
static int n_windows;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static snn_model *load(const char *path)
{
    snn_model *m = NULL;
    snn_err e = {{0}};
    int rc = snn_onnx_model_load(path, NULL, &m, &e);
    if (rc)
        fail_msg("%s", e.msg);
    return m;
}

static int setup(void **st)
{
    (void)st;
    openblas_set_num_threads(1);
    json_error_t je;
    ref = json_load_file(snn_test_data("dnsmos/reference/ort_outputs.json"), 0, &je);
    if (!ref)
        return -1;
    p835 = load(snn_test_src("models/zoo/dnsmos-p835.onnx"));
    p808 = load(snn_test_src("models/zoo/dnsmos-p808.onnx"));
    pp835 = load(snn_test_data("dnsmos/models/pDNSMOS_sig_bak_ovr.onnx"));
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    snn_model_free(p835);
    snn_model_free(pp835);
    snn_model_free(p808);
    json_decref(ref);
    printf("max |snnd - ORT|: raw %.2e, mapped %.2e, P.808 %.2e, clip means %.2e\n", max_raw,
           max_mapped, max_p808, max_clip);
    if (n_windows)
        printf("P.835 window: %.1f ms mean over %d windows (1 OpenBLAS thread)\n", ms_total / n_windows,
               n_windows);
    return 0;
}

/* Reads clips/<name> and tiles it as dnsmos_local.py; *len = tiled length. */
static float *tiled_clip(const char *name, size_t *n_clip, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "dnsmos/clips/%s", name);
    snn_wav w;
    snn_err e;
    if (snn_wav_read(snn_test_data(rel), NULL, &w, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(w.sample_rate, 16000);
    size_t L = w.n;
    float *x = malloc(sizeof(float) * (L < SNN_DNSMOS_WINDOW ? 2 * SNN_DNSMOS_WINDOW : L));
    memcpy(x, w.x, L * sizeof *x);
    while (L < SNN_DNSMOS_WINDOW) {
        memcpy(x + L, x, L * sizeof *x);
        L *= 2;
    }
    *n_clip = w.n;
    *len = L;
    snn_wav_free(&w);
    return x;
}

static void check(double got, double want, double *maxerr, const char *what, const char *clip, int seg)
{
    double d = fabs(got - want);
    if (d > *maxerr)
        *maxerr = d;
    if (d > TOL)
        fail_msg("%s seg %d %s: snnd %.6f, ORT %.6f", clip, seg, what, got, want);
}

static void segments(snn_model *m, const char *raw_key, const char *map_key)
{
    snn_state *s;
    snn_err e;
    assert_int_equal(m->ops->state_new(m, &s, &e), 0);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(ref, "results"), i, r) {
        const char *clip = json_string_value(json_object_get(r, "clip"));
        int seg = (int)json_integer_value(json_object_get(r, "seg"));
        size_t n, L;
        float *x = tiled_clip(clip, &n, &L);
        assert_int_equal(L, json_integer_value(json_object_get(r, "tiled_len")));
        assert_true((size_t)seg * 16000 + SNN_DNSMOS_WINDOW <= L);
        float out[6];
        double t0 = now_ms();
        assert_int_equal(snn_dnsmos_window(m, s, x + (size_t)seg * 16000, out), 0);
        if (!snn_dnsmos_is_p808(m)) {
            ms_total += now_ms() - t0;
            n_windows++;
        }
        json_t *raw = json_object_get(r, raw_key);
        if (snn_dnsmos_is_p808(m)) {
            check(out[0], json_real_value(json_array_get(raw, 0)), &max_p808, "MOS", clip, seg);
        } else {
            json_t *mapped = json_object_get(r, map_key);
            static const char *nm[3] = {"SIG", "BAK", "OVRL"};
            for (int k = 0; k < 3; k++) {
                check(out[3 + k], json_real_value(json_array_get(raw, k)), &max_raw, nm[k], clip, seg);
                check(out[k], json_real_value(json_array_get(mapped, k)), &max_mapped, nm[k], clip, seg);
            }
        }
        free(x);
    }
    m->ops->state_free(m, s);
}

/* DNSMOS P.835 per segment, raw and mapped. */
static void test_p835_segments(void **st)
{
    (void)st;
    segments(p835, "DNSMOS_sig_bak_ovr_raw", "DNSMOS_polyfit_SIG_BAK_OVRL");
}

/* Personalized pDNSMOS per segment (its own polynomials), and its clip means. */
static void test_p835_personalized_segments(void **st)
{
    (void)st;
    segments(pp835, "pDNSMOS_sig_bak_ovr_raw", "pDNSMOS_polyfit_SIG_BAK_OVRL");
    /* clip mean of the mapped values = mean over segments of mapped (dnsmos_local.py) */
    const char *clip;
    json_t *cs;
    json_object_foreach(json_object_get(ref, "clip_summary"), clip, cs) {
        double acc[3] = {0};
        int n = 0;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(ref, "results"), i, r) {
            if (strcmp(json_string_value(json_object_get(r, "clip")), clip) != 0)
                continue;
            for (int k = 0; k < 3; k++) {
                float raw[3], mapped[3];
                for (int j = 0; j < 3; j++)
                    raw[j] = (float)json_real_value(
                        json_array_get(json_object_get(r, "pDNSMOS_sig_bak_ovr_raw"), j));
                snn_dnsmos_map(1, raw, mapped);
                acc[k] += mapped[k];
            }
            n++;
        }
        json_t *p = json_object_get(cs, "pDNSMOS");
        check(acc[0] / n, json_real_value(json_object_get(p, "SIG")), &max_clip, "pSIG", clip, -1);
        check(acc[1] / n, json_real_value(json_object_get(p, "BAK")), &max_clip, "pBAK", clip, -1);
        check(acc[2] / n, json_real_value(json_object_get(p, "OVRL")), &max_clip, "pOVRL", clip, -1);
    }
}

/* P.808 per segment: snnd's own mel front end feeds model_v8. */
static void test_p808_segments(void **st)
{
    (void)st;
    segments(p808, "model_v8_raw", NULL);
}

/* Streams clip through m in 1 s hops + finish(); returns the mean outputs. */
static int stream_clip(snn_model *m, const char *clip, double *mean)
{
    char rel[256];
    snprintf(rel, sizeof rel, "dnsmos/clips/%s", clip);
    snn_wav w;
    snn_err e;
    if (snn_wav_read(snn_test_data(rel), NULL, &w, &e))
        fail_msg("%s", e.msg);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, &e), 0);
    float out[6];
    int n_out = 0;
    for (uint32_t k = 0; k < m->n_out; k++)
        mean[k] = 0;
    for (size_t at = 0; at < w.n; at += 16000) {
        size_t n = w.n - at < 16000 ? w.n - at : 16000;
        snn_step_info info;
        int rc = n == 16000 ? m->ops->step(m, s, w.x + at, out, &info)
                            : snn_dnsmos_step_samples(m, s, w.x + at, n, out, &info);
        assert_int_equal(rc, 0);
        if (info.has_output) {
            for (uint32_t k = 0; k < m->n_out; k++)
                mean[k] += out[k];
            n_out++;
        }
    }
    snn_step_info info;
    assert_int_equal(m->ops->finish(m, s, out, &info), 0);
    if (info.has_output) {
        for (uint32_t k = 0; k < m->n_out; k++)
            mean[k] += out[k];
        n_out++;
    }
    for (uint32_t k = 0; k < m->n_out; k++)
        mean[k] /= n_out;
    m->ops->state_free(m, s);
    snn_wav_free(&w);
    return n_out;
}

/* Per clip: streaming + finish() give the clip scores of dnsmos_local.py. */
static void test_clip_streaming(void **st)
{
    (void)st;
    const char *clip;
    json_t *cs;
    json_object_foreach(json_object_get(ref, "clip_summary"), clip, cs) {
        double mean[6];
        int hops = (int)json_integer_value(json_object_get(cs, "num_hops"));
        int n = stream_clip(p835, clip, mean);
        /* a short clip's windows come out as one mean from finish() */
        assert_true(n == hops || n == 1);
        json_t *d = json_object_get(cs, "DNSMOS");
        static const char *keys[6] = {"SIG", "BAK", "OVRL", "SIG_raw", "BAK_raw", "OVRL_raw"};
        for (int k = 0; k < 6; k++)
            check(mean[k], json_real_value(json_object_get(d, keys[k])), &max_clip, keys[k], clip, -1);
        stream_clip(p808, clip, mean);
        check(mean[0], json_real_value(json_object_get(cs, "P808_MOS_with_our_mel")), &max_clip, "MOS",
              clip, -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p835_segments),
        cmocka_unit_test(test_p835_personalized_segments),
        cmocka_unit_test(test_p808_segments),
        cmocka_unit_test(test_clip_streaming),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
