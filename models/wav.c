/*
 * wav.c -- RIFF/WAVE reader (contract in wav.h).
 */
#include "wav.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* 1 if a RIFF or data size is a placeholder that writers to a pipe leave
 * (they cannot seek back to fill it in): 0, or 0x7FFF0000 and above (sox
 * writes 0x7FFFF024 / 0x7FFFF000, others 0xFFFFFFFF). */
static int unknown_size(uint32_t sz) { return sz == 0 || sz >= 0x7FFF0000u; }

/* 1 if format code fmt with bits per sample is one snn_wav_parse decodes. */
static int sample_kind_ok(uint16_t fmt, uint16_t bits)
{
    switch (fmt) {
    case SNN_WAV_PCM: return bits == 8 || bits == 16 || bits == 24 || bits == 32;
    case SNN_WAV_FLOAT: return bits == 32 || bits == 64;
    case SNN_WAV_ALAW:
    case SNN_WAV_MULAW: return bits == 8;
    default: return 0;
    }
}

/* G.711 A-law byte -> 16-bit linear value (ITU-T G.711: even bits inverted,
 * 3-bit segment, 4-bit mantissa; the sign bit set means positive). */
static int alaw_linear(uint8_t b)
{
    b ^= 0x55;
    int seg = (b >> 4) & 7, mant = b & 15;
    int v = seg ? ((mant << 4) + 0x108) << (seg - 1) : (mant << 4) + 8;
    return (b & 0x80) ? v : -v;
}

/* G.711 mu-law byte -> 16-bit linear value (all bits inverted, bias 0x84
 * removed; the sign bit set means negative). */
static int mulaw_linear(uint8_t b)
{
    b = (uint8_t)~b;
    int v = ((((b & 15) << 3) + 0x84) << ((b >> 4) & 7)) - 0x84;
    return (b & 0x80) ? -v : v;
}

/* One sample at p as a double in [-1, 1) the way libsndfile (soundfile, and
 * so librosa.load) scales it: integers over 2^(bits-1), 8-bit PCM unsigned
 * with 128 as zero, G.711 through its 16-bit linear value over 32768. */
static double sample_at(const uint8_t *p, uint16_t fmt, uint16_t bits)
{
    if (fmt == SNN_WAV_PCM) {
        switch (bits) {
        case 8: return ((int)p[0] - 128) / 128.0;
        case 16: return (int16_t)rd16(p) / 32768.0;
        case 24: return (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) / 2147483648.0;
        default: return (int32_t)rd32(p) / 2147483648.0;
        }
    }
    if (fmt == SNN_WAV_FLOAT) {
        if (bits == 32) {
            uint32_t u = rd32(p);
            float f;
            memcpy(&f, &u, 4);
            return f;
        }
        uint64_t u = rd32(p) | (uint64_t)rd32(p + 4) << 32;
        double f;
        memcpy(&f, &u, 8);
        return f;
    }
    return (fmt == SNN_WAV_ALAW ? alaw_linear(p[0]) : mulaw_linear(p[0])) / 32768.0;
}

