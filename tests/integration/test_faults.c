/*
 * test_faults.c -- the outcome of faults, on real snnd processes: clients that
 * vanish mid-frame, subscribers that stop reading, model files truncated or
 * swapped under open streams, SIGHUP, a saturated worker pool, SIGTERM under
 * load, a long gap closed by one message, and bad input of every kind. Each
 * test starts its own snnd on a temporary model directory (copies of zoo
 * models, so files can be truncated and swapped safely); the teardown kills
 * it if the test failed.
 * A SIGKILL during SaveModel leaves the model file either absent or complete.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "framing.h"
#include "itest.h"

/* Memory bounds are asserted on the daemon's resident size, which means
 * something only in a build without AddressSanitizer (its quarantine and
 * shadow memory inflate RSS by design); under ASan they are printed only. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_BOUNDS 0
#else
#define RSS_BOUNDS 1
#endif
#include "model.h"
#include "rsnn_eprop.h"
#include "session.h"
#include "testutil.h"

#define SEED1 "tinyrsnn-indy01-seed1"
#define SEED2 "tinyrsnn-indy01-seed2"
#define SEED3 "tinyrsnn-indy01-seed3"
#define NCH 96
#define NBINS 1000
#define T_MS 5000

static float input[NBINS * NCH];

/* Deterministic sparse binary input: ~6% of channels active per bin. */
static void make_input(void)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < NBINS * NCH; i++) {
        x = x * 1664525u + 1013904223u;
        input[i] = (x >> 24) < 16 ? 1.0f : 0.0f;
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- model directories and offline reference runs ------------------------ */

static const char *zoo_path(const char *model, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.safetensors", snn_test_src("models/zoo"), model);
    return buf;
}

/* Copies zoo model `from` into dir as NAME.safetensors. */
static void put_model(const char *dir, const char *name, const char *from)
{
    char src[512], dst[512];
    snprintf(dst, sizeof dst, "%s/%s.safetensors", dir, name);
    assert_int_equal(itest_copy_file(zoo_path(from, src, sizeof src), dst), 0);
}

/* Predictions: values and steps. */
typedef struct series {
    float (*v)[2];
    size_t n, cap;
} series;

static void series_init(series *s, size_t cap)
{
    s->v = calloc(cap, sizeof *s->v);
    assert_non_null(s->v);
    s->n = 0;
    s->cap = cap;
}

static void series_free(series *s)
{
    free(s->v);
    s->v = NULL;
}

static void collect(void *ctx, const snn_output *o)
{
    series *s = ctx;
    if (o->type == SNN_OUT_PREDICTION && s->n < s->cap) {
        s->v[s->n][0] = o->values[0];
        s->v[s->n][1] = o->values[1];
        s->n++;
    }
}

/* Runs zoo model `model` offline over `reps` repetitions of the NBINS input
 * (what snnd computes for the same BinnedCounts stream). */
static void offline(const char *model, size_t reps, series *out)
{
    char path[512];
    snn_model *m;
    snn_err e;
    assert_int_equal(snn_model_load(zoo_path(model, path, sizeof path), NULL, &m, &e), 0);
    snn_session *s;
    snn_session_cfg cfg = {.input = SNN_INPUT_BINNED};
    assert_int_equal(snn_session_new(m, &cfg, NULL, &s, &e), 0);
    series_init(out, reps * NBINS);
    for (size_t r = 0; r < reps; r++)
        assert_int_equal(snn_session_binned(s, input, NCH, NBINS, 0, collect, out, &e), 0);
    snn_session_finish(s, collect, out, &e);
    snn_session_free(s);
    snn_model_free(m);
    assert_int_equal(out->n, reps * NBINS);
}

/* ---- daemons: started per test, killed by the teardown if a test fails ---- */

static itest_daemon live_d; /* a copy: a failed test's stack is gone by teardown */
static itest_daemon *live;
static char live_dir[128];

/* Starts snnd on model directory dir (removed by the teardown). */
static void start(itest_daemon *d, const char *dir, const char *const *extra)
{
    snprintf(live_dir, sizeof live_dir, "%s", dir);
    int rc = -1;
    for (int i = 0; i < 3 && rc < 0; i++) /* build/server/snnd may be relinked under us */
        if ((rc = itest_start(d, dir, extra)) < 0)
            usleep(500000);
    assert_int_equal(rc, 0);
    live_d = *d;
    live = &live_d;
}

/* Writes json to dir/snnd.json and starts snnd on dir with --config and the extra arguments. */
static void start_with_config(itest_daemon *d, const char *dir, const char *json, const char *const *more)
{
    char cfgp[256];
    const char *extra[8] = {"--config", cfgp};
    snprintf(cfgp, sizeof cfgp, "%s/snnd.json", dir);
    assert_int_equal(itest_write_text(cfgp, json), 0);
    for (int i = 0; more && more[i] && i < 5; i++)
        extra[2 + i] = more[i];
    start(d, dir, extra);
}

/* SIGTERM: the daemon must exit with status 0. */
static void stop_ok(itest_daemon *d)
{
    live = NULL;
    assert_int_equal(itest_stop(d, SIGTERM), 0);
}

static int teardown(void **u)
{
    (void)u;
    if (live && live->pid > 0 && kill(live->pid, 0) == 0) {
        printf("# killing snnd %ld (log %s)\n", (long)live->pid, live->log);
        itest_stop(live, SIGKILL);
    }
    live = NULL;
    if (live_dir[0])
        itest_rmdir(live_dir);
    live_dir[0] = 0;
    return 0;
}

/* Mismatches recorded by tests that check several independent outcomes, so
 * one run reports all of them. */
static char failures[4096];

static void soft_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void soft_fail(const char *fmt, ...)
{
    size_t n = strlen(failures);
    va_list ap;
    va_start(ap, fmt);
    snprintf(failures + n, sizeof failures - n, "\n  ");
    n = strlen(failures);
    vsnprintf(failures + n, sizeof failures - n, fmt, ap);
    va_end(ap);
}

/* ---- protocol helpers ----------------------------------------------------- */

static Snnd__V1__Envelope *must_recv(int fd, int msg_case)
{
    Snnd__V1__Envelope *e = itest_recv(fd, T_MS);
    if (!e)
        fail_msg("no %d message within %d ms (eof %d)", msg_case, T_MS, itest_last_eof());
    if ((int)e->msg_case != msg_case) {
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR)
            fail_msg("expected message %d, got Error %d \"%s\"", msg_case, e->error->code, e->error->message);
        fail_msg("expected message %d, got %d", msg_case, e->msg_case);
    }
    return e;
}

static void open_ok(int fd, uint32_t id, const char *stream, const char *model, int subscribe)
{
    assert_int_equal(itest_open(fd, id, stream, model, subscribe), 0);
    Snnd__V1__Envelope *e = must_recv(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED);
    assert_int_equal(e->id, id);
    assert_string_equal(e->stream_opened->stream_id, stream);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

static void subscribe_ok(int fd, uint32_t id, const char *stream)
{
    assert_int_equal(itest_subscribe(fd, id, stream), 0);
    Snnd__V1__Envelope *e = must_recv(fd, SNND__V1__ENVELOPE__MSG_ACK);
    assert_int_equal(e->id, id);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

/* Feeds bins [from, to) of the input in chunks of `chunk` bins. */
static void feed(int fd, const char *stream, size_t from, size_t to, size_t chunk)
{
    for (size_t k = from; k < to; k += chunk)
        assert_int_equal(itest_binned(fd, stream, input + k * NCH, NCH, (k + chunk <= to ? chunk : to - k)), 0);
}

/* Receives the predictions of `stream` with steps first..first+n-1 in order
 * (into out->v[step] if out); fails on an Error or a gap. */
static void recv_preds(int fd, const char *stream, uint64_t first, size_t n, series *out)
{
    for (size_t i = 0; i < n; i++) {
        Snnd__V1__Envelope *e = must_recv(fd, SNND__V1__ENVELOPE__MSG_PREDICTION);
        assert_string_equal(e->prediction->stream_id, stream);
        if (e->prediction->step != first + i)
            fail_msg("stream %s: step %llu where %llu was due", stream, (unsigned long long)e->prediction->step,
                     (unsigned long long)(first + i));
        assert_int_equal(e->prediction->n_values, 2);
        if (out && first + i < out->cap) {
            out->v[first + i][0] = e->prediction->values[0];
            out->v[first + i][1] = e->prediction->values[1];
            if (first + i + 1 > out->n)
                out->n = first + i + 1;
        }
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
}

/* Receives predictions of `stream` (continuing at out->n) until its
 * StreamClosed; returns the closed message's steps. */
static uint64_t recv_until_closed(int fd, const char *stream, series *out)
{
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(fd, T_MS);
        if (!e)
            fail_msg("stream %s: no StreamClosed within %d ms (eof %d)", stream, T_MS, itest_last_eof());
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED && !strcmp(e->stream_closed->stream_id, stream)) {
            uint64_t steps = e->stream_closed->steps;
            snnd__v1__envelope__free_unpacked(e, NULL);
            return steps;
        }
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR)
            fail_msg("stream %s: Error %d \"%s\"", stream, e->error->code, e->error->message);
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION && !strcmp(e->prediction->stream_id, stream)) {
            if (e->prediction->step != out->n)
                fail_msg("stream %s: step %llu where %zu was due", stream, (unsigned long long)e->prediction->step,
                         out->n);
            if (out->n < out->cap) {
                out->v[out->n][0] = e->prediction->values[0];
                out->v[out->n][1] = e->prediction->values[1];
            }
            out->n++;
        }
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
}

