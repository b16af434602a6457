/*
 * loadgen.c -- load generator for snnd: many streams at a fixed bin rate,
 * end-to-end latency from a bin's send to its Prediction's arrival.
 *
 * Usage:
 *   loadgen [--addr A] [--model M] [--streams S] [--conns N] [--sub-conns K]
 *           [--rate R] [--duration T] [--density P | --input CSV]
 *           [--pid PID] [--report-every SEC] [--drain SEC] [--tick-us US]
 *   loadgen --hold C [--addr A] [--duration T] [--pid PID]
 *
 *   --addr        unix:PATH or tcp:HOST:PORT (default unix:/tmp/snnd.sock)
 *   --model       model name on the server (default tinyrsnn-indy01-seed1)
 *   --streams     S streams (default 1); --conns N feeder connections (default S: one device,
 *                 one connection); stream i is fed by connection i % N
 *   --sub-conns   0 (default): each stream is subscribed by its feeder (OpenStream.subscribe);
 *                 K > 0: K separate connections subscribe, stream i on connection i % K
 *   --rate        bins per second per stream (default 250: the 4 ms bins of tinyRSNN)
 *   --duration    seconds of sending (default 20); then it waits for the last predictions while
 *                 they still arrive (until --drain s, default 3, pass without one; 60 s at most),
 *                 closes every stream and stops by itself
 *   --density     fraction of input channels active per bin (default 0.05), values 0/1
 *   --input       a CSV "t,ch0,..." (tests/fixtures/tinyrsnn/input_indy.csv): real bins, cycled,
 *                 each stream starting at a different row
 *   --pid         snnd's pid: its VmRSS is read from /proc at start, every --report-every s
 *                 (default 10) and at the end
 *   --tick-us     the sender wakes at most once per tick (default 200 us): bins due within
 *                 a tick are written together (each stamped when written); 0 = one wake-up per bin
 *   --hold C      only open C connections (Hello/Welcome each), hold them --duration s and count
 *                 how many are still open; RLIMIT_NOFILE is raised to its hard limit
 *
 * Each bin is one BinnedCounts message (one bin, t_us 0: right after the previous bin), so
 * stream k's j-th bin is step j; the tool keeps the send time of every outstanding (stream,
 * step) in a ring and matches Prediction.step against it. Latency = time the Prediction's
 * bytes were read - time the bin was put in the connection's buffer, right before the
 * write() of that wake-up ("late": a prediction more than the ring behind, no latency).
 * BinnedCounts frames are hand-assembled and Predictions read in place, so the tool
 * costs ~2 us of CPU per bin when connections carry many streams (one stream per
 * connection: ~20 us, the socket wake-ups; measured on a 2-vCPU VM). Sends follow a fixed schedule
 * (stream i at phase i/(S R)); "send lag" is how late the tool was against it, and the
 * tool's own CPU use is printed, so an overloaded tool shows in its own figures.
 *
 * Output: progress lines "t=..." and a final "RESULT key=value ..." line for scripts.
 * Single-threaded, epoll.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "framing.h"
#include "snnd.pb-c.h"

#define RING 4096         /* outstanding steps remembered per stream (16 s at 250 Hz) */
/* Latency histogram: 1 us buckets below 10 ms, 100 us buckets up to 10 s, then overflow. */
#define HIST_FINE 10000
#define HIST_N (HIST_FINE + 99900)
#define MAX_FRAME (16u << 20)

typedef struct lconn {
    int fd;
    int welcomed, dead, out_armed;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    snn_framer fr;
    uint32_t next_id;
    int dirty; /* has frames appended since the last flush pass */
} lconn;

typedef struct lstream {
    char id[48];
    int feed, sub;        /* connection indices */
    int opened, subscribed, closed;
    uint64_t sent, received, reordered, dup, late;
    int64_t last_step;
    int64_t *sent_ns;     /* [RING] */
    uint8_t *got;         /* [RING] */
    int64_t next_due;
    long row;             /* next input row */
} lstream;

typedef struct hist {
    uint64_t b[HIST_N + 1];
    uint64_t n;
    double sum;
    int64_t max;
} hist;

static struct {
    const char *addr, *model, *input;
    int streams, conns, sub_conns, hold;
    double rate, duration, density, report_every, drain;
    int pid;
    double tick_us;
} opt = {"unix:/tmp/snnd.sock", "tinyrsnn-indy01-seed1", NULL, 1, 0, 0, 0, 250, 20, 0.05, 10, 3, 0, 200};

static lconn *conns;
static int n_conns;
static lstream *streams;
static int epfd;
static hist h_all, h_win, h_lag;
static uint64_t n_errors, n_pred, n_closed_streams, n_eof, n_acks;
static uint64_t err_by_code[16];
static Snnd__V1__Stats *last_stats;
static float *in_x;
static long in_rows;
static uint32_t n_in;
static char run_tag[16];
static volatile sig_atomic_t stop_flag;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void hist_add(hist *h, int64_t ns)
{
    int64_t us = ns / 1000;
    if (us < 0)
        us = 0;
    int64_t i = us < HIST_FINE ? us : HIST_FINE + (us - HIST_FINE) / 100;
    h->b[i > HIST_N ? HIST_N : i]++;
    h->n++;
    h->sum += (double)ns / 1e3;
    if (us > h->max)
        h->max = us;
}

