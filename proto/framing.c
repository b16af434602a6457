#include "framing.h"

#include <stdlib.h>
#include <string.h>

size_t snn_varint_put(uint8_t *out, uint32_t n)
{
    size_t k = 0;
    while (n >= 0x80) {
        out[k++] = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    out[k++] = (uint8_t)n;
    return k;
}

int snn_varint_get(const uint8_t *buf, size_t len, uint32_t *n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 5; i++) {
        if (i >= len)
            return 0;
        v |= (uint64_t)(buf[i] & 0x7f) << (7 * i);
        if (!(buf[i] & 0x80)) {
            if (v > 0xffffffffu)
                return -1;
            *n = (uint32_t)v;
            return (int)i + 1;
        }
    }
    return -1;
}

void snn_framer_init(snn_framer *f, uint32_t max_frame)
{
    memset(f, 0, sizeof *f);
    f->max_frame = max_frame;
}

void snn_framer_free(snn_framer *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

int snn_framer_feed(snn_framer *f, const uint8_t *data, size_t n)
{
    if (f->pos > 0) { /* compact: drop consumed bytes */
        memmove(f->buf, f->buf + f->pos, f->len - f->pos);
        f->len -= f->pos;
        f->pos = 0;
    }
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap *= 2;
        uint8_t *b = realloc(f->buf, cap);
        if (!b)
            return -1;
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return 0;
}

snn_frame_status snn_framer_next(snn_framer *f, const uint8_t **frame, size_t *len)
{
    const uint8_t *p = f->buf + f->pos;
    size_t avail = f->len - f->pos;
    uint32_t n;
    int k = snn_varint_get(p, avail, &n);
    if (k < 0)
        return SNN_FRAME_BAD;
    if (k == 0)
        return SNN_FRAME_NEED_MORE;
    if (n > f->max_frame) {
        f->last_len = n;
        return SNN_FRAME_TOO_BIG;
    }
    if (avail - (size_t)k < n)
        return SNN_FRAME_NEED_MORE;
    *frame = p + k;
    *len = n;
    f->pos += (size_t)k + n;
    return SNN_FRAME_OK;
}

size_t snn_framer_pending(const snn_framer *f) { return f->len - f->pos; }
