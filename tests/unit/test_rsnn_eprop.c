/*
 * test_rsnn_eprop.c -- the e-prop <-> RSNN model file bridge (models/rsnn_eprop.h).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "modelgen.h"
#include "rsnn.h"
#include "rsnn_eprop.h"
#include "testutil.h"

#define NI 10
#define NR 16
#define NA 8
#define NO 2
#define T 200

static uint64_t rs = 12345;
static double unif(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}
static double gauss(void)
{
    double u = unif() + 1e-12, v = unif();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The tiny network of these tests: 8 LIF + 8 ALIF, regression, full-weight spikes. */
static snn_eprop_params tiny_params(void)
{
    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = NI;
    p.n_rec = NR;
    p.n_out = NO;
    p.n_adaptive = NA;
    p.dt = 1.0;
    p.tau_m = 20.0;
    p.tau_out = 20.0;
    p.v_th = 0.5;
    p.adapt_tau = 200.0;
    p.adapt_beta = 0.05;
    p.regular_spike_arrival = 1;
    p.psi_height = 0.3 / p.v_th;
    p.psi_width = p.v_th;
    p.c_reg = 0.0;
    p.optimizer = SNN_EPROP_ADAM;
    p.eta = 0.01;
    p.update_interval = T;
    p.learning_window = T;
    return p;
}

static void write_tiny(const char *path)
{
    static double w_in[NR * NI], w_rec[NR * NR], w_out[NO * NR];
    rs = 12345;
    for (size_t i = 0; i < NR * NI; i++)
        w_in[i] = 0.6 * gauss();
    for (size_t i = 0; i < NR * NR; i++)
        w_rec[i] = (i % (NR + 1)) ? 0.2 * gauss() : 0.0;
    for (size_t i = 0; i < NO * NR; i++)
        w_out[i] = 0.3 * gauss();
    snn_eprop_params p = tiny_params();
    snn_err err;
    if (snn_rsnn_eprop_create(path, "tiny", &p, w_in, w_rec, w_out, &err))
        fail_msg("%s", err.msg);
}

static uint8_t xs[T][NI];
static double tgt[T][NO];
static void make_inputs(void)
{
    rs = 777;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < NI; i++)
            xs[t][i] = unif() < 0.15;
        tgt[t][0] = sin(2 * M_PI * t / 100.0);
        tgt[t][1] = 0.5 * cos(2 * M_PI * t / 50.0);
    }
}

/* The parameters read back from a created file are the ones it was written from. */
static void test_params_round_trip(void **state)
{
    (void)state;
    const char *path = mg_tmp("params");
    write_tiny(path);
    snn_eprop_params p = snn_eprop_params_default(), want = tiny_params();
    int binary = -1;
    snn_err err;
    assert_int_equal(snn_rsnn_eprop_params(path, &p, &binary, &err), 0);
    assert_int_equal(binary, 0);
    assert_int_equal(p.n_in, NI);
    assert_int_equal(p.n_rec, NR);
    assert_int_equal(p.n_out, NO);
    assert_int_equal(p.n_adaptive, NA);
    assert_int_equal(p.regular_spike_arrival, 1);
    assert_int_equal(p.reset_adapted, 1);
    assert_int_equal(p.t_ref_steps, 0);
    assert_int_equal(p.loss, SNN_EPROP_MSE);
    assert_true(fabs(p.dt - 1.0) < 1e-9);
    assert_true(fabs(p.tau_m - want.tau_m) < 1e-4);   /* through a float32 decay */
    assert_true(fabs(p.tau_out - want.tau_out) < 1e-4);
    assert_true(fabs(p.v_th - 0.5) < 1e-12);
    assert_true(fabs(p.adapt_tau - want.adapt_tau) / want.adapt_tau < 1e-3);
    assert_true(fabs(p.adapt_beta - want.adapt_beta) / want.adapt_beta < 1e-4);
    unlink(path);
}

/* Train, save, load with the engine: the engine's forward pass has the same
 * spikes at every step as e-prop's (learning off), and outputs to float precision. */
