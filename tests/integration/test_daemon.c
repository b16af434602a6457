/*
 * test_daemon.c -- a real snnd on a temporary Unix socket, spoken to over raw
 * sockets: streams, subscribers, limits, bad input and shutdown.
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "model.h"
#include "session.h"
#include "testutil.h"

#define MODEL "tinyrsnn-indy01-seed1"
#define NCH 96
#define NBINS 1000

static itest_daemon D;
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

typedef struct { float v[NBINS][2]; uint64_t t[NBINS]; size_t n; } preds;

static void collect(void *ctx, const snn_output *o)
{
    preds *p = ctx;
    if (o->type == SNN_OUT_PREDICTION && p->n < NBINS) {
        p->v[p->n][0] = o->values[0];
        p->v[p->n][1] = o->values[1];
        p->t[p->n++] = (uint64_t)o->t_us;
    }
}

/* The same model and input run offline through a session (what `snn model run` does). */
static void offline(preds *p)
{
    snn_model *m;
    snn_err e;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", snn_test_src("models/zoo"), MODEL);
    assert_int_equal(snn_model_load(path, NULL, &m, &e), 0);
    snn_session *s;
    snn_session_cfg cfg = {.input = SNN_INPUT_BINNED};
    assert_int_equal(snn_session_new(m, &cfg, NULL, &s, &e), 0);
    p->n = 0;
    assert_int_equal(snn_session_binned(s, input, NCH, NBINS, 0, collect, p, &e), 0);
    snn_session_finish(s, collect, p, &e);
    snn_session_free(s);
    snn_model_free(m);
}

/* Reads predictions of `stream` from fd until StreamClosed. */
static void receive_all(int fd, preds *p)
{
    p->n = 0;
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(fd, 10000);
        assert_non_null(e);
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED) {
            snnd__v1__envelope__free_unpacked(e, NULL);
            return;
        }
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION && p->n < NBINS) {
            assert_int_equal(e->prediction->n_values, 2);
            assert_int_equal(e->prediction->step, p->n);
            p->v[p->n][0] = e->prediction->values[0];
            p->v[p->n][1] = e->prediction->values[1];
            p->t[p->n++] = e->prediction->t_us;
        }
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
}

static int setup(void **u)
{
    (void)u;
    make_input();
    return itest_start(&D, snn_test_src("models/zoo"), NULL);
}

static int teardown(void **u)
{
    (void)u;
    if (D.pid > 0 && kill(D.pid, 0) == 0)
        itest_stop(&D, SIGKILL);
    return 0;
}

/* Hello is answered by Welcome listing the shipped models. */
static void welcome_lists_models(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    Snnd__V1__Hello h = SNND__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.client_name = "itest";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 7;
    env.msg_case = SNND__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    itest_send(fd, &env);
    Snnd__V1__Envelope *w = itest_expect(fd, SNND__V1__ENVELOPE__MSG_WELCOME, 5000);
    assert_non_null(w);
    assert_int_equal(w->id, 7);
    int found = 0;
    for (size_t i = 0; i < w->welcome->n_models; i++)
        if (!strcmp(w->welcome->models[i]->name, MODEL)) {
            found = 1;
            assert_int_equal(w->welcome->models[i]->n_inputs, NCH);
            assert_int_equal(w->welcome->models[i]->footprint_bytes, 21000);
        }
    assert_true(found);
    snnd__v1__envelope__free_unpacked(w, NULL);
    close(fd);
}

/* Predictions streamed through snnd equal the offline run bit for bit, and a
 * second subscriber on another connection receives the same predictions. */
