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
 *     P.808 MOS (snnd computes the mel input itself from the audio); P.835 both in chunks of
 *     frames (the default) and through the whole graph;
 *   - per clip: streaming the clip in 1 s hops through step() (a partial last hop through
 *     snn_dnsmos_step_samples) and finish(), the mean of the outputs equals the clip summary,
 *     for P.835 and P.808 (the personalized clip means are checked from its segments);
 *   - a stream of 9.01 .. 10 s gets its one window from finish();
 *   - streaming with reuse (dnsmos.c keeps convolution outputs between windows): a 52.4 s stream
 *     made of the clips (tiled as dnsmos_local.py tiles them, placed on whole seconds so that 14
 *     of its windows are ORT segments) scores every window within 1e-3 of the same window
 *     computed from scratch, and within 0.01 of ORT where ORT scored that window.
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
#include "onnx.h"
#include "model.h"
#include "testutil.h"
#include "wav.h"
#include "blas.h"

SNN_BLAS_PREINIT

#define TOL 0.01

static json_t *ref;
static snn_model *p835, *pp835, *p808;
static double max_raw, max_mapped, max_p808, max_clip, max_reuse;
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
    printf("max |streamed with reuse - from scratch| over SIG/BAK/OVRL raw and mapped: %.2e\n",
           max_reuse);
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

/* chunked: P.835 windows from scratch in chunks of frames (the default) or, 0, through the
 * whole graph (snn_dnsmos_set_chunked). */
