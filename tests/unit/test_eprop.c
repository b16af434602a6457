/*
 * test_eprop.c -- e-prop (models/eprop.h) on networks small enough to do by hand.
 *
 * The hand network: 2 inputs -> 1 LIF neuron -> 1 readout, T = window = 3 steps,
 * dt = 1, tau_m = tau_out = 1/ln 2 so alpha = kappa = 0.5, regular spike arrival
 * (c = c_o = 1), v_th = 1, psi = max(0, 1 - |v - 1|) (height 1, width 1),
 * w_in = (0.6, 0.3), w_out = 1, random feedback B = 2, no regularisation,
 * gradient descent eta = 0.1.
 * Inputs x_0 = (1,0), x_1 = (1,1), x_2 = (0,0); targets y* = (-1, 0.5, 0).
 *
 *  k  I    v                     psi  z  y             err  L  zbar_in     e          ebar          zout
 *  0  0.6  0.6                   0.6  0  0             1    2  (1, 0)      (0.6, 0)   (0.3, 0)      0
 *  1  0.9  0.5*0.6+0.9 = 1.2     0.8  1  1             0.5  1  (1.5, 1)    (1.2, 0.8) (0.75, 0.4)   1
 *  2  0    0.5*1.2-1*1 = -0.4    0    0  0.5*1 = 0.5   0.5  1  (0.75, 0.5) (0, 0)     (0.375, 0.2)  0.5
 *
 *  G_in  = 2 (0.3, 0) + 1 (0.75, 0.4) + 1 (0.375, 0.2) = (1.725, 0.6)
 *  G_out = 1*0 + 0.5*1 + 0.5*0.5 = 0.75
 *  loss  = 0.5 (1 + 0.25 + 0.25) = 0.75
 *  w_in  <- (0.6 - 0.1725, 0.3 - 0.06) = (0.4275, 0.24);  w_out <- 1 - 0.075 = 0.925
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "eprop.h"
#include "testutil.h"

#define EPS 1e-12

/* cmocka 1.1.5 has no assert_double_equal: |a - b| <= tol, printing both. */
#define assert_near(a, b, tol) \
    do { \
        double a_ = (a), b_ = (b); \
        if (!(fabs(a_ - b_) <= (tol))) \
            fail_msg("%s = %.15g, expected %.15g (tol %g)", #a, a_, b_, (double)(tol)); \
    } while (0)

static const uint8_t X[3][2] = {{1, 0}, {1, 1}, {0, 0}};
static const double YSTAR[3] = {-1.0, 0.5, 0.0};
static const double W_IN[2] = {0.6, 0.3};
static const double W_OUT[1] = {1.0};
static const double B_FB[1] = {2.0};

static snn_eprop_params hand_params(void)
{
    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = 2;
    p.n_rec = 1;
    p.n_out = 1;
    p.dt = 1.0;
    p.tau_m = p.tau_out = 1.0 / log(2.0);
    p.v_th = 1.0;
    p.psi_height = 1.0;
    p.psi_width = 1.0;
    p.regular_spike_arrival = 1;
    p.c_reg = 0.0;
    p.f_target_hz = 0.0;
    p.eta = 0.1;
    p.update_interval = p.learning_window = 3;
    return p;
}

static snn_eprop *make(const snn_eprop_params *p, const double *w_out, const double *b)
{
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    double w_rec[4] = {0};
    int rc = snn_eprop_init(&e, p, W_IN, w_rec, w_out, b, &snn_test_allocator, &err);
    if (rc)
        fail_msg("init: %s", err.msg);
    return e;
}

/* Runs one 3-step interval of the hand inputs. */
static void run_interval(snn_eprop *e)
{
    for (int k = 0; k < 3; k++)
        assert_int_equal(snn_eprop_step(e, X[k], &YSTAR[k], -1, NULL, NULL), 0);
}

/* psi, spikes, outputs and the running loss follow the table step by step, and
 * the update at the end of the interval is w_in = (0.4275, 0.24), w_out = 0.925. */
static void test_lif_hand_network_traces_and_update(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    snn_eprop *e = make(&p, W_OUT, B_FB);
    const double psi[3] = {0.6, 0.8, 0.0}, y[3] = {0.0, 1.0, 0.5}, loss[3] = {0.5, 0.625, 0.75};
    const uint8_t z[3] = {0, 1, 0};
    for (int k = 0; k < 3; k++) {
        double out, run;
        assert_int_equal(snn_eprop_step(e, X[k], &YSTAR[k], -1, &out, &run), 0);
        assert_near(snn_eprop_psi(e)[0], psi[k], EPS);
        assert_int_equal(snn_eprop_spikes(e)[0], z[k]);
        assert_near(out, y[k], EPS);
        assert_near(run, loss[k], EPS);
        /* the update happens only at the end of the interval */
        if (k < 2)
            assert_near(snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL)[0], 0.6, 0);
    }
    size_t r, c;
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, &r, &c);
    assert_int_equal(r, 1);
    assert_int_equal(c, 2);
    assert_near(w_in[0], 0.4275, EPS);
    assert_near(w_in[1], 0.24, EPS);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 0.925, EPS);
    assert_near(snn_eprop_last_loss(e), 0.75, EPS);
    assert_int_equal(snn_eprop_intervals(e), 1);
    snn_eprop_free(e);
}