/* Smallest bucket value (us) with at least q of the samples at or below it. */
static double hist_q(const hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n + 0.5), acc = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i <= HIST_N; i++) {
        acc += h->b[i];
        if (acc >= want)
            return i == HIST_N ? (double)h->max : i < HIST_FINE ? i : HIST_FINE + (double)(i - HIST_FINE) * 100;
    }
    return (double)h->max;
}

static double load1(void)
{
    double l[1] = {0};
    getloadavg(l, 1);
    return l[0];
}

static long rss_kb(void)
{
    if (!opt.pid)
        return -1;
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", opt.pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* utime + stime of the daemon in seconds (-1 without --pid). */
static double snnd_cpu_s(void)
{
    if (!opt.pid)
        return -1;
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", opt.pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds the threads of process pid (0: this one) spent runnable but waiting
 * for a CPU (/proc/PID/task/TID/schedstat, second field): a shared machine
 * shows up here, not in the CPU times. -1 when unavailable. */
static double wait_s(int pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", pid ? pid : (int)getpid());
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    double sum = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[384];
        snprintf(p, sizeof p, "%s/%.256s/schedstat", dir, de->d_name);
        FILE *f = fopen(p, "r");
        unsigned long long run, wait;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2)
            sum += (double)wait / 1e9;
        if (f)
            fclose(f);
    }
    closedir(d);
    return sum;
}

static double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + (double)r.ru_stime.tv_sec +
           r.ru_stime.tv_usec / 1e6;
}

/* ---- connections ---------------------------------------------------------- */

static int dial(void)
{
    int fd;
    if (!strncmp(opt.addr, "unix:", 5)) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", opt.addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            close(fd);
            return -1;
        }
    } else if (!strncmp(opt.addr, "tcp:", 4)) {
        char host[256];
        snprintf(host, sizeof host, "%s", opt.addr + 4);
        char *port = strrchr(host, ':');
        if (!port)
            die("--addr %s: expected tcp:HOST:PORT", opt.addr);
        *port++ = 0;
        char *h = host;
        if (h[0] == '[') {
            h++;
            h[strlen(h) - 1] = 0;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(h, port, &hints, &res))
            return -1;
        fd = socket(res->ai_family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
            if (fd >= 0)
                close(fd);
            freeaddrinfo(res);
            return -1;
        }
        freeaddrinfo(res);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    } else {
        die("--addr %s: expected unix:PATH or tcp:HOST:PORT", opt.addr);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void conn_arm(lconn *c, int want_out)
{
    if (c->out_armed == want_out || c->dead)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->out_armed = want_out;
}

static void conn_kill(lconn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    n_eof++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void conn_flush(lconn *c)
{
    while (c->woff < c->wlen) {
        ssize_t k = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            conn_kill(c);
            return;
        }
        c->woff += (size_t)k;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    conn_arm(c, c->wlen > 0);
}

static int *dirty_list, n_dirty;

/* Appends env as one frame; writes it now unless defer is set (then the
 * connection goes on the dirty list, written by flush_dirty()). */
static uint32_t conn_append(lconn *c, Snnd__V1__Envelope *env, int defer)
{
    if (c->dead)
        return 0;
    env->id = ++c->next_id;
    size_t n = snnd__v1__envelope__get_packed_size(env);
    if (c->wlen + n + 5 > c->wcap) {
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n + 5 > c->wcap) {
            c->wcap = (c->wlen + n + 5) * 2;
            c->wbuf = realloc(c->wbuf, c->wcap);
            if (!c->wbuf)
                die("out of memory");
        }
    }
    size_t k = snn_varint_put(c->wbuf + c->wlen, (uint32_t)n);
    snnd__v1__envelope__pack(env, c->wbuf + c->wlen + k);
    c->wlen += k + n;
    if (!defer)
        conn_flush(c);
    else if (!c->dirty) {
        c->dirty = 1;
        dirty_list[n_dirty++] = (int)(c - conns);
    }
    return env->id;
}

static uint32_t conn_send(lconn *c, Snnd__V1__Envelope *env) { return conn_append(c, env, 0); }

/* Room for n more bytes at the end of c's output buffer. */
static uint8_t *conn_reserve(lconn *c, size_t n)
{
    if (c->wlen + n > c->wcap) {
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            c->wcap = (c->wlen + n) * 2;
            c->wbuf = realloc(c->wbuf, c->wcap);
            if (!c->wbuf)
                die("out of memory");
        }
    }
    return c->wbuf + c->wlen;
}

/* Marks n reserved bytes as written; the connection is flushed by flush_dirty(). */
static void conn_commit(lconn *c, size_t n)
{
    c->wlen += n;
    if (!c->dirty) {
        c->dirty = 1;
        dirty_list[n_dirty++] = (int)(c - conns);
    }
}