static void stream_equals_offline_and_two_subscribers_agree(void **u)
{
    (void)u;
    static preds off, a, b;
    offline(&off);
    assert_int_equal(off.n, NBINS);
    int fa = itest_connect(&D), fb = itest_connect(&D);
    itest_open(fa, 1, "s1", MODEL, 1);
    Snnd__V1__Envelope *e = itest_expect(fa, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    assert_non_null(e);
    assert_int_equal(e->id, 1);
    assert_int_equal(e->stream_opened->bin_width_us, 4000);
    snnd__v1__envelope__free_unpacked(e, NULL);
    itest_subscribe(fb, 2, "s1");
    e = itest_expect(fb, SNND__V1__ENVELOPE__MSG_ACK, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    for (size_t k = 0; k < NBINS; k += 50)
        itest_binned(fa, "s1", input + k * NCH, NCH, 50);
    itest_close_stream(fa, 3, "s1");
    receive_all(fa, &a);
    receive_all(fb, &b);
    assert_int_equal(a.n, NBINS);
    assert_int_equal(b.n, NBINS);
    assert_memory_equal(a.v, off.v, sizeof off.v); /* bit for bit */
    assert_memory_equal(b.v, off.v, sizeof off.v);
    assert_memory_equal(a.t, off.t, sizeof off.t);
    assert_int_equal(a.t[0], 4000);
    close(fa);
    close(fb);
}

/* Fed one bin per message, each sent after the previous prediction came back (a live
 * decoder's pace), the small network is stepped on the loop thread (a daemon of its own with
 * --inline-step-us 100000, so that no batch, however slow under a sanitizer, goes back to the
 * workers; the daemon_workers run adds --inline-step-us 0, and every batch runs on a worker):
 * the predictions equal the offline run bit for bit either way, and the server's stats say
 * where the batches ran. */
static void lockstep_bins_equal_offline(void **u)
{
    (void)u;
    enum { LOCKSTEP = 300 };
    static preds off;
    offline(&off);
    const char *args = getenv("SNN_ITEST_ARGS");
    int workers_only = args && strstr(args, "--inline-step-us 0") != NULL;
    static itest_daemon d;
    const char *const extra[] = {"--inline-step-us", "100000", NULL};
    assert_int_equal(itest_start(&d, snn_test_src("models/zoo"), extra), 0);
    int fd = itest_connect(&d);
    itest_open(fd, 1, "lock", MODEL, 1);
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    e = itest_stats(fd, 2, NULL, 5000);
    assert_non_null(e);
    uint64_t inline0 = e->stats->server->batches_inline, pool0 = e->stats->server->batches_workers;
    snnd__v1__envelope__free_unpacked(e, NULL);
    for (size_t k = 0; k < LOCKSTEP; k++) {
        itest_binned(fd, "lock", input + k * NCH, NCH, 1);
        e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_PREDICTION, 5000);
        assert_non_null(e);
        assert_int_equal(e->prediction->step, k);
        assert_int_equal(e->prediction->n_values, 2);
        if (memcmp(e->prediction->values, off.v[k], sizeof off.v[k]) != 0)
            fail_msg("step %zu: %.9g %.9g, offline %.9g %.9g", k, e->prediction->values[0],
                     e->prediction->values[1], off.v[k][0], off.v[k][1]);
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
    e = itest_stats(fd, 3, NULL, 5000);
    assert_non_null(e);
    uint64_t on_loop = e->stats->server->batches_inline - inline0;
    uint64_t on_workers = e->stats->server->batches_workers - pool0;
    snnd__v1__envelope__free_unpacked(e, NULL);
    print_message("# %d bins in lockstep: %llu batches on the loop, %llu on the workers%s\n", LOCKSTEP,
                  (unsigned long long)on_loop, (unsigned long long)on_workers,
                  workers_only ? " (--inline-step-us 0)" : "");
    assert_int_equal(on_loop + on_workers, LOCKSTEP);
    if (workers_only)
        assert_int_equal(on_loop, 0);
    else
        assert_int_equal(on_loop, LOCKSTEP - 1); /* the first batch measures on a worker */
    itest_close_stream(fd, 4, "lock");
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_CLOSED, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    close(fd);
    assert_int_equal(itest_stop(&d, SIGTERM), 0);
}

/* Expects an Error with code and a message containing `want` on fd. */
static void expect_error(int fd, int code, const char *want)
{
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    if ((int)e->error->code != code || !strstr(e->error->message, want))
        fail_msg("expected error %d containing \"%s\", got %d \"%s\"", code, want, e->error->code,
                 e->error->message);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

/* Bad requests get an Error that names what was wrong; the connection and
 * its good stream keep working. */
static void bad_requests_get_named_errors(void **u)
{
    (void)u;
    int fd = itest_connect(&D), other = itest_connect(&D);
    itest_open(fd, 1, "bad1", "no-such-model", 0);
    expect_error(fd, SNND__V1__ERROR_CODE__UNKNOWN_MODEL, "no-such-model");
    itest_open(fd, 2, "good", MODEL, 1);
    snnd__v1__envelope__free_unpacked(itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000), NULL);
    itest_open(fd, 3, "good", MODEL, 0);
    expect_error(fd, SNND__V1__ERROR_CODE__STREAM_EXISTS, "already open");
    float wrong[95] = {0};
    itest_binned(fd, "good", wrong, 95, 1);
    expect_error(fd, SNND__V1__ERROR_CODE__BAD_SHAPE, "n_channels = 95, but model " MODEL " has 96");
    itest_binned(other, "good", input, NCH, 1);
    expect_error(other, SNND__V1__ERROR_CODE__PERMISSION, "fed by the connection that opened it");
    itest_binned(fd, "nope", input, NCH, 1);
    expect_error(fd, SNND__V1__ERROR_CODE__UNKNOWN_STREAM, "nope");
    itest_open(fd, 4, "bad id!", MODEL, 0);
    expect_error(fd, SNND__V1__ERROR_CODE__BAD_REQUEST, "stream_id");
    /* the good stream still works */
    itest_binned(fd, "good", input, NCH, 3);
    itest_close_stream(fd, 5, "good");
    static preds p;
    receive_all(fd, &p);
    assert_int_equal(p.n, 3);
    close(fd);
    close(other);
}

/* A malformed frame closes only its connection; an oversized one too. */
static void malformed_frames_close_only_their_connection(void **u)
{
    (void)u;
    int good = itest_connect(&D);
    itest_open(good, 1, "survivor", MODEL, 1);
    snnd__v1__envelope__free_unpacked(itest_expect(good, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000), NULL);

    int bad = itest_connect(&D);
    const uint8_t garbage[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff}; /* length 5, invalid protobuf */
    itest_send_raw(bad, garbage, sizeof garbage);
    /* the first frame this connection sent, whatever other connections sent before */
    expect_error(bad, SNND__V1__ERROR_CODE__BAD_FRAME, "frame 1 of this connection (5 bytes) does not decode");
    assert_null(itest_recv(bad, 5000));
    assert_true(itest_last_eof());
    close(bad);

    bad = itest_connect(&D);
    const uint8_t big[] = {0xff, 0xff, 0xff, 0x7f}; /* 268 MB declared */
    itest_send_raw(bad, big, sizeof big);
    expect_error(bad, SNND__V1__ERROR_CODE__BAD_FRAME, "exceeds max_frame_bytes");
    close(bad);

    bad = itest_connect(&D); /* disconnect in the middle of a frame */
    const uint8_t half[] = {0x20, 0x0a, 0x02};
    itest_send_raw(bad, half, sizeof half);
    close(bad);

    itest_binned(good, "survivor", input, NCH, 10);
    itest_close_stream(good, 2, "survivor");
    static preds p;
    receive_all(good, &p);
    assert_int_equal(p.n, 10);
    close(good);
}

/* A subscriber that stops reading is dropped at its output limit with an
 * Error SLOW_SUBSCRIBER; the other subscriber receives every prediction. */
static void stalled_subscriber_is_dropped_others_continue(void **u)
{
    (void)u;
    itest_daemon d2;
    const char *cfgp = "/tmp/snnd-itest-slow.json";
    FILE *f = fopen(cfgp, "w");
    fprintf(f, "{\"limits\": {\"subscriber_hard_limit_bytes\": 65536, \"subscriber_soft_limit_bytes\": 32768,"
               " \"subscriber_soft_limit_seconds\": 60}}\n");
    fclose(f);
    const char *extra[] = {"--config", cfgp, NULL};
    assert_int_equal(itest_start(&d2, snn_test_src("models/zoo"), extra), 0);
    int feeder = itest_connect(&d2), good = itest_connect(&d2), slow = itest_connect(&d2);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    itest_open(feeder, 1, "fan", MODEL, 0);
    snnd__v1__envelope__free_unpacked(itest_expect(feeder, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000), NULL);
    itest_subscribe(good, 2, "fan");
    snnd__v1__envelope__free_unpacked(itest_expect(good, SNND__V1__ENVELOPE__MSG_ACK, 5000), NULL);
    itest_subscribe(slow, 3, "fan");
    snnd__v1__envelope__free_unpacked(itest_expect(slow, SNND__V1__ENVELOPE__MSG_ACK, 5000), NULL);
    /* 20 000 predictions (~40 bytes each) while `slow` reads nothing. */
    size_t total = 0;
    for (int rep = 0; rep < 20; rep++) {
        for (size_t k = 0; k < NBINS; k += 100)
            itest_binned(feeder, "fan", input + k * NCH, NCH, 100);
        /* the good subscriber keeps up */
        for (;;) {
            Snnd__V1__Envelope *e = itest_recv(good, 200);
            if (!e)
                break;
            if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION) {
                assert_int_equal(e->prediction->step, total);
                total++;
            }
            snnd__v1__envelope__free_unpacked(e, NULL);
        }
    }
    itest_close_stream(feeder, 4, "fan");
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(good, 10000);
        assert_non_null(e);
        int closed = e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION) {
            assert_int_equal(e->prediction->step, total);
            total++;
        }
        snnd__v1__envelope__free_unpacked(e, NULL);
        if (closed)
            break;
    }
    assert_int_equal(total, 20 * NBINS);
    /* Now read the slow one: predictions, then SLOW_SUBSCRIBER, then EOF. */
    int saw_error = 0;
    size_t slow_n = 0;
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(slow, 5000);
        if (!e)
            break;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR &&
            e->error->code == SNND__V1__ERROR_CODE__SLOW_SUBSCRIBER)
            saw_error = 1;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION)
            slow_n++;
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
    assert_true(itest_last_eof());
    assert_true(saw_error);
    assert_true(slow_n < total);
    printf("# slow subscriber got %zu of %zu predictions before it was dropped\n", slow_n, total);
    close(feeder);
    close(good);
    close(slow);
    assert_int_equal(itest_stop(&d2, SIGTERM), 0);
}

