/*
 * mel.c -- librosa-compatible log-mel spectrogram (equations in mel.h).
 */
#include "mel.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static double hz_to_mel(double f)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}

static double mel_to_hz(double mel)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return mel >= min_log_mel ? min_log_hz * exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

int snn_mel_init(snn_mel *m, double sr, int n_fft, int hop, int n_mels,
                 const snn_allocator *a, snn_err *err)
{
    memset(m, 0, sizeof *m);
    a = snn_alloc_or_default(a);
    if (sr <= 0 || n_fft < 2 || hop < 1 || n_mels < 1 || n_mels > 4096)
        return snn_err_set(err, SNN_EINVAL, "mel: bad parameters sr=%g n_fft=%d hop=%d n_mels=%d",
                           sr, n_fft, hop, n_mels);
    m->a = a;
    m->sr = sr;
    m->n_fft = n_fft;
    m->hop = hop;
    m->n_mels = n_mels;
    m->n_bins = n_fft / 2 + 1;
    int nb = m->n_bins;
    m->window = a->malloc((size_t)n_fft * sizeof *m->window);
    m->basis = a->malloc((size_t)n_fft * 2 * nb * sizeof *m->basis);
    m->fb = a->calloc((size_t)n_mels * nb, sizeof *m->fb);
    double *mel_f = a->malloc((size_t)(n_mels + 2) * sizeof *mel_f);
    if (!m->window || !m->basis || !m->fb || !mel_f) {
        a->free(mel_f);
        snn_mel_free(m);
        return snn_err_set(err, SNN_ENOMEM, "mel: out of memory");
    }
    for (int j = 0; j < n_fft; j++)
        m->window[j] = 0.5 - 0.5 * cos(2.0 * M_PI * j / n_fft);
    for (int j = 0; j < n_fft; j++) {
        for (int k = 0; k < nb; k++) {
            /* reduce j*k mod N first so the angle stays small and exact */
            double ang = 2.0 * M_PI * (double)(((long)j * k) % n_fft) / n_fft;
            m->basis[(size_t)j * 2 * nb + k] = m->window[j] * cos(ang);
            m->basis[(size_t)j * 2 * nb + nb + k] = -m->window[j] * sin(ang);
        }
    }
    double lo = hz_to_mel(0.0), hi = hz_to_mel(sr / 2);
    for (int i = 0; i < n_mels + 2; i++)
        mel_f[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
    for (int i = 0; i < n_mels; i++) {
        double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < nb; k++) {
            double f = k * sr / n_fft;
            double lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
            double upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
            double w = lower < upper ? lower : upper;
            if (w < 0)
                w = 0;
            m->fb[(size_t)i * nb + k] = (float)(w * enorm); /* librosa keeps float32 */
        }
    }
    a->free(mel_f);
    return 0;
}

void snn_mel_free(snn_mel *m)
{
    if (!m || !m->a)
        return;
    m->a->free(m->window);
    m->a->free(m->basis);
    m->a->free(m->fb);
    m->window = m->basis = m->fb = NULL;
}

size_t snn_mel_frames(const snn_mel *m, size_t n)
{
    size_t padded = n + 2 * (size_t)(m->n_fft / 2);
    if (padded < (size_t)m->n_fft)
        return 0;
    return 1 + (padded - (size_t)m->n_fft) / (size_t)m->hop;
}

size_t snn_mel_work_size(const snn_mel *m, size_t n)
{
    size_t T = snn_mel_frames(m, n);
    return T * (size_t)m->n_fft + T * 2 * (size_t)m->n_bins + T * (size_t)m->n_bins;
}

void snn_mel_power(const snn_mel *m, const float *x, size_t n, double *out, double *work)
{
    size_t T = snn_mel_frames(m, n);
    int N = m->n_fft, nb = m->n_bins, pad = N / 2;
    double *frames = work;                           /* [T][N] */
    double *spec = frames + T * (size_t)N;           /* [T][2 nb] */
    double *pow_ = spec + T * 2 * (size_t)nb;        /* [T][nb] */
    for (size_t t = 0; t < T; t++) {
        double *f = frames + t * (size_t)N;
        for (int j = 0; j < N; j++) {
            long s = (long)(t * (size_t)m->hop) + j - pad;
            f[j] = (s >= 0 && (size_t)s < n) ? (double)x[s] : 0.0;
        }
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, 2 * nb, N, 1.0, frames, N,
                m->basis, 2 * nb, 0.0, spec, 2 * nb);
    for (size_t t = 0; t < T; t++) {
        const double *s = spec + t * 2 * (size_t)nb;
        for (int k = 0; k < nb; k++)
            pow_[t * (size_t)nb + k] = s[k] * s[k] + s[nb + k] * s[nb + k];
    }
    /* out[T][M] = pow[T][nb] * fb^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, m->n_mels, nb, 1.0, pow_, nb,
                m->fb, nb, 0.0, out, m->n_mels);
}

void snn_mel_dnsmos_norm(const double *s, size_t count, float *y)
{
    const double amin = 1e-10, top_db = 80.0;
    double ref = amin;
    for (size_t i = 0; i < count; i++)
        if (s[i] > ref)
            ref = s[i];
    double ref_db = 10.0 * log10(ref), dmax = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        double d = 10.0 * log10(s[i] > amin ? s[i] : amin) - ref_db;
        if (d > dmax)
            dmax = d;
    }
    for (size_t i = 0; i < count; i++) {
        double d = 10.0 * log10(s[i] > amin ? s[i] : amin) - ref_db;
        if (d < dmax - top_db)
            d = dmax - top_db;
        y[i] = (float)((d + 40.0) / 40.0);
    }
}

double snn_mel_weight(const snn_mel *m, int mel, int bin)
{
    return m->fb[(size_t)mel * m->n_bins + bin];
}