/* Expects an Error with code and a message containing every `want`. */
static void expect_error(int fd, int code, const char *want, const char *want2)
{
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, T_MS);
    if (!e)
        fail_msg("no Error %d (\"%s\") within %d ms", code, want, T_MS);
    if ((int)e->error->code != code || !strstr(e->error->message, want) ||
        (want2 && !strstr(e->error->message, want2)))
        fail_msg("expected Error %d containing \"%s\"%s%s, got %d \"%s\"", code, want, want2 ? " and " : "",
                 want2 ? want2 : "", e->error->code, e->error->message);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

/* Like expect_error, but records a mismatch and carries on. */
static void check_error(int fd, const char *what, int code, const char *want)
{
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, T_MS);
    if (!e) {
        soft_fail("%s: no Error within %d ms", what, T_MS);
        return;
    }
    if ((int)e->error->code != code || !strstr(e->error->message, want))
        soft_fail("%s: expected Error %d containing \"%s\", got %d \"%s\"", what, code, want, e->error->code,
                  e->error->message);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

static Snnd__V1__Envelope *stats(int fd)
{
    static uint32_t id = 1000;
    Snnd__V1__Envelope *e = itest_stats(fd, ++id, "", T_MS);
    assert_non_null(e);
    return e;
}

/* Waits (up to 5 s) until the server reports `conns` connections and
 * `streams` streams. */
static void wait_counts(int obs, uint32_t conns, uint32_t streams)
{
    uint32_t c = 0, s = 0;
    for (int i = 0; i < 250; i++) {
        Snnd__V1__Envelope *e = stats(obs);
        c = e->stats->server->connections;
        s = e->stats->server->streams;
        snnd__v1__envelope__free_unpacked(e, NULL);
        if (c == conns && s == streams)
            return;
        usleep(20000);
    }
    fail_msg("server reports %u connections and %u streams; expected %u and %u", c, s, conns, streams);
}

/* One BinnedCounts frame (length prefix included), malloc'd. */
static uint8_t *binned_frame(const char *stream, const float *counts, size_t n_bins, size_t *len)
{
    Snnd__V1__BinnedCounts b = SNND__V1__BINNED_COUNTS__INIT;
    b.stream_id = (char *)stream;
    b.n_channels = NCH;
    b.n_counts = NCH * n_bins;
    b.counts = (float *)counts;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_BINNED_COUNTS;
    env.binned_counts = &b;
    size_t n = snnd__v1__envelope__get_packed_size(&env);
    uint8_t *f = malloc(n + 5);
    assert_non_null(f);
    size_t k = snn_varint_put(f, (uint32_t)n);
    snnd__v1__envelope__pack(&env, f + k);
    *len = k + n;
    return f;
}

/* ---- non-blocking pumps for the load tests -------------------------------- */

/* A reader of predictions of one stream on a non-blocking fd. */
typedef struct sink {
    int fd;
    const char *stream;
    snn_framer fr;
    uint64_t n;          /* predictions received; the next step due */
    int out_of_order;    /* a step arrived that was not n */
    int closed, slow_error, eof;
    uint64_t closed_steps; /* StreamClosed.steps */
    int other_errors;
    series *keep;        /* optional: values */
} sink;

static void sink_init(sink *s, int fd, const char *stream, series *keep)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->stream = stream;
    s->keep = keep;
    snn_framer_init(&s->fr, 64u << 20);
}

/* Reads and parses what is available without blocking. */
static void sink_pump(sink *s)
{
    uint8_t buf[65536];
    while (!s->eof) {
        ssize_t r = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s->eof = 1;
            break;
        }
        assert_int_equal(snn_framer_feed(&s->fr, buf, (size_t)r), 0);
        const uint8_t *f;
        size_t len;
        while (snn_framer_next(&s->fr, &f, &len) == SNN_FRAME_OK) {
            Snnd__V1__Envelope *e = snnd__v1__envelope__unpack(NULL, len, f);
            assert_non_null(e);
            if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION && !strcmp(e->prediction->stream_id, s->stream)) {
                if (e->prediction->step != s->n && !s->out_of_order) {
                    s->out_of_order = 1;
                    printf("# %s on fd %d: step %llu where %llu was due\n", s->stream, s->fd,
                           (unsigned long long)e->prediction->step, (unsigned long long)s->n);
                }
                if (s->keep && s->n < s->keep->cap) {
                    s->keep->v[s->n][0] = e->prediction->values[0];
                    s->keep->v[s->n][1] = e->prediction->values[1];
                    s->keep->n = s->n + 1;
                }
                s->n++;
            } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED &&
                       !strcmp(e->stream_closed->stream_id, s->stream)) {
                s->closed = 1;
                s->closed_steps = e->stream_closed->steps;
            } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR) {
                if (e->error->code == SNND__V1__ERROR_CODE__SLOW_SUBSCRIBER) {
                    s->slow_error = 1;
                } else if (s->other_errors++ < 3) {
                    printf("# fd %d: Error %d \"%s\"\n", s->fd, e->error->code, e->error->message);
                }
            }
            snnd__v1__envelope__free_unpacked(e, NULL);
        }
    }
}

static void sink_free(sink *s) { snn_framer_free(&s->fr); }

/* A sender of `reps` copies of one frame on a non-blocking fd. */
typedef struct feeder {
    int fd;
    const uint8_t *frame;
    size_t len, off, reps_left;
    uint64_t sent;   /* bytes the kernel took */
    uint64_t blocked; /* sends refused with EAGAIN: the socket buffer was full */
    int broken;       /* the daemon closed the connection */
} feeder;

static void feeder_pump(feeder *f)
{
    while (f->reps_left && !f->broken) {
        ssize_t w = send(f->fd, f->frame + f->off, f->len - f->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                f->blocked++;
            else if (errno == EPIPE || errno == ECONNRESET)
                f->broken = 1;
            else if (errno != EINTR)
                fail_msg("send: %s", strerror(errno));
            return;
        }
        f->sent += (uint64_t)w;
        f->off += (size_t)w;
        if (f->off == f->len) {
            f->off = 0;
            f->reps_left--;
        }
    }
}

/* ---- 1. a client disconnecting in the middle of a frame ------------------- */

/* The vanished client's stream finishes (its subscribers get StreamClosed with
 * the steps it completed), other streams are unaffected and bit-identical to
 * an offline run, and after 300 such clients the server is back to its
 * baseline: connection and stream counts, and memory (each vanished client
 * left 192 KB of a frame buffered: a leak would show as ~56 MB). */
static void disconnect_mid_frame_finishes_its_streams(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "disc"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start(&d, dir, NULL);
    int obs = itest_connect(&d);
    wait_counts(obs, 1, 0);

    int a = itest_connect(&d), b = itest_connect(&d);
    open_ok(a, 1, "owned", "m", 0);
    subscribe_ok(obs, 2, "owned");
    open_ok(b, 3, "other", "m", 1);
    feed(a, "owned", 0, 10, 10);
    recv_preds(obs, "owned", 0, 10, NULL);
    feed(b, "other", 0, 500, 50);

    size_t len;
    uint8_t *fr = binned_frame("owned", input, 100, &len);
    assert_int_equal(itest_send_raw(a, fr, len / 2), 0);
    free(fr);
    itest_close(a);

    /* The subscriber sees the stream finish with the 10 steps it had. */
    Snnd__V1__Envelope *e = itest_recv(obs, T_MS);
    assert_non_null(e);
    if (e->msg_case != SNND__V1__ENVELOPE__MSG_STREAM_CLOSED)
        fail_msg("after the owner vanished, the subscriber got message %d instead of StreamClosed", e->msg_case);
    assert_string_equal(e->stream_closed->stream_id, "owned");
    assert_int_equal(e->stream_closed->steps, 10);
    snnd__v1__envelope__free_unpacked(e, NULL);

    /* The other stream carries on, bit for bit. */
    feed(b, "other", 500, NBINS, 50);
    assert_int_equal(itest_close_stream(b, 4, "other"), 0);
    static series got, off;
    series_init(&got, NBINS);
    assert_int_equal(recv_until_closed(b, "other", &got), NBINS);
    offline(SEED1, 1, &off);
    assert_int_equal(got.n, NBINS);
    assert_memory_equal(got.v, off.v, NBINS * sizeof *off.v);
    itest_close(b);
    wait_counts(obs, 1, 0);

    /* 300 clients vanishing mid-frame: counts and memory back to baseline. */
    fr = binned_frame("x", input, NBINS, &len); /* ~384 KB frame */
    long rss_warm = 0;
    for (int i = 0; i < 300; i++) {
        if (i == 30) {
            wait_counts(obs, 1, 0);
            rss_warm = itest_rss_kb(d.pid);
        }
        int c = itest_connect(&d);
        assert_true(c >= 0);
        char id[32];
        snprintf(id, sizeof id, "v%d", i);
        open_ok(c, 1, id, "m", 0);
        assert_int_equal(itest_binned(c, id, input, NCH, 5), 0);
        assert_int_equal(itest_send_raw(c, fr, len / 2), 0);
        itest_close(c);
    }
    free(fr);
    wait_counts(obs, 1, 0);
    long rss_end = itest_rss_kb(d.pid);
    printf("# daemon VmRSS after 30 vanished clients %ld KiB, after 300 %ld KiB\n", rss_warm, rss_end);
    assert_true(rss_warm > 0);
    assert_true(!RSS_BOUNDS || rss_end - rss_warm < 8 * 1024);
    e = stats(obs);
    assert_true(e->stats->server->steps >= 10 + NBINS + 300 * 5);
    snnd__v1__envelope__free_unpacked(e, NULL);
    itest_close(obs);
    stop_ok(&d);
    series_free(&got);
    series_free(&off);
}

