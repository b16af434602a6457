/*
 * test_npy.c -- the .npy reader (models/npy.h) on files written by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "npy.h"
#include "testutil.h"

/* Writes a version-1 .npy file with the given header dict and data bytes to a
 * temporary path (returned in a static buffer). */
static const char *write_npy(const char *dict, const void *data, size_t n)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_npy_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    char hdr[128];
    size_t len = strlen(dict);
    size_t total = (10 + len + 1 + 15) / 16 * 16; /* magic + header padded to 16 */
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, dict, len);
    size_t hlen = total - 10;
    hdr[hlen - 1] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, hlen, f);
    fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

/* float32, C order, shape (2, 3): values in order, as doubles. */
static void test_reads_c_order_float32(void **state)
{
    (void)state;
    const float v[6] = {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, -0.125f};
    const char *p = write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
                              sizeof v);
    snn_npy n;
    snn_err err;
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), 0);
    unlink(p);
    assert_int_equal(n.ndim, 2);
    assert_int_equal(n.shape[0], 2);
    assert_int_equal(n.shape[1], 3);
    assert_int_equal(n.count, 6);
    for (int i = 0; i < 6; i++)
        assert_true(n.data[i] == (double)v[i]);
    snn_npy_free(&n, &snn_test_allocator);
}

/* uint8, Fortran order, shape (2, 3): file holds columns; data comes back row-major.
 * File bytes 1 2 3 4 5 6 are a[0][0] a[1][0] a[0][1] a[1][1] a[0][2] a[1][2]. */
static void test_reads_fortran_order_uint8(void **state)
{
    (void)state;
    const uint8_t v[6] = {1, 2, 3, 4, 5, 6};
    const char *p = write_npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", v,
                              sizeof v);
    snn_npy n;
    snn_err err;
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), 0);
    unlink(p);
    const double want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++)
        assert_true(n.data[i] == want[i]);
    snn_npy_free(&n, &snn_test_allocator);
}

/* int16 negative values and a 1-d shape "(3,)". */
static void test_reads_signed_ints(void **state)
{
    (void)state;
    const int16_t v[3] = {-1, 300, -32768};
    const char *p = write_npy("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", v,
                              sizeof v);
    snn_npy n;
    snn_err err;
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), 0);
    unlink(p);
    assert_int_equal(n.ndim, 1);
    assert_true(n.data[0] == -1.0 && n.data[1] == 300.0 && n.data[2] == -32768.0);
    snn_npy_free(&n, &snn_test_allocator);
}

/* Truncated data, big-endian dtype, a missing file and an allocation failure
 * are errors naming the file; nothing leaks (cmocka checks). */
static void test_errors(void **state)
{
    (void)state;
    const float v[2] = {1.0f, 2.0f};
    snn_npy n;
    snn_err err;
    const char *p = write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v,
                              sizeof v);
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), -SNN_EFORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(n.data);
    unlink(p);
    p = write_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", v, sizeof v);
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), -SNN_ENOTSUP);
    assert_non_null(strstr(err.msg, ">f4"));
    unlink(p);
    p = write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", v, sizeof v);
    snn_test_fail_alloc_after(2);
    assert_int_equal(snn_npy_load(p, &snn_test_allocator, &n, &err), -SNN_ENOMEM);
    snn_test_fail_alloc_after(0);
    unlink(p);
    assert_int_equal(snn_npy_load("/nonexistent/x.npy", &snn_test_allocator, &n, &err), -SNN_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.npy"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_c_order_float32),
        cmocka_unit_test(test_reads_fortran_order_uint8),
        cmocka_unit_test(test_reads_signed_ints),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("npy", tests, NULL, NULL);
}
