/*
 * test_nir.c -- the NIR graph loader and executor (models/nir.h) on the small
 * hand-made graphs of tests/fixtures/nir (written by make_fixtures.py): every
 * node kind's equation against values worked out by hand, the one-step delay
 * on cycles, subgraph flattening, the sidecar, and one clear error per kind
 * of malformed file; convolutions and pools against what PyTorch's
 * torch.nn.functional computes (conv_expected.json, by make_fixtures.py) and
 * one output worked out by hand.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "model.h"
#include "nir.h"
#include "testutil.h"

#define EPS 1e-5

static const char *fx(const char *name)
{
    static char buf[4][512];
    static int i;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/nir/%s", name);
    char *b = buf[i++ & 3];
    snprintf(b, sizeof buf[0], "%s", snn_test_src(rel));
    return b;
}

/* Loads a fixture with dt = 1e-3 (so dt/τ = 0.1 for τ = 10 ms) and the given
 * reset and CubaLIF current order, through the leak-checking allocator. */
static snn_model *load_dt(const char *name, int reset, int cuba)
{
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.dt = 1e-3;
    o.reset = reset;
    o.cuba = cuba;
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_nir_model_load_opts(fx(name), &o, &snn_test_allocator, &m, &err);
    if (rc < 0)
        fail_msg("load %s: %s", name, err.msg);
    return m;
}

static float probe1(const snn_model *m, const snn_state *s, const char *node, const char *var)
{
    const float *v;
    uint32_t n;
    assert_int_equal(snn_nir_probe(m, s, node, var, &v, &n), 0);
    return v[0];
}

/* Input [1,1] -> Affine W=[[1,.5],[0,2]] b=[.1,0] -> LIF(τ 10 ms, r 1, θ .5/.3)
 * with dt 1 ms: the LIF input is [1.6, 2.0] every step and
 *   n0: v = .16, .304, .4336, .55024 -> spike at t3 (reset to 0)
 *   n1: v = .2, .38 -> spike at t1 (reset to 0), .2, .38 -> spike at t3 */