/* ---- 2. a subscriber that stops reading ----------------------------------- */

/* With a 64 KB hard output limit, a subscriber that reads nothing is dropped
 * with Error SLOW_SUBSCRIBER; two subscribers that read get every one of the
 * 300 000 predictions in order; and the daemon's memory stays bounded. The
 * bound: what the daemon may legitimately hold is the feeder's input queue
 * (256 KB limit + one 384 KB frame + one 64 KB read, twice: frame bytes and
 * unpacked floats), one batch's encoded predictions (< 100 KB), and each
 * subscriber's output queue (<= 64 KB each): ~2 MB. Had the stalled
 * subscriber's queue been left to grow it would hold all 300 000 predictions,
 * ~9 MB; the test allows 6 MB over the RSS measured after start-up. */
static void stalled_subscriber_dropped_memory_bounded(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "slow"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start_with_config(&d, dir,
                      "{\"limits\": {\"subscriber_hard_limit_bytes\": 65536,"
                      " \"subscriber_soft_limit_bytes\": 32768,"
                      " \"subscriber_soft_limit_seconds\": 60,"
                      " \"input_queue_bytes\": 262144}}\n", NULL);
    int obs = itest_connect(&d);
    int feedfd = itest_connect(&d), g1 = itest_connect(&d), g2 = itest_connect(&d), slow = itest_connect(&d);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    open_ok(feedfd, 1, "fan", "m", 0);
    subscribe_ok(g1, 2, "fan");
    subscribe_ok(g2, 3, "fan");
    subscribe_ok(slow, 4, "fan");
    Snnd__V1__Envelope *e = stats(obs);
    long rss0 = (long)(e->stats->server->rss_bytes / 1024);
    snnd__v1__envelope__free_unpacked(e, NULL);
    long rss_proc0 = itest_rss_kb(d.pid);

    enum { REPS = 300 };
    size_t len;
    uint8_t *fr = binned_frame("fan", input, NBINS, &len);
    feeder f = {.fd = feedfd, .frame = fr, .len = len, .reps_left = REPS};
    sink s1, s2;
    sink_init(&s1, g1, "fan", NULL);
    sink_init(&s2, g2, "fan", NULL);
    long rss_max = rss_proc0;
    double t0 = now_s(), last = t0;
    while ((f.reps_left || s1.n < REPS * NBINS || s2.n < REPS * NBINS) && now_s() - t0 < 40) {
        struct pollfd p[3] = {{.fd = feedfd, .events = f.reps_left ? POLLOUT : 0},
                              {.fd = g1, .events = POLLIN},
                              {.fd = g2, .events = POLLIN}};
        poll(p, 3, 100);
        feeder_pump(&f);
        sink_pump(&s1);
        sink_pump(&s2);
        if (now_s() - last > 0.05) {
            last = now_s();
            long r = itest_rss_kb(d.pid);
            if (r > rss_max)
                rss_max = r;
        }
        assert_false(s1.eof || s2.eof);
    }
    long r = itest_rss_kb(d.pid);
    if (r > rss_max)
        rss_max = r;
    printf("# %d predictions in %.1f s; daemon VmRSS %ld KiB at start (stats: %ld), max %ld KiB\n",
           REPS * NBINS, now_s() - t0, rss_proc0, rss0, rss_max);
    free(fr);
    assert_int_equal(s1.n, REPS * NBINS);
    assert_int_equal(s2.n, REPS * NBINS);
    assert_false(s1.out_of_order || s2.out_of_order);
    assert_int_equal(s1.other_errors + s2.other_errors, 0);
    assert_false(s1.slow_error || s2.slow_error);
    assert_true(!RSS_BOUNDS || rss_max - rss_proc0 < 6 * 1024);

    /* The stalled one: a prefix of the predictions in order, SLOW_SUBSCRIBER, EOF. */
    sink ss;
    sink_init(&ss, slow, "fan", NULL);
    for (double t = now_s(); !ss.eof && now_s() - t < 10;) {
        struct pollfd p = {.fd = slow, .events = POLLIN};
        poll(&p, 1, 100);
        sink_pump(&ss);
    }
    printf("# stalled subscriber got %llu predictions, then Error SLOW_SUBSCRIBER: %d\n", (unsigned long long)ss.n,
           ss.slow_error);
    assert_true(ss.eof);
    assert_true(ss.slow_error);
    assert_false(ss.out_of_order);
    assert_true(ss.n < REPS * NBINS / 10);
    e = stats(obs);
    assert_int_equal(e->stats->server->subscribers_dropped, 1);
    snnd__v1__envelope__free_unpacked(e, NULL);
    sink_free(&s1);
    sink_free(&s2);
    sink_free(&ss);
    itest_close(slow);
    itest_close(g1);
    itest_close(g2);
    itest_close(feedfd);
    itest_close(obs);
    stop_ok(&d);
}

/* With the hard limit out of reach (64 MB), a stalled subscriber is dropped by
 * the soft limit (32 KB for 1 s): not before 1 s over it, but within the 3.5 s
 * of the test (its kernel buffer fills within ~1 s), with an Error
 * SLOW_SUBSCRIBER; the subscriber that reads gets every prediction in order. */
static void stalled_subscriber_dropped_by_soft_limit(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "soft"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start_with_config(&d, dir,
                      "{\"limits\": {\"subscriber_hard_limit_bytes\": 67108864,"
                      " \"subscriber_soft_limit_bytes\": 32768,"
                      " \"subscriber_soft_limit_seconds\": 1}}\n", NULL);
    int obs = itest_connect(&d), feedfd = itest_connect(&d), good = itest_connect(&d), slow = itest_connect(&d);
    open_ok(feedfd, 1, "soft", "m", 0);
    subscribe_ok(good, 2, "soft");
    subscribe_ok(slow, 3, "soft");
    size_t len;
    uint8_t *fr = binned_frame("soft", input, NBINS, &len);
    sink sg;
    sink_init(&sg, good, "soft", NULL);
    double t0 = now_s();
    int sent = 0;
    uint64_t dropped_early = 0;
    while (now_s() - t0 < 3.5) {
        if (now_s() - t0 >= 0.1 * sent) { /* 1000 predictions every 100 ms */
            assert_int_equal(itest_send_raw(feedfd, fr, len), 0);
            sent++;
        }
        if (sent == 6) { /* 0.5 s: over the soft limit for less than 1 s */
            Snnd__V1__Envelope *e = stats(obs);
            dropped_early = e->stats->server->subscribers_dropped;
            snnd__v1__envelope__free_unpacked(e, NULL);
            sent++;
        }
        struct pollfd p = {.fd = good, .events = POLLIN};
        poll(&p, 1, 10);
        sink_pump(&sg);
    }
    free(fr);
    int frames = sent - 1;
    assert_int_equal(itest_close_stream(feedfd, 4, "soft"), 0);
    for (double t = now_s(); !sg.closed && now_s() - t < 10;) {
        struct pollfd p = {.fd = good, .events = POLLIN};
        poll(&p, 1, 50);
        sink_pump(&sg);
    }
    assert_true(sg.closed);
    assert_int_equal(sg.n, (uint64_t)frames * NBINS);
    assert_false(sg.out_of_order || sg.slow_error);
    assert_int_equal(dropped_early, 0);
    /* the stalled one: predictions in order, then the Error, then EOF */
    sink ss;
    sink_init(&ss, slow, "soft", NULL);
    for (double t = now_s(); !ss.eof && now_s() - t < 10;) {
        struct pollfd p = {.fd = slow, .events = POLLIN};
        poll(&p, 1, 100);
        sink_pump(&ss);
    }
    printf("# soft limit: stalled subscriber got %llu of %d predictions, SLOW_SUBSCRIBER %d\n",
           (unsigned long long)ss.n, frames * NBINS, ss.slow_error);
    assert_true(ss.eof);
    assert_true(ss.slow_error);
    assert_false(ss.out_of_order);
    assert_true(ss.n < (uint64_t)frames * NBINS);
    Snnd__V1__Envelope *e = stats(obs);
    assert_int_equal(e->stats->server->subscribers_dropped, 1);
    snnd__v1__envelope__free_unpacked(e, NULL);
    sink_free(&sg);
    sink_free(&ss);
    itest_close(obs);
    itest_close(feedfd);
    itest_close(good);
    itest_close(slow);
    stop_ok(&d);
}

