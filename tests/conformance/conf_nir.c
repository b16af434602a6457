/*
 * conf_nir.c -- NIR graphs from the NIR paper (neuromorphs/NIR @ 7232ada,
 * ../shared/data/nir) run through snnd's "nir" executor (models/nir.h).
 *
 * (a) single LIF (paper/01_lif): lif_norse.nir driven by the input column of
 *     each platform's CSV (1000 steps, dt = 1e-4). snnd's forward Euler is
 *     Norse's discretisation, so the Norse trace must be reproduced to float
 *     rounding; the other platforms are printed for the record.
 * (b) braille RNN (paper/03_rnn): the four graphs load with 12 inputs, 38|40
 *     hidden CubaLIF neurons and 7 outputs; flat and subgraph variants give
 *     identical hidden rasters; and their accuracy on the 7 letters (Space, A,
 *     E, I, O, U, Y) of ../shared/data/braille, encoded as in the paper
 *     (sigma-delta θ = 1, ON|OFF merged into 12 channels, 5 ms bins, binary),
 *     decided by argmax of the summed output spikes, is printed and bounded.
 *     The platforms' lif1 rasters (*_activity_*.npy) cannot be compared: they
 *     were computed from ds_test.pt sample 0, which is not in the data.
 * (c) CNN (paper/02_cnn): cnn_sinabs.nir (Conv2d, IF, SumPool2d, Flatten,
 *     Affine) loads with the shapes of its layers, and 60 steps of an
 *     N-MNIST-like input give, step by step, the output spikes and every IF
 *     layer's spike count of an independent PyTorch run of the same weights
 *     (tests/fixtures/nir/cnn_sinabs_reference.py, which wrote
 *     cnn_sinabs_expected.json). N-MNIST is not in the data, so the
 *     platforms' accuracies (*_accuracy.npy) are only printed.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "model.h"
#include "nir.h"
#include "npy.h"
#include "sigmadelta.h"
#include "testutil.h"

/* ---- (a) single LIF ------------------------------------------------------ */

typedef struct trace {
    int n;
    double x[1000], v[1000], z[1000];
} trace;

static void read_csv(const char *path, trace *t)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    t->n = 0;
    while (t->n < 1000 && fscanf(f, "%lf,%lf,%lf", &t->x[t->n], &t->v[t->n], &t->z[t->n]) == 3)
        t->n++;
    fclose(f);
    assert_int_equal(t->n, 1000);
}

typedef struct cmp {
    double max_dv;
    int agree, spikes, ref_spikes;
} cmp;

/* Runs graph (one input, one LIF node called lif) on the csv's input column
 * and compares the membrane and the output spikes step by step. */
static cmp run_lif(const char *graph, const char *lif, const char *csv, int reset)
{
    snn_nir_options o;
    snn_nir_options_default(&o); /* dt 1e-4, as paper/01_lif */
    o.reset = reset;
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(graph, &o, NULL, &m, &err) < 0)
        fail_msg("%s", err.msg);
    trace *t = malloc(sizeof *t);
    read_csv(csv, t);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    cmp c = {0, 0, 0, 0};
    for (int k = 0; k < t->n; k++) {
        float x = (float)t->x[k], y;
        assert_int_equal(m->ops->step(m, s, &x, &y, NULL), 0);
        const float *v;
        uint32_t n;
        assert_int_equal(snn_nir_probe(m, s, lif, "v", &v, &n), 0);
        double d = fabs((double)v[0] - t->v[k]);
        if (d > c.max_dv)
            c.max_dv = d;
        c.agree += (y != 0) == (t->z[k] != 0);
        c.spikes += y != 0;
        c.ref_spikes += t->z[k] != 0;
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
    free(t);
    return c;
}

/* lif_norse.nir reproduces lif_norse.csv: same 4 spikes, membrane within
 * float rounding (measured 3.7e-9). */