static void test_trained_model_runs_identically_in_engine(void **state)
{
    (void)state;
    const char *src = mg_tmp("src"), *dst = mg_tmp("dst");
    write_tiny(src);
    make_inputs();
    snn_eprop_params p = tiny_params();
    snn_eprop *e = NULL;
    snn_err err;
    if (snn_rsnn_eprop_new(src, &p, &snn_test_allocator, &e, &err)) /* leak-checked */
        fail_msg("%s", err.msg);
    size_t r, c;
    double w0 = snn_eprop_weights(e, SNN_EPROP_REC, &r, &c)[1];
    double first = 0, last = 0;
    for (int it = 0; it < 20; it++) {
        for (int t = 0; t < T; t++)
            assert_int_equal(snn_eprop_step(e, xs[t], tgt[t], -1, NULL, NULL), 0);
        if (it == 0)
            first = snn_eprop_last_loss(e);
        last = snn_eprop_last_loss(e);
    }
    assert_true(last < first);                                       /* it learned */
    assert_true(snn_eprop_weights(e, SNN_EPROP_REC, &r, &c)[1] != w0); /* recurrent too */
    if (snn_rsnn_eprop_save(e, src, dst, &err))
        fail_msg("%s", err.msg);

    snn_model *m = NULL;
    if (snn_model_load(dst, NULL, &m, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(m->n_in, NI);
    assert_int_equal(m->n_out, NO);
    snn_state *s = NULL;
    assert_int_equal(m->ops->state_new(m, &s, &err), 0);

    snn_eprop_set_learning(e, 0);
    snn_eprop_reset(e);
    float in[NI], out[NO];
    double eo[NO], worst = 0;
    long spikes = 0, spikes_adaptive = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < NI; i++)
            in[i] = xs[t][i];
        assert_int_equal(snn_eprop_step(e, xs[t], NULL, -1, eo, NULL), 0);
        assert_int_equal(m->ops->step(m, s, in, out, NULL), 0);
        const uint8_t *se = snn_eprop_spikes(e), *sm = snn_rsnn_spikes(s, 0);
        for (int j = 0; j < NR; j++) {
            if (se[j] != sm[j])
                fail_msg("step %d neuron %d: e-prop spike %d, engine %d", t, j, se[j], sm[j]);
            spikes += se[j];
            spikes_adaptive += j >= NR - NA ? se[j] : 0;
        }
        for (int o = 0; o < NO; o++)
            worst = fmax(worst, fabs(eo[o] - out[o]));
    }
    printf("spikes compared: %ld (%ld adaptive), worst output difference %.3g\n", spikes, spikes_adaptive,
           worst);
    assert_true(spikes > 100 && spikes_adaptive > 20); /* the comparison is not vacuous */
    assert_true(worst < 1e-4);

    /* The file holds e-prop's weights, rounded to float32, and the training note. */
    snn_st st;
    assert_int_equal(snn_st_open(&st, dst, NULL, &err), 0);
    float w[NO * NR];
    uint64_t shape[2] = {NO, NR};
    assert_int_equal(snn_st_read(&st, "readout.w", shape, 2, 0, w, &err), 0);
    const double *wo = snn_eprop_weights(e, SNN_EPROP_OUT, &r, &c);
    for (size_t i = 0; i < NO * NR; i++)
        assert_true(w[i] == (float)wo[i]);
    assert_non_null(strstr(snn_st_meta(&st, "config"), "\"training\""));
    snn_st_close(&st);

    m->ops->state_free(m, s);
    snn_model_free(m);
    snn_eprop_free(e);
    unlink(src);
    unlink(dst);
}

/* A failed save leaves the previous file at the destination byte for byte. */
static void test_failed_save_keeps_old_file(void **state)
{
    (void)state;
    const char *src = mg_tmp("asrc"), *dst = mg_tmp("adst");
    write_tiny(src);
    write_tiny(dst);
    size_t n0, n1;
    char *before = snn_test_read_file(dst, &n0);
    assert_non_null(before);
    snn_eprop_params p = tiny_params();
    snn_eprop *e = NULL;
    snn_err err;
    assert_int_equal(snn_rsnn_eprop_new(src, &p, NULL, &e, &err), 0);
    make_inputs();
    for (int t = 0; t < T; t++)
        snn_eprop_step(e, xs[t], tgt[t], -1, NULL, NULL); /* weights now differ */
    /* The temporary file cannot be created: directories hold the names the
     * next saves of this process would use (path.tmp.<pid>.<n>, n counting up). */
    char tmp[300];
    for (int k = 1; k <= 256; k++) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", dst, (long)getpid(), k);
        mkdir(tmp, 0755);
    }
    int rc = snn_rsnn_eprop_save(e, src, dst, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "tmp"));
    char *after = snn_test_read_file(dst, &n1);
    assert_non_null(after);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    for (int k = 1; k <= 256; k++) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", dst, (long)getpid(), k);
        rmdir(tmp);
    }
    free(after);
    /* An unwritable directory (only enforced for non-root users). */
    if (geteuid() != 0) {
        char dir[256], path[300];
        snprintf(dir, sizeof dir, "/tmp/snn-test-%ld-ro", (long)getpid());
        assert_int_equal(mkdir(dir, 0755), 0);
        snprintf(path, sizeof path, "%s/m.safetensors", dir);
        write_tiny(path);
        chmod(dir, 0555);
        assert_true(snn_rsnn_eprop_save(e, src, path, &err) < 0);
        after = snn_test_read_file(path, &n1);
        assert_non_null(after);
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        free(after);
        chmod(dir, 0755);
        unlink(path);
        rmdir(dir);
    }
    /* Then the save succeeds and replaces it. */
    assert_int_equal(snn_rsnn_eprop_save(e, src, dst, &err), 0);
    after = snn_test_read_file(dst, &n1);
    assert_true(n1 != n0 || memcmp(before, after, n0) != 0);
    free(before);
    free(after);
    snn_eprop_free(e);
    unlink(src);
    unlink(dst);
}

