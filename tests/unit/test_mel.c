/*
 * test_mel.c -- the librosa-compatible log-mel front end (mel.h) on hand-computed values.
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

#include "mel.h"
#include "testutil.h"

static snn_mel m;

static int setup(void **st)
{
    (void)st;
    return snn_mel_init(&m, 16000, 321, 160, 120, NULL, NULL);
}

static int teardown(void **st)
{
    (void)st;
    snn_mel_free(&m);
    return 0;
}

/* center=True framing: 1 + (n + 320 - 321) / 160 frames; DNSMOS's 144000 samples give 900. */
static void test_frame_count(void **st)
{
    (void)st;
    assert_int_equal(snn_mel_frames(&m, 144000), 900);
    assert_int_equal(snn_mel_frames(&m, 16000), 100);
    assert_int_equal(snn_mel_frames(&m, 1), 1);
}

/* Slaney filterbank: mel(8 kHz) = 15 + 27 ln 8 / ln 6.4 = 45.2457, 122 points 0.373932 mel
 * apart = 24.9288 Hz apart below 1 kHz. Filter 1 spans 24.93..74.79 Hz with peak 49.86 Hz;
 * FFT bin 1 is at 16000/321 = 49.844 Hz: weight = (49.844-24.929)/24.929 * 2/(74.786-24.929)
 * = 0.99948 * 0.040115 = 0.040094. Bin 0 (0 Hz) is outside every filter but filter 0's left edge. */
static void test_filterbank_hand_values(void **st)
{
    (void)st;
    assert_float_equal(snn_mel_weight(&m, 1, 1), 0.040094, 2e-6);
    assert_float_equal(snn_mel_weight(&m, 0, 0), 0.0, 1e-12);
    assert_float_equal(snn_mel_weight(&m, 1, 0), 0.0, 1e-12);
    assert_float_equal(snn_mel_weight(&m, 1, 2), 0.0, 1e-12); /* 99.69 Hz > 74.79 Hz */
    /* the top filter ends at 8 kHz: bin 160 (7975 Hz) lies in it, filter 0 is far away */
    assert_true(snn_mel_weight(&m, 119, 160) > 0.0);
    assert_float_equal(snn_mel_weight(&m, 0, 160), 0.0, 1e-12);
}

/* A sine exactly on FFT bin 20 (20 * 16000/321 Hz), amplitude 0.5: under the periodic Hann
 * window its spectrum is |X[20]| = A N / 4 = 40.125 and |X[19]| = |X[21]| = A N / 8, all other
 * bins 0. So every interior frame's mel power is P (F[m][20] + (F[m][19] + F[m][21]) / 4) with
 * P = 40.125^2. */
static void test_pure_tone(void **st)
{
    (void)st;
    const size_t n = 16000;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 20.0 * (double)i / 321.0));
    size_t T = snn_mel_frames(&m, n);
    double *work = malloc(snn_mel_work_size(&m, n) * sizeof *work);
    double *S = malloc(T * 120 * sizeof *S);
    snn_mel_power(&m, x, n, S, work);
    const double P = 40.125 * 40.125;
    for (size_t t = 2; t < T - 2; t += 17) {
        for (int k = 0; k < 120; k++) {
            double want = P * (snn_mel_weight(&m, k, 20) +
                               (snn_mel_weight(&m, k, 19) + snn_mel_weight(&m, k, 21)) / 4);
            if (fabs(S[t * 120 + k] - want) > 1e-3 * P * 0.05 + 1e-6)
                fail_msg("frame %zu mel %d: %g, want %g", t, k, S[t * 120 + k], want);
        }
    }
    free(x);
    free(work);
    free(S);
}

/* Silence is all at the floor: power_to_db with amin 1e-10 and ref = max gives 0 dB, so
 * (0 + 40) / 40 = 1 everywhere. */
static void test_silence(void **st)
{
    (void)st;
    float x[1600] = {0};
    size_t T = snn_mel_frames(&m, 1600);
    double *work = malloc(snn_mel_work_size(&m, 1600) * sizeof *work);
    double *S = malloc(T * 120 * sizeof *S);
    float *y = malloc(T * 120 * sizeof *y);
    snn_mel_power(&m, x, 1600, S, work);
    snn_mel_dnsmos_norm(S, T * 120, y);
    for (size_t i = 0; i < T * 120; i++)
        assert_float_equal(y[i], 1.0f, 1e-6);
    free(work);
    free(S);
    free(y);
}

/* power_to_db(ref=max, top_db=80) then (D + 40) / 40: 1 -> 0 dB -> 1; 0.1 -> -10 dB -> 0.75;
 * 1e-9 -> -90 dB, clipped to -80 -> -1; 0 -> amin 1e-10 -> -100 -> -1; 1e-4 -> -40 -> 0. */
static void test_db_norm(void **st)
{
    (void)st;
    const double s[5] = {1, 0.1, 1e-9, 0, 1e-4};
    float y[5];
    snn_mel_dnsmos_norm(s, 5, y);
    const float want[5] = {1, 0.75f, -1, -1, 0};
    for (int i = 0; i < 5; i++)
        assert_float_equal(y[i], want[i], 1e-6);
}

/* Bad parameters are refused. */
static void test_bad_params(void **st)
{
    (void)st;
    snn_mel b;
    snn_err e;
    assert_int_equal(snn_mel_init(&b, 16000, 321, 0, 120, NULL, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "hop=0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_count),
        cmocka_unit_test(test_filterbank_hand_values),
        cmocka_unit_test(test_pure_tone),
        cmocka_unit_test(test_silence),
        cmocka_unit_test(test_db_norm),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
