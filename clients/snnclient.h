/*
 * snnclient.h -- libsnnclient: talk to snnd over a Unix or TCP socket.
 *
 * A connection is blocking and single-threaded: every send writes one whole
 * frame before returning, and snnc_recv() waits (with an optional timeout)
 * for the next whole frame. The wire protocol is proto/snnd.proto (package
 * snnd.v1); messages are the protoc-c structs Snnd__V1__*.
 *
 * A short tour:
 *
 *   snnc *c = snnc_new(0);
 *   if (snnc_connect(c, "unix:/run/user/1000/snnd.sock") < 0 ||
 *       snnc_hello(c, "my-tool", NULL, NULL) < 0)
 *       fprintf(stderr, "%s\n", snnc_error(c));
 *   snnc_open_stream(c, "arm1", "tinyrsnn-indy01-seed1", SNND__V1__INPUT_KIND__INPUT_DEFAULT,
 *                    0, 1, &id);                     // subscribe = 1
 *   snnc_wait_reply(c, id, 5000, &reply, NULL, NULL); // StreamOpened or Error
 *   snnc_envelope_free(reply);
 *   snnc_binned(c, "arm1", 96, counts, 64, 0, NULL);  // 64 bins of 96 counts
 *   while (snnc_recv(c, 100, &env) == 0) { ...env->prediction...; snnc_envelope_free(env); }
 *   snnc_free(c);
 *
 * Request ids: every send stamps the next Envelope.id (1, 2, ...; never 0)
 * and returns it through *id when id is not NULL. The server copies it into
 * its reply (StreamOpened, StreamClosed, Ack, Stats, Error.request_id), so
 * callers match answers to questions; pushed messages carry id 0.
 *
 * Errors: functions return 0 (or a count) on success and a negative SNNC_E*
 * code on failure; snnc_error() is then one line saying what went wrong
 * ("connect unix:/tmp/snnd.sock: No such file or directory",
 * "server: UNKNOWN_MODEL: no model 'foo'"). After SNNC_EIO, SNNC_ECLOSED or
 * SNNC_EPROTO the connection is unusable; close it with snnc_free().
 */
#ifndef SNN_CLIENT_H
#define SNN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "snnd.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (returned negated). */
enum {
    SNNC_OK = 0,
    SNNC_EINVAL = 1,    /* bad argument (address, stream id, sizes) */
    SNNC_ENOMEM = 2,    /* allocation failed */
    SNNC_ECONNECT = 3,  /* could not resolve or connect */
    SNNC_EIO = 4,       /* read or write on the socket failed */
    SNNC_ECLOSED = 5,   /* the server closed the connection */
    SNNC_ETIMEDOUT = 6, /* nothing arrived within the timeout */
    SNNC_EPROTO = 7,    /* undecodable or oversized frame, unexpected reply */
    SNNC_ESERVER = 8,   /* the server answered with an Error message */
};

/* Frames larger than this are refused unless snnc_new() says otherwise. */
#define SNNC_DEFAULT_MAX_FRAME (16u << 20)

typedef struct snnc snnc;

/* Returns a static English name for an SNNC_E* code (positive or negative). */
const char *snnc_strerror(int code);

/* Allocates an unconnected client that accepts frames up to max_frame bytes
 * (0: SNNC_DEFAULT_MAX_FRAME). Returns NULL only when memory ran out. */
snnc *snnc_new(uint32_t max_frame);

/* Closes the connection (if any) and frees everything the client owns,
 * including the Welcome returned by snnc_hello(). NULL is fine. */
void snnc_free(snnc *c);

/* The last error message of c: one line, "" if there was none. */
const char *snnc_error(const snnc *c);

/* Connects to addr: "unix:PATH", "tcp:HOST:PORT" (HOST a name, an IPv4
 * address or a bracketed IPv6 address such as [::1]; every address
 * getaddrinfo returns is tried in order), or a bare PATH containing '/'.
 * Returns 0, -SNNC_EINVAL for a malformed address, -SNNC_ECONNECT if no
 * address accepted the connection, or -SNNC_ENOMEM. */
int snnc_connect(snnc *c, const char *addr);

/* The socket's descriptor (-1 when unconnected), for the caller's own poll().
 * Frames already buffered by the client are not visible on it: call
 * snnc_recv(c, 0, ...) until it times out before polling. */
int snnc_fd(const snnc *c);

/* Sends Hello (protocol_version 1, client_name, token; NULL for "") and
 * waits up to 5 s for Welcome. Pushed messages that arrive first are
 * dropped. On success, *welcome (if not NULL) points to the Welcome, owned by
 * c and valid until snnc_free(). An Error reply gives -SNNC_ESERVER. */