/* Files e-prop cannot train are refused with the field named. */
static void test_untrainable_files_refused(void **state)
{
    (void)state;
    const char *path = mg_tmp("bad");
    float w_in[4 * 3] = {0}, w_out[2 * 4] = {0}, one = 1.0f, half = 0.5f, al = 0.3f;
    snn_st_out t[] = {
        MG_T2("layers.0.w_in", 4, 3, w_in), MG_T1("layers.0.alpha", 1, &al), MG_T1("layers.0.beta", 1, &half),
        MG_T2("readout.w", 2, 4, w_out),     MG_T1("readout.alpha", 1, &al),  MG_T1("readout.beta", 1, &one),
    };
    const char *cfg = "{\"dt\":0.001,\"timing\":\"direct\",\"input\":{\"size\":3},"
                      "\"layers\":[{\"size\":4,\"neuron\":\"lif\",\"reset\":\"subtract\",\"tau\":\"decay\"}],"
                      "\"readout\":{\"size\":2,\"tau\":\"decay\"}}";
    assert_int_equal(mg_write(path, cfg, t, 6), 0);
    snn_eprop_params p = snn_eprop_params_default();
    snn_eprop *e = (snn_eprop *)&p;
    snn_err err;
    assert_int_equal(snn_rsnn_eprop_new(path, NULL, NULL, &e, &err), -SNN_ENOTSUP);
    assert_null(e);
    assert_non_null(strstr(err.msg, "layers.0.alpha"));

    const char *stork = "{\"dt\":0.001,\"timing\":\"stork\",\"input\":{\"size\":3},"
                        "\"layers\":[{\"size\":4,\"neuron\":\"lif\",\"reset\":\"subtract\"}],"
                        "\"readout\":{\"size\":2}}";
    assert_int_equal(mg_write(path, stork, t, 6), 0);
    assert_int_equal(snn_rsnn_eprop_params(path, &p, NULL, &err), -SNN_ENOTSUP);
    assert_non_null(strstr(err.msg, "timing"));

    const char *zero = "{\"dt\":0.001,\"timing\":\"direct\",\"input\":{\"size\":3},"
                       "\"layers\":[{\"size\":4,\"neuron\":\"lif\",\"reset\":\"zero\"}],"
                       "\"readout\":{\"size\":2}}";
    assert_int_equal(mg_write(path, zero, t, 6), 0);
    assert_int_equal(snn_rsnn_eprop_params(path, &p, NULL, &err), -SNN_ENOTSUP);
    assert_non_null(strstr(err.msg, "reset"));

    const char *grouped = "{\"dt\":0.001,\"timing\":\"direct\",\"input\":{\"size\":3},"
                          "\"layers\":[{\"size\":4,\"neuron\":\"lif\",\"reset\":\"subtract\"}],"
                          "\"readout\":{\"size\":1,\"groups\":2}}";
    assert_int_equal(mg_write(path, grouped, t, 6), 0);
    assert_int_equal(snn_rsnn_eprop_params(path, &p, NULL, &err), -SNN_ENOTSUP);
    assert_non_null(strstr(err.msg, "readout.groups"));
    unlink(path);
}

/* Engine inputs become e-prop counts: binary -> 0/1, counts rounded and clamped. */
static void test_input_conversion(void **state)
{
    (void)state;
    const float in[6] = {0.0f, 1.0f, 2.6f, -3.0f, 300.0f, 0.2f};
    uint8_t x[6];
    snn_rsnn_eprop_input(in, 6, 0, x);
    const uint8_t counts[6] = {0, 1, 3, 0, 255, 0};
    assert_memory_equal(x, counts, 6);
    snn_rsnn_eprop_input(in, 6, 1, x);
    const uint8_t bin[6] = {0, 1, 1, 1, 1, 1};
    assert_memory_equal(x, bin, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_round_trip),
        cmocka_unit_test(test_trained_model_runs_identically_in_engine),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_untrainable_files_refused),
        cmocka_unit_test(test_input_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
