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
#include <hdf5.h>
#include <jansson.h>
#include <unistd.h>

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

/* ---- graphs as other writers lay them out --------------------------------
 * Written here with libhdf5 (not by make_fixtures.py) so that each test shows
 * the exact HDF5 layout it accepts or refuses. */

/* A fresh file path under /tmp for one test (the caller unlinks it). */
static const char *tmp_nir(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/test_nir_%ld_%s", (long)getpid(), name);
    return buf;
}

/* A scalar variable-length UTF-8 string dataset, as h5py writes str. */
static void w_str(hid_t loc, const char *name, const char *val)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &val) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
}

/* A float32 dataset of nd dimensions (nd 0: a scalar, shape ()). */
static void w_f32(hid_t loc, const char *name, int nd, const hsize_t *dims, const float *v)
{
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* A 1-D int64 dataset of n values (a NIR shape). */
static void w_shape(hid_t loc, const char *name, hsize_t n, const long long *v)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* A rows x cols variable-length string dataset "edges" (h5py's layout is
 * [E, 2]: source, target per row). */
static void w_edges(hid_t g, hsize_t rows, hsize_t cols, const char *const *names)
{
    hsize_t dims[2] = {rows, cols};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(g, "edges", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Creates group name in loc with dataset type = type; close it with H5Gclose. */
static hid_t w_node(hid_t loc, const char *name, const char *type)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    w_str(g, "type", type);
    return g;
}

/* Creates path with /version and /node (a NIRGraph); *nodes is its nodes
 * group. Close both and the returned file with close_nir. */
static hid_t open_nir(const char *path, hid_t *top, hid_t *nodes)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    w_str(f, "version", "1.0.7");
    *top = w_node(f, "node", "NIRGraph");
    *nodes = H5Gcreate2(*top, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    return f;
}

static void close_nir(hid_t f, hid_t top, hid_t nodes)
{
    H5Gclose(nodes);
    H5Gclose(top);
    H5Fclose(f);
}

/* An Input and an Output node of n values each, with NIR's "shape". */
static void w_io(hid_t nodes, const char *in, const char *out, long long n)
{
    hid_t g = w_node(nodes, in, "Input");
    w_shape(g, "shape", 1, &n);
    H5Gclose(g);
    g = w_node(nodes, out, "Output");
    w_shape(g, "shape", 1, &n);
    H5Gclose(g);
}

/* Loads path with dt = 1 ms (as load_dt); fails the test on error. */
static snn_model *load_path(const char *path)
{
    snn_nir_options o;
    snn_nir_options_default(&o);
    o.dt = 1e-3;
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(path, &o, &snn_test_allocator, &m, &err) < 0)
        fail_msg("load %s: %s", path, err.msg);
    return m;
}

/* A writer that kept NIR's input_type / output_type instead of "shape": the
 * Input's as a group {input: [2]}, the Output's as a dataset [2]. */
static void input_type_stands_for_shape(void **unused)
{
    (void)unused;
    const char *path = tmp_nir("io_type.nir");
    hid_t top, nodes, f = open_nir(path, &top, &nodes);
    const long long two = 2;
    hid_t g = w_node(nodes, "input", "Input");
    hid_t it = H5Gcreate2(g, "input_type", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w_shape(it, "input", 1, &two);
    H5Gclose(it);
    H5Gclose(g);
    g = w_node(nodes, "output", "Output");
    w_shape(g, "output_type", 1, &two);
    H5Gclose(g);
    const char *const e[] = {"input", "output"};
    w_edges(top, 1, 2, e);
    close_nir(f, top, nodes);
    snn_model *m = load_path(path);
    unlink(path);
    assert_int_equal(m->n_in, 2);
    assert_int_equal(m->n_out, 2);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x[2] = {3, 4}, y[2];
    assert_int_equal(m->ops->step(m, s, x, y, NULL), 0);
    assert_float_equal(y[0], 3, EPS);
    assert_float_equal(y[1], 4, EPS);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Scalars (shape ()) broadcast over the input as numpy does: an Affine's
 * bias, a Scale's factor, a LIF whose parameters are all scalars (snnTorch's
 * export of a layer with one beta). in[3] -> Affine(I, b .5) -> Scale(2) ->
 * LIF(τ 10 ms, r 1, θ .3), dt 1 ms, x = (0, 1, 2) every step:
 *   LIF input (1, 3, 5); v = .1, .3, (.5 -> spike 0); then .19, (.57 -> spike), .5 -> spike */
static void scalar_parameters_broadcast(void **unused)
{
    (void)unused;
    const char *path = tmp_nir("scalars.nir");
    hid_t top, nodes, f = open_nir(path, &top, &nodes);
    w_io(nodes, "input", "output", 3);
    const float eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, half = 0.5f, two = 2, tau = 0.01f, one = 1,
                zero = 0, th = 0.3f;
    const hsize_t d33[2] = {3, 3};
    hid_t g = w_node(nodes, "fc", "Affine");
    w_f32(g, "weight", 2, d33, eye);
    w_f32(g, "bias", 0, NULL, &half);
    H5Gclose(g);
    g = w_node(nodes, "sc", "Scale");
    w_f32(g, "scale", 0, NULL, &two);
    H5Gclose(g);
    g = w_node(nodes, "lif", "LIF");
    w_f32(g, "tau", 0, NULL, &tau);
    w_f32(g, "r", 0, NULL, &one);
    w_f32(g, "v_leak", 0, NULL, &zero);
    w_f32(g, "v_threshold", 0, NULL, &th);
    H5Gclose(g);
    const char *const e[] = {"input", "fc", "fc", "sc", "sc", "lif", "lif", "output"};
    w_edges(top, 4, 2, e);
    close_nir(f, top, nodes);
    snn_model *m = load_path(path);
    unlink(path);
    assert_int_equal(m->n_in, 3);
    assert_int_equal(m->n_out, 3);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    const float x[3] = {0, 1, 2};
    const float want[2][3] = {{0, 0, 1}, {0, 1, 1}}, want_v[2][3] = {{0.1f, 0.3f, 0}, {0.19f, 0, 0}};
    for (int t = 0; t < 2; t++) {
        float y[3];
        const float *v;
        uint32_t n;
        assert_int_equal(m->ops->step(m, s, x, y, NULL), 0);
        assert_int_equal(snn_nir_probe(m, s, "lif", "v", &v, &n), 0);
        assert_int_equal(n, 3);
        for (int i = 0; i < 3; i++) {
            assert_float_equal(y[i], want[t][i], EPS);
            assert_float_equal(v[i], want_v[t][i], EPS);
        }
    }
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* Edges stored [2, E] (sources row, targets row) would pair the wrong nodes if
 * read row by row: refused, naming the shape. */
static void transposed_edges_are_refused(void **unused)
{
    (void)unused;
    const char *path = tmp_nir("edges_t.nir");
    hid_t top, nodes, f = open_nir(path, &top, &nodes);
    w_io(nodes, "input", "output", 1);
    const float one = 1;
    const hsize_t d1 = 1;
    hid_t g = w_node(nodes, "sc", "Scale");
    w_f32(g, "scale", 1, &d1, &one);
    H5Gclose(g);
    g = w_node(nodes, "sc2", "Scale");
    w_f32(g, "scale", 1, &d1, &one);
    H5Gclose(g);
    const char *const e[] = {"input", "sc", "sc2", "sc", "sc2", "output"};
    w_edges(top, 2, 3, e);
    close_nir(f, top, nodes);
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_nir_model_load(path, &snn_test_allocator, &m, &err);
    unlink(path);
    if (rc != -SNN_EFORMAT || !strstr(err.msg, "'edges' must have shape [E, 2]") ||
        !strstr(err.msg, "has [2, 3]"))
        fail_msg("rc %d, message \"%s\"", rc, err.msg);
    assert_null(m);
}

/* NIR's port notation in edges: "sub.in" is node "in" of subgraph "sub",
 * "input.output" the plain node "input". in[2] -> sub(Scale (2, 3)) -> out. */
static void edges_may_name_ports(void **unused)
{
    (void)unused;
    const char *path = tmp_nir("ports.nir");
    hid_t top, nodes, f = open_nir(path, &top, &nodes);
    w_io(nodes, "input", "output", 2);
    hid_t sub = w_node(nodes, "sub", "NIRGraph");
    hid_t sn = H5Gcreate2(sub, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w_io(sn, "in", "out", 2);
    const float sc[2] = {2, 3};
    const hsize_t d2 = 2;
    hid_t g = w_node(sn, "sc", "Scale");
    w_f32(g, "scale", 1, &d2, sc);
    H5Gclose(g);
    const char *const se[] = {"in", "sc", "sc", "out"};
    w_edges(sub, 2, 2, se);
    H5Gclose(sn);
    H5Gclose(sub);
    const char *const e[] = {"input.output", "sub.in", "sub.out", "output.input"};
    w_edges(top, 2, 2, e);
    close_nir(f, top, nodes);
    snn_model *m = load_path(path);
    unlink(path);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x[2] = {1, 1}, y[2];
    assert_int_equal(m->ops->step(m, s, x, y, NULL), 0);
    assert_float_equal(y[0], 2, EPS);
    assert_float_equal(y[1], 3, EPS);
    m->ops->state_free(m, s);
    snn_model_free(m);
}

/* A numeric dataset whose name is too long to be a NIR parameter (a writer's
 * own extra) is ignored, not an error. */
static void long_extra_datasets_are_ignored(void **unused)
{
    (void)unused;
    const char *path = tmp_nir("long_name.nir");
    hid_t top, nodes, f = open_nir(path, &top, &nodes);
    w_io(nodes, "input", "output", 1);
    const float three = 3;
    const hsize_t d1 = 1;
    hid_t g = w_node(nodes, "sc", "Scale");
    w_f32(g, "scale", 1, &d1, &three);
    w_f32(g, "an_exporter_specific_dataset_with_a_long_name", 1, &d1, &three);
    H5Gclose(g);
    const char *const e[] = {"input", "sc", "sc", "output"};
    w_edges(top, 2, 2, e);
    close_nir(f, top, nodes);
    snn_model *m = load_path(path);
    unlink(path);
    snn_state *s;
    assert_int_equal(m->ops->state_new(m, &s, NULL), 0);
    float x = 2, y;
    assert_int_equal(m->ops->step(m, s, &x, &y, NULL), 0);
    assert_float_equal(y, 6, EPS);
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
        cmocka_unit_test(input_type_stands_for_shape),
        cmocka_unit_test(scalar_parameters_broadcast),
        cmocka_unit_test(transposed_edges_are_refused),
        cmocka_unit_test(edges_may_name_ports),
        cmocka_unit_test(long_extra_datasets_are_ignored),
    };
    return cmocka_run_group_tests_name("nir", tests, NULL, NULL);
}