/* With symmetric feedback B = w_out^T = 1, so L = err = (1, 0.5, 0.5) and
 * G_in = 1 (0.3, 0) + 0.5 (0.75, 0.4) + 0.5 (0.375, 0.2) = (0.8625, 0.3). */
static void test_symmetric_feedback_uses_readout_weights(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.feedback = SNN_EPROP_FEEDBACK_SYMMETRIC;
    snn_eprop *e = make(&p, W_OUT, NULL);
    run_interval(e);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.6 - 0.08625, EPS);
    assert_near(w_in[1], 0.3 - 0.03, EPS);
    snn_eprop_free(e);
}

/* Frozen groups keep their weights; the learnable ones get the same update as
 * when everything learns (random feedback does not read w_out). */
static void test_frozen_groups_keep_weights(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.learn_in = 0;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.6, 0);
    assert_near(w_in[1], 0.3, 0);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 0.925, EPS);
    snn_eprop_free(e);

    p = hand_params();
    p.learn_out = 0;
    e = make(&p, W_OUT, B_FB);
    run_interval(e);
    w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.4275, EPS);
    assert_near(w_in[1], 0.24, EPS);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 1.0, 0);
    snn_eprop_free(e);
}

/* eta = 1 would give w_in = (0.6 - 1.725, 0.3 - 0.6) = (-1.125, -0.3) and
 * w_out = 0.25; with bounds [-0.5, 2] the first is clamped to -0.5. */
static void test_weight_bounds_clamp(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.eta = 1.0;
    p.w_min = -0.5;
    p.w_max = 2.0;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], -0.5, 0);
    assert_near(w_in[1], -0.3, EPS);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 0.25, EPS);
    snn_eprop_free(e);

    /* and the upper bound: a negative gradient pushes w_out up to w_max */
    p = hand_params();
    p.eta = 1.0;
    p.w_max = 1.1;
    const double ystar_up[3] = {0.0, 5.0, 5.0}; /* err = (0, -4, -4.5): G_out = -4 - 2.25 */
    e = make(&p, W_OUT, B_FB);
    for (int k = 0; k < 3; k++)
        assert_int_equal(snn_eprop_step(e, X[k], &ystar_up[k], -1, NULL, NULL), 0);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 1.1, 0);
    snn_eprop_free(e);
}

/* Adam, eta = 0.1, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7.
 * Step 1 with g = G of the table: m = 0.1 g, s = 0.001 g^2,
 *   w -= 0.1 sqrt(0.001)/0.1 * 0.1 g / (sqrt(0.001) |g| + 1e-7)
 *      = 0.1 g / (|g| + 1e-7/sqrt(0.001)),   e.g. w_in0 = 0.6 - 0.1*1.725/(1.725 + 3.16228e-6)
 *      = 0.50000018332...
 * Step 2 (only w_out learns; the neuron is unchanged so z = (0,1,0), zout = (0,1,0.5)):
 *   y = (0, w1, 0.5 w1), err = (1, w1 - 0.5, 0.5 w1), g2 = (w1 - 0.5) + 0.25 w1 = 1.25 w1 - 0.5,
 *   m = 0.9 (0.1*0.75) + 0.1 g2,  s = 0.999 (0.001*0.75^2) + 0.001 g2^2,
 *   w2 = w1 - 0.1 sqrt(1 - 0.999^2)/(1 - 0.9^2) m / (sqrt(s) + 1e-7). */
