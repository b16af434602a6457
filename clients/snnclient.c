/*
 * snnclient.c -- blocking snnd client: sockets, framing, request ids.
 *
 * Outgoing: an Envelope is packed behind its varint length into one buffer
 * and written whole (write loops over short writes and EINTR). Incoming:
 * reads go into an snn_framer (proto/framing.h); snnc_recv() unpacks one
 * complete frame at a time, so frames split over reads, or several frames in
 * one read, come out the same.
 */
#include "snnclient.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "framing.h"

struct snnc {
    int fd;
    uint32_t next_id;
    snn_framer in;
    uint8_t *out;        /* packing buffer, grown as needed */
    size_t out_cap;
    Snnd__V1__Envelope *welcome_env; /* kept for snnc_hello's caller */
    char err[384];
};

static int fail(snnc *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets c->err from fmt and returns -code. */
static int fail(snnc *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -code;
}

const char *snnc_strerror(int code)
{
    switch (code < 0 ? -code : code) {
    case SNNC_OK: return "success";
    case SNNC_EINVAL: return "invalid argument";
    case SNNC_ENOMEM: return "out of memory";
    case SNNC_ECONNECT: return "cannot connect";
    case SNNC_EIO: return "socket I/O error";
    case SNNC_ECLOSED: return "connection closed by server";
    case SNNC_ETIMEDOUT: return "timed out";
    case SNNC_EPROTO: return "protocol error";
    case SNNC_ESERVER: return "server error";
    }
    return "unknown error";
}

snnc *snnc_new(uint32_t max_frame)
{
    snnc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = -1;
    c->next_id = 1;
    snn_framer_init(&c->in, max_frame ? max_frame : SNNC_DEFAULT_MAX_FRAME);
    return c;
}

void snnc_free(snnc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    snn_framer_free(&c->in);
    free(c->out);
    snnc_envelope_free(c->welcome_env);
    free(c);
}

const char *snnc_error(const snnc *c) { return c ? c->err : "out of memory"; }

int snnc_fd(const snnc *c) { return c->fd; }

/* Connects a Unix stream socket to path. */
static int connect_unix(snnc *c, const char *addr, const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path)
        return fail(c, SNNC_EINVAL, "address %s: socket path empty or longer than %zu bytes", addr,
                    sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(c, SNNC_ECONNECT, "connect %s: socket: %s", addr, strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return fail(c, SNNC_ECONNECT, "connect %s: %s", addr, strerror(e));
    }
    c->fd = fd;
    return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" and connects to the first address of
 * getaddrinfo's list that accepts. */
static int connect_tcp(snnc *c, const char *addr, const char *hostport)
{
    char host[256];
    const char *port;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end || end[1] != ':' || (size_t)(end - hostport - 1) >= sizeof host)
            return fail(c, SNNC_EINVAL, "address %s: expected tcp:[IPV6]:PORT", addr);
        memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
        host[end - hostport - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(hostport, ':');
        if (!colon || (size_t)(colon - hostport) >= sizeof host)
            return fail(c, SNNC_EINVAL, "address %s: expected tcp:HOST:PORT", addr);
        memcpy(host, hostport, (size_t)(colon - hostport));
        host[colon - hostport] = '\0';
        port = colon + 1;
    }
    if (host[0] == '\0' || port[0] == '\0')
        return fail(c, SNNC_EINVAL, "address %s: empty host or port", addr);

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return fail(c, SNNC_ECONNECT, "connect %s: %s", addr, gai_strerror(rc));
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1; /* small request frames should not wait for Nagle */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(res);
            return 0;
        }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return fail(c, SNNC_ECONNECT, "connect %s: %s", addr, strerror(last ? last : ECONNREFUSED));
}

int snnc_connect(snnc *c, const char *addr)
{
    c->err[0] = '\0';
    if (!addr)
        return fail(c, SNNC_EINVAL, "no address given");
    if (c->fd >= 0)
        return fail(c, SNNC_EINVAL, "connect %s: already connected", addr);
    if (strncmp(addr, "unix:", 5) == 0)
        return connect_unix(c, addr, addr + 5);
    if (strncmp(addr, "tcp:", 4) == 0)
        return connect_tcp(c, addr, addr + 4);
    if (strchr(addr, '/'))
        return connect_unix(c, addr, addr);
    return fail(c, SNNC_EINVAL, "address %s: expected unix:PATH or tcp:HOST:PORT", addr);
}