static void lif_norse_reproduces_norse_trace(void **unused)
{
    (void)unused;
    char g[1024]; /* snn_test_data's buffers rotate */
    snprintf(g, sizeof g, "%s", snn_test_data("nir/lif/lif_norse.nir"));
    cmp c = run_lif(g, "1", snn_test_data("nir/lif/lif_norse.csv"), SNN_NIR_RESET_ZERO);
    printf("lif_norse.nir vs lif_norse.csv: max|dv| %.3g, spikes agree %d/1000 (%d vs %d)\n",
           c.max_dv, c.agree, c.spikes, c.ref_spikes);
    assert_true(c.max_dv < 1e-6);
    assert_int_equal(c.agree, 1000);
    assert_int_equal(c.spikes, 4);

    /* The exact (event-based) solution: same spike steps, membrane within the
     * forward-Euler error (measured 6.2e-3 on a 0.1 threshold). */
    c = run_lif(g, "1", snn_test_data("nir/lif/lif_exact.csv"), SNN_NIR_RESET_ZERO);
    printf("lif_norse.nir vs lif_exact.csv: max|dv| %.3g, spikes agree %d/1000\n", c.max_dv, c.agree);
    assert_int_equal(c.agree, 1000);
    assert_true(c.max_dv < 0.01);

    /* Every other platform, for the record (their v is in their own units
     * for snntorch/nengo/spinnaker2; sinabs's input column is pre-weighted). */
    static const char *others[] = {"rockpool", "snntorch", "sinabs", "spyx", "nengo",
                                   "lava_cpu_float", "lava_cpu_fixed", "lava_loihi_fixed",
                                   "spinnaker2"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "nir/lif/lif_%s.csv", others[i]);
        c = run_lif(g, "1", snn_test_data(rel), SNN_NIR_RESET_ZERO);
        printf("lif_norse.nir vs lif_%s.csv: max|dv| %.3g, spikes agree %d/1000 (%d vs %d)\n",
               others[i], c.max_dv, c.agree, c.spikes, c.ref_spikes);
    }
}

/* lif_rockpool.nir (Rockpool's re-export: Linear 0.04, r = 24.02) is not
 * Rockpool's own trace under NIR's forward Euler: Rockpool integrates with
 * exp(-dt/τ) and reset by subtraction, we with 1 - dt/τ. Same spike count,
 * each spike within one step (measured 992/1000 agreement). */
static void lif_rockpool_close_to_rockpool_trace(void **unused)
{
    (void)unused;
    cmp c = run_lif(snn_test_data("nir/lif/lif_rockpool.nir"), "1_LIFNeuronTorch",
                    snn_test_data("nir/lif/lif_rockpool.csv"), SNN_NIR_RESET_SUBTRACT);
    printf("lif_rockpool.nir vs lif_rockpool.csv (subtract): max|dv| %.3g, spikes agree %d/1000 (%d vs %d)\n",
           c.max_dv, c.agree, c.spikes, c.ref_spikes);
    assert_int_equal(c.spikes, c.ref_spikes);
    assert_true(c.agree >= 990);
}

/* ---- (b) braille RNN ----------------------------------------------------- */

typedef struct graph_case {
    const char *file;
    const char *lif1; /* flattened name of the hidden CubaLIF */
    uint32_t hidden;
    int reset;
    int subgraph;
} graph_case;

static const graph_case graphs[] = {
    {"braille_noDelay_bias_zero.nir", "lif1.lif", 38, SNN_NIR_RESET_ZERO, 0},
    {"braille_noDelay_bias_zero_subgraph.nir", "lif1/lif1", 38, SNN_NIR_RESET_ZERO, 1},
    {"braille_noDelay_noBias_subtract.nir", "lif1.lif", 40, SNN_NIR_RESET_SUBTRACT, 0},
    {"braille_noDelay_noBias_subtract_subgraph.nir", "lif1/lif1", 40, SNN_NIR_RESET_SUBTRACT, 1},
};

static const char *const letters[7] = {"Space", "A", "E", "I", "O", "U", "Y"};

static snn_model *load_braille(const graph_case *g, int cuba)
{
    /* The published subgraph files' inner edges say "lif"; the node is "lif1". */
    static const char *const aliases[] = {"lif1/lif", "lif1"};
    char rel[160];
    snprintf(rel, sizeof rel, "nir/braille_rnn/%s", g->file);
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.dt = 1e-4; /* paper/03_rnn/README.md: "the graphs use dt=1e-4" */
    o.bin_s = 0.005;
    o.reset = g->reset;
    o.cuba = cuba;
    o.labels = letters;
    o.n_labels = 7;
    o.aliases = g->subgraph ? aliases : NULL;
    o.n_aliases = g->subgraph ? 1 : 0;
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(snn_test_data(rel), &o, NULL, &m, &err) < 0)
        fail_msg("%s", err.msg);
    return m;
}