/* A stream's owner that subscribes to its own stream, keeps sending and reads
 * nothing is dropped like any stalled subscriber, and from then on none of its
 * input is taken (the 200 frames it tries to send are far more than the
 * daemon may have queued when it was dropped); being the owner, its stream
 * then finishes: the other subscriber got every prediction in order and a
 * StreamClosed counting exactly those steps; the daemon is back to its
 * baseline counts. */
static void stalled_owner_subscriber_is_dropped_and_its_stream_finishes(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "own"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start_with_config(&d, dir,
                      "{\"limits\": {\"subscriber_hard_limit_bytes\": 65536,"
                      " \"subscriber_soft_limit_bytes\": 32768,"
                      " \"input_queue_bytes\": 262144}}\n", NULL);
    int obs = itest_connect(&d), own = itest_connect(&d), good = itest_connect(&d);
    open_ok(own, 1, "self", "m", 1);
    subscribe_ok(good, 2, "self");
    size_t len;
    uint8_t *fr = binned_frame("self", input, NBINS, &len);
    feeder f = {.fd = own, .frame = fr, .len = len, .reps_left = 200};
    sink sg;
    sink_init(&sg, good, "self", NULL);
    double t0 = now_s();
    while (!sg.closed && !sg.eof && now_s() - t0 < 20) {
        struct pollfd p[2] = {{.fd = own, .events = f.reps_left && !f.broken ? POLLOUT : 0},
                              {.fd = good, .events = POLLIN}};
        poll(p, 2, 50);
        feeder_pump(&f);
        sink_pump(&sg);
    }
    free(fr);
    printf("# stalled owner: other subscriber got %llu predictions, StreamClosed %d (steps %llu); %llu of 200 frames "
           "sent\n",
           (unsigned long long)sg.n, sg.closed, (unsigned long long)sg.closed_steps,
           (unsigned long long)(200 - f.reps_left));
    assert_true(sg.closed);
    assert_false(sg.out_of_order || sg.slow_error || sg.eof);
    assert_int_equal(sg.closed_steps, sg.n);
    assert_true(sg.n > 0 && sg.n < 200 * NBINS);
    sink so;
    sink_init(&so, own, "self", NULL);
    for (double t = now_s(); !so.eof && now_s() - t < 10;) {
        struct pollfd p = {.fd = own, .events = POLLIN};
        poll(&p, 1, 100);
        sink_pump(&so);
    }
    /* (The Error itself is lost when the 5 s flush deadline closes it.) */
    assert_true(so.eof);
    assert_false(so.out_of_order);
    wait_counts(obs, 2, 0);
    Snnd__V1__Envelope *e = stats(obs);
    assert_int_equal(e->stats->server->subscribers_dropped, 1);
    snnd__v1__envelope__free_unpacked(e, NULL);
    sink_free(&sg);
    sink_free(&so);
    itest_close(own);
    itest_close(good);
    itest_close(obs);
    stop_ok(&d);
}

/* ---- 3. a model file truncated or swapped under open streams -------------- */

static int has_model(int fd, const char *name)
{
    Snnd__V1__Hello h = SNND__V1__HELLO__INIT;
    h.protocol_version = 1;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 77;
    env.msg_case = SNND__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    assert_int_equal(itest_send(fd, &env), 0);
    Snnd__V1__Envelope *w = must_recv(fd, SNND__V1__ENVELOPE__MSG_WELCOME);
    int n = 0;
    for (size_t i = 0; i < w->welcome->n_models; i++)
        n += !strcmp(w->welcome->models[i]->name, name);
    snnd__v1__envelope__free_unpacked(w, NULL);
    return n;
}

/* A stream keeps the model it opened (bit-identical to the offline run of the
 * original file) while the file is truncated and then replaced twice; opening
 * the truncated file is a MODEL_ERROR naming it, and it is not listed; a
 * replacement (by rename, or rewritten in place with the same size) is what
 * new opens use. A file already truncated at start-up is skipped the same way. */
static void model_file_truncated_or_swapped(void **u)
{
    (void)u;
    char dir[128], path[256], tmp[256];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "swap"), 0);
    put_model(dir, "m", SEED1);
    put_model(dir, "bad", SEED1); /* truncated before the daemon starts */
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    assert_int_equal(truncate(path, 100), 0);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    itest_daemon d;
    start(&d, dir, NULL);
    int a = itest_connect(&d), b = itest_connect(&d);
    assert_int_equal(has_model(b, "bad"), 0);
    assert_int_equal(itest_open(b, 8, "b0", "bad", 0), 0);
    expect_error(b, SNND__V1__ERROR_CODE__MODEL_ERROR, "bad.safetensors", NULL);
    open_ok(a, 1, "old", "m", 1);
    static series s_old, s_new2, s_new3, off1, off2, off3;
    series_init(&s_old, NBINS);
    feed(a, "old", 0, 400, 50);
    recv_preds(a, "old", 0, 400, &s_old);

    /* Truncated: new opens fail with a clear error; the model is not listed. */
    assert_int_equal(truncate(path, 5000), 0);
    assert_int_equal(itest_open(b, 2, "new1", "m", 1), 0);
    expect_error(b, SNND__V1__ERROR_CODE__MODEL_ERROR, "m.safetensors", "truncated");
    assert_int_equal(has_model(b, "m"), 0);
    feed(a, "old", 400, 600, 50);
    recv_preds(a, "old", 400, 200, &s_old);

    /* Swapped by rename: new opens use the new file. */
    snprintf(tmp, sizeof tmp, "%s/.m.tmp", dir);
    char src[512];
    assert_int_equal(itest_copy_file(zoo_path(SEED2, src, sizeof src), tmp), 0);
    assert_int_equal(rename(tmp, path), 0);
    open_ok(b, 3, "new2", "m", 1);
    assert_int_equal(has_model(b, "m"), 1);
    feed(b, "new2", 0, NBINS, 100);
    assert_int_equal(itest_close_stream(b, 4, "new2"), 0);
    series_init(&s_new2, NBINS);
    assert_int_equal(recv_until_closed(b, "new2", &s_new2), NBINS);

    /* Rewritten in place (same inode, same size): new opens use it too. */
    usleep(20000); /* a later mtime than the rename's file */
    assert_int_equal(itest_copy_file(zoo_path(SEED3, src, sizeof src), path), 0);
    open_ok(b, 5, "new3", "m", 1);
    feed(b, "new3", 0, NBINS, 100);
    assert_int_equal(itest_close_stream(b, 6, "new3"), 0);
    series_init(&s_new3, NBINS);
    assert_int_equal(recv_until_closed(b, "new3", &s_new3), NBINS);

    /* The old stream still runs the original model. */
    feed(a, "old", 600, NBINS, 50);
    assert_int_equal(itest_close_stream(a, 7, "old"), 0);
    assert_int_equal(recv_until_closed(a, "old", &s_old), NBINS);

    offline(SEED1, 1, &off1);
    offline(SEED2, 1, &off2);
    offline(SEED3, 1, &off3);
    assert_memory_not_equal(off1.v, off2.v, NBINS * sizeof *off1.v); /* the seeds differ */
    assert_memory_not_equal(off2.v, off3.v, NBINS * sizeof *off1.v);
    assert_memory_equal(s_old.v, off1.v, NBINS * sizeof *off1.v);
    assert_memory_equal(s_new2.v, off2.v, NBINS * sizeof *off2.v);
    assert_memory_equal(s_new3.v, off3.v, NBINS * sizeof *off3.v);
    itest_close(a);
    itest_close(b);
    stop_ok(&d);
    series_free(&s_old);
    series_free(&s_new2);
    series_free(&s_new3);
    series_free(&off1);
    series_free(&off2);
    series_free(&off3);
}

/* ---- 4. SIGHUP ------------------------------------------------------------ */

/* Occurrences of `what` in the daemon's log. */
static int log_count(const itest_daemon *d, const char *what)
{
    size_t len;
    char *t = snn_test_read_file(d->log, &len);
    int n = 0;
    for (char *p = t; p && (p = strstr(p, what)); p++)
        n++;
    free(t);
    return n;
}

/* Sends SIGHUP and waits (up to 5 s) until the daemon logs its reload. */
static void sighup(const itest_daemon *d)
{
    int before = log_count(d, "SIGHUP: reloaded");
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    for (int i = 0; i < 500 && log_count(d, "SIGHUP: reloaded") == before; i++)
        usleep(10000);
    assert_int_equal(log_count(d, "SIGHUP: reloaded"), before + 1);
}