static void flush_dirty(void)
{
    for (int i = 0; i < n_dirty; i++) {
        lconn *c = &conns[dirty_list[i]];
        c->dirty = 0;
        if (!c->dead && !c->out_armed)
            conn_flush(c);
    }
    n_dirty = 0;
}

static int conn_open(lconn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = dial();
    if (c->fd < 0) {
        c->dead = 1;
        return -1;
    }
    snn_framer_init(&c->fr, MAX_FRAME);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    Snnd__V1__Hello h = SNND__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.client_name = "loadgen";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    conn_send(c, &env);
    return 0;
}

/* ---- hand-coded wire format for the two hot messages ------------------------
 * The tool must not be the bottleneck: BinnedCounts frames are assembled from
 * pre-encoded rows (no protobuf-c pack) and Predictions are read in place (no
 * unpack, no malloc). Field numbers are proto/snnd.proto's. */

static size_t put_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 64 && *p < end; sh += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static uint8_t *row_bytes; /* per input row: BinnedCounts.counts (field 3, packed floats) */
static size_t row_len;

static void encode_rows(void)
{
    uint8_t hdr[16];
    size_t h = 0;
    hdr[h++] = 0x1a; /* field 3, length-delimited */
    h += put_varint(hdr + h, (uint64_t)n_in * 4);
    row_len = h + (size_t)n_in * 4;
    row_bytes = malloc(row_len * (size_t)in_rows);
    for (long r = 0; r < in_rows; r++) {
        uint8_t *o = row_bytes + (size_t)r * row_len;
        memcpy(o, hdr, h);
        memcpy(o + h, in_x + r * n_in, (size_t)n_in * 4); /* little-endian IEEE floats, as the wire */
    }
}

/* Reads a Prediction frame in place: 0 and its stream id/step, or -1 if the
 * frame is something else (then the caller unpacks it). */
static int peek_prediction(const uint8_t *f, size_t len, const char **id, size_t *idlen, uint64_t *step)
{
    const uint8_t *p = f, *end = f + len;
    uint64_t tag, v;
    while (p < end) {
        if (get_varint(&p, end, &tag) < 0)
            return -1;
        if (tag == 0x08) { /* Envelope.id */
            if (get_varint(&p, end, &v) < 0)
                return -1;
            continue;
        }
        if (tag != ((23u << 3) | 2)) /* not Envelope.prediction */
            return -1;
        if (get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
            return -1;
        const uint8_t *q = p, *qe = p + v;
        *id = NULL;
        *step = 0;
        while (q < qe) {
            if (get_varint(&q, qe, &tag) < 0)
                return -1;
            switch (tag & 7) {
            case 0:
                if (get_varint(&q, qe, &v) < 0)
                    return -1;
                if (tag >> 3 == 2)
                    *step = v;
                break;
            case 2:
                if (get_varint(&q, qe, &v) < 0 || v > (uint64_t)(qe - q))
                    return -1;
                if (tag >> 3 == 1) {
                    *id = (const char *)q;
                    *idlen = (size_t)v;
                }
                q += v;
                break;
            case 5:
                q += 4;
                break;
            case 1:
                q += 8;
                break;
            default:
                return -1;
            }
        }
        return *id ? 0 : -1;
    }
    return -1;
}

/* ---- receiving ------------------------------------------------------------ */

static lstream *stream_of(const char *id)
{
    /* ids are "lg<tag>-<index>" */
    const char *d = strrchr(id, '-');
    if (!d || strncmp(id, "lg", 2))
        return NULL;
    long i = strtol(d + 1, NULL, 10);
    if (i < 0 || i >= opt.streams || strcmp(streams[i].id, id))
        return NULL;
    return &streams[i];
}

static lstream *stream_of_n(const char *id, size_t len)
{
    char buf[64];
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, id, len);
    buf[len] = 0;
    return stream_of(buf);
}

static void on_prediction(lstream *s, uint64_t pstep, int64_t t)
{
    n_pred++;
    if (!s)
        return;
    int64_t step = (int64_t)pstep;
    if (step < s->last_step)
        s->reordered++;
    else
        s->last_step = step;
    if ((uint64_t)step >= s->sent || s->sent - (uint64_t)step > RING) {
        s->late++; /* outside the remembered window: no latency */
        return;
    }
    uint8_t *g = &s->got[step % RING];
    if (*g) {
        s->dup++;
        return;
    }
    *g = 1;
    s->received++;
    int64_t lat = t - s->sent_ns[step % RING];
    hist_add(&h_all, lat);
    hist_add(&h_win, lat);
}

