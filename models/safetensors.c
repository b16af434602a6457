#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp16.h"

#define MAX_HEADER (64u << 20)

static size_t dtype_size(snn_dtype d) { return d == SNN_DT_F16 ? 2 : d == SNN_DT_I8 ? 1 : 4; }

int snn_st_open(snn_st *st, const char *path, const snn_allocator *a, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f)
        return snn_err_set(err, SNN_ENOENT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return snn_err_set(err, SNN_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = a->malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory reading %zu bytes", path, len);
    }
    if (fread(buf, 1, len, f) != len) {
        fclose(f);
        a->free(buf);
        return snn_err_set(err, SNN_EIO, "%s: short read", path);
    }
    fclose(f);
    return snn_st_parse(st, buf, len, path, a, err);
}

static int parse_entry(snn_st *st, const char *name, json_t *v, uint64_t data_len,
                       snn_st_tensor *t, snn_err *err)
{
    const char *p = st->path;
    if (!json_is_object(v))
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: entry is not an object", p, name);
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    if (!dt)
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: missing dtype", p, name);
    if (!strcmp(dt, "F32"))
        t->dtype = SNN_DT_F32;
    else if (!strcmp(dt, "F16"))
        t->dtype = SNN_DT_F16;
    else if (!strcmp(dt, "I8"))
        t->dtype = SNN_DT_I8;
    else
        return snn_err_set(err, SNN_ENOTSUP, "%s: tensor %s: dtype %s not supported (F32, F16, I8)", p, name,
                           dt);
    json_t *shape = json_object_get(v, "shape");
    if (!json_is_array(shape) || json_array_size(shape) > SNN_ST_MAX_DIMS)
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: shape must be an array of at most %d dims", p, name, SNN_ST_MAX_DIMS);
    t->ndim = (uint32_t)json_array_size(shape);
    t->numel = 1;
    for (uint32_t i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1ll << 32))
            return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: bad dimension %u", p, name, i);
        t->shape[i] = (uint64_t)json_integer_value(d);
        if (t->shape[i] > 0 && t->numel > (1ull << 40) / t->shape[i]) /* before it can wrap */
            return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: too large", p, name);
        t->numel *= t->shape[i];
        if (t->numel > (1ull << 40))
            return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: too large", p, name);
    }
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)))
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: data_offsets must be [begin, end]", p, name);
    json_int_t b = json_integer_value(json_array_get(off, 0));
    json_int_t e = json_integer_value(json_array_get(off, 1));
    if (b < 0 || e < b || (uint64_t)e > data_len)
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: data_offsets [%lld, %lld] outside the %llu-byte data section (truncated file?)",
                           p, name, (long long)b, (long long)e, (unsigned long long)data_len);
    t->nbytes = (uint64_t)(e - b);
    if (t->nbytes != t->numel * dtype_size(t->dtype))
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: %llu bytes for %llu elements of %s", p, name,
                           (unsigned long long)t->nbytes, (unsigned long long)t->numel, dt);
    t->data = (const uint8_t *)(uintptr_t)b; /* relocated by the caller */
    t->name = name;
    return 0;
}

static int cmp_off(const void *x, const void *y)
{
    const snn_st_tensor *a = x, *b = y;
    return a->data < b->data ? -1 : a->data > b->data;
}

