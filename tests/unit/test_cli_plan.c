/*
 * test_cli_plan.c -- the feed plan and the output writer that `snn model run`
 * and `snn replay` share: the same rows become the same batches, and the
 * printed numbers read back to the very same floats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "csv.h"
#include "session.h"

static void load(const char *text, snn_csv *c)
{
    char err[256];
    if (snn_csv_parse(text, strlen(text), "p.csv", 0, c, err, sizeof err) < 0)
        fail_msg("%s", err);
}

/* Rows without t: batches of FEED_BINS_PER_MSG, the first and every later
 * one "right after the previous bin" (t_us 0). */
static void bins_without_t_batch_by_64(void **u)
{
    (void)u;
    char *text = malloc(200 * 4 + 16);
    strcpy(text, "ch0\n");
    for (int i = 0; i < 150; i++)
        strcat(text, "1\n");
    snn_csv c;
    load(text, &c);
    feed_op *ops;
    char err[128];
    long n = feed_plan_csv(&c, SNN_INPUT_SPIKES, 4000, &ops, err, sizeof err);
    assert_int_equal(n, 3);
    assert_int_equal(ops[0].kind, FEED_BINNED);
    assert_int_equal(ops[0].first, 0);
    assert_int_equal(ops[0].n, 64);
    assert_int_equal(ops[1].first, 64);
    assert_int_equal(ops[2].first, 128);
    assert_int_equal(ops[2].n, 22);
    assert_int_equal(ops[1].t_us, 0);
    free(ops);
    snn_csv_free(&c);
    free(text);
}

/* With t: consecutive bins share a batch; a gap starts a new batch at its t. */
static void bins_with_t_split_at_gaps(void **u)
{
    (void)u;
    snn_csv c;
    load("t,ch0\n0.1,1\n0.104,0\n0.108,2\n0.5,1\n0.504,1\n", &c);
    feed_op *ops;
    char err[128];
    long n = feed_plan_csv(&c, SNN_INPUT_BINNED, 4000, &ops, err, sizeof err);
    assert_int_equal(n, 2);
    assert_int_equal(ops[0].t_us, 100000);
    assert_int_equal(ops[0].n, 3);
    assert_int_equal(ops[1].t_us, 500000);
    assert_int_equal(ops[1].first, 3);
    assert_int_equal(ops[1].n, 2);
    free(ops);
    snn_csv_free(&c);
}

/* Frames: one op per row, at round(t * 1e6) or row * bin width without t. */
static void frames_one_per_row(void **u)
{
    (void)u;
    snn_csv c;
    load("t,taxel_0\n0.025,3\n0.0500004,4\n", &c);
    feed_op *ops;
    char err[128];
    assert_int_equal(feed_plan_csv(&c, SNN_INPUT_TACTILE, 1000, &ops, err, sizeof err), 2);
    assert_int_equal(ops[0].kind, FEED_FRAME);
    assert_int_equal(ops[0].t_us, 25000);
    assert_int_equal(ops[1].t_us, 50000);
    free(ops);
    snn_csv_free(&c);
    load("taxel_0\n3\n4\n5\n", &c);
    assert_int_equal(feed_plan_csv(&c, SNN_INPUT_ANALOG, 25000, &ops, err, sizeof err), 3);
    assert_int_equal(ops[2].t_us, 50000);
    free(ops);
    snn_csv_free(&c);
}

/* Times going backwards and audio streams are refused with a message. */
static void plan_errors(void **u)
{
    (void)u;
    snn_csv c;
    load("t,ch0\n0.008,1\n0.004,1\n", &c);
    feed_op *ops;
    char err[128];
    assert_int_equal(feed_plan_csv(&c, SNN_INPUT_TACTILE, 1000, &ops, err, sizeof err), -1);
    assert_non_null(strstr(err, "data row 2: t = 0.004 goes backwards"));
    assert_int_equal(feed_plan_csv(&c, SNN_INPUT_AUDIO, 1000, &ops, err, sizeof err), -1);
    assert_non_null(strstr(err, "not audio"));
    snn_csv_free(&c);
}

