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
 * Also NEST's newer eprop_iaf* models (eprop_iaf_regression, see below), the
 * bsshslm_2020 classification test (batch 1 and 2, inputs shipped as fixtures in
 * tests/fixtures/eprop_nest/bsshslm_2020_classification) and the eprop_iaf
 * surrogate-gradient test (four surrogate shapes), each within relative 1e-5.
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

/* NEST's classification test (test_eprop_bsshslm_2020_plasticity.py::
 * test_eprop_classification, evidence accumulation): 40 inputs -> 50 LIF + 50
 * adaptive (eprop_iaf_bsshslm_2020 + eprop_iaf_adapt_bsshslm_2020) -> 2 readouts,
 * cross-entropy, Adam (eta 5e-3, epsilon 1e-8), average_gradient, 2250-step
 * sequences = update interval, learning window 150, batch 1 or 2. Inputs are
 * text fixtures (tests/fixtures/eprop_nest/bsshslm_2020_classification, README.md
 * there) regenerated with numpy's RandomState(1). NEST's loss per iteration:
 * mean over the batch and the 150 window steps of -sum_o y*_o log pi_o. */
static double *read_matrix(const char *rel, size_t count)
{
    FILE *f = fopen(snn_test_src(rel), "r");
    if (!f)
        fail_msg("cannot open %s", snn_test_src(rel));
    double *m = malloc(count * sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < count; i++)
        if (fscanf(f, "%lf", &m[i]) != 1)
            fail_msg("%s: short at %zu", rel, i);
    fclose(f);
    return m;
}

#define CLS_DIR "tests/fixtures/eprop_nest/bsshslm_2020_classification/"

static double run_classification(uint32_t batch_size, const double ref[5])
{
    enum { N_IN = 40, N_REC = 100, N_OUT = 2, SEQ = 2250, WIN = 150, N_ITER = 5 };
    double *w_in = read_matrix(CLS_DIR "w_in_rec.txt", N_REC * N_IN);
    double *w_rec = read_matrix(CLS_DIR "w_rec_rec.txt", N_REC * N_REC);
    double *w_out = read_matrix(CLS_DIR "w_rec_out.txt", N_OUT * N_REC);
    double *b_fb = read_matrix(CLS_DIR "w_out_rec.txt", N_REC * N_OUT);
    size_t n_seq = (size_t)N_ITER * batch_size, n_steps = n_seq * SEQ;
    uint8_t *spk = calloc(n_steps * N_IN, 1);
    int *label = calloc(n_seq, sizeof *label);
    assert_non_null(spk);
    assert_non_null(label);
    FILE *f = fopen(snn_test_src(batch_size == 1 ? CLS_DIR "spikes_batch1.txt"
                                                 : CLS_DIR "spikes_batch2.txt"), "r");
    assert_non_null(f);
    long st, ch;
    while (fscanf(f, "%ld %ld", &st, &ch) == 2) {
        assert_true(st >= 0 && (size_t)st < n_steps && ch >= 0 && ch < N_IN);
        spk[(size_t)st * N_IN + (size_t)ch] = 1;
    }
    fclose(f);
    f = fopen(snn_test_src(batch_size == 1 ? CLS_DIR "targets_batch1.txt"
                                           : CLS_DIR "targets_batch2.txt"), "r");
    assert_non_null(f);
    for (size_t s = 0; s < n_seq; s++)
        assert_int_equal(fscanf(f, "%d", &label[s]), 1);
    fclose(f);

    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = N_IN;
    p.n_rec = N_REC;
    p.n_out = N_OUT;
    p.n_adaptive = 50; /* nrns_rec = nrns_reg + nrns_ad */
    p.tau_m = p.tau_out = 20.0;
    p.v_th = 0.6;
    p.t_ref_steps = 5;
    p.psi_height = 0.3 / 0.6;
    p.psi_width = 1.0 * 0.6;
    p.adapt_tau = 2000.0;
    p.adapt_beta = 1.7 * ((1.0 - exp(-1.0 / 2000.0)) / (1.0 - exp(-1.0 / 20.0)));
    p.regular_spike_arrival = 1;    /* recurrent neurons */
    p.readout_spike_arrival = 2;    /* readout: regular_spike_arrival False */
    p.c_reg = 300.0;
    p.f_target_hz = 10.0;
    p.loss = SNN_EPROP_CROSS_ENTROPY;
    p.feedback = SNN_EPROP_FEEDBACK_RANDOM;
    p.optimizer = SNN_EPROP_ADAM;
    p.eta = 5e-3;
    p.adam_beta1 = 0.9;
    p.adam_beta2 = 0.999;
    p.adam_epsilon = 1e-8;
    p.update_interval = SEQ;
    p.learning_window = WIN;
    p.batch_size = batch_size;
    p.reset_on_update = 1;
    p.average_gradient = 1;
    snn_eprop *e = NULL;
    snn_err err = {{0}};
    if (snn_eprop_init(&e, &p, w_in, w_rec, w_out, b_fb, NULL, &err))
        fail_msg("%s", err.msg);

    double loss[N_ITER] = {0}, worst = 0.0;
    for (size_t n = 0; n < n_steps; n++) {
        size_t s = n / SEQ;
        assert_int_equal(snn_eprop_step(e, &spk[n * N_IN], NULL, label[s], NULL, NULL), 0);
        if (n % SEQ == SEQ - 1)
            loss[s / batch_size] += snn_eprop_last_loss(e) / WIN / batch_size;
    }
    printf("classification, batch_size %u\n", batch_size);
    for (int it = 0; it < N_ITER; it++) {
        double rel = fabs(loss[it] - ref[it]) / ref[it];
        printf("%4d  %.12f  %.12f  %.3e\n", it, loss[it], ref[it], rel);
        if (rel > worst)
            worst = rel;
    }
    printf("worst relative error vs NEST: %.3e\n", worst);
    snn_eprop_free(e);
    free(w_in);
    free(w_rec);
    free(w_out);
    free(b_fb);
    free(spk);
    free(label);
    return worst;
}

