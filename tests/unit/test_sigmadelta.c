/*
 * test_sigmadelta.c -- the sigma-delta encoder on hand-made signals; every
 * expected event (time, channel) is worked out by hand from sigmadelta.h.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sigmadelta.h"
#include "testutil.h"

#define CAP 256

typedef struct expect {
    int64_t t;
    uint32_t ch;
} expect;

static snn_sigmadelta *make(uint32_t n, double th, int64_t refr, int merge, int invert)
{
    snn_sigmadelta_config cfg = {n, th, refr, merge, invert, 0};
    snn_sigmadelta *e = NULL;
    snn_err err;
    assert_int_equal(snn_sigmadelta_new(&cfg, &snn_test_allocator, &e, &err), 0);
    return e;
}

/* Pushes one frame and asserts it produced exactly the events want[0..nw). */
static void push_expect(snn_sigmadelta *e, int64_t t, const float *v, const expect *want,
                        size_t nw)
{
    snn_event ev[CAP];
    size_t n = 12345;
    snn_err err;
    assert_int_equal(snn_sigmadelta_push(e, t, v, ev, CAP, &n, &err), 0);
    assert_int_equal(n, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_int_equal(ev[i].t_us, want[i].t);
        assert_int_equal(ev[i].channel, want[i].ch);
    }
}

static void push1(snn_sigmadelta *e, int64_t t, float v, const expect *want, size_t nw)
{
    push_expect(e, t, &v, want, nw);
}

/* A ramp of 10 thresholds in 1 ms gives 10 ON events, one every 100 us. */
static void test_ramp_up_on_events(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    expect w[10];
    for (int k = 0; k < 10; k++)
        w[k] = (expect){100 * (k + 1), 0};
    push1(e, 0, 0.0f, NULL, 0); /* first frame: reference only */
    push1(e, 1000, 10.0f, w, 10);
    push1(e, 2000, 10.0f, NULL, 0); /* plateau: nothing */
    push1(e, 3000, 10.9f, NULL, 0); /* less than one threshold above r = 10 */
    snn_sigmadelta_free(e);
}

/* A falling step of 2.75 thresholds (θ = 2) gives 2 OFF events (channel
 * n + c) at the interpolated crossings of 8 and 6; the residual carries over. */
static void test_step_down_off_events_and_residual(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 2.0, 0, 0, 0);
    /* (8-10)/(4.5-10)*100 = 36.36 -> 36; (6-10)/(-5.5)*100 = 72.7 -> 72 */
    const expect w1[] = {{36, 1}, {72, 1}};
    /* r = 6; 4.5 -> 3.9 crosses 4 at 200 + floor(0.5/0.6*100) = 283 */
    const expect w2[] = {{283, 1}};
    push1(e, 0, 10.0f, NULL, 0);
    push1(e, 100, 4.5f, w1, 2);
    push1(e, 200, 4.5f, NULL, 0);
    push1(e, 300, 3.9f, w2, 1);
    snn_sigmadelta_free(e);
}

/* Interpolation runs between the samples, not from the reference level:
 * r = 0, v goes 0.5 -> 2.5 over 1 ms, crossing 1 and 2 at 250 and 750 us. */
static void test_interpolates_from_previous_sample(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    const expect w[] = {{1250, 0}, {1750, 0}};
    push1(e, 0, 0.0f, NULL, 0);
    push1(e, 1000, 0.5f, NULL, 0);
    push1(e, 2000, 2.5f, w, 2);
    snn_sigmadelta_free(e);
}

/* The same ramp 0 -> 20 over 2 ms at the paper's thresholds 1, 2, 5, 10. */
static void test_thresholds_1_2_5_10(void **st)
{
    (void)st;
    const double th[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++) {
        snn_sigmadelta *e = make(1, th[i], 0, 0, 0);
        int n = (int)(20 / th[i]);
        expect w[20];
        for (int k = 0; k < n; k++)
            w[k] = (expect){(int64_t)(100 * th[i]) * (k + 1), 0};
        push1(e, 0, 0.0f, NULL, 0);
        push1(e, 2000, 20.0f, w, (size_t)n);
        snn_sigmadelta_free(e);
    }
}

