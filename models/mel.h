/*
 * mel.h -- log-mel spectrogram as librosa (>= 0.10) computes it: the DNSMOS
 * P.808 front end.
 *
 * For audio x[0..n) at sample rate sr, FFT size N (odd N is fine), hop h and
 * M mel bands (DNSMOS: sr 16000, N 321, h 160, M 120):
 *
 *   padding   center=True, pad_mode="constant": N/2 (integer division) zeros
 *             on each side; frames T = 1 + (n + 2*(N/2) - N) / h
 *   window    periodic Hann: w[j] = 0.5 - 0.5 cos(2 pi j / N), j < N
 *   spectrum  P[t][k] = |sum_j w[j] xp[t*h + j] e^{-2 pi i j k / N}|^2,
 *             k = 0 .. N/2 (power spectrogram, librosa's power=2)
 *   mel       S[t][m] = sum_k F[m][k] P[t][k] with librosa's Slaney filterbank:
 *             mel(f) = 3 f / 200 below 1 kHz, 15 + 27 ln(f / 1000) / ln 6.4
 *             above; M + 2 points equally spaced in mel from mel(0) to
 *             mel(sr/2); triangle m rises from point m to m+1 and falls to
 *             m+2 over FFT bin frequencies k sr / N, scaled by
 *             2 / (f_{m+2} - f_m) (norm="slaney")
 *   dB        D = 10 log10(max(S, 1e-10)) - 10 log10(max(max_all S, 1e-10)),
 *             then D = max(D, max_all D - 80)   (power_to_db, ref=np.max,
 *             top_db=80)
 *   DNSMOS    out[t][m] = (D[t][m] + 40) / 40, frame-major (the transpose
 *             dnsmos_local.py feeds the model).
 *
 * Arithmetic is in double (librosa works in float32/float64 depending on the
 * input); the filterbank is rounded to float32 as librosa stores it.
 */
#ifndef SNN_MEL_H
#define SNN_MEL_H

#include <stddef.h>

#include "alloc.h"
#include "model.h"

typedef struct snn_mel {
    const snn_allocator *a;
    double sr;
    int n_fft, hop, n_mels, n_bins; /* n_bins = n_fft / 2 + 1 */
    double *window;                 /* [n_fft] */
    double *basis;                  /* [n_fft][2 * n_bins]: cos, -sin (window folded in) */
    double *fb;                     /* [n_mels][n_bins] */
} snn_mel;

/* Prepares a front end. Returns 0, -SNN_EINVAL for non-positive sizes or
 * n_mels too large, -SNN_ENOMEM. */
int snn_mel_init(snn_mel *m, double sr, int n_fft, int hop, int n_mels,
                 const snn_allocator *a, snn_err *err);

/* Frees what snn_mel_init allocated (m itself is the caller's). */
void snn_mel_free(snn_mel *m);

/* Number of frames for n samples (center=True). */
size_t snn_mel_frames(const snn_mel *m, size_t n);

/* Doubles of work snn_mel_power needs for n samples. */
size_t snn_mel_work_size(const snn_mel *m, size_t n);

/* Mel power spectrogram of x[0..n): out[t * n_mels + mel] for every frame t,
 * in double. work holds snn_mel_work_size(m, n) doubles. Allocates nothing. */
void snn_mel_power(const snn_mel *m, const float *x, size_t n, double *out, double *work);

/* The DNSMOS normalisation of count mel powers in place: power_to_db with
 * ref = max, amin 1e-10, top_db 80, then (D + 40) / 40; written as float to y
 * (y may be any buffer of count floats). */
void snn_mel_dnsmos_norm(const double *s, size_t count, float *y);

/* Filterbank weight F[mel][bin] (for tests). */
double snn_mel_weight(const snn_mel *m, int mel, int bin);

#endif
