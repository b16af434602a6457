/*
 * conf_tinyrsnn.c -- the published tinyRSNN finger-velocity decoders (Liu et al. 2024,
 * fmi-basel/neural-decoding-RSNN) run by the rsnn engine agree with the independent numpy
 * reference (models/tools/reference_rsnn.py) on 10 s of real macaque spikes.
 *
 * Fixtures (tests/fixtures/tinyrsnn, see its README.md): input_{indy,loco}.csv (2500 bins of
 * 4 ms), <model>.expected.csv (step,t,vx,vy,spikes), <model>.raster.txt (64 chars of 0/1 per
 * step) and metrics.json (NeuroBench counts). Models: models/zoo/tinyrsnn-*.safetensors.
 *
 * bigrsnn-h64 (tests/fixtures/tinyrsnn): the authors' bigRSNN architecture (five leaky readouts
 * averaged, conf/model/bigRSNN.yaml) at 64 hidden neurons, its expected output computed by the
 * authors' own code (fmi-basel/stork @ 40c68fe with neural-decoding-RSNN's get_model, see the
 * fixtures' README.md) on the first 1000 bins of input_indy.csv: bigrsnn-h64.stork.csv.
 *
 * What must hold, per model:
 *   - the loaded model has the published footprint (21000 / 33288 bytes) and shape;
 *   - the hidden spike count equals the reference's at >= 99.9% of steps, and so does the
 *     per-neuron spike vector (snn_rsnn_spikes);
 *   - |vx - ref|, |vy - ref| <= 1e-4 * max|ref output| at every step;
 *   - the NeuroBench operation counts (dense, effective ACs, MACs) match metrics.json.
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
#include <jansson.h>

#include "model.h"
#include "rsnn.h"
#include "testutil.h"

#define MAX_STEPS 4096

/* A CSV of numbers with one header line; rows[r*cols + c]. */
typedef struct table {
    uint32_t rows, cols;
    double *v;
} table;

/* Parses a numeric CSV with a header line; returns 0 or -1. */
static int read_table(const char *path, table *t)
{
    size_t len;
    char *buf = snn_test_read_file(path, &len);
    if (!buf)
        return -1;
    char *p = strchr(buf, '\n');
    if (!p) {
        free(buf);
        return -1;
    }
    t->cols = 1;
    for (char *q = buf; q < p; q++)
        t->cols += *q == ',';
    t->rows = 0;
    t->v = NULL;
    size_t cap = 0, n = 0;
    p++;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            t->v = realloc(t->v, cap * sizeof(double));
            assert_non_null(t->v);
        }
        t->v[n++] = x;
        p = end;
        if (*p == ',' || *p == '\n' || *p == '\r')
            p++;
        if (*p == '\n')
            p++;
    }
    free(buf);
    if (n % t->cols)
        return -1;
    t->rows = (uint32_t)(n / t->cols);
    return 0;
}

typedef struct expect {
    const char *model;  /* models/zoo/<model>.safetensors, or tests/fixtures/tinyrsnn/ */
    const char *stem;   /* fixture file stem */
    const char *input;  /* fixture input file (its first rows when the reference is shorter) */
    uint32_t n_in;
    uint64_t footprint;
    uint64_t n_params;
    const char *ref;    /* reference suffix: ".expected.csv" (reference_rsnn.py) or ".stork.csv" */
    int metrics;        /* check metrics.json's NeuroBench totals */
} expect;