static void test_adam_steps_match_hand_values(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.optimizer = SNN_EPROP_ADAM;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    double c = 1e-7 / sqrt(0.001);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.6 - 0.1 * 1.725 / (1.725 + c), EPS);
    assert_near(w_in[0], 0.5000001833, 1e-10);
    assert_near(w_in[1], 0.3 - 0.1 * 0.6 / (0.6 + c), EPS);
    double w1 = 1.0 - 0.1 * 0.75 / (0.75 + c);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], w1, EPS);
    snn_eprop_free(e);

    p.learn_in = 0;
    e = make(&p, W_OUT, B_FB);
    run_interval(e);
    run_interval(e);
    double g2 = 1.25 * w1 - 0.5;
    double m = 0.9 * (0.1 * 0.75) + 0.1 * g2;
    double s = 0.999 * (0.001 * 0.75 * 0.75) + 0.001 * g2 * g2;
    double w2 = w1 - 0.1 * sqrt(1 - 0.999 * 0.999) / (1 - 0.81) * m / (sqrt(s) + 1e-7);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], w2, EPS);
    snn_eprop_free(e);
}

/* An adaptive neuron (rho = 0.5, beta = 0.5) adds the second component eps:
 *  k  a  A    psi  e = psi (zbar - 0.5 eps_old)       eps                ebar            L
 *  0  0  1    0.6  (0.6, 0)                           (0.6, 0)           (0.3, 0)        2
 *  1  0  1    0.8  0.8 (1.5 - 0.3, 1) = (0.96, 0.8)   (1.26, 0.8)        (0.63, 0.4)     1
 *  2  1  1.5  0    (0, 0)                             (0.63, 0.4)        (0.315, 0.2)    1
 *  G_in = (0.6 + 0.63 + 0.315, 0.4 + 0.2) = (1.545, 0.6): w_in = (0.4455, 0.24). */
static void test_alif_eligibility_vector(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.n_adaptive = 1;
    p.adapt_tau = 1.0 / log(2.0);
    p.adapt_beta = 0.5;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.4455, EPS);
    assert_near(w_in[1], 0.24, EPS);
    snn_eprop_free(e);
}

/* The adaptive threshold: with beta = 0.5, after a spike the next-but-one step
 * needs v >= 1.5. Drive x = (1,1) every step: v = 0.9, 1.35 (spike), then
 * a = 1, A = 1.5, v = 0.675 + 0.9 - 1 = 0.575, psi = max(0, 1 - 0.925) = 0.075. */
static void test_alif_threshold_rises_after_spike(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.n_adaptive = 1;
    p.adapt_tau = 1.0 / log(2.0);
    p.adapt_beta = 0.5;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    const uint8_t x[2] = {1, 1};
    const double psi[3] = {0.9, 1.0 - 0.35, 0.075};
    const uint8_t z[3] = {0, 1, 0};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(snn_eprop_step(e, x, NULL, -1, NULL, NULL), 0);
        assert_near(snn_eprop_psi(e)[0], psi[k], EPS);
        assert_int_equal(snn_eprop_spikes(e)[0], z[k]);
    }
    snn_eprop_free(e);
}

/* Regularisation: S = sum e = (1.8, 0.8), 1 spike in T = 3 steps, f_target 0,
 * c_reg = 0.9: reg = 0.9 (1/3)/3 = 0.1, G_in = (1.725 + 0.18, 0.6 + 0.08),
 * w_in = (0.6 - 0.1905, 0.3 - 0.068). */
static void test_firing_rate_regularisation(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.c_reg = 0.9;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.4095, EPS);
    assert_near(w_in[1], 0.232, EPS);
    snn_eprop_free(e);

    /* a target rate equal to the actual rate (1 spike / 3 ms = 333.3 Hz) cancels it */
    p.f_target_hz = 1000.0 / 3.0;
    e = make(&p, W_OUT, B_FB);
    run_interval(e);
    w_in = snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL);
    assert_near(w_in[0], 0.4275, 1e-12);
    snn_eprop_free(e);
}

/* Cross-entropy with 2 readouts (w_out rows (1), (0)), label 1 at every step:
 * y0 = (0, 1, 0.5), y1 = 0, pi0 = (1/2, e/(e+1), e^.5/(e^.5+1)), err0 = pi0 = -err1,
 * loss = -sum log(1 - pi0), G_out0 = pi0_1 * 1 + pi0_2 * 0.5 = -G_out1. */
