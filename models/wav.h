/*
 * wav.h -- a strict RIFF/WAVE reader for mono PCM audio.
 *
 * Accepted: a RIFF "WAVE" file with one "fmt " chunk before one "data" chunk,
 * one channel, and either 16-bit signed integer PCM (format 1) or 32-bit IEEE
 * float (format 3); WAVE_FORMAT_EXTENSIBLE (0xFFFE) with one of those two
 * sub-formats is accepted too. Other chunks (LIST, fact, ...) are skipped.
 * Everything else -- stereo, 8/24/32-bit integers, A-law, truncated chunks,
 * sizes that disagree with the header -- is an error naming the file and the
 * field, e.g. "x.wav: fmt: 2 channels (only mono is supported)".
 *
 * Samples become float in [-1, 1): s16 values are divided by 32768 (as
 * libsndfile/soundfile do); float samples are taken as they are.
 */
#ifndef SNN_WAV_H
#define SNN_WAV_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"

typedef struct snn_wav {
    const snn_allocator *a;
    uint32_t sample_rate;
    uint16_t format;  /* 1 = PCM s16, 3 = float32 */
    size_t n;         /* samples */
    float *x;         /* [n], owned */
} snn_wav;

/* Parses len bytes of a WAVE file; label names it in errors. On success *w
 * owns the samples (snn_wav_free). Errors: -SNN_EFORMAT (malformed or
 * truncated), -SNN_ENOTSUP (valid WAVE snnd does not read), -SNN_ENOMEM. */
int snn_wav_parse(const uint8_t *buf, size_t len, const char *label,
                  const snn_allocator *a, snn_wav *w, snn_err *err);

/* Reads and parses the file at path (-SNN_ENOENT / -SNN_EIO when unreadable). */
int snn_wav_read(const char *path, const snn_allocator *a, snn_wav *w, snn_err *err);

/* Frees the samples (w itself is the caller's; NULL-safe). */
void snn_wav_free(snn_wav *w);

#endif