static void affine_lif_follows_forward_euler(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("affine_lif.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    assert_int_equal(m->n_in, 2);
    assert_int_equal(m->n_out, 2);
    assert_string_equal(m->ops->kind, "nir");
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float x[2] = {1, 1};
    const float want[4][2] = {{0, 0}, {0, 1}, {0, 0}, {1, 1}};
    const float want_v0[4] = {0.16f, 0.304f, 0.4336f, 0.0f};
    for (int t = 0; t < 4; t++) {
        float y[2];
        snn_step_info info;
        assert_int_equal(m->ops->step(m, s, x, y, &info), 0);
        assert_true(info.has_output);
        assert_float_equal(y[0], want[t][0], 0);
        assert_float_equal(y[1], want[t][1], 0);
        assert_float_equal(probe1(m, s, "lif", "v"), want_v0[t], EPS);
        assert_int_equal(info.dense_ops, 4);
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* recurrent.nir: a -> fb -> a closes a cycle, so y_t = x_t + fb_{t-1} with
 * fb_t = .5 y_t + .25 and fb_{-1} = .25 (an Affine's initial output is its
 * bias). x = 1,0,0,0 gives y = 1.25, .875, .6875, .59375. */
static void cycle_edge_carries_previous_step(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("recurrent.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    assert_int_equal(snn_nir_delayed_edge_count(m), 1);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float want[4] = {1.25f, 0.875f, 0.6875f, 0.59375f};
    for (int rep = 0; rep < 2; rep++) { /* the second pass checks state_reset */
        for (int t = 0; t < 4; t++) {
            float x = t == 0 ? 1.0f : 0.0f, y;
            assert_int_equal(m->ops->step(m, s, &x, &y, NULL), 0);
            assert_float_equal(y, want[t], EPS);
        }
        m->ops->state_reset(m, s);
    }
    json_t *d = json_object();
    assert_int_equal(m->ops->describe(m, d), 0);
    json_t *de = json_object_get(d, "delayed_edges");
    assert_int_equal(json_array_size(de), 1);
    assert_string_equal(json_string_value(json_array_get(json_array_get(de, 0), 0)), "fb");
    assert_string_equal(json_string_value(json_array_get(json_array_get(de, 0), 1)), "a");
    json_decref(d);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* subgraph.nir is recurrent.nir wrapped in a NIRGraph node "rnn": flattened
 * names are "rnn/<node>" and the outputs are the same. */
static void subgraph_is_flattened(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("subgraph.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    assert_int_equal(snn_nir_node_count(m), 6);
    int found = 0;
    for (uint32_t i = 0; i < snn_nir_node_count(m); i++)
        found += strcmp(snn_nir_node_name(m, i), "rnn/a") == 0;
    assert_int_equal(found, 1);
    assert_int_equal(snn_nir_delayed_edge_count(m), 1);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float want[4] = {1.25f, 0.875f, 0.6875f, 0.59375f};
    for (int t = 0; t < 4; t++) {
        float x = t == 0 ? 1.0f : 0.0f, y;
        assert_int_equal(m->ops->step(m, s, &x, &y, NULL), 0);
        assert_float_equal(y, want[t], EPS);
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* neurons.nir, x = 1 every step, dt = 1 ms:
 *   Scale(-2) -> -2; Threshold(.5) -> 1
 *   LI(τ 10ms, r 2, v_leak .5): v = .25, .475
 *   LIF(τ 10ms, r 2, θ .3, v_reset -.1): v = .2, (.38 -> spike) -.1, .11
 *   CubaLI(τs 5ms, w_in 3, τm 10ms, r 2): I = .6, 1.08;
 *       updated: v = .12, .324      previous: v = 0, .12
 *   CubaLIF(θ .2): updated v = .12, (.324 -> spike) 0 | subtract .124
 *   I(r 100): v = .1, .2, .3; IF(r 100, θ .25): v = .1, .2, (.3 -> spike) 0 */
static void every_neuron_kind_matches_hand_values(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("neurons.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x = 1, y[3];
    snn_step_info info;
    for (int t = 0; t < 3; t++)
        assert_int_equal(m->ops->step(m, s, &x, &y[t], &info), 0);
    assert_float_equal(y[0], 0, 0);
    assert_float_equal(y[1], 1, 0);
    assert_float_equal(y[2], 0, 0);
    /* hidden = spiking nodes not wired to the Output: cubalif, if, thr; at t2
     * all three fire (cubalif: I = 1.464, v = .2 * 1.464 = .2928 > .2) */
    assert_int_equal(info.hidden_neurons, 3);
    assert_int_equal(info.hidden_spikes, 3);
    assert_float_equal(probe1(m, s, "scale", "out"), -2.0f, EPS);
    assert_float_equal(probe1(m, s, "thr", "out"), 1.0f, EPS);
    assert_float_equal(probe1(m, s, "lif", "v"), 0.11f, EPS);
    assert_float_equal(probe1(m, s, "i", "out"), 0.3f, EPS);
    assert_float_equal(probe1(m, s, "if", "v"), 0.0f, EPS);
    assert_float_equal(probe1(m, s, "if", "out"), 1.0f, EPS);
    m->ops->state_reset(m, s);
    for (int t = 0; t < 2; t++)
        m->ops->step(m, s, &x, &y[0], NULL);
    assert_float_equal(probe1(m, s, "li", "v"), 0.475f, EPS);
    assert_float_equal(probe1(m, s, "li", "out"), 0.475f, EPS);
    assert_float_equal(probe1(m, s, "cubali", "i"), 1.08f, EPS);
    assert_float_equal(probe1(m, s, "cubali", "v"), 0.324f, EPS);
    assert_float_equal(probe1(m, s, "cubalif", "out"), 1.0f, 0);
    assert_float_equal(probe1(m, s, "cubalif", "v"), 0.0f, EPS);
    const float *v;
    uint32_t n;
    assert_int_equal(snn_nir_probe(m, s, "li", "i", &v, &n), -SNN_ENOENT);
    assert_int_equal(snn_nir_probe(m, s, "nosuch", "v", &v, &n), -SNN_ENOENT);
    m->ops->state_free(m, s);
    snn_model_free(m);

    m = load_dt("neurons.nir", SNN_NIR_RESET_SUBTRACT, SNN_NIR_CUBA_PREVIOUS);
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    m->ops->step(m, s, &x, &y[0], NULL);
    assert_float_equal(probe1(m, s, "cubali", "v"), 0.0f, EPS);
    m->ops->step(m, s, &x, &y[0], NULL);
    assert_float_equal(probe1(m, s, "cubali", "v"), 0.12f, EPS);
    m->ops->state_free(m, s);
    snn_model_free(m);

    m = load_dt("neurons.nir", SNN_NIR_RESET_SUBTRACT, SNN_NIR_CUBA_UPDATED);
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    m->ops->step(m, s, &x, &y[0], NULL);
    m->ops->step(m, s, &x, &y[0], NULL);
    assert_float_equal(probe1(m, s, "cubalif", "v"), 0.124f, EPS);
    assert_float_equal(probe1(m, s, "lif", "v"), 0.08f, EPS); /* .38 - .3 */
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Input [2,2] -> Flatten -> Linear [1,4] (1,2,3,4): x = 1..4 gives 30. */
static void flatten_keeps_c_order(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("flatten.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    assert_int_equal(m->n_in, 4);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float x[4] = {1, 2, 3, 4};
    float y;
    snn_step_info info;
    assert_int_equal(m->ops->step(m, s, x, &y, &info), 0);
    assert_float_equal(y, 30.0f, EPS);
    assert_int_equal(info.eff_macs, 3); /* x = 2, 3, 4 are not spikes */
    assert_int_equal(info.eff_acs, 1);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* sidecar.json next to sidecar.nir sets dt 1 ms, 5 ms bins, subtract reset,
 * labels. fc = [1, 2] -> LIF(τ 10 ms, θ .15):
 *   n0: v = .1, (.19 -> spike) .04     n1: (.2 -> spike) .05, (.245 -> spike) .095 */
static void sidecar_sets_dt_reset_and_labels(void **unused)
{
    (void)unused;
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_nir_model_load(fx("sidecar.nir"), &snn_test_allocator, &m, &err);
    if (rc < 0)
        fail_msg("%s", err.msg);
    assert_float_equal(m->dt, 0.005, 1e-12);
    assert_string_equal(m->name, "sidecar");
    assert_non_null(m->labels);
    assert_string_equal(m->labels[1], "right");
    assert_string_equal(m->out_names[0], "left");
    assert_int_equal(m->decision, SNN_DECISION_ARGMAX_SUM);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x = 1, y[2];
    m->ops->step(m, s, &x, y, NULL);
    assert_float_equal(y[0], 0, 0);
    assert_float_equal(y[1], 1, 0);
    m->ops->step(m, s, &x, y, NULL);
    assert_float_equal(y[0], 1, 0);
    assert_float_equal(y[1], 1, 0);
    const float *v;
    uint32_t n;
    assert_int_equal(snn_nir_probe(m, s, "lif", "v", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_float_equal(v[0], 0.04f, EPS);
    assert_float_equal(v[1], 0.095f, EPS);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Without a sidecar the defaults hold: dt 1e-4 (so dt/τ = .01), no labels,
 * outputs named y0.., no decision. */
static void defaults_without_sidecar(void **unused)
{
    (void)unused;
    snn_model *m = NULL;
    snn_err err = {{0}};
    assert_int_equal(snn_nir_model_load(fx("affine_lif.nir"), &snn_test_allocator, &m, &err), 0);
    assert_float_equal(m->dt, 1e-4, 1e-15);
    assert_null(m->labels);
    assert_string_equal(m->out_names[1], "y1");
    assert_int_equal(m->decision, SNN_DECISION_NONE);
    assert_string_equal(m->input_kind, "spikes");
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float x[2] = {1, 1};
    float y[2];
    m->ops->step(m, s, x, y, NULL);
    assert_float_equal(probe1(m, s, "lif", "v"), 0.016f, EPS); /* .01 * 1.6 */
    m->ops->state_free(m, s);
    snn_model_free(m);
}

static void expect_error(const char *name, int code, const char *s1, const char *s2)
{
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_nir_model_load(fx(name), &snn_test_allocator, &m, &err);
    if (rc != -code || !strstr(err.msg, s1) || (s2 && !strstr(err.msg, s2)))
        fail_msg("%s: rc %d (want %d), message \"%s\" (want \"%s\", \"%s\")", name, rc, -code,
                 err.msg, s1, s2 ? s2 : "");
    assert_null(m);
}

/* Each malformed file fails with its own code and a message naming the file
 * and the node, parameter or edge at fault. */
static void malformed_files_fail_with_clear_errors(void **unused)
{
    (void)unused;
    expect_error("err_unsupported.nir", SNN_ENOTSUP, "node 'conv'", "Conv3d");
    expect_error("err_delay_fraction.nir", SNN_EFORMAT, "node 'delay' (Delay)", "delay[0] = 0.00015 s is not a whole number");
    expect_error("err_conv_small.nir", SNN_ESHAPE, "node 'conv' (Conv2d)", "2x2 input is smaller than its 3x3 kernel");
    expect_error("err_conv_channels.nir", SNN_ESHAPE, "edge 'input' -> 'conv'", "outputs 3 x 4 x 4");
    expect_error("err_conv_input_shape.nir", SNN_ESHAPE, "edge 'input' -> 'conv'", "takes 2 x 3 x 6 (its input_shape)");
    expect_error("err_pool_flat.nir", SNN_ESHAPE, "node 'pool' (SumPool2d)", "'fc' (Linear) gives 4 values");
    expect_error("err_conv_padding.nir", SNN_EFORMAT, "node 'conv' (Conv2d)", "padding \"full\"");
    expect_error("err_conv_groups.nir", SNN_EFORMAT, "node 'conv' (Conv2d)", "groups must be one positive integer");
    expect_error("err_conv_stride.nir", SNN_EFORMAT, "node 'conv' (Conv2d)", "stride = 2.5 must be an integer from 1 to 65535");
    expect_error("err_negative_shape.nir", SNN_ESHAPE, "node 'input' (Input)", "shape must list positive whole numbers");
    expect_error("err_edge_shape.nir", SNN_ESHAPE, "edge 'input' -> 'fc'", "outputs 3 values");
    expect_error("err_param_size.nir", SNN_ESHAPE, "node 'lif' (LIF)", "tau has 3 elements, expected 2");
    expect_error("err_missing_param.nir", SNN_EFORMAT, "node 'lif' (LIF)", "missing parameter v_threshold");
    expect_error("err_bad_edge.nir", SNN_EFORMAT, "err_bad_edge.nir", "no node named 'nosuch'");
    expect_error("err_no_type.nir", SNN_EFORMAT, "node 'mystery'", "'type'");
    expect_error("err_no_input.nir", SNN_EFORMAT, "exactly one Input node", NULL);
    expect_error("err_bad_tau.nir", SNN_EFORMAT, "node 'li' (LI)", "tau[0] = 0");
    expect_error("err_no_graph.nir", SNN_EFORMAT, "err_no_graph.nir", "no /node group");
    expect_error("err_not_hdf5.nir", SNN_EFORMAT, "err_not_hdf5.nir", "not an HDF5 file");
    expect_error("err_sidecar.nir", SNN_EFORMAT, "err_sidecar.json", "unknown key \"rest\"");
    expect_error("no_such_file.nir", SNN_ENOENT, "no_such_file.nir", NULL);
}

/* An edge naming a missing node is repaired by an alias (as the published
 * braille *_subgraph.nir files need). */
static void alias_repairs_a_dangling_edge(void **unused)
{
    (void)unused;
    static const char *const al[] = {"nosuch", "output"};
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.aliases = al;
    o.n_aliases = 1;
    snn_model *m = NULL;
    snn_err err = {{0}};
    assert_int_equal(snn_nir_model_load_opts(fx("err_bad_edge.nir"), &o, &snn_test_allocator, &m, &err), 0);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x = 3, y;
    m->ops->step(m, s, &x, &y, NULL);
    assert_float_equal(y, 6.0f, 0); /* two edges input -> output, summed */
    m->ops->state_free(m, s);
    snn_model_free(m);

    /* the same repair from the sidecar alias.json */
    snn_err err2 = {{0}};
    if (snn_nir_model_load(fx("alias.nir"), &snn_test_allocator, &m, &err2) < 0)
        fail_msg("%s", err2.msg);
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    x = 2;
    m->ops->step(m, s, &x, &y, NULL);
    assert_float_equal(y, 4.0f, 0);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Steps fixture name (loaded with dt = 1, reset to zero) through the inputs
 * of conv_expected.json and compares every output with PyTorch's. An entry's
 * "input" is one step's input or a list of steps' inputs ("output" alike). */
static void check_against_torch(json_t *all, const char *name)
{
    json_t *e = json_object_get(all, name);
    assert_non_null(e);
    json_t *xs = json_object_get(e, "input"), *ys = json_object_get(e, "output");
    int multi = json_is_array(json_array_get(xs, 0));
    size_t steps = multi ? json_array_size(xs) : 1;
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.dt = 1.0;
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(fx(name), &o, &snn_test_allocator, &m, &err) < 0)
        fail_msg("load %s: %s", name, err.msg);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float *x = calloc(m->n_in, sizeof *x), *y = calloc(m->n_out, sizeof *y);
    for (size_t t = 0; t < steps; t++) {
        json_t *xt = multi ? json_array_get(xs, t) : xs, *yt = multi ? json_array_get(ys, t) : ys;
        assert_int_equal(json_array_size(xt), m->n_in);
        assert_int_equal(json_array_size(yt), m->n_out);
        for (uint32_t i = 0; i < m->n_in; i++)
            x[i] = (float)json_number_value(json_array_get(xt, i));
        snn_step_info info;
        assert_int_equal(m->ops->step(m, s, x, y, &info), 0);
        for (uint32_t i = 0; i < m->n_out; i++) {
            double want = json_number_value(json_array_get(yt, i));
            if (fabs(y[i] - want) > 1e-5 * (1 + fabs(want)))
                fail_msg("%s step %zu output %u: %.7g, PyTorch %.7g", name, t, i, (double)y[i], want);
        }
    }
    free(x);
    free(y);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Conv2d (groups, stride, padding, dilation, input_shape), Conv1d with
 * padding "same", SumPool2d and AvgPool2d, and a small spiking CNN stepped
 * six times, all equal PyTorch's functional ops; shapes are inferred through
 * the graph and reported by describe. */
static void convolutions_and_pools_match_pytorch(void **unused)
{
    (void)unused;
    json_error_t je;
    json_t *all = json_load_file(fx("conv_expected.json"), 0, &je);
    if (!all)
        fail_msg("conv_expected.json: %s", je.text);
    check_against_torch(all, "conv2d.nir");
    check_against_torch(all, "conv1d_same.nir");
    check_against_torch(all, "pool.nir");
    check_against_torch(all, "cnn_if.nir");
    json_decref(all);

    /* by hand: pool.nir's SumPool2d k 2x2, stride 2, padding (0, 1) over the
     * 4 x 5 channel 0 of an input x[i] = i: its window (0, 0) covers columns
     * -1..0 of rows 0..1, so 0 + 5 = 5; (0, 1): columns 1..2, 1+2+6+7 = 16;
     * (1, 0): rows 2..3, 10 + 15 = 25; (1, 1): 11+12+16+17 = 56. The
     * AvgPool2d k 2x1 then gives (5 + 25) / 2 = 15 and (16 + 56) / 2 = 36. */
    snn_model *m = load_dt("pool.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x[40], y[6];
    for (int i = 0; i < 40; i++)
        x[i] = (float)i;
    m->ops->step(m, s, x, y, NULL);
    assert_float_equal(y[0], 15.0f, EPS);
    assert_float_equal(y[1], 36.0f, EPS);
    m->ops->state_free(m, s);
    json_t *d = json_object();
    assert_int_equal(m->ops->describe(m, d), 0);
    json_t *nodes = json_object_get(d, "nodes");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        json_t *nd = json_array_get(nodes, i), *sh = json_object_get(nd, "shape");
        if (strcmp(json_string_value(json_object_get(nd, "name")), "sum"))
            continue;
        seen = 1;
        assert_int_equal(json_integer_value(json_array_get(sh, 0)), 2);
        assert_int_equal(json_integer_value(json_array_get(sh, 1)), 2);
        assert_int_equal(json_integer_value(json_array_get(sh, 2)), 3);
    }
    assert_true(seen);
    json_decref(d);
    snn_model_free(m);
}

/* Delay (dt 1 ms, delays 0, 2 and 5 ms): y_t[i] = x_{t - k_i}, zero before
 * the first k_i steps, and again zero history after a state reset. */
static void delay_shifts_each_element_by_its_steps(void **unused)
{
    (void)unused;
    snn_model *m = load_dt("delay.nir", SNN_NIR_RESET_ZERO, SNN_NIR_CUBA_UPDATED);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int t = 0; t < 9; t++) {
            float x[3] = {(float)(t + 1), 10.0f * (float)(t + 1), 100.0f * (float)(t + 1)}, y[3];
            m->ops->step(m, s, x, y, NULL);
            assert_float_equal(y[0], (float)(t + 1), 0);
            assert_float_equal(y[1], t >= 2 ? 10.0f * (float)(t - 1) : 0.0f, 0);
            assert_float_equal(y[2], t >= 5 ? 100.0f * (float)(t - 4) : 0.0f, 0);
        }
        m->ops->state_reset(m, s);
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Every allocation failure during a load is reported as ENOMEM and leaks
 * nothing (cmocka's test allocator checks). */
static void allocation_failures_are_clean(void **unused)
{
    (void)unused;
    static const char *const files[] = {"sidecar.nir", "cnn_if.nir", "conv1d_same.nir"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        int saw_ok = 0;
        for (int n = 1; n < 400 && !saw_ok; n++) {
            snn_model *m = NULL;
            snn_err err = {{0}};
            snn_test_fail_alloc_after(n);
            int rc = snn_nir_model_load(fx(files[f]), &snn_test_allocator, &m, &err);
            snn_test_fail_alloc_after(0);
            if (rc == 0) {
                saw_ok = 1;
                snn_model_free(m);
            } else {
                if (rc != -SNN_ENOMEM)
                    fail_msg("%s, allocation %d failing: rc %d, %s", files[f], n, rc, err.msg);
                assert_null(m);
            }
        }
        assert_true(saw_ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(affine_lif_follows_forward_euler),
        cmocka_unit_test(cycle_edge_carries_previous_step),
        cmocka_unit_test(subgraph_is_flattened),
        cmocka_unit_test(every_neuron_kind_matches_hand_values),
        cmocka_unit_test(flatten_keeps_c_order),
        cmocka_unit_test(sidecar_sets_dt_reset_and_labels),
        cmocka_unit_test(defaults_without_sidecar),
        cmocka_unit_test(malformed_files_fail_with_clear_errors),
        cmocka_unit_test(alias_repairs_a_dangling_edge),
        cmocka_unit_test(convolutions_and_pools_match_pytorch),
        cmocka_unit_test(delay_shifts_each_element_by_its_steps),
        cmocka_unit_test(allocation_failures_are_clean),
    };
    return cmocka_run_group_tests_name("nir", tests, NULL, NULL);
}
