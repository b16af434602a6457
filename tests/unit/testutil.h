/*
 * testutil.h -- small helpers shared by the test binaries.
 */
#ifndef SNN_TESTUTIL_H
#define SNN_TESTUTIL_H

#include <stddef.h>

/* Exit code that meson (and automake) treat as "skipped". */
#define SNN_TEST_SKIP 77

/* Returns "$SNN_DATA_DIR/rel" in a static buffer if that path exists; otherwise
 * prints "SKIP: <why>" and exits with 77. Use for ../shared/data inputs. */
const char *snn_test_data(const char *rel);

/* Like snn_test_data, but for one test of a group: returns NULL (after printing
 * "SKIP (this test): <why>") instead of exiting, so the caller can skip() alone. */
const char *snn_test_data_opt(const char *rel);

/* Returns "$SNN_SOURCE_ROOT/rel" (the source tree: fixtures, models/zoo) in a
 * static buffer (one of 8 rotating buffers). */
const char *snn_test_src(const char *rel);

/* Reads a whole file into a malloc'd buffer (NUL-terminated); *len gets the size.
 * Returns NULL on error. */
char *snn_test_read_file(const char *path, size_t *len);

/* cmocka-backed allocator (test_malloc/test_free) that fails the n-th
 * allocation from now when n > 0 (0 = never fail). */
#include "alloc.h"
extern const snn_allocator snn_test_allocator;
void snn_test_fail_alloc_after(int n);

#endif