int snnc_hello(snnc *c, const char *client_name, const char *token,
               const Snnd__V1__Welcome **welcome);

/* Stamps env->id with the next request id, packs env and writes it as one
 * frame. *id (if not NULL) gets the id. Returns 0 or a negative code. The
 * helpers below build the message and call this. */
int snnc_send(snnc *c, Snnd__V1__Envelope *env, uint32_t *id);

/* OpenStream: stream_id on the server, model name, input kind (0: the
 * model's), bin width (0: the model's dt), subscribe = 1 to also receive its
 * Predictions and Decisions on this connection. Replies StreamOpened. */
int snnc_open_stream(snnc *c, const char *stream_id, const char *model,
                     Snnd__V1__InputKind input_kind, uint32_t bin_width_us, int subscribe,
                     uint32_t *id);

/* SpikeEvents: n events, channel[i] fired at t_us[i] (non-decreasing). */
int snnc_spikes(snnc *c, const char *stream_id, const uint32_t *channel, const uint64_t *t_us,
                size_t n, uint32_t *id);

/* BinnedCounts: n_bins consecutive vectors of n_channels counts, row-major;
 * t_us is the start of the first bin, 0 for right after the previous one. */
int snnc_binned(snnc *c, const char *stream_id, uint32_t n_channels, const float *counts,
                size_t n_bins, uint64_t t_us, uint32_t *id);

/* TactileFrame: one frame of n values (taxels, or analog inputs) at t_us. */
int snnc_tactile(snnc *c, const char *stream_id, uint64_t t_us, const float *values, size_t n,
                 uint32_t *id);

/* AudioChunk: n_bytes of mono PCM in format at sample_rate Hz. */
int snnc_audio(snnc *c, const char *stream_id, uint32_t sample_rate,
               Snnd__V1__SampleFormat format, const void *pcm, size_t n_bytes, uint32_t *id);

/* Flush: closes the open bin and every bin ending at or before t_us. */
int snnc_flush(snnc *c, const char *stream_id, uint64_t t_us, uint32_t *id);

/* CloseStream: the server finishes the stream (final Decision) and replies
 * StreamClosed. */
int snnc_close_stream(snnc *c, const char *stream_id, uint32_t *id);

/* Subscribe / Unsubscribe this connection to a stream's outputs (Ack). */
int snnc_subscribe(snnc *c, const char *stream_id, uint32_t *id);
int snnc_unsubscribe(snnc *c, const char *stream_id, uint32_t *id);

/* StatsRequest for one stream, or the server and all streams when
 * stream_id is NULL or "". Replies Stats. */
int snnc_stats(snnc *c, const char *stream_id, uint32_t *id);

/* Receives the next Envelope. timeout_ms < 0 waits forever, 0 only takes
 * what has already arrived. On success *out is a message the caller frees
 * with snnc_envelope_free(). Returns 0, -SNNC_ETIMEDOUT, -SNNC_ECLOSED (EOF),
 * -SNNC_EIO, -SNNC_EPROTO (undecodable frame, or one longer than max_frame:
 * it is refused before its body is read) or -SNNC_ENOMEM. A signal that
 * interrupts the wait (Ctrl-C) also gives -SNNC_ETIMEDOUT. An Error message
 * is returned as an Envelope like any other. */
int snnc_recv(snnc *c, int timeout_ms, Snnd__V1__Envelope **out);

/* Called by snnc_wait_reply() for every envelope that is not the reply; the
 * callback does not own env (it is freed after the call). */
typedef void (*snnc_push_fn)(void *ctx, const Snnd__V1__Envelope *env);

/* Receives until the reply to request id arrives (an Envelope with that id,
 * or an Error whose request_id is id), passing every other envelope to push
 * (or dropping it when push is NULL). The timeout applies to the whole wait.
 * On a non-Error reply returns 0 and *out (if not NULL; else it is freed).
 * An Error reply returns -SNNC_ESERVER with snnc_error() set to
 * "server: CODE: message" and the envelope in *out (if not NULL). */
int snnc_wait_reply(snnc *c, uint32_t id, int timeout_ms, Snnd__V1__Envelope **out,
                    snnc_push_fn push, void *ctx);

/* Frees an envelope returned by snnc_recv() / snnc_wait_reply(). */
void snnc_envelope_free(Snnd__V1__Envelope *env);

/* Static name of an error code ("UNKNOWN_MODEL") and of a message case
 * ("prediction"); "?" if unknown. */
const char *snnc_error_code_name(Snnd__V1__ErrorCode code);
const char *snnc_msg_name(Snnd__V1__Envelope__MsgCase c);

#ifdef __cplusplus
}
#endif

#endif