/* Writes all n bytes of buf. */
static int write_all(snnc *c, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        /* MSG_NOSIGNAL: a peer that went away is EPIPE here, not SIGPIPE. */
        ssize_t k = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return fail(c, SNNC_ECLOSED, "send: connection closed by server");
            return fail(c, SNNC_EIO, "send: %s", strerror(errno));
        }
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

int snnc_send(snnc *c, Snnd__V1__Envelope *env, uint32_t *id)
{
    if (c->fd < 0)
        return fail(c, SNNC_EINVAL, "send: not connected");
    env->id = c->next_id;
    size_t body = snnd__v1__envelope__get_packed_size(env);
    if (body > c->in.max_frame)
        return fail(c, SNNC_EINVAL, "send %s: frame of %zu bytes exceeds the limit of %u bytes",
                    snnc_msg_name(env->msg_case), body, c->in.max_frame);
    if (body + 5 > c->out_cap) {
        size_t cap = body + 5 > 4096 ? body + 5 : 4096;
        uint8_t *b = realloc(c->out, cap);
        if (!b)
            return fail(c, SNNC_ENOMEM, "send: out of memory for %zu bytes", cap);
        c->out = b;
        c->out_cap = cap;
    }
    size_t k = snn_varint_put(c->out, (uint32_t)body);
    snnd__v1__envelope__pack(env, c->out + k);
    int rc = write_all(c, c->out, k + body);
    if (rc < 0)
        return rc;
    if (++c->next_id == 0) /* 0 means "no request": skip it on wrap-around */
        c->next_id = 1;
    if (id)
        *id = env->id;
    return 0;
}