/* Refractory 250 us drops events closer than that to the last emitted one;
 * the level still moves, so the plateau afterwards is silent. */
static void test_refractory_drops_events(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 250, 0, 0);
    /* candidates 100..1000 every 100: keep 100, 400, 700, 1000 */
    const expect w[] = {{100, 0}, {400, 0}, {700, 0}, {1000, 0}};
    /* 1000 -> 1100: crossing 11 at 1100 is 100 us after 1000: dropped;
     * 1100 -> 1300: crossing 12 at 1300 is 300 us after 1000: kept */
    const expect w2[] = {{1300, 0}};
    push1(e, 0, 0.0f, NULL, 0);
    push1(e, 1000, 10.0f, w, 4);
    push1(e, 1100, 11.0f, NULL, 0);
    push1(e, 1300, 12.0f, w2, 1);
    push1(e, 5000, 12.0f, NULL, 0);
    snn_sigmadelta_free(e);
}

/* ON and OFF of one taxel share the refractory period. */
static void test_refractory_shared_by_on_and_off(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 500, 0, 0);
    const expect w1[] = {{1000, 0}};
    push1(e, 0, 0.0f, NULL, 0);
    push1(e, 1000, 1.0f, w1, 1);
    push1(e, 1200, 0.0f, NULL, 0); /* OFF 200 us after the ON: dropped */
    const expect w2[] = {{2000, 0}};
    push1(e, 2000, 1.0f, w2, 1);
    snn_sigmadelta_free(e);
}

/* invert = 1 (iCub: lower = more pressure): falling raw values are ON
 * (channel c), rising are OFF (channel 12 + c). */
static void test_invert_polarity_icub(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(12, 5.0, 0, 0, 1);
    float v[12];
    for (int c = 0; c < 12; c++)
        v[c] = 255.0f;
    push_expect(e, 0, v, NULL, 0);
    v[6] = 245.0f; /* pressure on taxel 6: 2 ON events */
    const expect w1[] = {{12500, 6}, {25000, 6}};
    push_expect(e, 25000, v, w1, 2);
    v[6] = 255.0f; /* release: 2 OFF events on 12 + 6 */
    const expect w2[] = {{37500, 18}, {50000, 18}};
    push_expect(e, 50000, v, w2, 2);
    snn_sigmadelta_free(e);
}

/* Events of several channels come out sorted by time, ties by channel;
 * merge_on_off puts OFF events on channel c too. */
static void test_multichannel_time_order_and_merge(void **st)
{
    (void)st;
    for (int merge = 0; merge <= 1; merge++) {
        snn_sigmadelta *e = make(3, 1.0, 0, merge, 0);
        const float v0[3] = {0, 0, 0};
        /* ch0 up 2 (500, 1000), ch1 down 4 (250, 500, 750, 1000), ch2 up 1 (1000) */
        const float v1[3] = {2, -4, 1};
        uint32_t off = merge ? 0 : 3;
        const expect w[] = {{250, 1 + off}, {500, 0},       {500, 1 + off},
                            {750, 1 + off}, {1000, 0},      {1000, 1 + off},
                            {1000, 2}};
        push_expect(e, 0, v0, NULL, 0);
        /* sorted order of (1000, 0), (1000, 1|4), (1000, 2): with merge the
         * OFF channel is 1 and sorts before 2; without it 4 sorts after 2 */
        if (merge) {
            push_expect(e, 1000, v1, w, 7);
        } else {
            const expect w4[] = {{250, 4}, {500, 0}, {500, 4}, {750, 4},
                                 {1000, 0}, {1000, 2}, {1000, 4}};
            push_expect(e, 1000, v1, w4, 7);
        }
        assert_int_equal(snn_sigmadelta_n_outputs(e), merge ? 3 : 6);
        snn_sigmadelta_free(e);
    }
}