static void test_bsshslm_2020_classification_batch1(void **state)
{
    (void)state;
    static const double ref[5] = {0.741152550006, 0.740388187700, 0.665785233177,
                                  0.663644193322, 0.729428962844};
    assert_true(run_classification(1, ref) < 1e-5);
}

static void test_bsshslm_2020_classification_batch2(void **state)
{
    (void)state;
    static const double ref[5] = {0.702163370672, 0.735555303152, 0.740354864111,
                                  0.683882815282, 0.707841122268};
    assert_true(run_classification(2, ref) < 1e-5);
}

/* NEST's test_eprop_plasticity.py::test_eprop_surrogate_gradients: one eprop_iaf
 * (tau_m 10 ms (default), V_th 0.6, t_ref 3 ms, c_reg 0) driven through a parrot
 * neuron by spikes at 1, 2, 3, 5, 9, 11 ms with weight 0.3; surrogate height 0.5,
 * width 1/1.7. NEST's generator -> parrot -> neuron path takes two 1-ms delays, so
 * the spikes reach the neuron at our steps 3, 4, 5, 7, 11, 13, and the five values
 * NEST records last are psi of our steps 15..19. No readout error and c_reg = 0:
 * the weight does not change (learning is off here). */
static void test_eprop_iaf_surrogate_gradients(void **state)
{
    (void)state;
    static const struct {
        snn_eprop_surrogate shape;
        const char *name;
        double ref[5];
    } cases[] = {
        {SNN_EPROP_PIECEWISE_LINEAR, "piecewise_linear",
         {0.21030100902759, 0.18933659619924, 0.17036721102500, 0.15320300152221,
          0.13767218251307}},
        {SNN_EPROP_EXPONENTIAL, "exponential",
         {0.28011776848615, 0.26861558105999, 0.25861553046549, 0.24988832085299,
          0.24224569105944}},
        {SNN_EPROP_FAST_SIGMOID_DERIV, "fast_sigmoid_derivative",
         {0.20044113201621, 0.19020804299944, 0.18160934703950, 0.17432167613232,
          0.16809903522604}},
        {SNN_EPROP_ARCTAN_DERIV, "arctan_derivative",
         {0.37433498786304, 0.36073812744784, 0.34852165076370, 0.33759316659435,
          0.32784181049728}},
    };
    static const int arrive[6] = {3, 4, 5, 7, 11, 13};
    double worst = 0.0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snn_eprop_params p = snn_eprop_params_default();
        p.n_in = p.n_rec = p.n_out = 1;
        p.timing = SNN_EPROP_CONTINUOUS;
        p.tau_m = 10.0;
        p.v_th = 0.6;
        p.t_ref_steps = 3;
        p.psi_height = 0.5;
        p.psi_width = 1.0 / 1.7;
        p.psi_shape = cases[c].shape;
        p.c_reg = 0.0;
        p.regular_spike_arrival = 1;
        p.reset_on_update = 0;
        p.update_interval = p.learning_window = 20;
        double w_in = 0.3, w_out = 0.0, b = 0.0;
        snn_eprop *e = NULL;
        snn_err err = {{0}};
        if (snn_eprop_init(&e, &p, &w_in, NULL, &w_out, &b, NULL, &err))
            fail_msg("%s", err.msg);
        snn_eprop_set_learning(e, 0);
        printf("surrogate %s\n", cases[c].name);
        for (int k = 0; k < 20; k++) {
            uint8_t x = 0;
            for (int q = 0; q < 6; q++)
                x |= arrive[q] == k;
            assert_int_equal(snn_eprop_step(e, &x, NULL, -1, NULL, NULL), 0);
            if (k >= 15) {
                double psi = snn_eprop_psi(e)[0], ref = cases[c].ref[k - 15];
                double rel = fabs(psi - ref) / ref;
                printf("%4d  %.14f  %.14f  %.3e\n", k, psi, ref, rel);
                if (rel > worst)
                    worst = rel;
            }
        }
        snn_eprop_free(e);
    }
    printf("worst relative error vs NEST: %.3e (limit 1e-5)\n", worst);
    assert_true(worst < 1e-5);
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
        cmocka_unit_test(test_bsshslm_2020_classification_batch1),
        cmocka_unit_test(test_bsshslm_2020_classification_batch2),
        cmocka_unit_test(test_eprop_iaf_surrogate_gradients),
    };
    return cmocka_run_group_tests_name("eprop_nest", tests, NULL, NULL);
}
