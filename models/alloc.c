#include "alloc.h"

#include <stdlib.h>

static void *c_malloc(size_t n) { return malloc(n); }
static void *c_calloc(size_t a, size_t b) { return calloc(a, b); }
static void *c_realloc(void *p, size_t n) { return realloc(p, n); }
static void c_free(void *p) { free(p); }

const snn_allocator snn_default_allocator = {c_malloc, c_calloc, c_realloc, c_free};
