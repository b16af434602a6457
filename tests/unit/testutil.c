#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

static char bufs[8][4096];
static int bufi;

static const char *join(const char *env, const char *dflt, const char *rel)
{
    const char *root = getenv(env);
    char *b = bufs[bufi++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root && *root ? root : dflt, rel);
    return b;
}

const char *snn_test_data(const char *rel)
{
    const char *p = join("SNN_DATA_DIR", "../shared/data", rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("SKIP: reference data %s is absent (set SNN_DATA_DIR)\n", p);
        fflush(stdout);
        exit(SNN_TEST_SKIP);
    }
    return p;
}

const char *snn_test_data_opt(const char *rel)
{
    const char *p = join("SNN_DATA_DIR", "../shared/data", rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("SKIP (this test): reference data %s is absent (set SNN_DATA_DIR)\n", p);
        fflush(stdout);
        return NULL;
    }
    return p;
}

const char *snn_test_src(const char *rel)
{
    return join("SNN_SOURCE_ROOT", ".", rel);
}

char *snn_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return b;
}

static int fail_after;

void snn_test_fail_alloc_after(int n) { fail_after = n; }

static int should_fail(void)
{
    if (fail_after > 0 && --fail_after == 0)
        return 1;
    return 0;
}

static void *t_malloc(size_t n) { return should_fail() ? NULL : test_malloc(n); }
static void *t_calloc(size_t a, size_t b) { return should_fail() ? NULL : test_calloc(a, b); }
static void *t_realloc(void *p, size_t n) { return should_fail() ? NULL : test_realloc(p, n); }
static void t_free(void *p) { test_free(p); }

const snn_allocator snn_test_allocator = {t_malloc, t_calloc, t_realloc, t_free};
