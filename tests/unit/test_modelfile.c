/*
 * test_modelfile.c -- the model loader rejects truncated, corrupt and
 * mismatched files with an error naming what was wrong, and survives every
 * allocation failure without leaking.
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

#include "model.h"
#include "modelgen.h"
#include "safetensors.h"
#include "testutil.h"

static const float w_in[6] = {1, 2, 3, 4, 5, 6}, a2[2] = {.5f, .5f}, b2[2] = {.9f, .9f};
static const float wo[2] = {1, 1}, oa[1] = {0}, ob[1] = {.5f};
static const char *CFG = "{\"dt\":0.004,\"input\":{\"size\":3},\"layers\":[{\"size\":2,\"neuron\":\"lif\"}],"
                         "\"readout\":{\"size\":1,\"names\":[\"y\"]}}";

static const char *good_file(const char *cfg)
{
    snn_st_out t[] = {MG_T2("layers.0.w_in", 2, 3, w_in), MG_T1("layers.0.alpha", 2, a2),
                      MG_T1("layers.0.beta", 2, b2), MG_T2("readout.w", 1, 2, wo),
                      MG_T1("readout.alpha", 1, oa), MG_T1("readout.beta", 1, ob)};
    const char *p = mg_tmp("good");
    assert_int_equal(mg_write(p, cfg ? cfg : CFG, t, 6), 0);
    return p;
}

/* Loads path and expects failure with an error message containing `want`. */
static void expect_error(const char *path, const char *want)
{
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_model_load(path, &snn_test_allocator, &m, &err);
    if (rc >= 0 || !strstr(err.msg, want))
        fail_msg("expected error containing \"%s\", got rc %d: \"%s\"", want, rc, err.msg);
    assert_null(m);
}

static void good_file_loads_with_name_and_footprint(void **u)
{
    (void)u;
    const char *p = good_file(NULL);
    snn_model *m = NULL;
    snn_err err;
    assert_int_equal(snn_model_load(p, &snn_test_allocator, &m, &err), 0);
    assert_int_equal(m->n_in, 3);
    assert_int_equal(m->n_out, 1);
    assert_string_equal(m->out_names[0], "y");
    assert_int_equal(m->footprint, (6 + 2 + 2 + 2 + 1 + 1) * 4);
    assert_true(strncmp(m->name, "snn-test-", 9) == 0);
    snn_model_free(m);
    unlink(p);
}

static void truncated_file_is_rejected(void **u)
{
    (void)u;
    const char *p = good_file(NULL);
    size_t len;
    char *b = snn_test_read_file(p, &len);
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, len - 5, f); /* lose the end of the last tensor */
    fclose(f);
    expect_error(p, "outside the");
    f = fopen(p, "wb");
    fwrite(b, 1, 6, f); /* not even a header length */
    fclose(f);
    expect_error(p, "too short");
    f = fopen(p, "wb");
    fwrite(b, 1, 40, f); /* header cut */
    fclose(f);
    expect_error(p, "exceeds the file");
    free(b);
    unlink(p);
}

static void corrupt_header_is_rejected(void **u)
{
    (void)u;
    const char *p = mg_tmp("corrupt");
    const char hdr[] = "{\"a\": [1,2,"; /* not JSON */
    FILE *f = fopen(p, "wb");
    uint64_t n = sizeof hdr - 1;
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, n, f);
    fclose(f);
    expect_error(p, "header is not a JSON object");
    unlink(p);
}

static void wrong_shape_names_tensor_expected_and_found(void **u)
{
    (void)u;
    snn_st_out t[] = {MG_T2("layers.0.w_in", 3, 2, w_in), MG_T1("layers.0.alpha", 2, a2),
                      MG_T1("layers.0.beta", 2, b2), MG_T2("readout.w", 1, 2, wo),
                      MG_T1("readout.alpha", 1, oa), MG_T1("readout.beta", 1, ob)};
    const char *p = mg_tmp("shape");
    assert_int_equal(mg_write(p, CFG, t, 6), 0);
    expect_error(p, "tensor layers.0.w_in: expected shape [2,3], found [3,2]");
    unlink(p);
}

static void missing_and_extra_tensors_are_rejected(void **u)
{
    (void)u;
    snn_st_out t[] = {MG_T2("layers.0.w_in", 2, 3, w_in), MG_T1("layers.0.alpha", 2, a2),
                      MG_T1("layers.0.beta", 2, b2), MG_T2("readout.w", 1, 2, wo),
                      MG_T1("readout.alpha", 1, oa), MG_T1("readout.beta", 1, ob),
                      MG_T1("layers.0.bais", 2, a2)};
    const char *p = mg_tmp("extra");
    assert_int_equal(mg_write(p, CFG, t, 7), 0);
    expect_error(p, "unexpected tensor layers.0.bais");
    assert_int_equal(mg_write(p, CFG, t, 5), 0);
    expect_error(p, "missing tensor readout.beta");
    unlink(p);
}

