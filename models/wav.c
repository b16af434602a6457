/*
 * wav.c -- RIFF/WAVE reader (contract in wav.h).
 */
#include "wav.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* 1 if a RIFF or data size is a placeholder that writers to a pipe leave
 * (they cannot seek back to fill it in): 0, or 0x7FFF0000 and above (sox
 * writes 0x7FFFF024 / 0x7FFFF000, others 0xFFFFFFFF). */
static int unknown_size(uint32_t sz) { return sz == 0 || sz >= 0x7FFF0000u; }

/* 1 if format code fmt with bits per sample is one snn_wav_parse decodes. PCM
 * of any width up to 32 bits is read from its whole-byte container (12-bit in
 * 2 bytes, 20-bit in 3), as libsndfile does; G.711 is one byte a sample. */
static int sample_kind_ok(uint16_t fmt, uint16_t bits)
{
    switch (fmt) {
    case SNN_WAV_PCM: return bits >= 1 && bits <= 32;
    case SNN_WAV_FLOAT: return bits == 32 || bits == 64;
    case SNN_WAV_ALAW:
    case SNN_WAV_MULAW: return 1; /* one byte a sample whatever bits says, as libsndfile reads it */
    default: return 0;
    }
}

/* A name for the WAVE format codes a user may meet and snnd does not decode,
 * as " (name)", or "" for codes it does not know. */
static const char *format_name(uint16_t fmt)
{
    switch (fmt) {
    case SNN_WAV_PCM: return " (PCM)";
    case SNN_WAV_FLOAT: return " (IEEE float)";
    case 2: return " (MS ADPCM)";
    case 17: return " (IMA ADPCM)";
    case 49: return " (GSM 6.10)";
    case 56: return " (NMS ADPCM)";
    case 64: return " (G.721 ADPCM)";
    case 80: return " (MPEG)";
    case 85: return " (MP3)";
    default: return "";
    }
}

/* Bytes one sample of format fmt with bits per sample takes in the file. */
static size_t sample_bytes(uint16_t fmt, uint16_t bits)
{
    return fmt == SNN_WAV_ALAW || fmt == SNN_WAV_MULAW ? 1 : (size_t)(bits + 7) / 8;
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
 * so librosa.load) scales it: integers over 2^(8*bytes-1) of their container
 * (bytes = bits rounded up to whole bytes), 1-byte PCM unsigned with 128 as
 * zero, G.711 through its 16-bit linear value over 32768. */