/* SIGHUP keeps the open stream streaming (contiguous steps, bit-identical to
 * the offline run), lists a model added to the --models directory, and applies
 * a lowered max_frame_bytes to later frames, on new and existing connections;
 * a configuration that does not load leaves the running one in force. */
static void sighup_reloads_without_dropping_streams(void **u)
{
    (void)u;
    char dir[128], cfgp[256];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "hup"), 0);
    put_model(dir, "m", SEED1);
    snprintf(cfgp, sizeof cfgp, "%s/snnd.json", dir); /* rewritten below */
    itest_daemon d;
    start_with_config(&d, dir,
                      "{\"limits\": {\"max_frame_bytes\": 1048576}}\n", NULL);
    int a = itest_connect(&d), idle = itest_connect(&d);
    failures[0] = 0;
    open_ok(a, 1, "h", "m", 1);
    static series got, off;
    series_init(&got, NBINS);
    feed(a, "h", 0, 300, 20); /* 20 bins: a 7.7 KB frame */
    recv_preds(a, "h", 0, 300, &got);
    assert_int_equal(has_model(idle, "added"), 0);

    put_model(dir, "added", SEED2);
    assert_int_equal(itest_write_text(cfgp, "{\"limits\": {\"max_frame_bytes\": 4096}}\n"), 0);
    sighup(&d);

    /* The stream continues: 10-bin frames (3.9 KB) are under the new limit. */
    feed(a, "h", 300, 600, 10);
    recv_preds(a, "h", 300, 300, &got);

    /* The models listed are the --models directory's, with the added one. */
    int c = itest_connect(&d);
    int n_added = has_model(c, "added"), n_m = has_model(c, "m"), n_zoo = has_model(c, SEED1);
    if (n_added != 1 || n_m != 1 || n_zoo != 0)
        soft_fail("after SIGHUP Welcome lists \"added\" %d times, \"m\" %d times, zoo's %s %d times; expected 1, 1, "
                  "0 (the --models directory %s)", n_added, n_m, SEED1, n_zoo, dir);

    /* A 7.7 KB frame on a new connection is refused by the new limit. */
    assert_int_equal(itest_binned(c, "h", input, NCH, 20), 0);
    check_error(c, "7.7 KB frame on a connection opened after SIGHUP", SNND__V1__ERROR_CODE__BAD_FRAME,
                "max_frame_bytes (4096)");
    itest_close(c);

    feed(a, "h", 600, NBINS, 10);
    assert_int_equal(itest_close_stream(a, 2, "h"), 0);
    assert_int_equal(recv_until_closed(a, "h", &got), NBINS);
    offline(SEED1, 1, &off);
    assert_memory_equal(got.v, off.v, NBINS * sizeof *off.v);

    /* ... and on a connection that was open before SIGHUP. */
    assert_int_equal(itest_binned(idle, "h", input, NCH, 20), 0);
    check_error(idle, "7.7 KB frame on a connection opened before SIGHUP", SNND__V1__ERROR_CODE__BAD_FRAME,
                "max_frame_bytes (4096)");
    itest_close(idle);

    /* A configuration that no longer loads: SIGHUP keeps the running one. */
    assert_int_equal(itest_write_text(cfgp, "{\"limits\": {\"max_frame_bytes\": \"big\"}}\n"), 0);
    sighup(&d);
    c = itest_connect(&d);
    assert_true(c >= 0);
    assert_int_equal(itest_binned(c, "h", input, NCH, 20), 0);
    check_error(c, "7.7 KB frame after a SIGHUP with a bad configuration", SNND__V1__ERROR_CODE__BAD_FRAME,
                "max_frame_bytes (4096)");
    itest_close(c);
    itest_close(a);
    stop_ok(&d);
    series_free(&got);
    series_free(&off);
    if (failures[0])
        fail_msg("SIGHUP:%s", failures);
}

/* ---- 5. the worker pool saturated ----------------------------------------- */

/* One worker, 8 connections each feeding its own stream 65 frames of 1000
 * bins (384 KB; 200 MB in all, 520 000 steps) as fast as the sockets take
 * them. Compute is the bottleneck, so the daemon must push back: each
 * sender's socket fills (sends refused with EAGAIN), the input the daemon has
 * taken but not computed stays under 8 x (input_queue_bytes 1 MB + one 384 KB
 * frame + one 64 KB read + ~0.5 MB of socket buffer) < 24 MB, stats
 * queued_steps (queued input messages) under 8 x (1 MB / 384 KB + 3) = 48,
 * and RSS under 48 MB over its start (what is queued, twice: frame bytes and
 * unpacked floats, plus slack) while 200 MB pass through. Every prediction
 * arrives in order; stream 0's are bit-identical to the offline run. */
static void saturated_pool_pushes_back(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "sat"), 0);
    put_model(dir, "m", SEED1);
    const char *workers[] = {"--workers", "1", NULL};
    itest_daemon d;
    start_with_config(&d, dir, "{\"limits\": {\"input_queue_bytes\": 1048576}}\n", workers);
    enum { NS = 8, REPS = 65 };
    int obs = itest_connect(&d);
    int fds[NS];
    char ids[NS][16];
    uint8_t *frames[NS];
    feeder f[NS];
    sink s[NS];
    static series keep, off;
    series_init(&keep, (size_t)REPS * NBINS);
    for (int i = 0; i < NS; i++) {
        fds[i] = itest_connect(&d);
        snprintf(ids[i], sizeof ids[i], "sat%d", i);
        open_ok(fds[i], 1, ids[i], "m", 1);
        size_t len;
        frames[i] = binned_frame(ids[i], input, NBINS, &len);
        f[i] = (feeder){.fd = fds[i], .frame = frames[i], .len = len, .reps_left = REPS};
        sink_init(&s[i], fds[i], ids[i], i == 0 ? &keep : NULL);
    }
    const double frame_bytes = (double)f[0].len;
    long rss0 = itest_rss_kb(d.pid), rss_max = rss0;
    uint32_t queued_max = 0;
    double backlog_max = 0;
    double t0 = now_s(), last = 0;
    int done = 0;
    while (!done && now_s() - t0 < 60) {
        struct pollfd p[NS];
        for (int i = 0; i < NS; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN | (f[i].reps_left ? POLLOUT : 0)};
        poll(p, NS, 50);
        done = 1;
        uint64_t sent = 0;
        for (int i = 0; i < NS; i++) {
            feeder_pump(&f[i]);
            sink_pump(&s[i]);
            assert_false(s[i].eof);
            sent += f[i].sent;
            done &= s[i].n == (uint64_t)REPS * NBINS;
        }
        if (now_s() - last > 0.1) {
            last = now_s();
            Snnd__V1__Envelope *e = stats(obs);
            Snnd__V1__ServerStats *ss = e->stats->server;
            if (ss->queued_steps > queued_max)
                queued_max = ss->queued_steps;
            /* bytes taken by the kernel or the daemon but not yet computed */
            double backlog = (double)sent - (double)ss->steps * frame_bytes / NBINS;
            if (backlog > backlog_max)
                backlog_max = backlog;
            snnd__v1__envelope__free_unpacked(e, NULL);
            long r = itest_rss_kb(d.pid);
            if (r > rss_max)
                rss_max = r;
        }
    }
    double dt = now_s() - t0;
    uint64_t blocked_min = UINT64_MAX, sent_all = 0;
    for (int i = 0; i < NS; i++) {
        if (f[i].blocked < blocked_min)
            blocked_min = f[i].blocked;
        sent_all += f[i].sent;
    }
    printf("# %.0f MB, %d steps on 1 worker in %.1f s; max backlog %.1f MB, max queued_steps %u, VmRSS %ld -> max "
           "%ld KiB; fewest EAGAIN per sender %llu\n",
           (double)sent_all / 1e6, NS * REPS * NBINS, dt, backlog_max / 1e6, queued_max, rss0, rss_max,
           (unsigned long long)blocked_min);
    for (int i = 0; i < NS; i++) {
        if (s[i].n != (uint64_t)REPS * NBINS)
            fail_msg("stream %s: %llu of %d predictions", ids[i], (unsigned long long)s[i].n, REPS * NBINS);
        assert_false(s[i].out_of_order);
        assert_int_equal(s[i].other_errors + s[i].slow_error, 0);
    }
    assert_true(blocked_min > 0);
    assert_true(backlog_max < 24e6);
    assert_true(queued_max <= 48);
    assert_true(!RSS_BOUNDS || rss_max - rss0 < 48 * 1024);
    offline(SEED1, REPS, &off);
    assert_memory_equal(keep.v, off.v, (size_t)REPS * NBINS * sizeof *off.v);
    for (int i = 0; i < NS; i++) {
        sink_free(&s[i]);
        free(frames[i]);
        itest_close(fds[i]);
    }
    itest_close(obs);
    stop_ok(&d);
    series_free(&keep);
    series_free(&off);
}