/* All four graphs load: 12 inputs, 7 outputs, 38|40 hidden, one delayed edge
 * (the recurrent weights), argmax-of-summed-spikes readout. */
static void braille_graphs_load_with_expected_shapes(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < 4; i++) {
        snn_model *m = load_braille(&graphs[i], SNN_NIR_CUBA_UPDATED);
        assert_int_equal(m->n_in, 12);
        assert_int_equal(m->n_out, 7);
        assert_int_equal(snn_nir_delayed_edge_count(m), 1);
        assert_int_equal(snn_nir_node_count(m), graphs[i].subgraph ? 9 : 7);
        assert_int_equal(m->decision, SNN_DECISION_ARGMAX_SUM);
        snn_state *s;
        assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
        const float *v;
        uint32_t n;
        assert_int_equal(snn_nir_probe(m, s, graphs[i].lif1, "out", &v, &n), 0);
        assert_int_equal(n, graphs[i].hidden);
        printf("%s: %u nodes, hidden %u, %llu parameters, %llu bytes\n", graphs[i].file,
               snn_nir_node_count(m), n, (unsigned long long)m->n_params,
               (unsigned long long)m->footprint);
        m->ops->state_free(m, s);
        snn_model_free(m);
    }
    /* the platform activity rasters exist and have the documented shapes */
    snn_npy a;
    snn_err err = {{0}};
    assert_int_equal(snn_npy_load(snn_test_data("nir/braille_rnn/snntorch_activity_noDelay_bias_zero.npy"),
                                  NULL, &a, &err), 0);
    assert_int_equal(a.shape[0], 256);
    assert_int_equal(a.shape[1], 38);
    snn_npy_free(&a, NULL);
}

/* One recording of the braille CSV. */
typedef struct sample {
    int cls;              /* 0..6 in letters[] order */
    int n_frames;
    float frames[80][12];
} sample;

static int letter_class(int label)
{
    static const int labels[7] = {0, 1, 5, 9, 15, 21, 25}; /* Space, A, E, I, O, U, Y */
    for (int i = 0; i < 7; i++)
        if (labels[i] == label)
            return i;
    return -1;
}

/* Reads the samples of the 7 letters (280 = 7 x 40 repetitions). */
static sample *read_braille(int *count)
{
    FILE *f = fopen(snn_test_data("braille/braille_letters_reps00-39_raw40hz.csv"), "r");
    assert_non_null(f);
    sample *s = calloc(400, sizeof *s);
    char line[512];
    int n = 0, cur = -1;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        int id, label, rep, ti;
        char letter[16];
        double ts;
        float v[12];
        int k = sscanf(line, "%d,%15[^,],%d,%d,%d,%lf,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f", &id,
                       letter, &label, &rep, &ti, &ts, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]);
        assert_int_equal(k, 18);
        int cls = letter_class(label);
        if (cls < 0)
            continue;
        if (id != cur) {
            assert_true(n < 400);
            cur = id;
            s[n].cls = cls;
            n++;
        }
        sample *x = &s[n - 1];
        assert_int_equal(ti, x->n_frames);
        assert_true(x->n_frames < 80);
        memcpy(x->frames[x->n_frames++], v, sizeof v);
    }
    fclose(f);
    *count = n;
    return s;
}

#define BIN_US 5000    /* the paper's 5 ms bins */
#define FRAME_US 25000 /* the CSV's 40 Hz frames */
#define MAX_STEPS 400

/* Encodes one recording as in the NIR paper: sigma-delta θ = 1 on the raw
 * taxel values (frames every 25 ms), ON and OFF merged, 5 ms bins, a 1 where a
 * channel had any event. Returns the number of steps written to x. */
