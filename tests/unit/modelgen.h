/*
 * modelgen.h -- builds small RSNN model files for tests (header-only).
 */
#ifndef SNN_MODELGEN_H
#define SNN_MODELGEN_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

/* Writes an "snnd-rsnn" file at path with config cfg_json (a JSON string) and
 * the given tensors. Returns 0 or the snn_st_write error. */
static inline int mg_write(const char *path, const char *cfg_json, const snn_st_out *t, size_t n)
{
    json_t *meta = json_pack("{s:s, s:s, s:s}", "format", "snnd-rsnn", "version", "1", "config", cfg_json);
    snn_err err;
    int rc = snn_st_write(path, meta, t, n, &err);
    json_decref(meta);
    if (rc < 0)
        fprintf(stderr, "mg_write: %s\n", err.msg);
    return rc;
}

/* A temporary file name unique to this process. */
static inline const char *mg_tmp(const char *tag)
{
    static char b[8][256];
    static int i;
    char *p = b[i++ & 7];
    snprintf(p, sizeof b[0], "/tmp/snn-test-%ld-%s.safetensors", (long)getpid(), tag);
    return p;
}

#define MG_T1(nm, d0, ptr) {.name = (nm), .dtype = SNN_DT_F32, .ndim = 1, .shape = {(d0)}, .data = (ptr)}
#define MG_T2(nm, d0, d1, ptr) {.name = (nm), .dtype = SNN_DT_F32, .ndim = 2, .shape = {(d0), (d1)}, .data = (ptr)}

#endif
