/*
 * resample.h -- sample-rate conversion of mono float audio to the rate a model
 * expects (DNSMOS: 16 kHz), with libsoxr.
 *
 * Why libsoxr (Debian: libsoxr0 / libsoxr-dev): it is a high-quality
 * band-limited resampler (the SoX engine; its "HQ" recipe keeps > 100 dB of
 * stop-band rejection and a flat pass band), it is small and well maintained,
 * it has a streaming API (feed blocks as they arrive, flush at the end) that
 * fits a daemon fed by sockets, and librosa >= 0.10 -- which DNSMOS's
 * dnsmos_local.py calls to resample -- uses the same soxr "HQ" recipe by
 * default, so snnd resamples the way the reference pipeline does.
 *
 * Any rate from 1 kHz to 384 kHz is accepted; the tested ones are 8, 16,
 * 44.1 and 48 kHz. A ratio of 1 copies samples unchanged.
 */
#ifndef SNN_RESAMPLE_H
#define SNN_RESAMPLE_H

#include <stddef.h>

#include "alloc.h"
#include "model.h"

typedef struct snn_resampler snn_resampler;

/* Creates a streaming converter from in_rate to out_rate (Hz). Returns 0,
 * -SNN_EINVAL for rates outside [1000, 384000], -SNN_ENOMEM. */
int snn_resampler_new(double in_rate, double out_rate, const snn_allocator *a,
                      snn_resampler **out, snn_err *err);

/* Feeds n input samples (n = 0 with x = NULL flushes the tail at end of
 * stream) and writes up to cap output samples to y; *ny gets how many were
 * written. Output lags input by the filter delay; a flush emits the rest.
 * Returns 0 or -SNN_EINVAL. */
int snn_resampler_process(snn_resampler *r, const float *x, size_t n, float *y,
                          size_t cap, size_t *ny, snn_err *err);

void snn_resampler_free(snn_resampler *r);

/* Output samples a whole clip of n input samples converts to:
 * round(n * out_rate / in_rate). */
size_t snn_resample_len(size_t n, double in_rate, double out_rate);

/* Converts a whole clip: *y (allocated with a, snn_resample_len samples) gets
 * x resampled, *ny its length. Returns 0 or a negative code. */
int snn_resample(const float *x, size_t n, double in_rate, double out_rate,
                 const snn_allocator *a, float **y, size_t *ny, snn_err *err);

#endif