static int encode(const sample *smp, float x[MAX_STEPS][12])
{
    snn_sigmadelta_config cfg = {12, 1.0, 0, 1, 1, 0};
    snn_sigmadelta *e;
    snn_err err = {{0}};
    assert_int_equal(snn_sigmadelta_new(&cfg, NULL, &e, &err), 0);
    memset(x, 0, sizeof(float) * MAX_STEPS * 12);
    snn_event ev[12 * 300];
    int64_t t_last = (int64_t)(smp->n_frames - 1) * FRAME_US;
    int steps = (int)(t_last / BIN_US) + 1;
    assert_true(steps <= MAX_STEPS);
    for (int k = 0; k < smp->n_frames; k++) {
        size_t n = 0;
        assert_int_equal(snn_sigmadelta_push(e, (int64_t)k * FRAME_US, smp->frames[k], ev,
                                             sizeof ev / sizeof ev[0], &n, &err), 0);
        for (size_t j = 0; j < n; j++) {
            int64_t b = ev[j].t_us / BIN_US;
            assert_true(b < steps && ev[j].channel < 12);
            x[b][ev[j].channel] = 1.0f;
        }
    }
    snn_sigmadelta_free(e);
    return steps;
}

/* What running a graph over every recording gives. */
typedef struct run_stats {
    int correct;
    uint64_t hidden_spikes, output_spikes;
    int pred[280];
    int sums[280][7]; /* output spikes per class */
} run_stats;

/* Runs m on max_steps (0 = all) of each of the n encoded samples, deciding by
 * argmax of the summed output spikes (first maximum, as torch.max). */
static void run_all(const snn_model *m, const sample *smp, int n, float (*enc)[MAX_STEPS][12],
                    const int *steps, int max_steps, run_stats *r)
{
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        m->ops->state_reset(m, s);
        int T = max_steps && max_steps < steps[i] ? max_steps : steps[i];
        for (int t = 0; t < T; t++) {
            float y[7];
            snn_step_info info;
            assert_int_equal(m->ops->step(m, s, enc[i][t], y, &info), 0);
            r->hidden_spikes += info.hidden_spikes;
            for (int c = 0; c < 7; c++) {
                r->sums[i][c] += y[c] != 0;
                r->output_spikes += y[c] != 0;
            }
        }
        int best = 0;
        for (int c = 1; c < 7; c++)
            if (r->sums[i][c] > r->sums[i][best])
                best = c;
        r->pred[i] = best;
        r->correct += best == smp[i].cls;
    }
    m->ops->state_free(m, s);
}

static double platform_accuracy(const char *name)
{
    char rel[160];
    snprintf(rel, sizeof rel, "nir/braille_rnn/%s", name);
    snn_npy a;
    snn_err err = {{0}};
    if (snn_npy_load(snn_test_data(rel), NULL, &a, &err) < 0)
        fail_msg("%s", err.msg);
    double v = a.data[0];
    snn_npy_free(&a, NULL);
    return v > 1 ? v / 100 : v; /* norse and s2 stored percent */
}

/* The same figures from an independent PyTorch re-implementation of snnTorch's
 * RSynaptic/Synaptic run on the trained state dicts (model_noDelay_*.pt, not
 * the NIR files) with the same encoding: tests/fixtures/nir/snntorch_reference.py
 * (printed 2026-11-23 with Debian python3-torch). */
static const struct {
    int correct;
    uint64_t hidden, output;
    int s0[7], s140[7];
} snntorch_ref[2] = {
    {35, 200474, 298771, {3, 194, 5, 367, 167, 3, 367}, {0, 151, 1, 378, 172, 0, 378}},
    {40, 232480, 231956, {0, 25, 84, 322, 3, 52, 277}, {0, 9, 102, 364, 1, 62, 331}},
};

/* Each graph on the 280 recordings (reps 0-39) of the 7 letters, whole
 * recordings (376-381 bins). Asserted: the executor reproduces snnTorch's own
 * dynamics on these inputs (the reference above), and flat and subgraph
 * variants decide identically. Printed: accuracies with both CubaLIF current
 * orders and truncated to the 256 bins the platforms ran, next to the
 * platforms' accuracies on their own test split.
 *
 * The accuracy is at chance (35/280, 40/280) for snnTorch itself too, so the
 * gap is the input, not the executor: the graphs were trained on ds_*.pt,
 * encoded by the authors from their own recordings (not in the data), while
 * this CSV (spytorch's copy of the dataset) changes between 40 Hz frames in
 * only 10% of frame pairs and gives ~0.7 input spikes per bin; the bias-driven
 * hidden layer then fires ~480 times per 256 bins instead of the ~120 of the
 * platforms' sample-0 rasters. No variant of frame period, threshold
 * (0.5-10), interpolation or polarity tried offline did better than 0.28. */