static void on_envelope(lconn *c, const Snnd__V1__Envelope *e, int64_t t)
{
    switch (e->msg_case) {
    case SNND__V1__ENVELOPE__MSG_PREDICTION:
        on_prediction(stream_of(e->prediction->stream_id), e->prediction->step, t);
        break;
    case SNND__V1__ENVELOPE__MSG_WELCOME:
        c->welcomed = 1;
        break;
    case SNND__V1__ENVELOPE__MSG_STREAM_OPENED: {
        lstream *s = stream_of(e->stream_opened->stream_id);
        if (s)
            s->opened = 1;
        if (e->stream_opened->model)
            n_in = e->stream_opened->model->n_inputs;
        break;
    }
    case SNND__V1__ENVELOPE__MSG_ACK: {
        lstream *s = stream_of(e->ack->stream_id);
        if (s)
            s->subscribed = 1;
        n_acks++;
        break;
    }
    case SNND__V1__ENVELOPE__MSG_STREAM_CLOSED: {
        lstream *s = stream_of(e->stream_closed->stream_id);
        if (s && !s->closed) {
            s->closed = 1;
            n_closed_streams++;
        }
        break;
    }
    case SNND__V1__ENVELOPE__MSG_STATS:
        if (last_stats)
            snnd__v1__stats__free_unpacked(last_stats, NULL);
        {
            /* keep a copy: re-pack and unpack (the envelope is freed by the caller) */
            size_t n = snnd__v1__stats__get_packed_size(e->stats);
            uint8_t *b = malloc(n ? n : 1);
            snnd__v1__stats__pack(e->stats, b);
            last_stats = snnd__v1__stats__unpack(NULL, n, b);
            free(b);
        }
        break;
    case SNND__V1__ENVELOPE__MSG_ERROR: {
        const Snnd__V1__Error *er = e->error;
        n_errors++;
        if ((unsigned)er->code < 16)
            err_by_code[er->code]++;
        if (n_errors <= 5)
            fprintf(stderr, "loadgen: server error %d on conn %ld (%s, stream %s): %s\n", (int)er->code,
                    (long)(c - conns), er->request, er->stream_id, er->message);
        break;
    }
    default:
        break;
    }
}

static uint8_t rbuf[1 << 18];

static void conn_read(lconn *c)
{
    for (;;) {
        ssize_t k = read(c->fd, rbuf, sizeof rbuf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k <= 0) {
            conn_kill(c);
            return;
        }
        int64_t t = now_ns();
        if (snn_framer_feed(&c->fr, rbuf, (size_t)k) < 0)
            die("out of memory");
        const uint8_t *f;
        size_t len;
        snn_frame_status st;
        while ((st = snn_framer_next(&c->fr, &f, &len)) == SNN_FRAME_OK) {
            const char *pid;
            size_t pidlen;
            uint64_t pstep;
            if (peek_prediction(f, len, &pid, &pidlen, &pstep) == 0) {
                on_prediction(stream_of_n(pid, pidlen), pstep, t);
                continue;
            }
            Snnd__V1__Envelope *e = snnd__v1__envelope__unpack(NULL, len, f);
            if (!e) {
                fprintf(stderr, "loadgen: undecodable frame of %zu bytes on conn %ld\n", len, (long)(c - conns));
                conn_kill(c);
                return;
            }
            on_envelope(c, e, t);
            snnd__v1__envelope__free_unpacked(e, NULL);
        }
        if (st != SNN_FRAME_NEED_MORE) {
            fprintf(stderr, "loadgen: bad frame on conn %ld\n", (long)(c - conns));
            conn_kill(c);
            return;
        }
        if ((size_t)k < sizeof rbuf)
            return;
    }
}

/* Waits for socket events until deadline (ns, absolute) or until done() holds. */
static void poll_until(int64_t deadline, int (*done)(void))
{
    struct epoll_event ev[256];
    while (!stop_flag && (!done || !done())) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return;
        int n = epoll_wait(epfd, ev, 256, (int)(left / 1000000 + 1));
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u32 == UINT32_MAX) /* the send timer: not ours here */
                continue;
            lconn *c = &conns[ev[i].data.u32];
            if (c->dead)
                continue;
            if (ev[i].events & EPOLLOUT)
                conn_flush(c);
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c);
        }
    }
}

static int all_welcomed(void)
{
    for (int i = 0; i < n_conns; i++)
        if (!conns[i].welcomed && !conns[i].dead)
            return 0;
    return 1;
}

static int all_opened(void)
{
    for (int i = 0; i < opt.streams; i++)
        if (!streams[i].opened)
            return 0;
    return 1;
}

static int all_subscribed(void)
{
    for (int i = 0; i < opt.streams; i++)
        if (!streams[i].subscribed)
            return 0;
    return 1;
}

static int all_closed(void) { return n_closed_streams >= (uint64_t)opt.streams; }
static int have_stats(void) { return last_stats != NULL; }

static int all_received(void)
{
    for (int i = 0; i < opt.streams; i++)
        if (streams[i].received + streams[i].late < streams[i].sent)
            return 0;
    return 1;
}

static int count_alive(void)
{
    int n = 0;
    for (int i = 0; i < n_conns; i++)
        n += !conns[i].dead && conns[i].welcomed;
    return n;
}

static void raise_nofile(int need)
{
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
    if ((rlim_t)need + 16 > r.rlim_cur)
        fprintf(stderr, "loadgen: RLIMIT_NOFILE is %llu (hard limit), fewer than the %d descriptors needed\n",
                (unsigned long long)r.rlim_cur, need + 16);
}