static void segments(snn_model *m, const char *raw_key, const char *map_key, int chunked)
{
    snn_state *s;
    snn_err e;
    assert_int_equal(m->ops->state_new(m, &s, &e), 0);
    /* P.835 states can run chunked windows; P.808 ones never do */
    assert_int_equal(snn_dnsmos_set_chunked(s, chunked), chunked && !snn_dnsmos_is_p808(m));
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
        if (!snn_dnsmos_is_p808(m) && chunked) {
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

/* DNSMOS P.835 per segment, raw and mapped: windows in chunks of frames (the default). */
static void test_p835_segments(void **st)
{
    (void)st;
    segments(p835, "DNSMOS_sig_bak_ovr_raw", "DNSMOS_polyfit_SIG_BAK_OVRL", 1);
}

/* The same through the whole ONNX graph, node by node. */
static void test_p835_segments_graph(void **st)
{
    (void)st;
    segments(p835, "DNSMOS_sig_bak_ovr_raw", "DNSMOS_polyfit_SIG_BAK_OVRL", 0);
}

/* Personalized pDNSMOS per segment (its own polynomials), and its clip means. */
static void test_p835_personalized_segments(void **st)
{
    (void)st;
    segments(pp835, "pDNSMOS_sig_bak_ovr_raw", "pDNSMOS_polyfit_SIG_BAK_OVRL", 1);
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
    segments(p808, "model_v8_raw", NULL, 1);
}

/* Streams clip through m in 1 s hops + finish(); returns the mean of the outputs that count in
 * the clip score (dnsmos.h) and how many there were. */
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
        if (info.has_output && !info.outside_decision) {
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

/* A 9.5 s stream (the first 152000 samples of codec2_speech_orig_16k) has no output during its
 * 9 whole seconds and exactly one from finish(): window 0, the same samples ORT scored as
 * segment 0 of the whole clip. */
static void test_stream_between_9_01_and_10_s(void **st)
{
    (void)st;
    snn_wav w;
    snn_err e;
    if (snn_wav_read(snn_test_data("dnsmos/clips/codec2_speech_orig_16k.wav"), NULL, &w, &e))
        fail_msg("%s", e.msg);
    assert_true(w.n >= 152000);
    snn_state *s;
    assert_int_equal(p835->ops->state_new(p835, &s, &e), 0);
    float out[6];
    snn_step_info info;
    for (int k = 0; k < 9; k++) {
        assert_int_equal(p835->ops->step(p835, s, w.x + k * 16000, out, &info), 0);
        assert_false(info.has_output);
    }
    assert_int_equal(snn_dnsmos_step_samples(p835, s, w.x + 144000, 8000, out, &info), 0);
    assert_false(info.has_output);
    assert_int_equal(p835->ops->finish(p835, s, out, &info), 0);
    assert_true(info.has_output);
    json_t *r = json_array_get(json_object_get(ref, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "clip")), "codec2_speech_orig_16k.wav");
    static const char *nm[3] = {"SIG", "BAK", "OVRL"};
    for (int k = 0; k < 3; k++)
        check(out[3 + k], json_real_value(json_array_get(json_object_get(r, "DNSMOS_sig_bak_ovr_raw"), k)),
              &max_raw, nm[k], "codec2_speech_orig_16k.wav[0:152000]", 0);
    /* a second finish() has nothing more to say */
    assert_int_equal(p835->ops->finish(p835, s, out, &info), 0);
    assert_false(info.has_output);
    p835->ops->state_free(p835, s);
    snn_wav_free(&w);
}

/* Appends n samples of clip (tiled to at least 144160 samples when tile) to x at *len. */
static void append_clip(float *x, size_t *len, const char *clip, int tile, size_t n)
{
    size_t nc, L;
    float *c = tiled_clip(clip, &nc, &L);
    size_t k = tile ? L : nc;
    if (n && n < k)
        k = n;
    memcpy(x + *len, c, k * sizeof *x);
    *len += k;
    free(c);
}

/* Streaming with reuse: every window as from scratch (1e-3) and as ORT where it has the window. */
/* The fast paths against im2col + sgemm one node at a time, on a real clip's first window: the
 * whole graph with Winograd and the stem Conv fused with the next in strips, and the default
 * chunked windows (Winograd on chunks of frames); the same numbers up to float rounding. */
static void test_p835_fast_path(void **st)
{
    (void)st;
    snn_onnx_graph *g = snn_dnsmos_graph(p835);
    assert_int_equal(snn_onnx_n_fused(g), 1);
    size_t n_clip, len;
    float *x = tiled_clip("pesq_speech.wav", &n_clip, &len);
    snn_state *s;
    snn_err e;
    assert_int_equal(p835->ops->state_new(p835, &s, &e), 0);
    float chunked[6], fast[6], plain[6];
    assert_int_equal(snn_dnsmos_set_chunked(s, 1), 1); /* a P.835 state has the chunked pass */
    assert_int_equal(snn_dnsmos_window(p835, s, x, chunked), 0);
    assert_int_equal(snn_dnsmos_set_chunked(s, 0), 0);
    assert_int_equal(snn_dnsmos_window(p835, s, x, fast), 0);
    snn_onnx_set_fast_conv(g, 0);
    assert_int_equal(snn_dnsmos_window(p835, s, x, plain), 0);
    snn_onnx_set_fast_conv(g, 1);
    for (int k = 0; k < 6; k++) {
        if (fabs(fast[k] - plain[k]) > 1e-4)
            fail_msg("output %d: fast path %.7f, im2col %.7f", k, fast[k], plain[k]);
        if (fabs(chunked[k] - plain[k]) > 1e-4)
            fail_msg("output %d: chunked %.7f, im2col %.7f", k, chunked[k], plain[k]);
    }
    printf("one window, raw: chunked %.7f %.7f %.7f, graph %.7f %.7f %.7f, im2col %.7f %.7f %.7f\n",
           chunked[3], chunked[4], chunked[5], fast[3], fast[4], fast[5], plain[3], plain[4],
           plain[5]);
    p835->ops->state_free(p835, s);
    free(x);
}

static void test_stream_reuse(void **st)
{
    (void)st;
    size_t L = 0;
    float *x = malloc(60 * 16000 * sizeof *x);
    /* ORT segment k of clip c is stream window w0 + k (the clip starts on second w0) */
    struct { const char *clip; int w0, nseg; } on[4] = {
        {"codec2_wia_16kHz.wav", 0, 7}, {"pesq_speech.wav", 16, 3},
        {"codec2_speech_orig_16k.wav", 29, 1}, {"pesq_speech_bab_0dB.wav", 40, 3}};
    append_clip(x, &L, on[0].clip, 1, 0);                       /* 0 .. 16 s */
    append_clip(x, &L, on[1].clip, 1, 0);                       /* 16 .. 28.4 s */
    append_clip(x, &L, "pesq_speech_bab_0dB.wav", 0, 9600);     /* filler to 29 s */
    append_clip(x, &L, on[2].clip, 0, 0);                       /* 29 .. 39.8 s */
    append_clip(x, &L, "codec2_wia_16kHz.wav", 0, 3200);        /* filler to 40 s */
    append_clip(x, &L, on[3].clip, 1, 0);                       /* 40 .. 52.4 s */
    assert_int_equal(L, 838400);
    snn_state *s, *ref_s;
    snn_err e;
    assert_int_equal(p835->ops->state_new(p835, &s, &e), 0);
    assert_int_equal(p835->ops->state_new(p835, &ref_s, &e), 0);
    /* the reference: the whole graph, an independent path */
    assert_int_equal(snn_dnsmos_set_chunked(ref_s, 0), 0);
    float out[6], want[6];
    size_t w = 0, n_ort = 0;
    uint64_t eff = 0, dense = 0;
    for (size_t at = 0; at < L; at += 16000) {
        size_t n = L - at < 16000 ? L - at : 16000;
        snn_step_info info;
        assert_int_equal(snn_dnsmos_step_samples(p835, s, x + at, n, out, &info), 0);
        if (!info.has_output)
            continue;
        eff += info.eff_macs;
        dense += info.dense_ops;
        /* dnsmos_local.py skips windows 7..23 (dnsmos.h), ORT's segments are never among them */
        assert_int_equal(info.outside_decision, w >= 7 && w <= 23);
        assert_int_equal(snn_dnsmos_window(p835, ref_s, x + w * 16000, want), 0);
        for (int k = 0; k < 6; k++) {
            double d = fabs(out[k] - want[k]);
            if (d > max_reuse)
                max_reuse = d;
            if (d > 1e-3)
                fail_msg("window %zu output %d: streamed %.6f, from scratch %.6f", w, k, out[k], want[k]);
        }
        for (int c = 0; c < 4; c++) {
            int seg = (int)w - on[c].w0;
            if (seg < 0 || seg >= on[c].nseg)
                continue;
            size_t i;
            json_t *r;
            json_array_foreach(json_object_get(ref, "results"), i, r) {
                if (strcmp(json_string_value(json_object_get(r, "clip")), on[c].clip) != 0 ||
                    json_integer_value(json_object_get(r, "seg")) != seg)
                    continue;
                static const char *nm[3] = {"SIG", "BAK", "OVRL"};
                for (int k = 0; k < 3; k++)
                    check(out[3 + k], json_real_value(json_array_get(
                                          json_object_get(r, "DNSMOS_sig_bak_ovr_raw"), k)),
                          &max_raw, nm[k], on[c].clip, seg);
                n_ort++;
            }
        }
        w++;
    }
    /* windows 0 .. 42 (floor(52.4) - 9 of them); 14 are ORT segments */
    assert_int_equal(w, 43);
    assert_int_equal(n_ort, 14);
    /* each streamed window costs a fraction of a full one */
    printf("streamed: %.2f GMAC per window on average vs %.2f from scratch\n", eff / 1e9 / w,
           dense / 1e9 / w);
    assert_true(eff * 4 < dense);
    p835->ops->state_free(p835, s);
    p835->ops->state_free(p835, ref_s);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p835_segments),
        cmocka_unit_test(test_p835_segments_graph),
        cmocka_unit_test(test_p835_personalized_segments),
        cmocka_unit_test(test_p808_segments),
        cmocka_unit_test(test_clip_streaming),
        cmocka_unit_test(test_stream_between_9_01_and_10_s),
        cmocka_unit_test(test_p835_fast_path),
        cmocka_unit_test(test_stream_reuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
