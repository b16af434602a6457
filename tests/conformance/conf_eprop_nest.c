/*
 * conf_eprop_nest.c -- e-prop against NEST's sine-wave regression test.
 *
 * Data: ../shared/data/eprop_nest (SOURCES.md): the initial weights, input
 * spikes and target of testsuite/pytests/synapses/test_eprop_bsshslm_2020_plasticity.py
 * (nest-simulator @ 84b06d8d), regenerated with numpy's legacy RandomState(1),
 * and the five per-iteration losses NEST and the original TensorFlow code print.
 * Setup (reference_losses.json): 100 inputs -> 100 LIF -> 1 readout, MSE,
 * 1000-step sequences = update interval = learning window, reset on update,
 * c_reg 300 toward 10 Hz, gradient descent eta 1e-4, random feedback w_out_rec.
 *
 * Must hold: each of the five losses within relative 1e-5 of NEST's.
 * Also NEST's newer eprop_iaf* models (eprop_iaf_regression, see below).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "eprop.h"
#include "npy.h"
#include "testutil.h"

/* Loads dir/name.npy and checks it has count elements. */
static snn_npy load(const char *dir, const char *name, size_t count)
{
    char rel[256];
    snprintf(rel, sizeof rel, "eprop_nest/%s/%s.npy", dir, name);
    snn_npy n;
    snn_err err = {{0}};
    int rc = snn_npy_load(snn_test_data(rel), NULL, &n, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(n.count, count);
    return n;
}

static void test_bsshslm_2020_regression_losses(void **state)
{
    (void)state;
    static const double nest[5] = {101.964356999041, 103.466731126205, 103.340607074771,
                                   103.680244037686, 104.412775748752};
    static const double tf[5] = {101.964363098144, 103.466735839843, 103.340606689453,
                                 103.680244445800, 104.412780761718};
    const char *dir = "bsshslm_2020_regression";
    const size_t n_in = 100, n_rec = 100, n_out = 1, T = 1000;
    snn_npy w_in = load(dir, "w_in_rec", n_rec * n_in);
    snn_npy w_rec = load(dir, "w_rec_rec", n_rec * n_rec);
    snn_npy w_out = load(dir, "w_rec_out", n_out * n_rec);
    snn_npy b_fb = load(dir, "w_out_rec", n_rec * n_out);
    snn_npy spk = load(dir, "input_spikes", n_in * T);
    snn_npy tgt = load(dir, "target", T);

    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = (uint32_t)n_in;
    p.n_rec = (uint32_t)n_rec;
    p.n_out = (uint32_t)n_out;
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    int rc = snn_eprop_init(&e, &p, w_in.data, w_rec.data, w_out.data, b_fb.data, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);

    uint8_t x[100];
    double worst = 0.0;
    printf("iter  loss (snnd)        loss (NEST)        rel.err vs NEST  rel.err vs TF\n");
    for (int it = 0; it < 5; it++) {
        for (size_t k = 0; k < T; k++) {
            for (size_t i = 0; i < n_in; i++)
                x[i] = spk.data[i * T + k] != 0.0;
            assert_int_equal(snn_eprop_step(e, x, &tgt.data[k], -1, NULL, NULL), 0);
        }
        double loss = snn_eprop_last_loss(e);
        double rel = fabs(loss - nest[it]) / nest[it];
        double rel_tf = fabs(loss - tf[it]) / tf[it];
        printf("%4d  %.12f  %.12f  %.3e        %.3e\n", it, loss, nest[it], rel, rel_tf);
        if (rel > worst)
            worst = rel;
    }
    printf("worst relative error vs NEST: %.3e (limit 1e-5)\n", worst);
    assert_true(worst < 1e-5);
    assert_int_equal(snn_eprop_intervals(e), 5);

    snn_eprop_free(e);
    snn_npy_free(&w_in, NULL);
    snn_npy_free(&w_rec, NULL);
    snn_npy_free(&w_out, NULL);
    snn_npy_free(&b_fb, NULL);
    snn_npy_free(&spk, NULL);
    snn_npy_free(&tgt, NULL);
}

/* NEST's newer e-prop (eprop_iaf* + eprop_readout + eprop_synapse with
 * optimize_each_step, test_eprop_plasticity.py::test_eprop_regression): 100-step
 * sequences, no update interval, ISI trace cutoff 100, kappa = kappa_reg = 0.97.
 * Weights are scaled in float32 as numpy does (scale 1 - kappa = 0.03). The
 * readout NEST records at loss index j has seen the recurrent spikes up to step
 * j-1 of the input, so its y_j is our output of step j-1 (y_-1 = 0), and our
 * step n is given the target of index n+1 (all zero in this test: 100-step
 * sequences make steps // T = 0 for every sine period). */
enum { IAF = 0, IAF_ADAPT, PSC_DELTA, PSC_DELTA_ADAPT };

static void run_eprop_iaf(int variant, const char *name, const double ref[5])
{
    const char *dir = "eprop_iaf_regression";
    const size_t n_in = 100, n_rec = 100, n_out = 1, T = 100;
    snn_npy w_in = load(dir, "w_in_rec", n_rec * n_in);
    snn_npy w_rec = load(dir, "w_rec_rec", n_rec * n_rec);
    snn_npy w_out = load(dir, "w_rec_out", n_out * n_rec);
    snn_npy b_fb = load(dir, "w_out_rec", n_rec * n_out);
    snn_npy spk = load(dir, "input_spikes", n_in * T);
    snn_npy tgt = load(dir, "target", T);
    const float s32 = (float)(1.0 - 0.97); /* numpy: float32 array * 0.03 stays float32 */
    int psc = variant == PSC_DELTA || variant == PSC_DELTA_ADAPT;
    for (size_t i = 0; i < n_out * n_rec; i++)
        w_out.data[i] = (double)((float)w_out.data[i] * s32);
    for (size_t i = 0; i < n_rec * n_out; i++)
        b_fb.data[i] = psc ? (double)((float)b_fb.data[i] / s32) : (double)((float)b_fb.data[i] * s32);
    if (!psc) {
        for (size_t i = 0; i < n_rec * n_in; i++)
            w_in.data[i] = (double)((float)w_in.data[i] * s32);
        for (size_t i = 0; i < n_rec * n_rec; i++)
            w_rec.data[i] = (double)((float)w_rec.data[i] * s32);
    }

    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = (uint32_t)n_in;
    p.n_rec = (uint32_t)n_rec;
    p.n_out = (uint32_t)n_out;
    p.timing = SNN_EPROP_CONTINUOUS;
    p.update_interval = p.learning_window = (uint32_t)T;
    p.reset_on_update = 0;
    p.regular_spike_arrival = 1;
    p.c_reg = 300.0 / 100.0;
    p.kappa = p.kappa_reg = 0.97;
    p.isi_trace_cutoff = 100;
    p.adam_t0 = 2; /* offset_gen + delay_in_rec */
    p.eta = 1e-4 * (1.0 - 0.97) * (1.0 - 0.97);
    p.optimizer = variant == IAF ? SNN_EPROP_ADAM : SNN_EPROP_SGD;
    if (psc) {
        p.reset = SNN_EPROP_RESET_TO_VALUE;
        p.v_reset = -0.5;
        p.v_th = 0.5;
        p.c_reg = 2.0 / 100.0 / ((1.0 - 0.97) * (1.0 - 0.97));
    }
    if (variant == IAF_ADAPT) {
        p.n_adaptive = (uint32_t)n_rec;
        p.adapt_beta = 0.0174;
        p.adapt_tau = 2000.0;
    } else if (variant == PSC_DELTA_ADAPT) {
        /* the test sets no adaptation parameters here: NEST's defaults */
        p.n_adaptive = (uint32_t)n_rec;
        p.adapt_beta = 1.0;
        p.adapt_tau = 10.0;
    }
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    int rc = snn_eprop_init(&e, &p, w_in.data, w_rec.data, w_out.data, b_fb.data, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);

    uint8_t x[100];
    double loss[5] = {0}, y_prev = 0.0, worst = 0.0;
    for (size_t n = 0; n + 1 < 5 * T; n++) {
        size_t k = n % T;
        for (size_t i = 0; i < n_in; i++)
            x[i] = spk.data[i * T + k] != 0.0;
        double out, ys = tgt.data[(n + 1) % T];
        assert_int_equal(snn_eprop_step(e, x, &ys, -1, &out, NULL), 0);
        /* loss index j = n: NEST's readout y_j = our output of step j-1 */
        double d = y_prev - tgt.data[n % T];
        loss[n / T] += 0.5 * d * d;
        y_prev = out;
    }
    double d = y_prev - tgt.data[(5 * T - 1) % T];
    loss[4] += 0.5 * d * d;
    printf("%s\n", name);
    for (int it = 0; it < 5; it++) {
        double rel = fabs(loss[it] - ref[it]) / ref[it];
        printf("%4d  %.14f  %.14f  %.3e\n", it, loss[it], ref[it], rel);
        if (rel > worst)
            worst = rel;
    }
    printf("worst relative error vs NEST: %.3e (limit 1e-5)\n", worst);
    snn_eprop_free(e);
    snn_npy_free(&w_in, NULL);
    snn_npy_free(&w_rec, NULL);
    snn_npy_free(&w_out, NULL);
    snn_npy_free(&b_fb, NULL);
    snn_npy_free(&spk, NULL);
    snn_npy_free(&tgt, NULL);
    assert_true(worst < 1e-5);
}

static void test_eprop_iaf_adam_losses(void **state)
{
    (void)state;
    static const double ref[5] = {0.14000491891386, 0.28735818029752, 0.22263713699860,
                                  0.23015072431384, 0.17565248170694};
    run_eprop_iaf(IAF, "eprop_iaf (adam)", ref);
}

static void test_eprop_iaf_adapt_losses(void **state)
{
    (void)state;
    static const double ref[5] = {0.02242584487453, 0.01916753791522, 0.00571493935652,
                                  0.00037875376195, 0.00037823157578};
    run_eprop_iaf(IAF_ADAPT, "eprop_iaf_adapt (gradient descent)", ref);
}

static void test_eprop_iaf_psc_delta_losses(void **state)
{
    (void)state;
    static const double ref[5] = {0.27039631749159, 0.51390204375229, 0.53473859833866,
                                  0.53608474802202, 0.49323580244201};
    run_eprop_iaf(PSC_DELTA, "eprop_iaf_psc_delta (gradient descent)", ref);
}

static void test_eprop_iaf_psc_delta_adapt_losses(void **state)
{
    (void)state;
    static const double ref[5] = {0.16416646182675, 0.27952159282830, 0.29937515524341,
                                  0.26160957500433, 0.26384514215024};
    run_eprop_iaf(PSC_DELTA_ADAPT, "eprop_iaf_psc_delta_adapt (gradient descent)", ref);
}

int main(void)
{
    snn_test_data("eprop_nest/reference_losses.json");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bsshslm_2020_regression_losses),
        cmocka_unit_test(test_eprop_iaf_adam_losses),
        cmocka_unit_test(test_eprop_iaf_adapt_losses),
        cmocka_unit_test(test_eprop_iaf_psc_delta_losses),
        cmocka_unit_test(test_eprop_iaf_psc_delta_adapt_losses),
    };
    return cmocka_run_group_tests_name("eprop_nest", tests, NULL, NULL);
}