int snn_st_parse(snn_st *st, uint8_t *buf, size_t len, const char *name,
                 const snn_allocator *a, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(st, 0, sizeof *st);
    st->alloc = a;
    st->buf = buf;
    st->len = len;
    st->path = name;
    int rc;
    if (len < 8) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: %zu bytes is too short for a safetensors header", name, len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    if (n > MAX_HEADER || n > len - 8) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not a safetensors file",
                         name, (unsigned long long)n, len);
        goto fail;
    }
    json_error_t je;
    st->header = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!st->header || !json_is_object(st->header)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: header is not a JSON object: %s", name,
                         st->header ? "wrong type" : je.text);
        goto fail;
    }
    uint64_t data_len = len - 8 - n;
    size_t cnt = json_object_size(st->header);
    st->tensors = a->calloc(cnt ? cnt : 1, sizeof *st->tensors);
    if (!st->tensors) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", name);
        goto fail;
    }
    const char *key;
    json_t *v;
    json_object_foreach(st->header, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) {
                rc = snn_err_set(err, SNN_EFORMAT, "%s: __metadata__ is not an object", name);
                goto fail;
            }
            st->metadata = v;
            continue;
        }
        snn_st_tensor *t = &st->tensors[st->n_tensors];
        if ((rc = parse_entry(st, key, v, data_len, t, err)) < 0)
            goto fail;
        st->n_tensors++;
    }
    /* No overlaps: sort by begin offset and compare neighbours. */
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_off);
    for (size_t i = 0; i < st->n_tensors; i++) {
        uint64_t b = (uint64_t)(uintptr_t)st->tensors[i].data;
        if (i + 1 < st->n_tensors && b + st->tensors[i].nbytes > (uint64_t)(uintptr_t)st->tensors[i + 1].data) {
            rc = snn_err_set(err, SNN_EFORMAT, "%s: tensors %s and %s overlap", name, st->tensors[i].name,
                             st->tensors[i + 1].name);
            goto fail;
        }
        st->tensors[i].data = buf + 8 + n + b;
    }
    return 0;
fail:
    snn_st_close(st);
    return rc;
}

void snn_st_close(snn_st *st)
{
    if (!st->alloc)
        return;
    if (st->header)
        json_decref(st->header);
    st->alloc->free(st->tensors);
    st->alloc->free(st->buf);
    memset(st, 0, sizeof *st);
}

const char *snn_st_meta(const snn_st *st, const char *key)
{
    return st->metadata ? json_string_value(json_object_get(st->metadata, key)) : NULL;
}