static void open_ex(int fd, uint32_t id, const char *stream, int kind, const char *opt_key, const char *opt_val)
{
    Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
    o.stream_id = (char *)stream;
    o.model = "m";
    o.input_kind = (Snnd__V1__InputKind)kind;
    Snnd__V1__OpenStream__OptionsEntry kv = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT, *kvp = &kv;
    if (opt_key) {
        kv.key = (char *)opt_key;
        kv.value = (char *)opt_val;
        o.n_options = 1;
        o.options = &kvp;
    }
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &o;
    assert_int_equal(itest_send(fd, &env), 0);
}

static void spikes(int fd, const char *stream, const uint32_t *ch, size_t n_ch, const uint64_t *t, size_t n_t)
{
    Snnd__V1__SpikeEvents s = SNND__V1__SPIKE_EVENTS__INIT;
    s.stream_id = (char *)stream;
    s.n_channel = n_ch;
    s.channel = (uint32_t *)ch;
    s.n_t_us = n_t;
    s.t_us = (uint64_t *)t;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SPIKE_EVENTS;
    env.spike_events = &s;
    assert_int_equal(itest_send(fd, &env), 0);
}

/* SIGTERM while 4 senders keep a single worker saturated: every stream
 * finishes the input the daemon had taken (each subscriber's predictions are
 * contiguous and its StreamClosed counts exactly the steps it received), and
 * snnd exits 0 within its 5 s grace period. */
static void sigterm_under_load_finishes_every_stream(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "term"), 0);
    put_model(dir, "m", SEED1);
    const char *extra[] = {"--workers", "1", NULL};
    itest_daemon d;
    start(&d, dir, extra);
    enum { NS = 4 };
    int fds[NS];
    char ids[NS][16];
    uint8_t *frames[NS];
    feeder f[NS];
    sink s[NS];
    for (int i = 0; i < NS; i++) {
        fds[i] = itest_connect(&d);
        snprintf(ids[i], sizeof ids[i], "t%d", i);
        open_ok(fds[i], 1, ids[i], "m", 1);
        size_t len;
        frames[i] = binned_frame(ids[i], input, NBINS, &len);
        f[i] = (feeder){.fd = fds[i], .frame = frames[i], .len = len, .reps_left = 1000};
        sink_init(&s[i], fds[i], ids[i], NULL);
    }
    double t0 = now_s(), t_term = 0;
    int all_eof = 0;
    while (!all_eof && now_s() - t0 < 20) {
        struct pollfd p[NS];
        for (int i = 0; i < NS; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN | (f[i].reps_left && !f[i].broken ? POLLOUT : 0)};
        poll(p, NS, 50);
        all_eof = 1;
        for (int i = 0; i < NS; i++) {
            feeder_pump(&f[i]);
            sink_pump(&s[i]);
            all_eof &= s[i].eof;
        }
        if (!t_term && now_s() - t0 > 0.5) {
            t_term = now_s();
            assert_int_equal(kill(d.pid, SIGTERM), 0);
        }
    }
    double t_eof = now_s() - t_term;
    for (int i = 0; i < NS; i++)
        itest_close(fds[i]); /* snnd reads until its peers close (or its grace period ends) */
    live = NULL;
    int status = itest_stop(&d, 0);
    double t_exit = now_s() - t_term;
    printf("# SIGTERM under load: every connection at EOF %.2f s after it, snnd exited after %.2f s with status %d\n",
           t_eof, t_exit, status);
    for (int i = 0; i < NS; i++) {
        printf("#   %s: %llu predictions, StreamClosed %d with %llu steps\n", ids[i], (unsigned long long)s[i].n,
               s[i].closed, (unsigned long long)s[i].closed_steps);
        assert_true(s[i].closed);
        assert_false(s[i].out_of_order || s[i].slow_error);
        assert_int_equal(s[i].closed_steps, s[i].n);
        assert_true(s[i].n > 0);
        sink_free(&s[i]);
        free(frames[i]);
    }
    assert_int_equal(status, 0);
    assert_true(t_exit < 4.5); /* well before the 5 s grace period forces it */
}

/* SIGTERM while a subscriber's output is still queued in the daemon (600 KB
 * of predictions it has not read yet), and its client sends one more frame:
 * the client still receives every prediction and its StreamClosed before
 * EOF. (The late frame must not make the daemon write after it has shut the
 * connection's sending side and so discard what was queued.) */
static void sigterm_late_frame_keeps_queued_output(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "late"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start(&d, dir, NULL);
    int obs = itest_connect(&d), c = itest_connect(&d);
    open_ok(c, 1, "late", "m", 1);
    for (int i = 0; i < 20; i++)
        feed(c, "late", 0, NBINS, NBINS);
    uint64_t steps = 0;
    for (int i = 0; i < 500 && steps < 20 * NBINS; i++) {
        Snnd__V1__Envelope *e = stats(obs);
        steps = e->stats->server->steps;
        snnd__v1__envelope__free_unpacked(e, NULL);
        if (steps < 20 * NBINS)
            usleep(10000);
    }
    assert_int_equal(steps, 20 * NBINS);
    assert_int_equal(kill(d.pid, SIGTERM), 0);
    for (int i = 0; i < 500 && !log_count(&d, "close stream late"); i++)
        usleep(10000);
    assert_int_equal(log_count(&d, "close stream late"), 1);
    usleep(50000);
    feed(c, "late", 0, 1, 1); /* one late frame */
    uint64_t n = 0;
    int closed = 0;
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(c, T_MS);
        if (!e)
            break;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION) {
            if (e->prediction->step != n)
                fail_msg("step %llu where %llu was due", (unsigned long long)e->prediction->step,
                         (unsigned long long)n);
            n++;
        } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED) {
            closed = 1;
            assert_int_equal(e->stream_closed->steps, 20 * NBINS);
        }
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
    printf("# after SIGTERM and a late frame: %llu of %d predictions, StreamClosed %d, EOF %d\n",
           (unsigned long long)n, 20 * NBINS, closed, itest_last_eof());
    assert_true(itest_last_eof());
    assert_int_equal(n, 20 * NBINS);
    assert_true(closed);
    itest_close(c);
    itest_close(obs);
    live = NULL;
    assert_int_equal(itest_stop(&d, 0), 0);
}

/* ---- 5b. one message that closes a very long gap --------------------------- */

/* A sensor silent for 53 minutes, then one Flush: 800 000 empty bins are
 * stepped by that single 20-byte message, ~24 MB of predictions. Subscribers
 * that read promptly must get every one in order and must not be dropped as
 * slow (their 8 MB output limit is not theirs to blame), and the daemon must
 * not hold the whole burst: RSS may grow by at most the two subscribers'
 * output limits plus 8 MB of working buffers (24 MB), not by the burst's
 * size several times over. */
static void long_gap_flush_streams_without_dropping(void **u)
{
    (void)u;
    char dir[128];
    failures[0] = 0;
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "gap"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start(&d, dir, NULL);
    int x = itest_connect(&d), g = itest_connect(&d);
    open_ex(x, 1, "gap", SNND__V1__INPUT_KIND__INPUT_SPIKES, NULL, NULL);
    Snnd__V1__Envelope *e = must_recv(x, SNND__V1__ENVELOPE__MSG_STREAM_OPENED);
    assert_int_equal(e->stream_opened->bin_width_us, 4000);
    snnd__v1__envelope__free_unpacked(e, NULL);
    subscribe_ok(g, 2, "gap");
    subscribe_ok(x, 3, "gap");
    long rss0 = itest_rss_kb(d.pid), rss_max = rss0;
    enum { BINS = 800000 };
    const uint32_t ch[] = {3};
    const uint64_t t[] = {0};
    spikes(x, "gap", ch, 1, t, 1);
    Snnd__V1__Flush fl = SNND__V1__FLUSH__INIT;
    fl.stream_id = "gap";
    fl.t_us = (uint64_t)BINS * 4000;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_FLUSH;
    env.flush = &fl;
    assert_int_equal(itest_send(x, &env), 0);
    sink sx, sg;
    sink_init(&sx, x, "gap", NULL);
    sink_init(&sg, g, "gap", NULL);
    double t0 = now_s(), last = 0;
    while (((sx.n < BINS && !sx.eof) || (sg.n < BINS && !sg.eof)) && now_s() - t0 < 60) {
        struct pollfd p[2] = {{.fd = x, .events = POLLIN}, {.fd = g, .events = POLLIN}};
        poll(p, 2, 50);
        sink_pump(&sx);
        sink_pump(&sg);
        if (now_s() - last > 0.02) {
            last = now_s();
            long r = itest_rss_kb(d.pid);
            if (r > rss_max)
                rss_max = r;
        }
    }
    printf("# one Flush over %d bins: subscribers got %llu and %llu predictions (slow-subscriber errors %d, %d) in "
           "%.1f s; VmRSS %ld -> max %ld KiB\n",
           BINS, (unsigned long long)sx.n, (unsigned long long)sg.n, sx.slow_error, sg.slow_error, now_s() - t0,
           rss0, rss_max);
    if (sx.slow_error || sg.slow_error || sx.eof || sg.eof)
        soft_fail("subscribers reading promptly were dropped (SLOW_SUBSCRIBER %d %d, eof %d %d)", sx.slow_error,
                  sg.slow_error, sx.eof, sg.eof);
    if (sx.n != BINS || sg.n != BINS || sx.out_of_order || sg.out_of_order)
        soft_fail("subscribers got %llu and %llu of %d predictions (out of order: %d %d)", (unsigned long long)sx.n,
                  (unsigned long long)sg.n, BINS, sx.out_of_order, sg.out_of_order);
    if (RSS_BOUNDS && rss_max - rss0 >= 24 * 1024)
        soft_fail("daemon RSS grew by %ld KiB for one message (bound 24576 KiB)", rss_max - rss0);
    sink_free(&sx);
    sink_free(&sg);
    itest_close(x);
    itest_close(g);
    stop_ok(&d);
    if (failures[0])
        fail_msg("long gap:%s", failures);
}

