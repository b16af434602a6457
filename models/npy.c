/*
 * npy.c -- .npy reader; see npy.h.
 *
 * Layout: "\x93NUMPY", major, minor, header length (2 bytes for v1, 4 for v2/3,
 * little-endian), then an ASCII Python dict literal with 'descr', 'fortran_order'
 * and 'shape', padded with spaces and a newline; then the raw elements.
 */
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds the value text after 'key': in the header dict, or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *s = strstr(h, pat);
    if (!s)
        return NULL;
    s = strchr(s + strlen(pat), ':');
    if (!s)
        return NULL;
    s++;
    while (*s == ' ')
        s++;
    return s;
}

/* Converts element i of raw data with the given kind ('f','i','u','b') and size to double. */
static double elem(const unsigned char *raw, size_t i, char kind, size_t size)
{
    const unsigned char *b = raw + i * size;
    uint64_t u = 0;
    for (size_t k = 0; k < size; k++)
        u |= (uint64_t)b[k] << (8 * k);
    switch (kind) {
    case 'f':
        if (size == 4) {
            uint32_t u32 = (uint32_t)u;
            float f;
            memcpy(&f, &u32, 4);
            return f;
        } else {
            double d;
            memcpy(&d, &u, 8);
            return d;
        }
    case 'i':
        if (size < 8 && (u >> (8 * size - 1)) & 1)
            u |= ~(uint64_t)0 << (8 * size);
        return (double)(int64_t)u;
    default: /* 'u', 'b' */
        return (double)u;
    }
}

int snn_npy_load(const char *path, const snn_allocator *a, snn_npy *out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return snn_err_set(err, SNN_EIO, "%s: cannot open", path);
    unsigned char pre[12];
    int rc = 0;
    char *hdr = NULL;
    unsigned char *raw = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            rc = snn_err_set(err, SNN_EFORMAT, "%s: truncated header", path);
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: .npy version %d not supported", path, pre[6]);
        goto done;
    }
    if (hlen > (1u << 20) || !(hdr = a->malloc(hlen + 1))) {
        rc = snn_err_set(err, hlen > (1u << 20) ? SNN_EFORMAT : SNN_ENOMEM,
                         "%s: header of %zu bytes", path, hlen);
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: truncated header", path);
        goto done;
    }
    hdr[hlen] = 0;

    const char *d = dict_value(hdr, "descr");
    if (!d || (d[0] != '\'' && d[0] != '"') || !d[1] || !d[2]) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: header has no descr", path);
        goto done;
    }
    char order = d[1], kind = d[2];
    size_t size = (size_t)strtoul(d + 3, NULL, 10);
    int ok_order = order == '<' || order == '|' || order == '=';
    int ok_kind = (kind == 'f' && (size == 4 || size == 8)) ||
                  ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
                  (kind == 'b' && size == 1);
    if (!ok_order || !ok_kind) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: dtype %.8s not supported", path, d);
        goto done;
    }
    const char *fo = dict_value(hdr, "fortran_order");
    if (!fo) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: header has no fortran_order", path);
        goto done;
    }
    int fortran = strncmp(fo, "True", 4) == 0;
    const char *sh = dict_value(hdr, "shape");
    if (!sh || *sh != '(') {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: header has no shape", path);
        goto done;
    }
    sh++;
    out->count = 1;
    for (;;) {
        while (*sh == ' ' || *sh == ',')
            sh++;
        if (*sh == ')')
            break;
        char *end;
        unsigned long long v = strtoull(sh, &end, 10);
        if (end == sh || out->ndim == SNN_NPY_MAX_DIMS) {
            rc = snn_err_set(err, end == sh ? SNN_EFORMAT : SNN_ENOTSUP, "%s: bad shape in header",
                             path);
            goto done;
        }
        out->shape[out->ndim++] = (size_t)v;
        out->count *= (size_t)v;
        sh = end;
    }

    size_t nbytes = out->count * size;
    raw = a->malloc(nbytes ? nbytes : 1);
    out->data = a->malloc((out->count ? out->count : 1) * sizeof(double));
    if (!raw || !out->data) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory for %zu elements", path, out->count);
        goto done;
    }
    if (fread(raw, 1, nbytes, f) != nbytes) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: data truncated (expected %zu bytes)", path, nbytes);
        goto done;
    }
    if (!fortran || out->ndim < 2) {
        for (size_t i = 0; i < out->count; i++)
            out->data[i] = elem(raw, i, kind, size);
    } else {
        /* Fortran order: the first index varies fastest in the file. */
        size_t idx[SNN_NPY_MAX_DIMS] = {0};
        for (size_t fi = 0; fi < out->count; fi++) {
            size_t ci = 0;
            for (int k = 0; k < out->ndim; k++)
                ci = ci * out->shape[k] + idx[k];
            out->data[ci] = elem(raw, fi, kind, size);
            for (int k = 0; k < out->ndim; k++) {
                if (++idx[k] < out->shape[k])
                    break;
                idx[k] = 0;
            }
        }
    }
done:
    fclose(f);
    if (hdr)
        a->free(hdr);
    if (raw)
        a->free(raw);
    if (rc) {
        if (out->data)
            a->free(out->data);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

void snn_npy_free(snn_npy *n, const snn_allocator *a)
{
    if (!n)
        return;
    if (n->data)
        snn_alloc_or_default(a)->free(n->data);
    n->data = NULL;
}
