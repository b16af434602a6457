/*
 * npy.h -- a small reader for NumPy .npy files (format versions 1, 2 and 3).
 *
 * Reads little-endian float32/float64, signed/unsigned 8..64-bit integers and
 * booleans, C or Fortran order, and converts every element to double in C
 * (row-major) order. Used by tests and offline tools to read reference data.
 */
#ifndef SNN_NPY_H
#define SNN_NPY_H

#include <stddef.h>

#include "alloc.h"
#include "model.h"

#define SNN_NPY_MAX_DIMS 8

typedef struct snn_npy {
    int ndim;
    size_t shape[SNN_NPY_MAX_DIMS];
    size_t count;  /* product of shape (1 for a 0-d array) */
    double *data;  /* count values, C order, allocated with the allocator given */
} snn_npy;

/* Reads the .npy file at path into *out. Returns 0, or -SNN_EIO (cannot read),
 * -SNN_EFORMAT (bad magic or header, truncated data), -SNN_ENOTSUP (dtype such
 * as big-endian or complex, more than SNN_NPY_MAX_DIMS dimensions), -SNN_ENOMEM,
 * with err naming the file. On error *out holds no allocation. */
int snn_npy_load(const char *path, const snn_allocator *a, snn_npy *out, snn_err *err);

/* Frees the data of n (allocated by snn_npy_load with the same allocator). */
void snn_npy_free(snn_npy *n, const snn_allocator *a);

#endif