/* ---- 6. bad input of every kind on one connection ------------------------- */

/* Each bad message on connection X gets its own named Error; X's own good
 * stream is not changed by the rejected messages; and stream "g" on another
 * connection, fed between the bad messages, is bit-identical to offline. */
static void bad_input_does_not_touch_other_streams(void **u)
{
    (void)u;
    char dir[128];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "bad"), 0);
    put_model(dir, "m", SEED1);
    itest_daemon d;
    start(&d, dir, NULL);
    int g = itest_connect(&d), x = itest_connect(&d);
    open_ok(g, 1, "g", "m", 1);
    open_ex(x, 2, "xs", SNND__V1__INPUT_KIND__INPUT_SPIKES, NULL, NULL);
    Snnd__V1__Envelope *e = must_recv(x, SNND__V1__ENVELOPE__MSG_STREAM_OPENED);
    snnd__v1__envelope__free_unpacked(e, NULL);
    open_ok(x, 3, "xb", "m", 0);
    failures[0] = 0;
    size_t k = 0;
#define NEXT_G() (feed(g, "g", k, k + 100, 50), k += 100)

    NEXT_G();
    const uint32_t ch3[] = {1, 2, 3};
    const uint64_t t2[] = {100000, 100000};
    spikes(x, "xs", ch3, 3, t2, 2);
    check_error(x, "spike_events with 3 channels, 2 t_us", SNND__V1__ERROR_CODE__BAD_SHAPE, "3 channels but 2");

    NEXT_G();
    const uint64_t t3[] = {100000, 100000, 104000};
    spikes(x, "xs", ch3, 3, t3, 3); /* good: opens bins at 100 ms */
    const uint64_t back[] = {50000, 50000, 50000};
    spikes(x, "xs", ch3, 3, back, 3);
    check_error(x, "spike_events going back in time", SNND__V1__ERROR_CODE__BAD_TIME, "t_us");

    NEXT_G();
    static float nan_counts[2 * NCH];
    nan_counts[NCH + 5] = NAN;
    assert_int_equal(itest_binned(x, "xb", nan_counts, NCH, 2), 0);
    check_error(x, "binned_counts with a NaN", SNND__V1__ERROR_CODE__BAD_REQUEST, "not a finite number");

    NEXT_G();
    open_ex(x, 4, "xk", 9, NULL, NULL);
    check_error(x, "open_stream input_kind 9", SNND__V1__ERROR_CODE__BAD_REQUEST, "input_kind 9");

    NEXT_G();
    const uint8_t unknown_field[] = {0x05, 0x08, 0x09, 0xea, 0x02, 0x00}; /* id 9, field 45: nothing known */
    assert_int_equal(itest_send_raw(x, unknown_field, sizeof unknown_field), 0);
    check_error(x, "envelope with an unknown message", SNND__V1__ERROR_CODE__BAD_REQUEST, "no message");

    NEXT_G();
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = 0;
    open_ex(x, 5, id65, 0, NULL, NULL);
    check_error(x, "open_stream with a 65-character stream_id", SNND__V1__ERROR_CODE__BAD_REQUEST, "stream_id");

    NEXT_G();
    open_ex(x, 6, "xo", 0, "frobnicate", "1");
    check_error(x, "open_stream with option frobnicate", SNND__V1__ERROR_CODE__BAD_REQUEST, "frobnicate");

    NEXT_G();
    Snnd__V1__Flush fl = SNND__V1__FLUSH__INIT;
    fl.stream_id = "nosuch";
    fl.t_us = 1000;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 7;
    env.msg_case = SNND__V1__ENVELOPE__MSG_FLUSH;
    env.flush = &fl;
    assert_int_equal(itest_send(x, &env), 0);
    check_error(x, "flush of an unknown stream", SNND__V1__ERROR_CODE__UNKNOWN_STREAM, "nosuch");

    NEXT_G();
    assert_int_equal(itest_binned(x, "xs", input, NCH - 1, 1), 0);
    check_error(x, "binned_counts with 95 channels", SNND__V1__ERROR_CODE__BAD_SHAPE, "n_channels = 95");
    NEXT_G();
    feed(g, "g", k, NBINS, 50);
#undef NEXT_G

    /* X's streams were not changed by what was rejected: "xs" has exactly the
     * bins of its one good message (100 ms and 104 ms: 2 steps once flushed),
     * "xb" none. */
    assert_int_equal(itest_close_stream(x, 8, "xs"), 0);
    static series xs;
    series_init(&xs, 16);
    uint64_t xs_steps = recv_until_closed(x, "xs", &xs);
    assert_int_equal(itest_close_stream(x, 9, "xb"), 0);
    e = itest_expect(x, SNND__V1__ENVELOPE__MSG_STREAM_CLOSED, T_MS);
    assert_non_null(e);
    uint64_t xb_steps = e->stream_closed->steps;
    snnd__v1__envelope__free_unpacked(e, NULL);

    assert_int_equal(itest_close_stream(g, 10, "g"), 0);
    static series got, off;
    series_init(&got, NBINS);
    assert_int_equal(recv_until_closed(g, "g", &got), NBINS);
    offline(SEED1, 1, &off);
    assert_memory_equal(got.v, off.v, NBINS * sizeof *off.v);
    if (xs_steps != 2 || xb_steps != 0)
        soft_fail("rejected input changed a stream: xs %llu steps (2 due), xb %llu (0 due)",
                  (unsigned long long)xs_steps, (unsigned long long)xb_steps);
    itest_close(g);
    itest_close(x);
    stop_ok(&d);
    series_free(&xs);
    series_free(&got);
    series_free(&off);
    if (failures[0])
        fail_msg("wrong answers to bad input:%s", failures);
}

/* ---- 7. SIGKILL during a model save --------------------------------------- */

/* A trainable model (LIF, direct timing) with random weights, big enough
 * (200 inputs, 300 hidden neurons: ~0.6 MB) that a save takes a while. */
static void make_learner(const char *path)
{
    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = 200;
    p.n_rec = 300;
    p.n_out = 2;
    p.dt = 1.0;
    p.tau_m = 20;
    p.tau_out = 20;
    p.v_th = 0.03;
    p.loss = SNN_EPROP_MSE;
    double *w_in = calloc(300 * 200, sizeof *w_in), *w_rec = calloc(300 * 300, sizeof *w_rec),
           *w_out = calloc(2 * 300, sizeof *w_out);
    assert_true(w_in && w_rec && w_out);
    uint32_t r = 11;
    for (int i = 0; i < 300 * 200; i++, r = r * 1664525u + 1013904223u)
        w_in[i] = ((double)(r >> 8) / 16777216.0 - 0.5) * 0.2;
    for (int i = 0; i < 300 * 300; i++, r = r * 1664525u + 1013904223u)
        w_rec[i] = (i % 301) ? ((double)(r >> 8) / 16777216.0 - 0.5) * 0.05 : 0;
    for (int i = 0; i < 2 * 300; i++, r = r * 1664525u + 1013904223u)
        w_out[i] = ((double)(r >> 8) / 16777216.0 - 0.5) * 0.1;
    snn_err e;
    if (snn_rsnn_eprop_create(path, "learner", &p, w_in, w_rec, w_out, &e) < 0)
        fail_msg("create %s: %s", path, e.msg);
    free(w_in);
    free(w_rec);
    free(w_out);
}

/* Names in dir (not . and ..) containing `part`. */
static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strstr(de->d_name, part);
    if (d)
        closedir(d);
    return n;
}

/* Six times: a learning stream is asked for 40 saves of model "saved" back to
 * back and snnd is SIGKILLed 10 to 60 ms later, mid-way through them. After
 * each kill, saved.safetensors is absent or a complete model that loads (the
 * save is atomic: temporary file, fsync, rename), and a restarted snnd on the
 * same directory lists it once and streams from it. */