static void bad_config_is_named(void **u)
{
    (void)u;
    expect_error(good_file("{\"dt\":0.004,\"input\":{\"size\":3},\"layers\":[{\"size\":2,\"neuron\":\"izhikevich\"}],"
                           "\"readout\":{\"size\":1}}"),
                 "layers[0].neuron: \"izhikevich\" not supported");
    expect_error(good_file("{\"dt\":-1,\"input\":{\"size\":3},\"layers\":[],\"readout\":{\"size\":1}}"), "config dt");
    expect_error(good_file("{\"dt\":0.004,\"input\":{\"size\":3},\"layers\":[{\"size\":2,\"neuron\":\"lif\"}],"
                           "\"readout\":{\"size\":1,\"names\":[\"a\",\"b\"]}}"),
                 "readout.names: expected 1 names, found 2");
    expect_error(good_file("{\"dt\":0.004,\"input\":{\"size\":3,\"kind\":\"video\"},\"layers\":[{\"size\":2,"
                           "\"neuron\":\"lif\"}],\"readout\":{\"size\":1}}"),
                 "config input.kind: expected spikes, binned, tactile, analog or audio");
    const char *p = mg_tmp("nometa");
    snn_st_out t[] = {MG_T1("x", 2, a2)};
    snn_err err;
    assert_int_equal(snn_st_write(p, NULL, t, 1, &err), 0);
    expect_error(p, "__metadata__.format: expected \"snnd-rsnn\", found nothing");
    unlink(p);
}

static void unknown_extension_and_missing_file(void **u)
{
    (void)u;
    expect_error("/tmp/x.pt", "unknown model file type");
    expect_error("/nonexistent/dir/m.safetensors", "cannot open");
}

static void nan_weight_is_rejected(void **u)
{
    (void)u;
    float bad[6] = {1, 2, 3, NAN, 5, 6};
    snn_st_out t[] = {MG_T2("layers.0.w_in", 2, 3, bad), MG_T1("layers.0.alpha", 2, a2),
                      MG_T1("layers.0.beta", 2, b2), MG_T2("readout.w", 1, 2, wo),
                      MG_T1("readout.alpha", 1, oa), MG_T1("readout.beta", 1, ob)};
    const char *p = mg_tmp("nan");
    assert_int_equal(mg_write(p, CFG, t, 6), 0);
    expect_error(p, "layers.0.w_in: element 3 is NaN");
    unlink(p);
}

/* Every allocation in load and state_new may fail: each failure is an error,
 * never a crash, and cmocka's allocator reports no leak. */
static void every_allocation_failure_is_an_error(void **u)
{
    (void)u;
    const char *p = good_file(NULL);
    int failures = 0;
    for (int k = 1; k < 200; k++) {
        snn_test_fail_alloc_after(k);
        snn_model *m = NULL;
        snn_err err;
        int rc = snn_model_load(p, &snn_test_allocator, &m, &err);
        if (rc < 0) {
            assert_null(m);
            assert_non_null(strstr(err.msg, "out of memory"));
            failures++;
            continue;
        }
        snn_state *s = NULL;
        rc = m->ops->state_new(m, &s, &err);
        if (rc < 0) {
            assert_null(s);
            failures++;
        } else {
            m->ops->state_free(m, s);
        }
        snn_model_free(m);
        if (rc == 0) {
            snn_test_fail_alloc_after(0);
            break; /* k exceeded the number of allocations: all were tried */
        }
    }
    snn_test_fail_alloc_after(0);
    assert_true(failures > 10);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file_loads_with_name_and_footprint),
        cmocka_unit_test(truncated_file_is_rejected),
        cmocka_unit_test(corrupt_header_is_rejected),
        cmocka_unit_test(wrong_shape_names_tensor_expected_and_found),
        cmocka_unit_test(missing_and_extra_tensors_are_rejected),
        cmocka_unit_test(bad_config_is_named),
        cmocka_unit_test(unknown_extension_and_missing_file),
        cmocka_unit_test(nan_weight_is_rejected),
        cmocka_unit_test(every_allocation_failure_is_an_error),
    };
    return cmocka_run_group_tests_name("modelfile", tests, NULL, NULL);
}
