/*
 * test_learning.c -- online learning through the daemon: a stream opened with
 * learn=eprop learns from timestamped targets on its own copy of the weights,
 * its predictions carry the running loss, SaveModel writes the learned weights
 * atomically as a new model any stream can open, and the shared model stays
 * untouched for other streams.
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "eprop.h"
#include "itest.h"
#include "model.h"
#include "rsnn_eprop.h"
#include "session.h"
#include "testutil.h"

#define NIN 20
#define NREC 30
#define T 200 /* steps per pattern period */

static itest_daemon D;
static char dir[128];
static float x[T * NIN];
static float y[T];

/* A trainable model (direct timing, LIF, reset subtract) with random weights. */
static void make_model(const char *path)
{
    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = NIN;
    p.n_rec = NREC;
    p.n_out = 1;
    p.dt = 1.0;
    p.tau_m = 20;
    p.tau_out = 20;
    p.v_th = 0.03;
    p.loss = SNN_EPROP_MSE;
    static double w_in[NREC * NIN], w_rec[NREC * NREC], w_out[NREC];
    uint32_t r = 7;
    for (int i = 0; i < NREC * NIN; i++) {
        r = r * 1664525u + 1013904223u;
        w_in[i] = ((double)(r >> 8) / 16777216.0 - 0.5) * 0.2;
    }
    for (int i = 0; i < NREC * NREC; i++) {
        r = r * 1664525u + 1013904223u;
        w_rec[i] = (i % (NREC + 1)) ? ((double)(r >> 8) / 16777216.0 - 0.5) * 0.05 : 0;
    }
    for (int i = 0; i < NREC; i++) {
        r = r * 1664525u + 1013904223u;
        w_out[i] = ((double)(r >> 8) / 16777216.0 - 0.5) * 0.1;
    }
    snn_err e;
    if (snn_rsnn_eprop_create(path, "learner", &p, w_in, w_rec, w_out, &e) < 0)
        fail_msg("create %s: %s", path, e.msg);
}