/* Stream ids are checked here so a typo fails before it reaches the wire. */
static int check_stream(snnc *c, const char *what, const char *stream_id)
{
    if (!stream_id || stream_id[0] == '\0')
        return fail(c, SNNC_EINVAL, "%s: empty stream id", what);
    size_t n = strlen(stream_id);
    if (n > 64)
        return fail(c, SNNC_EINVAL, "%s: stream id longer than 64 characters", what);
    for (size_t i = 0; i < n; i++) {
        char ch = stream_id[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return fail(c, SNNC_EINVAL, "%s: stream id '%s': character '%c' not in [A-Za-z0-9._:-]",
                        what, stream_id, ch);
    }
    return 0;
}

int snnc_open_stream(snnc *c, const char *stream_id, const char *model,
                     Snnd__V1__InputKind input_kind, uint32_t bin_width_us, int subscribe,
                     uint32_t *id)
{
    int rc = check_stream(c, "open_stream", stream_id);
    if (rc < 0)
        return rc;
    if (!model || !model[0])
        return fail(c, SNNC_EINVAL, "open_stream: empty model name");
    Snnd__V1__OpenStream m = SNND__V1__OPEN_STREAM__INIT;
    m.stream_id = (char *)stream_id;
    m.model = (char *)model;
    m.input_kind = input_kind;
    m.bin_width_us = bin_width_us;
    m.subscribe = subscribe != 0;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &m;
    return snnc_send(c, &env, id);
}

int snnc_spikes(snnc *c, const char *stream_id, const uint32_t *channel, const uint64_t *t_us,
                size_t n, uint32_t *id)
{
    int rc = check_stream(c, "spike_events", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__SpikeEvents m = SNND__V1__SPIKE_EVENTS__INIT;
    m.stream_id = (char *)stream_id;
    m.n_channel = n;
    m.channel = (uint32_t *)channel;
    m.n_t_us = n;
    m.t_us = (uint64_t *)t_us;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS;
    env.spike_events = &m;
    return snnc_send(c, &env, id);
}

int snnc_binned(snnc *c, const char *stream_id, uint32_t n_channels, const float *counts,
                size_t n_bins, uint64_t t_us, uint32_t *id)
{
    int rc = check_stream(c, "binned_counts", stream_id);
    if (rc < 0)
        return rc;
    if (n_channels == 0)
        return fail(c, SNNC_EINVAL, "binned_counts: n_channels is 0");
    Snnd__V1__BinnedCounts m = SNND__V1__BINNED_COUNTS__INIT;
    m.stream_id = (char *)stream_id;
    m.n_channels = n_channels;
    m.n_counts = n_bins * n_channels;
    m.counts = (float *)counts;
    m.t_us = t_us;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_BINNED_COUNTS;
    env.binned_counts = &m;
    return snnc_send(c, &env, id);
}

int snnc_tactile(snnc *c, const char *stream_id, uint64_t t_us, const float *values, size_t n,
                 uint32_t *id)
{
    int rc = check_stream(c, "tactile_frame", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__TactileFrame m = SNND__V1__TACTILE_FRAME__INIT;
    m.stream_id = (char *)stream_id;
    m.t_us = t_us;
    m.n_values = n;
    m.values = (float *)values;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_TACTILE_FRAME;
    env.tactile_frame = &m;
    return snnc_send(c, &env, id);
}

int snnc_audio(snnc *c, const char *stream_id, uint32_t sample_rate,
               Snnd__V1__SampleFormat format, const void *pcm, size_t n_bytes, uint32_t *id)
{
    int rc = check_stream(c, "audio_chunk", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__AudioChunk m = SNND__V1__AUDIO_CHUNK__INIT;
    m.stream_id = (char *)stream_id;
    m.sample_rate = sample_rate;
    m.format = format;
    m.pcm.len = n_bytes;
    m.pcm.data = (uint8_t *)pcm;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_AUDIO_CHUNK;
    env.audio_chunk = &m;
    return snnc_send(c, &env, id);
}

int snnc_flush(snnc *c, const char *stream_id, uint64_t t_us, uint32_t *id)
{
    int rc = check_stream(c, "flush", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__Flush m = SNND__V1__FLUSH__INIT;
    m.stream_id = (char *)stream_id;
    m.t_us = t_us;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_FLUSH;
    env.flush = &m;
    return snnc_send(c, &env, id);
}

int snnc_close_stream(snnc *c, const char *stream_id, uint32_t *id)
{
    int rc = check_stream(c, "close_stream", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__CloseStream m = SNND__V1__CLOSE_STREAM__INIT;
    m.stream_id = (char *)stream_id;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_CLOSE_STREAM;
    env.close_stream = &m;
    return snnc_send(c, &env, id);
}

int snnc_subscribe(snnc *c, const char *stream_id, uint32_t *id)
{
    int rc = check_stream(c, "subscribe", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__Subscribe m = SNND__V1__SUBSCRIBE__INIT;
    m.stream_id = (char *)stream_id;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SUBSCRIBE;
    env.subscribe = &m;
    return snnc_send(c, &env, id);
}

int snnc_unsubscribe(snnc *c, const char *stream_id, uint32_t *id)
{
    int rc = check_stream(c, "unsubscribe", stream_id);
    if (rc < 0)
        return rc;
    Snnd__V1__Unsubscribe m = SNND__V1__UNSUBSCRIBE__INIT;
    m.stream_id = (char *)stream_id;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_UNSUBSCRIBE;
    env.unsubscribe = &m;
    return snnc_send(c, &env, id);
}

int snnc_stats(snnc *c, const char *stream_id, uint32_t *id)
{
    if (stream_id && stream_id[0]) {
        int rc = check_stream(c, "stats_request", stream_id);
        if (rc < 0)
            return rc;
    }
    Snnd__V1__StatsRequest m = SNND__V1__STATS_REQUEST__INIT;
    m.stream_id = (char *)(stream_id ? stream_id : "");
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STATS_REQUEST;
    env.stats_request = &m;
    return snnc_send(c, &env, id);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes one complete frame out of the framer, if there is one: returns 1 with
 * *out, 0 if more bytes are needed, or a negative code. */
static int take_frame(snnc *c, Snnd__V1__Envelope **out)
{
    const uint8_t *frame;
    size_t len;
    snn_frame_status st = snn_framer_next(&c->in, &frame, &len);
    if (st == SNN_FRAME_NEED_MORE)
        return 0;
    if (st == SNN_FRAME_TOO_BIG)
        return fail(c, SNNC_EPROTO, "receive: frame of %u bytes exceeds the limit of %u bytes",
                    c->in.last_len, c->in.max_frame);
    if (st != SNN_FRAME_OK)
        return fail(c, SNNC_EPROTO, "receive: malformed frame length prefix");
    Snnd__V1__Envelope *env = snnd__v1__envelope__unpack(NULL, len, frame);
    if (!env)
        return fail(c, SNNC_EPROTO, "receive: undecodable Envelope of %zu bytes", len);
    *out = env;
    return 1;
}

int snnc_recv(snnc *c, int timeout_ms, Snnd__V1__Envelope **out)
{
    *out = NULL;
    int rc = take_frame(c, out);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (c->fd < 0)
        return fail(c, SNNC_EINVAL, "receive: not connected");
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
    uint8_t buf[65536];
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, wait);
        if (n < 0) {
            if (errno == EINTR)
                return fail(c, SNNC_ETIMEDOUT, "receive: interrupted");
            return fail(c, SNNC_EIO, "receive: poll: %s", strerror(errno));
        }
        if (n == 0)
            return fail(c, SNNC_ETIMEDOUT, "receive: nothing arrived within %d ms", timeout_ms);
        ssize_t k = read(c->fd, buf, sizeof buf);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET)
                return fail(c, SNNC_ECLOSED, "receive: connection reset by server");
            return fail(c, SNNC_EIO, "receive: %s", strerror(errno));
        }
        if (k == 0)
            return fail(c, SNNC_ECLOSED, "receive: connection closed by server%s",
                        snn_framer_pending(&c->in) ? " in the middle of a frame" : "");
        if (snn_framer_feed(&c->in, buf, (size_t)k) < 0)
            return fail(c, SNNC_ENOMEM, "receive: out of memory");
        rc = take_frame(c, out);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

void snnc_envelope_free(Snnd__V1__Envelope *env)
{
    if (env)
        snnd__v1__envelope__free_unpacked(env, NULL);
}

const char *snnc_error_code_name(Snnd__V1__ErrorCode code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&snnd__v1__error_code__descriptor, (int)code);
    return v ? v->name : "?";
}

const char *snnc_msg_name(Snnd__V1__Envelope__MsgCase mc)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&snnd__v1__envelope__descriptor, (unsigned)mc);
    return f && mc != SNND__V1__ENVELOPE__MSG__NOT_SET ? f->name : "?";
}

/* Sets c->err from an Error message. */
static int server_error(snnc *c, const Snnd__V1__Error *e)
{
    int has_stream = e->stream_id && e->stream_id[0];
    return fail(c, SNNC_ESERVER, "server: %s: %s%s%s%s", snnc_error_code_name(e->code),
                e->message && e->message[0] ? e->message : "(no message)",
                has_stream ? " (stream " : "", has_stream ? e->stream_id : "", has_stream ? ")" : "");
}

int snnc_wait_reply(snnc *c, uint32_t id, int timeout_ms, Snnd__V1__Envelope **out,
                    snnc_push_fn push, void *ctx)
{
    if (out)
        *out = NULL;
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        Snnd__V1__Envelope *env;
        int rc = snnc_recv(c, wait, &env);
        if (rc == -SNNC_ETIMEDOUT)
            return fail(c, SNNC_ETIMEDOUT, "no reply to request %u within %d ms", id, timeout_ms);
        if (rc < 0)
            return rc;
        int is_error = env->msg_case == SNND__V1__ENVELOPE__MSG_ERROR;
        if (env->id == id || (is_error && env->error->request_id == id && id != 0)) {
            rc = is_error ? server_error(c, env->error) : 0;
            if (rc == 0 && c->err[0] != '\0')
                c->err[0] = '\0';
            if (out)
                *out = env;
            else
                snnc_envelope_free(env);
            return rc;
        }
        if (push)
            push(ctx, env);
        snnc_envelope_free(env);
    }
}

int snnc_hello(snnc *c, const char *client_name, const char *token,
               const Snnd__V1__Welcome **welcome)
{
    Snnd__V1__Hello m = SNND__V1__HELLO__INIT;
    m.protocol_version = 1;
    m.client_name = (char *)(client_name ? client_name : "");
    m.token = (char *)(token ? token : "");
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_HELLO;
    env.hello = &m;
    uint32_t id;
    int rc = snnc_send(c, &env, &id);
    if (rc < 0)
        return rc;
    /* The Welcome may or may not carry the Hello's id: accept either. */
    int64_t deadline = now_ms() + 5000;
    for (;;) {
        int64_t left = deadline - now_ms();
        Snnd__V1__Envelope *r;
        rc = snnc_recv(c, left > 0 ? (int)left : 0, &r);
        if (rc == -SNNC_ETIMEDOUT)
            return fail(c, SNNC_ETIMEDOUT, "hello: no Welcome within 5 s");
        if (rc < 0)
            return rc;
        if (r->msg_case == SNND__V1__ENVELOPE__MSG_WELCOME) {
            snnc_envelope_free(c->welcome_env);
            c->welcome_env = r;
            if (welcome)
                *welcome = r->welcome;
            return 0;
        }
        if (r->msg_case == SNND__V1__ENVELOPE__MSG_ERROR &&
            (r->id == id || r->error->request_id == id || r->error->request_id == 0)) {
            rc = server_error(c, r->error);
            snnc_envelope_free(r);
            return rc;
        }
        snnc_envelope_free(r);
    }
}