static void run_model(const expect *e)
{
    char rel[256];
    snn_err err = {{0}};
    snn_model *m = NULL;

    snprintf(rel, sizeof rel, "%s/%s.safetensors", e->metrics ? "models/zoo" : "tests/fixtures/tinyrsnn",
             e->model);
    int rc = snn_model_load(snn_test_src(rel), NULL, &m, &err);
    if (rc < 0)
        fail_msg("load %s: %s", rel, err.msg);
    assert_int_equal(m->n_in, e->n_in);
    assert_int_equal(m->n_out, 2);
    assert_string_equal(m->out_names[0], "vx");
    assert_string_equal(m->out_names[1], "vy");
    assert_true(fabs(m->dt - 0.004) < 1e-12);
    assert_int_equal(m->footprint, e->footprint);
    assert_int_equal(m->n_params, e->n_params);
    assert_int_equal(snn_rsnn_layers(m), 1);
    assert_int_equal(snn_rsnn_layer_size(m, 0), 64);

    table in, ref;
    snprintf(rel, sizeof rel, "tests/fixtures/tinyrsnn/%s", e->input);
    assert_int_equal(read_table(snn_test_src(rel), &in), 0);
    snprintf(rel, sizeof rel, "tests/fixtures/tinyrsnn/%s%s", e->stem, e->ref);
    assert_int_equal(read_table(snn_test_src(rel), &ref), 0);
    assert_int_equal(in.cols, e->n_in + 1);
    assert_int_equal(ref.cols, 5);
    assert_true(in.rows >= ref.rows);
    in.rows = ref.rows;
    assert_true(in.rows > 0 && in.rows <= MAX_STEPS);
    snprintf(rel, sizeof rel, "tests/fixtures/tinyrsnn/%s.raster.txt", e->stem);
    size_t rlen;
    char *raster = snn_test_read_file(snn_test_src(rel), &rlen);
    assert_non_null(raster);
    assert_int_equal(rlen, (size_t)in.rows * 65);

    double scale = 0;
    for (uint32_t k = 0; k < ref.rows; k++)
        for (int c = 2; c <= 3; c++)
            scale = fmax(scale, fabs(ref.v[k * 5 + c]));
    assert_true(scale > 0);
    const double tol = 1e-4 * scale;

    snn_state *s = NULL;
    if (m->ops->state_new(m, &s, &err) < 0)
        fail_msg("state_new: %s", err.msg);
    float x[192], out[2];
    uint32_t cnt_eq = 0, vec_eq = 0, first_cnt = UINT32_MAX, first_vec = UINT32_MAX, first_y = UINT32_MAX;
    uint32_t n_bad_y = 0, spikes = 0;
    double max_dy = 0;
    uint64_t dense = 0, acs = 0, macs = 0;
    for (uint32_t k = 0; k < in.rows; k++) {
        for (uint32_t j = 0; j < e->n_in; j++)
            x[j] = (float)in.v[(size_t)k * in.cols + 1 + j];
        snn_step_info info;
        assert_int_equal(m->ops->step(m, s, x, out, &info), 0);
        assert_int_equal(info.has_output, 1);
        assert_int_equal(info.hidden_neurons, 64);
        dense += info.dense_ops;
        acs += info.eff_acs;
        macs += info.eff_macs;
        spikes += info.hidden_spikes;
        if (info.hidden_spikes == (uint32_t)ref.v[k * 5 + 4])
            cnt_eq++;
        else if (first_cnt == UINT32_MAX)
            first_cnt = k;
        const uint8_t *sv = snn_rsnn_spikes(s, 0);
        int same = 1;
        for (uint32_t i = 0; i < 64; i++)
            same &= (sv[i] != 0) == (raster[(size_t)k * 65 + i] == '1');
        if (same)
            vec_eq++;
        else if (first_vec == UINT32_MAX)
            first_vec = k;
        for (int c = 0; c < 2; c++) {
            double dy = fabs((double)out[c] - ref.v[k * 5 + 2 + c]);
            max_dy = fmax(max_dy, dy);
            if (dy > tol) {
                n_bad_y++;
                if (first_y == UINT32_MAX) {
                    first_y = k;
                    printf("%s: first output beyond tolerance at step %u: %s = %.9g, reference %.9g\n", e->model,
                           k, c ? "vy" : "vx", out[c], ref.v[k * 5 + 2 + c]);
                }
            }
        }
    }
    printf("%s: %u steps, spikes %u; spike count equal at %u steps (%.3f%%), "
           "spike vector equal at %u (%.3f%%), first differing step %d/%d; max|dy| %.3g "
           "(output scale %.4g, tolerance %.3g), %u values beyond tolerance; per step: dense %.1f, "
           "effective ACs %.4f, MACs %.4f\n",
           e->model, in.rows, spikes, cnt_eq, 100.0 * cnt_eq / in.rows, vec_eq, 100.0 * vec_eq / in.rows,
           first_cnt == UINT32_MAX ? -1 : (int)first_cnt, first_vec == UINT32_MAX ? -1 : (int)first_vec, max_dy,
           scale, tol, n_bad_y, (double)dense / in.rows, (double)acs / in.rows, (double)macs / in.rows);
    fflush(stdout);

    assert_true(cnt_eq * 1000ull >= in.rows * 999ull);
    assert_true(vec_eq * 1000ull >= in.rows * 999ull);
    assert_int_equal(n_bad_y, 0);
    if (!e->metrics)
        goto reset;

    /* NeuroBench counts against the reference's (metrics.json "totals"). */
    json_error_t jerr;
    json_t *doc = json_load_file(snn_test_src("tests/fixtures/tinyrsnn/metrics.json"), 0, &jerr);
    assert_non_null(doc);
    json_t *tot = json_object_get(json_object_get(json_object_get(doc, "models"), e->model), "totals");
    assert_non_null(tot);
    uint64_t ref_spikes = (uint64_t)json_integer_value(json_object_get(tot, "hidden_spikes"));
    uint64_t ref_dense = (uint64_t)json_integer_value(json_object_get(tot, "dense"));
    uint64_t ref_acs = (uint64_t)json_integer_value(json_object_get(tot, "effective_acs"));
    uint64_t ref_macs = (uint64_t)json_integer_value(json_object_get(tot, "effective_macs"));
    printf("%s: totals engine/reference: spikes %u/%llu, dense %llu/%llu, ACs %llu/%llu, MACs %llu/%llu\n",
           e->model, spikes, (unsigned long long)ref_spikes, (unsigned long long)dense,
           (unsigned long long)ref_dense, (unsigned long long)acs, (unsigned long long)ref_acs,
           (unsigned long long)macs, (unsigned long long)ref_macs);
    json_decref(doc);
    assert_int_equal(dense, ref_dense);
    assert_int_equal(macs, ref_macs);
    /* ACs and spikes may differ only as much as the tolerated spike differences allow. */
    assert_true(llabs((long long)acs - (long long)ref_acs) * 1000 <= (long long)ref_acs);
    assert_true(llabs((long long)spikes - (long long)ref_spikes) * 100 <= (long long)ref_spikes + 100);

reset:
    /* state_reset returns to the initial state: the first step again gives row 0. */
    m->ops->state_reset(m, s);
    for (uint32_t j = 0; j < e->n_in; j++)
        x[j] = (float)in.v[1 + j];
    snn_step_info info;
    assert_int_equal(m->ops->step(m, s, x, out, &info), 0);
    assert_true(fabs((double)out[0] - ref.v[2]) <= tol);
    assert_true(fabs((double)out[1] - ref.v[3]) <= tol);

    m->ops->state_free(m, s);
    snn_model_free(m);
    free(raster);
    free(in.v);
    free(ref.v);
}