static double sample_at(const uint8_t *p, uint16_t fmt, uint16_t bits)
{
    if (fmt == SNN_WAV_PCM) {
        switch ((bits + 7) / 8 * 8) {
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

/* Sony Wave64: the "riff" GUID that starts the file, and the tail (after 4
 * ASCII bytes: "wave", "fmt ", "data", ...) of the GUIDs naming the WAVE form
 * and its chunks. */
static const uint8_t w64_riff[16] = {'r', 'i', 'f', 'f', 0x2E, 0x91, 0xCF, 0x11,
                                     0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1, 0x00, 0x00};
static const uint8_t w64_tail[12] = {0xF3, 0xAC, 0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A};

/* 1 if the chunk id at c is id (4 ASCII bytes): the bytes themselves in
 * RIFF, followed by w64_tail in Wave64. */
static int chunk_is(const uint8_t *c, const char *id, int w64)
{
    return memcmp(c, id, 4) == 0 && (!w64 || memcmp(c + 4, w64_tail, 12) == 0);
}

/* Parses a RIFF/WAVE, RF64 or Wave64 file (contract in wav.h). The chunks are walked
 * up to the end of the file whatever the RIFF size says (libsndfile reads a
 * data chunk that runs past a RIFF size too small, and a RIFF size too large
 * is what a recording cut short leaves); the data chunk is cut to the whole
 * frames the file holds. */
int snn_wav_parse(const uint8_t *buf, size_t len, const char *label,
                  const snn_allocator *a, snn_wav *w, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(w, 0, sizeof *w);
    if (len == 0)
        return snn_err_set(err, SNN_EFORMAT, "%s: empty file", label);
    if (len >= 12 && memcmp(buf, "RIFX", 4) == 0 && memcmp(buf + 8, "WAVE", 4) == 0)
        return snn_err_set(err, SNN_ENOTSUP, "%s: big-endian RIFX WAVE file: not supported, convert it "
                           "to WAV (e.g. sox in.wav -L out.wav)", label);
    int w64 = len >= 40 && memcmp(buf, w64_riff, 16) == 0 && chunk_is(buf + 24, "wave", 1);
    int rf64 = len >= 12 && memcmp(buf, "RF64", 4) == 0 && memcmp(buf + 8, "WAVE", 4) == 0;
    if (!w64 && !rf64 && (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0))
        return snn_err_set(err, SNN_EFORMAT, "%s: not a RIFF/WAVE file", label);
    uint32_t riff = rd32(buf + 4);
    /* written to a pipe (RIFF size a placeholder): a placeholder data size is the rest of the file */
    int streamed = rf64 || (!w64 && unknown_size(riff) && (size_t)riff + 8 != len);
    /* a chunk: id and size (RIFF: 4 + 4 bytes, padded to 2; Wave64: 16 + 8, the size counting
     * them, padded to 8) */
    const size_t hdr = w64 ? 24 : 8;
    size_t end = len, pos = w64 ? 40 : 12;
    int have_fmt = 0;
    uint16_t fmt = 0, ch = 0, bits = 0;
    uint32_t rate = 0;
    uint64_t ds64_data = UINT64_MAX; /* RF64: the data size its ds64 chunk states */
    while (pos + hdr <= end) {
        const uint8_t *c = buf + pos;
        size_t left = end - pos - hdr;
        uint64_t sz64 = w64 ? rd32(c + 16) | (uint64_t)rd32(c + 20) << 32 : rd32(c + 4);
        if (w64 && sz64 < hdr)
            return snn_err_set(err, SNN_EFORMAT, "%s: chunk '%.4s' at byte %zu: size %llu is smaller than "
                               "its header", label, (const char *)c, pos, (unsigned long long)sz64);
        if (w64)
            sz64 -= hdr;
        size_t sz = sz64 > left ? left + 1 : (size_t)sz64; /* left + 1: runs past the end */
        if (chunk_is(c, "data", w64)) {
            if (rf64 && sz64 == 0xFFFFFFFFu)
                sz = ds64_data < left ? (size_t)ds64_data : left;
            else if (!w64 && unknown_size((uint32_t)sz64) && (streamed || sz > left))
                sz = left; /* a placeholder: the whole frames present */
            else if (sz > left)
                sz = left; /* a recording cut short: the whole frames present, as libsndfile reads it */
        }
        if (sz > left)
            return snn_err_set(err, SNN_EFORMAT, "%s: chunk '%.4s' at byte %zu: size %llu runs past the end "
                               "of the file (%zu bytes): truncated", label, (const char *)c, pos,
                               (unsigned long long)sz64, len);
        const uint8_t *d = c + hdr;
        if (rf64 && chunk_is(c, "ds64", 0) && sz >= 16)
            ds64_data = rd32(d + 8) | (uint64_t)rd32(d + 12) << 32;
        if (chunk_is(c, "fmt ", w64)) {
            if (have_fmt)
                return snn_err_set(err, SNN_EFORMAT, "%s: two fmt chunks", label);
            if (sz < 16)
                return snn_err_set(err, SNN_EFORMAT, "%s: fmt: chunk of %zu bytes (need 16)", label, sz);
            fmt = rd16(d);
            ch = rd16(d + 2);
            rate = rd32(d + 4);
            bits = rd16(d + 14);
            if (fmt == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: sub-format GUID at 24 */
                if (sz < 40)
                    return snn_err_set(err, SNN_EFORMAT, "%s: fmt: extensible chunk of %zu bytes (need 40)",
                                       label, sz);
                fmt = rd16(d + 24);
            }
            if (ch == 0 || ch > SNN_WAV_MAX_CHANNELS)
                return snn_err_set(err, SNN_ENOTSUP, "%s: fmt: %u channels (supported: 1 to %d)", label, ch,
                                   SNN_WAV_MAX_CHANNELS);
            if (!sample_kind_ok(fmt, bits))
                return snn_err_set(err, SNN_ENOTSUP,
                                   "%s: fmt: format %u%s with %u bits (supported: PCM 1..32-bit, "
                                   "float 32/64-bit, A-law, mu-law; convert it, e.g. sox in.wav -b 16 "
                                   "out.wav)", label, fmt, format_name(fmt), bits);
            /* block_align and byte_rate are not used: libsndfile reads such files by channels and bits */
            if (rate == 0)
                return snn_err_set(err, SNN_EFORMAT, "%s: fmt: sample rate 0", label);
            have_fmt = 1;
        } else if (chunk_is(c, "data", w64)) {
            if (!have_fmt)
                return snn_err_set(err, SNN_EFORMAT, "%s: data chunk before fmt chunk", label);
            const size_t bps = sample_bytes(fmt, bits), frame = ch * bps;
            size_t n = sz / frame; /* a trailing part of a frame is dropped, as libsndfile does */
            w->x = a->malloc(n ? n * sizeof(float) : 1);
            if (!w->x)
                return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for %zu samples", label, n);
            /* librosa.load's to_mono: the mean of the channels */
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
        pos += hdr + sz;
        pos += w64 ? (8 - pos % 8) % 8 : (sz & 1); /* padding */
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
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return snn_err_set(err, SNN_EIO, "%s: %s", path, strerror(EISDIR));
    }
    /* Read to the end, growing the buffer: a regular file's size is a first guess, a pipe or
     * FIFO (no size) is read the same way. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 1 << 16, n = 0;
    uint8_t *buf = a->malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || ferror(f))
            break;
        uint8_t *more = cap <= SIZE_MAX / 2 ? a->realloc(buf, cap * 2) : NULL;
        if (!more) {
            a->free(buf);
            buf = NULL;
            break;
        }
        buf = more;
        cap *= 2;
    }
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    int rc = rerr ? snn_err_set(err, SNN_EIO, "%s: read error: %s", path, strerror(rerr))
                  : snn_wav_parse(buf, n, path, a, w, err);
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
