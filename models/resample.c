/*
 * resample.c -- libsoxr wrapper (contract in resample.h).
 */
#include "resample.h"

#include <math.h>
#include <soxr.h>
#include <string.h>

struct snn_resampler {
    const snn_allocator *a;
    soxr_t s;      /* NULL when the ratio is 1 */
};

static int rate_ok(double r) { return r >= 1000.0 && r <= 384000.0; }

int snn_resampler_new(double in_rate, double out_rate, const snn_allocator *a,
                      snn_resampler **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    if (!rate_ok(in_rate) || !rate_ok(out_rate))
        return snn_err_set(err, SNN_EINVAL, "resample: rate %g -> %g Hz outside 1000..384000", in_rate,
                           out_rate);
    snn_resampler *r = a->calloc(1, sizeof *r);
    if (!r)
        return snn_err_set(err, SNN_ENOMEM, "resample: out of memory");
    r->a = a;
    if (in_rate != out_rate) {
        soxr_error_t e = NULL;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        r->s = soxr_create(in_rate, out_rate, 1, &e, &io, &q, NULL);
        if (!r->s || e) {
            a->free(r);
            return snn_err_set(err, SNN_ENOMEM, "resample: soxr_create failed: %s", e ? e : "?");
        }
    }
    *out = r;
    return 0;
}

int snn_resampler_process(snn_resampler *r, const float *x, size_t n, float *y,
                          size_t cap, size_t *ny, snn_err *err)
{
    *ny = 0;
    if (!r->s) { /* same rate: copy */
        if (n > cap)
            return snn_err_set(err, SNN_EINVAL, "resample: %zu samples do not fit in %zu", n, cap);
        if (n)
            memcpy(y, x, n * sizeof *y);
        *ny = n;
        return 0;
    }
    size_t idone = 0;
    soxr_error_t e = soxr_process(r->s, x, x ? n : 0, &idone, y, cap, ny);
    if (e)
        return snn_err_set(err, SNN_EINVAL, "resample: %s", e);
    if (x && idone != n)
        return snn_err_set(err, SNN_EINVAL, "resample: output buffer of %zu samples too small", cap);
    return 0;
}

void snn_resampler_free(snn_resampler *r)
{
    if (!r)
        return;
    if (r->s)
        soxr_delete(r->s);
    r->a->free(r);
}

size_t snn_resample_len(size_t n, double in_rate, double out_rate)
{
    return (size_t)llround((double)n * out_rate / in_rate);
}

int snn_resample(const float *x, size_t n, double in_rate, double out_rate,
                 const snn_allocator *a, float **y, size_t *ny, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *y = NULL;
    *ny = 0;
    snn_resampler *r;
    int rc = snn_resampler_new(in_rate, out_rate, a, &r, err);
    if (rc)
        return rc;
    size_t want = snn_resample_len(n, in_rate, out_rate);
    /* room for the whole clip plus what soxr may flush past the exact length */
    size_t cap = want + 64;
    float *out = a->malloc(cap * sizeof *out);
    if (!out) {
        snn_resampler_free(r);
        return snn_err_set(err, SNN_ENOMEM, "resample: out of memory");
    }
    size_t got = 0, k = 0;
    rc = snn_resampler_process(r, x, n, out, cap, &got, err);
    while (rc == 0 && got < want) { /* flush the filter's delay */
        rc = snn_resampler_process(r, NULL, 0, out + got, cap - got, &k, err);
        if (k == 0)
            break;
        got += k;
    }
    snn_resampler_free(r);
    if (rc) {
        a->free(out);
        return rc;
    }
    *y = out;
    *ny = got < want ? got : want;
    return 0;
}