/* indy session 2016-06-22, seed 1: 96 channels. */
static void indy01_seed1_matches_reference(void **state)
{
    (void)state;
    static const expect e = {"tinyrsnn-indy01-seed1", "indy01-seed1", "input_indy.csv", 96, 21000, 10500,
                             ".expected.csv", 1};
    run_model(&e);
}

/* loco session 2017-02-10, seed 1: 192 channels (182 recorded units, 10 silent). */
static void loco01_seed1_matches_reference(void **state)
{
    (void)state;
    static const expect e = {"tinyrsnn-loco01-seed1", "loco01-seed1", "input_loco.csv", 192, 33288, 16644,
                             ".expected.csv", 1};
    run_model(&e);
}

/* bigRSNN (96 inputs, 64 hidden, 5 readouts of 2 averaged; float32) against stork itself: every
 * output within 1e-4 of the output scale, the same hidden spikes at >= 99.9% of steps. */
static void bigrsnn_h64_matches_stork(void **state)
{
    (void)state;
    /* tensors: w_in 64x96, w_rec 64x64, readout.w 10x64, 2x64 + 2x10 time-constant parameters */
    static const expect e = {"bigrsnn-h64", "bigrsnn-h64", "input_indy.csv", 96, 44112, 11028, ".stork.csv", 0};
    run_model(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(indy01_seed1_matches_reference),
        cmocka_unit_test(loco01_seed1_matches_reference),
        cmocka_unit_test(bigrsnn_h64_matches_stork),
    };
    return cmocka_run_group_tests_name("conf_tinyrsnn", tests, NULL, NULL);
}