static void test_cross_entropy_softmax(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.n_out = 2;
    p.loss = SNN_EPROP_CROSS_ENTROPY;
    const double w_out[2] = {1.0, 0.0}, b[2] = {2.0, 0.0};
    snn_eprop *e = make(&p, w_out, b);
    double pi0[3] = {0.5, exp(1) / (exp(1) + 1), exp(0.5) / (exp(0.5) + 1)};
    double loss = 0;
    for (int k = 0; k < 3; k++) {
        double out[2], run;
        assert_int_equal(snn_eprop_step(e, X[k], NULL, 1, out, &run), 0);
        assert_near(out[0], pi0[k], EPS);
        assert_near(out[0] + out[1], 1.0, EPS);
        loss -= log(1.0 - pi0[k]);
        assert_near(run, loss, EPS);
    }
    double g = pi0[1] + 0.5 * pi0[2];
    const double *wo = snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL);
    assert_near(wo[0], 1.0 - 0.1 * g, EPS);
    assert_near(wo[1], 0.1 * g, EPS);
    assert_int_equal(snn_eprop_step(e, X[0], NULL, 2, NULL, NULL), -SNN_EINVAL);
    snn_eprop_free(e);
}

/* A recurrent spike reaches its target one step later, and so does its trace:
 * 2 neurons, w_in = ((2, 0), (0, 0)) makes neuron 0 spike at k = 0 (v = 2);
 * w_rec_10 = 0.5 gives neuron 1 v = 0.5 at k = 1 (psi 0.5), 0.25 at k = 2 (psi 0.25);
 * zbar_rec_0 = (0, 1, 0.5). Symmetric feedback with w_out = (0, 1): L_1 = err = y1 - y* ,
 * y1 = 0 (neuron 1 never spikes), y* = -1, so L_1 = 1 at every step.
 * e_10 = (0, 0.5, 0.125), ebar = (0, 0.25, 0.1875), G_rec_10 = 0.4375; the autapse
 * stays 0 and w_rec_01 (neuron 0 has psi 0 at k = 1, 2 ... and L_0 = 0) is unchanged. */
static void test_recurrent_trace_arrives_one_step_later(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.n_rec = 2;
    p.feedback = SNN_EPROP_FEEDBACK_SYMMETRIC;
    const double w_in[4] = {2.0, 0.0, 0.0, 0.0};
    const double w_rec[4] = {0.7, 0.3, 0.5, 0.0}; /* the autapse 0.7 is dropped */
    const double w_out[2] = {0.0, 1.0};
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    assert_int_equal(snn_eprop_init(&e, &p, w_in, w_rec, w_out, NULL, &snn_test_allocator, &err), 0);
    assert_near(snn_eprop_weights(e, SNN_EPROP_REC, NULL, NULL)[0], 0.0, 0);
    const uint8_t xs[3][2] = {{1, 0}, {0, 0}, {0, 0}};
    const double ystar = -1.0;
    const double psi1[3] = {0.0, 0.5, 0.25};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(snn_eprop_step(e, xs[k], &ystar, -1, NULL, NULL), 0);
        assert_near(snn_eprop_psi(e)[1], psi1[k], EPS);
    }
    const double *wr = snn_eprop_weights(e, SNN_EPROP_REC, NULL, NULL);
    assert_near(wr[0], 0.0, 0);
    assert_near(wr[3], 0.0, 0);
    assert_near(wr[2], 0.5 - 0.1 * 0.4375, EPS);
    assert_near(wr[1], 0.3, EPS);
    snn_eprop_free(e);
}

/* Learning off: outputs and loss as with learning on, weights unchanged. */
static void test_learning_off_is_inference_only(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    snn_eprop *e = make(&p, W_OUT, B_FB);
    snn_eprop_set_learning(e, 0);
    const double y[3] = {0.0, 1.0, 0.5};
    for (int k = 0; k < 3; k++) {
        double out;
        assert_int_equal(snn_eprop_step(e, X[k], &YSTAR[k], -1, &out, NULL), 0);
        assert_near(out, y[k], EPS);
    }
    assert_near(snn_eprop_last_loss(e), 0.75, EPS);
    assert_near(snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL)[0], 0.6, 0);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 1.0, 0);
    snn_eprop_free(e);
}

