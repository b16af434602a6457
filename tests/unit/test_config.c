/*
 * test_config.c -- snnd's configuration: defaults, every option read, and an
 * error naming the file and option for each kind of mistake.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/snnd-cfg-%ld.json", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text; expects failure with an error containing want. */
static void expect_error(const char *text, const char *want)
{
    snnd_config c;
    snnd_config_defaults(&c);
    char err[512] = "";
    int rc = snnd_config_load(&c, write_tmp(text), err, sizeof err);
    if (rc == 0 || !strstr(err, want))
        fail_msg("expected error containing \"%s\", got rc %d \"%s\"", want, rc, err);
    snnd_config_free(&c);
}

static void defaults_listen_on_unix_and_loopback_tcp(void **u)
{
    (void)u;
    snnd_config c;
    snnd_config_defaults(&c);
    assert_int_equal(c.n_listen, 2);
    assert_true(strncmp(c.listen[0], "unix:", 5) == 0);
    assert_string_equal(c.listen[1], "tcp:127.0.0.1:7878");
    assert_int_equal(c.unix_mode, 0660);
    assert_int_equal(c.max_frame_bytes, 1u << 20);
    assert_float_equal(c.inline_step_us, 100, 0);
    snnd_config_free(&c);
}

static void every_option_is_read(void **u)
{
    (void)u;
    snnd_config c;
    snnd_config_defaults(&c);
    char err[512] = "";
    const char *text =
        "{\"listen\": [\"tcp:[::1]:9000\"], \"unix_socket_mode\": \"0600\", \"models\": \"/m\", \"workers\": 3,"
        " \"log_level\": \"debug\", \"shutdown_grace_seconds\": 2, \"inline_step_us\": 0,"
        " \"limits\": {\"max_frame_bytes\": 4096, \"max_connections\": 5, \"max_streams\": 6,"
        " \"max_streams_per_connection\": 2, \"max_subscriptions_per_connection\": 3, \"input_queue_bytes\": 2048,"
        " \"subscriber_hard_limit_bytes\": 9000, \"subscriber_soft_limit_bytes\": 8000,"
        " \"subscriber_soft_limit_seconds\": 1.5},"
        " \"tokens\": [{\"token\": \"abcdefgh\", \"actions\": [\"subscribe\"], \"streams\": [\"a-*\"]}]}";
    assert_int_equal(snnd_config_load(&c, write_tmp(text), err, sizeof err), 0);
    assert_int_equal(c.n_listen, 1);
    assert_string_equal(c.listen[0], "tcp:[::1]:9000");
    assert_int_equal(c.unix_mode, 0600);
    assert_string_equal(c.models_dir, "/m");
    assert_int_equal(c.workers, 3);
    assert_float_equal(c.inline_step_us, 0, 0);
    assert_int_equal(c.max_frame_bytes, 4096);
    assert_int_equal(c.max_connections, 5);
    assert_int_equal(c.max_streams_per_connection, 2);
    assert_int_equal(c.subscriber_soft_bytes, 8000);
    assert_float_equal(c.subscriber_soft_seconds, 1.5, 1e-12);
    assert_int_equal(c.n_tokens, 1);
    const snnd_token *t = snnd_config_token(&c, "abcdefgh");
    assert_non_null(t);
    assert_null(snnd_config_token(&c, "abcdefgX"));
    assert_null(snnd_config_token(&c, "abcdefg"));
    assert_true(snnd_token_allows(t, SNND_ACT_SUBSCRIBE, "any-model", "a-1"));
    assert_false(snnd_token_allows(t, SNND_ACT_SUBSCRIBE, "any-model", "b-1"));
    assert_false(snnd_token_allows(t, SNND_ACT_STREAM, "any-model", "a-1"));
    snnd_config_free(&c);
}

static void mistakes_are_named(void **u)
{
    (void)u;
    expect_error("{\"listen\": [\"udp:1.2.3.4:5\"]}", "expected unix:PATH or tcp:HOST:PORT");
    expect_error("{\"listen\": [\"tcp:localhost:99999\"]}", "port must be 0..65535");
    expect_error("{\"workers\": 0}", "workers: expected an integer in [1, 128]");
    expect_error("{\"wrokers\": 2}", "unknown option wrokers");
    expect_error("{\"limits\": {\"max_frame_bytes\": 1}}", "limits.max_frame_bytes");
    expect_error("{\"limits\": {\"subscriber_soft_limit_bytes\": 9000000, \"subscriber_hard_limit_bytes\": 8000}}",
                 "exceeds subscriber_hard_limit_bytes");
    expect_error("{\"log_level\": \"loud\"}", "log_level");
    expect_error("{\"inline_step_us\": -1}", "inline_step_us");
    expect_error("{\"unix_socket_mode\": \"999\"}", "unix_socket_mode");
    expect_error("{\"tokens\": [{\"token\": \"short\", \"actions\": []}]}", "at least 8 characters");
    expect_error("{\"tokens\": [{\"token\": \"longenough\", \"actions\": [\"fly\"]}]}", "\"fly\" is not one of");
    expect_error("{\"listen\": [", "snnd-cfg-");     /* JSON syntax: file:line:column */
    expect_error("[1, 2]", "expected a JSON object at the top");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_listen_on_unix_and_loopback_tcp),
        cmocka_unit_test(every_option_is_read),
        cmocka_unit_test(mistakes_are_named),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