static void sigkill_during_save_leaves_old_or_new_model(void **u)
{
    (void)u;
    char dir[128], path[256];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "save"), 0);
    snprintf(path, sizeof path, "%s/learner.safetensors", dir);
    make_learner(path);
    snprintf(path, sizeof path, "%s/saved.safetensors", dir);
    int saved_seen = 0;
    for (int round = 0; round < 6; round++) {
        itest_daemon d;
        start(&d, dir, NULL);
        int fd = itest_connect(&d);
        if (access(path, F_OK) == 0) { /* the last round's file: listed once and usable */
            assert_int_equal(has_model(fd, "saved"), 1);
            open_ok(fd, 1, "use", "saved", 0);
        }
        Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
        o.stream_id = "learner";
        o.model = "learner";
        Snnd__V1__OpenStream__OptionsEntry kv = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT, *kvp = &kv;
        kv.key = "learn";
        kv.value = "eprop";
        o.n_options = 1;
        o.options = &kvp;
        Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
        env.id = 3;
        env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
        env.open_stream = &o;
        assert_int_equal(itest_send(fd, &env), 0);
        Snnd__V1__Envelope *e = must_recv(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED);
        snnd__v1__envelope__free_unpacked(e, NULL);
        Snnd__V1__SaveModel sm = SNND__V1__SAVE_MODEL__INIT;
        sm.stream_id = "learner";
        sm.name = "saved";
        env = (Snnd__V1__Envelope)SNND__V1__ENVELOPE__INIT;
        env.msg_case = SNND__V1__ENVELOPE__MSG_SAVE_MODEL;
        env.save_model = &sm;
        for (int i = 0; i < 40; i++) {
            env.id = 100 + (uint32_t)i;
            assert_int_equal(itest_send(fd, &env), 0);
        }
        usleep(10000 + 10000 * (useconds_t)round);
        live = NULL;
        itest_stop(&d, SIGKILL);
        int n_saved = 0;
        for (Snnd__V1__Envelope *m; (m = itest_recv(fd, 200));) {
            n_saved += m->msg_case == SNND__V1__ENVELOPE__MSG_MODEL_SAVED;
            snnd__v1__envelope__free_unpacked(m, NULL);
        }
        itest_close(fd);
        int exists = access(path, F_OK) == 0;
        printf("# round %d: killed after %d ModelSaved replies; saved.safetensors %s; %d temporary files left\n",
               round, n_saved, exists ? "present" : "absent", count_files(dir, ".tmp"));
        if (exists) {
            snn_model *m;
            snn_err err;
            if (snn_model_load(path, NULL, &m, &err) < 0)
                fail_msg("round %d: %s does not load after SIGKILL: %s", round, path, err.msg);
            assert_int_equal(m->n_in, 200);
            snn_model_free(m);
            saved_seen = 1;
        } else {
            assert_int_equal(n_saved, 0); /* a save that was answered is on disk */
        }
    }
    assert_true(saved_seen);
}

/* Opens a learn=eprop stream on model "learner". */
static void open_learner(int fd, uint32_t id, const char *stream)
{
    Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
    o.stream_id = (char *)stream;
    o.model = "learner";
    Snnd__V1__OpenStream__OptionsEntry kv = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT, *kvp = &kv;
    kv.key = "learn";
    kv.value = "eprop";
    o.n_options = 1;
    o.options = &kvp;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &o;
    assert_int_equal(itest_send(fd, &env), 0);
    Snnd__V1__Envelope *e = must_recv(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

/* Two learning streams, on two workers, save the same model name 30 times
 * each at once: every save is answered ModelSaved (none fails on the other's
 * temporary file), the file loads afterwards, and a third client opening the
 * model meanwhile never gets a half-written file (MODEL_ERROR). */
static void concurrent_saves_of_one_name_do_not_collide(void **u)
{
    (void)u;
    char dir[128], path[256];
    assert_int_equal(itest_mkdtemp(dir, sizeof dir, "save2"), 0);
    snprintf(path, sizeof path, "%s/learner.safetensors", dir);
    make_learner(path);
    const char *extra[] = {"--workers", "2", NULL};
    itest_daemon d;
    start(&d, dir, extra);
    int a = itest_connect(&d), b = itest_connect(&d), r = itest_connect(&d);
    open_learner(a, 1, "la");
    open_learner(b, 2, "lb");
    Snnd__V1__SaveModel sa = SNND__V1__SAVE_MODEL__INIT, sb = SNND__V1__SAVE_MODEL__INIT;
    sa.stream_id = "la";
    sa.name = "shared";
    sb.stream_id = "lb";
    sb.name = "shared";
    Snnd__V1__Envelope ea = SNND__V1__ENVELOPE__INIT, eb = SNND__V1__ENVELOPE__INIT;
    ea.msg_case = eb.msg_case = SNND__V1__ENVELOPE__MSG_SAVE_MODEL;
    ea.save_model = &sa;
    eb.save_model = &sb;
    failures[0] = 0;
    for (int i = 0; i < 30; i++) {
        ea.id = eb.id = 100 + (uint32_t)i;
        assert_int_equal(itest_send(a, &ea), 0);
        assert_int_equal(itest_send(b, &eb), 0);
    }
    int saved[2] = {0, 0}, errors = 0, opens = 0, open_errors = 0;
    int fds[2] = {a, b};
    double t0 = now_s();
    while ((saved[0] + saved[1] + errors < 60) && now_s() - t0 < 30) {
        for (int k = 0; k < 2; k++) {
            Snnd__V1__Envelope *e = itest_recv(fds[k], 5);
            if (!e)
                continue;
            if (e->msg_case == SNND__V1__ENVELOPE__MSG_MODEL_SAVED)
                saved[k]++;
            else if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR) {
                if (errors++ < 3)
                    soft_fail("save from %s: Error %d \"%s\"", k ? "lb" : "la", e->error->code,
                              e->error->message);
            }
            snnd__v1__envelope__free_unpacked(e, NULL);
        }
        { /* meanwhile: open the model being saved */
            char id[32];
            uint32_t oid = 1000 + (uint32_t)opens;
            snprintf(id, sizeof id, "r%d", opens);
            assert_int_equal(itest_open(r, oid, id, "shared", 0), 0);
            Snnd__V1__Envelope *e;
            while ((e = itest_recv(r, T_MS)) && e->id != oid) /* skip earlier closes' replies */
                snnd__v1__envelope__free_unpacked(e, NULL);
            assert_non_null(e);
            if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_OPENED) {
                assert_int_equal(itest_close_stream(r, 5000 + oid, id), 0);
            } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR &&
                       e->error->code != SNND__V1__ERROR_CODE__UNKNOWN_MODEL) { /* not saved yet: fine */
                if (open_errors++ < 3)
                    soft_fail("open of \"shared\" while it is saved: Error %d \"%s\"", e->error->code,
                              e->error->message);
            }
            snnd__v1__envelope__free_unpacked(e, NULL);
            opens++;
        }
    }
    printf("# concurrent saves: %d + %d ModelSaved, %d errors; %d opens meanwhile, %d failed; %d temporary files left\n",
           saved[0], saved[1], errors, opens, open_errors, count_files(dir, ".tmp"));
    snprintf(path, sizeof path, "%s/shared.safetensors", dir);
    snn_model *m;
    snn_err err;
    if (snn_model_load(path, NULL, &m, &err) < 0)
        soft_fail("%s does not load after the saves: %s", path, err.msg);
    else
        snn_model_free(m);
    if (saved[0] + saved[1] != 60)
        soft_fail("%d of 60 saves answered ModelSaved", saved[0] + saved[1]);
    itest_close(a);
    itest_close(b);
    itest_close(r);
    stop_ok(&d);
    if (failures[0])
        fail_msg("concurrent saves:%s", failures);
}

static int setup(void **u)
{
    (void)u;
    make_input();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(disconnect_mid_frame_finishes_its_streams, teardown),
        cmocka_unit_test_teardown(stalled_subscriber_dropped_memory_bounded, teardown),
        cmocka_unit_test_teardown(stalled_subscriber_dropped_by_soft_limit, teardown),
        cmocka_unit_test_teardown(stalled_owner_subscriber_is_dropped_and_its_stream_finishes, teardown),
        cmocka_unit_test_teardown(model_file_truncated_or_swapped, teardown),
        cmocka_unit_test_teardown(sighup_reloads_without_dropping_streams, teardown),
        cmocka_unit_test_teardown(saturated_pool_pushes_back, teardown),
        cmocka_unit_test_teardown(sigterm_under_load_finishes_every_stream, teardown),
        cmocka_unit_test_teardown(sigterm_late_frame_keeps_queued_output, teardown),
        cmocka_unit_test_teardown(long_gap_flush_streams_without_dropping, teardown),
        cmocka_unit_test_teardown(bad_input_does_not_touch_other_streams, teardown),
        cmocka_unit_test_teardown(sigkill_during_save_leaves_old_or_new_model, teardown),
        cmocka_unit_test_teardown(concurrent_saves_of_one_name_do_not_collide, teardown),
    };
    return cmocka_run_group_tests_name("faults", tests, setup, NULL);
}