/* Audio chunks cover every sample once. */
static void audio_chunks(void **u)
{
    (void)u;
    feed_op *ops;
    assert_int_equal(feed_plan_audio(2 * FEED_AUDIO_SAMPLES + 5, &ops), 3);
    assert_int_equal(ops[2].first, 2 * FEED_AUDIO_SAMPLES);
    assert_int_equal(ops[2].n, 5);
    free(ops);
}

static char *capture(void (*fn)(out_writer *), int decisions_only)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    static const char *const names[] = {"vx", "vy"};
    out_writer w = {.f = f, .decisions_only = decisions_only, .n_out = 2, .names = names};
    fn(&w);
    out_finish(&w);
    fclose(f);
    return buf;
}

static void write_rows(out_writer *w)
{
    const float a[2] = {-0.00964747462f, 1.0f / 3.0f};
    out_prediction(w, 0, 4000, a, 2);
    const float b[2] = {16777217.0f, -0.0f};
    out_prediction(w, 1, 8000, b, 2);
    out_decision(w, NULL, -1, a, 2, NULL); /* ignored in CSV mode */
}

/* CSV: header, %.6f seconds, %.9g values that parse back to the same floats. */
static void csv_rows_round_trip(void **u)
{
    (void)u;
    char *s = capture(write_rows, 0);
    assert_string_equal(s, "step,t,vx,vy\n"
                           "0,0.004000,-0.00964747462,0.333333343\n"
                           "1,0.008000,16777216,-0\n");
    assert_true(strtof("0.333333343", NULL) == 1.0f / 3.0f);
    free(s);
}

static void write_decisions(out_writer *w)
{
    const float sc[3] = {0.1f, 0.7f, 0.2f};
    out_prediction(w, 0, 4000, sc, 2); /* ignored in decision mode */
    out_decision(w, "A", 1, sc, 3, NULL);
    const float mos[2] = {3.1f, 3.9f};
    static const char *const n2[] = {"SIG", "BAK"};
    out_decision(w, NULL, -1, mos, 2, n2);
    out_decision(w, "", -1, mos, 2, NULL); /* scorer with the writer's names */
}

/* Decisions: one JSON object per line, classifier and scorer shapes. */
static void decision_lines(void **u)
{
    (void)u;
    char *s = capture(write_decisions, 1);
    assert_string_equal(s, "{\"label\":\"A\",\"index\":1,\"scores\":[0.100000001,0.699999988,0.200000003]}\n"
                           "{\"SIG\":3.0999999,\"BAK\":3.9000001}\n"
                           "{\"vx\":3.0999999,\"vy\":3.9000001}\n");
    free(s);
}

/* The daemon address: --socket, then --host/--port, then $SNN_SOCKET, then
 * the default socket if it exists, else TCP 7878. */
static void addresses(void **u)
{
    (void)u;
    char b[256];
    assert_string_equal(cli_address("/x/s.sock", "h", NULL, b, sizeof b), "unix:/x/s.sock");
    assert_string_equal(cli_address(NULL, "::1", NULL, b, sizeof b), "tcp:[::1]:7878");
    assert_string_equal(cli_address(NULL, "example.org", "99", b, sizeof b), "tcp:example.org:99");
    setenv("SNN_SOCKET", "/run/snnd.sock", 1);
    assert_string_equal(cli_address(NULL, NULL, NULL, b, sizeof b), "unix:/run/snnd.sock");
    setenv("SNN_SOCKET", "tcp:10.0.0.1:1", 1);
    assert_string_equal(cli_address(NULL, NULL, NULL, b, sizeof b), "tcp:10.0.0.1:1");
    unsetenv("SNN_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/nonexistent", 1);
    assert_string_equal(cli_address(NULL, NULL, NULL, b, sizeof b), "tcp:127.0.0.1:7878");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bins_without_t_batch_by_64),
        cmocka_unit_test(bins_with_t_split_at_gaps),
        cmocka_unit_test(frames_one_per_row),
        cmocka_unit_test(plan_errors),
        cmocka_unit_test(audio_chunks),
        cmocka_unit_test(csv_rows_round_trip),
        cmocka_unit_test(decision_lines),
        cmocka_unit_test(addresses),
    };
    return cmocka_run_group_tests_name("cli_plan", tests, NULL, NULL);
}
