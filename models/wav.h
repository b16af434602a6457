/*
 * wav.h -- a RIFF/WAVE reader that turns a file into mono float samples the
 * way librosa.load (DNSMOS's dnsmos_local.py reads clips with it) does.
 *
 * Accepted: a RIFF "WAVE" file (or RF64, or Sony Wave64: the same chunks with
 * GUID ids and 64-bit sizes) with one "fmt " chunk before one
 * "data" chunk, 1 to SNN_WAV_MAX_CHANNELS channels, and one of these sample kinds:
 *   PCM integers (format 1) of 1 to 32 bits, read from whole-byte containers
 *   (12-bit in 2 bytes, 20-bit in 3; 1 byte is unsigned);
 *   IEEE float (format 3) of 32 or 64 bits;
 *   G.711 A-law (format 6) or mu-law (format 7), a byte a sample (the bits
 *   field is not checked, as libsndfile does not);
 * WAVE_FORMAT_EXTENSIBLE (0xFFFE) with one of those as sub-format too (its
 * valid-bits field is ignored). Other chunks (LIST, fact, ...) are skipped.
 * As libsndfile does: block_align and byte_rate are not checked (frames are
 * channels x container bytes); a trailing part of a frame is dropped; the
 * chunks are walked to the end of the file whatever the RIFF size says. A
 * file written to a pipe, whose RIFF size is a placeholder (0, or 0x7FFF0000
 * and above) that disagrees with the file, has a placeholder data size mean
 * "the whole frames up to the end"; RF64 takes the data size from ds64. A
 * data chunk larger than the file (a recording cut short) is read as the
 * whole frames present, as soundfile reads it. Anything else -- ADPCM, GSM,
 * MP3-in-WAV, RIFX, a fmt or other chunk cut short -- is an error naming the
 * file and the field, e.g.
 * "x.wav: fmt: format 2 (MS ADPCM) with 4 bits (supported: ...)".
 *
 * Scaling (as libsndfile, under soundfile and librosa, does): an integer s in
 * a c-byte container becomes s / 2^(8c-1), 1-byte PCM (s - 128) / 128, an
 * A-law or mu-law byte its G.711 16-bit linear value / 32768; float samples
 * are taken as they are. Several channels become their mean (librosa.to_mono).
 * The sample rate is reported as the file states it; resampling is the
 * caller's (resample.h).
 */
#ifndef SNN_WAV_H
#define SNN_WAV_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"

enum { SNN_WAV_PCM = 1, SNN_WAV_FLOAT = 3, SNN_WAV_ALAW = 6, SNN_WAV_MULAW = 7 };
enum { SNN_WAV_MAX_CHANNELS = 64 };

typedef struct snn_wav {
    const snn_allocator *a;
    uint32_t sample_rate;
    uint16_t format;   /* SNN_WAV_PCM, _FLOAT, _ALAW or _MULAW (extensible resolved) */
    uint16_t channels; /* in the file; x holds their mean */
    uint16_t bits;     /* per sample in the file */
    size_t n;          /* samples per channel */
    float *x;          /* [n] mono, owned */
} snn_wav;

/* Parses len bytes of a WAVE file; label names it in errors. On success *w
 * owns the samples (snn_wav_free). Errors: -SNN_EFORMAT (malformed or
 * truncated, or a float sample that is NaN, infinite or beyond float's range:
 * the error names the first), -SNN_ENOTSUP (valid WAVE snnd does not read),
 * -SNN_ENOMEM. */
int snn_wav_parse(const uint8_t *buf, size_t len, const char *label,
                  const snn_allocator *a, snn_wav *w, snn_err *err);

/* Reads and parses the file at path: a regular file, or a pipe or FIFO read to
 * its end (-SNN_ENOENT / -SNN_EIO when unreadable, a directory named as one). */
int snn_wav_read(const char *path, const snn_allocator *a, snn_wav *w, snn_err *err);

/* Frees the samples (w itself is the caller's; NULL-safe). */
void snn_wav_free(snn_wav *w);

#endif
