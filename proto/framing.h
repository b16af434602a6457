/*
 * framing.h -- length-delimited frames: varint32 length, then the message.
 *
 * The same framing as Java's writeDelimitedTo / parseDelimitedFrom and Go's
 * pbutil. The decoder is incremental: feed it whatever bytes a read returned
 * and take out complete frames; partial frames wait for more bytes. It never
 * allocates more than max_frame bytes of buffer beyond what was fed.
 */
#ifndef SNN_FRAMING_H
#define SNN_FRAMING_H

#include <stddef.h>
#include <stdint.h>

/* Writes the varint of n into out (at least 5 bytes); returns its length. */
size_t snn_varint_put(uint8_t *out, uint32_t n);

/* Decodes a varint32 from buf[0..len). Returns its byte length (1..5), 0 if
 * more bytes are needed, or -1 if it is malformed (longer than 5 bytes or
 * larger than 2^32-1). */
int snn_varint_get(const uint8_t *buf, size_t len, uint32_t *n);

typedef enum snn_frame_status {
    SNN_FRAME_NEED_MORE = 0, /* no complete frame yet */
    SNN_FRAME_OK = 1,        /* *frame, *len hold one frame */
    SNN_FRAME_TOO_BIG = -1,  /* the declared length exceeds max_frame */
    SNN_FRAME_BAD = -2,      /* malformed length prefix */
} snn_frame_status;

typedef struct snn_framer {
    uint8_t *buf;       /* bytes received and not yet consumed */
    size_t len, cap;
    size_t pos;         /* start of unconsumed data */
    uint32_t max_frame; /* largest accepted frame body */
    uint32_t last_len;  /* declared length when TOO_BIG */
} snn_framer;

/* Initialises an empty framer accepting frames up to max_frame bytes. */
void snn_framer_init(snn_framer *f, uint32_t max_frame);
void snn_framer_free(snn_framer *f);

/* Appends n received bytes. Returns 0, or -1 if memory ran out. */
int snn_framer_feed(snn_framer *f, const uint8_t *data, size_t n);

/* Takes the next complete frame: on SNN_FRAME_OK, *frame points into the
 * framer's buffer and stays valid until the next feed(). */
snn_frame_status snn_framer_next(snn_framer *f, const uint8_t **frame, size_t *len);

/* Bytes buffered that are not yet part of a returned frame. */
size_t snn_framer_pending(const snn_framer *f);

#endif