/* Any sampling rate and absolute time: irregular intervals at t ~ 1e12 us. */
static void test_irregular_sampling_large_times(void **st)
{
    (void)st;
    const int64_t T = INT64_C(1000000000000);
    snn_sigmadelta *e = make(1, 2.0, 0, 0, 0);
    const expect w1[] = {{T + 3, 0}};             /* 0 -> 2 over 3 us */
    const expect w2[] = {{T + 3 + 666666, 0}};    /* 2 -> 5 over 1 s: 4 at 2/3 */
    push1(e, T, 0.0f, NULL, 0);
    push1(e, T + 3, 2.0f, w1, 1);
    push1(e, T + 3 + 1000000, 5.0f, w2, 1);
    snn_sigmadelta_free(e);
}

/* Two frames with the same timestamp: the jump's events all happen then. */
static void test_equal_timestamps(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    const expect w[] = {{700, 0}, {700, 0}, {700, 0}};
    push1(e, 700, 0.0f, NULL, 0);
    push1(e, 700, 3.0f, w, 3);
    snn_sigmadelta_free(e);
}

/* Too small an array: -SNN_ESHAPE, *n_events = what is needed, state kept,
 * so the same frame pushed again with room gives the full answer. */
static void test_overflow_reports_and_keeps_state(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    snn_event ev[CAP];
    size_t n;
    snn_err err;
    float v = 0.0f;
    assert_int_equal(snn_sigmadelta_push(e, 0, &v, ev, 4, &n, &err), 0);
    v = 10.0f;
    assert_int_equal(snn_sigmadelta_push(e, 1000, &v, ev, 4, &n, &err), -SNN_ESHAPE);
    assert_int_equal(n, 10);
    assert_non_null(strstr(err.msg, "10 events"));
    assert_int_equal(snn_sigmadelta_push(e, 1000, &v, ev, CAP, &n, &err), 0);
    assert_int_equal(n, 10);
    assert_int_equal(ev[0].t_us, 100);
    assert_int_equal(ev[9].t_us, 1000);
    assert_true(snn_sigmadelta_max_events(e, 0, 10) >= 10);
    snn_sigmadelta_free(e);
}

/* Time going backwards and non-finite values are rejected, state kept. */
static void test_rejects_bad_frames(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    snn_event ev[CAP];
    size_t n;
    snn_err err;
    float v = 0.0f;
    assert_int_equal(snn_sigmadelta_push(e, 1000, &v, ev, CAP, &n, &err), 0);
    v = 5.0f;
    assert_int_equal(snn_sigmadelta_push(e, 999, &v, ev, CAP, &n, &err), -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "999"));
    v = NAN;
    assert_int_equal(snn_sigmadelta_push(e, 2000, &v, ev, CAP, &n, &err), -SNN_EINVAL);
    const expect w[] = {{1500, 0}, {2000, 0}}; /* from (1000, 0), not from 5 */
    push1(e, 2000, 2.0f, w, 2);
    snn_sigmadelta_free(e);
}

/* After reset the next frame is a first frame again (no jump events). */
static void test_reset_forgets_levels(void **st)
{
    (void)st;
    snn_sigmadelta *e = make(1, 1.0, 0, 0, 0);
    push1(e, 0, 0.0f, NULL, 0);
    snn_sigmadelta_reset(e);
    push1(e, 10, 50.0f, NULL, 0);
    const expect w[] = {{20, 0}};
    push1(e, 20, 51.0f, w, 1);
    snn_sigmadelta_free(e);
}