static void request_stats(lconn *c)
{
    Snnd__V1__StatsRequest r = SNND__V1__STATS_REQUEST__INIT;
    r.stream_id = "";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STATS_REQUEST;
    env.stats_request = &r;
    if (last_stats) {
        snnd__v1__stats__free_unpacked(last_stats, NULL);
        last_stats = NULL;
    }
    conn_send(c, &env);
    poll_until(now_ns() + 5000000000LL, have_stats);
}

static void print_server_stats(void)
{
    if (!last_stats || !last_stats->server) {
        printf("server stats: none received\n");
        return;
    }
    const Snnd__V1__ServerStats *s = last_stats->server;
    printf("server stats: connections %u streams %u steps %llu predictions_sent %llu subscribers_dropped %llu "
           "errors_sent %llu queued_steps %u rss %.1f MB batches inline %llu workers %llu\n",
           s->connections, s->streams, (unsigned long long)s->steps, (unsigned long long)s->predictions_sent,
           (unsigned long long)s->subscribers_dropped, (unsigned long long)s->errors_sent, s->queued_steps,
           (double)s->rss_bytes / 1048576.0, (unsigned long long)s->batches_inline,
           (unsigned long long)s->batches_workers);
}

/* ---- hold mode ------------------------------------------------------------ */

static int run_hold(void)
{
    raise_nofile(opt.hold);
    n_conns = opt.hold;
    conns = calloc((size_t)n_conns, sizeof *conns);
    long rss0 = rss_kb();
    int64_t t0 = now_ns();
    int failed = 0;
    for (int i = 0; i < n_conns && !stop_flag; i++) {
        if (conn_open(&conns[i]) < 0 && failed++ < 3)
            fprintf(stderr, "loadgen: connection %d: %s\n", i, strerror(errno));
        if (i % 256 == 255) /* take the Welcomes as we go: keeps the socket buffers small */
            poll_until(now_ns() + 1000000, NULL);
    }
    poll_until(now_ns() + 30000000000LL, all_welcomed);
    double t_open = (double)(now_ns() - t0) / 1e9;
    int welcomed = count_alive();
    long rss1 = rss_kb();
    printf("hold: %d connections requested, %d connect failures, %d welcomed in %.2f s; snnd RSS %.1f -> %.1f MB "
           "(%.1f KB per connection)\n",
           opt.hold, failed, welcomed, t_open, rss0 / 1024.0, rss1 / 1024.0,
           welcomed ? (double)(rss1 - rss0) / welcomed : 0.0);
    fflush(stdout);
    poll_until(t0 + (int64_t)(opt.duration * 1e9), NULL);
    int held = count_alive();
    for (int i = 0; i < n_conns; i++)
        if (!conns[i].dead) {
            request_stats(&conns[i]);
            break;
        }
    print_server_stats();
    long rss2 = rss_kb();
    printf("RESULT mode=hold requested=%d welcomed=%d held=%d errors=%llu open_s=%.2f rss_start_mb=%.1f "
           "rss_open_mb=%.1f rss_end_mb=%.1f load=%.2f\n",
           opt.hold, welcomed, held, (unsigned long long)n_errors, t_open, rss0 / 1024.0, rss1 / 1024.0,
           rss2 / 1024.0, load1());
    for (int i = 0; i < n_conns; i++)
        if (!conns[i].dead)
            close(conns[i].fd);
    return held == opt.hold ? 0 : 1;
}

/* ---- streams mode --------------------------------------------------------- */

static void load_input(void)
{
    if (!opt.input) {
        in_rows = 256;
        in_x = calloc((size_t)in_rows * n_in, sizeof *in_x);
        uint64_t s = 12345;
        for (long i = 0; i < in_rows * (long)n_in; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            in_x[i] = ((double)(s >> 11) / 9007199254740992.0) < opt.density ? 1.0f : 0.0f;
        }
        return;
    }
    FILE *f = fopen(opt.input, "r");
    if (!f)
        die("--input %s: %s", opt.input, strerror(errno));
    char *line = NULL;
    size_t cap = 0, rows_cap = 1024;
    in_x = malloc(rows_cap * n_in * sizeof *in_x);
    int first = 1;
    while (getline(&line, &cap, f) > 0) {
        if (first) {
            first = 0;
            continue;
        }
        if ((size_t)in_rows == rows_cap) {
            rows_cap *= 2;
            in_x = realloc(in_x, rows_cap * n_in * sizeof *in_x);
        }
        char *p = strchr(line, ',');
        uint32_t c = 0;
        while (p && c < n_in) {
            in_x[in_rows * n_in + c++] = strtof(p + 1, NULL);
            p = strchr(p + 1, ',');
        }
        if (c != n_in)
            die("--input %s: row %ld has %u values; model %s takes %u", opt.input, in_rows + 1, c, opt.model, n_in);
        in_rows++;
    }
    free(line);
    fclose(f);
    if (!in_rows)
        die("--input %s: no rows", opt.input);
}