static int setup(void **u)
{
    (void)u;
    snprintf(dir, sizeof dir, "/tmp/snnd-learn-%ld", (long)getpid());
    mkdir(dir, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/learner.safetensors", dir);
    make_model(path);
    /* a frozen-noise input pattern (5% of channels per step) and a sine target */
    uint32_t r = 99;
    for (int i = 0; i < T * NIN; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (r >> 24) < 13 ? 1.0f : 0.0f;
    }
    for (int t = 0; t < T; t++)
        y[t] = (float)(0.5 * sin(2 * M_PI * t / T) + 0.3 * sin(4 * M_PI * t / T));
    return itest_start(&D, dir, NULL);
}

static int teardown(void **u)
{
    (void)u;
    itest_stop(&D, SIGTERM);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void open_stream(int fd, uint32_t id, const char *stream, const char *model, int learn)
{
    Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
    o.stream_id = (char *)stream;
    o.model = (char *)model;
    o.subscribe = 1;
    Snnd__V1__OpenStream__OptionsEntry e1 = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT,
                                      e2 = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT,
                                      e3 = SNND__V1__OPEN_STREAM__OPTIONS_ENTRY__INIT;
    e1.key = "learn";
    e1.value = "eprop";
    e2.key = "lr";
    e2.value = "0.005";
    e3.key = "update_interval";
    e3.value = "200";
    Snnd__V1__OpenStream__OptionsEntry *opts[] = {&e1, &e2, &e3};
    if (learn) {
        o.n_options = 3;
        o.options = opts;
    }
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &o;
    itest_send(fd, &env);
}

static void send_target(int fd, const char *stream, uint64_t t_us, float v)
{
    Snnd__V1__Target tg = SNND__V1__TARGET__INIT;
    tg.stream_id = (char *)stream;
    tg.t_us = t_us;
    tg.n_values = 1;
    tg.values = &v;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_TARGET;
    env.target = &tg;
    itest_send(fd, &env);
}

/* Feeds `periods` repetitions of the pattern (bin = 1 ms) with targets;
 * returns the loss reported at the end of the first and the last interval. */
static void feed(int fd, const char *stream, int periods, int targets, double *first, double *last, float *outs)
{
    *first = *last = -1;
    for (int p = 0; p < periods; p++) {
        for (int t = 0; t < T; t++) {
            uint64_t t_us = (uint64_t)(p * T + t) * 1000;
            if (targets)
                send_target(fd, stream, t_us, y[t]);
            Snnd__V1__BinnedCounts b = SNND__V1__BINNED_COUNTS__INIT;
            b.stream_id = (char *)stream;
            b.n_channels = NIN;
            b.n_counts = NIN;
            b.counts = x + t * NIN;
            b.t_us = t_us;
            Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
            env.msg_case = SNND__V1__ENVELOPE__MSG_BINNED_COUNTS;
            env.binned_counts = &b;
            itest_send(fd, &env);
        }
        for (int t = 0; t < T; t++) {
            Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_PREDICTION, 10000);
            assert_non_null(e);
            assert_int_equal(e->prediction->step, (uint64_t)(p * T + t));
            assert_int_equal(e->prediction->learning, targets);
            if (outs)
                outs[p * T + t] = e->prediction->values[0];
            if (t == T - 1) {
                if (p == 0)
                    *first = e->prediction->loss;
                *last = e->prediction->loss;
            }
            snnd__v1__envelope__free_unpacked(e, NULL);
        }
    }
}

/* The loss falls as the stream learns; SaveModel writes a model that loads. */
static void learning_stream_lowers_loss_and_saves(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    open_stream(fd, 1, "learn-1", "learner", 1);
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    double first, last;
    feed(fd, "learn-1", 60, 1, &first, &last, NULL);
    printf("# learning stream: loss of interval 1 = %.4f, of interval 60 = %.4f\n", first, last);
    assert_true(first > 0);
    assert_true(last < first / 3);

    Snnd__V1__SaveModel sm = SNND__V1__SAVE_MODEL__INIT;
    sm.stream_id = "learn-1";
    sm.name = "learner-trained";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 9;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SAVE_MODEL;
    env.save_model = &sm;
    itest_send(fd, &env);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_MODEL_SAVED, 10000);
    assert_non_null(e);
    assert_int_equal(e->id, 9);
    assert_int_equal(e->model_saved->steps, 60 * T);
    char path[256];
    snprintf(path, sizeof path, "%s/learner-trained.safetensors", dir);
    assert_string_equal(e->model_saved->path, path);
    snnd__v1__envelope__free_unpacked(e, NULL);
    snn_model *m;
    snn_err err;
    assert_int_equal(snn_model_load(path, NULL, &m, &err), 0);
    snn_model_free(m);

    /* A new (inference) stream on the saved model tracks the target far better
     * than one on the untouched original. */
    static float outs_new[T], outs_old[T];
    int g = itest_connect(&D);
    open_stream(g, 2, "use-trained", "learner-trained", 0);
    open_stream(g, 3, "use-original", "learner", 0);
    for (int k = 0; k < 2; k++) {
        e = itest_expect(g, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
        assert_non_null(e);
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
    feed(g, "use-trained", 1, 0, &first, &last, outs_new);
    feed(g, "use-original", 1, 0, &first, &last, outs_old);
    double se_new = 0, se_old = 0;
    for (int t = 20; t < T; t++) {
        se_new += (outs_new[t] - y[t]) * (outs_new[t] - y[t]);
        se_old += (outs_old[t] - y[t]) * (outs_old[t] - y[t]);
    }
    printf("# squared error over one period: saved model %.4f, original model %.4f\n", se_new, se_old);
    assert_true(se_new < se_old / 3);
    close(fd);
    close(g);
}

/* Learning requests on the wrong streams get named errors. */
static void learning_errors_are_named(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    open_stream(fd, 1, "plain", "learner", 0);
    Snnd__V1__Envelope *e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    snnd__v1__envelope__free_unpacked(e, NULL);
    send_target(fd, "plain", 0, 1.0f);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    assert_non_null(strstr(e->error->message, "does not learn"));
    snnd__v1__envelope__free_unpacked(e, NULL);
    Snnd__V1__SaveModel sm = SNND__V1__SAVE_MODEL__INIT;
    sm.stream_id = "plain";
    sm.name = "x";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SAVE_MODEL;
    env.save_model = &sm;
    itest_send(fd, &env);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    assert_non_null(strstr(e->error->message, "does not learn"));
    snnd__v1__envelope__free_unpacked(e, NULL);
    open_stream(fd, 2, "learn-2", "learner", 1);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    snnd__v1__envelope__free_unpacked(e, NULL);
    sm.stream_id = "learn-2";
    sm.name = "../escape";
    itest_send(fd, &env);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    assert_non_null(strstr(e->error->message, "is not valid"));
    snnd__v1__envelope__free_unpacked(e, NULL);
    /* a Label on the regression learner is refused (it would have switched the stream to
     * cross-entropy over its regression outputs) */
    Snnd__V1__Label lb = SNND__V1__LABEL__INIT;
    lb.stream_id = "learn-2";
    lb.index = 0;
    Snnd__V1__Envelope le = SNND__V1__ENVELOPE__INIT;
    le.msg_case = SNND__V1__ENVELOPE__MSG_LABEL;
    le.label = &lb;
    itest_send(fd, &le);
    e = itest_expect(fd, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    assert_non_null(strstr(e->error->message, "is a regression model (no classes): send Target values"));
    snnd__v1__envelope__free_unpacked(e, NULL);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(learning_stream_lowers_loss_and_saves),
        cmocka_unit_test(learning_errors_are_named),
    };
    return cmocka_run_group_tests_name("learning", tests, setup, teardown);
}