/* Bad configurations name the field; allocation failures leak nothing. */
static void test_config_and_alloc_errors(void **st)
{
    (void)st;
    snn_sigmadelta *e = NULL;
    snn_err err;
    snn_sigmadelta_config c = {12, 0.0, 0, 0, 0, 0};
    assert_int_equal(snn_sigmadelta_new(&c, &snn_test_allocator, &e, &err), -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "threshold"));
    c.threshold = 1.0;
    c.refractory_us = -1;
    assert_int_equal(snn_sigmadelta_new(&c, &snn_test_allocator, &e, &err), -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "refractory_us"));
    c.refractory_us = 0;
    c.n_channels = 0;
    assert_int_equal(snn_sigmadelta_new(&c, &snn_test_allocator, &e, &err), -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "n_channels"));
    c.n_channels = 12;
    int ok = 0;
    for (int k = 1; k <= 7; k++) { /* 6 allocations: fail each, then none */
        snn_test_fail_alloc_after(k);
        int rc = snn_sigmadelta_new(&c, &snn_test_allocator, &e, &err);
        snn_test_fail_alloc_after(0);
        if (rc == 0) {
            assert_int_equal(k, 7);
            ok = 1;
            snn_sigmadelta_free(e);
        } else {
            assert_int_equal(rc, -SNN_ENOMEM);
            assert_null(e);
        }
    }
    assert_true(ok);
}

/* Hold: after a gap longer than hold_us the crossings are interpolated over the last hold_us
 * only (sigmadelta.h "Hold"); a shorter gap is interpolated as without it. */
static void test_hold_after_long_gap(void **state)
{
    (void)state;
    snn_sigmadelta_config cfg = {1, 1.0, 0, 0, 0, 50000};
    snn_sigmadelta *e = NULL, *plain = make(1, 1.0, 0, 0, 0);
    snn_err err;
    assert_int_equal(snn_sigmadelta_new(&cfg, &snn_test_allocator, &e, &err), 0);
    const float v0 = 10, v1 = 14, v2 = 16;
    push_expect(e, 0, &v0, NULL, 0);
    push_expect(plain, 0, &v0, NULL, 0);
    /* 800 ms gap, 4 levels up: t_k = 750 ms + floor(k / 4 * 50 ms); plain: k / 4 * 800 ms */
    const expect held[4] = {{762500, 0}, {775000, 0}, {787500, 0}, {800000, 0}};
    const expect spread[4] = {{200000, 0}, {400000, 0}, {600000, 0}, {800000, 0}};
    push_expect(e, 800000, &v1, held, 4);
    push_expect(plain, 800000, &v1, spread, 4);
    /* 40 ms, within hold_us: the same as without it */
    const expect near[2] = {{820000, 0}, {840000, 0}};
    push_expect(e, 840000, &v2, near, 2);
    push_expect(plain, 840000, &v2, near, 2);
    snn_sigmadelta_free(e);
    snn_sigmadelta_free(plain);
    cfg.hold_us = -1;
    assert_int_equal(snn_sigmadelta_new(&cfg, &snn_test_allocator, &e, &err), -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "hold_us"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ramp_up_on_events),
        cmocka_unit_test(test_step_down_off_events_and_residual),
        cmocka_unit_test(test_interpolates_from_previous_sample),
        cmocka_unit_test(test_thresholds_1_2_5_10),
        cmocka_unit_test(test_refractory_drops_events),
        cmocka_unit_test(test_refractory_shared_by_on_and_off),
        cmocka_unit_test(test_invert_polarity_icub),
        cmocka_unit_test(test_multichannel_time_order_and_merge),
        cmocka_unit_test(test_irregular_sampling_large_times),
        cmocka_unit_test(test_equal_timestamps),
        cmocka_unit_test(test_overflow_reports_and_keeps_state),
        cmocka_unit_test(test_rejects_bad_frames),
        cmocka_unit_test(test_reset_forgets_levels),
        cmocka_unit_test(test_config_and_alloc_errors),
        cmocka_unit_test(test_hold_after_long_gap),
    };
    return cmocka_run_group_tests_name("sigmadelta", tests, NULL, NULL);
}