snn_st_tensor *snn_st_find(const snn_st *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

static void fmt_shape(char *b, size_t n, const uint64_t *s, uint32_t nd)
{
    size_t o = 0;
    o += (size_t)snprintf(b + o, n - o, "[");
    for (uint32_t i = 0; i < nd && o < n; i++)
        o += (size_t)snprintf(b + o, n - o, i ? ",%llu" : "%llu", (unsigned long long)s[i]);
    if (o < n)
        snprintf(b + o, n - o, "]");
}

int snn_st_read(snn_st *st, const char *name, const uint64_t *shape, uint32_t ndim,
                uint64_t bcast_n, float *dst, snn_err *err)
{
    snn_st_tensor *t = snn_st_find(st, name);
    char want[64], got[64];
    fmt_shape(want, sizeof want, shape, ndim);
    if (!t)
        return snn_err_set(err, SNN_EFORMAT, "%s: missing tensor %s (expected shape %s)", st->path, name, want);
    int same = t->ndim == ndim;
    for (uint32_t i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    int bcast = !same && bcast_n && ndim == 1 && t->ndim == 1 && t->shape[0] == 1;
    if (!same && !bcast) {
        fmt_shape(got, sizeof got, t->shape, t->ndim);
        return snn_err_set(err, SNN_ESHAPE, "%s: tensor %s: expected shape %s, found %s", st->path, name, want, got);
    }
    t->used = 1;
    for (uint64_t i = 0; i < t->numel; i++) {
        float v;
        if (t->dtype == SNN_DT_F16) {
            uint16_t h = (uint16_t)(t->data[2 * i] | (t->data[2 * i + 1] << 8));
            v = snn_fp16_to_f32(h);
        } else if (t->dtype == SNN_DT_I8) {
            v = (float)(int8_t)t->data[i];
        } else {
            uint32_t u = (uint32_t)t->data[4 * i] | (uint32_t)t->data[4 * i + 1] << 8 |
                         (uint32_t)t->data[4 * i + 2] << 16 | (uint32_t)t->data[4 * i + 3] << 24;
            memcpy(&v, &u, sizeof v);
        }
        if (v != v)
            return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: element %llu is NaN", st->path, name,
                               (unsigned long long)i);
        dst[i] = v;
    }
    if (bcast)
        for (uint64_t i = 1; i < bcast_n; i++)
            dst[i] = dst[0];
    return 0;
}

int snn_st_read_i8(snn_st *st, const char *name, const uint64_t *shape, uint32_t ndim, int8_t *dst,
                   snn_err *err)
{
    snn_st_tensor *t = snn_st_find(st, name);
    char want[64], got[64];
    fmt_shape(want, sizeof want, shape, ndim);
    if (!t)
        return snn_err_set(err, SNN_EFORMAT, "%s: missing tensor %s (expected I8 %s)", st->path, name, want);
    if (t->dtype != SNN_DT_I8)
        return snn_err_set(err, SNN_EFORMAT, "%s: tensor %s: expected dtype I8", st->path, name);
    int same = t->ndim == ndim;
    for (uint32_t i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        fmt_shape(got, sizeof got, t->shape, t->ndim);
        return snn_err_set(err, SNN_ESHAPE, "%s: tensor %s: expected shape %s, found %s", st->path, name, want, got);
    }
    t->used = 1;
    memcpy(dst, t->data, t->numel);
    return 0;
}

int snn_st_check_all_used(const snn_st *st, snn_err *err)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (!st->tensors[i].used)
            return snn_err_set(err, SNN_EFORMAT, "%s: unexpected tensor %s (not used by this architecture)",
                               st->path, st->tensors[i].name);
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int snn_st_write(const char *path, json_t *metadata, const snn_st_out *t, size_t n, snn_err *err)
{
    json_t *h = json_object();
    uint64_t off = 0;
    if (metadata)
        json_object_set(h, "__metadata__", metadata);
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = 1;
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t[i].ndim; d++) {
            numel *= t[i].shape[d];
            json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
        }
        uint64_t nb = numel * dtype_size(t[i].dtype);
        json_object_set_new(h, t[i].name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", t[i].dtype == SNN_DT_F16 ? "F16" : "F32",
                                      "shape", shape, "data_offsets", (json_int_t)off, (json_int_t)(off + nb)));
        off += nb;
    }
    char *js = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!js)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    /* Unique per process and call: concurrent saves of one name never share it. */
    static unsigned long seq;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lu", path, (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(js);
        return snn_err_set(err, SNN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    uint8_t len8[8];
    uint64_t hn = hl + pad;
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(hn >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, js, hl) || write_all(fd, "        ", pad);
    free(js);
    for (size_t i = 0; i < n && !bad; i++) {
        uint64_t numel = 1;
        for (uint32_t d = 0; d < t[i].ndim; d++)
            numel *= t[i].shape[d];
        uint8_t chunk[4096];
        size_t cn = 0;
        for (uint64_t k = 0; k < numel && !bad; k++) {
            if (t[i].dtype == SNN_DT_F16) {
                uint16_t v = snn_f32_to_fp16(t[i].data[k]);
                chunk[cn++] = (uint8_t)v;
                chunk[cn++] = (uint8_t)(v >> 8);
            } else {
                uint32_t u;
                memcpy(&u, &t[i].data[k], 4);
                for (int b = 0; b < 4; b++)
                    chunk[cn++] = (uint8_t)(u >> (8 * b));
            }
            if (cn >= sizeof chunk - 4) {
                bad = write_all(fd, chunk, cn);
                cn = 0;
            }
        }
        if (!bad && cn)
            bad = write_all(fd, chunk, cn);
    }
    if (bad || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return snn_err_set(err, SNN_EIO, "%s: write failed: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return snn_err_set(err, SNN_EIO, "%s: rename failed: %s", path, strerror(e));
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