static void braille_accuracy_on_seven_letters(void **unused)
{
    (void)unused;
    int n;
    sample *smp = read_braille(&n);
    assert_int_equal(n, 280);
    float (*enc)[MAX_STEPS][12] = malloc(sizeof *enc * (size_t)n);
    int *steps = malloc(sizeof *steps * (size_t)n);
    run_stats *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    static int pred[4][280];
    for (int i = 0; i < n; i++)
        steps[i] = encode(&smp[i], enc[i]);
    static const char *const ref[4][6] = {
        {"snntorch_accuracy_noDelay_bias_zero.npy", "norse_accuracy_noDelay_bias_zero.npy",
         "spyx_accuracy_noDelay_bias_zero.npy", "lava_accuracy_noDelay_bias_zero.npy",
         "nengo_accuracy_noDelay_bias_zero.npy", "s2_accuracy_noDelay_bias_zero.npy"},
        {0},
        {"snntorch_accuracy_noDelay_noBias_subtract.npy", "norse_accuracy_noDelay_noBias_subtract.npy",
         "spyx_accuracy_noDelay_noBias_subtract.npy", "rockpool_accuracy_noDelay_noBias_subtract.npy",
         "xylo_accuracy_noDelay_noBias_subtract.npy", "nengo_accuracy_noDelay_noBias_subtract.npy"},
        {0},
    };
    for (int g = 0; g < 4; g++) {
        for (int cuba = 0; cuba < 2; cuba++) {
            snn_model *m = load_braille(&graphs[g], cuba);
            run_all(m, smp, n, enc, steps, 0, r);
            run_all(m, smp, n, enc, steps, 256, r2);
            printf("%-46s cuba=%-8s accuracy %3d/%d = %.4f (first 256 bins: %.4f), hidden spikes %llu, "
                   "output spikes %llu\n", graphs[g].file, cuba ? "previous" : "updated", r->correct, n,
                   (double)r->correct / n, (double)r2->correct / n,
                   (unsigned long long)r->hidden_spikes, (unsigned long long)r->output_spikes);
            if (cuba == SNN_NIR_CUBA_UPDATED) {
                int k = g / 2;
                assert_int_equal(r->correct, snntorch_ref[k].correct);
                assert_int_equal(r->hidden_spikes, snntorch_ref[k].hidden);
                assert_int_equal(r->output_spikes, snntorch_ref[k].output);
                assert_memory_equal(r->sums[0], snntorch_ref[k].s0, sizeof r->sums[0]);
                assert_memory_equal(r->sums[140], snntorch_ref[k].s140, sizeof r->sums[0]);
                memcpy(pred[g], r->pred, sizeof pred[g]);
            }
            snn_model_free(m);
        }
        for (int p = 0; p < 6 && ref[g][p]; p++)
            printf("    platform %s = %.4f (their test split, 140 samples)\n", ref[g][p],
                   platform_accuracy(ref[g][p]));
    }
    /* flattening a subgraph changes nothing */
    assert_memory_equal(pred[0], pred[1], sizeof pred[0]);
    assert_memory_equal(pred[2], pred[3], sizeof pred[2]);
    free(r);
    free(r2);
    free(enc);
    free(steps);
    free(smp);
}

/* ---- (c) CNN ------------------------------------------------------------- */

/* Sets f to one of x's count steps' spikes from the indices in idx. */
static void spikes_from(json_t *idx, float *x, uint32_t n)
{
    memset(x, 0, n * sizeof *x);
    for (size_t i = 0; i < json_array_size(idx); i++) {
        json_int_t k = json_integer_value(json_array_get(idx, i));
        assert_true(k >= 0 && k < (json_int_t)n);
        x[k] = 1.0f;
    }
}

