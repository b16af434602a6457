/*
 * safetensors.h -- reading and writing the safetensors container.
 *
 * Layout: u64 little-endian N, N bytes of JSON header, then the data section.
 * The header maps tensor names to {"dtype","shape","data_offsets":[b,e]} (offsets
 * relative to the data section) and may carry "__metadata__", a map of strings.
 * The reader validates every entry: known dtype, shape product times dtype size
 * equal to e - b, offsets inside the file, no two tensors overlapping.
 */
#ifndef SNN_SAFETENSORS_H
#define SNN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define SNN_ST_MAX_DIMS 4

typedef enum snn_dtype { SNN_DT_F32 = 1, SNN_DT_F16 = 2, SNN_DT_I8 = 3 } snn_dtype;

typedef struct snn_st_tensor {
    const char *name;        /* points into the parsed header */
    snn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[SNN_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    const uint8_t *data;     /* points into the file buffer */
    int used;                /* set by snn_st_read(); lets loaders reject extras */
} snn_st_tensor;

typedef struct snn_st {
    const snn_allocator *alloc;
    uint8_t *buf;            /* the whole file */
    size_t len;
    json_t *header;          /* jansson object */
    json_t *metadata;        /* borrowed from header, may be NULL */
    snn_st_tensor *tensors;
    size_t n_tensors;
    const char *path;        /* for error messages (borrowed) */
} snn_st;

/* Reads and validates the file at path. On success st owns a copy of the file
 * and must be released with snn_st_close(). On failure nothing is leaked and
 * err names the file and what was wrong. */
int snn_st_open(snn_st *st, const char *path, const snn_allocator *a, snn_err *err);

/* As snn_st_open() but parses an in-memory buffer; takes ownership of buf
 * (allocated with a) on success and on failure. name labels error messages. */
int snn_st_parse(snn_st *st, uint8_t *buf, size_t len, const char *name,
                 const snn_allocator *a, snn_err *err);

void snn_st_close(snn_st *st);

/* Returns the metadata string for key, or NULL. */
const char *snn_st_meta(const snn_st *st, const char *key);

/* Returns the tensor called name, or NULL. */
snn_st_tensor *snn_st_find(const snn_st *st, const char *name);

/* Copies tensor `name` widened to float32 into dst after checking its shape
 * equals shape[0..ndim). A 1-element tensor [1] is broadcast when bcast_n > 0
 * and ndim == 1 (dst gets bcast_n copies). Returns 0, or an error naming the
 * tensor, the expected and the found shape. Marks the tensor used. */
int snn_st_read(snn_st *st, const char *name, const uint64_t *shape, uint32_t ndim,
                uint64_t bcast_n, float *dst, snn_err *err);

/* Copies int8 tensor `name` into dst after checking its dtype is I8 and its shape equals
 * shape[0..ndim). Returns 0 or an error naming the tensor. Marks the tensor used. */
int snn_st_read_i8(snn_st *st, const char *name, const uint64_t *shape, uint32_t ndim, int8_t *dst,
                   snn_err *err);

/* Returns an error naming the first tensor not marked used, or 0. */
int snn_st_check_all_used(const snn_st *st, snn_err *err);

/* One tensor to write: float32 data converted to dtype on the way out. */
typedef struct snn_st_out {
    const char *name;
    snn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[SNN_ST_MAX_DIMS];
    const float *data;
} snn_st_out;

/* Writes a safetensors file atomically: path.tmp.<pid>.<n>, fsync, rename over
 * path, fsync of the directory. metadata is a string-to-string JSON object (may
 * be NULL). Either the old file stays intact or the new one is complete. */
int snn_st_write(const char *path, json_t *metadata, const snn_st_out *t, size_t n,
                 snn_err *err);

#endif
