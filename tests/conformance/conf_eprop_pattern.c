/*
 * conf_eprop_pattern.c -- e-prop learns to generate a sum of sines (pattern generation).
 *
 * Task (Bellec et al. 2020, Fig. S1/S7 "pattern generation"; settings of
 * IGITUGraz/eligibility_propagation's tutorial_pattern_generation.py, the same
 * as NEST's sine-wave regression test): 100 input channels of frozen 50 Hz
 * Poisson spikes, 100 LIF neurons (tau_m = tau_out = 30 ms, threshold 0.03,
 * pseudo-derivative 0.3 max(0, 1 - |v - thr|/thr)/thr, input gain 1 - alpha),
 * one leaky readout, MSE against a 1000 ms target that is a sum of four sines
 * (periods 1000, 500, 333, 200 ms, amplitudes uniform in [0.5, 2], random
 * phases, scaled to a peak of 1), random feedback, firing-rate
 * regularisation toward 10 Hz (c_reg 300). Bellec runs 2000 iterations of
 * gradient descent (eta 1e-4); here Adam (eta 2e-3) reaches the goal in a
 * fraction of that.
 *
 * The network is then written as a model file through the bridge
 * (models/rsnn_eprop.h) and run by snnd's engine: its loss must be the trained
 * network's.
 *
 * Must hold: the loss falls at least tenfold; the engine's loss of the saved
 * model equals e-prop's to 1e-4 relative.
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
#include <unistd.h>
#include <cmocka.h>

#include "eprop.h"
#include "model.h"
#include "rsnn_eprop.h"
#include "testutil.h"

#define N_IN 100
#define N_REC 100
#define T 1000
#define ITERS 400

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}
static double normal(uint64_t *s)
{
    double u1 = unif(s) + 1e-300, u2 = unif(s);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static uint8_t x[T][N_IN];
static double target[T];

static void test_sum_of_sines_loss_falls_tenfold(void **state)
{
    (void)state;
    uint64_t s = 1;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N_IN; i++)
            x[t][i] = unif(&s) < 0.05;
    const double periods[4] = {1000, 500, 333, 200};
    double amp[4], ph[4], peak = 0;
    for (int k = 0; k < 4; k++) {
        amp[k] = 0.5 + 1.5 * unif(&s);
        ph[k] = 2 * M_PI * unif(&s);
    }
    for (int t = 0; t < T; t++) {
        target[t] = 0;
        for (int k = 0; k < 4; k++)
            target[t] += amp[k] * sin(2 * M_PI * t / periods[k] + ph[k]);
        peak = fmax(peak, fabs(target[t]));
    }
    for (int t = 0; t < T; t++)
        target[t] /= peak;

    static double w_in[N_REC * N_IN], w_rec[N_REC * N_REC], w_out[N_REC], b_fb[N_REC];
    for (size_t i = 0; i < N_REC * N_IN; i++)
        w_in[i] = normal(&s) / sqrt((double)N_IN);
    for (size_t i = 0; i < N_REC * N_REC; i++)
        w_rec[i] = i % (N_REC + 1) ? normal(&s) / sqrt((double)N_REC) : 0.0;
    for (size_t i = 0; i < N_REC; i++) {
        w_out[i] = normal(&s) / sqrt((double)N_REC);
        b_fb[i] = normal(&s) / sqrt((double)N_REC);
    }

    snn_eprop_params p = snn_eprop_params_default(); /* Bellec's / NEST's values */
    p.n_in = N_IN;
    p.n_rec = N_REC;
    p.n_out = 1;
    p.psi_height = 0.3 / p.v_th;
    p.psi_width = p.v_th;
    p.optimizer = SNN_EPROP_ADAM;
    p.eta = 2e-3;
    p.adam_epsilon = 1e-8;
    p.reset_adapted = 1; /* as the engine (no effect without adaptive neurons) */
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    if (snn_eprop_init(&e, &p, w_in, w_rec, w_out, b_fb, NULL, &err))
        fail_msg("%s", err.msg);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double first = 0, last = 0;
    printf("iteration  loss (0.5 x sum over 1000 steps of squared error)\n");
    for (int it = 0; it < ITERS; it++) {
        for (int t = 0; t < T; t++)
            assert_int_equal(snn_eprop_step(e, x[t], &target[t], -1, NULL, NULL), 0);
        last = snn_eprop_last_loss(e);
        if (it == 0)
            first = last;
        if (it % 50 == 0 || it == ITERS - 1)
            printf("%9d  %.4f\n", it, last);
    }
    /* The trained weights, learning off. */
    snn_eprop_set_learning(e, 0);
    snn_eprop_reset(e);
    double out, y_eprop[T], final = 0;
    for (int t = 0; t < T; t++) {
        snn_eprop_step(e, x[t], &target[t], -1, &out, NULL);
        y_eprop[t] = out;
    }
    final = snn_eprop_last_loss(e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("initial loss %.4f, final loss %.4f (learning off), ratio %.1f, %d iterations in %.1f s\n", first,
           final, first / final, ITERS, sec);
    assert_true(final * 10.0 <= first);
    (void)last;

    /* Saved as a model file and run by the engine: the same loss. */
    char src[128], dst[128];
    snprintf(src, sizeof src, "/tmp/snn-conf-%ld-pattern.safetensors", (long)getpid());
    snprintf(dst, sizeof dst, "/tmp/snn-conf-%ld-pattern-trained.safetensors", (long)getpid());
    if (snn_rsnn_eprop_create(src, "pattern", &p, w_in, w_rec, w_out, &err) ||
        snn_rsnn_eprop_save(e, src, dst, &err))
        fail_msg("%s", err.msg);
    snn_model *m = NULL;
    if (snn_model_load(dst, NULL, &m, &err))
        fail_msg("%s", err.msg);
    snn_state *st = NULL;
    assert_int_equal(m->ops->state_new(m, &st, &err), 0);
    float in[N_IN], y;
    double eng = 0, worst = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N_IN; i++)
            in[i] = x[t][i];
        assert_int_equal(m->ops->step(m, st, in, &y, NULL), 0);
        eng += 0.5 * ((double)y - target[t]) * ((double)y - target[t]);
        worst = fmax(worst, fabs((double)y - y_eprop[t]));
    }
    printf("engine loss of the saved model %.6f (e-prop %.6f), worst output difference %.2g\n", eng, final, worst);
    assert_true(fabs(eng - final) <= 1e-4 * final);
    m->ops->state_free(m, st);
    snn_model_free(m);
    unlink(src);
    unlink(dst);
    snn_eprop_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_of_sines_loss_falls_tenfold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