/* A learning step allocates nothing: arm the test allocator to fail the next
 * allocation, run many learning steps (with Adam, ALIF, regularisation), and the
 * armed failure is still there afterwards. cmocka checks nothing leaks. */
static void test_learning_step_allocates_nothing(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.optimizer = SNN_EPROP_ADAM;
    p.n_adaptive = 1;
    p.c_reg = 0.5;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    snn_test_fail_alloc_after(1);
    for (int it = 0; it < 10; it++)
        run_interval(e);
    void *probe = snn_test_allocator.malloc(16);
    assert_null(probe); /* the armed failure was not consumed by a step */
    snn_test_fail_alloc_after(0);
    assert_int_equal(snn_eprop_intervals(e), 10);
    snn_eprop_free(e);

    /* the same in continuous timing with a cutoff */
    p.timing = SNN_EPROP_CONTINUOUS;
    p.isi_trace_cutoff = 2;
    e = make(&p, W_OUT, B_FB);
    snn_test_fail_alloc_after(1);
    for (int it = 0; it < 10; it++)
        run_interval(e);
    probe = snn_test_allocator.malloc(16);
    assert_null(probe);
    snn_test_fail_alloc_after(0);
    snn_eprop_free(e);
}

/* Every allocation failure during init returns -SNN_ENOMEM, leaves *out NULL
 * and leaks nothing; bad parameters return -SNN_EINVAL naming the field. */
static void test_init_failures_return_errors(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.optimizer = SNN_EPROP_ADAM;
    snn_err err = {{0}};
    int fails = 0;
    for (int n = 1; n < 20; n++) {
        snn_eprop *e = (snn_eprop *)&err; /* must be reset to NULL */
        snn_test_fail_alloc_after(n);
        int rc = snn_eprop_init(&e, &p, W_IN, NULL, W_OUT, B_FB, &snn_test_allocator, &err);
        snn_test_fail_alloc_after(0);
        if (rc == 0) {
            snn_eprop_free(e);
            break;
        }
        assert_int_equal(rc, -SNN_ENOMEM);
        assert_null(e);
        assert_non_null(strstr(err.msg, "out of memory"));
        fails++;
    }
    assert_true(fails >= 1);

    snn_eprop *e = NULL;
    p = hand_params();
    p.learning_window = 4;
    assert_int_equal(snn_eprop_init(&e, &p, W_IN, NULL, W_OUT, B_FB, &snn_test_allocator, &err),
                     -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "learning_window"));
    assert_null(e);
    p = hand_params();
    assert_int_equal(snn_eprop_init(&e, &p, W_IN, NULL, W_OUT, NULL, &snn_test_allocator, &err),
                     -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "b_fb"));
    p = hand_params();
    p.n_adaptive = 2;
    assert_int_equal(snn_eprop_init(&e, &p, W_IN, NULL, W_OUT, B_FB, &snn_test_allocator, &err),
                     -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "n_adaptive"));
    p = hand_params();
    p.tau_m = 0;
    assert_int_equal(snn_eprop_init(&e, &p, W_IN, NULL, W_OUT, B_FB, &snn_test_allocator, &err),
                     -SNN_EINVAL);
    assert_non_null(strstr(err.msg, "tau_m"));
    assert_int_equal(snn_eprop_step(NULL, X[0], NULL, -1, NULL, NULL), -SNN_EINVAL);
}

/* batch_size 2: the first interval's gradient waits; after the second the mean
 * of the two (equal, same inputs and weights) gradients is applied once. */
static void test_batch_accumulates_intervals(void **state)
{
    (void)state;
    snn_eprop_params p = hand_params();
    p.batch_size = 2;
    snn_eprop *e = make(&p, W_OUT, B_FB);
    run_interval(e);
    assert_near(snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL)[0], 0.6, 0);
    run_interval(e);
    assert_near(snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL)[0], 0.4275, EPS);
    assert_near(snn_eprop_weights(e, SNN_EPROP_OUT, NULL, NULL)[0], 0.925, EPS);
    snn_eprop_free(e);
}

