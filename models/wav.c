/*
 * wav.c -- strict RIFF/WAVE reader (contract in wav.h).
 */
#include "wav.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int snn_wav_parse(const uint8_t *buf, size_t len, const char *label,
                  const snn_allocator *a, snn_wav *w, snn_err *err)
{
    a = snn_alloc_or_default(a);
    memset(w, 0, sizeof *w);
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        return snn_err_set(err, SNN_EFORMAT, "%s: not a RIFF/WAVE file", label);
    uint32_t riff = rd32(buf + 4);
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
            if (ch != 1)
                return snn_err_set(err, SNN_ENOTSUP, "%s: fmt: %u channels (only mono is supported)", label,
                                   ch);
            if (!((fmt == 1 && bits == 16) || (fmt == 3 && bits == 32)))
                return snn_err_set(err, SNN_ENOTSUP,
                                   "%s: fmt: format %u with %u bits (supported: PCM s16, float32)", label,
                                   fmt, bits);
            if (rate == 0 || align != bits / 8 || byte_rate != rate * align)
                return snn_err_set(err, SNN_EFORMAT,
                                   "%s: fmt: inconsistent rate %u / block_align %u / byte_rate %u", label,
                                   rate, align, byte_rate);
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
            for (size_t i = 0; i < n; i++) {
                if (fmt == 1) {
                    w->x[i] = (float)(int16_t)rd16(d + 2 * i) / 32768.0f;
                } else {
                    uint32_t u = rd32(d + 4 * i);
                    memcpy(&w->x[i], &u, 4);
                }
            }
            w->a = a;
            w->n = n;
            w->sample_rate = rate;
            w->format = fmt;
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
