/*
 * alloc.h -- the allocator that library code takes.
 *
 * Every allocation in models/ goes through an snn_allocator so that unit tests
 * can swap in cmocka's leak-checking test_malloc and inject failures. Pass NULL
 * wherever an allocator is taken to use the C library's.
 */
#ifndef SNN_ALLOC_H
#define SNN_ALLOC_H

#include <stddef.h>

typedef struct snn_allocator {
    void *(*malloc)(size_t n);
    void *(*calloc)(size_t nmemb, size_t size);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
} snn_allocator;

/* The C library's allocator. */
extern const snn_allocator snn_default_allocator;

/* Returns a if not NULL, otherwise &snn_default_allocator. */
static inline const snn_allocator *snn_alloc_or_default(const snn_allocator *a)
{
    return a ? a : &snn_default_allocator;
}

#endif