static void cnn_sinabs_matches_pytorch(void **unused)
{
    (void)unused;
    static const char *const ifs[] = {"1", "3", "6", "10", "12"};
    static const uint32_t sizes[] = {16 * 16 * 16, 16 * 16 * 16, 8 * 8 * 8, 256, 10};
    json_error_t je;
    json_t *ref = json_load_file(snn_test_src("tests/fixtures/nir/cnn_sinabs_expected.json"), 0, &je);
    if (!ref)
        fail_msg("cnn_sinabs_expected.json: %s", je.text);
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.dt = 1.0; /* Sinabs' IAF: v += x per step */
    o.reset = SNN_NIR_RESET_SUBTRACT;
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(snn_test_data("nir/cnn/cnn_sinabs.nir"), &o, NULL, &m, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(m->n_in, 2 * 34 * 34);
    assert_int_equal(m->n_out, 10);
    assert_int_equal(snn_nir_node_count(m), 15);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    json_t *in = json_object_get(ref, "input"), *out = json_object_get(ref, "output"),
           *counts = json_object_get(ref, "spikes");
    float x[2 * 34 * 34], y[10];
    long total[5] = {0}, want_total[5] = {0}, out_sum[10] = {0};
    uint64_t dense = 0, acs = 0;
    for (size_t t = 0; t < json_array_size(in); t++) {
        spikes_from(json_array_get(in, t), x, m->n_in);
        snn_step_info info;
        assert_int_equal(m->ops->step(m, s, x, y, &info), 0);
        dense += info.dense_ops;
        acs += info.eff_acs;
        for (int i = 0; i < 10; i++) {
            int want = (int)json_integer_value(json_array_get(json_array_get(out, t), (size_t)i));
            if (y[i] != (float)want)
                fail_msg("step %zu output %d: %g, PyTorch %d", t, i, (double)y[i], want);
            out_sum[i] += want;
        }
        for (int l = 0; l < 5; l++) {
            const float *v;
            uint32_t n;
            assert_int_equal(snn_nir_probe(m, s, ifs[l], "out", &v, &n), 0);
            assert_int_equal(n, sizes[l]);
            long c = 0;
            for (uint32_t i = 0; i < n; i++)
                c += v[i] != 0.0f;
            long want = (long)json_integer_value(json_array_get(json_object_get(counts, ifs[l]), t));
            if (c != want)
                fail_msg("step %zu IF node '%s': %ld spikes, PyTorch %ld", t, ifs[l], c, want);
            total[l] += c;
            want_total[l] += want;
        }
    }
    int cls = 0;
    for (int i = 1; i < 10; i++)
        cls = out_sum[i] > out_sum[cls] ? i : cls;
    printf("cnn_sinabs: %zu steps, IF spikes %ld / %ld / %ld / %ld / %ld (all equal PyTorch's), "
           "class %d; %.2f M synaptic operations per step dense, %.3f M done (event-driven)\n",
           json_array_size(in), total[0], total[1], total[2], total[3], total[4], cls,
           (double)dense / (double)json_array_size(in) / 1e6, (double)acs / (double)json_array_size(in) / 1e6);
    static const char *const plat[] = {"lava", "nengo", "norse", "s2", "s2_brian2", "sinabs",
                                       "snntorch", "speck", "spyx"};
    for (size_t i = 0; i < sizeof plat / sizeof plat[0]; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "nir/cnn/%s_accuracy.npy", plat[i]);
        snn_npy a;
        if (snn_npy_load(snn_test_data(rel), NULL, &a, &err) == 0) {
            printf("  %s's published N-MNIST accuracy: %.4f\n", plat[i], a.data[0]);
            snn_npy_free(&a, NULL);
        }
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
    json_decref(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lif_norse_reproduces_norse_trace),
        cmocka_unit_test(lif_rockpool_close_to_rockpool_trace),
        cmocka_unit_test(braille_graphs_load_with_expected_shapes),
        cmocka_unit_test(braille_accuracy_on_seven_letters),
        cmocka_unit_test(cnn_sinabs_matches_pytorch),
    };
    return cmocka_run_group_tests_name("nir", tests, NULL, NULL);
}