/* Continuous timing (NEST eprop_iaf): 1 input -> 1 neuron, alpha = kappa = 0.5,
 * c = 1, psi = max(0, 1 - |v - 1|), B = 1, y* = -1 so err = y + 1 = 1 (no spikes),
 * GD eta 0.1, w_in = 0.6, input spikes at steps 0 and 2. Step m evaluates step
 * m-1 and applies it at once, so a spike arriving at m uses the steps <= m-2:
 *  m  x  v                      psi    eval. step  zbar  e                ebar               w_in after
 *  0  1  0.6                    0.6    -1          0     0                0                  0.6
 *  1  0  0.3                    0.3    0           1     0.6 * 1 = 0.6    0.6                0.6 - 0.06 = 0.54
 *  2  1  0.15 + 0.54 = 0.69     0.69   1           0.5   0.3 * 0.5 = 0.15 0.3 + 0.15 = 0.45  0.54 - 0.045 = 0.495
 *  3  0  0.345                  0.345  2           1.25  0.69 * 1.25      0.225 + 0.8625     0.495 - 0.10875 = 0.38625 */
static snn_eprop_params continuous_params(void)
{
    snn_eprop_params p = hand_params();
    p.n_in = 1;
    p.timing = SNN_EPROP_CONTINUOUS;
    p.update_interval = p.learning_window = 100;
    p.kappa = 0.5;
    p.learn_out = 0;
    return p;
}

static void run_continuous(const snn_eprop_params *p, const double psi[4], const double w[4])
{
    const double w_in[1] = {0.6}, w_out[1] = {1.0}, b[1] = {1.0}, ystar = -1.0;
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    assert_int_equal(snn_eprop_init(&e, p, w_in, NULL, w_out, b, &snn_test_allocator, &err), 0);
    const uint8_t x[4] = {1, 0, 1, 0};
    for (int m = 0; m < 4; m++) {
        assert_int_equal(snn_eprop_step(e, &x[m], &ystar, -1, NULL, NULL), 0);
        assert_near(snn_eprop_psi(e)[0], psi[m], EPS);
        assert_near(snn_eprop_weights(e, SNN_EPROP_IN, NULL, NULL)[0], w[m], EPS);
    }
    snn_eprop_free(e);
}

static void test_continuous_updates_every_step_two_steps_late(void **state)
{
    (void)state;
    snn_eprop_params p = continuous_params();
    const double psi[4] = {0.6, 0.3, 0.69, 0.345}, w[4] = {0.6, 0.54, 0.495, 0.38625};
    run_continuous(&p, psi, w);
}

/* isi_trace_cutoff = 1: only the step before each presynaptic arrival is
 * evaluated (steps -1 and 1); steps 0 and 2 have e = 0 (ebar decays to 0):
 * m = 2 evaluates step 1: zbar 0.5, e = 0.15, ebar = 0.15, w = 0.6 - 0.015; the
 * spike at m = 2 meets w = 0.6: v = 0.15 + 0.6 = 0.75. */
static void test_continuous_isi_trace_cutoff(void **state)
{
    (void)state;
    snn_eprop_params p = continuous_params();
    p.isi_trace_cutoff = 1;
    const double psi[4] = {0.6, 0.3, 0.75, 0.375}, w[4] = {0.6, 0.6, 0.585, 0.585};
    run_continuous(&p, psi, w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lif_hand_network_traces_and_update),
        cmocka_unit_test(test_symmetric_feedback_uses_readout_weights),
        cmocka_unit_test(test_frozen_groups_keep_weights),
        cmocka_unit_test(test_weight_bounds_clamp),
        cmocka_unit_test(test_adam_steps_match_hand_values),
        cmocka_unit_test(test_alif_eligibility_vector),
        cmocka_unit_test(test_alif_threshold_rises_after_spike),
        cmocka_unit_test(test_firing_rate_regularisation),
        cmocka_unit_test(test_cross_entropy_softmax),
        cmocka_unit_test(test_recurrent_trace_arrives_one_step_later),
        cmocka_unit_test(test_learning_off_is_inference_only),
        cmocka_unit_test(test_learning_step_allocates_nothing),
        cmocka_unit_test(test_init_failures_return_errors),
        cmocka_unit_test(test_batch_accumulates_intervals),
        cmocka_unit_test(test_continuous_updates_every_step_two_steps_late),
        cmocka_unit_test(test_continuous_isi_trace_cutoff),
    };
    return cmocka_run_group_tests_name("eprop", tests, NULL, NULL);
}