/* SIGTERM: open streams finish, subscribers get StreamClosed, exit status 0. */
static void sigterm_finishes_streams_and_exits_zero(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    itest_open(fd, 1, "last", MODEL, 1);
    snnd__v1__envelope__free_unpacked(itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000), NULL);
    itest_binned(fd, "last", input, NCH, 20);
    static preds p;
    p.n = 0;
    while (p.n < 20) { /* the steps are done */
        Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_PREDICTION, 5000);
        assert_non_null(e);
        p.n++;
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
    kill(D.pid, SIGTERM);
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_CLOSED, 5000);
    assert_non_null(e);
    assert_string_equal(e->stream_closed->stream_id, "last");
    assert_int_equal(e->stream_closed->steps, 20);
    snnd__v1__envelope__free_unpacked(e, NULL);
    assert_int_equal(itest_stop(&D, 0), 0);
    assert_int_equal(access(D.sock, F_OK), -1); /* socket file removed */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(welcome_lists_models),
        cmocka_unit_test(stream_equals_offline_and_two_subscribers_agree),
        cmocka_unit_test(lockstep_bins_equal_offline),
        cmocka_unit_test(bad_requests_get_named_errors),
        cmocka_unit_test(malformed_frames_close_only_their_connection),
        cmocka_unit_test(stalled_subscriber_is_dropped_others_continue),
        cmocka_unit_test(sigterm_finishes_streams_and_exits_zero),
    };
    return cmocka_run_group_tests_name("daemon", tests, setup, teardown);
}