static void send_bin(lstream *s, int64_t due)
{
    lconn *c = &conns[s->feed];
    if (c->dead)
        return;
    size_t idlen = strlen(s->id);
    uint8_t bc_hdr[96], env_hdr[32];
    size_t b = 0, e = 0;
    bc_hdr[b++] = 0x0a; /* BinnedCounts.stream_id */
    b += put_varint(bc_hdr + b, idlen);
    memcpy(bc_hdr + b, s->id, idlen);
    b += idlen;
    bc_hdr[b++] = 0x10; /* n_channels */
    b += put_varint(bc_hdr + b, n_in);
    size_t bc_len = b + row_len;
    env_hdr[e++] = 0x08; /* Envelope.id */
    e += put_varint(env_hdr + e, ++c->next_id);
    env_hdr[e++] = 0x8a; /* field 17 (binned_counts), length-delimited: varint 138 */
    env_hdr[e++] = 0x01;
    e += put_varint(env_hdr + e, bc_len);
    size_t env_len = e + bc_len;
    uint8_t *o = conn_reserve(c, env_len + 5);
    size_t k = put_varint(o, env_len);
    memcpy(o + k, env_hdr, e);
    memcpy(o + k + e, bc_hdr, b);
    memcpy(o + k + e + b, row_bytes + (size_t)s->row * row_len, row_len);
    if (++s->row == in_rows)
        s->row = 0;
    uint64_t slot = s->sent % RING;
    s->got[slot] = 0;
    int64_t t = now_ns();
    s->sent_ns[slot] = t;
    s->sent++;
    hist_add(&h_lag, t - due);
    conn_commit(c, k + env_len);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int run_streams(void)
{
    if (opt.conns <= 0)
        opt.conns = opt.streams;
    if (opt.conns > opt.streams)
        opt.conns = opt.streams;
    n_conns = opt.conns + opt.sub_conns;
    raise_nofile(n_conns);
    conns = calloc((size_t)n_conns, sizeof *conns);
    dirty_list = calloc((size_t)n_conns, sizeof *dirty_list);
    streams = calloc((size_t)opt.streams, sizeof *streams);
    int64_t t0 = now_ns();
    for (int i = 0; i < n_conns; i++)
        if (conn_open(&conns[i]) < 0)
            die("connect %s (connection %d): %s", opt.addr, i, strerror(errno));
    poll_until(now_ns() + 30000000000LL, all_welcomed);
    if (count_alive() < n_conns)
        die("only %d of %d connections were welcomed", count_alive(), n_conns);
    for (int i = 0; i < opt.streams; i++) {
        lstream *s = &streams[i];
        snprintf(s->id, sizeof s->id, "lg%s-%d", run_tag, i);
        s->feed = i % opt.conns;
        s->sub = opt.sub_conns ? opt.conns + i % opt.sub_conns : s->feed;
        s->last_step = -1;
        s->sent_ns = calloc(RING, sizeof *s->sent_ns);
        s->got = calloc(RING, 1);
        Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
        o.stream_id = s->id;
        o.model = (char *)opt.model;
        o.input_kind = SNND__V1__INPUT_KIND__INPUT_BINNED;
        o.subscribe = opt.sub_conns == 0;
        Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
        env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
        env.open_stream = &o;
        conn_send(&conns[s->feed], &env);
        if (i % 64 == 63)
            poll_until(now_ns() + 1000000, NULL);
    }
    poll_until(now_ns() + 30000000000LL, all_opened);
    if (opt.sub_conns) {
        for (int i = 0; i < opt.streams; i++) {
            Snnd__V1__Subscribe sb = SNND__V1__SUBSCRIBE__INIT;
            sb.stream_id = streams[i].id;
            Snnd__V1__Envelope e2 = SNND__V1__ENVELOPE__INIT;
            e2.msg_case = SNND__V1__ENVELOPE__MSG_SUBSCRIBE;
            e2.subscribe = &sb;
            conn_send(&conns[streams[i].sub], &e2);
        }
        poll_until(now_ns() + 30000000000LL, all_subscribed);
    }
    int opened = 0;
    for (int i = 0; i < opt.streams; i++)
        opened += streams[i].opened && (!opt.sub_conns || streams[i].subscribed);
    if (opened < opt.streams)
        die("only %d of %d streams opened (and subscribed); server errors: %llu", opened, opt.streams,
            (unsigned long long)n_errors);
    load_input(); /* n_in is the model's, from StreamOpened */
    encode_rows();
    double t_setup = (double)(now_ns() - t0) / 1e9;
    long rss0 = rss_kb(), rss_max = rss0;
    printf("setup: %d connections (%d feeders, %d subscribers), %d streams of %s, %u inputs, %.2f s; snnd RSS "
           "%.1f MB\n",
           n_conns, opt.conns, opt.sub_conns, opt.streams, opt.model, n_in, t_setup, rss0 / 1024.0);
    fflush(stdout);

    /* Send on a fixed schedule: stream i at start + i P / S + k P. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
    int64_t period = (int64_t)(1e9 / opt.rate + 0.5);
    int64_t start = now_ns() + 10000000, end = start + (int64_t)(opt.duration * 1e9);
    for (int i = 0; i < opt.streams; i++) {
        streams[i].next_due = start + period * i / opt.streams;
        streams[i].row = (long)i * 37 % in_rows;
    }
    int cur = 0;
    int64_t tick_ns = (int64_t)(opt.tick_us * 1e3), last_wake = 0;
    double cpu0 = cpu_s(), scpu0 = snnd_cpu_s(), wait0 = wait_s(0), swait0 = opt.pid ? wait_s(opt.pid) : 0;
    int64_t next_report = start + (int64_t)(opt.report_every * 1e9), win_start = start;
    uint64_t pred_win0 = 0, sent_win0 = 0;
    struct epoll_event ev[512];
    while (!stop_flag) {
        int64_t t = now_ns();
        if (t >= end)
            break;
        int budget = 4 * opt.streams;
        while (streams[cur].next_due <= t && budget-- > 0) {
            lstream *s = &streams[cur];
            send_bin(s, s->next_due);
            s->next_due += period;
            if (++cur == opt.streams)
                cur = 0;
        }
        flush_dirty();
        if (t >= next_report) {
            uint64_t sent = 0;
            for (int i = 0; i < opt.streams; i++)
                sent += streams[i].sent;
            double w = (double)(t - win_start) / 1e9;
            long rss = rss_kb();
            if (rss > rss_max)
                rss_max = rss;
            printf("t=%.0fs sent/s %.0f predictions/s %.0f window p50 %.0f p99 %.0f p99.9 %.0f max %lld us; snnd "
                   "RSS %.1f MB; loadgen CPU %.0f%%\n",
                   (double)(t - start) / 1e9, (double)(sent - sent_win0) / w, (double)(n_pred - pred_win0) / w,
                   hist_q(&h_win, 0.5), hist_q(&h_win, 0.99), hist_q(&h_win, 0.999), (long long)h_win.max,
                   rss / 1024.0, 100 * (cpu_s() - cpu0) / ((double)(t - start) / 1e9));
            fflush(stdout);
            memset(&h_win, 0, sizeof h_win);
            win_start = t;
            sent_win0 = sent;
            pred_win0 = n_pred;
            next_report += (int64_t)(opt.report_every * 1e9);
        }
        int64_t due = streams[cur].next_due;
        int timeout = 0;
        if (due > t) {
            /* Wake at most once per tick: bins due within a tick go out together (each is
             * still stamped when written), so the tool does not pay one wake-up per bin. */
            if (due < last_wake + tick_ns)
                due = last_wake + tick_ns;
            struct itimerspec its = {.it_value = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            timeout = -1;
        }
        int n = epoll_wait(epfd, ev, 512, timeout < 0 ? 1000 : 0);
        if (timeout < 0)
            last_wake = now_ns();
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u32 == UINT32_MAX) {
                uint64_t x;
                if (read(tfd, &x, sizeof x) < 0) { /* nothing: the timer only wakes us */
                }
                continue;
            }
            lconn *c = &conns[ev[i].data.u32];
            if (c->dead)
                continue;
            if (ev[i].events & EPOLLOUT)
                conn_flush(c);
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c);
        }
    }
    int64_t t_end = now_ns();
    epoll_ctl(epfd, EPOLL_CTL_DEL, tfd, NULL);
    double wall = (double)(t_end - start) / 1e9, cpu = cpu_s() - cpu0, scpu = snnd_cpu_s() - scpu0;
    double wait = wait_s(0) - wait0, swait = opt.pid ? wait_s(opt.pid) - swait0 : 0;
    /* Drain: wait while predictions still arrive (up to --drain s without one, 60 s in all). */
    int64_t drain_end = now_ns() + 60000000000LL;
    for (uint64_t seen = n_pred - 1; n_pred != seen && now_ns() < drain_end && !all_received();) {
        seen = n_pred;
        poll_until(now_ns() + (int64_t)(opt.drain * 1e9), all_received);
    }
    double drain_s = (double)(now_ns() - t_end) / 1e9;
    uint64_t sent = 0, recv = 0, reord = 0, dup = 0, late = 0;
    for (int i = 0; i < opt.streams; i++) {
        sent += streams[i].sent;
        recv += streams[i].received;
        reord += streams[i].reordered;
        dup += streams[i].dup;
        late += streams[i].late;
    }
    long rss1 = rss_kb();
    if (rss1 > rss_max)
        rss_max = rss1;
    for (int i = 0; i < n_conns; i++)
        if (!conns[i].dead) {
            request_stats(&conns[i]);
            break;
        }
    print_server_stats();
    /* Close every stream (final StreamClosed) so the daemon's memory can be watched after. */
    for (int i = 0; i < opt.streams; i++) {
        Snnd__V1__CloseStream cs = SNND__V1__CLOSE_STREAM__INIT;
        cs.stream_id = streams[i].id;
        Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
        env.msg_case = SNND__V1__ENVELOPE__MSG_CLOSE_STREAM;
        env.close_stream = &cs;
        conn_send(&conns[streams[i].feed], &env);
    }
    poll_until(now_ns() + 10000000000LL, all_closed);
    int held = count_alive();
    double load[1] = {0};
    getloadavg(load, 1);
    printf("sent %llu bins (%.0f/s), %llu predictions matched (%.0f/s), lost %llu, late %llu, reordered %llu, "
           "duplicated %llu, errors %llu, streams closed %llu (drained %.1f s after the last send)\n",
           (unsigned long long)sent, (double)sent / wall, (unsigned long long)recv, (double)recv / wall,
           (unsigned long long)(sent - recv - late), (unsigned long long)late, (unsigned long long)reord,
           (unsigned long long)dup, (unsigned long long)n_errors, (unsigned long long)n_closed_streams, drain_s);
    printf("latency bin sent -> prediction read: p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %lld us (mean %.1f); "
           "send lag p99 %.0f max %lld us; loadgen CPU %.0f%% of one core\n",
           hist_q(&h_all, 0.5), hist_q(&h_all, 0.9), hist_q(&h_all, 0.99), hist_q(&h_all, 0.999),
           (long long)h_all.max, h_all.n ? h_all.sum / (double)h_all.n : 0.0, hist_q(&h_lag, 0.99),
           (long long)h_lag.max, 100 * cpu / wall);
    uint64_t sent_all = 0;
    for (int i = 0; i < opt.streams; i++)
        sent_all += streams[i].sent;
    if (opt.pid)
        printf("snnd CPU while sending: %.2f cores, %.1f us of CPU per bin (all threads); its threads waited "
               "for a CPU %.2f s per s\n",
               scpu / wall, sent_all ? scpu / (double)sent_all * 1e6 : 0.0, swait / wall);
    printf("loadgen waited for a CPU %.0f%% of the time (runnable, not running: the machine is shared)\n",
           100 * wait / wall);
    printf("RESULT mode=streams streams=%d conns=%d sub_conns=%d rate=%.0f duration=%.1f held=%d sent=%llu "
           "received=%llu lost=%llu late=%llu reordered=%llu dup=%llu errors=%llu events_per_s=%.0f "
           "predictions_per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%lld lag_p99_us=%.0f "
           "loadgen_cpu=%.2f snnd_cpu=%.2f snnd_us_per_bin=%.1f loadgen_cpu_wait=%.2f snnd_cpu_wait=%.2f rss_start_mb=%.1f rss_max_mb=%.1f rss_end_mb=%.1f load=%.2f\n",
           opt.streams, opt.conns, opt.sub_conns, opt.rate, wall, held, (unsigned long long)sent,
           (unsigned long long)recv, (unsigned long long)(sent - recv - late), (unsigned long long)late,
           (unsigned long long)reord, (unsigned long long)dup, (unsigned long long)n_errors, (double)sent / wall,
           (double)recv / wall, hist_q(&h_all, 0.5), hist_q(&h_all, 0.99), hist_q(&h_all, 0.999),
           (long long)h_all.max, hist_q(&h_lag, 0.99), cpu / wall, opt.pid ? scpu / wall : 0.0,
           opt.pid && sent ? scpu / (double)sent * 1e6 : 0.0, wait / wall, swait / wall, rss0 / 1024.0, rss_max / 1024.0,
           rss_kb() / 1024.0, load[0]);
    for (int i = 0; i < n_conns; i++)
        if (!conns[i].dead)
            close(conns[i].fd);
    close(tfd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [--addr A] [--model M] [--streams S] [--conns N] [--sub-conns K]\n"
                    "               [--rate R] [--duration T] [--density P | --input CSV] [--pid PID]\n"
                    "               [--report-every SEC] [--drain SEC] [--tick-us US]\n"
                    "       loadgen --hold C [--addr A] [--duration T] [--pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--addr"))
            opt.addr = v;
        else if (!strcmp(a, "--model"))
            opt.model = v;
        else if (!strcmp(a, "--streams"))
            opt.streams = atoi(v);
        else if (!strcmp(a, "--conns"))
            opt.conns = atoi(v);
        else if (!strcmp(a, "--sub-conns"))
            opt.sub_conns = atoi(v);
        else if (!strcmp(a, "--rate"))
            opt.rate = atof(v);
        else if (!strcmp(a, "--duration"))
            opt.duration = atof(v);
        else if (!strcmp(a, "--density"))
            opt.density = atof(v);
        else if (!strcmp(a, "--input"))
            opt.input = v;
        else if (!strcmp(a, "--pid"))
            opt.pid = atoi(v);
        else if (!strcmp(a, "--report-every"))
            opt.report_every = atof(v);
        else if (!strcmp(a, "--drain"))
            opt.drain = atof(v);
        else if (!strcmp(a, "--tick-us"))
            opt.tick_us = atof(v);
        else if (!strcmp(a, "--hold"))
            opt.hold = atoi(v);
        else
            usage();
        i++;
    }
    if (opt.tick_us < 0 || opt.streams < 1 || opt.rate <= 0 || opt.duration <= 0 || opt.report_every <= 0 ||
        opt.sub_conns < 0 || opt.hold < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(run_tag, sizeof run_tag, "%x", (unsigned)(getpid() ^ (unsigned)time(NULL)) & 0xffffu);
    epfd = epoll_create1(0);
    if (opt.hold)
        return run_hold();
    return run_streams();
}
