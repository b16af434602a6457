/*
 * test_auth.c -- who may do what: with tokens configured, a client without the
 * right token gets an Error, never data.
 */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "testutil.h"

#define MODEL "tinyrsnn-indy01-seed1"
static itest_daemon D;
static float input[96 * 20];

static int setup(void **u)
{
    (void)u;
    for (int i = 0; i < 96 * 20; i++)
        input[i] = (i % 7) == 0;
    const char *cfg = "/tmp/snnd-itest-auth.json";
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"tokens\": ["
               "{\"token\": \"alice-secret\", \"actions\": [\"stream\", \"subscribe\"], \"streams\": [\"alice-*\"]},"
               "{\"token\": \"bob-secret-1\", \"actions\": [\"subscribe\"], \"streams\": [\"bob-*\"]},"
               "{\"token\": \"admin-secret\", \"actions\": [\"admin\", \"subscribe\"]}]}\n");
    fclose(f);
    const char *extra[] = {"--config", cfg, NULL};
    return itest_start(&D, snn_test_src("models/zoo"), extra);
}

static int teardown(void **u)
{
    (void)u;
    return itest_stop(&D, SIGTERM) == 0 ? 0 : -1;
}

static int hello(int fd, const char *token)
{
    Snnd__V1__Hello h = SNND__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.token = (char *)token;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 99;
    env.msg_case = SNND__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    itest_send(fd, &env);
    Snnd__V1__Envelope *e = itest_recv(fd, 5000);
    assert_non_null(e);
    int ok = e->msg_case == SNND__V1__ENVELOPE__MSG_WELCOME;
    snnd__v1__envelope__free_unpacked(e, NULL);
    return ok;
}

static void expect_permission(int fd, const char *want)
{
    Snnd__V1__Envelope *e = itest_recv(fd, 5000);
    assert_non_null(e);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_ERROR);
    assert_int_equal(e->error->code, SNND__V1__ERROR_CODE__PERMISSION);
    if (!strstr(e->error->message, want))
        fail_msg("expected \"%s\" in \"%s\"", want, e->error->message);
    snnd__v1__envelope__free_unpacked(e, NULL);
}

/* The Unix socket is created with mode 0660 by default. */
static void unix_socket_mode_is_0660(void **u)
{
    (void)u;
    struct stat sb;
    assert_int_equal(stat(D.sock, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0660);
}

/* Without Hello, or with an unknown token, requests are refused. */
static void no_token_no_service(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    itest_open(fd, 1, "alice-0", MODEL, 1);
    expect_permission(fd, "requires a token");
    assert_false(hello(fd, "wrong-token-123"));
    close(fd);
}

/* Bob may not read Alice's stream nor its stats: he gets Errors and no Prediction. */
static void others_cannot_read_a_stream(void **u)
{
    (void)u;
    int alice = itest_connect(&D), bob = itest_connect(&D);
    assert_true(hello(alice, "alice-secret"));
    assert_true(hello(bob, "bob-secret-1"));
    itest_open(alice, 1, "bob-stream", MODEL, 0); /* outside alice's patterns */
    expect_permission(alice, "token does not allow stream");
    itest_open(alice, 2, "alice-1", MODEL, 1);
    Snnd__V1__Envelope *e = itest_expect(alice, SNND__V1__ENVELOPE__MSG_STREAM_OPENED, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    itest_subscribe(bob, 3, "alice-1");
    expect_permission(bob, "subscribe");
    Snnd__V1__StatsRequest sr = SNND__V1__STATS_REQUEST__INIT;
    sr.stream_id = "alice-1";
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 4;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STATS_REQUEST;
    env.stats_request = &sr;
    itest_send(bob, &env);
    expect_permission(bob, "subscribe");
    sr.stream_id = "";
    itest_send(bob, &env);
    expect_permission(bob, "admin");
    itest_binned(bob, "alice-1", input, 96, 1); /* feeding someone else's stream */
    e = itest_expect(bob, SNND__V1__ENVELOPE__MSG_ERROR, 5000);
    assert_non_null(e);
    snnd__v1__envelope__free_unpacked(e, NULL);
    itest_binned(alice, "alice-1", input, 96, 20);
    itest_close_stream(alice, 5, "alice-1");
    int preds = 0;
    for (;;) {
        e = itest_recv(alice, 5000);
        assert_non_null(e);
        int done = e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED;
        preds += e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION;
        snnd__v1__envelope__free_unpacked(e, NULL);
        if (done)
            break;
    }
    assert_int_equal(preds, 20);
    /* Bob received nothing but the errors above. */
    assert_null(itest_recv(bob, 300));
    assert_false(itest_last_eof());
    close(alice);
    close(bob);
}

/* An admin token may read server-wide stats. */
static void admin_reads_stats(void **u)
{
    (void)u;
    int fd = itest_connect(&D);
    assert_true(hello(fd, "admin-secret"));
    Snnd__V1__StatsRequest sr = SNND__V1__STATS_REQUEST__INIT;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STATS_REQUEST;
    env.stats_request = &sr;
    itest_send(fd, &env);
    Snnd__V1__Envelope *e = itest_recv(fd, 5000);
    assert_non_null(e);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_STATS);
    assert_true(e->stats->server->connections >= 1);
    snnd__v1__envelope__free_unpacked(e, NULL);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unix_socket_mode_is_0660),
        cmocka_unit_test(no_token_no_service),
        cmocka_unit_test(others_cannot_read_a_stream),
        cmocka_unit_test(admin_reads_stats),
    };
    return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}