int snn_wav_parse(const uint8_t *buf, size_t len, const char *label,
                  const snn_allocator *a, snn_wav *w, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(w, 0, sizeof *w);
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        return snn_err_set(err, SNN_EFORMAT, "%s: not a RIFF/WAVE file", label);
    uint32_t riff = rd32(buf + 4);
    int streamed = unknown_size(riff) && (size_t)riff + 8 != len;
    if (streamed) /* written to a pipe: up to the end of the file */
        riff = (uint32_t)((len - 8) > UINT32_MAX ? UINT32_MAX : len - 8);
    if ((size_t)riff + 8 > len)
        return snn_err_set(err, SNN_EFORMAT, "%s: RIFF size %u exceeds the file (%zu bytes): truncated",
                           label, riff, len);
    size_t end = (size_t)riff + 8, pos = 12;
    int have_fmt = 0;
    uint16_t fmt = 0, ch = 0, bits = 0, align = 0;
    uint32_t rate = 0;
    while (pos + 8 <= end) {
        const uint8_t *c = buf + pos;
        uint32_t sz = rd32(c + 4);
        if (memcmp(c, "data", 4) == 0 && unknown_size(sz) && (streamed || (size_t)sz > end - pos - 8)) {
            sz = (uint32_t)(end - pos - 8); /* a placeholder: the whole frames present */
            if (align)
                sz -= sz % align;
        }
        if ((size_t)sz > end - pos - 8)
            return snn_err_set(err, SNN_EFORMAT, "%s: chunk '%.4s' at byte %zu: size %u runs past the end",
                               label, (const char *)c, pos, sz);
        const uint8_t *d = c + 8;
        if (memcmp(c, "fmt ", 4) == 0) {
            if (have_fmt)
                return snn_err_set(err, SNN_EFORMAT, "%s: two fmt chunks", label);
            if (sz < 16)
                return snn_err_set(err, SNN_EFORMAT, "%s: fmt: chunk of %u bytes (need 16)", label, sz);
            fmt = rd16(d);
            ch = rd16(d + 2);
            rate = rd32(d + 4);
            uint32_t byte_rate = rd32(d + 8);
            align = rd16(d + 12);
            bits = rd16(d + 14);
            if (fmt == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: sub-format GUID at 24 */
                if (sz < 40)
                    return snn_err_set(err, SNN_EFORMAT, "%s: fmt: extensible chunk of %u bytes", label, sz);
                fmt = rd16(d + 24);
            }
            if (ch == 0 || ch > SNN_WAV_MAX_CHANNELS)
                return snn_err_set(err, SNN_ENOTSUP, "%s: fmt: %u channels (supported: 1 to %d)", label, ch,
                                   SNN_WAV_MAX_CHANNELS);
            if (!sample_kind_ok(fmt, bits))
                return snn_err_set(err, SNN_ENOTSUP,
                                   "%s: fmt: format %u with %u bits (supported: PCM 8/16/24/32-bit, "
                                   "float 32/64-bit, A-law, mu-law)", label, fmt, bits);
            if (rate == 0 || align != ch * (bits / 8) || byte_rate != rate * align)
                return snn_err_set(err, SNN_EFORMAT,
                                   "%s: fmt: inconsistent rate %u / block_align %u / byte_rate %u for %u "
                                   "channels of %u bits", label, rate, align, byte_rate, ch, bits);
            have_fmt = 1;
        } else if (memcmp(c, "data", 4) == 0) {
            if (!have_fmt)
                return snn_err_set(err, SNN_EFORMAT, "%s: data chunk before fmt chunk", label);
            if (sz % align)
                return snn_err_set(err, SNN_EFORMAT, "%s: data: %u bytes is not a whole number of %u-byte samples",
                                   label, sz, align);
            size_t n = sz / align;
            w->x = a->malloc(n ? n * sizeof(float) : 1);
            if (!w->x)
                return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for %zu samples", label, n);
            /* librosa.load's to_mono: the mean of the channels */
            const size_t bps = bits / 8;
            for (size_t i = 0; i < n; i++) {
                double sum = 0;
                for (size_t c = 0; c < ch; c++)
                    sum += sample_at(d + (i * ch + c) * bps, fmt, bits);
                w->x[i] = (float)(sum / ch);
                if (!isfinite(w->x[i])) { /* NaN, infinity, or a double beyond float's range */
                    a->free(w->x);
                    w->x = NULL;
                    return snn_err_set(err, SNN_EFORMAT, "%s: sample %zu (at %.6f s) is not a finite float",
                                       label, i, (double)i / rate);
                }
            }
            w->a = a;
            w->n = n;
            w->sample_rate = rate;
            w->format = fmt;
            w->channels = ch;
            w->bits = bits;
            return 0;
        }
        pos += 8 + (size_t)sz + (sz & 1); /* chunks are padded to even sizes */
    }
    return snn_err_set(err, SNN_EFORMAT, "%s: no %s chunk", label, have_fmt ? "data" : "fmt");
}

int snn_wav_read(const char *path, const snn_allocator *a, snn_wav *w, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(w, 0, sizeof *w);
    FILE *f = fopen(path, "rb");
    if (!f)
        return snn_err_set(err, errno == ENOENT ? SNN_ENOENT : SNN_EIO, "%s: cannot open: %s", path,
                           strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return snn_err_set(err, SNN_EIO, "%s: cannot determine file size", path);
    }
    uint8_t *buf = a->malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    int rc = got == (size_t)n ? snn_wav_parse(buf, got, path, a, w, err)
                              : snn_err_set(err, SNN_EIO, "%s: short read", path);
    a->free(buf);
    return rc;
}

void snn_wav_free(snn_wav *w)
{
    if (w && w->a && w->x)
        w->a->free(w->x);
    if (w)
        w->x = NULL;
}
